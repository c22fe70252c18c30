"""The lender's proof page in a browser at a phone's width (web/lender_proofs.py; issue 18's
"Done when" through the console), in English on SQLite: a lender's staff member signs in,
asks at ``/lender/proofs/new`` for a proof that the score is at least 650 (a bad number
first, refused next to its field), the page ``/lender/proofs/{id}`` shows the wallet's
request; the borrower's wallet (``wallet.oid4vp.respond``, the service function ``commons
wallet present <url>`` runs) reads that request from the page, proves the predicate and
answers the live server; the page, checked again, shows the decision and no score.
axe-core on both pages (no serious or critical violation) and their screenshots in
docs/console/."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from tests.browser.live import LiveServer
from tests.browser.support import Network

from credit_commons import lenders
from credit_commons.core.db import transaction
from credit_commons.core.net import OutboundFetcher
from credit_commons.identity import Principal
from credit_commons.wallet.oid4vp import PresentationPlan, ReadRequest, respond
from credit_commons.wallet.store import Wallet
from credit_commons.zk import registry

CRC = "CreditReadinessCredential"
SCORE = 712
THETA = 650


def _borrowers_wallet(server: LiveServer, path: Path) -> Wallet:
    """A borrower's wallet holding a Credit Readiness Credential with score ``SCORE``,
    issued by the issuer desk's API to the wallet's key (with the ZK commitments: the
    engine's statements are registered first)."""
    with transaction(server.runtime.sessions) as session:
        registry.register_dev_statements(
            session, server.runtime, actor=server.runtime.operator_actor("zk")
        )
    wallet = Wallet.create(path, "pass")
    borrower = server.register_identity(f"Meena Dairy {secrets.token_hex(3)}")
    issued = server.issue_credential(borrower, wallet.holder_key, score=SCORE)
    wallet.add_credential(
        issued["credential"],
        issuer=server.base,
        configuration=CRC,
        received_at=datetime.now(UTC).isoformat(),
    )
    return wallet


class _TlsTerminator(httpx.BaseTransport):
    # What a TLS terminator in front of the live server would do: the page's request names
    # the platform's did:web, which resolves over https (did:web, §3.2); the live server
    # speaks http on loopback.  Every other URL (the request object, the registry, the
    # response) is the server's own http one, passed through as it is.
    def __init__(self, base: str) -> None:
        self._https = base.replace("http://", "https://", 1)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if str(request.url).startswith(self._https):
            request.url = request.url.copy_with(scheme="http")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _answer(server: LiveServer, wallet: Wallet, wallet_url: str) -> None:
    # The wallet on this machine: loopback is a development platform's address, as
    # `commons wallet present` allows outside production (cli/wallet_platform.py).
    transport = _TlsTerminator(server.base)
    fetcher = OutboundFetcher(allow_loopback=True, transport=transport)

    def confirm(chosen: PresentationPlan, read: ReadRequest) -> bool:
        del read
        assert [p.claims for p in chosen.presentations] == [("zk_commitments",)]
        return True

    try:
        outcome = respond(wallet, wallet_url, confirm=confirm, fetcher=fetcher, transport=transport)
    finally:
        fetcher.close()
        transport.close()
    assert outcome.sent


def test_the_lender_asks_for_a_proof_and_sees_the_decision_without_the_score(
    page: Page,
    server: LiveServer,
    network: Network,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
    tmp_path: Path,
) -> None:
    wallet = _borrowers_wallet(server, tmp_path / "wallet.json")
    lender = server.register_lender(f"Gramin Cooperative Bank {secrets.token_hex(3)}")
    with transaction(server.runtime.sessions) as session:
        made = lenders.issue_console_token(
            session,
            server.runtime,
            Principal("admin:test", "admin"),
            lender.client_id,
            label="Loans desk",
        )
    page.goto("/signin/lender?next=/lender/proofs/new")
    page.locator("#field-token").fill(made.token)
    page.locator('main form button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/lender/proofs/new$"))

    # The form: a number the statement does not allow first, refused next to its field.
    expect(page.locator("h1")).to_have_text("Ask for a proof of the score")
    page.locator("#threshold").fill("99999999")
    page.locator('main form[action="/lender/proofs"] button[type="submit"]').click()
    expect(page.locator("#threshold")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#threshold-error")).to_have_text(
        "Give a whole number the statement allows."
    )
    check_accessibility(page)
    page.locator("#threshold").fill(str(THETA))
    check_accessibility(page)
    screenshot(page, "lender-proof-new-en")
    page.locator('main form[action="/lender/proofs"] button[type="submit"]').click()

    # The request's page: the statement asked, the wallet's code and address, no decision.
    expect(page).to_have_url(re.compile(r"/lender/proofs/vpt_[A-Za-z0-9]+$"))
    expect(page.locator("dl.terms")).to_contain_text(f"The score is at least {THETA}")
    expect(page.locator("figure.qr img")).to_be_visible()
    expect(page.locator("#decision")).to_have_count(0)
    wallet_url = page.locator("#wallet-url").inner_text()
    assert wallet_url.startswith("openid4vp://?")
    check_accessibility(page)
    screenshot(page, "lender-proof-pending-en")

    # The borrower's wallet answers; the lender checks again.
    _answer(server, wallet, wallet_url)
    deadline = time.monotonic() + 120
    while not page.locator("#decision").count():
        assert time.monotonic() < deadline, "the page never showed the decision"
        page.locator('main a:has-text("Check again")').click()
    expect(page.locator("#decision")).to_have_class(re.compile(r"\bcheck-ok\b"))
    expect(page.locator("#decision")).to_contain_text("Proved.")
    expect(page.locator("dl.terms")).to_contain_text(f"The score is at least {THETA}")
    expect(page.locator("#wallet-url")).to_have_count(0)
    assert str(SCORE) not in page.content()
    check_accessibility(page)
    screenshot(page, "lender-proof-decided-en")
    assert network.blocked == []
