"""Consent figures: the consent check at scale, and consent-gated retrieval over HTTP.

Prints one JSON line per figure, each with a baseline measured in the same run.

* ``consent_check`` — ``consent.service.check`` (one read on the ``(lender, principal)``
  index plus the pure evaluation) in-process on SQLite, p50/p99 over random pairs with
  1,000 consents stored and again with 1,000,000.  Baseline: the same indexed lookup as a
  raw ``sqlite3`` query on the same file (the floor any check pays).  Targets (issue 6):
  p99 ≤ 200 µs at 1,000,000, and p99(1,000,000) / p99(1,000) ≤ 1.5.  Seed 001's on-chain
  check, for comparison, grows from 26k to 766k gas with the number of consents.
* ``consent_retrieval_http`` — ``GET /v1/lender/credentials?consent_id=…`` (access token,
  rate limits, consent lock and check, credential from the vault, in-scope disclosures,
  use counted, ``access.allowed`` logged) through ``commons serve`` (uvicorn, one worker,
  loopback, SQLite), driven by ``--concurrency`` client connections in this process; each
  request uses its own one-time consent.  Baseline: ``GET /healthz`` on the same server in
  the same run.  Targets: ≥ 300 requests/s with p99 ≤ 50 ms.  The machine's cores are
  shared by the server and the load generator.

Usage: python bench/consent.py [--consents 1000000] [--checks 20000] [--requests 2000]
       [--concurrency 8] [--skip check,http]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from credit_commons.consent import service
from credit_commons.consent.models import ConsentRow
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.runtime import Runtime

TYPE = "CreditReadinessCredential"
SCOPES = json.dumps([{"claims": ["/income_bracket"], "type": TYPE}])
LENDERS = [f"lnd_{i:022d}" for i in range(100)]


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
            service.check(
                session, lender=lender, principal=principal, type_name=TYPE, claims=claims, now=now
            )
        for lender, principal in sample:
            t0 = time.perf_counter_ns()
            service.check(
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


def _prepare(env: dict[str, str], base: str, n: int) -> tuple[str, list[str]]:
    """A borrower with a credential, a lender, and ``n`` granted one-time consents."""
    from credit_commons.demo import lender_token  # noqa: PLC0415
    from credit_commons.identity.service import issue_admin_token  # noqa: PLC0415
    from credit_commons.issuer.catalogue import commit_score  # noqa: PLC0415
    from credit_commons.keys.algorithms import KeyType, PrivateKey  # noqa: PLC0415
    from credit_commons.keys.jwk import public_key_to_jwk  # noqa: PLC0415

    rt = Runtime.build(Settings(data_dir=Path(env["COMMONS_DATA_DIR"]), public_url=base))
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
        as_borrower = {"Authorization": f"Bearer {made['access_token']}"}
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
        as_lender = {"Authorization": f"Bearer {token}"}
        expiry = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        ids = []
        start = time.perf_counter()
        for i in range(n):
            body = {
                "template": "loan_underwriting",
                "borrower": made["identity_token"],
                "purpose": "105",
                "consent_expiry": expiry,
                "scopes": [{"type": TYPE, "claims": ["/income_bracket"]}],
            }
            consent = http.post("/v1/consents", json=body, headers=as_lender).json()
            http.post(
                f"/v1/borrowers/consents/{consent['consent_id']}/approve", headers=as_borrower
            ).raise_for_status()
            ids.append(consent["consent_id"])
            if (i + 1) % 500 == 0:
                progress(
                    f"consents granted {i + 1:,} / {n:,} ({time.perf_counter() - start:.0f} s)"
                )
    return token, ids


async def _load(
    base: str, paths: list[str], headers: dict[str, str], concurrency: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = 0
    queue = list(reversed(paths))
    async with httpx.AsyncClient(
        base_url=base, timeout=30, limits=httpx.Limits(max_connections=concurrency)
    ) as client:

        async def worker() -> None:
            nonlocal failures
            while queue:
                path = queue.pop()
                t0 = time.perf_counter()
                response = await client.get(path, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    failures += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(paths) / elapsed, latencies, failures


def bench_http(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
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
            "COMMONS_LOG_LEVEL": "WARNING",
        }
        commons = [sys.executable, "-m", "credit_commons.cli"]
        subprocess.run([*commons, "db", "upgrade"], env=env, check=True, capture_output=True)
        server = subprocess.Popen(
            [*commons, "serve", "--port", str(port), "--no-worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            token, ids = _prepare(env, base, args.requests + 100)
            headers = {"Authorization": f"Bearer {token}"}
            warm, ids = ids[:100], ids[100:]
            asyncio.run(
                _load(
                    base,
                    [f"/v1/lender/credentials?consent_id={c}" for c in warm],
                    headers,
                    args.concurrency,
                )
            )
            rate, latencies, failures = asyncio.run(
                _load(
                    base,
                    [f"/v1/lender/credentials?consent_id={c}" for c in ids],
                    headers,
                    args.concurrency,
                )
            )
            base_rate, base_latencies, _ = asyncio.run(
                _load(base, ["/healthz"] * len(ids), {}, args.concurrency)
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    emit(
        figure="consent_retrieval_http",
        backend="sqlite",
        server="commons serve (uvicorn, one worker, loopback)",
        requests=len(ids),
        concurrency=args.concurrency,
        failures=failures,
        requests_per_s=round(rate),
        p50_ms=round(statistics.median(latencies), 2),
        p99_ms=round(percentile(latencies, 0.99), 2),
        target_requests_per_s=300,
        target_p99_ms=50,
        meets_target=rate >= 300 and percentile(latencies, 0.99) <= 50 and failures == 0,
        baseline="GET /healthz on the same server, same concurrency",
        baseline_requests_per_s=round(base_rate),
        baseline_p99_ms=round(percentile(base_latencies, 0.99), 2),
        ratio=round(rate / base_rate, 4),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consents", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip", default="", help="comma-separated: check,http")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    random.seed(20261122)
    if "check" not in skip:
        bench_check(args)
    if "http" not in skip:
        bench_http(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
