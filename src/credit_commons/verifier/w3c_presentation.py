"""The pipeline's steps for a W3C credential presented in a VP-JWT (``jwt_vc_json``,
OpenID4VP 1.0 Appendix B.1; docs/verifier.md, "W3C credentials"), numbered as the
pipeline's (seed 002 §5).  ``pipeline.py`` runs them in this order, with its own steps 6-8:

3. :func:`issuer_signature` — the credential inside: a VCDM 1.1 ``jwt_vc_json`` or a VCDM
   2.0 ``vc+jwt``, its key this platform's (every version, by ``kid``) when ``iss`` is one
   of its identifiers, else — for an issuer on the trust list or in a pinned bundle — from
   its metadata or DID document, never from the token (an untrusted issuer's keys are never
   fetched); then the signature, shape, validity period and, for this platform's
   credentials, a type of its catalogue;
2. :func:`holder_binding` — the presentation's ``iss`` is the credential's subject DID, and
   the holder's signature verifies under the key its ``kid`` names in that DID's current
   document; then ``nonce`` and ``aud`` are this request's (``formats/vp_jwt.py``);
5. the same function: that key is one the DID document lists under ``authentication``
   (``did_binding.authorized``);
4. :func:`privacy_tombstone` — a credential of this platform whose subject was erased;
9. :func:`status` — this platform's bitstring lists (VCDM 1.1: the database; VCDM 2.0: the
   published ``BitstringStatusListCredential``); a foreign credential that names a status
   entry is refused (``status_unchecked``: no foreign bitstring list is fetched here), and
   one that names none is marked unchecked for the policy.

Step 3 runs before step 2, as for SD-JWT: the holder is the subject the issuer signed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

from credit_commons.core.encoding import JsonObject
from credit_commons.formats.bitstring_status_list import status_entries
from credit_commons.formats.jws import parse_compact
from credit_commons.formats.vc_jose import is_vc_jose, verify_vc_jose
from credit_commons.formats.vc_jwt import verify_vc_jwt
from credit_commons.formats.vp_jwt import UnverifiedVp, verify_vp_jwt
from credit_commons.issuer import is_own_issuer, own_status_list_id, subject_erased
from credit_commons.issuer import service as catalogue_service
from credit_commons.keys import ACCEPTED_ALGS, PublicKey, method_key, public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.verifier import did_binding, foreign
from credit_commons.verifier.reasons import Reason, VerificationDenied
from credit_commons.verifier.sd_jwt_vc import UnknownIssuerKey, UntrustedIssuer
from credit_commons.verifier.trust import IssuerKind
from credit_commons.verifier.vcdm2 import check_own_status
from credit_commons.verifier.w3c import vc_jwt_status

__all__ = [
    "W3cCredential",
    "holder_binding",
    "issuer_signature",
    "privacy_tombstone",
    "status",
]

#: How a foreign issuer is trusted for a credential type, or None (``pipeline``'s lookup).
TrustedKind = Callable[[object, str], IssuerKind | None]


@dataclass(frozen=True, slots=True)
class W3cCredential:
    """A W3C credential whose issuer signature, shape and validity passed step 3."""

    version: Literal["1.1", "2.0"]
    issuer: str
    types: tuple[str, ...]
    #: What DCQL claims paths point into (OpenID4VP 1.0 §7.1, B.1): the ``vc`` object of a
    #: VCDM 1.1 JWT, the credential (the payload) of a VCDM 2.0 ``vc+jwt``.
    document: JsonObject = field(repr=False)
    holder: str | None
    issued_at: int | None
    #: The trust-list kind of a foreign issuer; None for this platform's credentials.
    foreign_kind: IssuerKind | None

    @property
    def main_type(self) -> str:
        """The credential's most specific type: the first that is not
        ``VerifiableCredential``."""
        return next((t for t in self.types if t != "VerifiableCredential"), "VerifiableCredential")

    @property
    def claims(self) -> JsonObject:
        """The subject's claims (``credentialSubject`` without ``id``)."""
        subject = self.document.get("credentialSubject")
        if not isinstance(subject, dict):
            return {}
        return {k: v for k, v in subject.items() if k != "id"}


def _types(value: object) -> tuple[str, ...]:
    listed = [value] if isinstance(value, str) else value
    if isinstance(listed, list) and all(isinstance(t, str) for t in listed):
        return tuple(listed)
    return ()


def issuer_signature(
    session: Session,
    rt: Runtime,
    token: str,
    *,
    own_keys: Mapping[str, PublicKey],
    trusted_kind: TrustedKind,
    now: int,
) -> W3cCredential:
    """Step 3 for the credential inside a VP-JWT (this module's step 3).

    Raises :class:`UnknownIssuerKey`, :class:`UntrustedIssuer`, the fetcher's and
    ``foreign``'s errors, ``JwsInvalid``, ``VcJwtInvalid``/``VcJoseInvalid``,
    ``VcJwtExpired`` and the key's ``SignatureInvalid``.
    """
    # The kid and iss only pick the key; verify_vc_jwt / verify_vc_jose refuse embedded keys.
    unverified = parse_compact(token, algs=ACCEPTED_ALGS, refused_headers=())
    header, payload = unverified.header, unverified.payload
    v2 = is_vc_jose(header)
    inner = payload if v2 else payload.get("vc")
    claimed_types = _types(inner.get("type")) if isinstance(inner, dict) else ()
    iss = payload.get("iss")
    kind: IssuerKind | None = None
    key: PublicKey
    if is_own_issuer(session, rt, iss):
        found = own_keys.get(str(header.get("kid")))
        if found is None:
            raise UnknownIssuerKey("the credential's issuer key is not known here")
        key = found
    else:
        main = next((t for t in claimed_types if t != "VerifiableCredential"), "")
        kind = trusted_kind(iss, main)
        if kind is None or not isinstance(iss, str):
            raise UntrustedIssuer("the credential's issuer is not trusted here")
        key = foreign.foreign_issuers(rt).key(iss, kind, header)
    credential = _verified(token, key, v2=v2, now=now, foreign_kind=kind)
    if kind is None:
        catalogue = {t.name for t in catalogue_service.list_types(session, rt)}
        if not catalogue & set(credential.types):
            raise UnknownIssuerKey("unknown credential type")
    return credential


def _verified(
    token: str, key: PublicKey, *, v2: bool, now: int, foreign_kind: IssuerKind | None
) -> W3cCredential:
    if v2:
        secured = verify_vc_jose(token, key, algs=ACCEPTED_ALGS, now=now)
        holder = secured.subject.get("id")
        iat = secured.credential.get("iat")
        return W3cCredential(
            version="2.0",
            issuer=secured.issuer,
            types=secured.types,
            document=secured.credential,
            holder=holder if isinstance(holder, str) and holder.startswith("did:") else None,
            issued_at=iat if isinstance(iat, int) and not isinstance(iat, bool) else None,
            foreign_kind=foreign_kind,
        )
    payload = verify_vc_jwt(token, key, algs=ACCEPTED_ALGS, now=now)
    vc: JsonObject = payload["vc"]
    subject = vc.get("credentialSubject")
    # VCDM 1.1 §6.3.1: sub is the subject's id.
    holder = payload.get("sub") or (subject.get("id") if isinstance(subject, dict) else None)
    iat = payload.get("iat", payload.get("nbf"))
    return W3cCredential(
        version="1.1",
        issuer=str(payload["iss"]),
        types=_types(vc.get("type")),
        document=vc,
        holder=holder if isinstance(holder, str) and holder.startswith("did:") else None,
        issued_at=iat if isinstance(iat, int) and not isinstance(iat, bool) else None,
        foreign_kind=foreign_kind,
    )


def holder_binding(
    rt: Runtime,
    vp: UnverifiedVp,
    credential: W3cCredential,
    *,
    audience: str | None,
    nonce: str | None,
    now: int,
) -> None:
    """Steps 2 and 5: the presentation is the credential's subject's, signed by a key its
    DID document authorizes, for this request.

    Raises :class:`VerificationDenied` (``binding_invalid`` for a credential without a
    holder DID or a presentation by another holder; ``did_key_not_authorized``), the
    resolver's ``DidInvalid``/``DidResolutionFailed``, ``KeyInvalid``, and
    ``VpSignatureInvalid``, ``VpNonceMismatch``, ``VpAudienceMismatch``, ``VpStale``.
    """
    if credential.holder is None:
        raise VerificationDenied(Reason.BINDING_INVALID, "the credential names no holder DID")
    if vp.holder != credential.holder.split("#", 1)[0]:
        raise VerificationDenied(
            Reason.BINDING_INVALID, "the presentation is not by the credential's subject"
        )
    document = did_binding.holder_dids(rt).resolve(vp.holder)
    key = method_key(document, vp.holder, vp.kid.split("#", 1)[1])
    verify_vp_jwt(vp, key, audience=audience, nonce=nonce, now=now)  # step 2
    did_binding.authorized(document, vp.holder, public_key_to_jwk(key))  # step 5


def _own_entry(session: Session, rt: Runtime, credential: W3cCredential) -> tuple[str, int] | None:
    # The list id and index of this platform's revocation entry of the credential.
    if credential.version == "2.0":
        for entry in status_entries(credential.document):
            list_id = own_status_list_id(session, rt, entry.list_uri)
            if entry.purpose == "revocation" and list_id is not None:
                return list_id, entry.index
        return None
    entry_1 = credential.document.get("credentialStatus")
    if not isinstance(entry_1, dict):
        return None
    list_id = own_status_list_id(session, rt, entry_1.get("statusListCredential"))
    index = entry_1.get("statusListIndex")
    if list_id is None or not (str(index).isascii() and str(index).isdigit()):
        return None
    return list_id, int(str(index))


def privacy_tombstone(session: Session, rt: Runtime, credential: W3cCredential) -> None:
    """Step 4: a credential of this platform whose subject was erased is refused.

    Raises :class:`VerificationDenied` (``privacy_erased``).
    """
    if credential.foreign_kind is not None:
        return
    found = _own_entry(session, rt, credential)
    if found is not None and subject_erased(session, *found):
        raise VerificationDenied(Reason.PRIVACY_ERASED)


def status(
    session: Session,
    rt: Runtime,
    credential: W3cCredential,
    *,
    own_keys: Mapping[str, PublicKey],
    now: int,
) -> bool:
    """Step 9; returns whether the status was checked (False only for a foreign credential
    that names no status entry).

    Raises :class:`VerificationDenied` (``status_unchecked``: a foreign credential's
    status entry, which this verifier cannot check), and for this platform's credentials
    :class:`UnknownIssuerKey`, ``CredentialRevoked``, ``CredentialSuspended``, and the
    status list's errors.
    """
    if credential.foreign_kind is not None:
        if "credentialStatus" in credential.document:
            raise VerificationDenied(
                Reason.STATUS_UNCHECKED, "a foreign W3C credential's status cannot be checked here"
            )
        return False
    if credential.version == "2.0":
        check_own_status(session, rt, dict(own_keys), credential.document, now)
    else:
        vc_jwt_status(session, rt, credential.document)
    return True
