"""``commons backup OUT``: one consistent snapshot of an instance (docs/operations.md, "Backup
and restore").

A backup is a directory, written beside ``OUT`` under a temporary name and renamed to ``OUT``
only once complete (a crash leaves no ``OUT``; an existing ``OUT`` is refused):

* ``database/`` — the database at one instant.  SQLite: ``commons.sqlite``, made with
  SQLite's online backup API (a consistent copy while writers go on).  PostgreSQL: one
  ``<table>.jsonl`` per table, every table read in one ``REPEATABLE READ READ ONLY``
  transaction (:func:`~credit_commons.core.db.snapshot`), so all of them are the same
  snapshot; ``pg_dump`` is not used (the export needs no client binary of the server's
  version, and the log's size and root below are read in the very same snapshot);
* ``keys.json`` — key *metadata* only: every signing-key version (name, version, type,
  ``kid``, public JWK, backend) and the master-key versions in use; never a private key,
  a master key or a pepper;
* ``log/`` — the log as of the snapshot: ``checkpoint`` (the newest signed checkpoint) and
  its entry bundles in the tlog-tiles layout (``log/tile/entries/…``, what ``commons log
  replay --from`` reads), and ``log-published.json``, a copy of the published-checkpoint
  file as it was (kept for the record: a restore never puts it over a newer one);
* ``manifest.json`` — the backup's id, the schema revision, row counts, the log's size and
  root, the erasure epoch and master-key state, the SHA-256 and size of every other file,
  and the secrets left out and where they live.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from credit_commons import __version__
from credit_commons.core.db import snapshot
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ConflictError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.core.settings import Settings
from credit_commons.formats.tlog_tiles import TILE_WIDTH
from credit_commons.keys import service as keys_service
from credit_commons.ledger import service as log_service
from credit_commons.ledger.recovery import tile_path
from credit_commons.privacy.epochs import list_epochs
from credit_commons.runtime import Runtime
from credit_commons.vault.state import read_state

__all__ = [
    "FORMAT",
    "MANIFEST",
    "SQLITE_FILE",
    "Progress",
    "create_backup",
    "decode_value",
    "encode_value",
    "secrets_excluded",
    "sqlite_path",
]

FORMAT = "credit-commons-backup/v1"
MANIFEST = "manifest.json"
SQLITE_FILE = "database/commons.sqlite"
_PAGES_PER_STEP = 1024

Progress = Callable[[str, int, int | None], None]
"""Called with (stage, done, total or None) as a backup or a restore goes."""


def sqlite_path(engine: Engine) -> Path:
    """The file of a SQLite engine's database (refused for an in-memory one)."""
    name = engine.url.database
    if not name or name == ":memory:":
        raise ValidationError("backup and restore need a SQLite database file, not :memory:")
    return Path(name)


def secrets_excluded(settings: Settings) -> list[JsonObject]:
    """Every secret a backup leaves out, and where the operator keeps it: the master key
    (file or HSM) and every ``COMMONS_*`` setting that holds a secret; then the database's
    own live secrets, rows left out (:data:`EXCLUDED_TABLES`) or values blanked
    (:data:`BLANKED_COLUMNS`)."""
    master = (
        f"the HSM token {settings.pkcs11_token!r} (COMMONS_KMS=pkcs11)"
        if settings.kms == "pkcs11"
        else f"COMMONS_MASTER_KEY_FILE ({settings.resolved_master_key_file})"
    )
    out: list[JsonObject] = [
        {
            "secret": "master key",
            "holds": "every master-key version (they wrap the subject keys), the key that "
            "wraps stored signing keys, the KMS's peppers",
            "where": master,
        }
    ]
    for name, field in sorted(Settings.model_fields.items()):
        if "SecretStr" in str(field.annotation) or field.annotation is SecretStr:
            out.append(
                {
                    "secret": f"COMMONS_{name.upper()}",
                    "holds": field.description or name,
                    "where": "the environment or secret store of every process",
                }
            )
    return out + _data_secrets()


EXCLUDED_TABLES: dict[str, str] = {
    "web_sessions": "the console's signed-in sessions: each one's CSRF secret and the issuer "
    "desk's offer transaction code awaiting display, in plain text (sessions are not "
    "restored: everyone signs in again)",
    "web_signin_codes": "borrowers' one-time sign-in codes (keyed hashes, valid minutes; not "
    "restored: a borrower asks for a new code)",
}
"""Tables whose rows hold live secrets: a backup keeps their columns, never their rows."""

BLANKED_COLUMNS: dict[tuple[str, str], tuple[str, str]] = {
    ("credential_offers", "tx_code_hash"): (
        "",
        "each credential offer's transaction code, as the SHA-256 of 6 digits (a million "
        "tries reverse it): blanked to '', which no code matches, so a restored offer that "
        "needed one is refused (offers are short-lived: make a new one)",
    ),
}
"""Columns holding short-lived secrets: ``(table, column)`` to the value a backup puts in
place of a non-null one, and what it held."""


def _data_secrets() -> list[JsonObject]:
    out: list[JsonObject] = [
        {"secret": f"table {name}", "holds": holds, "where": "rows left out of the backup"}
        for name, holds in sorted(EXCLUDED_TABLES.items())
    ]
    out.extend(
        {"secret": f"column {table}.{column}", "holds": holds, "where": "blanked in the backup"}
        for (table, column), (_blank, holds) in sorted(BLANKED_COLUMNS.items())
    )
    return out


# -- values of a table export ------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """A column value as JSON: plain for text, numbers, booleans and null, tagged otherwise
    (``{"$t": kind, "v": …}``), so a restore gives back the same Python value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$t": "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        return {"$t": "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {"$t": "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$t": "decimal", "v": str(value)}
    if isinstance(value, dict | list):
        return {"$t": "json", "v": value}
    raise ValidationError(f"a column value of type {type(value).__name__} cannot be backed up")


def decode_value(value: Any) -> Any:
    """The inverse of :func:`encode_value`."""
    if not isinstance(value, dict):
        return value
    kind, data = value.get("$t"), str(value.get("v"))
    if kind == "json":
        return value.get("v")
    if kind == "bytes":
        return base64.b64decode(data)
    if kind == "datetime":
        return datetime.fromisoformat(data)
    if kind == "date":
        return date.fromisoformat(data)
    if kind == "decimal":
        return Decimal(data)
    raise ValidationError(f"the backup holds a value of unknown kind {kind!r}")


# -- writing the parts -------------------------------------------------------------------------


class _Parts:
    """The files of a backup being written, each hashed as it is written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hashes: dict[str, JsonObject] = {}

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        path = self.root / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        self.add(name)

    def write(self, name: str, data: bytes) -> None:
        with self.open(name) as handle:
            handle.write(data)

    def add(self, name: str) -> None:
        digest, size = hashlib.sha256(), 0
        with (self.root / name).open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        self.hashes[name] = {"sha256": digest.hexdigest(), "bytes": size}


def _json(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _sqlite_copy(engine: Engine, dest: Path, progress: Progress) -> None:
    """SQLite's online backup API: a consistent copy of the live database while writers
    go on (it restarts a step a writer changed), left in rollback-journal mode so the copy
    is one self-contained file."""
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        target = sqlite3.connect(dest)
        try:
            source.backup(
                target,
                pages=_PAGES_PER_STEP,
                progress=lambda _status, remaining, total: progress(
                    "database pages", total - remaining, total
                ),
            )
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    finally:
        raw.close()
    _scrub_sqlite(dest)


def _scrub_sqlite(path: Path) -> None:
    """Delete the excluded tables' rows and blank the secret columns in the copy, then
    ``VACUUM`` it, so no freed page still holds them."""
    copy = sa.create_engine(f"sqlite:///{path}", poolclass=sa.NullPool)
    try:
        with copy.begin() as connection:
            present = set(sa.inspect(connection).get_table_names())
            for name in sorted(present & set(EXCLUDED_TABLES)):
                connection.execute(sa.table(name).delete())
            for (name, column), (blank, _holds) in sorted(BLANKED_COLUMNS.items()):
                if name in present:
                    field: sa.ColumnClause[Any] = sa.column(column)
                    connection.execute(
                        sa.update(sa.table(name, field))
                        .where(field.is_not(None))
                        .values({column: blank})
                    )
        with copy.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM")
    finally:
        copy.dispose()


def _export_tables(
    connection: Connection, parts: _Parts, progress: Progress
) -> tuple[str, dict[str, int]]:
    """Every table of the connection's schema as JSON lines, in the connection's snapshot;
    returns the schema revision and the rows per table."""
    revision = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    metadata = sa.MetaData()
    metadata.reflect(connection)
    counts: dict[str, int] = {}
    tables = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
    for number, table in enumerate(tables, 1):
        columns = [c.name for c in table.columns]
        blanks = {
            columns.index(column): blank
            for (name, column), (blank, _holds) in BLANKED_COLUMNS.items()
            if name == table.name and column in columns
        }
        rows = 0
        with parts.open(f"database/{table.name}.jsonl") as handle:
            handle.write(_json_line({"table": table.name, "columns": columns}))
            if table.name in EXCLUDED_TABLES:  # its columns, never its rows
                counts[table.name] = 0
                progress("tables", number, len(tables))
                continue
            result = connection.execution_options(yield_per=2000).execute(sa.select(table))
            for row in result:
                values = [
                    blanks[i] if i in blanks and v is not None else v for i, v in enumerate(row)
                ]
                handle.write(_json_line([encode_value(v) for v in values]))
                rows += 1
        counts[table.name] = rows
        progress("tables", number, len(tables))
    return str(revision), counts


def _json_line(data: object) -> bytes:
    return (json.dumps(data, separators=(",", ":")) + "\n").encode("utf-8")


def _sqlite_counts(connection: Connection) -> tuple[str, dict[str, int]]:
    revision = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    names = sa.inspect(connection).get_table_names()
    counts = {
        name: int(
            connection.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar() or 0
        )
        for name in sorted(names)
        if name != "alembic_version"
    }
    return str(revision), counts


def _log_part(session: Session, parts: _Parts, progress: Progress) -> JsonObject:
    """The log as of the snapshot: its size and root, the newest checkpoint and every entry
    bundle (tlog-tiles layout)."""
    size, root = log_service.log_state(session)
    latest = log_service.latest_checkpoint(session)
    tiles = -(-size // TILE_WIDTH)
    for index in range(tiles):
        width = min(TILE_WIDTH, size - index * TILE_WIDTH)
        bundle = log_service.entry_bundle(session, index * TILE_WIDTH, width)
        if bundle is None:
            raise ConflictError(f"the log has no entries for tile {index} below size {size}")
        path = tile_path(index, None if width == TILE_WIDTH else width)
        parts.write(f"log/tile/entries/{path}", bundle)
        progress("log tiles", index + 1, tiles)
    log: JsonObject = {"size": size, "root": root.b64(), "tiles": tiles}
    if latest is not None:
        note = log_service.checkpoint_with_cosignatures(session, latest)
        parts.write("log/checkpoint", note.encode("utf-8"))
        log.update(origin=note.split("\n", 1)[0], checkpoint_size=latest.size)
    return log


def _keys_part(session: Session, rt: Runtime, parts: _Parts) -> None:
    generation, kek_version, destroyed_below = read_state(session)
    keys = [
        {
            "name": k.name,
            "version": k.version,
            "key_type": str(k.key_type),
            "kid": k.kid,
            "public_jwk": k.jwk(),
            "backend": k.backend,
            "created_at": k.created_at.isoformat(),
        }
        for k in keys_service.list_keys(session, rt.key_store)
    ]
    document = {
        "signing_keys": keys,
        "master_key": {
            "kms": rt.settings.kms,
            "subject_keys_wrapped_under_version": kek_version,
            "versions_destroyed_below": destroyed_below,
            "erasure_generation": generation,
        },
        "private_material": "none: stored signing keys are in the database wrapped by the "
        "master key's key-store key, which this backup does not hold",
    }
    parts.write("keys.json", _json(document))


def _erasure(session: Session, rt: Runtime) -> JsonObject:
    epochs = list_epochs(session, rt, 1)
    return asdict(epochs[0]) if epochs else {}


def _published(settings: Settings, parts: _Parts) -> bool:
    source = settings.resolved_log_published_file
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        return False
    parts.write("log/log-published.json", data)
    return True


def create_backup(rt: Runtime, out: Path, progress: Progress) -> JsonObject:
    """Write a backup of ``rt``'s instance to the directory ``out``; returns its manifest.

    Raises :class:`ConflictError` when ``out`` exists, ``OSError`` (as the CLI's file
    errors) when it cannot be written.
    """
    out = out.absolute()
    if out.exists():
        raise ConflictError(f"{out} exists: a backup never overwrites", hint="give a new path")
    tmp = out.with_name(f".{out.name}.partial-{secrets.token_hex(4)}")
    tmp.mkdir(mode=0o700, parents=False)
    try:
        manifest = _write(rt, tmp, progress)
        if out.exists():
            raise ConflictError(f"{out} appeared while the backup was written")
        os.rename(tmp, out)
        dir_fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _write(rt: Runtime, root: Path, progress: Progress) -> JsonObject:
    parts = _Parts(root)
    backend = rt.engine.dialect.name
    created = rt.clock.now()
    if backend == "sqlite":
        method = "sqlite online backup API"
        _sqlite_copy(rt.engine, root / SQLITE_FILE, progress)
        parts.add(SQLITE_FILE)
        copy = sa.create_engine(f"sqlite:///{root / SQLITE_FILE}", poolclass=sa.NullPool)
        try:
            with copy.connect() as connection, Session(bind=connection) as session:
                revision, counts = _sqlite_counts(connection)
                log, erasure = _log_part(session, parts, progress), _erasure(session, rt)
                _keys_part(session, rt, parts)
        finally:
            copy.dispose()
    else:
        method = "PostgreSQL REPEATABLE READ READ ONLY export of every table (not pg_dump)"
        with snapshot(rt.engine) as connection, Session(bind=connection) as session:
            revision, counts = _export_tables(connection, parts, progress)
            log, erasure = _log_part(session, parts, progress), _erasure(session, rt)
            _keys_part(session, rt, parts)
    published = _published(rt.settings, parts)
    manifest: JsonObject = {
        "format": FORMAT,
        "backup_id": new_id("bkp"),
        "created_at": created.isoformat(),
        "commons_version": __version__,
        "database": {
            "backend": backend,
            "method": method,
            "revision": revision,
            "rows": counts,
        },
        "log": {**log, "published_file_copied": published},
        "erasure_epoch": erasure,
        "secrets_excluded": secrets_excluded(rt.settings),
        "not_included": [
            "the anchor journal (COMMONS_ANCHOR_FILE): keep it apart, never restore it over a "
            "newer one",
            "the embedded notifier's one-time codes (<data_dir>/notifications/)",
        ],
        "parts": dict(sorted(parts.hashes.items())),
    }
    (root / MANIFEST).write_bytes(_json(manifest))
    with (root / MANIFEST).open("rb") as handle:
        os.fsync(handle.fileno())
    return manifest


def part_names(root: Path) -> Iterable[str]:
    """Every file under a backup directory but the manifest, as relative POSIX paths."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            yield path.relative_to(root).as_posix()
