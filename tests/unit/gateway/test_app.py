"""The app factory in-process: health, readiness, metrics, request ids, problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fastapi.routing
import pytest
from fastapi.testclient import TestClient
from prometheus_client.metrics import MetricWrapperBase
from tests.conftest import declare_probes, make_settings, migrate

from credit_commons.core.errors import ConfigurationError, NotFoundError
from credit_commons.gateway.app import create_app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path))
    migrate(app.state.runtime.engine)

    @app.get("/boom/{kind}")
    def boom(kind: str) -> None:
        if kind == "ours":
            raise NotFoundError("no such credential")
        raise RuntimeError("secret internals: pepper=abc")

    declare_probes(app)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_health_ready_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "sqlite"
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


def test_readyz_reports_an_unmigrated_database(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as test_client:
        response = test_client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "service.not_migrated"


def test_every_response_has_a_request_id(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert generated.startswith("req_")
    kept = client.get("/healthz", headers={"X-Request-ID": "trace-12345678"})
    assert kept.headers["x-request-id"] == "trace-12345678"
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id!"})
    assert replaced.headers["x-request-id"].startswith("req_")


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/boom/ours")
    text = client.get("/metrics").text
    assert 'commons_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/boom/{kind}",status="404"' in text
    assert "commons_http_request_duration_seconds_bucket" in text


def test_errors_are_problem_json(client: TestClient) -> None:
    ours = client.get("/boom/ours")
    assert ours.status_code == 404
    assert ours.headers["content-type"] == "application/problem+json"
    assert ours.json() == {
        "type": "https://credit-commons.dev/problems/resource.not_found",
        "title": "Not found",
        "status": 404,
        "code": "resource.not_found",
        "detail": "no such credential",
        "instance": "/boom/ours",
    }
    unexpected = client.get("/boom/other")
    assert unexpected.status_code == 500
    assert unexpected.json()["code"] == "commons.error"
    assert "pepper" not in unexpected.text
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["code"] == "resource.not_found"
    wrong_method = client.post("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "request.method_not_allowed"


def test_production_refuses_to_start_with_development_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SQLite"):
        create_app(make_settings(tmp_path, env="production"))


def test_healthz_needs_no_worker_thread(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Liveness is answered on the event loop: the probe costs no hop to a worker thread.
    def no_thread(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("GET /healthz ran on a worker thread")

    monkeypatch.setattr(fastapi.routing, "run_in_threadpool", no_thread)
    assert client.get("/healthz").json()["status"] == "ok"


def test_a_request_series_is_looked_up_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[tuple[object, ...]] = []
    labels = MetricWrapperBase.labels

    def counted(self: MetricWrapperBase, *values: str) -> MetricWrapperBase:
        looked_up.append(values)
        return labels(self, *values)

    monkeypatch.setattr(MetricWrapperBase, "labels", counted)
    for _ in range(3):
        client.get("/healthz")
    # The request's counter and histogram series are found once, then kept.
    assert looked_up.count(("GET", "/healthz", "200")) == 1
    assert looked_up.count(("GET", "/healthz")) == 1
    text = client.get("/metrics").text
    assert 'commons_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in text
