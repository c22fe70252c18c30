"""Backup and restore of a whole instance (issue 21, item 7; docs/operations.md, "Backup and
restore"): :func:`create_backup` writes one consistent snapshot — the database, key metadata,
the log's tiles and checkpoint, a manifest of hashes — and :func:`restore_backup` loads one
into an empty instance, applies the erasures and leaves it in backup-restore mode.
"""

from credit_commons.backup.archive import FORMAT, Progress, create_backup, secrets_excluded
from credit_commons.backup.load import RestoreReport, read_manifest, report_json, restore_backup

__all__ = [
    "FORMAT",
    "Progress",
    "RestoreReport",
    "create_backup",
    "read_manifest",
    "report_json",
    "restore_backup",
    "secrets_excluded",
]
