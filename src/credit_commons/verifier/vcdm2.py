"""Verifying this platform's W3C VCDM 2.0 credentials (``vc+jwt``) and their Bitstring
Status List entries: the VC-JWT path of the pipeline for the Data Model 2.0
(``pipeline.verify_vc_jwt_credential`` hands a ``vc+jwt`` here; a VCDM 1.1 JWT stays
there).

The steps, numbered as the pipeline's (seed 002 §5):

3. issuer signature — the compact JWS, its ``kid`` and ``iss`` only picking the key: one of
   this platform's issuer keys (every version), for an ``iss`` that is one of its issuer
   identifiers, never a key from the token; then the signature, the VCDM 2.0 shape and the
   validity period (``formats/vc_jose.py``), and the type, one of the catalogue's;
9. status — every ``credentialStatus`` entry must be a ``BitstringStatusListEntry`` of one
   of this issuer's lists (an entry this verifier cannot check is refused), and is checked
   as W3C Bitstring Status List §3.2 says: against the list's
   ``BitstringStatusListCredential`` as this platform publishes it (signature by the issuer
   key, ``BitstringStatusListCredential`` type, its ``id`` the list's URL, the entry's
   ``statusPurpose`` among the list's), not against the database row behind it;

then the result: the types, the holder (``credentialSubject.id``) and the subject claims.

Verification raises; a return means every check passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from credit_commons.formats.bitstring_status_list import (
    BitstringStatusEntry,
    status_entries,
    verify_status_list_credential,
)
from credit_commons.formats.jws import parse_compact
from credit_commons.formats.vc_jose import SecuredCredential, verify_vc_jose
from credit_commons.issuer import (
    ISSUER_KEY,
    is_own_issuer,
    own_status_list_id,
    render_status_list,
    status_uri,
)
from credit_commons.issuer import service as catalogue_service
from credit_commons.keys import ACCEPTED_ALGS, KeyNotFound, PublicKey
from credit_commons.runtime import Runtime
from credit_commons.verifier.schemas import VcJwtVerified
from credit_commons.verifier.sd_jwt_vc import (
    CredentialRevoked,
    CredentialSuspended,
    UnknownIssuerKey,
)

__all__ = ["check_own_status", "verify_vc_jose_credential"]


def verify_vc_jose_credential(session: Session, rt: Runtime, token: str) -> VcJwtVerified:
    """Verify one of this issuer's VCDM 2.0 ``vc+jwt`` credentials (the module's steps).

    Raises ``VcJoseInvalid``/``VcJwtExpired`` and the key's ``SignatureInvalid`` (step 3),
    :class:`UnknownIssuerKey` (an unknown key or type in step 3, a foreign list in step 9),
    ``StatusListInvalid`` for a status entry that is not a Bitstring Status List one,
    ``StatusVerificationError`` for a list that does not verify, and
    :class:`CredentialRevoked` / :class:`CredentialSuspended`.
    """
    keys = _own_issuer_keys(session, rt)
    now = int(rt.clock.now().timestamp())
    # Step 3: the kid and iss only pick the key; verify_vc_jose refuses embedded keys.
    unverified = parse_compact(token, algs=ACCEPTED_ALGS, refused_headers=())
    key = keys.get(str(unverified.header.get("kid")))
    if key is None or not is_own_issuer(session, rt, unverified.payload.get("iss")):
        raise UnknownIssuerKey("the credential's issuer key is not known here")
    secured = verify_vc_jose(token, key, algs=ACCEPTED_ALGS, now=now)
    types = {t.name for t in catalogue_service.list_types(session, rt)}
    if not types & set(secured.types):
        raise UnknownIssuerKey("unknown credential type")
    check_own_status(session, rt, keys, secured.credential, now)  # step 9
    return _decision(secured)


def check_own_status(
    session: Session,
    rt: Runtime,
    keys: dict[str, PublicKey],
    credential: Mapping[str, Any],
    now: int,
) -> None:
    """Step 9 for a VCDM 2.0 credential of this issuer: a revocation entry is required, and
    every entry is checked against the list as published (W3C Bitstring Status List §3.2).

    Raises :class:`UnknownIssuerKey`, ``StatusListInvalid``, ``StatusVerificationError``,
    :class:`CredentialRevoked` or :class:`CredentialSuspended`.
    """
    entries = status_entries(credential)
    if not any(entry.purpose == "revocation" for entry in entries):
        raise UnknownIssuerKey("the credential's status list is not one of this issuer's")
    for entry in entries:
        _check_status(session, rt, keys, entry, now)


def _check_status(
    session: Session,
    rt: Runtime,
    keys: dict[str, PublicKey],
    entry: BitstringStatusEntry,
    now: int,
) -> None:
    # Step 9 for one entry: the list credential as published, verified per W3C §3.2.
    list_id = own_status_list_id(session, rt, entry.list_uri)
    if list_id is None:
        raise UnknownIssuerKey("the credential's status list is not one of this issuer's")
    published = render_status_list(session, rt, list_id)
    token = published.token
    if not isinstance(token, str):  # a bitstring list is always a vc+jwt
        raise UnknownIssuerKey("the credential's status list is not a bitstring list")
    kid = str(parse_compact(token, algs=ACCEPTED_ALGS).header.get("kid"))
    if kid not in keys:
        raise UnknownIssuerKey("the status list's key is not known here")
    # The list is published at this platform's current URL, which the entry of a credential
    # issued under an earlier one (own_status_list_id accepted it) does not name.
    published_entry = BitstringStatusEntry(status_uri(rt, list_id), entry.index, entry.purpose)
    bit = verify_status_list_credential(
        token, keys[kid], published_entry, algs=ACCEPTED_ALGS, now=now
    )
    if bit and entry.purpose == "suspension":
        raise CredentialSuspended("the credential is suspended")
    if bit:  # revocation, and any other purpose whose bit means "no longer valid"
        raise CredentialRevoked("the credential was revoked")


def _decision(secured: SecuredCredential) -> VcJwtVerified:
    # Every check passed.
    subject = secured.subject
    holder = subject.get("id")
    return VcJwtVerified(
        valid=True,
        type=[t for t in secured.types if t != "VerifiableCredential"],
        holder=holder if isinstance(holder, str) else None,
        claims={k: v for k, v in subject.items() if k != "id"},
        format="vc+jwt",
    )


def _own_issuer_keys(session: Session, rt: Runtime) -> dict[str, PublicKey]:
    # Every version of this platform's issuer key, by kid (none before the first issuance).
    try:
        versions = rt.key_store.versions(session, ISSUER_KEY)
    except KeyNotFound:
        return {}
    return {v.kid: v.public_key for v in versions}
