"""What one consent-gated retrieval costs PostgreSQL: statements and backend CPU.

Prints one JSON line, ``consent_retrieval_statements``: ``GET /v1/lender/credentials``
through ``commons serve`` (one worker, loopback) on a fresh PostgreSQL schema, driven by one
sequential client (``--requests`` retrievals, each of its own one-time consent, after
``--warm`` of them), with

* the statements PostgreSQL ran per retrieval, by kind, read from the server's own log: the
  server's sessions are opened with ``log_statement=all`` (a per-session setting; the
  server's configuration is untouched) and the log lines of their backend PIDs counted —
  so ``BEGIN``, ``COMMIT``, pings and every precompiled statement are seen, which a
  SQLAlchemy event hook would miss;
* the CPU milliseconds per retrieval of the server process and of its PostgreSQL
  backends (``/proc``), measured in a second pass without statement logging (logging
  costs the backend CPU itself).

Baseline: ``GET /healthz`` on the same server, same client, same run (its statements and
CPU per request: what the HTTP stack costs without retrieval).  The client is one process
on the same machine; its CPU is reported too.

Usage: python bench/consent_statements.py [--requests 1000] [--warm 200]
       [--log /var/log/postgresql/postgresql-15-main.log]  (run as a user who can read it)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from consent import _backends, _prepare
from own_state import forget_configured_instance, postgres_schema
from served import commons_server, cpu_seconds, free_port, process_tree

_APPLICATION = "bench-consent"  # what consent._backends looks for
_LINE = re.compile(r"\[(\d+)\] \S+@\S+ LOG:  (?:statement|execute [^:]*): (.*)")


def _kind(sql: str) -> str:
    # A statement's kind: its verb and, for reads and writes, the first table it names.
    words = sql.split()
    upper = [w.upper().lstrip("(") for w in words]
    verb = upper[0] if words else "?"
    if verb in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
        for i, word in enumerate(upper[:-1]):
            if word in ("FROM", "INTO", "UPDATE") and i + 1 < len(words):
                return verb + " " + words[i + 1].strip('"(')
    return verb


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _drive(
    base: str, paths: list[str], auth: str | None, server: int, url: str, log: Path | None
) -> dict[str, Any]:
    """Run ``paths`` one after another; CPU per request of each side and, with ``log``, the
    statements the server's backends logged per request."""
    procs = process_tree(server)
    headers = {"Authorization": auth} if auth else {}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
        http.get(paths[0])  # the connection and a backend exist before the count starts
        backends = _backends(url)
        start = log.stat().st_size if log else 0
        before = (sum(map(cpu_seconds, procs)), sum(map(cpu_seconds, backends)), _self_cpu())
        began = time.perf_counter()
        for path in paths[1:]:
            answer = http.get(path)
            if answer.status_code != 200:
                raise SystemExit(f"{path}: {answer.status_code} {answer.text}")
        elapsed = time.perf_counter() - began
        backends = sorted(set(backends) | set(_backends(url)))
        after = (sum(map(cpu_seconds, procs)), sum(map(cpu_seconds, backends)), _self_cpu())
    n = len(paths) - 1
    server_ms, pg_ms, client_ms = (1000 * (b - a) / n for a, b in zip(before, after, strict=True))
    found: dict[str, Any] = {
        "requests": n,
        "ms_per_request": round(1000 * elapsed / n, 3),
        "cpu_ms_per_request": {
            "server": round(server_ms, 3),
            "postgresql": round(pg_ms, 3),
            "client": round(client_ms, 3),
        },
    }
    if log is not None:
        time.sleep(0.5)  # the log collector flushes
        with log.open("rb") as f:
            f.seek(start)
            lines = f.read().decode("utf-8", "replace").splitlines()
        pids = {str(p) for p in backends}
        kinds: Counter[str] = Counter()
        for i, line in enumerate(lines):
            match = _LINE.search(line)
            if match and match.group(1) in pids:
                # A statement's text goes on in the lines that start with a tab.
                rest = itertools.takewhile(lambda x: x.startswith("\t"), lines[i + 1 :])
                kinds[_kind(" ".join([match.group(2), *rest]))] += 1
        found["statements_per_request"] = round(sum(kinds.values()) / n, 3)
        found["by_kind"] = {k: round(v / n, 3) for k, v in sorted(kinds.items())}
    return found


def _run(args: argparse.Namespace, log: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, postgres_schema() as fresh:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        options = f"%20-capplication_name%3D{_APPLICATION}"
        if log is not None:
            options += "%20-clog_statement%3Dall"
        url = f"{fresh}{options}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")},
            "COMMONS_DATA_DIR": str(Path(tmp) / "var"),
            "COMMONS_PUBLIC_URL": base,
            "COMMONS_DATABASE_URL": url,
            "COMMONS_RATE_LIMIT_CLIENT": "1000000/minute",
            "COMMONS_RATE_LIMIT_IP": "1000000/minute",
            "COMMONS_RATE_LIMITS": json.dumps({"operations.ip": "100000000/minute"}),
            "COMMONS_LOG_LEVEL": "WARNING",
        }
        with commons_server(env, port, workers=1) as server:
            token, ids = _prepare(env, base, args.warm + args.requests + 1)
            paths = [f"/v1/lender/credentials?consent_id={c}" for c in ids]
            warm, paths = paths[: args.warm], paths[args.warm :]
            auth = f"Bearer {token}"
            _drive(base, warm, auth, server, url, None)
            found = _drive(base, paths, auth, server, url, log)
            found["healthz"] = _drive(
                base, ["/healthz"] * (args.requests + 1), None, server, url, log
            )
    return found


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--log", default="/var/log/postgresql/postgresql-15-main.log")
    args = parser.parse_args()
    log = Path(args.log)
    if not os.access(log, os.R_OK):
        raise SystemExit(f"cannot read the PostgreSQL log {log}")
    counted = _run(args, log)
    timed = _run(args, None)
    print(
        json.dumps(
            {
                "figure": "consent_retrieval_statements",
                "backend": "postgresql",
                "server": "commons serve --workers 1 (uvicorn, loopback, no log worker)",
                "load": "one sequential httpx client on the same machine",
                "load_average": round(os.getloadavg()[0], 2),
                "requests": args.requests,
                "statements_per_request": counted["statements_per_request"],
                "statements_by_kind": counted["by_kind"],
                "cpu_ms_per_request": timed["cpu_ms_per_request"],
                "ms_per_request": timed["ms_per_request"],
                "baseline": "GET /healthz on the same server, same client, same run",
                "baseline_statements_per_request": counted["healthz"]["statements_per_request"],
                "baseline_cpu_ms_per_request": timed["healthz"]["cpu_ms_per_request"],
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
