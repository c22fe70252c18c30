"""The node's verifier: an SD-JWT VC presentation of the followed platform's credential,
checked with the status lists the node mirrors — a lender's own node learns a revocation
from the ``revocations.*`` stream, without calling the issuer when it verifies.

RFC 9901 verification (issuer signature by the platform's issuer keys, disclosures, key
binding to ``audience`` and ``nonce``) is the verifier domain's own
(:func:`credit_commons.verifier.verify_sd_jwt`), and so is the status list's check
(:class:`~credit_commons.verifier.StatusListFetcher` over the mirrored token: signature,
``sub``, ``iat``, expiry).  A list the node meets for the first time is fetched from the
platform once and mirrored; from then on only ``revocations.*`` messages refresh it.
"""

from __future__ import annotations

from typing import Any

from credit_commons.core.db import transaction
from credit_commons.node import store
from credit_commons.node.mirror import Mirror, StoredStatusLists, issuer_key_resolver
from credit_commons.verifier import (
    SdJwtVerified,
    StatusListFetcher,
    UnknownIssuerKey,
    UntrustedIssuer,
    raise_for_status,
    sd_jwt_vc_facts,
    verify_sd_jwt,
)

__all__ = ["verify_presentation"]


def verify_presentation(
    mirror: Mirror, presentation: str, *, audience: str, nonce: str, now: int
) -> SdJwtVerified:
    """Verify ``presentation`` (with key binding) against the followed platform's issuer
    keys and the mirrored status lists; the answer is the platform's own shape (its
    ``status_checked`` true when the credential names a list, as for a foreign issuer's on
    the platform: the node holds no list the credential does not name).

    Raises the verifier's ``SdJwtInvalid`` subclasses, :class:`UntrustedIssuer` (not the
    followed issuer), :class:`UnknownIssuerKey`, ``StatusListRejected``,
    ``CredentialRevoked``/``CredentialSuspended``, and the platform fetch's
    ``FetchFailed`` only for a list met for the first time.
    """
    issuer, jwks = mirror.issuer()
    keys = issuer_key_resolver(jwks)

    def resolve(header: Any, payload: Any) -> Any:
        if payload.get("iss") != issuer:
            raise UntrustedIssuer("the credential is not the followed platform's")
        try:
            return keys(header)
        except Exception as e:
            raise UnknownIssuerKey("the credential names a key its issuer does not publish") from e

    verified = verify_sd_jwt(
        presentation,
        issuer_key_resolver=resolve,
        require_key_binding=True,
        audience=audience,
        nonce=nonce,
        now=now,
    )
    facts = sd_jwt_vc_facts(verified)
    if facts.status is not None:
        uri, index = facts.status.uri, facts.status.index
        prefix = f"{issuer.rstrip('/')}/status-lists/"
        if not uri.startswith(prefix):
            raise UnknownIssuerKey("the credential's status list is not one of its issuer's")
        list_id = uri[len(prefix) :]
        with transaction(mirror.sessions) as session:
            row = store.status_list(session, list_id)
            held = None if row is None else (row.uri, row.token, row.media_type)
        if held is None or held[0] != uri:
            mirror.mirror_status_list(list_id, uri)
            with transaction(mirror.sessions) as session:
                row = store.status_list(session, list_id)
                assert row is not None
                held = (row.uri, row.token, row.media_type)
        lists = StatusListFetcher(
            StoredStatusLists({uri: (held[1].encode("ascii"), held[2])}), keys
        )
        raise_for_status(lists.status(uri, index))
    return SdJwtVerified.of(facts, verified.payload, foreign=True)
