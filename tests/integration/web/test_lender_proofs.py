"""Issue 18's "Done when" through the lender's console, on SQLite and PostgreSQL: the
lender asks at ``/lender/proofs`` for a proof that the score is at least θ = 650; the
borrower's real wallet (``wallet.oid4vp.respond``) answers the page's wallet URL; the
proof page shows the decision, the statement and θ, and no score.  Below θ no proof is
accepted; the form's CSRF, rate limit, bad θ and another lender's request."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import GENEROUS_RATE_LIMITS
from tests.e2e.test_zk_oid4vp_http import _respond, _wallet
from tests.integration.verifier_world import VpWorld, vp
from tests.integration.web.test_lender_pages import ADMIN, HTML, csrf_of

from credit_commons import lenders
from credit_commons.core.db import transaction
from credit_commons.gateway.ratelimit import LIMITERS, RateLimits
from credit_commons.gateway.route_groups import classify
from credit_commons.verifier.models import VpTransactionRow
from credit_commons.wallet.zk_proofs import PredicateUnprovable
from credit_commons.zk import registry

__all__ = ["vp"]

THETA = 650
_WALLET_URL = re.compile(r'<code class="uri" id="wallet-url">([^<]+)</code>')


@pytest.fixture(autouse=True)
def _statements(vp: VpWorld) -> None:
    with transaction(vp.rt.sessions) as session:
        registry.register_dev_statements(session, vp.rt, actor=vp.rt.operator_actor("zk"))


def _sign_in(vp: VpWorld, client_id: str | None = None) -> None:
    with transaction(vp.rt.sessions) as session:
        made = lenders.issue_console_token(
            session, vp.rt, ADMIN, client_id or vp.lender, label="Loans desk", days=30
        )
    page = vp.http.get("/signin/lender", headers=HTML)
    answer = vp.http.post(
        "/signin/lender",
        data={"csrf_token": csrf_of(page), "token": made.token, "next": "/lender"},
        headers=HTML,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def _ask(vp: VpWorld, threshold: str = str(THETA)) -> httpx.Response:
    form = vp.http.get("/lender/proofs/new", headers=HTML)
    assert form.status_code == 200, form.text
    return vp.http.post(
        "/lender/proofs",
        data={"csrf_token": csrf_of(form), "threshold": threshold},
        headers=HTML,
        follow_redirects=False,
    )


def _asked(vp: VpWorld) -> tuple[str, str]:
    # The proof page's path and the wallet URL it shows.
    made = _ask(vp)
    assert made.status_code == 303, made.text
    path = made.headers["location"]
    assert re.fullmatch(r"/lender/proofs/vpt_[A-Za-z0-9]+", path)
    page = vp.http.get(path, headers=HTML)
    assert page.status_code == 200
    found = _WALLET_URL.search(page.text)
    assert found, page.text
    qr = vp.http.get(path + "/qr.svg", headers=HTML)
    assert qr.status_code == 200
    assert qr.headers["content-type"].startswith("image/svg+xml")
    return path, unescape(found.group(1))


def test_the_lender_page_asks_for_score_at_least_650_and_shows_only_the_decision(
    vp: VpWorld, tmp_path: Path
) -> None:
    wallet = _wallet(vp, tmp_path / "wallet.json", score=712)
    _sign_in(vp)
    path, wallet_url = _asked(vp)
    assert wallet_url.startswith("openid4vp://?")
    outcome, (chosen,) = _respond(vp, wallet, wallet_url)
    assert outcome.sent
    assert [p.claims for p in chosen.presentations] == [("zk_commitments",)]
    page = vp.http.get(path, headers=HTML)
    assert page.status_code == 200
    assert 'id="decision">Proved.' in page.text
    assert "The score is at least 650" in page.text
    assert "score_at_least" in page.text
    assert "712" not in page.text
    assert 'id="wallet-url"' not in page.text
    # The API's record of the same transaction agrees.
    status = vp.status(path.rsplit("/", 1)[1])
    assert (status["decision"], status["reason"]) == ("allow", None)
    # No redirect_uri, so no response code: the disclosed claims were never kept.
    with transaction(vp.rt.sessions) as session:
        row = session.get(VpTransactionRow, path.rsplit("/", 1)[1])
        assert row is not None
        assert row.redirect_uri is None
        assert row.claims is None


def test_below_the_threshold_no_proof_is_accepted(vp: VpWorld, tmp_path: Path) -> None:
    wallet = _wallet(vp, tmp_path / "wallet.json", score=THETA - 1)
    _sign_in(vp)
    path, wallet_url = _asked(vp)
    with pytest.raises(PredicateUnprovable):
        _respond(vp, wallet, wallet_url)
    page = vp.http.get(path, headers=HTML)
    assert 'id="decision">Not proved.' in page.text
    assert "wallet_error" in page.text
    assert "Proved." not in page.text
    assert str(THETA - 1) not in page.text


@pytest.mark.parametrize("threshold", ["", "abc", "-1", "99999999"])
def test_a_bad_threshold_is_a_form_error(vp: VpWorld, threshold: str) -> None:
    _sign_in(vp)
    answer = _ask(vp, threshold)
    assert answer.status_code == 422
    assert "Give a whole number the statement allows." in answer.text


def test_the_form_needs_a_signed_in_lender_and_its_csrf_token(vp: VpWorld) -> None:
    # Not signed in: to the sign-in page.  Signed in, no CSRF token: refused.  No request made.
    page = vp.http.get("/lender/proofs/new", headers=HTML, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/signin?next=/lender/proofs/new"
    _sign_in(vp)
    answer = vp.http.post(
        "/lender/proofs", data={"threshold": "650"}, headers=HTML, follow_redirects=False
    )
    assert answer.status_code == 403
    with transaction(vp.rt.sessions) as session:
        assert session.scalars(select(VpTransactionRow.id)).all() == []


def test_another_lenders_request_is_not_found(vp: VpWorld) -> None:
    _sign_in(vp)
    path, _ = _asked(vp)
    other = vp.http.post(
        "/v1/admin/lenders",
        json={
            "name": "Other Bank",
            "jwks": {
                "keys": [
                    {
                        "kty": "OKP",
                        "crv": "Ed25519",
                        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                    }
                ]
            },
            "allowed_purposes": ["loan.underwriting"],
        },
        headers=vp.admin,
    )
    assert other.status_code == 201, other.text
    vp.http.cookies.clear()
    _sign_in(vp, str(other.json()["client_id"]))
    assert vp.http.get(path, headers=HTML).status_code == 404
    assert vp.http.get(path + "/qr.svg", headers=HTML).status_code == 404


def test_asking_counts_in_the_lender_api_group(vp: VpWorld) -> None:
    assert classify("POST", "/lender/proofs") == "lender-api"
    assert classify("GET", "/lender/proofs/new") == "web"
    assert classify("GET", "/lender/proofs/vpt_x") == "web"
    limiter = RateLimits(limits={**GENEROUS_RATE_LIMITS, "lender-api.client": "1/minute"})
    LIMITERS.set(vp.rt, limiter)
    try:
        _sign_in(vp)
        assert _ask(vp).status_code == 303
        refused = _ask(vp)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("text/html")
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        limiter.close()
