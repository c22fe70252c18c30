"""Predicate attestations (seed 003 §4.3): signed yes/no answers about an identity's attributes.

A relying party (a lender) asks whether claims such as ``age >= 60``, ``income_annual <=
500000`` or ``state == UP`` hold for an identity.  The platform evaluates them over the
identity's attributes and returns a JWT (RFC 7519) of the boolean results, bound to the
caller's nonce and audience.  Attribute values never leave: not in results, not in errors.

Request rules (seed 003 §16.2 ``ZK_PROOF_SCHEMA``, tightened per attribute):

* numeric — ``age``, ``income_annual``, ``land_holding``, ``dependents_count``: a finite
  number (never a boolean) of magnitude below 2**53; all six operators;
* categorical — ``state`` (two upper-case letters), ``gender``, ``marital_status``: a string
  of 1-64 characters without control characters, compared exactly; ``==`` and ``!=`` only;
* ``bpl_status``: a boolean; ``==`` and ``!=`` only.

Evaluation fails closed: a claim is satisfied only when the attribute is held, has the
expected type and the comparison holds.  A missing attribute gives ``satisfied: false``, not
an error or an "unknown", so the response has one shape whatever is on file and does not say
what is on file (non-oracular), and ``true`` is only ever signed for an established fact.
(Asking both ``state == UP`` and ``state != UP`` shows that neither is established; it never
shows a value.)

This module is the issuing side, the identity domain's: the request rules, the evaluation
and the signed claim set (:class:`Attestation`), made by the platform's one compact-JWS
module (``formats/jws.py``) with explicit typing.  A relying party's check of a token is
:func:`credit_commons.verifier.predicates.verify_attestation`, which parses the same
:class:`Attestation`.

A :class:`PredicateInvalid` names the claim (by index) and the rule it broke, never the value
given: error details end up in logs and problem+json responses.
"""

from __future__ import annotations

import math
import operator
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from credit_commons.core.clock import utc
from credit_commons.core.encoding import canonical_json
from credit_commons.core.errors import ValidationError
from credit_commons.formats.jws import sign_compact
from credit_commons.keys import Signer, check_alg

__all__ = [
    "ATTESTATION_TYP",
    "Attestation",
    "Attribute",
    "Claim",
    "ClaimResult",
    "Operator",
    "PredicateInvalid",
    "PredicateRequest",
    "evaluate",
    "sign_attestation",
]

ATTESTATION_TYP: Final = "predicate-attestation+jwt"  # RFC 8725 §3.11 explicit typing


class PredicateInvalid(ValidationError):
    """A predicate request, or one of its claims, breaks the request rules.

    ``index`` is the 0-based position of the offending claim (``None`` when the problem is
    the request itself) and ``field`` the member at fault; both are also in ``extra``.
    """

    code = "identity.predicate_invalid"
    title = "Invalid predicate request"

    def __init__(self, reason: str, *, index: int | None = None, field: str | None = None) -> None:
        where = ".".join(p for p in (f"claims[{index}]" if index is not None else "", field) if p)
        extra: dict[str, object] = {}
        if index is not None:
            extra["claim_index"] = index
        if field is not None:
            extra["field"] = field
        super().__init__(f"{where or 'request'}: {reason}", extra=extra)
        self.reason = reason
        self.index = index
        self.field = field


class Attribute(StrEnum):
    """The attributes a predicate may be about (seed 003 §16.2)."""

    AGE = "age"
    INCOME_ANNUAL = "income_annual"
    STATE = "state"
    GENDER = "gender"
    BPL_STATUS = "bpl_status"
    LAND_HOLDING = "land_holding"
    MARITAL_STATUS = "marital_status"
    DEPENDENTS_COUNT = "dependents_count"


class Operator(StrEnum):
    """The comparison operators (seed 003 §16.2)."""

    EQ = "=="
    NE = "!="
    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"


_NUMERIC: Final = frozenset(
    {Attribute.AGE, Attribute.INCOME_ANNUAL, Attribute.LAND_HOLDING, Attribute.DEPENDENTS_COUNT}
)
_COMPARE: Final[Mapping[Operator, Callable[[Any, Any], bool]]] = {
    Operator.EQ: operator.eq,
    Operator.NE: operator.ne,
    Operator.GE: operator.ge,
    Operator.LE: operator.le,
    Operator.GT: operator.gt,
    Operator.LT: operator.lt,
}
_MAX_NUMBER: Final = 2**53 - 1  # I-JSON (RFC 7493 §2.2) and RFC 8785 §3.2.2.3: exact everywhere
_STATE: Final = re.compile(r"[A-Z]{2}")
_CATEGORY: Final = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_VISIBLE: Final = re.compile(r"[!-~]{1,255}")
_MAX_NUMERIC_DATE: Final = 253_402_300_799  # 9999-12-31T23:59:59Z, the last datetime can hold

ClaimValue = (
    StrictBool
    | StrictInt
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | Annotated[StrictStr, Field(max_length=64)]
)


def _invalid(error: PydanticValidationError) -> PredicateInvalid:
    # Built from the error's type and location only: pydantic's own text may echo the input.
    first = error.errors(include_url=False, include_input=False)[0]
    loc = first["loc"]
    if first["type"] == "extra_forbidden":
        return PredicateInvalid("unknown member")
    field = str(loc[0]) if loc else None
    if field == "value" and first["type"] != "missing":
        return PredicateInvalid(
            "must be a number, a string of 1-64 characters or a boolean", field=field
        )
    return PredicateInvalid(first["msg"], field=field)


class Claim(BaseModel):
    """One claim, ``attribute operator value``; it exists only if it obeys the type rules.

    Raises :class:`PredicateInvalid` (never pydantic's error, which would echo the input).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: Attribute
    operator: Operator
    value: ClaimValue

    @model_validator(mode="wrap")
    @classmethod
    def _validate(cls, data: Any, handler: ModelWrapValidatorHandler[Claim]) -> Claim:
        try:
            claim = handler(data)
        except PydanticValidationError as e:
            raise _invalid(e) from None
        attribute, value = claim.attribute, claim.value
        if attribute in _NUMERIC:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PredicateInvalid(f"{attribute} takes a number", field="value")
            if abs(value) > _MAX_NUMBER:
                raise PredicateInvalid("number out of range", field="value")
            return claim
        if claim.operator not in (Operator.EQ, Operator.NE):
            raise PredicateInvalid(f"{attribute} takes only == or !=", field="operator")
        if attribute is Attribute.BPL_STATUS:
            if not isinstance(value, bool):
                raise PredicateInvalid(f"{attribute} takes a boolean", field="value")
        elif attribute is Attribute.STATE:
            if not isinstance(value, str) or not _STATE.fullmatch(value):
                raise PredicateInvalid("state takes a two-letter upper-case code", field="value")
        elif not isinstance(value, str) or not _CATEGORY.fullmatch(value):
            raise PredicateInvalid(
                f"{attribute} takes a string without control characters", field="value"
            )
        return claim

    @property
    def text(self) -> str:
        """The claim as text: ``age >= 60``, ``state == UP``, ``bpl_status == true``."""
        value = self.value
        shown = value if isinstance(value, str) else canonical_json(value).decode("ascii")
        return f"{self.attribute} {self.operator} {shown}"


class PredicateRequest(BaseModel):
    """A caller's request: 1-10 claims, the caller's nonce and the audience to bind to.

    Raises :class:`PredicateInvalid`, naming the claim's index where a claim is at fault.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    claims: Annotated[tuple[Claim, ...], Field(min_length=1, max_length=10)]
    nonce: Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
    audience: Annotated[StrictStr, StringConstraints(pattern=r"^[!-~]{1,255}$")]

    @model_validator(mode="wrap")
    @classmethod
    def _validate(
        cls, data: Any, handler: ModelWrapValidatorHandler[PredicateRequest]
    ) -> PredicateRequest:
        try:
            return handler(data)
        except PydanticValidationError as e:
            raise _invalid(e) from None

    @field_validator("claims", mode="before")
    @classmethod
    def _claims(cls, value: Any) -> Any:
        # Count before validating items, so an oversized list costs nothing.
        if not isinstance(value, list | tuple) or not 1 <= len(value) <= 10:
            raise PredicateInvalid("must be a list of 1 to 10 claims", field="claims")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(item if isinstance(item, Claim) else Claim.model_validate(item))
            except PredicateInvalid as e:
                raise PredicateInvalid(e.reason, index=index, field=e.field) from None
        return out


class ClaimResult(BaseModel):
    """The answer to one claim: its text and whether it holds — never the value."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    claim: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    satisfied: bool


def _age(born: object, today: date) -> int | None:
    if isinstance(born, str) and _ISO_DATE.fullmatch(born):
        try:
            born = date.fromisoformat(born)
        except ValueError:
            return None
    if not isinstance(born, date) or isinstance(born, datetime) or born > today:
        return None
    # Full years.  Someone born on 29 February turns a year older on 1 March in common years.
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _holds(claim: Claim, attributes: Mapping[str, object], today: date) -> bool:
    held: object
    if claim.attribute is Attribute.AGE:
        held = _age(attributes.get("birth_date"), today)
    else:
        held = attributes.get(claim.attribute.value)
    if claim.attribute in _NUMERIC:
        typed = isinstance(held, int | float) and not isinstance(held, bool) and math.isfinite(held)
    else:
        typed = isinstance(held, bool if isinstance(claim.value, bool) else str)
    return typed and _COMPARE[claim.operator](held, claim.value)


def evaluate(
    request: PredicateRequest, attributes: Mapping[str, object], *, today: date
) -> list[ClaimResult]:
    """Answer each claim of ``request`` over ``attributes``, in order.

    ``age`` is the number of full years from ``attributes["birth_date"]`` (an ISO date) to
    ``today``; other attributes are read by name.  A missing or ill-typed attribute makes its
    claim unsatisfied (see the module docstring).  Raises nothing.
    """
    return [
        ClaimResult(claim=c.text, satisfied=_holds(c, attributes, today)) for c in request.claims
    ]


def sign_attestation(
    results: Sequence[ClaimResult],
    *,
    subject: str,
    request: PredicateRequest,
    issuer: str,
    signer: Signer,
    kid: str,
    now: datetime,
    ttl: timedelta = timedelta(minutes=5),
    jti: str | None = None,
) -> str:
    """The compact JWS (RFC 7515 §7.1) of a JWT (RFC 7519 §7.1) attesting ``results``.

    ``jti`` defaults to 128 random bits.  Raises :class:`ValidationError` when the results do
    not answer ``request`` claim for claim, ``subject`` is not an identity token (``idt_…``),
    ``issuer`` or ``kid`` is not 1-255 visible ASCII characters, ``jti`` is empty or ``ttl``
    is under a second, and ``AlgorithmNotAllowed`` when the signer's ``alg`` is not accepted.
    """
    if [r.claim for r in results] != [c.text for c in request.claims]:
        raise ValidationError("the results do not answer the request's claims")
    if not _VISIBLE.fullmatch(kid):
        raise ValidationError("kid must be 1-255 visible ASCII characters")
    lifetime = int(ttl.total_seconds())
    if lifetime < 1:
        raise ValidationError("ttl must be at least one second")
    check_alg(signer.alg, signer.key_type)
    issued_at = int(utc(now).timestamp())  # RFC 7519 §2 NumericDate
    try:  # Built through the model verification parses, so only acceptable tokens are made.
        claims = Attestation(
            iss=issuer,
            sub=subject,
            aud=request.audience,
            nonce=request.nonce,
            iat=issued_at,
            exp=issued_at + lifetime,
            jti=jti if jti is not None else secrets.token_urlsafe(16),
            results=tuple(results),
            all_satisfied=all(r.satisfied for r in results),
        )
    except PydanticValidationError as e:
        raise ValidationError("issuer, subject, jti or expiry is not acceptable") from e
    payload = claims.model_dump(mode="json")
    # RFC 7515 §5.1 steps 1-6: BASE64URL(header) "." BASE64URL(payload), then sign its ASCII.
    return sign_compact({"typ": ATTESTATION_TYP, "kid": kid}, payload, signer)


class Attestation(BaseModel):
    """The claim set of a verified predicate attestation, named as in RFC 7519 §4.1.

    ``iat`` and ``exp`` are NumericDates (RFC 7519 §2).  A relying party compares ``sub``
    with the identity it asked about and ``results`` with the claims it asked.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    iss: Annotated[str, StringConstraints(pattern=r"^[!-~]{1,255}$")]
    sub: Annotated[str, StringConstraints(pattern=r"^idt_[a-zA-Z0-9]{12,32}$")]  # seed 003 §16.2
    aud: str
    nonce: str
    iat: Annotated[int, Field(ge=0, le=_MAX_NUMERIC_DATE)]
    exp: Annotated[int, Field(ge=0, le=_MAX_NUMERIC_DATE)]
    jti: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    results: Annotated[tuple[ClaimResult, ...], Field(min_length=1, max_length=10, strict=False)]
    all_satisfied: bool

    @model_validator(mode="after")
    def _consistent(self) -> Attestation:
        if self.exp <= self.iat or self.all_satisfied != all(r.satisfied for r in self.results):
            raise ValueError("exp must follow iat, and all_satisfied must agree with the results")
        return self
