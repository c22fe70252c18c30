"""Holder binding in the wallet's OpenID4VP presentations (wallet/oid4vp.plan and
build_vp_token, OpenID4VP 1.0 Appendix B): the proof is signed by the key the credential is
bound to — the key of an SD-JWT VC's ``cnf``, the key whose ``did:key`` is a VC-JWT's
subject, current or rotated away — and a credential the wallet cannot bind goes without
KB-JWT or VP, answering only a query that does not require holder binding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.wallet.oid4vp_fakes import CLIENTS, ISSUER, NOW, VCT, FakeVerifier

from credit_commons.formats.dcql import DcqlUnsatisfiable
from credit_commons.formats.jws import sign_compact, verify_compact
from credit_commons.formats.oid4vp import AuthorizationRequest, parse_authorization_request
from credit_commons.issuer.sd_jwt import issue
from credit_commons.keys import KeyType, PrivateKey, encode_did_key
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier.sd_jwt_verify import verify
from credit_commons.wallet.oid4vp import build_vp_token, plan
from credit_commons.wallet.store import Wallet

STRANGER = PrivateKey.from_raw(KeyType.ED25519, b"\x09" * 32)


def _request(fmt: str, *, binding: bool) -> AuthorizationRequest:
    meta = {"vct_values": [VCT]} if fmt == "dc+sd-jwt" else {"type_values": [["IDCredential"]]}
    query = {"id": "q", "format": fmt, "meta": meta}
    if not binding:
        query["require_cryptographic_holder_binding"] = False
    verifier = FakeVerifier(CLIENTS["redirect_uri"], dcql={"credentials": [query]})
    return parse_authorization_request(verifier.params, signed=False)


def _rotated_wallet(tmp_path: Path) -> tuple[Wallet, PrivateKey]:
    # A wallet whose first key was rotated away: the credentials bound to it stay its own.
    wallet = Wallet.create(tmp_path / "wallet.json", "pass")
    old = wallet.holder_key
    wallet.begin_rotation(PrivateKey.generate())
    wallet.finish_rotation()
    assert encode_did_key(wallet.holder_key.public_key) != encode_did_key(old.public_key)
    return wallet, old


def _add(wallet: Wallet, credential: str) -> None:
    wallet.add_credential(credential, issuer="i", configuration="c", received_at="t")


def _vc_jwt(subject: str | None) -> str:
    vc: dict[str, Any] = {"type": ["VerifiableCredential", "IDCredential"]}
    vc["credentialSubject"] = {"a": 1}
    payload: dict[str, Any] = {"iss": "did:web:issuer.example", "vc": vc}
    if subject is not None:
        payload["sub"] = subject
    return sign_compact({"typ": "JWT"}, payload, PrivateKey.generate())


def _sd_jwt(holder: PrivateKey | None) -> str:
    claims = {"iss": "https://issuer.example", "iat": NOW - 10, "vct": VCT, "given_name": "A"}
    return issue(
        claims,
        disclosable=["/given_name"],
        signer=ISSUER,
        header={"typ": "dc+sd-jwt"},
        holder_jwk=public_key_to_jwk(holder.public_key) if holder else None,
    ).serialize()


def _token(wallet: Wallet, request: AuthorizationRequest) -> str:
    (text,) = build_vp_token(wallet, plan(wallet, request), iat=NOW).presentations["q"]
    assert isinstance(text, str)
    return text


def test_a_vc_jwt_is_presented_under_the_key_of_its_subject(tmp_path: Path) -> None:
    # B.1.3.1.5: the VP is the holder's proof -- signed by the key whose did:key the credential
    # is about, not by whatever key is current after a rotation.
    wallet, old = _rotated_wallet(tmp_path)
    subject = encode_did_key(old.public_key)
    credential = _vc_jwt(subject)
    _add(wallet, credential)
    request = _request("jwt_vc_json", binding=True)
    vp_jwt = _token(wallet, request)
    payload = verify_compact(vp_jwt, old.public_key, typ="JWT", algs=["EdDSA"])
    assert payload["iss"] == subject
    assert (payload["aud"], payload["nonce"]) == (request.client_id, request.nonce)
    assert payload["vp"]["verifiableCredential"] == [credential]


@pytest.mark.parametrize("subject", [None, "did:web:someone.example"])
def test_a_vc_jwt_the_wallet_cannot_bind_goes_without_a_vp(
    tmp_path: Path, subject: str | None
) -> None:
    # B.1: "Otherwise, a Verifiable Credential without Holder Binding MUST be returned" --
    # and such a credential does not answer a query requiring holder binding.
    wallet = Wallet.create(tmp_path / "wallet.json", "pass")
    credential = _vc_jwt(subject)
    _add(wallet, credential)
    assert _token(wallet, _request("jwt_vc_json", binding=False)) == credential
    with pytest.raises(DcqlUnsatisfiable):
        plan(wallet, _request("jwt_vc_json", binding=True))


def test_a_bound_vc_jwt_goes_alone_when_binding_is_not_required(tmp_path: Path) -> None:
    wallet = Wallet.create(tmp_path / "wallet.json", "pass")
    credential = _vc_jwt(wallet.holder_did)
    _add(wallet, credential)
    assert _token(wallet, _request("jwt_vc_json", binding=False)) == credential


def test_an_sd_jwt_is_bound_under_the_key_of_its_cnf(tmp_path: Path) -> None:
    wallet, old = _rotated_wallet(tmp_path)
    _add(wallet, _sd_jwt(old))
    request = _request("dc+sd-jwt", binding=True)
    verified = verify(
        _token(wallet, request),
        issuer_key_resolver=lambda _h, _p: ISSUER.public_key,
        require_key_binding=True,
        audience=request.client_id,
        nonce=request.nonce,
        now=NOW,
    )
    assert verified.payload["vct"] == VCT


@pytest.mark.parametrize("holder", [None, STRANGER], ids=["no-cnf", "cnf-of-another-key"])
def test_an_sd_jwt_the_wallet_cannot_bind_goes_without_a_kb_jwt(
    tmp_path: Path, holder: PrivateKey | None
) -> None:
    # B.3: without require_cryptographic_holder_binding "an SD-JWT without the Key Binding
    # JWT MAY be returned"; a KB-JWT signed by an unrelated wallet key would be a false proof.
    wallet = Wallet.create(tmp_path / "wallet.json", "pass")
    _add(wallet, _sd_jwt(holder))
    text = _token(wallet, _request("dc+sd-jwt", binding=False))
    assert text.endswith("~")  # <issuer-signed JWT>~<Disclosures>~, no KB-JWT
    verify(
        text,
        issuer_key_resolver=lambda _h, _p: ISSUER.public_key,
        require_key_binding=False,
        forbid_key_binding=True,
        now=NOW,
    )
    # B.3: "SD-JWTs that do not support Holder Binding ... cannot be returned in this case."
    with pytest.raises(DcqlUnsatisfiable):
        plan(wallet, _request("dc+sd-jwt", binding=True))
