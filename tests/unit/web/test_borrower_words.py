"""The borrower's plain words (web/borrower_words.py) and the server's receipt mark
(web/borrower_history.py): every known code has words, an unknown one is shown as it is,
and a receipt is "verified" only when the ledger's verifier passes every step."""

from __future__ import annotations

from credit_commons.consent.model import PURPOSES as CONSENT_PURPOSES
from credit_commons.consent.model import ConsentStatus
from credit_commons.consent.schemas import AccessRecord
from credit_commons.issuer import CREDIT_READINESS
from credit_commons.ledger import Receipt
from credit_commons.web.borrower_history import FAILED, PENDING, check_receipt
from credit_commons.web.borrower_words import FACTS, PURPOSES, STATUSES, fact, word


def test_every_purpose_and_status_has_plain_words() -> None:
    assert set(PURPOSES) == set(CONSENT_PURPOSES)
    assert set(STATUSES) == {s.value for s in ConsentStatus}


def test_every_disclosable_fact_of_the_catalogue_has_plain_words() -> None:
    assert set(CREDIT_READINESS.disclosable) <= set(FACTS)
    for name in CREDIT_READINESS.schema["properties"]:
        assert "/" + name in FACTS


def test_an_unknown_code_is_shown_as_it_is() -> None:
    assert word(STATUSES, "SOMETHING_NEW") == "SOMETHING_NEW"
    assert word(STATUSES, None) == ""
    assert fact("/new_claim/monthly_turnover") == "monthly turnover"


def _record(receipt: Receipt | None) -> AccessRecord:
    return AccessRecord(
        event_id="evt_01JEXAMPLE0000000000000000",
        at="2026-12-06T10:00:00+00:00",
        outcome="allowed",
        actor="p1:x",
        actor_kind="lender",
        lender="lnd_x",
        lender_name="Bank",
        consent_id=None,
        operation="credentials.read",
        reason=None,
        receipt=receipt,
    )


def test_no_receipt_yet_is_pending() -> None:
    assert check_receipt(_record(None), "log+00000000+AAAA").state == PENDING


def test_a_malformed_receipt_fails_and_is_not_hidden() -> None:
    broken = Receipt(
        format="credit-commons-receipt/v1",
        index=0,
        entry="{}",
        inclusion_proof=[],
        checkpoint="not a signed note",
        event=None,
    )
    assert check_receipt(_record(broken), "log+00000000+AAAA").state == FAILED
