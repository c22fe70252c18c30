"""The issuer desk's claim form, generated from a credential type's JSON Schema.

:func:`form_of` reads the type's schema (draft 2020-12) and returns the fields of a plain
HTML form: strings (``format: date`` as a date input), integers and numbers with their
bounds, enums as selects, booleans as yes/no choices, arrays of enum items as check boxes,
and nested objects as groups of fields.  A schema construct the form cannot show
(``oneOf``, ``$ref``, an array of objects, a type list…) raises :class:`FormUnavailable`
naming it and where it is: the type is then issued through the API, never through a form
that silently leaves a rule out.

:func:`claims_of` turns the submitted form back into claims — text as typed, so a value
that breaks the schema is refused *by the schema*, in the same service call as the API's —
and :func:`field_errors` maps the service's field-level errors (``ClaimsInvalid``: a JSON
pointer and the rule broken) to the form's fields, in plain words (``N_``-marked msgids
with their parameters, translated where shown).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ValidationError
from credit_commons.web.i18n import N_

__all__ = [
    "PREFIX",
    "Field",
    "FormUnavailable",
    "Message",
    "Submitted",
    "claims_of",
    "field_errors",
    "form_of",
    "walk",
]

PREFIX = "claims"
"""Every claim field's form name starts ``claims.`` (then the claim path, dot-separated),
so no claim can collide with the form's other fields (type, subject, format…)."""

_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_MAX_DEPTH = 4
# Keywords that only annotate, or that the form honours where they apply.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "default", "examples", "format"}
)
_KNOWN: dict[str, frozenset[str]] = {
    "object": frozenset({"type", "properties", "required", "additionalProperties"}),
    "string": frozenset({"type", "pattern", "minLength", "maxLength"}),
    "integer": frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "number": frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "boolean": frozenset({"type"}),
    "enum": frozenset({"type", "enum"}),
    "array": frozenset({"type", "items", "minItems", "maxItems", "uniqueItems"}),
}

# Plain labels of the built-in types' claims and codes (CreditReadinessCredential,
# KycCredential, ShgMembershipCredential, CommunityTierCredential; translated where shown);
# any other type's fields are labelled by their schema title or name.
LABELS: dict[str, str] = {
    "enterprise": N_("Enterprise"),
    "identity_token": N_("Identity token"),
    "gstin_pseudonym": N_("GSTIN pseudonym"),
    "udyam_pseudonym": N_("Udyam pseudonym"),
    "credit_tier": N_("Credit tier"),
    "income_bracket": N_("Yearly income"),
    "debt_ratio_bracket": N_("Debt to income ratio"),
    "score_commitment": N_("Score commitment"),
    "score_opening": N_("Exact score"),
    "score": N_("Score"),
    "salt": N_("Salt"),
    "verification_sources": N_("How the facts were checked"),
    "person": N_("Person"),
    "aadhaar_pseudonym": N_("Aadhaar pseudonym"),
    "pan_pseudonym": N_("PAN pseudonym"),
    "verification_level": N_("How the person was verified"),
    "birth_date": N_("Date of birth"),
    "verified_on": N_("Date of the check"),
    "shg_id": N_("Self-help group id"),
    "role": N_("Role in the group"),
    "since": N_("Member since"),
    "community_tier": N_("Community tier"),
    "tier": N_("Tier"),
    "ctx": N_("Reputation context"),
    "rule_set": N_("Rule set"),
    "id": N_("Identifier"),
    "version": N_("Version"),
    "hash": N_("Hash"),
    "as_of": N_("As of"),
}
OPTION_LABELS: dict[str, str] = {
    "<1L": N_("Less than ₹1 lakh"),
    "1L-5L": N_("₹1 lakh to ₹5 lakh"),
    "5L-25L": N_("₹5 lakh to ₹25 lakh"),
    "25L-1Cr": N_("₹25 lakh to ₹1 crore"),
    ">1Cr": N_("More than ₹1 crore"),
    "<0.2": N_("Less than 0.2"),
    "0.2-0.4": N_("0.2 to 0.4"),
    "0.4-0.6": N_("0.4 to 0.6"),
    ">0.6": N_("More than 0.6"),
    "gstn": N_("GST Network"),
    "udyam": N_("Udyam registration"),
    "bank_statement": N_("Bank statement"),
    "itr": N_("Income tax return"),
    "field_verification": N_("Visit by a field officer"),
    "aa_fetch": N_("Account Aggregator"),
    "phone_verified": N_("Phone number checked"),
    "document_verified": N_("Identity documents checked"),
    "in_person_verified": N_("Checked in person"),
    "member": N_("Member"),
    "president": N_("President"),
    "secretary": N_("Secretary"),
    "treasurer": N_("Treasurer"),
}
# Claims the platform fills in when they are left empty (issuer/catalogue.py,
# complete_score_commitment): shown as optional, with a hint saying so.
_COMPUTED = frozenset({("score_commitment",), ("score_opening", "salt")})


class FormUnavailable(ValidationError):
    """A credential type whose schema uses a construct the issuer desk's form cannot show;
    the message names the construct and where it is."""

    code = "web.issuer.form_unavailable"
    title = "This credential type cannot be issued from a form"

    def __init__(self, construct: str, pointer: str) -> None:
        super().__init__(f"{construct} at {pointer or '/'}")
        self.construct = construct
        self.pointer = pointer or "/"


@dataclass(frozen=True)
class Message:
    """A message for a person: an ``N_``-marked English msgid and its named parameters."""

    text: str
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Field:
    """One field of the form (``kind`` ``group`` holds ``children``)."""

    path: tuple[str, ...]
    label: str
    kind: str  # text | date | integer | number | select | boolean | checkboxes | group
    required: bool = False
    computed: bool = False
    options: tuple[tuple[str, str], ...] = ()  # (value, label) for select and checkboxes
    values: Mapping[str, Any] = field(default_factory=dict)  # option value -> claim value
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    description: str = ""
    children: tuple[Field, ...] = ()

    @property
    def name(self) -> str:
        """The form field's name: ``claims.`` and the claim path, dot-separated."""
        return ".".join((PREFIX, *self.path))

    @property
    def pointer(self) -> str:
        """The claim's JSON pointer (``/enterprise/identity_token``)."""
        return "/" + "/".join(self.path)


def walk(fields: Sequence[Field]) -> Iterator[Field]:
    """Every field, groups and their children, depth first."""
    for item in fields:
        yield item
        yield from walk(item.children)


def _label(name: str, schema: Mapping[str, Any]) -> str:
    title = schema.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _check_keywords(schema: Mapping[str, Any], allowed: frozenset[str], pointer: str) -> None:
    for keyword in sorted(schema):
        if keyword not in allowed and keyword not in _ANNOTATIONS:
            raise FormUnavailable(f"the keyword {keyword}", pointer)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


EnumValue = str | int | float | bool
"""A value an enum the form shows may hold: a JSON scalar other than null."""


def _enum_options(
    values: Any, pointer: str
) -> tuple[tuple[tuple[str, str], ...], dict[str, EnumValue]]:
    # The choices (value as sent, label) and, for each value as sent, the claim value.
    if not isinstance(values, list) or not values:
        raise FormUnavailable("an empty or malformed enum", pointer)
    options: list[tuple[str, str]] = []
    mapping: dict[str, EnumValue] = {}
    for value in values:
        if isinstance(value, dict | list) or value is None:
            raise FormUnavailable("an enum of objects, lists or null", pointer)
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if text in mapping:
            raise FormUnavailable("an enum whose values read alike", pointer)
        mapping[text] = value
        options.append((text, OPTION_LABELS.get(text, text)))
    return tuple(options), mapping


def _field(path: tuple[str, ...], schema: Any, *, required: bool, depth: int) -> Field:
    pointer = "/" + "/".join(path)
    if not isinstance(schema, Mapping):
        raise FormUnavailable("a schema that is not an object", pointer)
    label = _label(path[-1], schema)
    description = str(schema.get("description") or "")
    computed = path in _COMPUTED
    common: dict[str, Any] = {
        "path": path,
        "label": label,
        "required": required and not computed,
        "computed": computed,
        "description": description,
    }
    kind = schema.get("type")
    if isinstance(kind, list):
        raise FormUnavailable("a list of types", pointer)
    if "enum" in schema:
        _check_keywords(schema, _KNOWN["enum"], pointer)
        options, mapping = _enum_options(schema["enum"], pointer)
        return Field(kind="select", options=options, values=mapping, **common)
    if kind == "object":
        if depth >= _MAX_DEPTH:
            raise FormUnavailable("objects nested more than four deep", pointer)
        return Field(kind="group", children=_fields(schema, path, depth + 1), **common)
    if kind in ("string", "integer", "number", "boolean"):
        _check_keywords(schema, _KNOWN[kind], pointer)
    if kind == "string":
        date = schema.get("format") == "date"
        return Field(
            kind="date" if date else "text",
            min_length=schema.get("minLength"),
            max_length=schema.get("maxLength"),
            **common,
        )
    if kind in ("integer", "number"):
        return Field(
            kind=str(kind),
            minimum=_number(schema.get("minimum", schema.get("exclusiveMinimum"))),
            maximum=_number(schema.get("maximum", schema.get("exclusiveMaximum"))),
            **common,
        )
    if kind == "boolean":
        return Field(kind="boolean", **common)
    if kind == "array":
        _check_keywords(schema, _KNOWN["array"], pointer)
        items = schema.get("items")
        if not isinstance(items, Mapping) or "enum" not in items:
            raise FormUnavailable("an array whose items are not a list of choices", pointer)
        _check_keywords(items, _KNOWN["enum"], pointer + "/items")
        options, mapping = _enum_options(items["enum"], pointer + "/items")
        return Field(kind="checkboxes", options=options, values=mapping, **common)
    if kind is None:
        constructs = sorted(k for k in schema if k not in _ANNOTATIONS)
        raise FormUnavailable(
            "the keyword " + constructs[0] if constructs else "a schema without a type", pointer
        )
    raise FormUnavailable(f"the type {kind}", pointer)


def _fields(schema: Mapping[str, Any], path: tuple[str, ...], depth: int) -> tuple[Field, ...]:
    pointer = "/" + "/".join(path)
    _check_keywords(schema, _KNOWN["object"], pointer)
    if schema.get("additionalProperties", False) not in (True, False):
        raise FormUnavailable("additionalProperties with a schema", pointer)
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping) or not properties:
        raise FormUnavailable("an object without properties", pointer)
    required = set(schema.get("required", []))
    undefined = required - set(properties)
    if undefined:
        raise FormUnavailable("a required claim without a definition", pointer)
    # The required claims first, in the order the schema lists them (a stored schema's
    # properties may have been sorted by name), then the others.
    order = [n for n in schema.get("required", []) if n in properties]
    order += [n for n in properties if n not in order]
    out = []
    for name, sub in ((n, properties[n]) for n in order):
        if not _NAME.fullmatch(name):
            raise FormUnavailable("a claim name other than letters, digits and _", pointer)
        out.append(_field((*path, name), sub, required=name in required, depth=depth))
    return tuple(out)


def form_of(schema: Mapping[str, Any]) -> tuple[Field, ...]:
    """The form of a credential type's ``schema`` (an object's schema).  Raises
    :class:`FormUnavailable` naming the first construct it cannot show."""
    if schema.get("type") != "object":
        raise FormUnavailable("a schema that does not describe an object", "/")
    return _fields(schema, (), 1)


def _scalar(item: Field, raw: str) -> Any:
    # The claim for one submitted text; what cannot be converted is kept as typed, so the
    # schema refuses it with the rest (and the error lands on this field).
    if item.kind in ("select", "boolean"):
        mapping = item.values if item.kind == "select" else {"true": True, "false": False}
        return mapping.get(raw, raw)
    if item.kind == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if item.kind == "number":
        try:
            number = float(raw)
        except ValueError:
            return raw
        if not math.isfinite(number):
            return raw
        return int(number) if number.is_integer() and "." not in raw else number
    return raw


class Submitted(NamedTuple):
    """A submitted form read back: the ``claims`` it gives (a credential's claims, checked
    by the type's schema in the service call, not here) and the ``values`` to fill the form
    with again (field name to its values)."""

    claims: JsonObject
    values: dict[str, list[str]]


def _entered(claims: JsonObject) -> bool:
    # Whether ``claims`` hold a value anywhere (not only empty objects).
    return any(not isinstance(v, dict) or _entered(v) for v in claims.values())


def claims_of(fields: Sequence[Field], form: Mapping[str, Sequence[str]]) -> Submitted:
    """The claims a submitted ``form`` (each field name to its submitted values) gives, and
    what to fill the form with again (field name to values).  An empty field is an absent
    claim; an optional group left wholly empty is absent too."""
    kept: dict[str, list[str]] = {}

    def collect(items: Sequence[Field]) -> JsonObject:
        out: JsonObject = {}
        for item in items:
            key = item.path[-1]
            if item.kind == "group":
                inner = collect(item.children)
                # A group counts as given when a value was entered somewhere inside it (the
                # empty required groups of an optional group left empty do not make it so).
                if _entered(inner) or item.required:
                    out[key] = inner
                continue
            given = [str(v).strip() for v in form.get(item.name, [])][:64]
            given = [v[:2000] for v in given if v]
            kept[item.name] = given
            if not given:
                continue
            if item.kind == "checkboxes":
                out[key] = [item.values.get(v, v) for v in given]
            else:
                out[key] = _scalar(item, given[0])
        return out

    return Submitted(collect(fields), kept)


_RULE = re.compile(r"breaks the (\w+) rule")
_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})


def _plain(item: Field | None, rule: str) -> Message:
    if rule == "required":
        return Message(N_("Enter this; it is required."))
    if rule == "enum":
        return Message(N_("Choose one of the options."))
    low = item.minimum if item is not None else None
    high = item.maximum if item is not None else None
    if rule in _BOUNDS and low is not None and high is not None:
        bounds = {"low": f"{low:g}", "high": f"{high:g}"}
        return Message(N_("Enter a number from %(low)s to %(high)s."), bounds)
    if rule in ("minimum", "exclusiveMinimum"):
        return Message(N_("The number is too small."))
    if rule in ("maximum", "exclusiveMaximum"):
        return Message(N_("The number is too large."))
    if rule == "type":
        if item is not None and item.kind == "integer":
            return Message(N_("Enter a whole number, such as 702."))
        if item is not None and item.kind == "number":
            return Message(N_("Enter a number."))
        return Message(N_("This is not the right kind of value."))
    if rule in ("pattern", "format"):
        return Message(N_("This is not in the expected form. Check it and try again."))
    if rule in ("minLength", "minItems"):
        return Message(N_("Too short: enter or choose more."))
    if rule in ("maxLength", "maxItems"):
        return Message(N_("Too long: enter or choose less."))
    if rule == "uniqueItems":
        return Message(N_("Choose each option only once."))
    if rule == "opening":
        return Message(N_("The exact score does not match the score commitment."))
    return Message(N_("This value is not accepted."))


def _owner(fields: Sequence[Field], pointer: str) -> Field | None:
    # The field of ``pointer``, or of its nearest ancestor (an array item's error belongs
    # to the array's field).
    by_pointer = {item.pointer: item for item in walk(fields)}
    while pointer:
        if pointer in by_pointer:
            return by_pointer[pointer]
        pointer = pointer.rpartition("/")[0]
    return None


def field_errors(
    fields: Sequence[Field], errors: Sequence[Mapping[str, Any]]
) -> dict[str, Message]:
    """The service's field-level errors (``{"field": pointer, "message": …}``, as
    ``ClaimsInvalid`` carries them) by form field name, in plain words.  A "missing"
    error at an object names its missing claims: each becomes its own field's error.  An
    error no field owns is given under the name ``claims``."""
    out: dict[str, Message] = {}

    def put(item: Field | None, message: Message) -> None:
        target = item.name if item is not None and item.kind != "group" else PREFIX
        if item is not None and item.kind == "group":
            firsts = [c for c in walk(item.children) if c.kind != "group"]
            target = firsts[0].name if firsts else PREFIX
        out.setdefault(target, message)

    for error in errors:
        pointer = str(error.get("field", "/")).rstrip("/")
        text = str(error.get("message", ""))
        if text.startswith("missing "):
            for name in text.removeprefix("missing ").split(", "):
                put(_owner(fields, f"{pointer}/{name}"), _plain(None, "required"))
        elif text.startswith("must be one of"):
            put(_owner(fields, pointer), _plain(None, "enum"))
        elif text.startswith("does not open"):
            owner = _owner(fields, pointer + "/score") or _owner(fields, pointer)
            put(owner, _plain(None, "opening"))
        else:
            found = _RULE.search(text)
            item = _owner(fields, pointer)
            put(item, _plain(item, found.group(1) if found else ""))
    # A claim the platform computes is missing only because what it is computed from was
    # refused (a score that is not a whole number): that error says what to fix.
    computed = {item.name for item in walk(fields) if item.computed}
    if set(out) - computed:
        required = _plain(None, "required")
        out = {k: v for k, v in out.items() if k not in computed or v != required}
    return out
