"""Backup and restore figures (issue 21 item 7): ``commons backup`` and ``commons restore`` of an
instance holding N sequenced log events (one event row, outbox row and leaf each).

An instance is migrated and filled with N events in batches of 1,000, ``commons worker --once``
sequences and checkpoints them, then ``commons backup`` writes a backup and ``commons restore``
loads it into an empty database beside it (the data directory holding only a copy of the
master key file).  Both run as the CLI runs them (a new process each: the figures include
start-up).  The restore includes its log audit.  Prints one JSON line: the backend, the log
size, the rows, the seconds of each and the backup's size.

Usage: python bench/backup.py [--events 100000] [--postgres URL]
  (without --postgres: SQLite; with it, two fresh schemas are made and dropped on that server)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from credit_commons.core.db import transaction
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.events import EventSpec, record_events
from credit_commons.ledger.recovery import LogReplayed
from credit_commons.runtime import Runtime

COMMONS = [sys.executable, "-m", "credit_commons.cli"]


@contextmanager
def _schemas(server: str | None, root: Path) -> Iterator[tuple[str, str]]:
    if server is None:
        yield f"sqlite:///{root / 'a' / 'commons.db'}", f"sqlite:///{root / 'b' / 'commons.db'}"
        return
    names = [f"bench_{secrets.token_hex(4)}" for _ in range(2)]
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        for name in names:
            connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    separator = "&" if "?" in server else "?"
    try:
        yield tuple(f"{server}{separator}options=-csearch_path%3D{n}" for n in names)  # type: ignore[misc]
    finally:
        with admin.begin() as connection:
            for name in names:
                connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _fill(url: str, data: Path, events: int) -> None:
    rt = Runtime.build(Settings(env="test", data_dir=data, database_url=url))
    try:
        upgrade(rt.engine)
        actor = rt.operator_actor()
        with transaction(rt.sessions) as session:
            for start in range(0, events, 1000):
                specs = [
                    EventSpec(
                        LogReplayed(from_size=i, to_size=i, events_missing=0),
                        actor=actor,
                        at=datetime.now(UTC),
                    )
                    for i in range(start, min(start + 1000, events))
                ]
                record_events(session, specs)
    finally:
        rt.close()


def _run(env: dict[str, str], *args: str) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    done = subprocess.run([*COMMONS, *args, "--json"], env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr.decode()[-2000:])
    answer: dict[str, object] = json.loads(done.stdout)
    return elapsed, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--postgres", default=None, help="PostgreSQL server URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "a").mkdir(mode=0o700)
        (root / "b").mkdir(mode=0o700)
        with _schemas(args.postgres, root) as (live, empty):
            _fill(live, root / "a", args.events)
            base = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
            env = dict(base, COMMONS_ENV="test", COMMONS_DATA_DIR=str(root / "a"))
            env["COMMONS_DATABASE_URL"] = live
            _run(env, "worker", "--once")
            backup_s, manifest = _run(env, "backup", str(root / "backup"))
            shutil.copyfile(root / "a" / "master.key", root / "b" / "master.key")
            (root / "b" / "master.key").chmod(0o600)
            target = dict(env, COMMONS_DATA_DIR=str(root / "b"), COMMONS_DATABASE_URL=empty)
            restore_s, report = _run(target, "restore", str(root / "backup"), "--yes")
        parts = manifest["parts"]
        assert isinstance(parts, dict)
        print(
            json.dumps(
                {
                    "backend": report["backend"],
                    "log_size": report["log_size"],
                    "rows": report["rows"],
                    "backup_s": round(backup_s, 1),
                    "restore_s": round(restore_s, 1),
                    "backup_mb": round(sum(p["bytes"] for p in parts.values()) / 1e6, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
