"""wallet/threshold.py before the proof: the credential it picks, the bundle's record checked
against the credential (a rescored record is ``wallet.credential_stale``), a bundle being
built (``wallet.score_pending`` with the platform's wait), no credential for the context
(``wallet.threshold_unprovable``), the scores proxy for the wallet's own DIDs only, and a
history line for every request — over a fake platform (``httpx.MockTransport``); the proof
itself is tests/e2e/test_wallet_serve.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from credit_commons import zk
from credit_commons.core.errors import NotFoundError
from credit_commons.core.net import OutboundFetcher
from credit_commons.issuer.sd_jwt import issue
from credit_commons.keys import KeyType, PrivateKey, public_key_to_jwk
from credit_commons.wallet.store import Wallet
from credit_commons.wallet.threshold import (
    ScorePending,
    ThresholdProver,
    ThresholdRequest,
    ThresholdUnprovable,
    TierCredentialStale,
)

PLATFORM = "https://platform.example"
CTX = "shg:savings"
RULE_SET = {"id": "rs", "version": 1, "hash": "ab" * 32}
SCORE = 31_250_000
ISSUER = PrivateKey.from_raw(KeyType.ED25519, b"\x07" * 32)


def _tier_credential(wallet: Wallet, ctx: str = CTX) -> str:
    claims = {
        "iss": PLATFORM,
        "vct": zk.COMMUNITY_TIER_VCT,
        "tier": "silver",
        "ctx": ctx,
        "rule_set": RULE_SET,
        "as_of": "2026-12-07",
        "score_commitment": "c",
        "score_opening": {"score": SCORE, "salt": "s"},
    }
    issued = issue(
        claims,
        disclosable=["/score_opening"],
        signer=ISSUER,
        header={"typ": "dc+sd-jwt"},
        holder_jwk=public_key_to_jwk(wallet.holder_key.public_key),
    )
    return issued.serialize()


def _record(**changed: Any) -> dict[str, Any]:
    return {"ruleSet": RULE_SET, "asOf": "2026-12-07", "score": "31.250000", **changed}


class FakePlatform:
    """GET /v1/scores as the platform answers its subject: a kept bundle, or 202."""

    def __init__(self, record: dict[str, Any] | None) -> None:
        self.record = record
        self.asked: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request)
        assert request.url.path == "/v1/scores"
        assert request.headers["Subject-Proof"].count(".") == 2
        if self.record is None:
            return httpx.Response(202, headers={"Retry-After": "7"}, json={"status": "pending"})
        body = {"record": self.record, "checkpoint": "platform.example/log\n3\nroot\n"}
        return httpx.Response(200, content=json.dumps(body).encode())


def _prover(tmp_path: Path, platform: FakePlatform, *, held: bool = True) -> ThresholdProver:
    wallet = Wallet.create(tmp_path / "wallet.json", "pass phrase")
    if held:
        wallet.add_credential(
            _tier_credential(wallet),
            issuer=PLATFORM,
            configuration="CommunityTierCredential",
            received_at="now",
        )
        wallet.save()
    # A public address for the platform's name: the SSRF guard's rules apply as in use.
    fetcher = OutboundFetcher(resolver=lambda _: ["93.184.215.14"])
    http = httpx.Client(transport=httpx.MockTransport(platform))
    return ThresholdProver(wallet, PLATFORM, fetcher=fetcher, http=http, now=lambda: 1.8e9)


ASKED = ThresholdRequest(CTX, 25_000_000, "n-0123456789", "https://bank.example")


@pytest.mark.parametrize(
    "record",
    [
        _record(score="31.250001"),
        _record(asOf="2026-12-08"),
        _record(ruleSet={**RULE_SET, "version": 2}),
    ],
)
def test_a_rescored_record_is_a_stale_credential(tmp_path: Path, record: dict[str, Any]) -> None:
    prover = _prover(tmp_path, FakePlatform(record))
    with pytest.raises(TierCredentialStale) as stale:
        prover.prove(ASKED)
    assert "31" not in stale.value.detail
    assert prover.wallet.proof_history[-1]["outcome"] == "wallet.credential_stale"


def test_a_bundle_being_built_says_when_to_come_back(tmp_path: Path) -> None:
    prover = _prover(tmp_path, FakePlatform(None))
    with pytest.raises(ScorePending) as pending:
        prover.prove(ASKED)
    assert pending.value.retry_after == 7
    with pytest.raises(ScorePending):
        prover.scores(prover.wallet.holder_did, CTX)


def test_no_credential_for_the_context_is_unprovable(tmp_path: Path) -> None:
    platform = FakePlatform(_record())
    prover = _prover(tmp_path, platform)
    with pytest.raises(ThresholdUnprovable):
        prover.prove(ThresholdRequest("shg:other", 1, "n-0123456789"))
    assert platform.asked == []  # nothing asked of the platform
    history = Wallet.open(tmp_path / "wallet.json", "pass phrase").proof_history
    assert history[-1] == {
        "at": "2027-01-15T08:00:00+00:00",
        "statement": "community_score_at_least",
        "ctx": "shg:other",
        "threshold": 1,
        "audience": "urn:credit-commons:any-audience",
        "nonce": "n-0123456789",
        "credential": None,
        "outcome": "unprovable",
    }


def test_a_credential_bound_to_another_key_is_not_used(tmp_path: Path) -> None:
    prover = _prover(tmp_path, FakePlatform(_record()), held=False)
    other = Wallet.create(tmp_path / "other.json", "pass phrase")
    prover.wallet.add_credential(
        _tier_credential(other), issuer=PLATFORM, configuration="C", received_at="now"
    )
    prover.wallet.save()
    with pytest.raises(ThresholdUnprovable):
        prover.prove(ASKED)


def test_scores_are_proxied_for_the_wallet_s_own_dids_only(tmp_path: Path) -> None:
    platform = FakePlatform(_record())
    prover = _prover(tmp_path, platform)
    bundle = json.loads(prover.scores(prover.wallet.holder_did, CTX))
    assert bundle["record"]["score"] == "31.250000"
    assert platform.asked[-1].url.params["did"] == prover.wallet.holder_did
    with pytest.raises(NotFoundError):
        prover.scores("did:key:z6MkSomeoneElse", CTX)
