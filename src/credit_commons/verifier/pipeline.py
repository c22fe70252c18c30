"""The verification pipeline: every check a credential or presentation passes here, numbered
in the order it runs, each step a function of this module.

SD-JWT VCs — a presentation with Key Binding (issue 5, item 4: :func:`verify_presentation`)
or an issuer-signed credential handed over without it (issue 14, item 2:
:func:`verify_sd_jwt_credential`), issued by this platform or by a trusted issuer:

1. :func:`parse` — split the serialization; a KB-JWT must be present for a presentation and
   absent for a credential (RFC 9901 §7.3 steps 1-3, §7.1 step 1);
2. :func:`issuer_key` — for this platform (``iss`` is its public URL, or an earlier one) the
   key named by ``kid`` among its own keys (every version verifies), never a key from the
   token itself;
3. :func:`trust` — any other ``iss`` only when it is on the trust list
   (:mod:`~credit_commons.verifier.trust`, else :class:`UntrustedIssuer`), its key resolved
   through its metadata or DID document (:mod:`~credit_commons.verifier.foreign`);
4. :func:`signature` — the issuer signature with the algorithm allow-list and every
   Disclosure rule (§7.1 steps 2-5); it asks steps 2-3 for the key of each signature once
   that signature's header has passed;
5. :func:`validity` — ``exp``/``nbf``/``iat`` with leeway (§7.1 step 6);
6. :func:`key_binding` — the KB-JWT: holder key, audience, nonce, freshness, ``sd_hash``
   (§7.3 step 5);
7. :func:`credential_type` — ``typ`` must be ``dc+sd-jwt``; the ``vct`` of this platform's
   credentials must be a type of its catalogue, a foreign one a string (``sd_jwt_vc.py``,
   shared with the lender client);
8. :func:`status` — this platform's lists straight from the database; a trusted issuer's
   list fetched (SSRF guard, signature by that issuer, cache) when the credential names one.
   A revoked or suspended credential raises :class:`CredentialRevoked` /
   :class:`CredentialSuspended`;
9. :func:`decision` — every check passed: the result (``valid``, the type and the disclosed
   claims, without ``cnf`` and ``status``).

Steps 4-6 are the stages of the RFC 9901 verifier (:mod:`~credit_commons.verifier.sd_jwt_verify`),
which :func:`~credit_commons.verifier.sd_jwt_verify.verify` runs in the same order for callers
with their own key resolver.

VC-JWTs (``jwt_vc_json``, this platform's only: :func:`verify_vc_jwt_credential`) take the
same steps where they apply: 1 parse (the compact JWS, unverified), 2 issuer key, 4-5 the
signature and validity period (``formats/vc_jwt.py``), 7 type, 8 the bitstring status,
9 decision.

Predicate attestations have their own numbered steps
(:func:`~credit_commons.verifier.predicates.verify_attestation`).

Verification raises; a return means every check passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from credit_commons.formats.jws import CompactJws, parse_compact
from credit_commons.formats.sd_jwt_format import Parts
from credit_commons.formats.status_list import TokenStatus
from credit_commons.formats.vc_jwt import verify_vc_jwt
from credit_commons.issuer import (
    ISSUER_KEY,
    StatusKind,
    StatusRef,
    get_status,
    is_own_issuer,
    own_status_list_id,
)
from credit_commons.issuer import service as catalogue_service
from credit_commons.keys import ACCEPTED_ALGS, KeyNotFound, PublicKey
from credit_commons.runtime import Runtime
from credit_commons.verifier import foreign
from credit_commons.verifier import sd_jwt_verify as rfc9901
from credit_commons.verifier import trust as trust_list
from credit_commons.verifier.schemas import SdJwtVerified, VcJwtVerified
from credit_commons.verifier.sd_jwt_vc import (
    CredentialRevoked,
    CredentialSuspended,
    UnknownIssuerKey,
    UntrustedIssuer,
    VcFacts,
    disclosed_claims,
    raise_for_status,
    sd_jwt_vc_facts,
)

__all__ = [
    "CredentialRevoked",
    "CredentialSuspended",
    "UnknownIssuerKey",
    "UntrustedIssuer",
    "verify_presentation",
    "verify_sd_jwt_credential",
    "verify_vc_jwt_credential",
]


def verify_presentation(
    session: Session, rt: Runtime, presentation: str, *, audience: str, nonce: str
) -> SdJwtVerified:
    """Verify an SD-JWT+KB presentation and its status (steps 1-9); returns the disclosed
    claims.

    Raises the SD-JWT errors (``credential.*``; ``credential.key_binding_missing`` without a
    KB-JWT), :class:`UnknownIssuerKey`, :class:`UntrustedIssuer`,
    ``foreign.UnknownForeignKey``/``IssuerMetadataInvalid``, ``StatusListRejected``, the
    fetcher's ``UnsafeUrl``/``FetchFailed``, :class:`CredentialRevoked` or
    :class:`CredentialSuspended`.
    """
    return _verify_sd_jwt_vc(
        _Check(session, rt, key_binding=True, audience=audience, nonce=nonce), presentation
    )


def verify_sd_jwt_credential(session: Session, rt: Runtime, credential: str) -> SdJwtVerified:
    """Verify an issuer-signed SD-JWT VC handed over without Key Binding (a credential a
    lender retrieved under consent): the same steps as :func:`verify_presentation` except
    that a KB-JWT must be absent.

    Raises what :func:`verify_presentation` raises, with ``credential.key_binding_unexpected``
    (``KeyBindingUnexpected``) for an SD-JWT that carries a KB-JWT.
    """
    return _verify_sd_jwt_vc(_Check(session, rt, key_binding=False), credential)


@dataclass
class _Check:
    """One verification's inputs and what its steps learn on the way."""

    session: Session
    rt: Runtime
    key_binding: bool
    audience: str | None = None
    nonce: str | None = None
    #: This platform's issuer keys by ``kid`` (step 2).
    own_keys: dict[str, PublicKey] = field(default_factory=dict)
    #: The trust-list kind of a foreign issuer, once step 3 has accepted it.
    foreign_kind: trust_list.IssuerKind | None = None

    @property
    def now(self) -> int:
        """The verifier's clock, in Unix seconds."""
        return int(self.rt.clock.now().timestamp())


def _verify_sd_jwt_vc(check: _Check, text: str) -> SdJwtVerified:
    check.own_keys = _own_issuer_keys(check.session, check.rt)
    with rfc9901.nesting_guard():
        parts = parse(check, text)  # step 1
        signed = signature(check, parts)  # step 4, with steps 2-3 for each key
        validity(check, signed)  # step 5
        bound = key_binding(check, parts, signed)  # step 6
    facts = credential_type(check, signed.verified(bound))  # step 7
    status(check, facts)  # step 8
    return decision(signed.payload, facts.vct)  # step 9


# -- the steps, in order -------------------------------------------------------------------


def parse(check: _Check, text: str) -> Parts:
    """Step 1: the SD-JWT's parts, with a KB-JWT exactly when key binding is expected."""
    return rfc9901.parse_presentation(
        text, require_key_binding=check.key_binding, forbid_key_binding=not check.key_binding
    )


def issuer_key(check: _Check, header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
    """Step 2: the issuer's key — from this platform's key store when ``iss`` is this
    platform (under its current public URL or an earlier one: ``issuer/identifiers.py``),
    otherwise from :func:`trust` — never from the token itself.

    Raises :class:`UnknownIssuerKey` for a ``kid`` this platform does not hold.
    """
    iss = payload.get("iss")
    if is_own_issuer(check.session, check.rt, iss):
        if header.get("kid") not in check.own_keys:
            raise UnknownIssuerKey("the credential's issuer key is not known here")
        return check.own_keys[str(header["kid"])]
    return trust(check, iss, header)


def trust(check: _Check, iss: object, header: Mapping[str, Any]) -> PublicKey:
    """Step 3: a foreign issuer must be on the trust list; its key comes from its published
    metadata or DID document.

    Raises :class:`UntrustedIssuer`, and ``UnknownForeignKey``/``IssuerMetadataInvalid`` or
    the fetcher's errors from the resolution.
    """
    kind = trust_list.trusted_kind(check.session, iss) if isinstance(iss, str) else None
    if kind is None or not isinstance(iss, str):
        raise UntrustedIssuer("the credential's issuer is not trusted here")
    check.foreign_kind = kind
    return foreign.foreign_issuers(check.rt).key(iss, kind, header)


def signature(check: _Check, parts: Parts) -> rfc9901.IssuerSigned:
    """Step 4: the issuer signature (its key from steps 2-3) and the Disclosures."""
    return rfc9901.verify_issuer_jwt(
        parts, lambda header, payload: issuer_key(check, header, payload)
    )


def validity(check: _Check, signed: rfc9901.IssuerSigned) -> None:
    """Step 5: ``exp``, ``nbf`` and ``iat`` against the verifier's clock, with leeway."""
    rfc9901.check_validity(signed.payload, check.now)


def key_binding(
    check: _Check, parts: Parts, signed: rfc9901.IssuerSigned
) -> rfc9901.KeyBinding | None:
    """Step 6: the KB-JWT for this audience and nonce (``None`` for a credential without
    one, which step 1 required)."""
    return rfc9901.verify_key_binding(
        parts, signed, audience=check.audience, nonce=check.nonce, now=check.now
    )


def credential_type(check: _Check, verified: rfc9901.Verified) -> VcFacts:
    """Step 7: an SD-JWT VC (``typ``, ``vct``, the status reference's shape); for this
    platform's credentials a ``vct`` of its catalogue.

    Raises :class:`UnknownIssuerKey` ("unknown credential type" and the like).
    """
    facts = sd_jwt_vc_facts(verified)
    ours = check.foreign_kind is None
    if ours and catalogue_service.get_type_by_vct(check.session, check.rt, facts.vct) is None:
        raise UnknownIssuerKey("unknown credential type")
    return facts


def status(check: _Check, facts: VcFacts) -> None:
    """Step 8: the credential's status.  This platform's credentials must name one of its
    own lists; a trusted issuer's are checked when they name a list.

    Raises :class:`CredentialRevoked`, :class:`CredentialSuspended`, and
    :class:`UnknownIssuerKey` for a list of this platform's that is not its own; for a
    foreign list ``StatusListRejected`` and the fetcher's errors.
    """
    if check.foreign_kind is not None:
        if facts.status is not None:
            raise_for_status(
                foreign.foreign_issuers(check.rt).status(
                    facts.issuer, check.foreign_kind, facts.status.uri, facts.status.index
                )
            )
        return
    reference = facts.status
    list_id = own_status_list_id(check.session, check.rt, reference.uri) if reference else None
    if list_id is None or reference is None:
        raise UnknownIssuerKey("the credential's status list is not one of this issuer's")
    raise_for_status(
        get_status(
            check.session,
            StatusRef(list_id, reference.index, StatusKind.TOKEN),
        )
    )


def decision(payload: Mapping[str, Any], vct: str) -> SdJwtVerified:
    """Step 9: every check passed — the result with the claims the holder disclosed."""
    return SdJwtVerified(valid=True, vct=vct, claims=disclosed_claims(payload))


# -- VC-JWT --------------------------------------------------------------------------------


def verify_vc_jwt_credential(session: Session, rt: Runtime, token: str) -> VcJwtVerified:
    """Verify one of this issuer's ``jwt_vc_json`` credentials: signature by the issuer key
    named by ``kid``, validity period, type, and its bitstring status.

    Raises ``VcJwtInvalid``/``VcJwtExpired``, :class:`UnknownIssuerKey` or
    :class:`CredentialRevoked`.
    """
    keys = _own_issuer_keys(session, rt)
    # Step 1: the kid and iss only pick the key; verify_vc_jwt refuses embedded keys.
    unverified = parse_compact(token, algs=ACCEPTED_ALGS, refused_headers=())
    key = _vc_jwt_issuer_key(session, rt, keys, unverified)  # step 2
    # Steps 4-5: the signature and the validity period.
    payload = verify_vc_jwt(token, key, algs=ACCEPTED_ALGS, now=int(rt.clock.now().timestamp()))
    vc = payload["vc"]
    _vc_jwt_type(session, rt, vc)  # step 7
    _vc_jwt_status(session, rt, vc)  # step 8
    subject = {k: v for k, v in vc.get("credentialSubject", {}).items() if k != "id"}
    return VcJwtVerified(  # step 9
        valid=True,
        type=[t for t in vc["type"] if t != "VerifiableCredential"],
        holder=payload.get("sub"),
        claims=subject,
    )


def _vc_jwt_issuer_key(
    session: Session, rt: Runtime, keys: Mapping[str, PublicKey], unverified: CompactJws
) -> PublicKey:
    key = keys.get(str(unverified.header.get("kid")))
    if key is None or not is_own_issuer(session, rt, unverified.payload.get("iss")):
        raise UnknownIssuerKey("the credential's issuer key is not known here")
    return key


def _vc_jwt_type(session: Session, rt: Runtime, vc: Mapping[str, Any]) -> None:
    types = {t.name for t in catalogue_service.list_types(session, rt)}
    if not types & set(vc.get("type", [])):
        raise UnknownIssuerKey("unknown credential type")


def _vc_jwt_status(session: Session, rt: Runtime, vc: Mapping[str, Any]) -> None:
    entry = vc.get("credentialStatus", {})
    uri, index = entry.get("statusListCredential"), entry.get("statusListIndex")
    list_id = own_status_list_id(session, rt, uri)
    if list_id is None or not str(index).isdigit():
        raise UnknownIssuerKey("the credential's status list is not one of this issuer's")
    current = get_status(session, StatusRef(list_id, int(index), StatusKind.BITSTRING))
    if current is TokenStatus.INVALID:
        raise CredentialRevoked("the credential was revoked")


def _own_issuer_keys(session: Session, rt: Runtime) -> dict[str, PublicKey]:
    # Every version of this platform's issuer key, by kid (none before the first issuance).
    try:
        versions = rt.key_store.versions(session, ISSUER_KEY)
    except KeyNotFound:
        return {}
    return {v.kid: v.public_key for v in versions}
