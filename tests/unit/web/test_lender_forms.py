"""The lender's request form (web/lender_forms.py): what is posted becomes the API's own
request (``ConsentRequest``), and what cannot be asked, or what the service refuses, is a
message for the field at fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from credit_commons.consent.errors import ConsentRequestInvalid
from credit_commons.consent.model import TEMPLATES, ConsentRequest
from credit_commons.core.errors import ConflictError, NotFoundError
from credit_commons.web.lender_forms import (
    FIELD_LABELS,
    RequestForm,
    errors_of,
    max_days,
    read_form,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
CRC = "CreditReadinessCredential"


def _form(**values: object) -> RequestForm:
    fields: dict[str, object] = {
        "template": "loan_underwriting",
        "borrower": "idt_" + "a" * 22,
        "purpose": "loan.underwriting",
        "facts": [f"{CRC}:/income_bracket", f"{CRC}:/debt_ratio_bracket"],
        "days": "14",
    }
    fields.update(values)
    return RequestForm(**fields)  # type: ignore[arg-type]


def test_a_form_becomes_the_apis_request() -> None:
    request = read_form(_form(), NOW)
    assert isinstance(request, ConsentRequest)
    assert request.fetch_type == "ONETIME"  # the template's only fetch type
    assert request.consent_expiry == NOW + timedelta(days=14)
    assert [(s.type, s.claims) for s in request.scopes] == [
        (CRC, ["/debt_ratio_bracket", "/income_bracket"])
    ]
    assert request.data_life.model_dump() == {"unit": "DAY", "value": 7}


def test_a_periodic_template_asks_how_often() -> None:
    request = read_form(
        _form(template="loan_monitoring", purpose="loan.monitoring", days="90"), NOW
    )
    assert isinstance(request, ConsentRequest)
    assert request.fetch_type == "PERIODIC"
    assert request.frequency.model_dump() == {"unit": "DAY", "value": 1}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"borrower": ""}, "borrower"),
        ({"borrower": "someone"}, "borrower"),
        ({"facts": []}, "facts"),
        ({"days": "0"}, "days"),
        ({"days": "31"}, "days"),
        ({"days": "2 weeks"}, "days"),
        ({"mode": "SELL"}, "mode"),
        ({"data_life_value": "0"}, "data_life"),
        ({"data_life_unit": "WEEK"}, "data_life"),
    ],
)
def test_what_cannot_be_asked_is_a_field_error(values: dict[str, object], field: str) -> None:
    errors = read_form(_form(**values), NOW)
    assert isinstance(errors, dict)
    assert field in errors
    assert set(errors) <= set(FIELD_LABELS)


def test_the_services_refusals_go_to_their_fields() -> None:
    refused = ConsentRequestInvalid(
        "the consent request is not allowed",
        extra={
            "errors": [
                {"field": "consent_expiry", "message": "longer than the template allows"},
                {"field": "scopes.0.claims", "message": "not disclosable claims"},
                {"field": "frequency", "message": "more often than the template allows"},
            ]
        },
    )
    assert set(errors_of(refused) or {}) == {"days", "facts", "frequency"}
    purpose = ConsentRequestInvalid("not registered", extra={"field": "purpose"})
    assert set(errors_of(purpose) or {}) == {"purpose"}
    assert set(errors_of(NotFoundError("no such borrower")) or {}) == {"borrower"}
    assert errors_of(ConflictError("something else")) is None  # not the form's


def test_the_templates_limits() -> None:
    assert max_days(TEMPLATES["loan_underwriting"]) == 30
    assert max_days(TEMPLATES["loan_monitoring"]) == 365
