"""The lender's credential verifier on credentials of a trusted issuer identified by a
``did:key`` (its key is its name: no network), and the checks of ``sd_jwt_vc`` it shares
with the platform: untrusted issuers, a presentation with a KB-JWT, a wrong ``typ``, a
malformed status reference."""

from __future__ import annotations

import time
from typing import Any

import pytest

from credit_commons.client import RetrievalInvalid
from credit_commons.client.http import PlatformFetcher
from credit_commons.client.verify import CredentialVerifier, check_disclosed
from credit_commons.formats import sd_jwt_errors
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.issuer.sd_jwt import issue, present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_key import encode_did_key
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier.sd_jwt_vc import UnknownIssuerKey, UntrustedIssuer

ISSUER_KEY = PrivateKey.from_raw(KeyType.ED25519, b"\x05" * 32)
ISSUER = encode_did_key(ISSUER_KEY.public_key)
HOLDER = PrivateKey.generate()
NOW = int(time.time())


def _credential(header: dict[str, Any] | None = None, **claims: Any) -> str:
    payload = {
        "iss": ISSUER,
        "vct": "https://credentials.example/income",
        "iat": NOW,
        "exp": NOW + 3600,
        "income_bracket": "5L-25L",
        "sector": {"code": "textiles"},
        **claims,
    }
    return issue(
        payload,
        disclosable=["/income_bracket", "/sector/code"],
        signer=ISSUER_KEY,
        header=header if header is not None else {"typ": "dc+sd-jwt"},
        holder_jwk=public_key_to_jwk(HOLDER.public_key),
    ).serialize()


def _verifier(*trusted: str) -> CredentialVerifier:
    # No URL is fetched for a did:key issuer without a status list.
    fetcher = PlatformFetcher("https://commons.example")
    return CredentialVerifier("https://commons.example", fetcher, trusted=trusted)


def test_a_trusted_did_key_issuer() -> None:
    verified = _verifier(ISSUER).verify(_credential())
    assert verified.issuer == ISSUER
    assert verified.vct == "https://credentials.example/income"
    assert verified.status == "unlisted"
    assert verified.claims["income_bracket"] == "5L-25L"
    assert "cnf" not in verified.claims
    check_disclosed(verified.claims, ["/income_bracket", "/sector/code"])
    with pytest.raises(RetrievalInvalid):
        check_disclosed(verified.claims, ["/score_opening"])


def test_refusals() -> None:
    with pytest.raises(UntrustedIssuer):
        _verifier().verify(_credential())
    shown = present(
        SdJwt.parse(_credential()),
        disclose={"/income_bracket"},
        holder_signer=HOLDER,
        audience="https://lender.example",
        nonce="n-1",
        iat=NOW,
    )
    with pytest.raises(sd_jwt_errors.KeyBindingUnexpected):
        _verifier(ISSUER).verify(shown)
    with pytest.raises(UnknownIssuerKey, match="not an SD-JWT VC"):
        _verifier(ISSUER).verify(_credential({"typ": "JWT"}))
    with pytest.raises(UnknownIssuerKey, match="status reference"):
        _verifier(ISSUER).verify(_credential(status={"status_list": {"uri": 7, "idx": "0"}}))
    with pytest.raises(sd_jwt_errors.Expired):
        _verifier(ISSUER).verify(_credential(exp=NOW - 3600))
    other = PrivateKey.generate()
    forged = issue(
        {"iss": ISSUER, "vct": "x"}, disclosable=[], signer=other, header={"typ": "dc+sd-jwt"}
    ).serialize()
    with pytest.raises(sd_jwt_errors.SignatureInvalid):
        _verifier(ISSUER).verify(forged)
