"""What the OpenAPI document says about responses: the problem+json error shape, the OAuth
error shape, and :func:`answers`, which every route uses to list what it may answer.

Every route declares its success body as a pydantic model (``answers(Model, 404)``), and
every error status it can produce as RFC 9457 problem+json (``gateway/problems.py``), plus
the statuses any request may get before it reaches a route: 413 (body too large) and 431
(header section too large) from the size limits, 429 from the rate limits, 503 from
admission control or a busy database.  The OAuth token and credential endpoints answer
their protocol errors as RFC 6749 §5.2 JSON (``oauth_errors``) instead.

A route annotates its return type with the model it names in ``answers`` and returns that
model: FastAPI takes the annotation as the response model, and validates and serialises the
answer through it (the model's fields in the order the service's dictionaries had, so the
bytes stay what they were).  A route that still returns a dictionary is annotated with a
generic object, whose schema :func:`install_openapi` replaces, in the document, by the
declared model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from credit_commons.core.encoding import JsonObject
from credit_commons.gateway.problems import PROBLEM_JSON

__all__ = [
    "ALWAYS",
    "JwkSet",
    "OAuthErrorBody",
    "Problem",
    "answers",
    "install_openapi",
    "media",
    "oauth_errors",
    "problems",
]

ALWAYS = (413, 429, 431, 503)
"""Statuses any request may get, before or around its route (size limits, rate limits,
admission control, a busy database)."""

_REF = "#/components/schemas/{model}"

_DESCRIPTIONS = {
    400: "The request is malformed or inconsistent.",
    401: "Not authenticated: a credential is missing, unknown, expired or malformed.",
    403: "Authenticated, but not permitted.",
    404: "No such resource, or one the caller may not know of.",
    409: "The request conflicts with the resource's current state.",
    413: "The request body is too large.",
    415: "The request body's media type is not accepted.",
    422: "The request is not valid (the fields in error are listed).",
    429: "Too many requests: see Retry-After and the RateLimit fields.",
    431: "The request's header section is too large.",
    502: "An upstream the request depends on failed.",
    503: "Temporarily unavailable (at capacity, database busy, or not ready): see Retry-After.",
}


class Problem(BaseModel):
    """An RFC 9457 problem details object, as every error of this API is answered.

    ``code`` is stable and machine-readable (``consent.expired``); members beyond these
    carry machine-readable details of some errors (``errors``: the fields in error of a
    422; ``item``: the failing position of a batch; ``hint``; the rate-limit fields).
    """

    type: str = Field(description="A URI naming the problem type.")
    title: str
    status: int
    code: str = Field(description="Stable, dotted, lower-case error code.")
    detail: str
    instance: str | None = Field(None, description="The request path.")


class OAuthErrorBody(BaseModel):
    """An OAuth 2.0 error response (RFC 6749 §5.2), as the token endpoints answer."""

    model_config = ConfigDict(extra="forbid")
    error: str
    error_description: str | None = None


class JwkSet(BaseModel):
    """A JWK Set (RFC 7517 §5): the public keys, current and retired, each with its ``kid``."""

    model_config = ConfigDict(extra="forbid")
    keys: list[JsonObject]


def problems(*statuses: int) -> dict[int | str, JsonObject]:
    """``responses=`` entries: each of ``statuses`` and every status of :data:`ALWAYS`,
    answered as problem+json."""
    schema = {"$ref": _REF.format(model="Problem")}
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Error."),
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status in sorted({*statuses, *ALWAYS})
    }


def oauth_errors(*statuses: int) -> dict[int | str, JsonObject]:
    """``responses=`` entries: each of ``statuses`` answered as an RFC 6749 §5.2 error."""
    schema = {"$ref": _REF.format(model="OAuthErrorBody")}
    return {
        status: {
            "description": f"{_DESCRIPTIONS.get(status, 'Error.')} (RFC 6749 §5.2 error)",
            "content": {"application/json": {"schema": schema}},
        }
        for status in statuses
    }


def answers(
    model: Any,
    *errors: int,
    status: int = 200,
    description: str = "Success.",
    also: dict[str, JsonObject] | None = None,
) -> dict[int | str, JsonObject]:
    """``responses=`` for a JSON route: its success ``status`` with the body ``model`` (and
    the other media types ``also`` maps to their schemas), and ``errors`` (with
    :data:`ALWAYS`) as problem+json."""
    success: JsonObject = {"model": model, "description": description}
    if also:
        success["content"] = {name: {"schema": schema} for name, schema in also.items()}
    return {status: success, **problems(*errors)}


def media(
    types: dict[str, JsonObject], *errors: int, status: int = 200, description: str = "Success."
) -> dict[int | str, JsonObject]:
    """``responses=`` for a route that answers other media types (``types``: each media
    type's schema), with ``errors`` (and :data:`ALWAYS`) as problem+json.  The route sets
    ``response_class=Response`` so that no JSON body is documented besides."""
    content = {name: {"schema": schema} for name, schema in types.items()}
    return {status: {"description": description, "content": content}, **problems(*errors)}


def _only_refs(node: Any) -> Any:
    # A route's return annotation yields a schema into which FastAPI merges the declared
    # model's reference (or a union's ``anyOf``): from a generic object (dict[str, Any])
    # the merged ``anyOf``, from the same union as the declared one its options twice.
    # Keep the declared schema alone, each option once.
    if isinstance(node, dict):
        if "$ref" in node:
            return {"$ref": node["$ref"]}
        if "anyOf" in node:
            options: list[Any] = []
            for option in _only_refs(node["anyOf"]):
                if option not in options:
                    options.append(option)
            if node.get("additionalProperties") is True or len(options) < len(node["anyOf"]):
                return {"anyOf": options}
        return {key: _only_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_only_refs(value) for value in node]
    return node


def _complete(document: JsonObject) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, OAuthErrorBody):
        schemas[model.__name__] = model.model_json_schema(ref_template=_REF)
    # FastAPI documents request validation errors as its own HTTPValidationError JSON (with
    # its ValidationError items); this app answers them as problem+json (problems.py).
    if schemas.pop("HTTPValidationError", None) is not None:
        schemas.pop("ValidationError", None)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = problems(422)[422]
            for response in responses.values():
                for entry in response.get("content", {}).values():
                    if "schema" in entry:
                        entry["schema"] = _only_refs(entry["schema"])


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` the generated document completed with the problem and OAuth
    error schemas, and with each declared response model in place of the generic object
    its route's return annotation yields."""
    generate: Callable[[], JsonObject] = app.openapi

    def openapi() -> JsonObject:
        if app.openapi_schema is None:
            _complete(generate())  # FastAPI's openapi() caches the document it returns
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
