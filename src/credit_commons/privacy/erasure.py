"""A data-subject erasure, composed from each domain's own "forget" (DESIGN.md, "privacy").

In one transaction, after the caller is authorised (everyone else gets the same 404):

1. the erasure is counted in the open erasure epoch (``privacy/epochs.py``), whose row lock
   it holds until commit, so the epoch that makes it unreadable in backups is known;
2. the issuer forgets the identity token: credential registry entries lose it, offers are
   deleted (``issuer/erasure.py``);
3. privacy deletes the subject's data-subject requests, and consent forgets their consents
   and discovery profile (``consent.service.forget_subject``);
4. the identity domain shreds the subject's vault keys (every process drops its cached keys
   at its next unit of work), deletes links, tokens, delegations and the identity, and
   writes tombstones (``identity.service.forget_subject``);
5. privacy records ``subject.erased``;
6. the code-notification file loses the lines addressed to the subject.

Before the identity's keys are shredded, the DID its profile registered (its holder key) is
read, and reputation excludes that DID from scoring for good if it ever took part
(``reputation.service.exclude_if_known``: a ``reputation.excluded`` spine event, reason
``erased``).  Reputation is a layer below and never asks privacy; a DID whose KYC credential
this platform issued to the subject is excluded by the membership status step, which sees the
credential's subject erased (docs/reputation.md "Excluded DIDs").

A layer above privacy that keeps something of a subject (the web console: its sessions and
sign-in codes) adds its own share with :func:`add_erasure_share` when it is set up on a
runtime; every erasure on that runtime runs the shares in the same transaction, after the
identity is forgotten (privacy imports nothing of those layers).

The answer is the erasure receipt: ``erased``, the ``subject.erased`` event, what was
removed, and ``epoch`` with ``unreadable_in_backups_after`` — from when no backup, of any
age, opens anything of the subject (docs/privacy.md) — and ``receipt``, the event's log
receipt with the log's signed entry (ledger/promises.py), which verifies offline.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.orm import Session

from credit_commons.consent import forget_codes
from credit_commons.consent import service as consent_service
from credit_commons.core.attached import Attached
from credit_commons.events import EventDetails, record_event
from credit_commons.identity import Principal, actor_of, authorise, subject_of
from credit_commons.identity import service as identity_service
from credit_commons.issuer import forget_subject as forget_issued
from credit_commons.ledger import pending_receipt
from credit_commons.privacy import epochs
from credit_commons.privacy.models import DsrRequestRow
from credit_commons.privacy.schemas import ErasureReceipt
from credit_commons.reputation import service as reputation_service
from credit_commons.runtime import Runtime

__all__ = ["ErasureShare", "SubjectErased", "add_erasure_share", "erase_subject"]

ErasureShare = Callable[[Session, str], int]
"""A layer's share of an erasure: delete what it keeps of the subject ``token`` in the
erasure's unit of work; how many rows went."""

_shares: Attached[Runtime, dict[str, ErasureShare]] = Attached(lambda _rt: {})


def add_erasure_share(rt: Runtime, name: str, forget: ErasureShare) -> None:
    """Have every erasure on ``rt`` also run ``forget`` (once per ``name``: adding it again
    replaces it, so setting a layer up twice is harmless)."""
    _shares(rt)[name] = forget


class SubjectErased(EventDetails, event_type="subject.erased"):
    """A data subject was erased: keys destroyed, links deleted, tombstones written."""

    subject_keys_destroyed: int
    identifiers_unlinked: int


def erase_subject(
    session: Session, rt: Runtime, principal: Principal, token: str
) -> ErasureReceipt:
    """Erase the subject ``token`` and return the erasure receipt.

    Raises :class:`~credit_commons.core.errors.NotFoundError` when ``principal`` may not
    erase it (the identity itself, the owner of an enterprise, an administrator), and
    :class:`~credit_commons.core.errors.ConflictError` when epochs changed under it (retry).
    """
    authorise(session, principal, token)
    epoch = epochs.note_erasure(session, rt)
    did = identity_service.registered_did(session, rt, token)
    if did is not None:
        reputation_service.exclude_if_known(session, rt, did, "erased")
    issuer = forget_issued(session, token)
    session.execute(delete(DsrRequestRow).where(DsrRequestRow.identity_token == token))
    consents = consent_service.forget_subject(session, token)
    forgotten = identity_service.forget_subject(session, rt, token)
    for forget in tuple(_shares(rt).values()):
        forget(session, token)
    event = record_event(
        session,
        SubjectErased(
            subject_keys_destroyed=forgotten.subject_keys_destroyed,
            identifiers_unlinked=forgotten.identifiers_unlinked,
        ),
        actor=actor_of(rt, principal),
        at=rt.clock.now(),
        subject=subject_of(rt, token),
        object=rt.objects.digest("identity", token),
    )
    codes = forget_codes(rt, token)
    # The proof of erasure: the subject.erased event signed by the log at once; it verifies
    # offline, the subject gone (docs/wallet.md).
    receipt = pending_receipt(session, rt, event.id)
    return ErasureReceipt(
        erased=True,
        event_id=event.id,
        subject_keys_destroyed=forgotten.subject_keys_destroyed,
        identifiers_unlinked=forgotten.identifiers_unlinked,
        consents_deleted=consents,
        credentials_unlinked=issuer.credentials_unlinked,
        offers_deleted=issuer.offers_deleted,
        codes_removed=codes,
        epoch=epoch.epoch,
        epoch_opened_at=epoch.epoch_opened_at,
        unreadable_in_backups_after=epoch.unreadable_in_backups_after,
        receipt=receipt,
    )
