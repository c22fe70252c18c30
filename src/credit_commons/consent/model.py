"""The consent model (pure): purposes, templates, the request schema, the check, use
counting and the artefact's content.

Modelled on the Account Aggregator consent (ReBIT ``ConsentDetail``): a purpose (the AA
codes 101-105 and platform codes), a mode (``VIEW``: look, do not keep; ``STORE``: may keep
for the data life), a fetch type (``ONETIME`` or ``PERIODIC`` with a frequency), the data
life, a validity window, the data consumer (the lender's client id) and the data principal
(the borrower's pseudonym).  Where the AA consent lists FI types, a consent here lists
*scopes*: credential types and the claim paths that may be disclosed.

Durations use fixed lengths: an hour, a day, a month of 30 days, a year of 365 days.
Templates cap what a request may ask for (fair use): a loan-underwriting consent is
one-time, valid for at most a month, and its data life is at most a month.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from credit_commons.consent.errors import (
    ConsentExpired,
    ConsentNotActive,
    ConsentNotYetValid,
    ConsentPaused,
    ConsentRequestInvalid,
    ConsentRevoked,
    ScopeNotGranted,
    UseExceeded,
)
from credit_commons.core.encoding import JsonObject

__all__ = [
    "PURPOSES",
    "TEMPLATES",
    "UNIT_SECONDS",
    "ConsentRequest",
    "ConsentStatus",
    "ConsentView",
    "Period",
    "Scope",
    "Template",
    "evaluate",
    "next_use",
    "scopes_map",
    "use_window",
    "was_assisted",
]


class ConsentStatus(StrEnum):
    """Where a consent is in its lifecycle (see docs/consent.md for the transitions)."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    REJECTED = "REJECTED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


UNIT_SECONDS: Mapping[str, int] = {
    "HOUR": 3_600,
    "DAY": 86_400,
    "MONTH": 30 * 86_400,
    "YEAR": 365 * 86_400,
}

#: ReBIT AA purpose codes (text as the AA specification gives it) and platform codes.
PURPOSES: Mapping[str, str] = {
    "101": "Wealth management service",
    "102": "Customer spending patterns, budget or other reportings",
    "103": "Aggregated statement",
    "104": "Explicit consent for monitoring of the accounts",
    "105": "Explicit one-time consent for the accounts",
    "loan.underwriting": "Assess a loan application",
    "loan.monitoring": "Monitor a running loan",
}


@dataclass(frozen=True)
class Template:
    """What a kind of consent may ask for: purposes, fetch type and caps."""

    name: str
    purposes: frozenset[str]
    fetch_types: frozenset[str]
    max_validity: timedelta
    max_data_life_seconds: int
    max_fetches_per_day: float


TEMPLATES: Mapping[str, Template] = {
    t.name: t
    for t in (
        Template(
            name="loan_underwriting",
            purposes=frozenset({"105", "loan.underwriting"}),
            fetch_types=frozenset({"ONETIME"}),
            max_validity=timedelta(days=30),
            max_data_life_seconds=UNIT_SECONDS["MONTH"],
            max_fetches_per_day=1,
        ),
        Template(
            name="loan_monitoring",
            purposes=frozenset({"104", "loan.monitoring"}),
            fetch_types=frozenset({"PERIODIC"}),
            max_validity=timedelta(days=365),
            max_data_life_seconds=UNIT_SECONDS["YEAR"],
            max_fetches_per_day=1,
        ),
    )
}

_PATH = Annotated[str, StringConstraints(pattern=r"^(/[A-Za-z0-9_]{1,64}){1,4}$")]
_Unit = Literal["HOUR", "DAY", "MONTH", "YEAR"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Strict):
    """``{unit, value}``: a frequency (fetches per unit) or a data life (how long)."""

    unit: _Unit
    value: Annotated[int, Field(ge=1, le=1000)]

    def seconds(self) -> int:
        """The period's length in seconds (value x unit)."""
        return self.value * UNIT_SECONDS[self.unit]


class Scope(_Strict):
    """A credential type and the claim paths of it that may be disclosed."""

    type: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]{2,63}$")]
    claims: Annotated[list[_PATH], Field(max_length=32)] = []


class ConsentRequest(_Strict):
    """A lender's consent request (``POST /v1/consents``)."""

    template: Annotated[str, StringConstraints(pattern=r"^[a-z_]{3,40}$")]
    borrower: Annotated[
        str, StringConstraints(pattern=r"^(idt_[A-Za-z0-9]{22}|bref_[A-Za-z0-9_-]{20,400})$")
    ]
    purpose: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]{3,40}$")]
    mode: Literal["VIEW", "STORE"] = "VIEW"
    fetch_type: Literal["ONETIME", "PERIODIC"] = "ONETIME"
    frequency: Period = Period(unit="DAY", value=1)
    data_life: Period = Period(unit="MONTH", value=1)
    consent_start: datetime | None = None
    consent_expiry: datetime
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=8)]

    def check_template(self, now: datetime, disclosable: Mapping[str, tuple[str, ...]]) -> None:
        """Apply the template's caps and the catalogue; raises ``ConsentRequestInvalid``.

        ``disclosable`` maps each known credential type to its disclosable claim paths.
        """
        template = TEMPLATES.get(self.template)
        if template is None:
            raise ConsentRequestInvalid("unknown consent template", extra={"field": "template"})
        start = self.consent_start or now
        problems: list[dict[str, str]] = []
        if self.purpose not in PURPOSES or self.purpose not in template.purposes:
            problems.append({"field": "purpose", "message": "not a purpose of this template"})
        if self.fetch_type not in template.fetch_types:
            problems.append({"field": "fetch_type", "message": "not allowed by this template"})
        if start.tzinfo is None or self.consent_expiry.tzinfo is None:
            problems.append({"field": "consent_expiry", "message": "times need a UTC offset"})
        elif self.consent_expiry <= start:
            problems.append({"field": "consent_expiry", "message": "must be after the start"})
        elif self.consent_expiry - start > template.max_validity:
            problems.append(
                {"field": "consent_expiry", "message": "longer than the template allows"}
            )
        elif start < now - timedelta(minutes=5):
            problems.append({"field": "consent_start", "message": "must not lie in the past"})
        if self.data_life.seconds() > template.max_data_life_seconds:
            problems.append({"field": "data_life", "message": "longer than the template allows"})
        per_day = self.frequency.value * UNIT_SECONDS["DAY"] / UNIT_SECONDS[self.frequency.unit]
        if self.fetch_type == "PERIODIC" and per_day > template.max_fetches_per_day:
            problems.append(
                {"field": "frequency", "message": "more often than the template allows"}
            )
        seen: set[str] = set()
        for i, scope in enumerate(self.scopes):
            paths = disclosable.get(scope.type)
            if paths is None or scope.type in seen:
                problems.append(
                    {"field": f"scopes.{i}.type", "message": "unknown or repeated type"}
                )
                continue
            seen.add(scope.type)
            if not set(scope.claims) <= set(paths):
                problems.append(
                    {"field": f"scopes.{i}.claims", "message": "not disclosable claims"}
                )
        if problems:
            raise ConsentRequestInvalid(
                "the consent request is not allowed", extra={"errors": problems}
            )


@dataclass(frozen=True)
class ConsentView:
    """What the check needs of a consent (read from its row)."""

    status: str
    starts_at: datetime
    expires_at: datetime
    fetch_type: str
    frequency_unit: str
    frequency_value: int
    scopes: Mapping[str, frozenset[str]]
    uses: int
    window: int
    window_uses: int


def evaluate(view: ConsentView, type_name: str, claims: frozenset[str], now: datetime) -> None:
    """Does the consent permit reading ``claims`` of a ``type_name`` credential now?

    Raises, in this order: ``ConsentRevoked`` (revoked or rejected), ``ConsentPaused``,
    ``ConsentExpired``, ``ConsentNotActive`` (not granted yet), ``ConsentNotYetValid``,
    ``ScopeNotGranted``, ``UseExceeded``.
    """
    status = view.status
    if status in (ConsentStatus.REVOKED, ConsentStatus.REJECTED):
        raise ConsentRevoked()
    if status == ConsentStatus.PAUSED:
        raise ConsentPaused()
    if status == ConsentStatus.EXPIRED or now >= view.expires_at:
        raise ConsentExpired()
    if status != ConsentStatus.ACTIVE:
        raise ConsentNotActive()
    if now < view.starts_at:
        raise ConsentNotYetValid()
    granted = view.scopes.get(type_name)
    if granted is None or not claims <= granted:
        raise ScopeNotGranted()
    next_use(view, now)


def next_use(view: ConsentView, now: datetime) -> tuple[int, int]:
    """The (window, uses in it) after one more fetch; raises ``UseExceeded``.

    One-time consents allow one fetch.  Periodic consents allow ``frequency_value`` fetches
    in each window of one ``frequency_unit``, windows counted from the consent's start.
    """
    if view.fetch_type == "ONETIME":
        if view.uses >= 1:
            raise UseExceeded()
        return 0, 1
    window = use_window(view, now)
    used = view.window_uses if window == view.window else 0
    if used >= view.frequency_value:
        raise UseExceeded()
    return window, used + 1


def use_window(view: ConsentView, now: datetime) -> int:
    """The frequency window ``now`` falls in: windows of one ``frequency_unit`` each,
    counted from the consent's start (0 is the first)."""
    return int((now - view.starts_at).total_seconds() // UNIT_SECONDS[view.frequency_unit])


def was_assisted(approval: str | None, facilitator: str | None) -> bool:
    """Whether a consent went (or is going) through the assisted flow: granted with
    ``approval`` ``assisted``, or still ungranted with a field agent as facilitator.  An
    owner or a delegate is a facilitator too, of a decision that was not assisted."""
    return approval == "assisted" or (approval is None and facilitator is not None)


def scopes_map(scopes: list[JsonObject]) -> dict[str, frozenset[str]]:
    """``{type: granted claim paths}`` from the stored JSON scopes."""
    return {str(s["type"]): frozenset(str(c) for c in s.get("claims", [])) for s in scopes}
