"""The event spine refuses, at class definition, any details field that could hold PII."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.encoding import b64url_encode, canonical_json_reference, sha256_hex
from credit_commons.core.errors import ValidationError
from credit_commons.events import (
    OBJECT_PATTERN,
    Digest,
    EventDetails,
    ObjectDigests,
    PseudonymField,
    Token,
    event_types,
    unkeyed_object_digest,
)


class Colour(StrEnum):
    RED = "red"


def test_safe_field_types_are_accepted() -> None:
    class _Fine(EventDetails, event_type="test.fine"):
        a: int
        b: bool
        c: Token
        d: Digest | None = None
        e: PseudonymField | None = None
        f: Colour = Colour.RED
        g: Literal["x", "y"] = "x"
        h: datetime | None = None
        i: tuple[Token, ...] = ()

    assert event_types()["test.fine"] is _Fine
    assert _Fine(a=1, b=True, c="credit-tier:A").c == "credit-tier:A"


@pytest.mark.parametrize(
    "annotation", [str, dict[str, Any], list[str], bytes, float, Any, str | None]
)
def test_unsafe_field_types_are_refused_at_definition(annotation: object) -> None:
    with pytest.raises(TypeError, match="may only hold"):
        type(
            "Leaky",
            (EventDetails,),
            {"__annotations__": {"name": annotation}, "__module__": __name__},
            event_type="test.leaky",
        )


def test_event_type_is_required_well_formed_and_unique() -> None:
    with pytest.raises(TypeError, match="event_type"):

        class _NoType(EventDetails):  # type: ignore[call-arg]
            a: int

    with pytest.raises(TypeError, match="malformed"):

        class _BadType(EventDetails, event_type="Not A Type"):
            a: int

    class _First(EventDetails, event_type="test.first"):
        a: int

    with pytest.raises(TypeError, match="already registered"):

        class _Dup(EventDetails, event_type="test.first"):
            a: int


def test_token_values_cannot_carry_free_text() -> None:
    class _Tok(EventDetails, event_type="test.token"):
        t: Token

    with pytest.raises(pydantic.ValidationError):
        _Tok(t="Ravi Kumar")  # a space: free text is not a token
    with pytest.raises(pydantic.ValidationError):
        _Tok(t="x" * 129)
    with pytest.raises(pydantic.ValidationError):
        _Tok(t="a", extra="b")  # type: ignore[call-arg]


KEY = bytes(range(32))


def test_object_digests_are_keyed_versioned_and_stable() -> None:
    objects = ObjectDigests(KEY)
    digest = objects.digest("credential", "crd_1")
    assert digest == objects.digest("credential", "crd_1")
    assert re.fullmatch(OBJECT_PATTERN, digest)
    assert digest.startswith("o1:")
    assert digest != objects.digest("consent", "crd_1")
    # Without the key it cannot be computed: another key gives another digest, and the
    # unkeyed SHA-256 anyone could compute is not it.
    assert ObjectDigests(bytes(32)).digest("credential", "crd_1") != digest
    assert digest != unkeyed_object_digest("credential", "crd_1")
    assert ObjectDigests(KEY, version=2).digest("credential", "crd_1").startswith("o2:")
    assert objects.candidates("credential", "crd_1") == (
        digest,
        unkeyed_object_digest("credential", "crd_1"),
    )
    assert "version=1" in repr(objects)
    assert KEY.hex() not in repr(objects)
    for bad in (b"short", 1):
        with pytest.raises(ValidationError):
            ObjectDigests(bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ObjectDigests(KEY, version=0)


@given(
    kind=st.one_of(st.sampled_from(["credential", "consent"]), st.text(max_size=12)),
    identifier=st.one_of(st.from_regex(r"[a-z]{3}_[0-9A-Z]{26}", fullmatch=True), st.text()),
)
def test_object_digests_are_hmac_of_the_rfc8785_reference(kind: str, identifier: str) -> None:
    reference = canonical_json_reference({"id": identifier, "kind": kind})
    mac = hmac.new(KEY, reference, hashlib.sha256).digest()
    assert ObjectDigests(KEY).digest(kind, identifier) == "o1:" + b64url_encode(mac)
    assert unkeyed_object_digest(kind, identifier) == sha256_hex(reference)
