"""The status of a membership credential whose issuer an X.509 anchor certifies, on SQLite and
PostgreSQL (issue 19): the membership keeps the credential's ``x5c`` chain; the membership
status step verifies the chain again under the trust list's anchors and reads the issuer's
Token Status List (fetched through the verifier, signed by the chain's end-entity key):
revoked ends the membership, suspended pauses it, valid leaves it; a list signed by another
key, or a chain no anchor certifies any more, leaves it alone and is counted as unchecked."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import select
from tests.unit.verifier.x509_support import Issued, certificate

from credit_commons.core.db import transaction
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.status_list import StatusList, TokenStatus
from credit_commons.identity import Principal
from credit_commons.jobs import membership_status_step
from credit_commons.keys import KeyType, PrivateKey, encode_did_key
from credit_commons.reputation import rules_service
from credit_commons.reputation import service as reputation_service
from credit_commons.reputation.models import ReputationMemberRow
from credit_commons.runtime import Runtime
from credit_commons.verifier import trust
from credit_commons.verifier.foreign import FOREIGN_ISSUERS, ForeignIssuers

ADMIN = Principal("ops", "admin")
ISS = "https://bank.example"
VCT = "https://bank.example/vct/account/v1"
LIST = f"{ISS}/status-lists/sl_1"


def _chain() -> tuple[Issued, Issued, Issued]:
    root = certificate("Test Root", ca=True)
    intermediate = certificate("Test Intermediate", issuer=root, ca=True)
    leaf = certificate(
        "bank.example",
        issuer=intermediate,
        ca=False,
        san=[x509.DNSName("bank.example")],
        ed25519_key=True,
    )
    return root, intermediate, leaf


def _signer(issued: Issued) -> PrivateKey:
    raw = issued.key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return PrivateKey.from_raw(KeyType.ED25519, raw)


def _list_token(signer: PrivateKey, now: int, statuses: dict[int, TokenStatus]) -> str:
    status_list = StatusList.new(64, bits=2)
    for index, status in statuses.items():
        status_list.set(index, status)
    return sign_compact(
        {"typ": "statuslist+jwt"},
        {"sub": LIST, "iat": now, "exp": now + 600, "ttl": 1, "status_list": status_list.to_json()},
        signer,
    )


def _serve(rt: Runtime, body: Callable[[], str], calls: list[str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(
            200, text=body(), headers={"Content-Type": "application/statuslist+jwt"}
        )

    fetcher = OutboundFetcher(
        transport=httpx.MockTransport(handler), resolver=lambda _h: ["93.184.216.34"]
    )
    FOREIGN_ISSUERS.set(rt, ForeignIssuers(fetcher))


def _member(rt: Runtime, n: int, chain: list[Issued]) -> str:
    did = encode_did_key(PrivateKey.from_raw(KeyType.ED25519, bytes([n]) * 32).public_key)
    with transaction(rt.sessions) as session:
        rules = rules_service.active_rule_set(session, rt, rt.clock.now()).rule_set
        reputation_service.register_member(
            session,
            rt,
            did=did,
            vct=VCT,
            issuer=ISS,
            credential_sha256=f"{n:064x}",
            status_ref=f"{LIST}#{n}",
            rules=rules,
            x5c=json.dumps([c.x5c for c in chain]),
        )
    return did


def _row(rt: Runtime, did: str) -> ReputationMemberRow:
    with transaction(rt.sessions) as session:
        row = session.scalars(
            select(ReputationMemberRow).where(ReputationMemberRow.did == did)
        ).one()
        session.expunge(row)
        return row


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    with transaction(runtime.sessions) as session:
        rules_service.register_dev_rule_set(
            session, runtime, actor=runtime.operator_actor("reputation")
        )
    return runtime


def test_an_x509_issuers_status_list_is_read_under_the_chains_key(rt: Runtime) -> None:
    root, intermediate, leaf = _chain()
    with transaction(rt.sessions) as session:
        trust.add_trusted_anchor(session, rt, ADMIN, root.der, types=[VCT])
    statuses = {1: TokenStatus.INVALID, 2: TokenStatus.SUSPENDED}
    now = int(rt.clock.now().timestamp())
    signer = _signer(leaf)
    calls: list[str] = []
    _serve(rt, lambda: _list_token(signer, now, statuses), calls)
    revoked, suspended, valid = (_member(rt, n, [leaf, intermediate]) for n in (1, 2, 3))

    step = membership_status_step(interval=0)
    assert step(rt, 0) == {"memberships_revoked": 1, "memberships_suspended": 1}
    assert calls  # the issuer's list was fetched
    assert calls[0].startswith(LIST)
    assert _row(rt, revoked).revoked_at is not None
    assert _row(rt, suspended).suspended_at is not None
    assert _row(rt, suspended).revoked_at is None
    assert _row(rt, valid).revoked_at is None
    assert _row(rt, valid).suspended_at is None

    # The issuer reinstates the suspended credential: the membership resumes.
    statuses = {1: TokenStatus.INVALID}
    _serve(rt, lambda: _list_token(signer, now, statuses), calls)  # a fresh cache
    assert step(rt, 0) == {"memberships_reinstated": 1}
    assert _row(rt, suspended).suspended_at is None


def test_a_list_signed_by_another_key_or_an_uncertified_chain_is_unchecked(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    root, intermediate, leaf = _chain()
    _, other_intermediate, other_leaf = _chain()  # under another root, not trusted
    with transaction(rt.sessions) as session:
        trust.add_trusted_anchor(session, rt, ADMIN, root.der, types=[VCT])
    now = int(rt.clock.now().timestamp())
    stranger = PrivateKey.generate(KeyType.ED25519)
    calls: list[str] = []
    # Every entry revoked, but the list is signed by a key no certificate names.
    _serve(rt, lambda: _list_token(stranger, now, {1: TokenStatus.INVALID}), calls)
    signed_elsewhere = _member(rt, 1, [leaf, intermediate])
    uncertified = _member(rt, 2, [other_leaf, other_intermediate])
    assert membership_status_step(interval=0)(rt, 0) == {"memberships_unchecked": 2}
    assert _row(rt, signed_elsewhere).revoked_at is None
    assert _row(rt, uncertified).revoked_at is None
    assert "status not read" in caplog.text
