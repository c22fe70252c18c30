"""Figures of issue 20's checkpoint committee (item 3), on loopback: a log (``commons
serve``'s app under uvicorn on 127.0.0.1, its own SQLite) and a committee of 5 with
threshold 3, each member a :class:`CommitteeMember` with its own SQLite database and master
key, talking HTTP to the log as ``commons committee run`` does, each on a thread of its own.

One JSON line per figure:

* ``raw_bls`` (the baseline): over the same checkpoint texts, 3 partial signatures
  (``KeyShare.sign``), ``combine`` (which checks each partial) and the group signature
  verified with the group key alone — the BLS work a cosignature needs, no HTTP, no
  database;
* ``cosign``: per round, a few events sequenced and a checkpoint published by the log
  worker; then the five members each make one pass (fetch the task, verify the log's
  signature, extend their copy of the tree from the log's tiles, recompute the root, sign,
  post the partial); the time from the checkpoint's commit to the first answer that says
  the checkpoint is cosigned (the third partial's, which combined them), p50/p95/max, and
  its ratio to the baseline.

Each line carries the one-minute load average when it was measured.  Bounded by
``--rounds``; every round's cosignature is checked with the group key alone.

Usage: python bench/committee.py [--rounds 30] [--events 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from credit_commons.core.db import transaction
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.events import record_event
from credit_commons.gateway.app import create_app
from credit_commons.gateway.route_groups import GROUPS
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger import committee
from credit_commons.ledger import service as log_service
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.committee_member import CommitteeMember, import_share
from credit_commons.ledger.committee_service import register_committee
from credit_commons.ledger.committee_setup import deal_files
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

T, N = 3, 5


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _emit(figure: str, **values: Any) -> None:
    print(json.dumps({"bench": "committee", "figure": figure, **values}), flush=True)


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _settings(root: Path, name: str, **extra: Any) -> Settings:
    return Settings(
        data_dir=root / name / "var",
        env="test",
        database_url=f"sqlite:///{root / name}.db",
        committee_notice=0.0,
        rate_limits={f"{g.name}.{k}": "1000000/minute" for g in GROUPS for k in ("ip", "client")},
        **extra,
    )


def _add_events(rt: Runtime, start: int, count: int) -> None:
    with transaction(rt.sessions) as session:
        for i in range(start, start + count):
            record_event(
                session,
                KeyRotated(key_name="k", version=i + 1, key_type=KeyType.ED25519, kid=f"k{i}"),
                actor=rt.operator_actor(),
                at=rt.clock.now(),
            )


@contextlib.contextmanager
def _served(settings: Settings, rt: Runtime, port: int) -> Iterator[None]:
    config = uvicorn.Config(
        create_app(settings, runtime=rt), host="127.0.0.1", port=port, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(2400):  # x 50 ms: a loaded machine starts slowly
            if server.started:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the log did not start")
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _baseline(texts: list[bytes]) -> list[float]:
    group, shares = committee.deal(T, N)
    members = [s.member for s in shares]
    timings = []
    for text in texts:
        started = time.perf_counter()
        partials = [share.sign(text) for share in shares[:T]]
        signature = committee.combine(partials, T, message=text, group=group, members=members)
        group.verify(text, signature)
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--events", type=int, default=20, help="events per checkpoint")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-committee-") as tmp:
        root = Path(tmp)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        settings = _settings(root, "log", public_url=base)
        log = Runtime.build(settings)
        upgrade(log.engine)
        group, shares = deal_files("commons-committee", T, N)
        with transaction(log.sessions) as session:
            register_committee(session, log, group, now=log.clock.now())
        _add_events(log, 0, args.events)
        worker = LogWorker(log, steps=[], probes=[])
        worker.run_once(force_checkpoint=True)
        vkey = log_identity(log).vkey
        member_rts = []
        with _served(settings, log, port):
            members = []
            for share in shares:
                rt = Runtime.build(_settings(root, f"member{share.index}"))
                upgrade(rt.engine)
                member_rts.append(rt)
                with transaction(rt.sessions) as session:
                    import_share(session, rt, share, now=rt.clock.now())
                client = httpx.Client(base_url=base + "/", timeout=30.0, trust_env=False)
                members.append(CommitteeMember(rt, log_url=base, log_vkey=vkey, client=client))
            # The first checkpoint (the committee's registration among its leaves): a warm-up.
            for member in members:
                member.run_once()

            timings: list[float] = []
            texts: list[bytes] = []
            for round_ in range(args.rounds):
                _add_events(log, (round_ + 1) * args.events, args.events)
                worker.run_once(force_checkpoint=True)
                published = time.perf_counter()
                cosigned: list[float] = []

                def one(member: CommitteeMember, done: list[float] = cosigned) -> None:
                    report = member.run_once()
                    if report.answer is not None and report.answer.get("cosigned") is True:
                        done.append(time.perf_counter())

                threads = [threading.Thread(target=one, args=(m,)) for m in members]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                if not cosigned:
                    raise SystemExit(f"round {round_}: the checkpoint was not cosigned")
                # The first answer that says "cosigned" carried the combination (a partial
                # posted after it is answered "cosigned" too).
                timings.append(min(cosigned) - published)
                with transaction(log.read_sessions) as session:
                    row = log_service.latest_checkpoint(session)
                    assert row is not None
                    note = log_service.checkpoint_with_cosignatures(session, row)
                opened = committee.verify_committee_signature(note, group.vkey)
                texts.append(opened.text.encode())
                assert Checkpoint.parse(opened.text).size == row.size
            for member in members:
                member.client.close()
        raw = _baseline(texts)
        _emit("raw_bls", rounds=len(raw), t=T, n=N, load=_load(), **_ms(raw))
        figures = _ms(timings)
        _emit(
            "cosign",
            rounds=len(timings),
            t=T,
            n=N,
            events_per_checkpoint=args.events,
            ratio_p50_to_raw=round(statistics.median(timings) / statistics.median(raw), 1),
            load=_load(),
            **figures,
        )
        for rt in member_rts:
            rt.close()
        log.close()
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()
