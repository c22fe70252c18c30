"""The verifier's OpenID4VP use cases (OpenID4VP 1.0 §5, §8.2; docs/verifier.md, "Running a
verifier"): a verifier makes a request, a wallet answers at the response endpoint, the
pipeline decides, and the verifier reads the decision with the response code.

* :func:`create_request` — a transaction (``vp_transactions``): one-time nonce and state,
  the DCQL query, the policy's current version pinned, and for ``direct_post.jwt`` an
  ephemeral P-256 key whose private part is wrapped by the vault's KMS;
* :func:`request_object` — the signed request object (JAR, ``typ: oauth-authz-req+jwt``)
  of a ``decentralized_identifier:`` transaction, signed by the platform's ``did:web`` key;
  a ``redirect_uri:`` request goes by value (its requests cannot be signed, §5.9.3);
* :func:`accept_response` — the response endpoint: the form (``vp_token`` and ``state``, or
  the encrypted ``response``), the ten-step pipeline (``verifier/pipeline.py``), the
  decision stored with its precise reason and recorded as ``verification.decided``.  The
  wallet gets the redirect with a one-time response code when it was accepted and the
  uniform :data:`~credit_commons.verifier.reasons.PRESENTER_DENIAL` otherwise — never the
  reason, and never an error of the platform: whatever fails is a denial
  (``dependency_failure``);
* :func:`status` and :func:`decision` — the verifier's view: the status with the decision
  and reason, and once, against the response code, the disclosed claims.

Transactions belong to the verifier (lender client) that made them; anyone else gets 404.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from urllib.parse import urlencode, urlsplit

from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import JsonObject, b64url_decode, b64url_encode, json_decode
from credit_commons.core.errors import CommonsError, NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.events import EventDetails, Token, record_event
from credit_commons.formats import oid4vp
from credit_commons.formats.dcql import (
    DcqlInvalid,
    DcqlPresentationMismatch,
    DcqlQuery,
    HeldFacts,
    check_presented,
    parse_dcql,
)
from credit_commons.issuer import issuer_did, issuer_signer
from credit_commons.runtime import Runtime
from credit_commons.vault import WrappedKey
from credit_commons.verifier import pipeline, policy_service, trust_registry
from credit_commons.verifier import transactions as txn
from credit_commons.verifier.models import VpTransactionRow
from credit_commons.verifier.policy import EvaluationContext, VerifiedCredential
from credit_commons.verifier.reasons import Reason, VerificationDenied, reason_of
from credit_commons.verifier.schemas import (
    AcceptedResponse,
    PresentationRequest,
    PresentedCredential,
    RequestCreated,
    TransactionStatus,
    VerifierDecision,
)

__all__ = [
    "REQUEST_TTL",
    "Verdict",
    "VerificationDecided",
    "accept_response",
    "create_request",
    "decision",
    "request_object",
    "response_uri",
    "status",
]

log = logging.getLogger(__name__)

#: How long a wallet has to answer a request.
REQUEST_TTL: Final = timedelta(minutes=10)
_ENC_AAD: Final = b"vp-enc\x00"
_CLAIMS_AAD: Final = b"vp-claims\x00"
_WALLET_SCHEME: Final = "openid4vp://"


class VerificationDecided(EventDetails, event_type="verification.decided"):
    """The pipeline decided an OpenID4VP response: ``allow``, or ``deny`` with the precise
    reason (the presenter saw only ``not_allowed``).  The transaction is behind the event's
    object digest; no claim, nonce or key is in it."""

    decision: Literal["allow", "deny"]
    reason: Token | None
    response_mode: Token


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the response endpoint answers the wallet: ``allowed`` with the redirect (and
    response code) when the verifier gave one, or the uniform denial."""

    allowed: bool
    answer: AcceptedResponse | None


def response_uri(rt: Runtime, transaction_id: str) -> str:
    """The response endpoint of a transaction (OpenID4VP 1.0 §8.2 ``response_uri``)."""
    return f"{rt.settings.public_url.rstrip('/')}/v1/verifier/responses/{transaction_id}"


def _request_uri(rt: Runtime, transaction_id: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/v1/verifier/requests/{transaction_id}/request.jwt"


def _iso(value: datetime | None) -> str | None:
    return utc(value).isoformat() if value is not None else None


def _wrap(rt: Runtime, data: bytes, aad: bytes) -> str:
    wrapped = rt.vault.kms.wrap(data, aad=aad)
    return b64url_encode(wrapped.version.to_bytes(4, "big") + wrapped.blob)


def _unwrap(rt: Runtime, text: str, aad: bytes) -> bytes:
    raw = b64url_decode(text)
    wrapped = WrappedKey(rt.vault.kms.kek_id, int.from_bytes(raw[:4], "big"), raw[4:])
    return rt.vault.kms.unwrap(wrapped, aad=aad)


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
    if row.enc_public is not None:
        params["client_metadata"] = {
            "jwks": {"keys": [json_decode(row.enc_public)]},
            "encrypted_response_enc_values_supported": list(oid4vp.ENCRYPTION_ENCS),
        }
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

    Raises :class:`ValidationError` for a DCQL query this platform cannot ask
    (``formats/dcql.py``), an unknown policy, or a ``redirect_uri`` that is not an https URL.
    """
    try:
        query = parse_dcql(spec.dcql_query)
    except DcqlInvalid as e:
        raise ValidationError(f"dcql_query: {e.detail}") from e
    policy = _policy(session, owner, spec.policy_id)
    _check_redirect(spec.redirect_uri)
    now = rt.clock.now()
    transaction_id = new_id("vpt")
    if spec.client_id_prefix == "redirect_uri":
        client_id = f"redirect_uri:{response_uri(rt, transaction_id)}"
    else:
        client_id = f"decentralized_identifier:{issuer_did(rt)}"
    enc_public = enc_key = None
    if spec.response_mode == "direct_post.jwt":
        private, public = oid4vp.new_response_encryption_key(f"{transaction_id}-enc")
        enc_public = json.dumps(public, sort_keys=True)
        # The private key is wrapped at once and never leaves this function in clear.
        enc_key = _wrap(rt, json.dumps(private).encode(), _ENC_AAD + transaction_id.encode())
        del private
    row = VpTransactionRow(
        id=transaction_id,
        owner=owner,
        client_id=client_id,
        client_id_prefix=spec.client_id_prefix,
        nonce=secrets.token_urlsafe(32),
        state=secrets.token_urlsafe(32),
        request_hash="",
        dcql=json.dumps(query.to_json(), sort_keys=True),
        policy_owner=policy[0] if policy else None,
        policy_id=spec.policy_id if policy else None,
        policy_version=policy[1] if policy else None,
        purpose=spec.purpose,
        zk_predicates=json.dumps(sorted(set(spec.zk_predicates))),
        response_mode=spec.response_mode,
        redirect_uri=spec.redirect_uri,
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
        wallet_url=_WALLET_SCHEME
        + "?"
        + urlencode({"client_id": row.client_id, "request_uri": uri}),
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


# -- the wallet answers --------------------------------------------------------------------


def _requirements(session: Session, rt: Runtime, row: VpTransactionRow) -> pipeline.Requirements:
    def trust(issuer: str, vct: str) -> frozenset[str]:
        # Step 6: the platform's trust list and every pinned bundle of another platform.
        return trust_registry.trusted(session, rt, issuer, vct).marks

    loaded = None
    if row.policy_owner is not None and row.policy_id is not None:
        # The version the request pinned, with its profile, and the policy's floor now.
        loaded = policy_service.load_policy(
            session, row.policy_owner, row.policy_id, row.policy_version
        )
    context = EvaluationContext(now=rt.clock.now(), purpose=row.purpose)

    def predicates(shown: pipeline.Presented) -> None:
        if loaded is None:
            return
        issued = shown.issued_at
        loaded.policy.check(
            VerifiedCredential(
                types=frozenset({shown.vct}),
                issuer=shown.issuer,
                issuer_kind=shown.issuer_kind,
                issued_at=datetime.fromtimestamp(issued, UTC) if issued is not None else None,
                claims=shown.claims,
                status_checked=shown.status_checked,
                holder_bound=shown.holder_bound,
                marks=shown.marks,
            ),
            context,
        )

    def dcql(presented: Sequence[pipeline.Presented]) -> None:
        # Read when the rule runs, after step 1 has checked the request hash over it.
        query: DcqlQuery = parse_dcql(json_decode(row.dcql))
        facts: dict[str, list[HeldFacts]] = {}
        for shown in presented:
            facts.setdefault(shown.query_id, []).append(
                HeldFacts(
                    ref=shown.query_id,
                    format="dc+sd-jwt",
                    issuer=shown.issuer,
                    claims=shown.claims,
                    vct=shown.vct,
                )
            )
        try:
            check_presented(query, facts)
        except DcqlPresentationMismatch as e:
            raise VerificationDenied(Reason.DCQL_UNSATISFIED, e.detail) from e

    return pipeline.Requirements(
        dcql=dcql,
        trust=trust,
        predicates=predicates,
        zk_predicates=tuple(json_decode(row.zk_predicates)),
        policy_version=row.policy_version if loaded is not None else None,
        policy_floor=(lambda: loaded.floor) if loaded is not None else None,
    )


def _presentations(response: oid4vp.AuthorizationResponse) -> dict[str, list[str]]:
    if response.vp_token is None:
        # The wallet answered with an error (§8.5): nothing to verify, the request is over.
        raise VerificationDenied(Reason.WALLET_ERROR, "the wallet answered with an error")
    out: dict[str, list[str]] = {}
    for query_id, items in response.vp_token.presentations.items():
        if not all(isinstance(p, str) for p in items):
            raise VerificationDenied(Reason.RESPONSE_INVALID, "only dc+sd-jwt is accepted")
        out[query_id] = [str(p) for p in items]
    return out


def accept_response(
    session: Session, rt: Runtime, transaction_id: str, form: Mapping[str, str]
) -> Verdict:
    """The response endpoint: decide what the wallet posted for ``transaction_id`` and
    store the decision.  Never raises for anything the wallet sent or anything that fails
    on the way: every failure is a denial with its reason (``dependency_failure`` for an
    error of the platform), recorded when the database still takes it.

    Raises only the error of recording a decision (the caller answers the wallet with the
    uniform denial then too).
    """
    now = rt.clock.now()
    row = session.get(VpTransactionRow, transaction_id)
    decided: pipeline.Decided | None = None
    try:
        decided = _decide(session, rt, row, transaction_id, form)
        reason: Reason | None = None
    except Exception as e:  # fail closed: every failure is a denial
        reason = reason_of(e)
        if reason is Reason.DEPENDENCY_FAILURE:
            log.warning(
                "verification.dependency_failure transaction=%s error=%s",
                transaction_id,
                type(e).__name__,
            )
    return _record(session, rt, row, decided, reason=reason, now=now)


def _decide(
    session: Session,
    rt: Runtime,
    row: VpTransactionRow | None,
    transaction_id: str,
    form: Mapping[str, str],
) -> pipeline.Decided:
    key = None
    if row is not None and row.enc_key is not None:
        key = json.loads(_unwrap(rt, row.enc_key, _ENC_AAD + row.id.encode()))
    try:
        response = oid4vp.parse_authorization_response(form, decryption_key=key)
    except (oid4vp.ResponseInvalid, oid4vp.ResponseDecryptionFailed) as e:
        raise VerificationDenied(Reason.RESPONSE_INVALID, e.detail) from e
    finally:
        del key
    challenge = txn.Challenge(transaction_id, response.state or "")
    if row is None or response.vp_token is None:
        # Step 1 still runs, so an unknown transaction is challenge_not_found and a
        # wallet's error response consumes the request it answers.
        pipeline.challenge(session, rt, challenge)
    presentations = _presentations(response)
    if row is None:  # step 1 refused it already; this keeps the type checker informed
        raise VerificationDenied(Reason.CHALLENGE_NOT_FOUND)
    return pipeline.decide(
        session, rt, challenge, presentations, lambda: _requirements(session, rt, row)
    )


def _record(
    session: Session,
    rt: Runtime,
    row: VpTransactionRow | None,
    decided: pipeline.Decided | None,
    *,
    reason: Reason | None,
    now: datetime,
) -> Verdict:
    allowed = decided is not None and reason is None
    log.info(
        "verification.decided transaction=%s decision=%s reason=%s",
        row.id if row is not None else "unknown",
        "allow" if allowed else "deny",
        reason.value if reason is not None else "-",
    )
    # A response to no transaction is only logged (anyone may post one: it must cost the
    # platform no event).  One to a transaction already decided leaves its record alone
    # but is an event of its own (a replay, say).
    if row is None:
        return Verdict(False, None)
    if row.decided_at is not None:
        _event(session, rt, row, reason or Reason.CHALLENGE_CONSUMED, now)
        return Verdict(False, None)
    row.decided_at = now
    row.decision = txn.ALLOW if allowed else txn.DENY
    row.reason = reason.value if reason is not None else None
    answer = None
    if allowed and decided is not None:
        code = secrets.token_urlsafe(32)
        row.response_code_hash = txn.hash_secret(code)
        claims = [
            PresentedCredential(
                query_id=p.query_id, issuer=p.issuer, vct=p.vct, claims=p.claims
            ).model_dump(mode="json")
            for p in decided.presented
        ]
        row.claims = _wrap(rt, json.dumps(claims).encode(), _CLAIMS_AAD + row.id.encode())
        redirect = None
        if row.redirect_uri is not None:
            joiner = "&" if urlsplit(row.redirect_uri).query else "?"
            redirect = f"{row.redirect_uri}{joiner}{urlencode({'response_code': code})}"
        answer = AcceptedResponse(redirect_uri=redirect)
    _event(session, rt, row, reason, now)
    session.flush()
    return Verdict(allowed, answer)


def _event(
    session: Session, rt: Runtime, row: VpTransactionRow, reason: Reason | None, now: datetime
) -> None:
    record_event(
        session,
        VerificationDecided(
            decision="allow" if reason is None else "deny",
            reason=reason.value if reason is not None else None,
            response_mode=row.response_mode,
        ),
        actor=rt.pseudonymizer.pseudonym("lender", row.owner),
        at=now,
        object=rt.objects.digest("vp_transaction", row.id),
    )


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
    claims = json.loads(_unwrap(rt, row.claims, _CLAIMS_AAD + row.id.encode()))
    row.claims = None
    row.claims_read_at = rt.clock.now()
    session.flush()
    return VerifierDecision(
        id=row.id,
        decision="allow",
        decided_at=utc(row.decided_at).isoformat() if row.decided_at else "",
        credentials=[PresentedCredential.model_validate(c) for c in claims],
    )
