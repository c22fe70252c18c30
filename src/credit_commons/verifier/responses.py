"""The response endpoint of the verifier's OpenID4VP transactions (OpenID4VP 1.0 §8.2,
§8.6; docs/verifier.md): what a wallet posts, through the pipeline (``verifier/pipeline.py``),
to a decision stored with its precise reason and recorded as ``verification.decided``.

Only a response that passes step 1 — its ``state`` is the transaction's, the request is
unchanged, unexpired and unused — decides the transaction and consumes it: the response
URI is public (§14.3.2), and a post by anyone else must neither decide nor burn it.  The
wallet gets ``200`` with the redirect and a one-time response code for an accepted
presentation (the code, and the claims kept for the verifier, only when the verifier gave
a ``redirect_uri``), ``200 {}`` for its own error response once processed (§8.2), and
the uniform :data:`~credit_commons.verifier.reasons.PRESENTER_DENIAL` otherwise — never
the reason, and never an error of the platform: whatever fails is a denial
(``dependency_failure``).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Final, Literal
from urllib.parse import urlencode, urlsplit

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from credit_commons import zk
from credit_commons.core.db import transaction
from credit_commons.core.db_autocommit import autocommit_sessions
from credit_commons.core.encoding import JsonObject, b64url_decode, b64url_encode, json_decode
from credit_commons.core.errors import UnavailableError
from credit_commons.events import (
    EventDetails,
    EventRows,
    EventSpec,
    Token,
    event_rows,
    write_event_rows,
)
from credit_commons.formats import oid4vp
from credit_commons.formats.dcql import (
    DcqlPresentationMismatch,
    DcqlQuery,
    HeldFacts,
    check_presented,
    parse_dcql,
)
from credit_commons.runtime import Runtime
from credit_commons.vault import WrappedKey
from credit_commons.verifier import pipeline, policy_service, trust_registry
from credit_commons.verifier import transactions as txn
from credit_commons.verifier.policy import EvaluationContext, VerifiedCredential
from credit_commons.verifier.query_support import SD_JWT_FORMAT
from credit_commons.verifier.reasons import Reason, VerificationDenied, reason_of
from credit_commons.verifier.schemas import AcceptedResponse, PresentedCredential
from credit_commons.verifier.zk_step import ZkCheck, check_answered, parse_predicates

__all__ = [
    "CLAIMS_AAD",
    "ENC_AAD",
    "DecisionOutcomeUnknown",
    "Verdict",
    "VerificationDecided",
    "accept_response",
    "unwrap",
    "wrap",
]

log = logging.getLogger(__name__)

ENC_AAD: Final = b"vp-enc\x00"
CLAIMS_AAD: Final = b"vp-claims\x00"
_TRANSACTION_ID: Final = re.compile(r"vpt_[A-Za-z0-9]{1,36}")


class VerificationDecided(EventDetails, event_type="verification.decided"):
    """The pipeline decided an OpenID4VP response: ``allow``, or ``deny`` with the precise
    reason (the presenter saw only ``not_allowed``).  The transaction is behind the event's
    object digest; no claim, nonce or key is in it."""

    decision: Literal["allow", "deny"]
    reason: Token | None
    response_mode: Token


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the response endpoint answers the wallet: ``answer`` with ``200`` (OpenID4VP 1.0
    §8.2) — an allowed presentation, with the redirect and response code when the verifier
    gave a ``redirect_uri``, or a wallet's error response that was processed — or, when
    ``answer`` is None, the uniform denial.  ``allowed`` is whether it was allowed."""

    allowed: bool
    answer: AcceptedResponse | None


def wrap(rt: Runtime, data: bytes, aad: bytes) -> str:
    """``data`` wrapped by the vault's KMS under ``aad`` (a stored secret of a transaction:
    its response-encryption key, its claims), as text."""
    wrapped = rt.vault.kms.wrap(data, aad=aad)
    return b64url_encode(wrapped.version.to_bytes(4, "big") + wrapped.blob)


def unwrap(rt: Runtime, text: str, aad: bytes) -> bytes:
    """What :func:`wrap` wrapped; raises the KMS's error for anything else."""
    raw = b64url_decode(text)
    wrapped = WrappedKey(rt.vault.kms.kek_id, int.from_bytes(raw[:4], "big"), raw[4:])
    return rt.vault.kms.unwrap(wrapped, aad=aad)


# -- the wallet answers --------------------------------------------------------------------


def _requirements(
    session: Session, rt: Runtime, row: txn.Transaction, proofs: JsonObject | None
) -> pipeline.Requirements:
    def trust(issuer: str, vct: str) -> frozenset[str]:
        # Step 6: the platform's trust list and every pinned bundle of another platform.
        return trust_registry.trusted(session, rt, issuer, vct).marks

    loaded = None
    if row.policy_owner is not None and row.policy_id is not None:
        # The version the request pinned, with its profile, and the policy's floor now.
        if row.policy_version is not None:  # parsed once per runtime (a version never changes)
            loaded = policy_service.pinned_policy(
                session, rt, row.policy_owner, row.policy_id, row.policy_version
            )
        else:
            loaded = policy_service.load_policy(session, row.policy_owner, row.policy_id)
    context = EvaluationContext(now=rt.clock.now(), purpose=row.purpose)

    def predicates(shown: pipeline.Presented) -> None:
        if loaded is None:
            return
        issued = shown.issued_at
        loaded.policy.check(
            VerifiedCredential(
                types=frozenset({shown.vct, *shown.types}),
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

    # Read after step 1 has checked the request hash over them.
    query = stored_query(row.dcql)
    zk = _zk_check(session, rt, row, proofs)

    def dcql(presented: Sequence[pipeline.Presented]) -> None:
        facts: dict[str, list[HeldFacts]] = {}
        for shown in presented:
            facts.setdefault(shown.query_id, []).append(
                HeldFacts(
                    ref=shown.query_id,
                    format=shown.format,
                    issuer=shown.issuer,
                    claims=shown.query_claims if shown.query_claims is not None else shown.claims,
                    vct=shown.vct if shown.format == SD_JWT_FORMAT else None,
                    types=shown.types,
                    holder_binding=shown.holder_bound,
                )
            )
        try:
            check_presented(query, facts)
        except DcqlPresentationMismatch as e:
            raise VerificationDenied(Reason.DCQL_UNSATISFIED, e.detail) from e
        if zk is not None:  # step 8 checked every predicate, on a presentation not discarded
            check_answered(zk, list(facts))

    return pipeline.Requirements(
        dcql=dcql,
        query=query,
        trust=trust,
        predicates=predicates,
        zk=zk,
        policy_version=row.policy_version if loaded is not None else None,
        policy_floor=(lambda: loaded.floor) if loaded is not None else None,
    )


# Stored queries at most this long are kept parsed (256 of them: a few MiB at most); a longer
# one, which a verifier may send up to the body limit, is parsed every time.
_CACHED_QUERY: Final = 16 * 1024


def stored_query(text: str) -> DcqlQuery:
    """A transaction's stored DCQL query, parsed: once per distinct text (the same for
    every request a verifier makes with it) rather than at every response.  A ``DcqlQuery``
    is frozen and its members tuples, so one parsed query is shared safely.  A stored text
    that is no valid query raises every time (``lru_cache`` keeps no exception)."""
    if len(text) > _CACHED_QUERY:
        return parse_dcql(json_decode(text))
    return _parsed_query(text)


@lru_cache(maxsize=256)
def _parsed_query(text: str) -> DcqlQuery:
    return parse_dcql(json_decode(text))


def _zk_check(
    session: Session, rt: Runtime, row: txn.Transaction, proofs: JsonObject | None
) -> ZkCheck | None:
    # Step 8's inputs: the predicates the request asked (read after step 1 checked the
    # request hash over them), the proofs the response carries, the binding's members.
    predicates = parse_predicates(json_decode(row.zk_predicates))
    if not predicates:
        return None
    return ZkCheck(
        predicates=predicates,
        proofs=proofs or {},
        nonce=row.nonce,
        audience=row.client_id,
        request_hash=row.request_hash,
        today=zk.day_number(rt.clock.now().date()),
        load=lambda statement_id: zk.load_statement(session, rt, statement_id),
        used=lambda digest: zk.proof_used(session, digest),
    )


def _loggable(transaction_id: str) -> str:
    # The id comes from the URL: logged only when it has the shape of one (no log injection).
    return transaction_id if _TRANSACTION_ID.fullmatch(transaction_id) else "malformed"


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What became of one response: the challenge step 1 accepted (only then may the
    response decide the transaction, consuming it), whether the poster knew the
    transaction's ``state`` (only then is a refusal an event), and the decision."""

    checked: txn.Checked | None
    state_known: bool
    reason: Reason | None
    decided: pipeline.Decided | None = None
    discarded: tuple[pipeline.Discarded, ...] = ()
    wallet_error: bool = False


# Step 1's refusals that come after the state matched: the poster knows the transaction.
_STATE_KNOWN: Final = frozenset(
    {Reason.CHALLENGE_CONSUMED, Reason.CHALLENGE_EXPIRED, Reason.REQUEST_HASH_MISMATCH}
)


def accept_response(rt: Runtime, transaction_id: str, form: Mapping[str, str]) -> Verdict:
    """The response endpoint: decide what the wallet posted for ``transaction_id`` and
    store the decision, in two units of work of its own.  Never raises for anything the
    wallet sent or anything that fails on the way: every failure is a denial with its
    reason (``dependency_failure`` for an error of the platform).

    First a read unit of work: the transaction, the form, step 1's checks and steps 2-10
    (signatures, the status and registry reads, trust, policy, DCQL; nothing written).  Then
    a short write: the decision, which consumes the challenge in the same conditional
    UPDATE (``transactions.record_decision``), and its ``verification.decided`` event,
    committed before the verdict is returned.  A response whose challenge a concurrent one
    consumed in between decides nothing: it is refused ``challenge_consumed``, as a replay.

    Only a response that passes step 1 (its ``state``, the request unchanged, unexpired and
    unused) decides the transaction and consumes it (OpenID4VP 1.0 §14.3.2: the response
    URI is public, so anyone may post to it).  Anything else leaves the transaction as it
    was: it is logged, and recorded as an event only when the poster knew the state.

    What the write needs but the database — an accepted response's code and its claims
    sealed by the KMS, the event checked with its log entry — is made before the write
    begins (:func:`_plan`): on SQLite the write holds the process's writer mutex and the
    database's write lock until its COMMIT has synced, and every other decision waits
    for them meanwhile.  On PostgreSQL the write is one statement that commits itself
    (``transactions.record_decision_at_once``: the UPDATE, the event and its log entry, all
    or none) instead of a unit of work of five round trips, unless ZK proofs are to be
    marked used with the decision.

    Raises only the errors of the database units of work (reading the transaction,
    recording the decision) and of sealing the claims; the caller answers the wallet with
    the uniform denial then too, and nothing was written — except after
    :class:`DecisionOutcomeUnknown` (the connection was lost under PostgreSQL's one
    statement: the decision and its event may have been written, together), and when the
    connection was lost under the unit of work's COMMIT (the same, not told apart here).
    """
    now = rt.clock.now()
    with transaction(rt.read_sessions) as session:
        row = txn.load_transaction(session, transaction_id)
        outcome = _decide(session, rt, row, form, transaction_id=transaction_id, now=now)
    if outcome.reason is Reason.DEPENDENCY_FAILURE:
        log.warning("verification.dependency_failure transaction=%s", _loggable(transaction_id))
    if row is None or (outcome.checked is None and not outcome.state_known):
        # Nothing to write: a response to no transaction, or by someone who did not know
        # its state (anyone may post one: it must cost the platform no event).
        _log(transaction_id, outcome, recorded=False)
        return Verdict(False, None)
    planned = _plan(rt, row, outcome, now=now)
    checked = outcome.checked
    if checked is not None and rt.engine.dialect.name == "postgresql" and _at_once(outcome):
        # The decision and its event in one statement that commits itself.  When it wrote
        # nothing (a concurrent response consumed the challenge first), the unit of work
        # below finds the same and records the replay.
        try:
            with transaction(autocommit_sessions(rt.engine)) as session:
                if _decision(session, checked, planned, outcome.reason, now=now, at_once=True):
                    _log(transaction_id, outcome, recorded=True)
                    return Verdict(planned.allowed, planned.answer)
        except DBAPIError as e:
            if e.connection_invalidated:
                # The statement is its own COMMIT: lost under it, the decision and its
                # event may have been written (together) — not "unrecorded".
                _log(transaction_id, outcome, recorded=None)
                raise DecisionOutcomeUnknown(checked.transaction_id, planned.event) from e
            raise
    with transaction(rt.sessions) as session:
        return _record(session, rt, row, transaction_id, outcome, planned=planned, now=now)


def _decide(
    session: Session,
    rt: Runtime,
    row: txn.Transaction | None,
    form: Mapping[str, str],
    *,
    transaction_id: str,
    now: datetime,
) -> _Outcome:
    try:
        response = _parse(rt, row, form)
    except Exception as e:  # fail closed
        return _Outcome(None, False, reason_of(e))
    try:  # step 1
        posted = txn.Challenge(transaction_id, response.state or "")
        checked = pipeline.challenge(session, row, posted, now)
    except Exception as e:
        reason = reason_of(e)
        return _Outcome(None, reason in _STATE_KNOWN, reason)
    if response.vp_token is None:
        # The wallet answered with an error (§8.5): nothing to verify, the request is over.
        return _Outcome(checked, True, Reason.WALLET_ERROR, wallet_error=True)
    if row is None:  # step 1 found it; this keeps the type checker informed
        return _Outcome(None, False, Reason.CHALLENGE_NOT_FOUND)
    try:
        decided = pipeline.decide(
            session,
            rt,
            checked,
            response.vp_token.presentations,
            lambda: _requirements(session, rt, row, response.zk_proofs),
        )
    except pipeline.ResponseDenied as e:  # keeps the presentations it discarded
        return _Outcome(checked, True, e.reason, discarded=e.discarded)
    except Exception as e:  # fail closed: every failure is a denial
        return _Outcome(checked, True, reason_of(e))
    return _Outcome(checked, True, None, decided, decided.discarded)


def _parse(
    rt: Runtime, row: txn.Transaction | None, form: Mapping[str, str]
) -> oid4vp.AuthorizationResponse:
    key = None
    if row is not None and row.enc_key is not None:
        key = json.loads(unwrap(rt, row.enc_key, ENC_AAD + row.id.encode()))
    try:
        return oid4vp.parse_authorization_response(form, decryption_key=key)
    except (oid4vp.ResponseInvalid, oid4vp.ResponseDecryptionFailed) as e:
        raise VerificationDenied(Reason.RESPONSE_INVALID, e.detail) from e
    finally:
        del key


class DecisionOutcomeUnknown(UnavailableError):
    """The connection to PostgreSQL was lost under the one statement that writes a decision
    and its ``verification.decided`` event (``transactions.record_decision_at_once``): they
    may have been written, together, or not at all.  Names the transaction and the event
    the decision would have recorded, for the operator to look up; the wallet is answered
    the uniform denial all the same (docs/verifier.md, "Recording the decision")."""

    code = "verification.decision_outcome_unknown"
    title = "Verification decision outcome unknown"

    def __init__(self, transaction_id: str, event: EventRows) -> None:
        self.transaction_id = transaction_id
        self.event_id = event.recorded[0].id
        super().__init__(
            "the connection to the database was lost while the decision of transaction "
            f"{transaction_id} was being recorded: it may have been recorded, with its "
            f"event {self.event_id}",
            extra={"transaction_id": transaction_id, "event_id": self.event_id},
        )


def _log(transaction_id: str, outcome: _Outcome, *, recorded: bool | None) -> None:
    # ``recorded`` None: the connection was lost under the write that commits itself, and
    # whether the decision was recorded is unknown.
    reason = outcome.reason
    log.info(
        "verification.decided transaction=%s decision=%s reason=%s recorded=%s",
        _loggable(transaction_id),
        "allow" if outcome.decided is not None and reason is None else "deny",
        reason.value if reason is not None else "-",
        "unknown" if recorded is None else "yes" if recorded else "no",
    )


@dataclass(frozen=True, slots=True)
class _Planned:
    """What :func:`_record` writes when the decision goes as planned, made before its unit
    of work begins: whether the response is allowed and what the wallet is answered, the
    presentations discarded, the response code's hash and the sealed claims (an allowed
    response with a ``redirect_uri`` only), and the ``verification.decided`` event."""

    allowed: bool
    answer: AcceptedResponse | None
    dropped: str | None
    code_hash: str | None
    sealed: str | None
    event: EventRows


def _plan(rt: Runtime, row: txn.Transaction, outcome: _Outcome, *, now: datetime) -> _Planned:
    # No database here: the hand-over's secrets and the event's rows.  Raises the KMS's
    # errors (sealing the claims) and ValidationError for an event the spine refuses.
    checked, reason = outcome.checked, outcome.reason
    if checked is None:
        # The transaction stays as it was; the poster knew its state (a replay, a late or
        # altered answer of the wallet's): an event.
        event = _event_rows(rt, row, reason or Reason.CHALLENGE_CONSUMED, now)
        return _Planned(False, None, None, None, None, event)
    decided = outcome.decided
    allowed = decided is not None and reason is None
    dropped = None
    if outcome.discarded:
        dropped = json.dumps(
            [{"query_id": d.query_id, "reason": d.reason.value} for d in outcome.discarded]
        )
    answer, code_hash, sealed = None, None, None
    if allowed and decided is not None:
        redirect, code_hash, sealed = _hand_over(rt, row, decided)
        answer = AcceptedResponse(redirect_uri=redirect)
    elif outcome.wallet_error:
        # §8.2: a processed Authorization Error Response is answered 200 with a JSON object.
        answer = AcceptedResponse()
    return _Planned(allowed, answer, dropped, code_hash, sealed, _event_rows(rt, row, reason, now))


def _record(
    session: Session,
    rt: Runtime,
    row: txn.Transaction,
    transaction_id: str,
    outcome: _Outcome,
    *,
    planned: _Planned,
    now: datetime,
) -> Verdict:
    checked = outcome.checked
    if checked is None:
        _log(transaction_id, outcome, recorded=False)
        write_event_rows(session, planned.event)
        return Verdict(False, None)
    decided = outcome.decided
    if planned.allowed and decided is not None:
        # Step 8's proofs are one-time: marked used with the decision (a response without
        # any, the usual one, has nothing to mark: no flush of the unit of work for it).
        used = [d for p in decided.presented for d in p.zk_proofs]
        if used:
            zk.record_proof_uses(session, rt, used)
    if not _decision(session, checked, planned, outcome.reason, now=now, at_once=False):
        # A concurrent response consumed the challenge after this one's step 1: this one
        # decides nothing and is refused as a replay would be (its planned event, code and
        # claims are dropped unwritten).
        replay = _Outcome(None, True, Reason.CHALLENGE_CONSUMED)
        _log(transaction_id, replay, recorded=False)
        write_event_rows(session, _event_rows(rt, row, Reason.CHALLENGE_CONSUMED, now))
        return Verdict(False, None)
    _log(transaction_id, outcome, recorded=True)
    write_event_rows(session, planned.event)
    return Verdict(planned.allowed, planned.answer)


def _at_once(outcome: _Outcome) -> bool:
    # Whether the write of a response that passed step 1 is the decision and its one event
    # alone (PostgreSQL writes those in one statement): no ZK proof of an allowed response
    # is to be marked used with it (_record marks them in the same transaction).
    decided = outcome.decided
    if decided is None or outcome.reason is not None:  # not allowed: no proof is marked
        return True
    return not any(p.zk_proofs for p in decided.presented)


def _decision(
    session: Session,
    checked: txn.Checked,
    planned: _Planned,
    reason: Reason | None,
    *,
    now: datetime,
    at_once: bool,
) -> bool:
    # The decision, consuming the challenge step 1 checked (transactions.record_decision):
    # whether it was written.  ``at_once`` (PostgreSQL, _at_once): with its event, in one
    # statement.
    record = txn.record_decision
    if at_once:
        record = partial(txn.record_decision_at_once, event=planned.event)
    return record(
        session,
        checked,
        now=now,
        decision=txn.ALLOW if planned.allowed else txn.DENY,
        reason=reason.value if reason is not None else None,
        discarded=planned.dropped,
        response_code_hash=planned.code_hash,
        claims=planned.sealed,
    )


def _hand_over(
    rt: Runtime, row: txn.Transaction, decided: pipeline.Decided
) -> tuple[str | None, str | None, str | None]:
    # The claims are kept, wrapped, for the verifier to read once with the response code —
    # only when the wallet gets the code, in the redirect: without a redirect_uri nobody
    # could ever ask for them, and they are not stored at all.  Returns the redirect, the
    # code's hash and the wrapped claims (all None without a redirect).
    if row.redirect_uri is None:
        return None, None, None
    code = secrets.token_urlsafe(32)
    claims = [
        PresentedCredential(
            query_id=p.query_id,
            issuer=p.issuer,
            vct=p.vct,
            format=p.format,
            types=list(p.types),
            claims=p.claims,
        ).model_dump(mode="json")
        for p in decided.presented
    ]
    sealed = wrap(rt, json.dumps(claims).encode(), CLAIMS_AAD + row.id.encode())
    joiner = "&" if urlsplit(row.redirect_uri).query else "?"
    redirect = f"{row.redirect_uri}{joiner}{urlencode({'response_code': code})}"
    return redirect, txn.hash_secret(code), sealed


def _event_rows(
    rt: Runtime, row: txn.Transaction, reason: Reason | None, now: datetime
) -> EventRows:
    # The verification.decided event, checked and with its log entry, ready to write.
    spec = EventSpec(
        VerificationDecided(
            decision="allow" if reason is None else "deny",
            reason=reason.value if reason is not None else None,
            response_mode=row.response_mode,
        ),
        actor=rt.pseudonymizer.pseudonym("lender", row.owner),
        at=now,
        object=rt.objects.digest("vp_transaction", row.id),
    )
    return event_rows([spec])
