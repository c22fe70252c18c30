"""The lender's consent-request form: what a template lets the lender choose, the form's
fields read into the API's own request model (``consent.model.ConsentRequest``, the body of
``POST /v1/consents``), and every refusal turned into a message next to its field.

The form asks in plain terms — how many days the consent lasts, how long the facts may be
kept, which facts — and builds the same request a lender's program would send; the
service then applies the template's caps and the catalogue exactly as for the API, and
its refusals (``consent.request_invalid`` with the fields at fault, an unknown borrower)
come back here as field errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pydantic

from credit_commons.consent.model import TEMPLATES, ConsentRequest, Template
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.web.i18n import N_

__all__ = [
    "CLAIM_LABELS",
    "FIELD_LABELS",
    "PURPOSE_LABELS",
    "TEMPLATE_LABELS",
    "UNITS",
    "RequestForm",
    "errors_of",
    "max_days",
    "read_form",
]

UNITS = ("HOUR", "DAY", "MONTH", "YEAR")

TEMPLATE_LABELS: Mapping[str, str] = {
    "loan_underwriting": N_("Loan application: look at the facts once"),
    "loan_monitoring": N_("Running loan: look at the facts regularly"),
}
PURPOSE_LABELS: Mapping[str, str] = {
    "101": N_("Wealth management service"),
    "102": N_("Customer spending patterns, budget or other reports"),
    "103": N_("Aggregated statement"),
    "104": N_("Monitoring of the accounts (explicit consent)"),
    "105": N_("One-time look at the accounts (explicit consent)"),
    "loan.underwriting": N_("Assess a loan application"),
    "loan.monitoring": N_("Monitor a running loan"),
}
CLAIM_LABELS: Mapping[str, str] = {
    "/credit_tier": N_("Credit tier"),
    "/income_bracket": N_("Income bracket"),
    "/debt_ratio_bracket": N_("Debt ratio bracket"),
    "/score_opening": N_("Credit score"),
    "/score_commitment": N_("Score commitment"),
    "/enterprise/identity_token": N_("Enterprise reference"),
    "/enterprise/gstin_pseudonym": N_("GST registration (pseudonym)"),
    "/enterprise/udyam_pseudonym": N_("Udyam registration (pseudonym)"),
    "/verification_sources": N_("How the facts were checked"),
}
FIELD_LABELS: Mapping[str, str] = {
    "borrower": N_("Borrower"),
    "purpose": N_("Purpose of the request"),
    "facts": N_("Facts to ask for"),
    "mode": N_("What you may do with the facts"),
    "days": N_("How many days the consent lasts"),
    "data_life": N_("How long you may keep the facts"),
    "frequency": N_("How often you may look"),
}
_MESSAGES: Mapping[str, str] = {
    "borrower": N_("Enter the borrower's reference. It starts with idt_ or bref_."),
    "purpose": N_("Choose a purpose this kind of consent allows."),
    "facts": N_("Choose at least one fact, only from the list."),
    "mode": N_("Choose whether you will only look at the facts or keep them."),
    "days": N_("Enter a whole number of days within the limit shown."),
    "data_life": N_("Enter a whole number within the limit shown."),
    "frequency": N_("Look at most as often as the limit shown."),
}
_UNKNOWN_BORROWER = N_("No borrower has this reference. Check it and try again.")
# Where each member of the API's request (and of its refusals) is on this form.
_FIELD_OF: Mapping[str, str] = {
    "borrower": "borrower",
    "purpose": "purpose",
    "mode": "mode",
    "fetch_type": "frequency",
    "frequency": "frequency",
    "data_life": "data_life",
    "consent_start": "days",
    "consent_expiry": "days",
    "scopes": "facts",
    "template": "purpose",
}


def max_days(template: Template) -> int:
    """The longest a consent of ``template`` may last, in whole days."""
    return max(1, template.max_validity // timedelta(days=1))


@dataclass
class RequestForm:
    """What the lender entered (strings, as posted), and the request built from it."""

    template: str
    borrower: str = ""
    purpose: str = ""
    facts: list[str] = field(default_factory=list)
    mode: str = "VIEW"
    days: str = ""
    data_life_value: str = "7"
    data_life_unit: str = "DAY"
    frequency_value: str = "1"
    frequency_unit: str = "DAY"


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= 6 else None


def read_form(form: RequestForm, now: datetime) -> ConsentRequest | dict[str, str]:
    """The API's request for what ``form`` says, or the field errors (field name to an
    ``N_`` message) of what cannot even be asked."""
    template = TEMPLATES[form.template]
    errors: dict[str, str] = {}
    days = _int(form.days)
    if days is None or not 1 <= days <= max_days(template):
        errors["days"] = _MESSAGES["days"]
    scopes: dict[str, list[str]] = {}
    for fact in form.facts:
        type_name, _, path = fact.partition(":")
        scopes.setdefault(type_name, []).append(path)
    if not scopes:
        errors["facts"] = _MESSAGES["facts"]
    fetch_type = sorted(template.fetch_types)[0]
    body: dict[str, Any] = {
        "template": form.template,
        "borrower": form.borrower.strip(),
        "purpose": form.purpose,
        "mode": form.mode,
        "fetch_type": fetch_type,
        "data_life": {"unit": form.data_life_unit, "value": _int(form.data_life_value) or 0},
        "consent_expiry": (now + timedelta(days=days or 1)).isoformat(),
        "scopes": [{"type": t, "claims": sorted(set(c))} for t, c in scopes.items()],
    }
    if fetch_type == "PERIODIC":
        body["frequency"] = {
            "unit": form.frequency_unit,
            "value": _int(form.frequency_value) or 0,
        }
    try:
        request = ConsentRequest.model_validate(body)
    except pydantic.ValidationError as e:
        for problem in e.errors():
            name = _FIELD_OF.get(str(problem["loc"][0]) if problem["loc"] else "", "purpose")
            errors.setdefault(name, _MESSAGES[name])
        return errors
    return errors or request


def errors_of(error: CommonsError) -> dict[str, str] | None:
    """The field errors of a refused request (the service's ``consent.request_invalid`` or
    an unknown borrower), or ``None`` for any other error (not the form's to show)."""
    if isinstance(error, NotFoundError):
        return {"borrower": _UNKNOWN_BORROWER}
    if error.code != "consent.request_invalid":
        return None
    extra: Mapping[str, Any] = error.extra or {}
    problems: Sequence[Mapping[str, str]] = extra.get("errors") or [
        {"field": str(extra.get("field", "purpose"))}
    ]
    errors: dict[str, str] = {}
    for problem in problems:
        member = str(problem.get("field", "purpose")).split(".")[0]
        name = _FIELD_OF.get(member, "purpose")
        errors.setdefault(name, _MESSAGES[name])
    return errors
