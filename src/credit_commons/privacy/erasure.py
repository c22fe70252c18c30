"""A data-subject erasure, composed from each domain's own "forget" (DESIGN.md, "privacy").

In one transaction, after the caller is authorised (everyone else gets the same 404):

1. the erasure is counted in the open erasure epoch (``privacy/epochs.py``), whose row lock
   it holds until commit, so the epoch that makes it unreadable in backups is known;
2. the issuer forgets the identity token: credential registry entries lose it, offers are
   deleted (``issuer/erasure.py``);
3. the identity domain shreds the subject's vault keys (every process drops its cached keys
   at its next unit of work), deletes links, tokens, requests, delegations, consents and
   the identity, writes tombstones and records ``subject.erased``;
4. the code-notification file loses the lines addressed to the subject.

The answer is the erasure receipt: ``erased``, the ``subject.erased`` event, what was
removed, and ``epoch`` with ``unreadable_in_backups_after`` — from when no backup, of any
age, opens anything of the subject (docs/privacy.md) — and ``receipt``, the event's log
receipt with the log's signed entry (ledger/promises.py), which verifies offline.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from credit_commons.consent import notify
from credit_commons.identity import service as identity_service
from credit_commons.issuer import erasure as issuer_erasure
from credit_commons.ledger.promises import pending_receipt
from credit_commons.privacy import epochs
from credit_commons.runtime import Runtime

__all__ = ["erase_subject"]


def erase_subject(
    session: Session, rt: Runtime, principal: identity_service.Principal, token: str
) -> dict[str, Any]:
    """Erase the subject ``token`` and return the erasure receipt.

    Raises :class:`~credit_commons.core.errors.NotFoundError` when ``principal`` may not
    erase it (the identity itself, the owner of an enterprise, an administrator), and
    :class:`~credit_commons.core.errors.ConflictError` when epochs changed under it (retry).
    """
    identity_service.authorise(session, principal, token)
    epoch = epochs.note_erasure(session, rt)
    issuer = issuer_erasure.forget_subject(session, token)
    answer = identity_service.erase_identity(session, rt, principal, token)
    codes = notify.forget_codes(rt, token)
    # The proof of erasure: the subject.erased event signed by the log at once; it verifies
    # offline, the subject gone (docs/wallet.md).
    receipt = pending_receipt(session, rt, answer["event_id"])
    return {**answer, **issuer, "codes_removed": codes, **epoch, "receipt": receipt}
