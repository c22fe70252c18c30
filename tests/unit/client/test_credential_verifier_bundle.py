"""The lender's credential verifier judging issuers by a trust bundle (no network: ``did:key``
issuers and ``x5c`` chains up to an X.509 anchor): the types and marks an entry gives, the
bundle's precedence over ``trusted=``, ``trusted=`` issuers the bundle does not list, and a
chain trusted only through the bundle's anchor, its end-entity key the one that verifies."""

from __future__ import annotations

import time
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer
from tests.unit.verifier.x509_support import Issued, chain

from credit_commons.client.http import PlatformFetcher
from credit_commons.client.verify import CredentialVerifier
from credit_commons.formats import sd_jwt_errors
from credit_commons.issuer.sd_jwt import issue
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_key import encode_did_key
from credit_commons.keys.jwk import private_key_to_jwk, public_key_to_jwk
from credit_commons.verifier import IssuerNotTrusted, TrustBundle, TrustEntry, UntrustedIssuer

PLATFORM = "https://commons.example"
VCT = "https://credentials.example/income"
OTHER_VCT = "https://credentials.example/membership"
ISSUER_KEY = PrivateKey.from_raw(KeyType.ED25519, b"\x06" * 32)
ISSUER = encode_did_key(ISSUER_KEY.public_key)
HOLDER = PrivateKey.generate()
NOW = int(time.time())
ROOT, INTERMEDIATE, LEAF = chain("bank.example")
BANK = "https://bank.example"


def _credential() -> str:
    payload = {"iss": ISSUER, "vct": VCT, "iat": NOW, "exp": NOW + 3600, "income_bracket": "5L"}
    return issue(
        payload,
        disclosable=["/income_bracket"],
        signer=ISSUER_KEY,
        header={"typ": "dc+sd-jwt"},
        holder_jwk=public_key_to_jwk(HOLDER.public_key),
    ).serialize()


def _chained(x5c: list[Issued], iss: str = BANK, signer: Any = None) -> str:
    # This project's issuer refuses x5c headers; the independent sd-jwt package mints
    # them (as tests/e2e/test_x509_issuers_http.py does), signed by the leaf unless told.
    claims = {"iss": iss, "iat": NOW, "exp": NOW + 3600, "vct": VCT, SDObj("branch"): "Pune"}
    minted = SDJWTIssuer(
        claims,
        JWK.from_pyca(signer or x5c[0].key),
        JWK(**private_key_to_jwk(HOLDER)),
        sign_alg="ES256",
        extra_header_parameters={"typ": "dc+sd-jwt", "x5c": [c.x5c for c in x5c]},
    )
    return str(minted.sd_jwt_issuance)


def _bundle(*entries: TrustEntry) -> TrustBundle:
    return TrustBundle(PLATFORM, 3, NOW - 60, NOW + 3600, entries)


def _verifier(
    bundle: TrustBundle | None, *trusted: str, marks: tuple[str, ...] = ()
) -> CredentialVerifier:
    # No URL is fetched: did:key issuers and x5c chains, no status lists.
    return CredentialVerifier(
        PLATFORM,
        PlatformFetcher(PLATFORM),
        trusted=trusted,
        bundle=bundle,
        required_marks=marks,
    )


def test_the_bundle_gives_types_and_marks() -> None:
    listed = _bundle(TrustEntry(ISSUER, "did:key", frozenset({"bank"}), frozenset({VCT})))
    assert _verifier(listed).verify(_credential()).issuer == ISSUER
    assert _verifier(listed, marks=("bank",)).verify(_credential()).vct == VCT
    with pytest.raises(IssuerNotTrusted) as missing:
        _verifier(listed, marks=("state-dpi",)).verify(_credential())
    assert missing.value.reason == "mark_missing"
    other_type = _bundle(TrustEntry(ISSUER, "did:key", types=frozenset({OTHER_VCT})))
    with pytest.raises(IssuerNotTrusted) as refused:
        _verifier(other_type).verify(_credential())
    assert refused.value.reason == "type_not_allowed"
    # The bundle decides for an issuer it lists, even one the lender also trusts itself.
    with pytest.raises(IssuerNotTrusted):
        _verifier(other_type, ISSUER).verify(_credential())


def test_trusted_issuers_the_bundle_does_not_list() -> None:
    empty = _bundle()
    with pytest.raises(UntrustedIssuer):
        _verifier(empty).verify(_credential())
    # The lender's own addition: any type, no marks — so refused when marks are required.
    assert _verifier(empty, ISSUER).verify(_credential()).issuer == ISSUER
    with pytest.raises(IssuerNotTrusted) as refused:
        _verifier(empty, ISSUER, marks=("bank",)).verify(_credential())
    assert refused.value.reason == "mark_missing"


def test_an_x5c_chain_only_through_the_bundle_anchor() -> None:
    credential = _chained([LEAF, INTERMEDIATE])
    anchored = _bundle(TrustEntry.for_anchor(ROOT.der, marks=("bank",)))
    verified = _verifier(anchored, marks=("bank",)).verify(credential)
    assert (verified.issuer, verified.vct) == (BANK, VCT)
    # Without a bundle the chain is a key the token brings: refused.
    with pytest.raises(sd_jwt_errors.EmbeddedKeyNotAllowed):
        _verifier(None, BANK).verify(credential)
    # The anchor's types, and a chain up to another root.
    narrow = _bundle(TrustEntry.for_anchor(ROOT.der, types=(OTHER_VCT,)))
    with pytest.raises(IssuerNotTrusted) as refused:
        _verifier(narrow).verify(credential)
    assert refused.value.reason == "type_not_allowed"
    other_root, other_intermediate, other_leaf = chain("bank.example")
    foreign = _chained([other_leaf, other_intermediate])
    with pytest.raises(IssuerNotTrusted) as unchained:
        _verifier(anchored).verify(foreign)
    assert unchained.value.reason == "chain_invalid"
    # The leaf's key is the one that must verify: another key under the same chain fails.
    forged = _chained([LEAF, INTERMEDIATE], signer=other_leaf.key)
    with pytest.raises(sd_jwt_errors.SignatureInvalid):
        _verifier(anchored).verify(forged)
    # The platform's own credentials carry no chain.
    with pytest.raises(UntrustedIssuer):
        _verifier(anchored).verify(_chained([LEAF, INTERMEDIATE], iss=PLATFORM))
    assert other_root.der != ROOT.der
