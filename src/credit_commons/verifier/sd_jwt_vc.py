"""The SD-JWT VC checks after RFC 9901 verification, shared by the platform's verifier and
the lender client (``credit_commons.client``): pure, no database, no network.

After ``sd_jwt_verify.verify`` has checked the signature, the Disclosures and the times:

1. ``typ`` must be ``dc+sd-jwt`` (SD-JWT VC draft §3.2.1) and ``vct`` a string (§3.2.2.1.1);
2. the status reference, when present, is ``status.status_list`` with a string ``uri`` and
   an integer ``idx`` (Token Status List draft §6.2);
3. a status read from the list is turned into :class:`CredentialRevoked` (``0x01``) or
   :class:`CredentialSuspended` (``0x02``).

Where the keys and the list come from is the caller's business: the platform reads its own
from the database, the lender client fetches them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import IntegrityError
from credit_commons.formats.status_list import TokenStatus
from credit_commons.verifier.sd_jwt_verify import Verified

__all__ = [
    "SD_JWT_VC_TYP",
    "CredentialRevoked",
    "CredentialSuspended",
    "StatusReference",
    "UnknownIssuerKey",
    "UntrustedIssuer",
    "VcFacts",
    "disclosed_claims",
    "raise_for_status",
    "sd_jwt_vc_facts",
    "status_read",
]

SD_JWT_VC_TYP = "dc+sd-jwt"


class CredentialRevoked(IntegrityError):
    """The credential was revoked by its issuer."""

    code = "credential.revoked"
    title = "Credential revoked"


class CredentialSuspended(IntegrityError):
    """The credential is suspended by its issuer."""

    code = "credential.suspended"
    title = "Credential suspended"


class UnknownIssuerKey(IntegrityError):
    """The credential names an issuer or key this verifier does not know."""

    code = "credential.issuer_unknown"
    title = "Unknown issuer"


class UntrustedIssuer(UnknownIssuerKey):
    """The credential's issuer is neither the platform nor on the verifier's trust list."""

    code = "credential.issuer_untrusted"
    title = "Untrusted issuer"


@dataclass(frozen=True, slots=True)
class StatusReference:
    """Where a credential's status is: entry ``index`` of the Token Status List at ``uri``."""

    uri: str
    index: int


@dataclass(frozen=True, slots=True)
class VcFacts:
    """What an SD-JWT VC says about itself once verified."""

    issuer: str
    vct: str
    status: StatusReference | None


def sd_jwt_vc_facts(verified: Verified) -> VcFacts:
    """Steps 1 and 2 on a verified SD-JWT: its issuer, ``vct`` and status reference.

    Raises :class:`UnknownIssuerKey` for a token that is not an SD-JWT VC, has no string
    ``vct`` or ``iss``, or whose status reference is malformed.
    """
    if verified.header.get("typ") != SD_JWT_VC_TYP:
        raise UnknownIssuerKey("not an SD-JWT VC")
    vct, iss = verified.payload.get("vct"), verified.payload.get("iss")
    if not isinstance(vct, str) or not isinstance(iss, str):
        raise UnknownIssuerKey("unknown credential type")
    if "status" not in verified.payload:
        return VcFacts(iss, vct, None)
    status = verified.payload["status"]
    reference = status.get("status_list") if isinstance(status, dict) else None
    uri = reference.get("uri") if isinstance(reference, dict) else None
    index = reference.get("idx") if isinstance(reference, dict) else None
    if not isinstance(uri, str) or not isinstance(index, int) or isinstance(index, bool):
        raise UnknownIssuerKey("the credential's status reference is malformed")
    return VcFacts(iss, vct, StatusReference(uri, index))


def status_read(facts: VcFacts, *, foreign: bool) -> bool:
    """Whether the verifier's status step reads the credential's status list: always for
    the platform's own credentials (they must name one), for a ``foreign`` issuer's only
    when it names a list."""
    return not foreign or facts.status is not None


def raise_for_status(current: TokenStatus) -> None:
    """Step 3: raise :class:`CredentialRevoked` or :class:`CredentialSuspended` unless the
    status is ``VALID`` (other values are application-specific and not refusals here)."""
    if current is TokenStatus.INVALID:
        raise CredentialRevoked("the credential was revoked")
    if current is TokenStatus.SUSPENDED:
        raise CredentialSuspended("the credential is suspended")


def disclosed_claims(payload: Mapping[str, Any]) -> JsonObject:
    """The processed payload a verifier reports: without the holder key and the status."""
    return {k: v for k, v in payload.items() if k not in {"cnf", "status"}}
