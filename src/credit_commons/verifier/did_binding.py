"""DID key binding (seed 002 §5 step 5): when a credential's holder is a DID, the key that
signed the Key Binding JWT must be one the DID's current document authorizes.

The holder is a DID when the credential's ``sub`` is one, or its ``cnf`` names a key by a
DID URL in ``kid`` (RFC 7800 §3.4).  The ``cnf.jwk`` — the key the KB-JWT was verified
with — must then be the key of a verification method the document lists under
``authentication`` (DID Core §5.3.1: the relationship for proving control of the DID, which
a Key Binding JWT does), by value or by reference to ``verificationMethod``.  Keys compare
by their RFC 7638 thumbprints.

:func:`authorized` is pure; :func:`holder_dids` is each runtime's resolver (did:key locally,
did:web through the SSRF guard), which tests replace with ``HOLDER_DIDS.set(rt, ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credit_commons.core.attached import Attached
from credit_commons.core.encoding import JsonObject
from credit_commons.core.net import OutboundFetcher
from credit_commons.keys import (
    DidResolutionFailed,
    DidResolver,
    KeyInvalid,
    public_key_from_jwk,
    thumbprint,
    verification_method_key,
)
from credit_commons.runtime import Runtime
from credit_commons.verifier.reasons import Reason, VerificationDenied

__all__ = ["HOLDER_DIDS", "authorized", "holder_did", "holder_dids"]


def holder_did(payload: Mapping[str, Any]) -> str | None:
    """The DID the credential's holder is, when it is one: ``sub``, else the DID of
    ``cnf.kid``; ``None`` otherwise.  Raises nothing."""
    sub = payload.get("sub")
    if isinstance(sub, str) and sub.startswith("did:"):
        return sub.split("#", 1)[0]
    cnf = payload.get("cnf")
    kid = cnf.get("kid") if isinstance(cnf, dict) else None
    if isinstance(kid, str) and kid.startswith("did:"):
        return kid.split("#", 1)[0]
    return None


def _method_thumbprint(method: Mapping[str, Any], did: str) -> str | None:
    try:
        return thumbprint(verification_method_key(method, did))
    except (KeyInvalid, DidResolutionFailed):
        return None


def authorized(document: JsonObject, did: str, cnf_jwk: object) -> None:
    """Return if ``cnf_jwk`` is the key of one of ``document``'s ``authentication`` methods.

    Raises :class:`VerificationDenied` (``did_key_not_authorized``) when it is not, when the
    document is not ``did``'s, or when the key is not a usable public JWK.
    """
    denied = VerificationDenied(Reason.DID_KEY_NOT_AUTHORIZED)
    if document.get("id") != did or not isinstance(cnf_jwk, dict):
        raise denied
    try:
        wanted = thumbprint(public_key_from_jwk(cnf_jwk))
    except KeyInvalid as e:
        raise denied from e
    methods = document.get("verificationMethod")
    by_id = {
        m["id"]: m
        for m in (methods if isinstance(methods, list) else [])
        if isinstance(m, dict) and isinstance(m.get("id"), str)
    }
    relationship = document.get("authentication")
    for entry in relationship if isinstance(relationship, list) else []:
        method = entry if isinstance(entry, dict) else None
        if isinstance(entry, str):  # a reference: "did#frag" or "#frag"
            method = by_id.get(entry) or by_id.get(did + entry if entry.startswith("#") else "")
        if method is not None and _method_thumbprint(method, did) == wanted:
            return
    raise denied


HOLDER_DIDS = Attached[Runtime, DidResolver](
    lambda rt: DidResolver(
        OutboundFetcher(
            allow_private=rt.settings.insecure_allow_private_network,
            allow_http=rt.settings.insecure_allow_http,
        )
    )
)
"""Each runtime's resolver of holder DIDs (see :func:`holder_dids`)."""


def holder_dids(rt: Runtime) -> DidResolver:
    """The runtime's resolver of holder DIDs, made on first use."""
    return HOLDER_DIDS(rt)
