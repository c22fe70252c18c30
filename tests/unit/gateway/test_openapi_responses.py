"""The OpenAPI document describes every response (issue 15, typed seams): each operation
has a success response with a declared schema, and lists its errors — the ones every
request may get (413, 429, 431, 503) among them — as problem+json with the Problem schema
(the OAuth endpoints' protocol errors as RFC 6749 §5.2 JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.conftest import make_settings

from credit_commons.gateway.app import create_app
from credit_commons.gateway.openapi import ALWAYS

PROBLEM = {"$ref": "#/components/schemas/Problem"}
OAUTH_ERROR = {"$ref": "#/components/schemas/OAuthErrorBody"}
# RFC 6749 §5.2 (and OID4VCI §7.3.1, §8.3.1, OpenID4VP §8.2, §8.5): these answer their
# protocol errors as JSON.
OAUTH_OPERATIONS = {
    "POST /oauth/token",
    "POST /token",
    "POST /credential",
    "POST /v1/verifier/responses/{transaction_id}",
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(make_settings(tmp_path_factory.mktemp("openapi")))
    served = app.openapi()
    return json.loads(json.dumps(served))  # what /openapi.json sends


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _declared(schema: dict[str, Any]) -> bool:
    # A model (a reference to a component), or an inline schema with properties or a type
    # other than the generic "any object" a bare dict[str, Any] annotation yields.
    text = json.dumps(schema)
    if "$ref" in text or "properties" in text:
        return True
    return bool(schema.get("type")) and schema.get("type") not in ("object", "array")


def test_the_document_has_operations(document: dict[str, Any]) -> None:
    assert len(_operations(document)) >= 70


def test_every_operation_declares_its_success_body(document: dict[str, Any]) -> None:
    missing = []
    for name, operation in _operations(document):
        successes = {
            status: response
            for status, response in operation["responses"].items()
            if status.startswith("2")
        }
        described = [
            (media_type, entry.get("schema", {}))
            for response in successes.values()
            for media_type, entry in response.get("content", {}).items()
        ]
        if not described or not all(_declared(schema) for _, schema in described):
            missing.append(name)
    assert missing == []


def test_every_operation_lists_the_errors_any_request_may_get(document: dict[str, Any]) -> None:
    missing = [
        (name, status)
        for name, operation in _operations(document)
        for status in ALWAYS
        if str(status) not in operation["responses"]
    ]
    assert missing == []


def test_every_error_is_problem_json(document: dict[str, Any]) -> None:
    wrong = []
    for name, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("2", "3")):
                continue
            content = response.get("content", {})
            expected = {"application/problem+json": {"schema": PROBLEM}}
            if name in OAUTH_OPERATIONS and "application/json" in content:
                expected = {"application/json": {"schema": OAUTH_ERROR}}
            if content != expected:
                wrong.append((name, status, content))
    assert wrong == []


def test_request_validation_errors_are_documented_as_problems(document: dict[str, Any]) -> None:
    # FastAPI's own 422 (HTTPValidationError as application/json) is never what is sent.
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for name, operation in _operations(document):
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in operation["responses"], name


def test_problem_schema_is_rfc_9457(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "code", "detail"}


@pytest.mark.parametrize(
    ("operation", "media_types"),
    [
        ("GET /checkpoint", {"text/plain; charset=utf-8"}),
        ("GET /v1/log/checkpoint", {"text/plain; charset=utf-8"}),
        ("GET /tile/entries/{path}", {"application/octet-stream"}),
        ("GET /tile/{level}/{path}", {"application/octet-stream"}),
        (
            "GET /status-lists/{list_id}",
            {"application/statuslist+jwt", "application/statuslist+cwt", "application/vc+jwt"},
        ),
        ("POST /v1/identities/{token}/export", {"application/json", "application/pdf"}),
        ("GET /v1/credential-offers/{offer_id}/qr.svg", {"image/svg+xml"}),
    ],
)
def test_routes_that_answer_other_media_types_declare_them(
    document: dict[str, Any], operation: str, media_types: set[str]
) -> None:
    # Found by bench/fuzz_api.py's content_type_conformance: these were documented as JSON.
    found = dict(_operations(document))[operation]["responses"]["200"]["content"]
    assert set(found) == media_types


def test_a_fresh_status_list_may_be_not_modified(document: dict[str, Any]) -> None:
    assert "304" in document["paths"]["/status-lists/{list_id}"]["get"]["responses"]


@pytest.mark.parametrize("operation", sorted(OAUTH_OPERATIONS))
def test_the_oauth_endpoints_document_their_protocol_errors(
    document: dict[str, Any], operation: str
) -> None:
    responses = dict(_operations(document))[operation]["responses"]
    assert responses["400"]["content"] == {"application/json": {"schema": OAUTH_ERROR}}
    assert responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith("Response")
