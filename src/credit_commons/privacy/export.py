"""A data-subject export (``credit-commons-export/v1``): everything the platform holds on a
subject, composed from each domain's own export function (DESIGN.md, "privacy").

* ``subject``, ``profile``, ``attributes``, ``identifiers``, ``delegations``, ``events``:
  ``identity.service.export_subject``;
* ``credentials``: ``issuer.export.export_credentials``;
* ``consents``, ``access_history``: ``consent.export.export_subject``.

The caller is authorised once, by the identity domain (the identity itself, the owner of an
enterprise, or an administrator; everyone else gets the same 404), and the export is recorded
as ``subject.exported`` in the same transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from credit_commons.consent import export_subject as export_consents
from credit_commons.events import EventDetails, record_event
from credit_commons.identity import Principal, actor_of, authorise, subject_of
from credit_commons.identity import service as identity_service
from credit_commons.issuer import export_credentials
from credit_commons.privacy.pdf import EXPORT_FORMAT
from credit_commons.privacy.schemas import SubjectExport
from credit_commons.runtime import Runtime

__all__ = ["SubjectExported", "export_subject"]


class SubjectExported(EventDetails, event_type="subject.exported"):
    """A data subject's data was exported to them."""

    sections: int


# The sections of an export: every member but ``format``.
_SECTIONS = len(SubjectExport.model_fields) - 1


def export_subject(
    session: Session, rt: Runtime, principal: Principal, token: str
) -> SubjectExport:
    """Everything held on the subject ``token``, and a ``subject.exported`` event.

    Raises :class:`~credit_commons.core.errors.NotFoundError` when ``principal`` may not
    export it, and ``DecryptionFailed`` if a sealed value of the subject cannot be opened.
    """
    authorise(session, principal, token)
    own = identity_service.export_subject(session, rt, token)
    credentials = export_credentials(session, rt, token)
    consents = export_consents(session, rt, principal, token)
    export = SubjectExport(
        format=EXPORT_FORMAT,
        subject=own.subject,
        profile=own.profile,
        attributes=own.attributes,
        identifiers=own.identifiers,
        delegations=own.delegations,
        credentials=credentials,
        consents=consents.consents,
        access_history=consents.access_history,
        events=own.events,
    )
    record_event(
        session,
        SubjectExported(sections=_SECTIONS),
        actor=actor_of(rt, principal),
        at=rt.clock.now(),
        subject=subject_of(rt, token),
        object=rt.objects.digest("identity", token),
    )
    return export
