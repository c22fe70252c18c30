"""Issuers trusted through an X.509 anchor, over HTTP on both databases (review 2 item 1):
SD-JWT VCs minted by the independent sd-jwt package with the HAIP-style ``x5c`` chain in
the issuer JWS header, signed by the end-entity key — CA, intermediate and leaf made with
cryptography's builder — accepted through the platform's OpenID4VP verifier and
``/v1/credentials/verify`` when the chain verifies up to an anchor of the trust list and
its leaf names ``iss``; a chain to another anchor, a leaf naming another issuer, a
signature by another key, an expired leaf and a TLS-only leaf refused, each with its
precise reason in the record and only ``not_allowed`` on the wire."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from tests.integration.verifier_world import VpWorld, vp
from tests.unit.verifier.x509_support import Issued, certificate, chain

from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import private_key_to_jwk

__all__ = ["vp"]

ISS = "https://bank.example"
VCT = "https://bank.example/vct/account/v1"
QUERY = {
    "credentials": [
        {
            "id": "account",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": [VCT]},
            "claims": [{"path": ["holder_since"]}],
        }
    ]
}
ROOT, INTERMEDIATE, LEAF = chain("bank.example")


def _anchor(vp: VpWorld, root: Issued, **terms: Any) -> None:
    pem = root.certificate.public_bytes(Encoding.PEM).decode()
    added = vp.http.post(
        "/v1/admin/trust-bundle/entries", json={"anchor_pem": pem, **terms}, headers=vp.admin
    )
    assert added.status_code == 201, added.text


def _minted(
    vp: VpWorld, holder: PrivateKey, *, iss: str = ISS, x5c: list[Issued] | None = None,
    signer: Any = None,
) -> str:  # fmt: skip
    """An SD-JWT VC minted by the sd-jwt package (sd-jwt-python on jwcrypto): the x5c chain
    (leaf first) in its protected header, signed by the leaf's key unless told otherwise."""
    certificates = x5c if x5c is not None else [LEAF, INTERMEDIATE]
    claims = {
        "iss": iss,
        "iat": vp.now(),
        "exp": vp.now() + 3600,
        "vct": VCT,
        SDObj("holder_since"): "2019",
        SDObj("branch"): "Pune",
    }
    minted = SDJWTIssuer(
        claims,
        JWK.from_pyca(signer or certificates[0].key),
        JWK(**private_key_to_jwk(holder)),
        sign_alg="ES256",
        extra_header_parameters={"typ": "dc+sd-jwt", "x5c": [c.x5c for c in certificates]},
    )
    return str(minted.sd_jwt_issuance)


def _presented(credential: str, holder: PrivateKey, nonce: str, aud: str) -> str:
    wallet = SDJWTHolder(credential)
    wallet.create_presentation(
        {"holder_since": True}, nonce, aud, JWK(**private_key_to_jwk(holder)), "ES256"
    )
    return str(wallet.sd_jwt_presentation)


def _answer(vp: VpWorld, **mint: Any) -> tuple[Any, dict[str, Any]]:
    created = vp.request(dcql_query=QUERY)
    request = vp.wallet_request(created)
    holder = PrivateKey.generate(KeyType.P256)
    shown = _presented(_minted(vp, holder, **mint), holder, request.nonce, request.client_id)
    answered = vp.respond(created, request, {"account": [shown]})
    return answered, {"status": vp.status(created["id"]), "created": created}


def test_a_chain_to_a_listed_anchor_is_accepted(vp: VpWorld) -> None:
    _anchor(vp, ROOT, marks=["bank"], types=[VCT])
    answered, seen = _answer(vp)
    assert answered.status_code == 200, answered.text
    code = parse_qs(urlsplit(answered.json()["redirect_uri"]).query)["response_code"][0]
    (credential,) = vp.decision(seen["created"]["id"], code).json()["credentials"]
    assert credential["issuer"] == ISS
    assert credential["claims"]["holder_since"] == "2019"
    assert "branch" not in credential["claims"]

    # The lender's consent-gated retrieval path takes the same chain.
    issued = _minted(vp, PrivateKey.generate(KeyType.P256))
    verified = vp.http.post(
        "/v1/credentials/verify",
        json={"credential": issued, "format": "dc+sd-jwt", "key_binding": "none"},
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["vct"] == VCT


def _refused(vp: VpWorld, reason: str, **mint: Any) -> None:
    answered, seen = _answer(vp, **mint)
    assert answered.status_code == 400, answered.text
    assert answered.json() == {"error": "not_allowed"}
    assert (seen["status"]["decision"], seen["status"]["reason"]) == ("deny", reason)


def test_refused_chains_have_their_precise_reasons(vp: VpWorld) -> None:
    # No anchor at all: the chain is trusted by nothing.
    _refused(vp, "issuer_not_trusted")
    _anchor(vp, ROOT, types=[VCT])
    # A chain that verifies, but up to another root.
    _other_root, other_intermediate, other_leaf = chain("bank.example")
    _refused(vp, "issuer_chain_invalid", x5c=[other_leaf, other_intermediate])
    # The leaf names bank.example; the credential claims to be another issuer.
    _refused(vp, "issuer_chain_name_mismatch", iss="https://evil.example")
    # The chain is the bank's, the signature another key's.
    stranger = certificate("x", ca=False).key
    _refused(vp, "signature_invalid", signer=stranger)
    # The leaf has expired (the clock is well past 30 days after its start).
    san = [x509.DNSName("bank.example")]
    old = certificate("bank.example", issuer=INTERMEDIATE, ca=False, san=san, days=30)
    _refused(vp, "issuer_certificate_expired", x5c=[old, INTERMEDIATE])
    # A TLS server certificate under the same anchor is no issuer's.
    tls = certificate(
        "bank.example", issuer=INTERMEDIATE, ca=False, san=san,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
    )  # fmt: skip
    _refused(vp, "issuer_chain_invalid", x5c=[tls, INTERMEDIATE])
    # Each refusal's event carries its reason, never more than the record.
    reasons = [e["reason"] for e in vp.events()]
    assert reasons.count("issuer_chain_invalid") == 2
    assert "issuer_certificate_expired" in reasons


def test_the_anchors_types_apply_to_its_issuers(vp: VpWorld) -> None:
    _anchor(vp, ROOT, types=["https://bank.example/vct/other/v1"])
    _refused(vp, "issuer_not_trusted")
