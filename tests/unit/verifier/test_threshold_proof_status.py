"""verifier/threshold_proof.py step 3: a threshold proof over a revoked or suspended
CommunityTierCredential, or one that names no status list, is refused before its proof is
looked at; a valid one goes on to the proof check (the whole path over a real platform and a
real proof is tests/e2e/test_wallet_serve.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from tests.unit.sd_jwt_support import AUD, HOLDER, ISSUER, NONCE, NOW, present_with_kb

from credit_commons.formats.status_list import TokenStatus
from credit_commons.issuer.sd_jwt import issue
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier import Reason, VerificationDenied, verify_threshold_proof
from credit_commons.verifier.sd_jwt_vc import CredentialRevoked, CredentialSuspended
from credit_commons.zk import COMMUNITY_TIER_VCT, LoadedStatement

CTX = "shg:savings"
LIST = "https://issuer.example/v1/status-lists/sl_01"


def _presentation(status: object | None = None) -> str:
    claims: dict[str, Any] = {
        "iss": "https://issuer.example",
        "iat": NOW - 100,
        "vct": COMMUNITY_TIER_VCT,
        "ctx": CTX,
        "tier": "silver",
    }
    if status is not None:
        claims["status"] = status
    credential = issue(
        claims,
        disclosable=[],
        signer=ISSUER,
        header={"typ": "dc+sd-jwt"},
        holder_jwk=public_key_to_jwk(HOLDER.public_key),
    )
    return present_with_kb(credential, set())


def _verify(presentation: str, answer: TokenStatus, asked: list[tuple[str, int]]) -> Any:
    def status(uri: str, index: int) -> TokenStatus:
        asked.append((uri, index))
        return answer

    return verify_threshold_proof(
        {"presentation": presentation, "proof": None},
        ctx=CTX,
        threshold=25_000_000,
        nonce=NONCE,
        audience=AUD,
        statement=STATEMENT,
        issuer_key_resolver=lambda _h, _p: ISSUER.public_key,
        status=status,
        now=NOW,
        today=NOW // 86_400,
    )


# Only its shape is read before a missing proof is refused.
STATEMENT = cast(LoadedStatement, SimpleNamespace(statement=SimpleNamespace(public_inputs=("a",))))
REFERENCE = {"status_list": {"uri": LIST, "idx": 7}}


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [(TokenStatus.INVALID, CredentialRevoked), (TokenStatus.SUSPENDED, CredentialSuspended)],
)
def test_a_revoked_or_suspended_credential_is_refused(
    answer: TokenStatus, refusal: type[Exception]
) -> None:
    asked: list[tuple[str, int]] = []
    with pytest.raises(refusal):
        _verify(_presentation(REFERENCE), answer, asked)
    assert asked == [(LIST, 7)]


def test_a_credential_without_a_status_list_is_refused() -> None:
    asked: list[tuple[str, int]] = []
    with pytest.raises(VerificationDenied) as denied:
        _verify(_presentation(), TokenStatus.VALID, asked)
    assert denied.value.reason is Reason.STATUS_UNCHECKED
    assert asked == []


def test_a_valid_credential_goes_on_to_the_proof() -> None:
    asked: list[tuple[str, int]] = []
    with pytest.raises(VerificationDenied) as denied:
        _verify(_presentation(REFERENCE), TokenStatus.VALID, asked)
    assert denied.value.reason is Reason.ZK_PROOF_MISSING
    assert asked == [(LIST, 7)]
