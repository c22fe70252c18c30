"""``jsonschema-rs`` decides claim validity and ``jsonschema`` describes failures: the two
must give the same verdict on every JSON value, or a type could accept what it describes
as invalid.  Hypothesis draws claims near the built-in type's schema (valid values mixed
with wrong types, wrong enum members, bad patterns, out-of-range numbers, extra members)
and generic schemas exercising other 2020-12 keywords."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_commons.issuer.catalogue import (
    CREDIT_READINESS,
    ClaimsInvalid,
    CredentialType,
    TypeInvalid,
)

# JSON values as the HTTP boundary produces them (json.loads): no tuples, no NaN.
_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_PSEUDONYM = "p1:" + "A" * 43


def _field(valid: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(valid) | _ANY


_CLAIMS = st.fixed_dictionaries(
    {},
    optional={
        "enterprise": st.fixed_dictionaries(
            {},
            optional={
                "identity_token": _field(["idt_" + "a" * 22, "idt_short", "xdt_" + "a" * 22]),
                "gstin_pseudonym": _field([_PSEUDONYM, "p1:short", "p0:" + "A" * 43]),
                "extra": _ANY,
            },
        )
        | _ANY,
        "credit_tier": _field(["A", "B", "C", "D", "a"]),
        "income_bracket": _field(["<1L", "5L-25L", ">1Cr", "1Cr"]),
        "debt_ratio_bracket": _field(["<0.2", ">0.6", "0.7"]),
        "score_commitment": _field(["A" * 43, "A" * 42, "A" * 44, "=" * 43]),
        "score_opening": st.fixed_dictionaries(
            {},
            optional={
                "score": _field([300, 900, 299, 901, 500.0, 500.5, True]),
                "salt": _field(["s" * 22, "s" * 21, "s" * 65]),
            },
        )
        | _ANY,
        "verification_sources": st.lists(
            _field(["gstn", "udyam", "itr", "aa_fetch", "nope"]), max_size=4
        )
        | _ANY,
        "unexpected": _ANY,
    },
)


def _verdicts(schema: dict[str, Any], value: Any) -> tuple[bool, bool]:
    fast = jsonschema_rs.Draft202012Validator(schema, offline=True).is_valid(value)
    reference = jsonschema.Draft202012Validator(schema).is_valid(value)
    return fast, reference


@settings(max_examples=400)
@given(_CLAIMS)
def test_readiness_claims_same_verdict(claims: dict[str, Any]) -> None:
    claims = json.loads(json.dumps(claims))  # exactly what a JSON body would carry
    fast, reference = _verdicts(dict(CREDIT_READINESS.schema), claims)
    assert fast == reference
    if reference:
        CREDIT_READINESS.validate(claims)
    else:
        with pytest.raises(ClaimsInvalid) as e:
            CREDIT_READINESS.validate(claims)
        assert e.value.extra["errors"]  # field-level errors, from jsonschema


_OTHER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"code": {"type": "string", "minLength": 2, "maxLength": 4}},
    "properties": {
        "a": {"$ref": "#/$defs/code"},
        "b": {"oneOf": [{"type": "integer", "multipleOf": 3}, {"type": "string"}]},
        "c": {"const": {"k": [1, 2]}},
        "d": {"type": "array", "prefixItems": [{"type": "boolean"}], "items": {"type": "null"}},
        "e": {"anyOf": [{"minimum": 10}, {"type": "string", "pattern": "^x"}]},
        "f": {"not": {"type": "number"}, "minProperties": 1},
        "g": {"type": "array", "contains": {"const": 1}, "uniqueItems": True},
        "h": {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
    },
    "patternProperties": {"^z": {"type": "integer"}},
    "propertyNames": {"maxLength": 3},
    "dependentRequired": {"a": ["b"]},
}


@settings(max_examples=400)
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h", "z1", "long_name"]),
        _ANY | st.sampled_from([{"k": [1, 2]}, [True, None], [1, 2], [1, 1], 0.5, "xy", 9]),
        max_size=5,
    )
)
def test_other_keywords_same_verdict(value: dict[str, Any]) -> None:
    value = json.loads(json.dumps(value))
    fast, reference = _verdicts(_OTHER_SCHEMA, value)
    assert fast == reference


def test_a_remote_ref_is_refused_not_fetched() -> None:
    with pytest.raises(TypeInvalid) as e:
        CredentialType(
            name="RemoteRef",
            vct="urn:example:remote",
            schema={"type": "object", "properties": {"a": {"$ref": "https://127.0.0.1:9/x"}}},
            disclosable=(),
        )
    assert "Retrieval is disabled" in str(e.value.__cause__)


def test_values_json_cannot_hold_are_refused() -> None:
    with pytest.raises(ClaimsInvalid):
        CREDIT_READINESS.validate({"credit_tier": {1, 2}})
