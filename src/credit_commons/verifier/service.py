"""The verifier's OpenID4VP use cases (OpenID4VP 1.0 §5, §8.2; docs/verifier.md, "Running a
verifier"): a verifier makes a request, a wallet answers at the response endpoint, the
pipeline decides, and the verifier reads the decision with the response code.

* :func:`create_request` — a transaction (``vp_transactions``): one-time nonce and state,
  the DCQL query, the policy's current version pinned, and for ``direct_post.jwt`` an
  ephemeral P-256 key whose private part is wrapped by the vault's KMS;
* :func:`request_object` — the signed request object (JAR, ``typ: oauth-authz-req+jwt``)
  of a ``decentralized_identifier:`` transaction, signed by the platform's ``did:web`` key;
  a ``redirect_uri:`` request goes by value (its requests cannot be signed, §5.9.3);
* :func:`accept_response` — the response endpoint (``verifier/responses.py``): the form
  (``vp_token`` and ``state``, or the encrypted ``response``), the ten-step pipeline, the
  decision stored with its precise reason and recorded as ``verification.decided``;
* :func:`status` and :func:`decision` — the verifier's view: the status with the decision
  and reason, and once, against the response code, the disclosed claims.

Transactions belong to the verifier (lender client) that made them; anyone else gets 404.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final, Literal
from urllib.parse import urlencode, urlsplit

from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import JsonObject, json_decode
from credit_commons.core.errors import CommonsError, NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.formats import oid4vp
from credit_commons.formats.dcql import (
    DcqlInvalid,
    parse_dcql,
)
from credit_commons.issuer import issuer_did, issuer_signer
from credit_commons.keys import did_web_refusal
from credit_commons.lenders import get_client
from credit_commons.runtime import Runtime
from credit_commons.verifier import policy_service
from credit_commons.verifier import transactions as txn
from credit_commons.verifier.models import VpTransactionRow
from credit_commons.verifier.query_support import check_supported, vp_formats_supported
from credit_commons.verifier.responses import (
    CLAIMS_AAD,
    ENC_AAD,
    DecisionOutcomeUnknown,
    Verdict,
    VerificationDecided,
    accept_response,
    unwrap,
    wrap,
)
from credit_commons.verifier.schemas import (
    DiscardedPresentation,
    PresentationRequest,
    PresentedCredential,
    RequestCreated,
    TransactionStatus,
    VerifierDecision,
)
from credit_commons.verifier.zk_requests import check_predicates

__all__ = [
    "REQUEST_TTL",
    "DecisionOutcomeUnknown",
    "PrefixUnavailable",
    "Verdict",
    "VerificationDecided",
    "accept_response",
    "client_id_prefix",
    "create_request",
    "decision",
    "request_object",
    "response_uri",
    "status",
    "vp_formats_supported",
]

log = logging.getLogger(__name__)

#: How long a wallet has to answer a request.
REQUEST_TTL: Final = timedelta(minutes=10)
_WALLET_SCHEME: Final = "openid4vp://"


class PrefixUnavailable(ValidationError):
    """``decentralized_identifier:`` asked of a platform whose public URL has no ``did:web``
    a wallet can read (http, or an IP address: keys/did_web.py)."""

    code = "verifier.prefix_unavailable"
    title = "Client identifier prefix unavailable"


def client_id_prefix(rt: Runtime, requested: str | None) -> str:
    """The prefix a request is made with: the one asked for, or by default
    ``decentralized_identifier`` when the platform's public URL carries a did:web and
    ``redirect_uri`` when it does not (a development platform on http or an IP address).

    Raises :class:`PrefixUnavailable` when ``decentralized_identifier`` is asked for and the
    public URL has no did:web: a wallet could not resolve it to check the signed request.
    """
    refusal = did_web_refusal(rt.settings.public_url)
    if requested is None:
        return "decentralized_identifier" if refusal is None else "redirect_uri"
    if requested == "decentralized_identifier" and refusal is not None:
        raise PrefixUnavailable(
            "client_id_prefix decentralized_identifier needs the platform's did:web, and "
            f"it has none: {refusal}; use redirect_uri, or serve the platform at an https "
            "URL with a domain name (COMMONS_PUBLIC_URL)",
            extra={"errors": [{"field": "client_id_prefix", "message": refusal}]},
        )
    return requested


def response_uri(rt: Runtime, transaction_id: str) -> str:
    """The response endpoint of a transaction (OpenID4VP 1.0 §8.2 ``response_uri``)."""
    return f"{rt.settings.public_url.rstrip('/')}/v1/verifier/responses/{transaction_id}"


def _request_uri(rt: Runtime, transaction_id: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/v1/verifier/requests/{transaction_id}/request.jwt"


def _iso(value: datetime | None) -> str | None:
    return utc(value).isoformat() if value is not None else None


def _check_redirect(uri: str | None) -> None:
    if uri is None:
        return
    try:
        oid4vp.check_response_url(uri, "redirect_uri")
    except CommonsError as e:
        raise ValidationError(e.detail) from e
    if urlsplit(uri).query and "response_code=" in uri:
        raise ValidationError("redirect_uri must not carry a response_code")


def _authorization_request(rt: Runtime, row: VpTransactionRow) -> oid4vp.AuthorizationRequest:
    params: JsonObject = {
        "client_id": row.client_id,
        "response_type": "vp_token",
        "response_mode": row.response_mode,
        "response_uri": response_uri(rt, row.id),
        "nonce": row.nonce,
        "state": row.state,
        "dcql_query": json_decode(row.dcql),
    }
    predicates = json_decode(row.zk_predicates)
    if predicates:
        # This platform's extension (docs/zk.md): the predicates, and the request hash the
        # proofs bind to (computed over everything else the wallet is asked, predicates too).
        params["zk_predicates"] = predicates
        params["zk_request_hash"] = row.request_hash
    # §5.1: the formats this verifier accepts (REQUIRED unless known otherwise; §5.9.3
    # puts all of a redirect_uri client's metadata here), and who asks: every lender shares
    # the platform's client identifier, so client_name (RFC 7591 §2) names the lender.
    metadata: JsonObject = {"vp_formats_supported": vp_formats_supported()}
    if row.client_name is not None:
        metadata["client_name"] = row.client_name
    if row.enc_public is not None:
        metadata["jwks"] = {"keys": [json_decode(row.enc_public)]}
        metadata["encrypted_response_enc_values_supported"] = list(oid4vp.ENCRYPTION_ENCS)
    params["client_metadata"] = metadata
    return oid4vp.AuthorizationRequest.model_validate(params)


def _owned(session: Session, owner: str, transaction_id: str) -> VpTransactionRow:
    row = session.get(VpTransactionRow, transaction_id)
    if row is None or not hmac.compare_digest(row.owner.encode(), owner.encode()):
        raise NotFoundError("no such verification request")
    return row


# -- the verifier makes a request ----------------------------------------------------------


def create_request(
    session: Session, rt: Runtime, owner: str, spec: PresentationRequest
) -> RequestCreated:
    """Make a transaction for verifier ``owner`` (a lender client id) and return how to hand
    it to a wallet.

    Raises :class:`ValidationError` for a DCQL query that breaks OpenID4VP 1.0 §6
    (``formats/dcql.py``) or asks what this verifier can never accept
    (:func:`_check_supported`), an unknown policy, or a ``redirect_uri`` that is not an
    https URL; :class:`PrefixUnavailable` (:func:`client_id_prefix`).
    """
    try:
        query = parse_dcql(spec.dcql_query)
    except DcqlInvalid as e:
        raise ValidationError(f"dcql_query: {e.detail}") from e
    check_supported(spec.dcql_query, query)
    predicates = check_predicates(
        session, rt, spec.zk_predicates, {c.id for c in query.credentials}
    )
    lender = get_client(session, owner)
    policy = _policy(session, owner, spec.policy_id)
    _check_redirect(spec.redirect_uri)
    prefix = client_id_prefix(rt, spec.client_id_prefix)
    now = rt.clock.now()
    transaction_id = new_id("vpt")
    if prefix == "redirect_uri":
        client_id = f"redirect_uri:{response_uri(rt, transaction_id)}"
    else:
        client_id = f"decentralized_identifier:{issuer_did(rt)}"
    enc_public = enc_key = None
    if spec.response_mode == "direct_post.jwt":
        private, public = oid4vp.new_response_encryption_key(f"{transaction_id}-enc")
        enc_public = json.dumps(public, sort_keys=True)
        # The private key is wrapped at once and never leaves this function in clear.
        enc_key = wrap(rt, json.dumps(private).encode(), ENC_AAD + transaction_id.encode())
        del private
    row = VpTransactionRow(
        id=transaction_id,
        owner=owner,
        client_id=client_id,
        client_id_prefix=prefix,
        nonce=secrets.token_urlsafe(32),
        state=secrets.token_urlsafe(32),
        request_hash="",
        dcql=json.dumps(query.to_json(), sort_keys=True),
        policy_owner=policy[0] if policy else None,
        policy_id=spec.policy_id if policy else None,
        policy_version=policy[1] if policy else None,
        purpose=spec.purpose,
        zk_predicates=json.dumps(predicates, sort_keys=True),
        response_mode=spec.response_mode,
        redirect_uri=spec.redirect_uri,
        client_name=lender.name if lender is not None else None,
        enc_public=enc_public,
        enc_key=enc_key,
        created_at=now,
        expires_at=now + REQUEST_TTL,
    )
    row.request_hash = txn.request_hash(row)
    request = _authorization_request(rt, row)  # §5's rules, before anything is stored
    session.add(row)
    session.flush()
    return _created(rt, row, request)


def _policy(session: Session, owner: str, policy_id: str | None) -> tuple[str, int] | None:
    # The verifier's own policy of that id, else the platform's: its owner and its latest
    # version, which the request pins.
    if policy_id is None:
        return None
    for policy_owner in (owner, policy_service.PLATFORM_VERIFIER):
        try:
            loaded = policy_service.load_policy(session, policy_owner, policy_id)
        except policy_service.PolicyNotFound:
            continue
        return policy_owner, loaded.policy.version
    raise ValidationError("no such policy")


def _wallet_url(params: Mapping[str, str]) -> str:
    return _WALLET_SCHEME + "?" + urlencode(params)


def wallet_url_by_reference(rt: Runtime, client_id: str, transaction_id: str) -> str:
    """The ``openid4vp://`` URL that hands a wallet a signed request by reference (§5.7:
    ``client_id`` and ``request_uri``), as :func:`create_request` gives it for a
    ``decentralized_identifier:`` client.  Raises nothing."""
    return _wallet_url({"client_id": client_id, "request_uri": _request_uri(rt, transaction_id)})


def wallet_url_of(session: Session, rt: Runtime, transaction_id: str) -> str:
    """The ``openid4vp://`` URL :func:`create_request` gave for the stored transaction:
    by reference for a ``decentralized_identifier:`` client, by value for a
    ``redirect_uri:`` one (§5.9.3: its request cannot be signed).

    Raises :class:`NotFoundError` for an unknown transaction.
    """
    row = session.get(VpTransactionRow, transaction_id)
    if row is None:
        raise NotFoundError("no such verification request")
    if row.client_id_prefix == "redirect_uri":
        return _wallet_url(_authorization_request(rt, row).to_query())
    return wallet_url_by_reference(rt, row.client_id, row.id)


def _created(
    rt: Runtime, row: VpTransactionRow, request: oid4vp.AuthorizationRequest
) -> RequestCreated:
    if row.client_id_prefix == "redirect_uri":
        # §5.9.3: a redirect_uri client's request cannot be signed; it goes by value.
        by_value = request.to_query()
        return RequestCreated(
            id=row.id,
            client_id=row.client_id,
            response_mode=row.response_mode,
            request_uri=None,
            request=by_value,
            wallet_url=_wallet_url(by_value),
            expires_at=utc(row.expires_at).isoformat(),
        )
    uri = _request_uri(rt, row.id)
    return RequestCreated(
        id=row.id,
        client_id=row.client_id,
        response_mode=row.response_mode,
        request_uri=uri,
        request=None,
        wallet_url=wallet_url_by_reference(rt, row.client_id, row.id),
        expires_at=utc(row.expires_at).isoformat(),
    )


def request_object(
    session: Session, rt: Runtime, transaction_id: str, *, wallet_nonce: str | None = None
) -> str:
    """The signed request object of a ``decentralized_identifier:`` transaction (RFC 9101,
    OpenID4VP 1.0 §5.9.3: signed by the key of a verification method of the platform's
    ``did:web``, named by ``kid``), with the wallet's ``wallet_nonce`` when it posted one
    (``request_uri_method=post``, §5.10).

    Raises :class:`NotFoundError` for an unknown, answered or expired transaction and for a
    ``redirect_uri:`` one (its request goes by value).
    """
    row = session.get(VpTransactionRow, transaction_id)
    if (
        row is None
        or row.client_id_prefix != "decentralized_identifier"
        or row.consumed_at is not None
        or utc(row.expires_at) <= rt.clock.now()
    ):
        raise NotFoundError("no such request")
    request = _authorization_request(rt, row)
    if wallet_nonce is not None:
        request = request.model_copy(update={"wallet_nonce": wallet_nonce})
    signer = issuer_signer(session, rt)
    return oid4vp.sign_request_object(request, signer, f"{issuer_did(rt)}#{signer.kid}")


# -- the verifier reads the outcome --------------------------------------------------------


def status(session: Session, rt: Runtime, owner: str, transaction_id: str) -> TransactionStatus:
    """Where verifier ``owner``'s transaction is, with the decision and its precise reason.

    Raises :class:`NotFoundError` for a transaction that is not ``owner``'s.
    """
    row = _owned(session, owner, transaction_id)
    state: Literal["pending", "decided", "expired"] = "pending"
    if row.decided_at is not None:
        state = "decided"
    elif utc(row.expires_at) <= rt.clock.now() or row.consumed_at is not None:
        state = "expired"
    return TransactionStatus(
        id=row.id,
        client_id=row.client_id,
        state=state,
        decision="allow" if row.decision == txn.ALLOW else "deny" if row.decision else None,
        reason=row.reason,
        expires_at=utc(row.expires_at).isoformat(),
        decided_at=_iso(row.decided_at),
        discarded=[
            DiscardedPresentation.model_validate(d) for d in json_decode(row.discarded or "[]")
        ],
    )


def decision(
    session: Session, rt: Runtime, owner: str, transaction_id: str, response_code: str
) -> VerifierDecision:
    """The accepted decision with the disclosed claims, once: the response code must be the
    one the wallet was redirected with, and the claims are deleted as they are handed over.

    Raises :class:`NotFoundError` for a transaction that is not ``owner``'s, not allowed,
    already read, or a response code that is not its own (one answer for all of them).
    """
    row = _owned(session, owner, transaction_id)
    if (
        row.decision != txn.ALLOW
        or row.claims is None
        or row.response_code_hash is None
        or not hmac.compare_digest(row.response_code_hash, txn.hash_secret(response_code))
    ):
        raise NotFoundError("no such decision")
    claims = json.loads(unwrap(rt, row.claims, CLAIMS_AAD + row.id.encode()))
    row.claims = None
    row.claims_read_at = rt.clock.now()
    session.flush()
    return VerifierDecision(
        id=row.id,
        decision="allow",
        decided_at=utc(row.decided_at).isoformat() if row.decided_at else "",
        credentials=[PresentedCredential.model_validate(c) for c in claims],
    )
