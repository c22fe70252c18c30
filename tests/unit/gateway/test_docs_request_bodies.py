"""The request bodies shown in the docs are complete and valid (issue 14 item 8).

Every example of an HTTP request with a JSON body in ``docs/*.md`` and the README — a line
``METHOD /path`` (in a code block, or in an inline code span) followed on the same line or
the next ones by a JSON object — must parse as JSON (no elided ``{…}``, no alternatives) and
validate against the request-body schema of that operation in the app's OpenAPI document,
with ``jsonschema`` (OpenAPI 3.1 schemas are JSON Schema 2020-12)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from tests.conftest import make_settings

from credit_commons.gateway.app import create_app

ROOT = Path(__file__).parents[3]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
_REQUEST = re.compile(r"(?:^|`)\s*(POST|PUT|PATCH|DELETE)\s+(/[^\s`]*)", re.MULTILINE)


_HEADER = re.compile(r"[A-Z][A-Za-z-]*: \S")


def _balanced(text: str, start: int) -> str:
    """The ``{…}`` object that starts at ``start`` (strings respected), or the rest of the
    text when it never closes (which then fails to parse)."""
    depth, in_string, escaped = 0, False, False
    for position in range(start, len(text)):
        char = text[position]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : position + 1]
    return text[start:]


def _json_after(text: str, start: int) -> str | None:
    """The JSON object that follows a request line ending at ``start``: on the same line, or
    on a following line after header lines (``Authorization: …``); None when the request
    has no JSON body."""
    position = start
    for _ in range(4):
        end = text.find("\n", position)
        line = text[position : end if end >= 0 else len(text)]
        content = line.lstrip()
        if content.startswith("{"):
            return _balanced(text, position + len(line) - len(content))
        if position != start and not _HEADER.match(content):
            return None
        if position == start and content and not _HEADER.match(content):
            return None
        if end < 0:
            return None
        position = end + 1
    return None


def examples() -> Iterator[tuple[str, str, str, str]]:
    """(page:line, method, path, body) of every request example with a JSON body."""
    for page in PAGES:
        text = page.read_text()
        for match in _REQUEST.finditer(text):
            body = _json_after(text, match.end(2))
            if body is None:
                continue
            line = text.count("\n", 0, match.start()) + 1
            yield f"{page.name}:{line}", match.group(1), match.group(2).split("?")[0], body


EXAMPLES = list(examples())


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(make_settings(tmp_path_factory.mktemp("docs")))
    document: dict[str, Any] = app.openapi()
    app.state.runtime.close()
    return document


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for template, item in spec["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method.lower() in item:
            operation: dict[str, Any] = item[method.lower()]
            return operation
    raise AssertionError(f"no operation {method} {path} in the OpenAPI document")


def test_the_docs_have_request_examples() -> None:
    # A guard against a parser that finds nothing.
    where = {(method, path) for _, method, path, _ in EXAMPLES}
    assert ("POST", "/v1/admin/lenders") in where
    assert ("POST", "/v1/onboarding/bindings") in where
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize(
    ("where", "method", "path", "body"), EXAMPLES, ids=[e[0] for e in EXAMPLES]
)
def test_a_documented_request_body_is_complete_and_valid(
    spec: dict[str, Any], where: str, method: str, path: str, body: str
) -> None:
    try:
        value = json.loads(body)
    except ValueError as e:
        pytest.fail(f"{where}: {method} {path}: the body is not complete JSON ({e}): {body}")
    operation = _operation(spec, method, path)
    content = operation.get("requestBody", {}).get("content", {})
    assert "application/json" in content, f"{where}: {method} {path} takes no JSON body"
    schema = content["application/json"]["schema"]
    registry: Registry = Registry().with_resource(
        "urn:openapi", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    rooted = json.loads(json.dumps(schema).replace('"#/components', '"urn:openapi#/components'))
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
        for e in Draft202012Validator(rooted, registry=registry).iter_errors(value)
    ]
    assert not errors, f"{where}: {method} {path}: {errors}"
