"""The platform's periodic work, composed for the one worker that runs it.

The log worker (:class:`credit_commons.ledger.worker.LogWorker`) sequences events and signs
checkpoints; after each pass it runs a list of steps.  The log's own steps (witness
cosignatures, anchoring) live in :mod:`credit_commons.ledger.steps`; the steps that belong
to other domains — consent expiry and webhook delivery, privacy retention, closing due
erasure epochs, refreshing other platforms' pinned trust bundles — are composed here, at
the edge, so that the log (a lower layer) never imports the domains above it.  Issuing
issue 19's capability credentials needs the issuer and reputation together (siblings that
may not import each other), so that step is composed here too.  Whatever
starts a worker (``commons serve``, ``commons worker``, ``commons log checkpoint
--publish``) passes ``steps=default_steps(rt)``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy.orm import Session

from credit_commons.consent import monitor, webhooks
from credit_commons.consent import service as consent_service
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.federation import Publisher
from credit_commons.formats.status_list import TokenStatus
from credit_commons.identity import Principal
from credit_commons.issuer import COMMUNITY_TIER, entry_state, own_status_list_id, subject_at_entry
from credit_commons.issuer.credentials import SD_JWT_VC, issue_credentials
from credit_commons.issuer.schemas import IssueRequest
from credit_commons.keys import (
    PublicKey,
    decode_did_key,
    public_key_to_jwk,
    rotate_due_service_keys,
)
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.steps import Step, log_steps
from credit_commons.privacy.epochs import epoch_step
from credit_commons.privacy.retention import run_retention
from credit_commons.reputation import RuleSetNotFound, capability, scores_service
from credit_commons.reputation import service as reputation_service
from credit_commons.runtime import Runtime
from credit_commons.verifier import (
    EntryKind,
    certified_key,
    foreign_issuers,
    trust_pins,
    trusted_kind,
)
from credit_commons.web import prune_sessions
from credit_commons.web.borrower_code import prune_signin_codes

__all__ = [
    "bundles_step",
    "capability_step",
    "consent_step",
    "default_steps",
    "federation_step",
    "membership_status_step",
    "monitor_step",
    "retention_step",
    "scores_step",
    "service_keys_step",
    "trust_pins_step",
]

log = logging.getLogger("credit_commons.jobs")


def retention_step() -> Step:
    """Run the privacy retention policy every ``COMMONS_RETENTION_INTERVAL`` seconds, and
    delete the console's sessions that have expired and its sign-in codes older than an
    hour (docs/console.md)."""
    last = [float("-inf")]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < rt.settings.retention_interval:
            return {}
        last[0] = now
        with transaction(rt.sessions) as session:
            counts = run_retention(session, rt)
            counts["web_sessions"] = prune_sessions(session, rt.clock.now())
            counts["web_signin_codes"] = prune_signin_codes(session, rt.clock.now())
        return {f"retention_{k}": v for k, v in counts.items()}

    return step


def service_keys_step(interval: float = 60.0) -> Step:
    """Every ``interval`` seconds: rotate each service key whose signing version is
    ``COMMONS_SERVICE_KEY_ROTATION_DAYS`` old (keys/service_tokens.py); the version it
    replaces keeps verifying for ``COMMONS_SERVICE_KEY_OVERLAP`` seconds."""
    last = [float("-inf")]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < interval:
            return {}
        last[0] = now
        period = timedelta(days=rt.settings.service_key_rotation_days)
        with transaction(rt.sessions) as session:
            rotated = rotate_due_service_keys(session, rt, period)
        for info in rotated:
            log.info("service key rotated", extra={"key": info.name, "version": info.version})
        return {"service_keys_rotated": len(rotated)} if rotated else {}

    return step


def consent_step(interval: float = 5.0) -> Step:
    """Every ``interval`` seconds: expire consents past their expiry and deliver the
    webhooks that are due (passes in between cost nothing: the sequencer's batches stay
    fast under a backlog)."""
    last = [float("-inf")]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < interval:
            return {}
        last[0] = now
        with transaction(rt.sessions) as session:
            expired = consent_service.expire_due(session, rt).expired
        delivered = webhooks.deliver_due(rt)
        report: dict[str, object] = {f"webhooks_{k}": v for k, v in delivered.items() if v}
        if expired:
            report["consents_expired"] = expired
        return report

    return step


def monitor_step(interval: float = 5.0, batch: int = 2000, passes: int = 10) -> Step:
    """Every ``interval`` seconds, the access monitor (docs/operations.md "Monitoring and
    alerts"): up to ``passes`` passes of ``batch`` sequenced leaves each (a backlog is read
    ``passes x batch`` leaves at a time), raising the anomalous-access alerts they call for;
    once an hour, the counts no rule looks back to any more are deleted."""
    last = [float("-inf"), float("-inf")]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < interval:
            return {}
        last[0] = now
        report: dict[str, object] = {}
        for _ in range(passes):
            done = monitor.monitor_pass(rt, limit=batch)
            for kind, n in done.alerts.items():
                key = f"alerts_{kind}"
                report[key] = cast(int, report.get(key, 0)) + n
            if done.leaves < batch:
                break
        if now - last[1] >= 3600.0:
            last[1] = now
            with transaction(rt.sessions) as session:
                monitor.prune_counts(session, rt)
        return report

    return step


def trust_pins_step(interval: float = 3600.0) -> Step:
    """Every ``interval`` seconds, fetch every pinned trust bundle of another platform again
    (docs/verifier.md): hourly keeps a kept bundle fresh well within its day of validity."""
    last = [float("-inf")]
    worker = Principal("worker", "admin")

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < interval:
            return {}
        last[0] = now
        outcomes = trust_pins.refresh_pins(rt, worker)  # its own units of work
        report: dict[str, object] = {}
        accepted = sum(o.accepted for o in outcomes)
        if accepted:
            report["trust_pins_refreshed"] = accepted
        if len(outcomes) > accepted:
            report["trust_pins_refused"] = len(outcomes) - accepted
        return report

    return step


def scores_step() -> Step:
    """Score each new signed checkpoint (docs/reputation.md, "Score bundles"): in full on a
    new day or changed memberships, else incrementally from the state this worker kept.
    Nothing happens before a rule set is in effect.  The DIDs left out (tombstoned, or
    their identity erased) are reputation's own ``reputation_exclusions``, read by the
    scoring pass."""
    state = scores_service.ScoringState()

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        try:
            done = scores_service.score_checkpoint(rt, state)
        except RuleSetNotFound:
            return {}
        except CommonsError as e:
            # Never in the way of the steps after it (witnesses, anchors): reported, logged,
            # and tried again on the next pass (nothing was written: one transaction).
            log.error("scoring failed", extra={"fields": {"code": e.code}})
            return {"scores_failed": e.code}
        if done is None:
            return {}
        return {
            "scores_checkpoint": done.size,
            "scores_records": done.records,
            "scores_full": done.full,
            "scores_queued": done.queued,
        }

    return step


class _NotIssued(Exception):
    """Roll the row's transaction back (its claim included): it stays queued."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _subject_token(session: Session, rt: Runtime, did: str) -> str | None:
    # Whom this platform issued the DID's KYC credential to: the credential at the status
    # entry the membership registered (``uri#idx``), when the list is one of ours.
    for reference in capability.kyc_status_refs(session, did):
        uri, _, index = reference.rpartition("#")
        list_id = own_status_list_id(session, rt, uri)
        if list_id is not None and index.isdigit():
            token = subject_at_entry(session, list_id, int(index))
            if token is not None:
                return token
    return None


def _issue_capability(session: Session, rt: Runtime, pending: capability.PendingCapability) -> str:
    # One queued row in the caller's transaction: claim it (only one transaction can), issue
    # the credential bound to the subject's did:key, keep its id on the row.  Raises
    # _NotIssued (the caller rolls back) or what issuance raises.
    if not pending.current or pending.as_of is None:
        raise _NotIssued("stale")
    if not capability.claim_capability(session, pending.id, rt.clock.now()):
        raise _NotIssued("taken")
    subject = _subject_token(session, rt, pending.did)
    if subject is None:
        raise _NotIssued("unaddressed")
    claims: dict[str, object] = {
        "tier": pending.tier,
        "ctx": pending.ctx,
        "rule_set": {
            "id": pending.rule_set_id,
            "version": pending.rule_set_version,
            "hash": pending.rule_set_hash,
        },
        "as_of": pending.as_of.isoformat(),
        # The issuer adds the salt and the commitment (catalogue.complete_score_commitment).
        "score_opening": {"score": pending.score_micro},
    }
    request = IssueRequest(
        COMMUNITY_TIER.name,
        subject,
        claims,
        public_key_to_jwk(decode_did_key(pending.did)),  # cnf: the subject's did:key
        SD_JWT_VC,
    )
    (issued,) = issue_credentials(session, rt, _ISSUER, [request])
    capability.record_capability_credential(session, pending.id, issued.credential_id)
    return issued.credential_id


_ISSUER = Principal("worker", "admin")


def bundles_step(batch: int = scores_service.BUNDLES_PER_PASS) -> Step:
    """Assemble the score bundles fetches requested (docs/reputation.md "Score bundles"):
    up to ``batch`` a pass, oldest request first, each in its own transaction, so
    ``GET /v1/scores`` never builds one on the request path (it answers 202 meanwhile)."""

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        try:
            counts = scores_service.build_requested_bundles(
                rt, log_vkey=log_identity(rt).vkey, limit=batch
            )
        except CommonsError as e:
            log.error("bundles failed", extra={"fields": {"code": e.code}})
            return {"bundles_failed": e.code}
        return {f"bundles_{k}": v for k, v in counts.items() if v}

    return step


def capability_step(interval: float = 5.0, batch: int = 100) -> Step:
    """Every ``interval`` seconds, issue the queued capability credentials (issue 19,
    docs/reputation.md "Capability credentials"): up to ``batch`` rows, each in its own
    transaction — claimed, issued as a ``CommunityTierCredential`` SD-JWT VC bound to the
    subject's did:key and sealed for its subject like every issued credential, and marked
    with the credential's id, all or nothing.  A row whose subject's record no longer holds
    the queued tier (``stale``), whose KYC credential this platform did not issue
    (``unaddressed``) or whose issuance is refused stays queued and is counted.  Passes go
    round the queue (a cursor after the last row tried, back to the start after a short
    page), so rows that stay queued never starve newer ones."""
    last = [float("-inf")]
    cursor: list[str | None] = [None]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < interval:
            return {}
        last[0] = now
        with rt.sessions() as session:
            pending = capability.pending_capabilities(session, limit=batch, after=cursor[0])
            if not pending and cursor[0] is not None:  # the end of the queue: round again
                pending = capability.pending_capabilities(session, limit=batch)
        cursor[0] = pending[-1].id if len(pending) == batch else None
        counts: dict[str, int] = {}
        for item in pending:
            try:
                with transaction(rt.sessions) as session:
                    _issue_capability(session, rt, item)
                outcome = "issued"
            except _NotIssued as e:
                outcome = e.reason
            except CommonsError as e:
                log.warning("capability %s not issued: %s", item.id, e.code)
                outcome = "refused"
            counts[outcome] = counts.get(outcome, 0) + 1
        return {f"capabilities_{k}": v for k, v in counts.items() if k != "taken"}

    return step


@dataclass(frozen=True, slots=True)
class _MemberStatus:
    """A membership credential's status as read now, and whether this platform issued it
    to a subject since erased (the DID then belongs to an erased identity)."""

    status: TokenStatus
    erased: bool = False


def _membership_status(
    rt: Runtime, member: reputation_service.MembershipStatusRef
) -> _MemberStatus | None:
    # The status of the membership's credential at its reference (``uri#idx``): this
    # platform's own list read directly (with whether its subject was erased), a trusted
    # foreign issuer's list fetched (and cached) through the verifier, with no unit of work
    # held over the fetch — for an issuer an X.509 anchor certifies, verified under the
    # end-entity key of the credential's x5c chain, which is verified afresh; None when
    # neither can say (an issuer no longer trusted by its identifier, no chain kept).
    # Raises what the verifier raises (a chain no anchor certifies any more, a list that
    # does not verify or cannot be fetched).
    uri, _, index = member.status_ref.rpartition("#")
    if not uri or not index.isdigit():
        return None
    key: PublicKey | None = None
    kind: EntryKind | None
    with rt.sessions() as session:
        list_id = own_status_list_id(session, rt, uri)
        if list_id is not None:
            entry = entry_state(session, list_id, int(index))
            if entry is None:
                return _MemberStatus(TokenStatus.INVALID)
            return _MemberStatus(entry.status, entry.erased)
        if member.x5c is not None:
            kind, key = "x509", certified_key(session, rt, member.issuer, member.vct, member.x5c)
        else:
            kind = trusted_kind(session, member.issuer)
    if kind is None:
        return None
    found = foreign_issuers(rt).status(member.issuer, kind, uri, int(index), certified_key=key)
    return _MemberStatus(found)


def _apply_status(
    rt: Runtime, member: reputation_service.MembershipStatusRef, found: _MemberStatus
) -> str | None:
    # What the status read means for the membership, in one transaction; the outcome
    # counted, or None when nothing changed.
    with transaction(rt.sessions) as session:
        if found.erased:
            reputation_service.exclude_did(session, rt, member.did, "erased")
            return "excluded"
        if found.status is TokenStatus.INVALID:
            done = reputation_service.revoke_membership(session, rt, member.id, "revoked")
            return "revoked" if done else None
        if found.status is TokenStatus.SUSPENDED:
            done = reputation_service.revoke_membership(session, rt, member.id, "suspended")
            return "suspended" if done else None
        if member.suspended:
            done = reputation_service.reinstate_membership(session, rt, member.id)
            return "reinstated" if done else None
    return None


def membership_status_step(interval: float = 300.0) -> Step:
    """Every ``interval`` seconds, check the credential of each membership not revoked at
    its status reference (docs/reputation.md "Members"): one found revoked is ended for good
    and one found suspended is paused (``reputation.service.revoke_membership``:
    ``revoked_at`` or ``suspended_at`` and a ``reputation.member_revoked`` spine event in
    one transaction), so the DID stops vouching (``reputation.sender_locked``) and loses K
    at the next scoring; a paused one found valid again is reinstated
    (``reinstate_membership``).  A credential this platform issued to a subject since
    erased excludes the DID from scoring (``reputation.service.exclude_did``, reason
    ``erased``).  A status that cannot be read (a foreign list unavailable, an issuer no
    longer trusted) leaves the membership as it is and is counted; the next pass tries
    again."""
    last = [float("-inf")]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < interval:
            return {}
        last[0] = now
        with rt.sessions() as session:
            members = reputation_service.membership_status_refs(session)
        counts: dict[str, int] = {}
        excluded: set[str] = set()
        for member in members:
            if member.did in excluded:
                continue
            try:
                found = _membership_status(rt, member)
            except CommonsError as e:
                log.warning("membership %s status not read: %s", member.id, e.code)
                found = None
            outcome = "unchecked" if found is None else _apply_status(rt, member, found)
            if outcome == "excluded":
                excluded.add(member.did)
            if outcome is not None:
                counts[outcome] = counts.get(outcome, 0) + 1
        return {f"memberships_{k}": v for k, v in counts.items()}

    return step


def federation_step(rt: Runtime) -> list[Step]:
    """Publishing the spine's events and the log's checkpoints to NATS JetStream
    (docs/federation.md) when ``COMMONS_NATS_URL`` is set; no step otherwise (the embedded
    default needs no NATS).  The publisher connects on its first pass and backs off while
    NATS is unreachable."""
    url = rt.settings.nats_url
    if url is None:
        return []
    publisher = Publisher(rt, url.get_secret_value(), batch=rt.settings.federation_batch)

    def step(_rt: Runtime, _size: int) -> dict[str, object]:
        return dict(publisher.run_pass())

    return [step]


def default_steps(rt: Runtime) -> list[Step]:
    """Retention, rotating the service keys that are due, consent expiry and webhooks, the
    access monitor, closing due erasure epochs, refreshing pinned trust bundles, ending
    memberships whose credential was revoked, scoring new checkpoints, issuing the
    capability credentials they queued, then the log's steps the settings ask for
    (witnesses, anchors), then publishing to NATS when it is configured; raises
    ``ConfigurationError``."""
    return [
        retention_step(),
        service_keys_step(),
        consent_step(),
        monitor_step(),
        epoch_step(),
        trust_pins_step(),
        membership_status_step(),
        scores_step(),
        bundles_step(),
        capability_step(),
        *log_steps(rt),
        *federation_step(rt),
    ]
