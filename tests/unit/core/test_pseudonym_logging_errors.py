from __future__ import annotations

import json
import logging
import re

import pytest

from credit_commons.core.errors import (
    CommonsError,
    ConfigurationError,
    ExitCode,
    NotFoundError,
    ValidationError,
)
from credit_commons.core.logging import JsonFormatter, redact, request_id_var
from credit_commons.core.pseudonym import PSEUDONYM_PATTERN, Pseudonymizer

PEPPER = bytes(range(32))


def test_pseudonyms_are_stable_keyed_and_domain_separated() -> None:
    p = Pseudonymizer(PEPPER)
    a = p.pseudonym("identity", "ABCDE1234F")
    assert a == p.pseudonym("identity", "ABCDE1234F")
    assert a.startswith("p1:")
    assert a != p.pseudonym("lender", "ABCDE1234F")
    assert a != Pseudonymizer(bytes(32)).pseudonym("identity", "ABCDE1234F")
    assert re.match(PSEUDONYM_PATTERN, a)


def test_pseudonymizer_refuses_short_pepper_and_hides_it() -> None:
    with pytest.raises(ConfigurationError):
        Pseudonymizer(b"short")
    p = Pseudonymizer(PEPPER)
    assert PEPPER.hex() not in repr(p)
    with pytest.raises(ValidationError):
        p.pseudonym("Bad Domain", "x")
    with pytest.raises(ValidationError):
        p.pseudonym("identity", "")
    assert p.fingerprint() == Pseudonymizer(PEPPER).fingerprint()
    assert p.fingerprint() != Pseudonymizer(bytes(32)).fingerprint()


def test_redact_replaces_secret_looking_fields_at_any_depth() -> None:
    cleaned = redact(
        {
            "user": "ok",
            "password": "hunter2",
            "nested": {"access_token": "t", "items": [{"private_key": "k"}]},
            "Authorization": "Bearer x",
            "key_name": "issuer-main",
        }
    )
    text = json.dumps(cleaned)
    for secret in ("hunter2", '"t"', '"k"', "Bearer"):
        assert secret not in text
    assert cleaned["user"] == "ok"
    assert cleaned["key_name"] == "issuer-main"


def test_json_formatter_writes_one_line_with_request_id_and_redaction() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.fields = {"pepper": "SECRET", "count": 3}
    token = request_id_var.set("req_1")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "hello world"
    assert entry["request_id"] == "req_1"
    assert entry["count"] == 3
    assert "SECRET" not in line
    assert "\n" not in line


def test_error_problem_shape_and_exit_codes() -> None:
    error = NotFoundError("no such thing", extra={"field": "name"})
    body = error.problem(instance="/v1/x")
    assert body == {
        "type": "https://credit-commons.dev/problems/resource.not_found",
        "title": "Not found",
        "status": 404,
        "code": "resource.not_found",
        "detail": "no such thing",
        "instance": "/v1/x",
        "field": "name",
    }
    assert error.exit_code == ExitCode.NOT_FOUND
    assert CommonsError().status == 500
    assert "hint: do this" in ConfigurationError("bad", hint="do this").diagnostics()
