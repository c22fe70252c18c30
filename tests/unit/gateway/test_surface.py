"""The route registry (issue 21 §3; gateway/surface.py): the committed registry is the app's,
pinned by its hash; a route that is not registered, or a registry that was tampered with,
stops the start; a request no registry entry matches is refused whatever the app holds."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate

from credit_commons.core.errors import ConfigurationError
from credit_commons.gateway import surface
from credit_commons.gateway.app import assemble_app, create_app
from credit_commons.gateway.deps import get_principal, get_read_principal
from credit_commons.gateway.lender_deps import get_lender
from credit_commons.gateway.surface_auth import auth_of
from credit_commons.gateway.surface_pin import SURFACE_REGISTRY_SHA256


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    built = create_app(make_settings(tmp_path))
    migrate(built.state.runtime.engine)
    yield built
    built.state.runtime.close()


def test_the_committed_registry_is_the_apps_and_its_hash_is_pinned(app: FastAPI) -> None:
    # Fails when a route is added, removed or re-declared without `make routes`.
    committed = surface.load()
    assert surface.build(app) == committed
    assert surface.REGISTRY_FILE.read_text(encoding="utf-8") == committed.text()
    assert committed.sha256 == SURFACE_REGISTRY_SHA256
    assert len(committed.routes) >= 180
    assert {r.key for r in committed.routes} == surface.live_routes(app)


def test_the_registry_does_not_depend_on_the_environment(tmp_path: Path) -> None:
    keys = []
    for env in ("development", "test"):
        assembled = assemble_app(make_settings(tmp_path / env, env=env))
        keys.append(surface.live_routes(assembled))
        assembled.state.runtime.close()
    assert keys[0] == keys[1] == {r.key for r in surface.load().routes}


def test_a_route_added_without_registering_it_stops_the_start(app: FastAPI) -> None:
    @app.get("/v1/unregistered")
    def unregistered() -> dict[str, str]:
        return {"secret": "x"}

    with (
        pytest.raises(ConfigurationError, match=r"not in the route registry: GET /v1/unregistered"),
        TestClient(app),
    ):
        pass


def test_a_route_added_while_serving_is_refused(app: FastAPI) -> None:
    with TestClient(app) as client:

        @app.post("/v1/late")
        def late() -> dict[str, str]:
            return {"served": "yes"}

        @app.get("/healthz/extra")
        def extra() -> dict[str, str]:
            return {"served": "yes"}

        answer = client.post("/v1/late")
        assert answer.status_code == 404
        assert answer.json()["code"] == "resource.not_found"
        assert client.get("/healthz/extra").status_code == 404
        # The registered neighbours are served as before.
        assert client.get("/healthz").status_code == 200


def test_another_method_on_a_registered_path_is_405_with_allow(app: FastAPI) -> None:
    with TestClient(app) as client:

        @app.delete("/healthz")
        def delete_health() -> dict[str, str]:
            return {"deleted": "yes"}

        answer = client.delete("/healthz")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET"
        assert answer.json()["code"] == "request.method_not_allowed"
        redirected = client.get("/healthz/", follow_redirects=False)
        assert (redirected.status_code, redirected.headers["location"]) == (
            307,
            "http://testserver/healthz",
        )


_COMMITTED = surface.REGISTRY_FILE


def _tampered(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    document = json.loads(_COMMITTED.read_bytes())
    change(document)
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _drop_lender_scope(document: dict[str, Any]) -> None:
    for route in document["routes"]:
        if route["path"] == "/v1/consents" and route["method"] == "POST":
            route["auth"]["scopes"] = []


def test_a_tampered_registry_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tampered = _tampered(tmp_path, _drop_lender_scope)
    monkeypatch.setattr(surface, "REGISTRY_FILE", tampered)
    with pytest.raises(ConfigurationError, match="is not the pinned"):
        create_app(make_settings(tmp_path / "a"))
    # Even with its own hash pinned, the entry is not what the app declares.
    monkeypatch.setattr(surface, "SURFACE_REGISTRY_SHA256", surface.load(tampered).sha256)
    with pytest.raises(ConfigurationError, match=r"differs from the app's declarations for: POST"):
        create_app(make_settings(tmp_path / "b"))


def test_a_registry_listing_a_route_the_app_lacks_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def add(document: dict[str, Any]) -> None:
        extra = json.loads(json.dumps(document["routes"][-1]))
        extra["path"] = "/zz/{anything}"
        document["routes"].append(extra)

    tampered = _tampered(tmp_path, add)
    monkeypatch.setattr(surface, "REGISTRY_FILE", tampered)
    monkeypatch.setattr(surface, "SURFACE_REGISTRY_SHA256", surface.load(tampered).sha256)
    with pytest.raises(ConfigurationError, match=r"routes the app does not serve: \w+ /zz/"):
        create_app(make_settings(tmp_path / "a"))


def test_an_unreadable_or_malformed_registry_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing.json"
    monkeypatch.setattr(surface, "REGISTRY_FILE", missing)
    with pytest.raises(ConfigurationError, match="cannot be read"):
        create_app(make_settings(tmp_path / "a"))
    for change in (
        lambda d: d.update(version=2),
        lambda d: d["routes"].reverse(),
        lambda d: d["routes"].append(d["routes"][0]),
        lambda d: d["routes"][0]["auth"].update(kind="trust-me"),
        lambda d: d["routes"][0].update(visibility="public"),
        lambda d: d["routes"][0]["rate_limit"].update(group="none"),
        lambda d: d["routes"][0]["auth"].update(scopes=["b", "a"]),
    ):
        with pytest.raises(ConfigurationError, match=r"malformed|not sorted"):
            surface.load(_tampered(tmp_path, change))


def test_the_operators_pin_must_match(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="COMMONS_SURFACE_REGISTRY_SHA256"):
        create_app(make_settings(tmp_path / "a", surface_registry_sha256="0" * 64))
    app = create_app(make_settings(tmp_path / "b", surface_registry_sha256=SURFACE_REGISTRY_SHA256))
    app.state.runtime.close()


def test_probe_routes_are_never_declared_in_production(app: FastAPI, tmp_path: Path) -> None:
    production = make_settings(tmp_path, env="production")
    with pytest.raises(ConfigurationError, match="production serves the route registry"):
        surface.declare_test_routes(app, production, [("GET", "/probe")])


def test_a_route_without_a_declared_authentication_is_not_built(tmp_path: Path) -> None:
    assembled = assemble_app(make_settings(tmp_path))
    assembled.get("/v2/new")(lambda: None)
    with pytest.raises(ConfigurationError, match=r"without a declared authentication: GET /v2/new"):
        surface.build(assembled)
    assembled.state.runtime.close()


def _calls(route: APIRoute) -> set[str]:
    found: set[str] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        call = dependant.call
        if call is not None:
            found.add(getattr(call, "__qualname__", ""))
        stack.extend(dependant.dependencies)
    return found


def _api_routes(routes: list[Any]) -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            prefix = getattr(getattr(route, "include_context", None), "prefix", "")
            yield from ((prefix + p, r) for p, r in _api_routes(included.routes))
        elif isinstance(route, APIRoute):
            yield route.path, route


def test_declarations_agree_with_the_routes_own_authentication(app: FastAPI) -> None:
    # Where a route takes its caller as a dependency, the declared kind says so.
    identity = {get_principal.__qualname__, get_read_principal.__qualname__}
    lender = {get_lender.__qualname__, "lender_for.<locals>.dependency"}
    checked = 0
    for path, route in _api_routes(app.router.routes):
        calls = _calls(route)
        for method in route.methods:
            declared = auth_of(method, path)
            assert declared is not None
            if calls & lender:
                assert declared[0] == "lender", (method, path)
                checked += 1
            elif calls & identity:
                assert declared[0] in {"identity", "admin", "borrower"}, (method, path)
                checked += 1
            elif "get_borrower" in calls:
                assert declared[0] == "borrower", (method, path)
                checked += 1
    assert checked >= 50
