"""A small, deterministic schemathesis pass over every operation of the app (issue 15,
typed seams): derandomized generation and a few generated requests per operation, sent in-process,
each response checked by schemathesis' ``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance`` and ``response_schema_conformance`` against the app's own
OpenAPI document.  ``bench/fuzz_api.py`` runs the same checks at scale against a real
server; this keeps the document and the responses from drifting apart between its runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.conftest import make_settings, migrate
from tests.lenders import access_token, admin_headers, register

from credit_commons.gateway.app import create_app
from credit_commons.gateway.route_groups import GROUPS, classify
from credit_commons.runtime import Runtime

PER_OPERATION = 3
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)
LENDER_GROUPS = {"lender-api", "onboarding"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, str, str]]:
    # Limits high enough for one address sending hundreds of requests.
    generous = {f"{group.name}.ip": "1000000/minute" for group in GROUPS}
    generous.update({f"{g.name}.client": "1000000/minute" for g in GROUPS if g.client is not None})
    configured = make_settings(
        tmp_path,
        public_url="http://127.0.0.1:8000",
        rate_limits=generous,
        rate_limit_ip="1000000/minute",
        rate_limit_client="1000000/minute",
    )
    runtime = Runtime.build(configured)
    migrate(runtime.engine)
    with TestClient(create_app(configured, runtime=runtime)) as client:
        admin = admin_headers(runtime)["Authorization"]
        client_id, key = register(client, {"Authorization": admin})
        lender = f"Bearer {access_token(client, key, client_id, int(time.time()))}"
        yield client, admin, lender


def _send(client: TestClient, case: Any, headers: dict[str, str]) -> Any:
    # The case as a request (schemathesis serialises it for the requests library), sent
    # through the app's TestClient (httpx).
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    # The API reads no cookie and the operations declare none.
    assert not kwargs.get("cookies")
    request: dict[str, Any] = {"headers": kwargs.get("headers"), "params": kwargs.get("params")}
    data = kwargs.get("data")
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif isinstance(data, bytes | str):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    return client.request(kwargs["method"], kwargs["url"], **request)


def _runner(
    client: TestClient, operation: Any, token: str, failures: list[str], sent: list[int]
) -> Any:
    @settings(
        max_examples=PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        sent[0] += 1
        generated = {k: v for k, v in (case.headers or {}).items() if isinstance(v, str)}
        own = {k: v for k, v in generated.items() if k.lower() != "authorization"}
        # Every other request keeps a generated Authorization header (the refusals), the
        # rest carry a good token (what lies behind authentication).
        headers = {**own, "Authorization": token}
        if sent[0] % 2 and len(own) < len(generated):
            headers = generated
        response = _send(client, case, headers)
        for check in CHECKS:
            try:
                case.validate_response(response, checks=[check], headers=headers)
            except FailureGroup as group:
                titles = "; ".join(f.title for f in group.exceptions)
                failures.append(
                    f"{check.__name__}: {case.operation.label} -> "
                    f"{response.status_code} {titles}: {response.text[:200]}"
                )

    return run


def test_generated_requests_get_documented_answers(
    served: tuple[TestClient, str, str],
) -> None:
    client, admin, lender = served
    schema = schemathesis.openapi.from_dict(client.app.openapi())  # type: ignore[attr-defined]
    failures: list[str] = []
    sent = [0]
    for result in schema.get_all_operations():
        operation = result.ok()
        group = classify(operation.method.upper(), operation.path)
        token = lender if group in LENDER_GROUPS else admin
        _runner(client, operation, token, failures, sent)()
    assert sent[0] >= 2 * 70
    assert failures == []
