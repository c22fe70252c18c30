"""``commons restore BACKUP``: a backup into an *empty* instance, left in backup-restore mode
(docs/operations.md, "Backup and restore").

1. The manifest is checked: its format, every part's SHA-256 and size, no part missing and
   none added.  The backup's backend must be this instance's, and the database must be
   empty — no table at all (a new SQLite file, a new PostgreSQL schema).
2. The data is loaded, migrated to this version's head and held in backup-restore mode in
   one step, so a server already running on the empty instance never sees the schema at
   head without the hold (step 5).  SQLite: the backup's file is copied with the online
   backup API into a staging file, migrated and held there, then copied into the
   instance's file in one write.  PostgreSQL, in one transaction: the schema is migrated to
   the backup's revision, the migrations' own rows are replaced by the backup's, table by
   table in foreign-key order, every sequence is set past its column's largest value, the
   schema is migrated to head and the hold written.
3. The peppers are checked (the restore must run with the instance's own key material),
   and the erasures are applied (``privacy/restore.py``, as ``commons privacy restore``):
   against ``--from`` (the live database or a backup newer than the last erasure epoch),
   or against the backup itself — so a subject erased before the backup, or after it when
   ``--from`` is given, stays erased: their subject keys were destroyed, or are destroyed
   again.
4. The log is audited (every leaf and checkpoint recomputed) and must be the manifest's
   size and root.  The published-checkpoint file is put in place only when the instance has
   none (a newer one is never rolled back).
5. The instance stays held in backup-restore mode (ledger/restore_mode.py; written in
   step 2) until an operator confirms: reads are served, writes refused, the log neither
   sequences nor signs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from credit_commons.backup.archive import (
    FORMAT,
    MANIFEST,
    SQLITE_FILE,
    Progress,
    decode_value,
    part_names,
    sqlite_path,
)
from credit_commons.core.db import dispose_engine, make_engine, transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ConflictError, IntegrityError, ValidationError
from credit_commons.core.files import write_private
from credit_commons.core.migrate import upgrade_on
from credit_commons.ledger import audit_log
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.restore_mode import enter_restore_mode
from credit_commons.privacy.pepper import check_peppers
from credit_commons.privacy.restore import restore_from
from credit_commons.runtime import Runtime

__all__ = ["RestoreReport", "read_manifest", "restore_backup"]

_BATCH = 1000


@dataclass
class RestoreReport:
    """What :func:`restore_backup` did (``dataclasses.asdict`` is its JSON)."""

    backup_id: str
    backend: str
    revision: str
    rows: int
    log_size: int
    log_root: str
    checkpoints_audited: int
    keys_updated: int
    keys_deleted: int
    erasures_applied: int
    published_file: str
    mode: str = "backup_restore"
    tables: dict[str, int] = field(default_factory=dict)


def read_manifest(root: Path) -> tuple[JsonObject, str]:
    """The backup's manifest and its SHA-256, after checking every part against it.

    Raises :class:`ValidationError` for a directory that is not a backup of this format,
    :class:`IntegrityError` for a part missing, added, or whose hash or size differs.
    """
    try:
        raw = (root / MANIFEST).read_bytes()
    except FileNotFoundError as e:
        raise ValidationError(f"{root} is not a backup: it has no {MANIFEST}") from e
    try:
        manifest = json.loads(raw)
    except ValueError as e:
        raise ValidationError(f"{root / MANIFEST} is not JSON") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValidationError(f"{root} is not a {FORMAT} backup")
    parts: dict[str, Any] = manifest.get("parts") or {}
    present = set(part_names(root))
    missing, added = sorted(set(parts) - present), sorted(present - set(parts))
    if missing or added:
        raise IntegrityError(
            f"the backup's files differ from its manifest: missing {missing[:5]}, "
            f"not listed {added[:5]}"
        )
    for name, expected in parts.items():
        digest, size = hashlib.sha256(), 0
        with (root / name).open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        if digest.hexdigest() != expected.get("sha256") or size != expected.get("bytes"):
            raise IntegrityError(f"the backup's part {name} does not match its manifest hash")
    return manifest, hashlib.sha256(raw).hexdigest()


def _require_empty(rt: Runtime) -> None:
    tables = sa.inspect(rt.engine).get_table_names()
    if tables:
        raise ConflictError(
            f"the database is not empty ({len(tables)} tables): a restore goes into an empty "
            "instance only",
            hint="point COMMONS_DATABASE_URL at a new SQLite file or an empty PostgreSQL schema",
        )


@dataclass(frozen=True)
class _Hold:
    """The backup-restore hold the load writes in the transaction that brings the schema to
    head, so a server already running on the empty instance (its schema gate waiting for
    the migration) never finds the schema current without the hold: no write is accepted
    while the erasures are applied and the log audited."""

    backup_id: str
    manifest_sha256: str
    log_size: int
    log_root: str

    def write(self, connection: Connection, rt: Runtime) -> None:
        upgrade_on(connection)
        with Session(bind=connection, join_transaction_mode="rollback_only") as session:
            enter_restore_mode(
                session,
                backup_id=self.backup_id,
                manifest_sha256=self.manifest_sha256,
                log_size=self.log_size,
                log_root=self.log_root,
                now=rt.clock.now(),
            )
            session.flush()


def _load_sqlite(rt: Runtime, root: Path, hold: _Hold, progress: Progress) -> None:
    # Copied into a staging file beside the instance's, brought to head and held there,
    # then into the instance's file in one step (one write transaction): a process reading
    # the instance sees it empty, then restored and held, never in between.
    target = sqlite_path(rt.engine)
    staging = target.with_name(f"{target.name}.restoring")
    staging.unlink(missing_ok=True)
    try:
        _copy_sqlite(root / SQLITE_FILE, staging, progress)
        engine = make_engine(f"sqlite:///{staging}")
        try:
            with engine.begin() as connection:
                hold.write(connection, rt)
        finally:
            engine.dispose()
        dispose_engine(rt.engine)
        _copy_sqlite(staging, target, None)
    finally:
        for leftover in (staging, *(staging.with_name(staging.name + s) for s in _SIDE_FILES)):
            leftover.unlink(missing_ok=True)
    dispose_engine(rt.engine)  # connections opened from now on set the instance's pragmas


_SIDE_FILES = ("-wal", "-shm", "-journal")


def _copy_sqlite(source_file: Path, target: Path, progress: Progress | None) -> None:
    source = sqlite3.connect(f"file:{source_file}?mode=ro", uri=True)
    try:
        destination = sqlite3.connect(target)
        try:
            if progress is None:
                source.backup(destination)  # every page in one step
            else:
                source.backup(
                    destination,
                    pages=1024,
                    progress=lambda _s, remaining, total: progress(
                        "database pages", total - remaining, total
                    ),
                )
        finally:
            destination.close()
    finally:
        source.close()


def _load_postgres(
    rt: Runtime, root: Path, manifest: JsonObject, hold: _Hold, progress: Progress
) -> None:
    # One transaction from the empty schema to the held one at head: a server's schema gate
    # sees no revision until it commits, then head with the hold.
    metadata = sa.MetaData()
    with rt.engine.begin() as connection:
        upgrade_on(connection, str(manifest["database"]["revision"]))
        metadata.reflect(connection)
        tables = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
        for table in reversed(tables):  # the migrations' own rows: the backup has them
            connection.execute(table.delete())
        for number, table in enumerate(tables, 1):
            _load_table(connection, table, root / "database" / f"{table.name}.jsonl")
            progress("tables", number, len(tables))
        _reset_sequences(connection)
        hold.write(connection, rt)


def _load_table(connection: Connection, table: sa.Table, path: Path) -> None:
    if not path.exists():
        raise IntegrityError(f"the backup has no rows file for table {table.name}")
    with path.open("rb") as handle:
        header = json.loads(handle.readline())
        columns: list[str] = header["columns"]
        unknown = [c for c in columns if c not in table.columns]
        if header.get("table") != table.name or unknown:
            raise IntegrityError(f"the backup's {path.name} does not fit table {table.name}")
        batch: list[dict[str, Any]] = []
        for line in handle:
            values = json.loads(line)
            batch.append({c: decode_value(v) for c, v in zip(columns, values, strict=True)})
            if len(batch) >= _BATCH:
                connection.execute(table.insert(), batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)


def _reset_sequences(connection: Connection) -> None:
    """Every serial or identity column's sequence set past the largest value loaded."""
    owned = connection.execute(
        sa.text(
            "SELECT c.table_name, c.column_name, "
            "pg_get_serial_sequence(quote_ident(c.table_name), c.column_name) "
            "FROM information_schema.columns c WHERE c.table_schema = current_schema()"
        )
    ).all()
    for table, column, sequence in owned:
        if sequence is None:
            continue
        largest = connection.execute(
            sa.select(sa.func.max(sa.column(column))).select_from(sa.table(table))
        ).scalar()
        connection.execute(
            sa.text("SELECT setval(:seq, :next, false)"),
            {"seq": sequence, "next": int(largest or 0) + 1},
        )


def _published(rt: Runtime, root: Path) -> str:
    copy = root / "log" / "log-published.json"
    target = rt.settings.resolved_log_published_file
    if target.exists():
        return f"kept the instance's own {target} (never rolled back)"
    if not copy.exists():
        return "none: the source had no published-checkpoint file"
    write_private(target, copy.read_bytes())
    return f"installed the backup's copy at {target}"


def restore_backup(
    rt: Runtime,
    root: Path,
    *,
    source: sessionmaker[Session] | None,
    progress: Progress,
) -> RestoreReport:
    """Restore the backup in ``root`` into ``rt``'s empty database (module docstring).

    ``source`` is the current key material (``--from``), or None to apply the erasures the
    backup itself records.  Raises :class:`ValidationError`, :class:`IntegrityError` or
    :class:`ConflictError` before anything is written (not a backup, a part that does not
    match, another backend, a database that is not empty); ``ConfigurationError`` when the
    instance's peppers are not the backup's; ``AuditFailed`` when the log does not audit.
    """
    manifest, manifest_sha256 = read_manifest(root)
    database: JsonObject = manifest["database"]
    backend = rt.engine.dialect.name
    if database["backend"] != backend:
        raise ValidationError(
            f"the backup is of a {database['backend']} database; this instance is {backend}"
        )
    _require_empty(rt)
    log: JsonObject = manifest["log"]
    hold = _Hold(
        backup_id=str(manifest["backup_id"]),
        manifest_sha256=manifest_sha256,
        log_size=int(log["size"]),
        log_root=str(log["root"]),
    )
    if backend == "sqlite":
        _load_sqlite(rt, root, hold, progress)
    else:
        _load_postgres(rt, root, manifest, hold, progress)
    with transaction(rt.sessions) as session:
        check_peppers(session, rt)
    # Without --from, the backup itself is the source (read beside the writes: on SQLite a
    # second writer on the same file would wait for the first).
    counts = restore_from(rt, source or rt.read_sessions)
    report = audit_log(
        rt.engine, log_identity(rt).vkeys, lambda done: progress("log audit", done, log["size"])
    )
    root_b64 = base64.b64encode(report.root).decode("ascii")
    if report.size != log["size"] or root_b64 != log["root"]:
        raise IntegrityError(
            f"the restored log is size {report.size}, root {root_b64}; the manifest says "
            f"size {log['size']}, root {log['root']}"
        )
    published = _published(rt, root)
    rows: dict[str, int] = database["rows"]
    return RestoreReport(
        backup_id=str(manifest["backup_id"]),
        backend=backend,
        revision=str(database["revision"]),
        rows=sum(rows.values()),
        log_size=report.size,
        log_root=root_b64,
        checkpoints_audited=report.checkpoints,
        keys_updated=counts.keys_updated,
        keys_deleted=counts.keys_deleted,
        erasures_applied=counts.erasures_applied,
        published_file=published,
        tables=dict(rows),
    )


def report_json(report: RestoreReport) -> JsonObject:
    """The report as JSON."""
    return asdict(report)
