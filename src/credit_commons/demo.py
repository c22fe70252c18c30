"""``commons demo``: the whole story, over HTTP, on the embedded defaults.

The platform runs in this process (uvicorn on a loopback port, SQLite and the local key
file under a data directory), and every step below goes through its HTTP API, as the
actors would: an issuer, a field agent, a borrower (an MSME), its wallet, and a lender.

1. The issuer is set up (an administrator token; the issuer's keys are published).
2. The borrower registers with a field agent's help (a ``field_agent_assist`` delegation).
3. A Credit Readiness Credential is offered over OID4VCI and lands in the wallet.
4. The lender is registered and gets an OAuth access token (``private_key_jwt``).
5. The lender requests consent; the agent prepares it, the borrower reads the one-time code
   to the agent, who confirms it.
6. The lender retrieves the credential — only the disclosures in scope — and verifies the
   issuer signature, the status list and the log receipt of its access.
7. An out-of-scope request is denied; the borrower revokes; retrieval is denied.
8. The borrower's access history is shown, each entry with its receipt; the log is audited.

``run_story`` is what the end-to-end test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from credit_commons.client.http import PlatformFetcher
from credit_commons.client.verify import CredentialVerifier, VerifiedCredential
from credit_commons.consent import notify
from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject, b64url_encode
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.jws import parse_compact, sign_compact, verify_compact
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.catalogue import commit_score
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_from_jwk, public_key_to_jwk
from credit_commons.ledger.audit import audit_log
from credit_commons.ledger.receipts import verify_receipt
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime
from credit_commons.wallet.client import accept_offer
from credit_commons.wallet.store import Wallet

__all__ = [
    "DemoFailed",
    "Transcript",
    "bound_socket",
    "client_assertion",
    "lender_token",
    "run_story",
    "serve_in_thread",
]


class DemoFailed(AssertionError):
    """A step of the story did not turn out as it must."""


@dataclass
class Transcript:
    """Every step, as printed, with its data (receipts included)."""

    steps: list[JsonObject] = field(default_factory=list)  # printed by `commons demo --json`
    say: Callable[[str], None] = print

    def step(self, title: str, **data: Any) -> None:
        self.steps.append({"step": len(self.steps) + 1, "title": title, **data})
        self.say(f"[{len(self.steps):2d}] {title}")

    def detail(self, text: str) -> None:
        self.say(f"      {text}")


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


def _answer(response: httpx.Response, status: int) -> object:
    if response.status_code != status:
        raise DemoFailed(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    found: object = response.json()
    return found


def _ok(response: httpx.Response, status: int = 200) -> JsonObject:
    # The platform's JSON object answer, as it sent it (the story checks what it needs).
    found = _answer(response, status)
    if not isinstance(found, dict):
        raise DemoFailed(f"{response.request.url.path} did not answer a JSON object")
    return found


def _ok_list(response: httpx.Response, status: int = 200) -> list[JsonObject]:
    found = _answer(response, status)
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise DemoFailed(f"{response.request.url.path} did not answer a JSON array of objects")
    return found


def bound_socket(port: int = 0) -> socket.socket:
    """A listening-ready TCP socket on loopback ``port`` (0: a free one).

    Raises ``OSError`` when the port cannot be bound (in use, or privileged).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


@contextmanager
def serve_in_thread(app: Any, sock: socket.socket) -> Iterator[str]:
    """Serve ``app`` with uvicorn on ``sock`` in a thread; yields the base URL."""
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise DemoFailed("the platform did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def client_assertion(client_id: str, key: PrivateKey, audience: str, now: int | None = None) -> str:
    """A ``private_key_jwt`` client assertion (RFC 7523 §3) valid for two minutes."""
    now = int(time.time()) if now is None else now
    return sign_compact(
        {"typ": "JWT"},
        {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
        },
        key,
    )


def lender_token(
    http: httpx.Client,
    base: str,
    client_id: str,
    key: PrivateKey,
    *,
    now: int | None = None,
    scope: str | None = None,
) -> str:
    """An access token for a lender client (OAuth client credentials, private_key_jwt)."""
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(client_id, key, f"{base}/oauth/token", now),
    }
    if scope is not None:
        form["scope"] = scope
    tokens = _ok(http.post("/oauth/token", data=form))
    return str(tokens["access_token"])


def _sequence(rt: Runtime) -> None:
    # What the worker does every few seconds: sequence the events, sign a checkpoint.
    LogWorker(rt, steps=[]).run_once(force_checkpoint=True)


def _verify_credential(base: str, text: str) -> VerifiedCredential:
    # The lender's own checks, from public endpoints only, with the lender client's verifier:
    # the issuer key from /.well-known/jwt-vc-issuer, the Disclosures, and the status list
    # (its signature by the same issuer checked before its bit is read).
    fetcher = PlatformFetcher(base)
    try:
        return CredentialVerifier(base, fetcher).verify(text)
    finally:
        fetcher.close()


def run_story(
    rt: Runtime, base: str, wallet_dir: Path, *, say: Callable[[str], None] = print
) -> Transcript:
    """Run the whole story against the platform at ``base`` (whose runtime is ``rt``)."""
    t = Transcript(say=say)
    fetcher = OutboundFetcher(allow_private=True, allow_http=True)
    try:
        return _story(rt, base, wallet_dir, t, fetcher)
    finally:
        fetcher.close()


@dataclass
class _Story:
    """What the steps share: the platform, the transcript, and who is who so far."""

    rt: Runtime
    base: str
    http: httpx.Client
    t: Transcript
    # Authorization headers by actor (admin, borrower, agent, lender).
    auth: dict[str, dict[str, str]] = field(default_factory=dict)
    borrower: str = ""  # the MSME's identity token
    client_id: str = ""
    consent_id: str = ""
    log_key: str = ""

    def bearer(self, actor: str, token: str) -> None:
        self.auth[actor] = {"Authorization": f"Bearer {token}"}


def _story(
    rt: Runtime, base: str, wallet_dir: Path, t: Transcript, fetcher: OutboundFetcher
) -> Transcript:
    with httpx.Client(base_url=base, timeout=20) as http:
        story = _Story(rt, base, http, t)
        _set_up_issuer(story)
        _register_borrower(story)
        _issue_credential(story, wallet_dir, fetcher)
        _register_lender(story)
        _request_consent(story)
        _approve_consent(story)
        _retrieve(story)
        _deny_out_of_scope(story)
        _revoke(story)
        _show_history(story)
        _audit(story)
    return t


def _set_up_issuer(story: _Story) -> None:
    # 1. An administrator token for the issuer desk; the issuer's keys are published.
    with transaction(story.rt.sessions) as session:
        admin, _ = issue_admin_token(session, story.rt, "issuer-desk")
    story.bearer("admin", admin)
    issuer = _ok(story.http.get("/.well-known/jwt-vc-issuer"))
    story.t.step(
        "Issuer set up",
        issuer=issuer["issuer"],
        keys=[k["kid"] for k in issuer["jwks"]["keys"]],
    )
    story.t.detail(
        f"issuer {issuer['issuer']}, {len(issuer['jwks']['keys'])} signing key(s) published"
    )


def _register_borrower(story: _Story) -> None:
    # 2. The borrower registers with a field agent's help (field_agent_assist).
    http = story.http
    agent = _ok(
        http.post(
            "/v1/identities",
            json={"roles": ["field_agent"], "profile": {"name": "Asha (field agent)"}},
        ),
        201,
    )
    msme = _ok(
        http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": "Meghna Crafts"}}
        ),
        201,
    )
    story.borrower = msme["identity_token"]
    story.bearer("borrower", msme["access_token"])
    story.bearer("agent", agent["access_token"])
    delegation = _ok(
        http.post(
            f"/v1/identities/{msme['identity_token']}/delegations",
            json={
                "delegatee_token": agent["identity_token"],
                "type": "field_agent_assist",
                "permissions": ["assist:consent"],
                "expires_in_days": 30,
            },
            headers=story.auth["borrower"],
        ),
        201,
    )
    _ok(
        http.post(
            f"/v1/identities/{agent['identity_token']}/delegations/{delegation['id']}/accept",
            headers=story.auth["agent"],
        )
    )
    story.t.step(
        "Borrower registered with a field agent's help",
        borrower=msme["identity_token"],
        agent=agent["identity_token"],
        delegation=delegation["id"],
    )
    story.t.detail("Meghna Crafts registered; Asha holds a live field_agent_assist delegation")


def _issue_credential(story: _Story, wallet_dir: Path, fetcher: OutboundFetcher) -> None:
    # 3. A Credit Readiness Credential is offered over OID4VCI and lands in the wallet.
    salt = b64url_encode(secrets.token_bytes(16))
    claims = {
        "enterprise": {"identity_token": story.borrower},
        "credit_tier": "A",
        "income_bracket": "25L-1Cr",
        "debt_ratio_bracket": "<0.2",
        "score_commitment": commit_score(745, salt),
        "score_opening": {"score": 745, "salt": salt},
        "verification_sources": ["gstn", "field_verification"],
    }
    offer = _ok(
        story.http.post(
            "/v1/credential-offers",
            json={
                "type": "CreditReadinessCredential",
                "subject": story.borrower,
                "claims": claims,
            },
            headers=story.auth["admin"],
        ),
        201,
    )
    wallet = Wallet.create(wallet_dir / "wallet.json", "demo passphrase")
    local_id = accept_offer(
        wallet, offer["offer_uri_by_reference"], tx_code=offer.get("tx_code"), fetcher=fetcher
    )
    held = SdJwt.parse(wallet.credential(local_id).credential)
    story.t.step(
        "Credential issued over OID4VCI into the wallet",
        offer=offer["offer_id"],
        disclosures=len(held.disclosures),
    )
    story.t.detail(
        f"wallet holds a dc+sd-jwt with {len(held.disclosures)} selectively disclosable claims"
    )


def _register_lender(story: _Story) -> None:
    # 4. The lender is registered and gets an access token (private_key_jwt).
    lender_key = PrivateKey.generate(KeyType.ED25519)
    lender = _ok(
        story.http.post(
            "/v1/admin/lenders",
            json={
                "name": "Sahyadri Cooperative Bank",
                "jwks": {"keys": [public_key_to_jwk(lender_key.public_key)]},
                "allowed_purposes": ["105", "loan.underwriting"],
            },
            headers=story.auth["admin"],
        ),
        201,
    )
    client_id = story.client_id = lender["client_id"]
    story.bearer("lender", lender_token(story.http, story.base, client_id, lender_key))
    story.t.step("Lender registered", client_id=client_id)
    story.t.detail(f"Sahyadri Cooperative Bank is {client_id}; access token by private_key_jwt")


def _request_consent(story: _Story) -> None:
    # 5a. The lender asks for consent.
    request = _ok(
        story.http.post(
            "/v1/consents",
            json={
                "template": "loan_underwriting",
                "borrower": story.borrower,
                "purpose": "loan.underwriting",
                "mode": "VIEW",
                "fetch_type": "ONETIME",
                "data_life": {"unit": "DAY", "value": 7},
                "consent_expiry": (story.rt.clock.now() + timedelta(days=14)).isoformat(),
                "scopes": [
                    {
                        "type": "CreditReadinessCredential",
                        "claims": ["/income_bracket", "/debt_ratio_bracket"],
                    }
                ],
            },
            headers=story.auth["lender"],
        ),
        201,
    )
    consent_id = story.consent_id = request["consent_id"]
    story.t.step("Consent requested", consent_id=consent_id, status=request["status"])
    story.t.detail(
        f"{consent_id}: loan underwriting, view once, income and debt-ratio brackets, 14 days"
    )


def _approve_consent(story: _Story) -> None:
    # 5b. The agent prepares it; the borrower reads the one-time code to the agent, who
    # confirms it; the signed artefact is checked against the platform's consent keys.
    http, consent_id, as_agent = story.http, story.consent_id, story.auth["agent"]
    _ok(http.post(f"/v1/consents/{consent_id}/assist", headers=as_agent))
    code = notify.read_codes(story.rt, story.borrower)[-1].code
    granted = _ok(
        http.post(
            f"/v1/consents/{consent_id}/assist/confirm", json={"code": code}, headers=as_agent
        )
    )
    _expect(
        granted["status"] == "ACTIVE" and granted["approval"] == "assisted",
        "the consent is granted",
    )
    status = _ok(http.get(f"/v1/consents/{consent_id}", headers=story.auth["lender"]))
    jwks = _ok(http.get("/v1/consents/jwks"))
    kid = parse_compact(status["artefact"], algs=ACCEPTED_ALGS).header.get("kid")
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    verify_compact(
        status["artefact"], public_key_from_jwk(key), typ="consent+jwt", algs=ACCEPTED_ALGS
    )
    story.t.step(
        "Consent approved (assisted: the borrower read the one-time code to the agent)",
        status=status["status"],
        artefact=status["artefact"],
    )
    story.t.detail(
        "signed artefact verified against /v1/consents/jwks; agent recorded as facilitator"
    )


def _retrieve(story: _Story) -> None:
    # 6. Only the disclosures in scope; the issuer signature, the status list and the log
    # receipt of the access are verified.
    http = story.http
    got = _ok(
        http.get(
            "/v1/lender/credentials",
            params={"consent_id": story.consent_id},
            headers=story.auth["lender"],
        )
    )
    checked = _verify_credential(story.base, got["credential"])
    _expect(checked.status == "valid", "the credential is valid")
    _expect("score_opening" not in checked.claims, "the exact score stays hidden")
    _sequence(story.rt)
    receipt = _ok(http.get(f"/v1/log/receipts/{got['access_event_id']}"))
    story.log_key = _ok(http.get("/v1/log/key"))["vkey"]
    verified = verify_receipt(receipt, story.log_key)
    shown = {k: checked.claims[k] for k in ("credit_tier", "income_bracket", "debt_ratio_bracket")}
    story.t.step(
        "Credential retrieved and verified",
        disclosed=got["disclosed"],
        claims=shown,
        status=checked.status,
        receipt=receipt,
    )
    story.t.detail(
        f"saw {shown}; signature and status list checked; "
        f"access receipt verified (leaf {verified.index})"
    )


def _deny_out_of_scope(story: _Story) -> None:
    # 7a. The lender asks for more than the consent grants.
    out_of_scope = story.http.get(
        "/v1/lender/credentials",
        params={"consent_id": story.consent_id, "claims": "/score_opening"},
        headers=story.auth["lender"],
    )
    _expect(out_of_scope.status_code == 403, "an out-of-scope request is denied")
    story.t.step(
        "Out-of-scope request denied",
        status=out_of_scope.status_code,
        answer=out_of_scope.json()["detail"],
    )
    story.t.detail(
        f"the lender asked for the exact score: {out_of_scope.status_code} "
        f"'{out_of_scope.json()['detail']}'"
    )


def _revoke(story: _Story) -> None:
    # 7b. The borrower revokes; the lender's next retrieval is denied.
    consent_id = story.consent_id
    _ok(
        story.http.post(
            f"/v1/borrowers/consents/{consent_id}/revoke", headers=story.auth["borrower"]
        )
    )
    after = story.http.get(
        "/v1/lender/credentials", params={"consent_id": consent_id}, headers=story.auth["lender"]
    )
    _expect(after.status_code == 403, "retrieval after revocation is denied")
    story.t.step("Consent revoked; retrieval denied", status=after.status_code)
    story.t.detail(f"borrower revoked {consent_id}; the lender's next request: {after.status_code}")


def _show_history(story: _Story) -> None:
    # 8a. The borrower's access history, each entry with its receipt.
    _sequence(story.rt)
    history = _ok_list(
        story.http.get(
            f"/v1/borrowers/{story.borrower}/access-history", headers=story.auth["borrower"]
        )
    )
    story.t.step("Access history", entries=history)
    for entry in reversed(history):
        proof = "receipt ok" if entry["receipt"] else "receipt pending"
        who, what = entry["lender_name"], entry["operation"]
        story.t.detail(
            f"{entry['at'][:19]}  {entry['outcome']:7s}  {who}  {what}  "
            f"{entry['reason'] or ''}  ({proof})"
        )


def _audit(story: _Story) -> None:
    # 8b. The whole log re-hashed and every checkpoint checked.
    report = audit_log(story.rt.engine, story.log_key)
    story.t.step("Log audited", leaves=report.size, checkpoints=report.checkpoints)
    story.t.detail(
        f"{report.size} leaves re-hashed, {report.checkpoints} signed checkpoints consistent"
    )
