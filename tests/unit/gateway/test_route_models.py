"""Every JSON route declares and returns a pydantic model (issue 15, typed seams): FastAPI's
response model of each route — taken from its return annotation, or named in its decorator
where the route answers a ``Response`` of its own (the OAuth token endpoint's headers, the
export's two media types) — is a model, a list of models or a union of them, never a
``dict[str, Any]`` or ``Any``.  Routes that answer other media types only (``/metrics``,
tiles, status lists) set ``response_class=Response`` and are left out."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from tests.conftest import make_settings

from credit_commons.gateway.app import create_app


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _routes(included.routes)
        elif isinstance(route, APIRoute) and route.include_in_schema:
            yield route


def _typed(annotation: object) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, BaseModel)
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        return all(_typed(argument) for argument in typing.get_args(annotation))
    return False


def _answers_json(route: APIRoute) -> bool:
    response_class = getattr(route.response_class, "value", route.response_class)
    return issubclass(response_class, JSONResponse)


class _One(BaseModel):
    n: int


class _Other(BaseModel):
    s: str


def test_the_models_are_recognised() -> None:
    assert _typed(_One)
    assert _typed(list[_One])
    assert _typed(_One | _Other)
    assert not _typed(_One | None)
    assert not _typed(dict[str, Any])
    assert not _typed(Any)
    assert not _typed(None)


def test_every_json_route_declares_a_model(tmp_path: Path) -> None:
    routes = list(_routes(create_app(make_settings(tmp_path)).routes))
    json_routes = [route for route in routes if _answers_json(route)]
    assert len(json_routes) >= 70
    untyped = [
        f"{','.join(sorted(route.methods))} {route.path}: {route.response_model!r}"
        for route in json_routes
        if not _typed(route.response_model)
    ]
    assert untyped == []
