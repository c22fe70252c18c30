"""The issuer desk's schema-generated form (``web/issuer_form.py``): which field each JSON
Schema construct becomes, the constructs it refuses by name, the claims a submitted form
gives, and the service's field-level errors mapped back to the fields."""

from __future__ import annotations

from typing import Any

import pytest

from credit_commons.issuer.catalogue import CREDIT_READINESS, ClaimsInvalid, CredentialType
from credit_commons.issuer.credentials import checked_claims
from credit_commons.web.issuer_form import (
    Field,
    FormUnavailable,
    claims_of,
    field_errors,
    form_of,
    walk,
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "visited_on", "employees", "owner"],
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 40, "title": "Shop name"},
        "visited_on": {"type": "string", "format": "date"},
        "employees": {"type": "integer", "minimum": 1, "maximum": 500},
        "turnover_ratio": {"type": "number", "minimum": 0, "maximum": 1.5},
        "registered": {"type": "boolean"},
        "grade": {"enum": ["A", "B", 3]},
        "owner": {
            "type": "object",
            "additionalProperties": False,
            "required": ["city"],
            "properties": {
                "city": {"type": "string"},
                "since": {"type": "integer", "minimum": 1950},
            },
        },
    },
}


def by_name(fields: tuple[Field, ...]) -> dict[str, Field]:
    return {item.name: item for item in walk(fields)}


def test_each_construct_becomes_its_field() -> None:
    fields = by_name(form_of(SCHEMA))
    assert fields["claims.name"].kind == "text"
    assert fields["claims.name"].label == "Shop name"  # the schema's title
    assert fields["claims.name"].max_length == 40
    assert fields["claims.visited_on"].kind == "date"
    employees = fields["claims.employees"]
    assert (employees.kind, employees.minimum, employees.maximum) == ("integer", 1, 500)
    assert fields["claims.turnover_ratio"].kind == "number"
    assert not fields["claims.turnover_ratio"].required
    assert fields["claims.registered"].kind == "boolean"
    grade = fields["claims.grade"]
    assert grade.kind == "select"
    assert grade.options == (("A", "A"), ("B", "B"), ("3", "3"))
    assert fields["claims.owner"].kind == "group"
    assert fields["claims.owner.city"].required
    assert fields["claims.owner.since"].pointer == "/owner/since"


def test_the_built_in_type() -> None:
    fields = by_name(form_of(CREDIT_READINESS.schema))
    assert fields["claims.enterprise"].kind == "group"
    assert fields["claims.income_bracket"].options[0] == ("<1L", "Less than ₹1 lakh")
    sources = fields["claims.verification_sources"]
    assert sources.kind == "checkboxes"
    assert len(sources.options) == 6
    # What the platform computes is optional in the form, though the schema requires it.
    assert fields["claims.score_commitment"].computed
    assert not fields["claims.score_commitment"].required
    assert fields["claims.score_opening.salt"].computed
    assert fields["claims.score_opening.score"].required


@pytest.mark.parametrize(
    ("schema", "construct", "pointer"),
    [
        ({"type": "array"}, "a schema that does not describe an object", "/"),
        (
            {"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}]}}},
            "the keyword oneOf",
            "/a",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}},
            "the keyword $ref",
            "/a",
        ),
        (
            {"type": "object", "properties": {"a": {"type": ["string", "null"]}}},
            "a list of types",
            "/a",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "array", "items": {"type": "object"}}},
            },
            "an array whose items are not a list of choices",
            "/a",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "const": "x"}}},
            "the keyword const",
            "/a",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "patternProperties": {}},
            "the keyword patternProperties",
            "/",
        ),
        (
            {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "properties": {"a": {"type": "string"}},
            },
            "additionalProperties with a schema",
            "/",
        ),
        ({"type": "object", "properties": {"a": {"type": "null"}}}, "the type null", "/a"),
        ({"type": "object", "properties": {"a b": {"type": "string"}}}, None, "/"),
    ],
)
def test_what_cannot_be_shown_is_named(
    schema: dict[str, Any], construct: str | None, pointer: str
) -> None:
    with pytest.raises(FormUnavailable) as refused:
        form_of(schema)
    if construct is not None:
        assert refused.value.construct == construct
    assert refused.value.pointer == pointer
    assert refused.value.pointer in str(refused.value)


def test_claims_of_a_form() -> None:
    fields = form_of(SCHEMA)
    claims, kept = claims_of(
        fields,
        {
            "claims.name": ["  Asha Stores "],
            "claims.visited_on": ["2026-12-01"],
            "claims.employees": ["12"],
            "claims.turnover_ratio": ["0.75"],
            "claims.registered": ["false"],
            "claims.grade": ["3"],
            "claims.owner.city": ["Pune"],
            "claims.owner.since": [""],
        },
    )
    assert claims == {
        "name": "Asha Stores",
        "visited_on": "2026-12-01",
        "employees": 12,
        "turnover_ratio": 0.75,
        "registered": False,
        "grade": 3,
        "owner": {"city": "Pune"},
    }
    assert kept["claims.employees"] == ["12"]
    # What cannot be converted is kept as typed, for the schema to refuse.
    typed, _ = claims_of(fields, {"claims.employees": ["twelve"], "claims.turnover_ratio": ["nan"]})
    assert typed["employees"] == "twelve"
    assert typed["turnover_ratio"] == "nan"
    assert typed["owner"] == {}  # a required group is sent, empty, so its rules apply


def _errors(credential_type: CredentialType, claims: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ClaimsInvalid) as refused:
        checked_claims(credential_type, claims)
    errors: list[dict[str, str]] = refused.value.extra["errors"]
    return errors


def test_schema_errors_land_on_their_fields() -> None:
    shop = CredentialType("ShopVisit", "urn:example:shop", SCHEMA, ())
    fields = form_of(SCHEMA)
    claims, _ = claims_of(
        fields,
        {
            "claims.name": ["A"],
            "claims.employees": ["900"],
            "claims.turnover_ratio": ["x"],
            "claims.grade": ["C"],
        },
    )
    errors = field_errors(fields, _errors(shop, claims))
    assert errors["claims.name"].text == "Too short: enter or choose more."
    assert errors["claims.employees"].text == "Enter a number from %(low)s to %(high)s."
    assert errors["claims.employees"].params == {"low": "1", "high": "500"}
    assert errors["claims.turnover_ratio"].text == "Enter a number."
    assert errors["claims.grade"].text == "Choose one of the options."
    # "missing" at the root and inside a group: each missing claim its own field's error.
    assert errors["claims.visited_on"].text == "Enter this; it is required."
    assert errors["claims.owner.city"].text == "Enter this; it is required."


def test_built_in_errors_land_on_their_fields() -> None:
    fields = form_of(CREDIT_READINESS.schema)
    claims, _ = claims_of(
        fields,
        {
            "claims.enterprise.identity_token": ["not-a-token"],
            "claims.credit_tier": ["B"],
            "claims.income_bracket": ["5L-25L"],
            "claims.score_opening.score": ["702.5"],
        },
    )
    errors = field_errors(fields, _errors(CREDIT_READINESS, claims))
    assert set(errors) == {
        "claims.enterprise.identity_token",
        "claims.debt_ratio_bracket",
        "claims.score_opening.score",
        "claims.verification_sources",
    }
    assert errors["claims.score_opening.score"].text == "Enter a whole number, such as 702."
    assert errors["claims.enterprise.identity_token"].text.startswith("This is not in the")


def test_an_error_no_field_owns_is_the_forms() -> None:
    fields = form_of(SCHEMA)
    errors = field_errors(
        fields,
        [
            {"field": "/", "message": "has properties the type does not define"},
            {"field": "/owner/unknown/deep", "message": "breaks the type rule (string)"},
            {"field": "/score_opening", "message": "does not open /score_commitment"},
        ],
    )
    assert errors["claims"].text == "This value is not accepted."
    # An error inside a group with no field of its own goes to the group's first field.
    assert errors["claims.owner.city"].text == "This is not the right kind of value."


def test_required_claims_come_first_in_the_schemas_order() -> None:
    names = [item.path[0] for item in form_of(CREDIT_READINESS.schema)]
    assert names[:6] == list(CREDIT_READINESS.schema["required"])
    assert names[6:] == ["score_opening", "community_tier"]


def test_a_computed_claim_is_asked_for_only_when_nothing_else_explains_it() -> None:
    fields = form_of(CREDIT_READINESS.schema)
    claims, _ = claims_of(
        fields,
        {
            "claims.enterprise.identity_token": ["idt_abcdefghijkl"],
            "claims.credit_tier": ["B"],
            "claims.income_bracket": ["5L-25L"],
            "claims.debt_ratio_bracket": ["<0.2"],
            "claims.verification_sources": ["itr"],
        },
    )
    errors = field_errors(fields, _errors(CREDIT_READINESS, claims))
    # No score and no commitment: the commitment is what is missing.
    assert set(errors) == {"claims.score_commitment"}


def test_an_optional_group_with_required_groups_inside_is_absent_when_left_empty() -> None:
    # The Credit Readiness Credential's optional community tier holds a required rule set.
    fields = form_of(CREDIT_READINESS.schema)
    base = {
        "claims.enterprise.identity_token": ["idt_abcdefghijklmnop"],
        "claims.credit_tier": ["B"],
    }
    claims, _ = claims_of(fields, base)
    assert "community_tier" not in claims
    assert claims["enterprise"] == {"identity_token": "idt_abcdefghijklmnop"}
    partial, _ = claims_of(fields, {**base, "claims.community_tier.tier": ["silver"]})
    assert partial["community_tier"] == {"tier": "silver", "rule_set": {}}
    # A required group stays, empty, so that the service names what is missing in it.
    empty, _ = claims_of(fields, {})
    assert empty["enterprise"] == {}
