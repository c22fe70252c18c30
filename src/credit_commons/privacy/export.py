"""A data-subject export (``credit-commons-export/v1``): everything the platform holds on a
subject, composed from each domain's own export function (DESIGN.md, "privacy").

* ``subject``, ``profile``, ``attributes``, ``identifiers``, ``delegations``, ``events``:
  ``identity.service.export_identity``;
* ``credentials``: ``issuer.export.export_credentials``;
* ``consents``, ``access_history``: ``consent.export``.

The caller is authorised once, by the identity domain (the identity itself, the owner of an
enterprise, or an administrator; everyone else gets the same 404), and the export is recorded
as ``subject.exported`` in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from credit_commons.consent import export as consent_export
from credit_commons.events import record_event
from credit_commons.identity import service as identity_service
from credit_commons.issuer import export as issuer_export
from credit_commons.privacy.pdf import EXPORT_FORMAT
from credit_commons.runtime import Runtime

__all__ = ["export_subject"]


def export_subject(
    session: Session, rt: Runtime, principal: identity_service.Principal, token: str
) -> dict[str, Any]:
    """Everything held on the subject ``token``, and a ``subject.exported`` event.

    Raises :class:`~credit_commons.core.errors.NotFoundError` when ``principal`` may not
    export it, and ``DecryptionFailed`` if a sealed value of the subject cannot be opened.
    """
    own = identity_service.export_identity(session, rt, principal, token)
    export: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "subject": own["subject"],
        "profile": own["profile"],
        "attributes": own["attributes"],
        "identifiers": own["identifiers"],
        "delegations": own["delegations"],
        "credentials": issuer_export.export_credentials(session, rt, token),
        "consents": consent_export.export_consents(session, token),
        "access_history": consent_export.export_access_history(session, rt, principal, token),
        "events": own["events"],
    }
    record_event(
        session,
        identity_service.SubjectExported(sections=len(export) - 1),
        actor=identity_service.actor_of(rt, principal),
        at=rt.clock.now(),
        subject=identity_service.subject_of(rt, token),
        object=rt.objects.digest("identity", token),
    )
    return export
