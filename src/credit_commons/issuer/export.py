"""The issuer's part of a data-subject export: every credential issued to the subject.

Each entry is the registry metadata (type, format, status, dates, status-list reference, the
SHA-256 the registry keeps) and the credential itself, opened from the vault — the subject is
entitled to the very token a lender would receive under consent.  Called by
``privacy/export.py`` after it has authorised the caller.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.formats.status_list import TokenStatus
from credit_commons.issuer import status
from credit_commons.issuer.credentials import SD_JWT_VC
from credit_commons.issuer.models import CredentialRow
from credit_commons.issuer.schemas import ExportedCredential, ExportedStatusEntry
from credit_commons.runtime import Runtime

__all__ = ["export_credentials"]

_VAULT_PURPOSE = "credentials"
# TSL §7.1 status types in the words a borrower reads (0x01 INVALID is a revocation).
_STATUS = {
    TokenStatus.VALID: "valid",
    TokenStatus.INVALID: "revoked",
    TokenStatus.SUSPENDED: "suspended",
}


def export_credentials(session: Session, rt: Runtime, token: str) -> list[ExportedCredential]:
    """The subject's credentials, oldest first, each with its text opened from the vault.

    The caller has authorised the request.  Raises ``DecryptionFailed`` if a stored
    credential cannot be opened (its subject key destroyed or the envelope altered): an
    export must not silently leave out what the registry says was issued.
    """
    now = rt.clock.now()
    rows = session.scalars(
        select(CredentialRow)
        .where(CredentialRow.subject_token == token)
        .order_by(CredentialRow.issued_at, CredentialRow.id)
    )
    out: list[ExportedCredential] = []
    for row in rows:
        kind = status.StatusKind.TOKEN if row.format == SD_JWT_VC else status.StatusKind.BITSTRING
        ref = status.StatusRef(row.status_list_id, row.status_index, kind)
        current = status.get_status(session, ref)
        text = rt.vault.open(
            session, bytes(row.sealed), subject=token, purpose=_VAULT_PURPOSE, record=row.id
        ).decode("ascii")
        out.append(
            ExportedCredential(
                credential_id=row.id,
                type=row.type_name,
                format=row.format,
                status=_STATUS.get(current, f"0x{int(current):02x}"),
                expired=utc(row.expires_at) <= now,
                issued_at=utc(row.issued_at).isoformat(),
                expires_at=utc(row.expires_at).isoformat(),
                status_list=ExportedStatusEntry(
                    uri=status.status_uri(rt, row.status_list_id), index=row.status_index
                ),
                sha256=row.token_hash,
                credential=text,
            )
        )
    return out
