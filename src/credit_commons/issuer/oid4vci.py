"""OpenID for Verifiable Credential Issuance 1.0, pre-authorized code flow (seed 002 §4).

1. An issuer operator creates an **offer** for a subject and a credential type with its
   claims (sealed in the vault until issuance).  The offer carries a pre-authorized code,
   optionally protected by a transaction code delivered out of band (``tx_code``).  It is
   shown by value (``openid-credential-offer://?credential_offer=…``) or by reference
   (``…?credential_offer_uri=…``), also as a QR code.
2. The wallet exchanges the code (and ``tx_code``) at the **token endpoint** for a short-
   lived access token.  The code is consumed atomically, exactly once.
3. The wallet gets a fresh ``c_nonce`` from the **nonce endpoint** (single use, 5 minutes).
4. The wallet calls the **credential endpoint** with the access token and a proof of
   possession — an ``openid4vci-proof+jwt`` signed by the holder key (``jwk`` header), with
   ``aud`` = this issuer and ``nonce`` = the c_nonce — and receives the SD-JWT VC bound to
   that key.  Requests carrying anything but the configuration id and the proofs (issuer
   overrides such as claims or a vct) are refused.

Codes, transaction codes, access tokens and nonces are stored hash-only with a TTL, and
each is consumed by a compare-and-set, so a replay fails.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.formats.jws import JwsAlgorithmRefused, parse_compact
from credit_commons.formats.oauth import OAuthError
from credit_commons.identity import Principal
from credit_commons.issuer import credentials
from credit_commons.issuer import service as catalogue_service
from credit_commons.issuer.models import CredentialOfferRow, IssuerNonceRow
from credit_commons.issuer.schemas import (
    AuthorizationServerMetadata,
    CredentialIssuerMetadata,
    CredentialOffer,
    CredentialResponse,
    NonceResponse,
    OfferCreated,
    TokenResponse,
)
from credit_commons.keys import ACCEPTED_ALGS, public_key_from_jwk, public_key_to_jwk
from credit_commons.runtime import Runtime

__all__ = [
    "PRE_AUTHORIZED_GRANT",
    "ClaimsCompletion",
    "OAuthError",
    "authorization_server_metadata",
    "create_offer",
    "credential_issuer_metadata",
    "get_offer",
    "issue_from_request",
    "new_nonce",
    "token",
]

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
_OFFER_TTL = timedelta(minutes=30)
_TOKEN_TTL = timedelta(minutes=5)
_NONCE_TTL = timedelta(minutes=5)
_PROOF_MAX_AGE = 300


def _h(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _issuer(rt: Runtime) -> str:
    return rt.settings.public_url.rstrip("/")


def configuration_id(type_name: str, credential_format: str) -> str:
    """The OID4VCI credential configuration id of a type in a format (``Type`` for the
    SD-JWT VC, ``Type_vc_jwt`` for the VCDM 2.0 ``vc+jwt``)."""
    if credential_format == credentials.SD_JWT_VC:
        return type_name
    return f"{type_name}_{credential_format.replace('+', '_')}"


def credential_issuer_metadata(session: Session, rt: Runtime) -> CredentialIssuerMetadata:
    """``/.well-known/openid-credential-issuer`` (OID4VCI 1.0 §12.2)."""
    base = _issuer(rt)
    proofs = {"jwt": {"proof_signing_alg_values_supported": sorted(ACCEPTED_ALGS)}}
    configurations: dict[str, JsonObject] = {}
    for t in catalogue_service.list_types(session, rt):
        configurations[t.name] = {
            "format": credentials.SD_JWT_VC,
            "scope": t.name,
            "vct": t.vct,
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": ["EdDSA", "ES256"],
            "proof_types_supported": proofs,
        }
        # W3C VCDM 2.0 as a vc+jwt, holder bound through did:key.  OID4VCI 1.0 has no
        # profile for it (Appendix A.1.1 jwt_vc_json is VCDM 1.1); this one takes the media
        # type as identifier (Appendix A's recommendation) and A.1.1's credential_definition.
        configurations[configuration_id(t.name, credentials.VC_JWT)] = {
            "format": credentials.VC_JWT,
            "scope": f"{t.name}_vc_jwt",
            "credential_definition": {"type": ["VerifiableCredential", t.name]},
            "cryptographic_binding_methods_supported": ["did:key"],
            "credential_signing_alg_values_supported": ["EdDSA", "ES256"],
            "proof_types_supported": proofs,
        }
    return CredentialIssuerMetadata(
        credential_issuer=base,
        authorization_servers=[base],
        credential_endpoint=f"{base}/credential",
        nonce_endpoint=f"{base}/nonce",
        credential_configurations_supported=configurations,
    )


def authorization_server_metadata(rt: Runtime) -> AuthorizationServerMetadata:
    """``/.well-known/oauth-authorization-server`` (RFC 8414) for the pre-authorized flow."""
    base = _issuer(rt)
    return AuthorizationServerMetadata(
        issuer=base,
        token_endpoint=f"{base}/token",
        grant_types_supported=[PRE_AUTHORIZED_GRANT],
        pre_authorized_anonymous=True,
        # RFC 8705 §3.3.  No mtls_endpoint_aliases (§5): the token endpoint is one address,
        # mutual TLS optional at it (deploy/nginx/commons-mtls.conf.template).
        tls_client_certificate_bound_access_tokens=rt.settings.client_cert_header is not None,
    )


def create_offer(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    type_name: str,
    subject_token: str,
    claims: JsonObject,
    with_tx_code: bool,
    credential_format: str = credentials.SD_JWT_VC,
) -> OfferCreated:
    """Create an offer (administrators/issuers); returns the offer, its URIs and — once — the
    transaction code to hand to the holder out of band.

    Raises ``ClaimsInvalid`` and the issuance preconditions of ``issue_credential`` early.
    """
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    credential_type = catalogue_service.get_type(session, rt, type_name)
    # The claims as they will be signed (a score commitment computed or checked), so a
    # wrong commitment is refused now, not when the holder redeems the offer.
    claims = dict(credentials.checked_claims(credential_type, claims))
    if credential_format not in credentials.FORMATS:
        raise ValidationError("unknown credential format", extra={"field": "format"})
    code = secrets.token_urlsafe(32)
    tx_code = "".join(secrets.choice(string.digits) for _ in range(6)) if with_tx_code else None
    offer_id = new_id("off")
    now = rt.clock.now()
    row = CredentialOfferRow(
        id=offer_id,
        code_hash=_h(code),
        tx_code_hash=_h(tx_code) if tx_code else None,
        type_name=type_name,
        format=credential_format,
        subject_token=subject_token,
        sealed_claims=rt.vault.seal(
            session,
            json.dumps(claims).encode(),
            subject=subject_token,
            purpose="credentials",
            record=offer_id,
        ),
        status="offered",
        expires_at=now + _OFFER_TTL,
        created_at=now,
    )
    session.add(row)
    grant: JsonObject = {"pre-authorized_code": code}
    if tx_code:
        grant["tx_code"] = {
            "input_mode": "numeric",
            "length": 6,
            "description": "The code the issuer gave you",
        }
    offer = CredentialOffer(
        credential_issuer=_issuer(rt),
        credential_configuration_ids=[configuration_id(type_name, credential_format)],
        grants={PRE_AUTHORIZED_GRANT: grant},
    )
    # The offer's JSON text, as it is sealed and put in the URI (json.dumps, as before).
    offer_json = json.dumps(offer.model_dump(mode="json"), separators=(",", ":"))
    row.sealed_offer = rt.vault.seal(
        session,
        offer_json.encode(),
        subject=subject_token,
        purpose="credentials",
        record=_offer_record(offer_id),
    )
    reference = f"{_issuer(rt)}/v1/credential-offers/{offer_id}"
    return OfferCreated(
        offer_id=offer_id,
        credential_offer=offer,
        offer_uri="openid-credential-offer://?credential_offer=" + quote(offer_json),
        offer_uri_by_reference="openid-credential-offer://?credential_offer_uri="
        + quote(reference, safe=""),
        tx_code=tx_code,
        expires_at=(now + _OFFER_TTL).isoformat(),
    )


def _offer_record(offer_id: str) -> str:
    # The vault record of the sealed offer (the claims are sealed under the offer id).
    return f"{offer_id}/offer"


def get_offer(session: Session, rt: Runtime, offer_id: str) -> CredentialOffer:
    """The offer by reference (``credential_offer_uri``), from the database, so any replica
    serves it, until the offer expires (TTL-bound, as the in-memory copy was meant to be;
    a redeemed code in it is refused by the token endpoint, ``invalid_grant``).

    The offer carries the pre-authorized code, so it is kept sealed in the vault under the
    subject's key, like the offered claims.  Raises :class:`NotFoundError` otherwise.
    """
    row = session.get(CredentialOfferRow, offer_id)
    if row is None or row.sealed_offer is None or utc(row.expires_at) <= rt.clock.now():
        raise NotFoundError("no such credential offer")
    plain = rt.vault.open(
        session,
        bytes(row.sealed_offer),
        subject=row.subject_token,
        purpose="credentials",
        record=_offer_record(offer_id),
    )
    return CredentialOffer.model_validate_json(plain)


def token(session: Session, rt: Runtime, form: dict[str, str]) -> TokenResponse | OAuthError:
    """The token endpoint (OID4VCI 1.0 §6): consume the pre-authorized code exactly once.

    Raises :class:`OAuthError` (``unsupported_grant_type``, ``invalid_request``,
    ``invalid_grant``).  A wrong transaction code is *returned* as an error after the offer
    was marked failed, so the caller commits that before answering: a six-digit code gets
    one guess, not a million.
    """
    if form.get("grant_type") != PRE_AUTHORIZED_GRANT:
        raise OAuthError(
            "unsupported_grant_type", "only the pre-authorized code grant is supported"
        )
    code = form.get("pre-authorized_code")
    if not code:
        raise OAuthError("invalid_request", "pre-authorized_code is required")
    access_token = secrets.token_urlsafe(32)
    now = rt.clock.now()
    claimed = session.execute(
        update(CredentialOfferRow)
        .where(
            CredentialOfferRow.code_hash == _h(code),
            CredentialOfferRow.status == "offered",
            CredentialOfferRow.expires_at > now,
        )
        .values(
            status="token_issued", access_token_hash=_h(access_token), expires_at=now + _TOKEN_TTL
        )
        .returning(CredentialOfferRow.tx_code_hash)
    ).first()
    if claimed is None:
        raise OAuthError("invalid_grant", "the pre-authorized code is invalid, used or expired")
    expected_tx = claimed[0]
    if expected_tx is not None and _h(form.get("tx_code", "")) != expected_tx:
        session.execute(
            update(CredentialOfferRow)
            .where(CredentialOfferRow.code_hash == _h(code))
            .values(status="failed", access_token_hash=None)
        )
        return OAuthError("invalid_grant", "the transaction code is wrong")
    return TokenResponse(
        access_token=access_token,
        token_type="Bearer",  # noqa: S106 - the RFC 6749 token type, no secret
        expires_in=int(_TOKEN_TTL.total_seconds()),
    )


def new_nonce(session: Session, rt: Runtime) -> NonceResponse:
    """The nonce endpoint (OID4VCI 1.0 §7): a fresh single-use ``c_nonce``."""
    nonce = secrets.token_urlsafe(24)
    session.add(IssuerNonceRow(nonce_hash=_h(nonce), expires_at=rt.clock.now() + _NONCE_TTL))
    return NonceResponse(c_nonce=nonce)


def _check_proof(session: Session, rt: Runtime, proof: str) -> dict[str, str]:
    # OID4VCI 1.0 Appendix F.1: typ, alg, the holder key in `jwk`, aud, iat, nonce.
    try:
        # The holder key is the header's jwk here (Appendix F.1), so no header is refused
        # by the parser; which key members are allowed is checked below.
        jws = parse_compact(proof, algs=ACCEPTED_ALGS, refused_headers=())
    except JwsAlgorithmRefused as e:
        raise OAuthError("invalid_proof", "the proof signature or key is not acceptable") from e
    except CommonsError as e:
        raise OAuthError("invalid_proof", "the proof is not a JWT") from e
    header, payload = jws.header, jws.payload
    if header.get("typ") != "openid4vci-proof+jwt":
        raise OAuthError("invalid_proof", "the proof typ must be openid4vci-proof+jwt")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or {"x5c", "kid"} & set(header):
        raise OAuthError("invalid_proof", "the proof must carry the holder key as jwk only")
    try:
        key = public_key_from_jwk(jwk)
        jws.verify(key)
    except CommonsError as e:
        raise OAuthError("invalid_proof", "the proof signature or key is not acceptable") from e
    if payload.get("aud") != _issuer(rt):
        raise OAuthError("invalid_proof", "the proof audience is not this issuer")
    iat = payload.get("iat")
    now = int(rt.clock.now().timestamp())
    if not isinstance(iat, int) or not now - _PROOF_MAX_AGE <= iat <= now + 60:
        raise OAuthError("invalid_proof", "the proof is stale or from the future")
    nonce = payload.get("nonce")
    if not isinstance(nonce, str):
        raise OAuthError("invalid_nonce", "the proof has no nonce")
    used = session.execute(
        delete(IssuerNonceRow).where(
            IssuerNonceRow.nonce_hash == _h(nonce), IssuerNonceRow.expires_at > rt.clock.now()
        )
    )
    if not getattr(used, "rowcount", 0):
        raise OAuthError("invalid_nonce", "the nonce is unknown, used or expired")
    return public_key_to_jwk(key)


ClaimsCompletion = Callable[[Session, str, JsonObject, JsonObject], JsonObject]
"""What a layer above adds to an offer's claims at redemption, once the holder key is known:
``(session, type name, claims, holder JWK) -> claims`` (the gateway's community tier)."""


def issue_from_request(
    session: Session,
    rt: Runtime,
    authorization: str | None,
    body: JsonObject,
    complete: ClaimsCompletion | None = None,
) -> CredentialResponse:
    """The credential endpoint (OID4VCI 1.0 §8).  ``complete`` may add claims that depend
    on the holder key (known only now) to the offered ones before issuance.  Raises
    :class:`OAuthError`."""
    if not authorization or not authorization.startswith("Bearer "):
        raise OAuthError("invalid_token", "a bearer access token is required", status=401)
    if set(body) - {"credential_configuration_id", "proofs"}:
        raise OAuthError(
            "invalid_credential_request", "the request may not set credential contents"
        )
    proofs = body.get("proofs")
    if (
        not isinstance(proofs, dict)
        or set(proofs) != {"jwt"}
        or not isinstance(proofs["jwt"], list)
        or len(proofs["jwt"]) != 1
    ):
        raise OAuthError("invalid_proof", "exactly one jwt proof is required")
    offer = session.execute(
        update(CredentialOfferRow)
        .where(
            CredentialOfferRow.access_token_hash == _h(authorization[len("Bearer ") :]),
            CredentialOfferRow.status == "token_issued",
            CredentialOfferRow.expires_at > rt.clock.now(),
        )
        .values(status="issued")
        .returning(
            CredentialOfferRow.id,
            CredentialOfferRow.type_name,
            CredentialOfferRow.subject_token,
            CredentialOfferRow.sealed_claims,
            CredentialOfferRow.format,
        )
    ).first()
    if offer is None:
        raise OAuthError(
            "invalid_token", "the access token is invalid, used or expired", status=401
        )
    offer_id, type_name, subject, sealed, credential_format = offer
    if body.get("credential_configuration_id") != configuration_id(type_name, credential_format):
        raise OAuthError("unknown_credential_configuration", "not the offered credential")
    holder_jwk = _check_proof(session, rt, str(proofs["jwt"][0]))
    claims = json.loads(
        rt.vault.open(
            session, bytes(sealed), subject=subject, purpose="credentials", record=offer_id
        )
    )
    if complete is not None:
        claims = complete(session, type_name, claims, holder_jwk)
    try:
        issued = credentials.issue_credential(
            session,
            rt,
            Principal("system:oid4vci", "admin"),
            type_name=type_name,
            subject_token=subject,
            claims=claims,
            holder_jwk=holder_jwk,
            credential_format=credential_format,
        )
    except ValidationError as e:
        raise OAuthError("invalid_credential_request", e.detail) from e
    return CredentialResponse(credentials=[{"credential": issued.credential}])
