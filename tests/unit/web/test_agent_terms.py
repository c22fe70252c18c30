"""A consent's terms in plain words (web/agent_terms.py): purposes, facts, how often and
how long a copy may be kept, in each language; values the platform has no words for are
shown as they are."""

from __future__ import annotations

from typing import Any, cast

import pytest
from sqlalchemy.orm import Session

from credit_commons.consent.schemas import ConsentView
from credit_commons.web.agent_terms import Phrase, terms_of
from credit_commons.web.render import environment


class _NoLenders:
    """A session that knows no lender (the terms then name the lender by its id)."""

    def execute(self, *_args: object) -> list[tuple[str, str]]:
        return []


def _consent(**changes: Any) -> ConsentView:
    values: dict[str, Any] = {
        "consent_id": "cns_" + "0" * 26,
        "status": "PENDING",
        "template": "loan_monitoring",
        "lender": "lnd_" + "a" * 22,
        "purpose": {"code": "loan.monitoring", "text": "Monitor a running loan"},
        "mode": "STORE",
        "fetch_type": "PERIODIC",
        "frequency": {"unit": "DAY", "value": 3},
        "data_life": {"unit": "MONTH", "value": 1},
        "consent_start": "2026-12-06T00:00:00+00:00",
        "consent_expiry": "2027-01-06T00:00:00+00:00",
        "scopes": [
            {"type": "CreditReadinessCredential", "claims": ["/income_bracket", "/x/unknown"]}
        ],
        "approval": None,
        "assisted": False,
        "uses": 0,
        "artefact": None,
        "created_at": "2026-12-06T00:00:00+00:00",
        "updated_at": "2026-12-06T00:00:00+00:00",
    }
    values.update(changes)
    return ConsentView.model_validate(values)


def _terms(**changes: Any) -> Any:
    return terms_of(cast(Session, _NoLenders()), _consent(**changes))


def test_a_periodic_consent_that_may_be_kept() -> None:
    terms = _terms()
    assert terms.lender == "lnd_" + "a" * 22  # unknown lender: its id
    assert terms.purpose == Phrase("Following a loan you already have")
    assert terms.how_often == Phrase("At most %(count)s times a day", count=3)
    assert terms.keep == Phrase("1 month", count=1)
    (credential, facts), *_ = terms.facts
    assert credential == Phrase("Credit readiness certificate")
    assert facts == [Phrase("Your income range"), Phrase(text="/x/unknown")]
    assert terms.until.isoformat() == "2027-01-06T00:00:00+00:00"


def test_a_one_time_look() -> None:
    terms = _terms(
        mode="VIEW",
        fetch_type="ONETIME",
        frequency={"unit": "DAY", "value": 1},
        purpose={"code": "999", "text": "Something new"},
    )
    assert terms.how_often == Phrase("Only once")
    assert terms.keep is None
    assert terms.purpose == Phrase(text="Something new")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en", "At most 3 times a day"),
        ("hi", "एक दिन में ज़्यादा से ज़्यादा 3 बार"),
        ("ur", "ایک دن میں زیادہ سے زیادہ 3 بار"),
    ],
)
def test_the_terms_render_in_each_language(code: str, expected: str) -> None:
    template = environment(code).from_string(
        '{% import "agent/_terms.html" as t %}{{ t.terms(terms) }}'
    )
    rendered = template.render(terms=_terms())
    assert expected in rendered
    assert "/x/unknown" in rendered
    assert "lnd_" + "a" * 22 in rendered
