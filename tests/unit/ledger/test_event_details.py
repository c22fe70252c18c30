"""The event spine refuses, at class definition, any details field that could hold PII."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.encoding import canonical_json_reference, sha256_hex
from credit_commons.ledger.events import (
    Digest,
    EventDetails,
    PseudonymField,
    Token,
    event_types,
    object_digest,
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


def test_object_digest_is_stable_and_hex() -> None:
    digest = object_digest("credential", "crd_1")
    assert digest == object_digest("credential", "crd_1")
    assert len(digest) == 64
    assert digest != object_digest("consent", "crd_1")


@given(
    kind=st.one_of(st.sampled_from(["credential", "consent"]), st.text(max_size=12)),
    identifier=st.one_of(st.from_regex(r"[a-z]{3}_[0-9A-Z]{26}", fullmatch=True), st.text()),
)
def test_the_direct_object_digest_text_is_rfc8785(kind: str, identifier: str) -> None:
    expected = sha256_hex(canonical_json_reference({"id": identifier, "kind": kind}))
    assert object_digest(kind, identifier) == expected
