"""Consent figures: the consent check at scale, and consent-gated retrieval over HTTP.

Prints one JSON line per figure, each with a baseline measured in the same run.

* ``consent_check`` — ``consent.check.check`` (one read on the ``(lender, principal)``
  index plus the pure evaluation) in-process on SQLite, p50/p99 over random pairs with
  1,000 consents stored and again with 1,000,000.  Baseline: the same indexed lookup as a
  raw ``sqlite3`` query on the same file (the floor any check pays).  Targets (issue 6):
  p99 ≤ 200 µs at 1,000,000, and p99(1,000,000) / p99(1,000) ≤ 1.5.  Seed 001's on-chain
  check, for comparison, grows from 26k to 766k gas with the number of consents.
* ``consent_retrieval_http`` — ``GET /v1/lender/credentials?consent_id=…`` (access token,
  rate limits, consent lock and check, credential from the vault, in-scope disclosures,
  use counted, ``access.allowed`` logged) through ``commons serve`` (uvicorn, one worker,
  loopback, SQLite), driven by ``wrk`` (one thread, ``--concurrency`` connections, for
  ``--seconds``); each request uses its own one-time consent, prepared beforehand.
  Baseline: ``GET /healthz`` on the same server under the same load, in the same run.
  Targets: ≥ 300 requests/s with p99 ≤ 50 ms.  The server and ``wrk`` share the machine.

Usage: python bench/consent.py [--consents 1000000] [--checks 20000] [--requests 12000]
       [--warm-up 400] [--seconds 10] [--concurrency 8] [--skip check,http]  (needs ``wrk``)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, text

from credit_commons.consent import check as consent_check
from credit_commons.consent import decisions
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.models import ConsentRow
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance, postgres_schema
from served import commons_server, cpu_seconds, percentile, process_tree

TYPE = "CreditReadinessCredential"
SCOPES = json.dumps([{"claims": ["/income_bracket"], "type": TYPE}])
LENDERS = [f"lnd_{i:022d}" for i in range(100)]


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# -- the consent check -------------------------------------------------------------------


def _rows(n: int, now: datetime) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    rows, pairs = [], []
    for _ in range(n):
        lender = random.choice(LENDERS)
        principal = "p1:" + b64url_encode(secrets.token_bytes(32))
        pairs.append((lender, principal))
        rows.append(
            {
                "id": "cns_" + secrets.token_hex(13).upper(),
                "status": "ACTIVE",
                "template": "loan_underwriting",
                "lender_client_id": lender,
                "principal": principal,
                "principal_token": "idt_" + secrets.token_hex(11),
                "purpose_code": "105",
                "mode": "VIEW",
                "fetch_type": "ONETIME",
                "frequency_unit": "DAY",
                "frequency_value": 1,
                "data_life_unit": "MONTH",
                "data_life_value": 1,
                "scopes": SCOPES,
                "starts_at": now - timedelta(hours=1),
                "expires_at": now + timedelta(days=20),
                "otp_attempts": 0,
                "uses": 0,
                "window": -1,
                "window_uses": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows, pairs


def _fill(rt: Runtime, n: int, now: datetime, pairs: list[tuple[str, str]]) -> None:
    done = 0
    start = time.perf_counter()
    while done < n:
        chunk = min(50_000, n - done)
        rows, new_pairs = _rows(chunk, now)
        with transaction(rt.sessions) as session:
            session.execute(insert(ConsentRow), rows)
        pairs += new_pairs
        done += chunk
        if done % 200_000 == 0 or done == n:
            progress(f"consents stored {len(pairs):,} ({time.perf_counter() - start:.0f} s)")


def _measure(
    rt: Runtime, db_file: Path, pairs: list[tuple[str, str]], checks: int
) -> dict[str, float]:
    sample = [random.choice(pairs) for _ in range(checks)]
    now = datetime.now(UTC)
    claims = frozenset({"/income_bracket"})
    project: list[float] = []
    with transaction(rt.read_sessions) as session:
        for lender, principal in sample[:200]:  # warm up
            consent_check.check(
                session, lender=lender, principal=principal, type_name=TYPE, claims=claims, now=now
            )
        for lender, principal in sample:
            t0 = time.perf_counter_ns()
            consent_check.check(
                session, lender=lender, principal=principal, type_name=TYPE, claims=claims, now=now
            )
            project.append((time.perf_counter_ns() - t0) / 1000)
    raw: list[float] = []
    connection = sqlite3.connect(db_file)
    query = (
        "SELECT id, status, starts_at, expires_at, fetch_type, frequency_unit, frequency_value,"
        " scopes, uses, window, window_uses FROM consents WHERE lender_client_id = ? AND"
        " principal = ? ORDER BY id DESC LIMIT 16"
    )
    for pair in sample[:200]:
        connection.execute(query, pair).fetchall()
    for pair in sample:
        t0 = time.perf_counter_ns()
        connection.execute(query, pair).fetchall()
        raw.append((time.perf_counter_ns() - t0) / 1000)
    connection.close()
    return {
        "p50_us": round(statistics.median(project), 1),
        "p99_us": round(percentile(project, 0.99), 1),
        "baseline_p50_us": round(statistics.median(raw), 1),
        "baseline_p99_us": round(percentile(raw, 0.99), 1),
    }


def bench_check(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db_file = Path(tmp) / "consents.db"
        rt = Runtime.build(
            Settings(data_dir=Path(tmp) / "var", database_url=f"sqlite:///{db_file}")
        )
        upgrade(rt.engine)
        try:
            now = datetime.now(UTC)
            pairs: list[tuple[str, str]] = []
            _fill(rt, 1_000, now, pairs)
            small = _measure(rt, db_file, pairs, args.checks)
            progress(f"check at 1,000: {small}")
            _fill(rt, args.consents - 1_000, now, pairs)
            large = _measure(rt, db_file, pairs, args.checks)
            progress(f"check at {args.consents:,}: {large}")
        finally:
            rt.close()
    ratio = large["p99_us"] / small["p99_us"]
    emit(
        figure="consent_check",
        backend="sqlite",
        checks=args.checks,
        consents_small=1_000,
        consents_large=args.consents,
        small=small,
        large=large,
        p99_us=large["p99_us"],
        target_p99_us=200,
        growth_ratio_p99=round(ratio, 3),
        target_growth_ratio=1.5,
        meets_target=large["p99_us"] <= 200 and ratio <= 1.5,
        baseline="raw sqlite3 indexed lookup of the same rows on the same file",
        context="seed 001's on-chain check grows from 26k to 766k gas with the consents stored",
    )


# -- retrieval over HTTP -----------------------------------------------------------------


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(env: dict[str, str], base: str) -> Settings:
    """The server's settings, for preparing its state in-process."""
    return Settings(
        data_dir=Path(env["COMMONS_DATA_DIR"]),
        database_url=env.get("COMMONS_DATABASE_URL"),
        public_url=base,
    )


def _prepare(env: dict[str, str], base: str, n: int) -> tuple[str, list[str]]:
    """A borrower with a credential, a lender, and ``n`` granted one-time consents."""
    from credit_commons.demo import lender_token  # noqa: PLC0415
    from credit_commons.identity.auth import issue_admin_token  # noqa: PLC0415
    from credit_commons.issuer.catalogue import commit_score  # noqa: PLC0415
    from credit_commons.keys.algorithms import KeyType, PrivateKey  # noqa: PLC0415
    from credit_commons.keys.jwk import public_key_to_jwk  # noqa: PLC0415

    rt = Runtime.build(_settings(env, base))
    try:
        with transaction(rt.sessions) as session:
            admin, _ = issue_admin_token(session, rt, "bench")
    finally:
        rt.close()
    as_admin = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        made = http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": "B"}}
        ).json()
        salt = b64url_encode(secrets.token_bytes(16))
        claims = {
            "enterprise": {"identity_token": made["identity_token"]},
            "credit_tier": "B",
            "income_bracket": "5L-25L",
            "debt_ratio_bracket": "0.2-0.4",
            "score_commitment": commit_score(700, salt),
            "score_opening": {"score": 700, "salt": salt},
            "verification_sources": ["gstn"],
        }
        holder = PrivateKey.generate(KeyType.ED25519)
        issued = http.post(
            "/v1/credentials",
            json={
                "type": TYPE,
                "subject": made["identity_token"],
                "claims": claims,
                "holder_jwk": public_key_to_jwk(holder.public_key),
            },
            headers=as_admin,
        )
        issued.raise_for_status()
        key = PrivateKey.generate(KeyType.ED25519)
        lender = http.post(
            "/v1/admin/lenders",
            json={
                "name": "Bench Bank",
                "jwks": {"keys": [public_key_to_jwk(key.public_key)]},
                "allowed_purposes": ["105"],
            },
            headers=as_admin,
        ).json()
        token = lender_token(http, base, lender["client_id"], key)
        borrower = made["identity_token"]
        borrower_token = made["access_token"]
    ids = _grant_many(env, base, lender["client_id"], borrower, borrower_token, n)
    return token, ids


def _grant_many(
    env: dict[str, str], base: str, client_id: str, borrower: str, token: str, n: int
) -> list[str]:
    """``n`` granted one-time consents, made in-process through the service layer (the
    server shares the database file): fast to prepare, identical to the HTTP path's."""
    from credit_commons.consent.model import ConsentRequest  # noqa: PLC0415
    from credit_commons.identity.auth import authenticate  # noqa: PLC0415
    from credit_commons.lenders import get_client  # noqa: PLC0415

    rt = Runtime.build(_settings(env, base))
    ids: list[str] = []
    try:
        with transaction(rt.sessions) as session:
            client = get_client(session, client_id)
            principal = authenticate(session, rt, f"Bearer {token}")
        assert client is not None
        lender = type(
            "L", (), {"client_id": client_id, "purposes": frozenset(client.allowed_purposes)}
        )()
        body = ConsentRequest.model_validate(
            {
                "template": "loan_underwriting",
                "borrower": borrower,
                "purpose": "105",
                "consent_expiry": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
                "scopes": [{"type": TYPE, "claims": ["/income_bracket"]}],
            }
        )
        start = time.perf_counter()
        for lo in range(0, n, 200):
            with transaction(rt.sessions) as session:
                for _ in range(min(200, n - lo)):
                    made = consent_requests.request_consent(session, rt, lender, body)
                    decisions.decide(session, rt, principal, made.consent_id, "approve")
                    ids.append(made.consent_id)
            progress(f"consents granted {len(ids):,} / {n:,} ({time.perf_counter() - start:.0f} s)")
    finally:
        rt.close()
    return ids


_WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[((i - 1) % #paths) + 1])
end
"""


def _wrk(
    base: str, paths: list[str], auth: str | None, seconds: int, connections: int, tmp: Path
) -> dict[str, Any]:
    """Drive the server with ``wrk`` (one thread, ``connections`` connections) for
    ``seconds``; returns requests/s, latency percentiles and non-2xx responses."""
    script, listing = tmp / "bench.lua", tmp / "paths.txt"
    script.write_text(_WRK_SCRIPT)
    listing.write_text("\n".join(paths) + "\n")
    env = {**os.environ, "BENCH_PATHS": str(listing), "BENCH_AUTH": auth or ""}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == label:
                value = parts[1]
                factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}
                for unit in ("us", "ms", "s"):
                    if value.endswith(unit):
                        return float(value[: -len(unit)]) * factor[unit]
        raise ValueError(f"no {label} in wrk output:\n{out}")

    rate = next(
        float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec:")
    )
    total = next(int(line.split()[0]) for line in out.splitlines() if "requests in" in line)
    bad = next((int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line), 0)
    return {"rate": rate, "p50": ms("50%"), "p99": ms("99%"), "requests": total, "non_2xx": bad}


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[str | None]:
    """None (SQLite under the data directory) or a fresh PostgreSQL schema's URL."""
    if backend == "sqlite":
        yield None
        return
    with postgres_schema() as url:
        yield url


_APPLICATION = "bench-consent"  # the server's PostgreSQL sessions, found by this name


def _backends(url: str | None) -> list[int]:
    """PIDs of the server's PostgreSQL backends (none on SQLite)."""
    if url is None:
        return []
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": _APPLICATION},
            )
            return [int(row[0]) for row in rows]
    finally:
        engine.dispose()


class _CpuSplit:
    """CPU seconds per request of the server processes, their PostgreSQL backends and
    ``wrk`` over one load run: what each side costs, whatever else the machine is doing."""

    def __init__(self, server: int, url: str | None) -> None:
        self._url, self._server = url, process_tree(server)
        self._pg = _backends(url)
        self._start = self._now()

    def _now(self) -> tuple[float, float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (
            sum(map(cpu_seconds, self._server)),
            sum(map(cpu_seconds, self._pg)),
            children.ru_utime + children.ru_stime,
        )

    def per_request_ms(self, requests: int) -> dict[str, float]:
        self._pg = sorted(set(self._pg) | set(_backends(self._url)))
        end = self._now()
        spent = [1000 * (b - a) / max(requests, 1) for a, b in zip(self._start, end, strict=True)]
        server, pg, wrk = spent
        return {"server": round(server, 3), "postgresql": round(pg, 3), "wrk": round(wrk, 3)}


def _retrieval(args: argparse.Namespace, backend: str, workers: int) -> dict[str, Any]:
    """Retrieval and the /healthz floor through `commons serve --workers N` on a fresh
    database of ``backend``."""
    with tempfile.TemporaryDirectory() as tmp, _database(backend, Path(tmp)) as fresh:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")},
            "COMMONS_DATA_DIR": str(Path(tmp) / "var"),
            "COMMONS_PUBLIC_URL": base,
            # The bench is one client hammering the API: per-client limits would measure the
            # limiter, not the platform (production keeps its defaults).
            "COMMONS_RATE_LIMIT_CLIENT": "1000000/minute",
            "COMMONS_RATE_LIMIT_IP": "1000000/minute",
            # The floor (/healthz) too: its group's 600/minute would answer it 429.
            "COMMONS_RATE_LIMITS": json.dumps({"operations.ip": "100000000/minute"}),
            "COMMONS_LOG_LEVEL": "WARNING",
        }
        # Named, so that the CPU split finds the server's PostgreSQL sessions.
        url = None if fresh is None else f"{fresh}%20-capplication_name%3D{_APPLICATION}"
        if url is not None:
            env["COMMONS_DATABASE_URL"] = url
        with commons_server(env, port, workers=workers) as server:
            token, ids = _prepare(env, base, args.requests + args.warm_up)
            auth = f"Bearer {token}"
            paths = [f"/v1/lender/credentials?consent_id={c}" for c in ids]
            # Every worker process warms up (each connection lands on one of them).
            warm, paths = paths[: args.warm_up], paths[args.warm_up :]
            _wrk(base, warm, auth, 2, args.concurrency, Path(tmp))
            split = _CpuSplit(server, url)
            found = _wrk(base, paths, auth, args.seconds, args.concurrency, Path(tmp))
            found["cpu_ms_per_request"] = split.per_request_ms(found["requests"])
            floor = _wrk(base, ["/healthz"], None, args.seconds, args.concurrency, Path(tmp))
    # Each consent is one-time: requests beyond the prepared consents would be refused, so
    # a run that used them all up says so (non_2xx) instead of counting refusals as work.
    found["valid"] = found["requests"] <= len(paths)
    found["consents_prepared"] = len(paths)
    found["floor"] = floor
    return found


def bench_http(args: argparse.Namespace) -> None:
    found = _retrieval(args, "sqlite", 1)
    floor = found["floor"]
    emit(
        figure="consent_retrieval_http",
        backend="sqlite",
        server="commons serve (uvicorn, one worker, loopback)",
        load="wrk, one thread",
        seconds=args.seconds,
        concurrency=args.concurrency,
        requests=found["requests"],
        consents_prepared=found["consents_prepared"],
        non_2xx=found["non_2xx"],
        requests_per_s=round(found["rate"]),
        p50_ms=found["p50"],
        p99_ms=found["p99"],
        target_requests_per_s=300,
        target_p99_ms=50,
        meets_target=found["rate"] >= 300 and found["p99"] <= 50 and found["non_2xx"] == 0,
        valid=found["valid"],
        baseline="GET /healthz on the same server, same load",
        baseline_requests_per_s=round(floor["rate"]),
        baseline_p99_ms=floor["p99"],
        ratio=round(found["rate"] / floor["rate"], 4),
    )


def bench_workers(args: argparse.Namespace) -> None:
    """Retrieval on PostgreSQL with one worker process, then with ``--workers``, in one run
    (issue 13 item 7: ≥ 1.7 × one worker's requests/s at 2 workers, p99 ≤ 50 ms)."""
    load_average = os.getloadavg()[0]
    one = _retrieval(args, "postgresql", 1)
    progress(f"postgresql, 1 worker: {one}")
    many = _retrieval(args, "postgresql", args.workers)
    progress(f"postgresql, {args.workers} workers: {many}")
    ratio = many["rate"] / one["rate"]

    def side(found: dict[str, Any]) -> dict[str, Any]:
        return {
            "requests_per_s": round(found["rate"]),
            "p50_ms": found["p50"],
            "p99_ms": found["p99"],
            "requests": found["requests"],
            "non_2xx": found["non_2xx"],
            "valid": found["valid"],
            "healthz_requests_per_s": round(found["floor"]["rate"]),
            "cpu_ms_per_request": found["cpu_ms_per_request"],
        }

    # What the machine allows: one worker can at best keep one core busy (1 / s1 requests
    # per second, s1 its CPU per request), N workers share every core with PostgreSQL and
    # wrk (s2 + p2 + w2 per request): ratio <= min(N, cpus) * s1 / (s2 + p2 + w2).
    alone, cost = one["cpu_ms_per_request"], many["cpu_ms_per_request"]
    per_request = cost["server"] + cost["postgresql"] + cost["wrk"]
    cores = min(args.workers, os.cpu_count() or 1)
    ceiling = cores * alone["server"] / per_request if per_request else None

    emit(
        figure="consent_retrieval_workers",
        backend="postgresql",
        server=f"commons serve --workers {args.workers} (uvicorn, loopback, no log worker)",
        load="wrk, one thread",
        load_average=round(load_average, 2),
        cpus=os.cpu_count(),
        seconds=args.seconds,
        concurrency=args.concurrency,
        workers=args.workers,
        baseline="the same retrieval with one worker process, same run",
        one_worker=side(one),
        many_workers=side(many),
        ratio=round(ratio, 3),
        ratio_ceiling_from_cpu=None if ceiling is None else round(ceiling, 3),
        target_ratio=1.7,
        target_p99_ms=50,
        meets_target=ratio >= 1.7
        and many["p99"] <= 50
        and many["non_2xx"] == 0
        and many["valid"]
        and one["valid"],
    )


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consents", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=12_000, help="consents prepared")
    parser.add_argument(
        "--warm-up", type=int, default=400, help="consents prepared for the warm-up load"
    )
    parser.add_argument("--seconds", type=int, default=10, help="load duration")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (workers)")
    parser.add_argument("--skip", default="", help="comma-separated: check,http,workers")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    random.seed(20261122)
    if "check" not in skip:
        bench_check(args)
    if "http" not in skip:
        bench_http(args)
    if "workers" not in skip:
        bench_workers(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
