"""What the issuer publishes about itself: the JWT VC Issuer Metadata document and the
platform's ``did:web`` document, both listing every issuer key version."""

from __future__ import annotations

from sqlalchemy.orm import Session

from credit_commons.issuer import status
from credit_commons.issuer.schemas import DidDocument, JwtVcIssuerMetadata
from credit_commons.keys import did_web_of
from credit_commons.runtime import Runtime

__all__ = ["did_document", "issuer_did", "issuer_metadata"]


def issuer_metadata(session: Session, rt: Runtime) -> JwtVcIssuerMetadata:
    """The JWT VC Issuer Metadata document (``/.well-known/jwt-vc-issuer``)."""
    keys = [v.jwk() for v in status.issuer_key_versions(session, rt)]
    return JwtVcIssuerMetadata(issuer=rt.settings.public_url, jwks={"keys": keys})


def issuer_did(rt: Runtime) -> str:
    """The platform's ``did:web`` (:func:`~credit_commons.keys.did_web_of` of its public URL;
    :func:`~credit_commons.keys.did_web_refusal` says whether a wallet can resolve it)."""
    return did_web_of(rt.settings.public_url)


def did_document(session: Session, rt: Runtime) -> DidDocument:
    """The ``did:web`` document: every issuer key version as a JsonWebKey2020 method."""
    did = issuer_did(rt)
    methods = [
        {
            "id": f"{did}#{v.kid}",
            "type": "JsonWebKey2020",
            "controller": did,
            "publicKeyJwk": v.jwk(),
        }
        for v in status.issuer_key_versions(session, rt)
    ]
    ids = [m["id"] for m in methods]
    return DidDocument(
        context=[
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/jws-2020/v1",
        ],
        id=did,
        verificationMethod=methods,
        assertionMethod=ids,
        authentication=ids,
    )
