"""The routers' path pre-check (gateway/route_prefilter.py): it answers "no match" only
where the router's own matching would, and spares a request the routers that cannot
match its path."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, _IncludedRouter
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Match
from tests.conftest import make_settings

from credit_commons.gateway.app import create_app
from credit_commons.gateway.route_prefilter import path_filter, prefilter_routers


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(make_settings(tmp_path_factory.mktemp("prefilter")))


def _routes(routes: Iterable[object]) -> Iterator[tuple[str, set[str]]]:
    # Every route's template and methods, through the included routers.
    for route in routes:
        if isinstance(route, _IncludedRouter):
            yield from _routes(route.effective_candidates())
            continue
        inner = getattr(route, "original_route", route)
        path = getattr(route, "path", None) or getattr(inner, "path", None)
        if isinstance(path, str):
            yield path, set(getattr(inner, "methods", None) or {"GET"})


def _samples(app: FastAPI) -> Iterator[tuple[str, str]]:
    # Every route's template with its parameters filled, and its trailing-slash variant
    # (the router tries that one before it redirects), for each of its methods.
    for path, methods in _routes(app.router.routes):
        filled = re.sub(r"\{[^}]*\}", "x1", path)
        for method in sorted(methods):
            for variant in {filled, filled.rstrip("/") or "/", filled + "/"}:
                yield method, variant
    yield "GET", "/no/such/route"


def _scope(method: str, path: str) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_the_pre_check_never_changes_what_a_router_matches(app: FastAPI) -> None:
    guarded = [r for r in app.router.routes if "matches" in vars(r)]
    assert len(guarded) > 20  # the API's and the console's routers
    samples = list(_samples(app))
    assert len(samples) > 300
    for method, path in samples:
        for route in guarded:
            real: BaseRoute = route
            expected = type(real).matches(real, _scope(method, path))  # the class's own
            got = route.matches(_scope(method, path))
            assert got == expected, (method, path)  # the match and the child scope it gives


def test_healthz_tries_no_included_router(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[str] = []
    real = APIRoute.matches

    def counted(self: APIRoute, scope: dict[str, object]) -> tuple[Match, dict[str, object]]:
        tried.append(self.path)
        return real(self, scope)

    monkeypatch.setattr(APIRoute, "matches", counted)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    # Only the top-level routes before it (the API docs), and /healthz itself.
    assert set(tried) <= {"/docs", "/docs/oauth2-redirect", "/healthz"}, tried


def test_a_route_added_to_an_included_router_later_is_matched() -> None:
    app = FastAPI()
    router = APIRouter()

    @router.get("/first/{x}")
    def first(x: str) -> str:
        return x

    app.include_router(router)
    assert prefilter_routers(app) == 1

    @router.get("/later")
    def later() -> str:
        return "later"

    included = next(r for r in app.router.routes if isinstance(r, _IncludedRouter))
    assert included.matches(_scope("GET", "/later"))[0] is Match.FULL
    with TestClient(app) as client:
        assert client.get("/later").json() == "later"
        assert client.get("/first/a").json() == "a"


def test_a_template_without_a_literal_part_disables_the_pre_check() -> None:
    found = path_filter(["/v1/a/{x}", "/b/", "/"])
    assert found is not None
    assert found.prefixes == ("/v1/a/",)
    assert found.exact == {"/", "/b", "/b/"}
    assert [found.admits(p) for p in ("/v1/a/1", "/b", "/b/", "/", "/c", "/v1/a")] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    assert path_filter(["/v1/a", "/{page}"]) is None
    app = FastAPI()
    router = APIRouter()

    @router.get("/{page}")
    def page(page: str) -> str:
        return page

    app.include_router(router)
    assert prefilter_routers(app) == 0
