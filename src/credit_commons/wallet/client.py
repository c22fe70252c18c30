"""A complete OID4VCI 1.0 client for the pre-authorized code flow, and presentations.

``accept_offer`` parses a ``openid-credential-offer://`` URI (by value or by reference),
reads the issuer and authorization-server metadata, redeems the pre-authorized code (with
the transaction code when the offer asks for one), gets a ``c_nonce``, signs an
``openid4vci-proof+jwt`` with the wallet's holder key and stores the returned SD-JWT VC.
Every outbound request goes through the SSRF-guarded fetcher rules (https only, no private
addresses; in development also http on loopback, a development platform's own URL).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from credit_commons.core.encoding import JsonObject, json_decode
from credit_commons.core.errors import ValidationError
from credit_commons.core.net import FetchFailed, OutboundFetcher
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.issuer import present
from credit_commons.keys import public_key_to_jwk
from credit_commons.wallet.held import is_opening
from credit_commons.wallet.store import Wallet

__all__ = ["WrongTransactionCode", "accept_offer", "make_presentation", "parse_offer_uri"]

GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


def parse_offer_uri(uri: str, fetcher: OutboundFetcher) -> JsonObject:
    """The credential offer (OID4VCI 1.0 §4.1.1) named by an ``openid-credential-offer://``
    URI.

    Raises :class:`ValidationError` for anything else.
    """
    parts = urlsplit(uri)
    if parts.scheme != "openid-credential-offer":
        raise ValidationError("not an openid-credential-offer:// URI")
    query = parse_qs(parts.query)
    if "credential_offer" in query:
        offer = json_decode(query["credential_offer"][0])
    elif "credential_offer_uri" in query:
        offer = fetcher.get_json(query["credential_offer_uri"][0])
    else:
        raise ValidationError("the URI carries no credential offer")
    if not isinstance(offer, dict) or "credential_issuer" not in offer:
        raise ValidationError("not a credential offer")
    return offer


class WrongTransactionCode(ValidationError):
    """The issuer refused the transaction code; the offer cannot be used again."""

    code = "wallet.wrong_tx_code"
    title = "Wrong transaction code"


def _post(client: httpx.Client, fetcher: OutboundFetcher, url: str, **kwargs: Any) -> JsonObject:
    # An OAuth 2.0 / OID4VCI endpoint's JSON object answer (token, nonce, credential).
    fetcher.check_url(url)
    try:
        response = client.post(url, **kwargs)
    except httpx.HTTPError as e:
        raise FetchFailed(f"{url} could not be reached") from e
    try:
        body = response.json()
    except ValueError as e:
        raise FetchFailed(f"{url} did not answer JSON") from e
    if response.status_code >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        description = body.get("error_description") if isinstance(body, dict) else None
        raise _Refused(
            f"{url} refused: {error or response.status_code}",
            error=str(error),
            description=str(description or ""),
        )
    if not isinstance(body, dict):
        raise FetchFailed(f"{url} did not answer a JSON object")
    return body


class _Refused(FetchFailed):
    # An OAuth-style refusal (RFC 6749 §5.2), with its error and description.
    def __init__(self, detail: str, *, error: str, description: str) -> None:
        super().__init__(detail)
        self.error, self.description = error, description


def accept_offer(
    wallet: Wallet,
    uri: str,
    *,
    tx_code: str | None = None,
    fetcher: OutboundFetcher | None = None,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """Run the whole pre-authorized flow and store the credential; returns its local id.

    Raises :class:`ValidationError` for a bad offer or a missing transaction code and
    ``FetchFailed``/``UnsafeUrl`` for network refusals.
    """
    fetcher = fetcher or OutboundFetcher(transport=transport)
    offer = parse_offer_uri(uri, fetcher)
    issuer = str(offer["credential_issuer"]).rstrip("/")
    grant = offer.get("grants", {}).get(GRANT)
    if not isinstance(grant, dict) or "pre-authorized_code" not in grant:
        raise ValidationError("only pre-authorized code offers are supported")
    if "tx_code" in grant and not tx_code:
        raise ValidationError(
            "this offer needs the transaction code the issuer gave you (--tx-code)"
        )
    metadata = fetcher.get_json(f"{issuer}/.well-known/openid-credential-issuer")
    servers = metadata.get("authorization_servers") or [issuer]
    as_metadata = fetcher.get_json(
        f"{str(servers[0]).rstrip('/')}/.well-known/oauth-authorization-server"
    )
    configuration = offer["credential_configuration_ids"][0]
    with fetcher.http_client(transport=transport, timeout=10) as client:
        form = {"grant_type": GRANT, "pre-authorized_code": grant["pre-authorized_code"]}
        if tx_code:
            form["tx_code"] = tx_code
        try:
            tokens = _post(client, fetcher, as_metadata["token_endpoint"], data=form)
        except _Refused as e:
            # OID4VCI 1.0 §6.3: invalid_grant covers a wrong tx_code and a spent or expired
            # code alike; the description tells them apart, and after a wrong tx_code the
            # issuer has spent the offer (one guess, not a million).
            if tx_code and e.error == "invalid_grant" and "transaction code" in e.description:
                raise WrongTransactionCode(
                    "wrong transaction code; this offer is now spent",
                    hint="ask the issuer for a new offer",
                ) from e
            raise
        nonce = _post(client, fetcher, metadata["nonce_endpoint"])["c_nonce"]
        holder = wallet.holder_key
        proof = sign_compact(
            {"typ": "openid4vci-proof+jwt", "jwk": public_key_to_jwk(holder.public_key)},
            {"aud": issuer, "iat": int(time.time()), "nonce": nonce},
            holder,
        )
        response = _post(
            client,
            fetcher,
            metadata["credential_endpoint"],
            json={"credential_configuration_id": configuration, "proofs": {"jwt": [proof]}},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    credential = response["credentials"][0]["credential"]
    local_id = wallet.add_credential(
        credential,
        issuer=issuer,
        configuration=configuration,
        received_at=datetime.now(UTC).isoformat(),
    )
    wallet.save()
    return local_id


def make_presentation(
    wallet: Wallet, local_id: str, *, audience: str, nonce: str, disclose: set[str]
) -> str:
    """An SD-JWT+KB presentation of a stored credential disclosing only ``disclose``.

    Raises :class:`ValidationError` when ``disclose`` names a commitment's opening (its
    salt would give away the value it hides: ``held.is_opening``)."""
    if any(is_opening(p) for p in disclose):
        raise ValidationError(
            "a commitment's salt is never disclosed: it would reveal the committed value;"
            " prove a predicate instead (commons wallet prove)",
            extra={"field": "disclose"},
        )
    stored = wallet.credential(local_id)
    credential = SdJwt.parse(stored.credential)
    # The key the credential is bound to: after a rotation, older credentials keep theirs.
    cnf = credential.payload.get("cnf")
    holder_jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    return present(
        credential,
        disclose=disclose,
        holder_signer=wallet.key_for(holder_jwk if isinstance(holder_jwk, dict) else None),
        audience=audience,
        nonce=nonce,
        iat=int(time.time()),
    )
