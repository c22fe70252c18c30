"""Threshold-proof latency over the wallet's local server (``commons wallet serve``, seed
004's ``POST /v1/threshold-proof``), against a direct ``wallet.zk_proofs.prove`` call of the
same statement, credential and threshold in the same run.

A real ``commons serve`` (SQLite or PostgreSQL) plays the SHG story up to a member holding
her CommunityTierCredential (``tests/reputation_story.py``: six wallets, five vouches, one
checkpoint); ``commons wallet serve`` runs for her wallet as its own process; one client
sends ``--proofs`` sequential requests (distinct nonces, after ``--warmup`` ones), each
answered with a proof, the bundle's checkpoint (fetched from the platform per request), a
presentation and a history line written to the wallet file.  The baseline proves the same
predicate ``--proofs`` times in this process (the engine's warm Node worker), without HTTP,
platform fetch, presentation or history.  The relying party's check
(``verifier.verify_threshold_proof``) of the answers is timed too.  Prints one JSON line per
figure, with the load average at the start and at the end; the ``part_*`` figures time
alone, in this process, the steps the server adds to the proof (the platform's bundle
fetched as its subject, the presentation, the wallet file read and written).

Usage: python bench/wallet_serve.py [--proofs 50] [--warmup 3] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

# The story's setup lives with the tests (one copy of it): the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.test_serve import commons_env
from tests.e2e.test_wallet_e2e import cli
from tests.reputation_story import CTX, member_with_tier

from credit_commons import zk
from credit_commons.core.net import OutboundFetcher
from credit_commons.keys import PublicKey, public_key_from_jwk
from credit_commons.verifier import threshold_request_hash, verify_threshold_proof
from credit_commons.verifier.status_fetch import StatusListFetcher
from credit_commons.wallet.client import make_presentation
from credit_commons.wallet.platform import Platform
from credit_commons.wallet.store import Wallet
from credit_commons.wallet.zk_proofs import fetch_statement, prove
from credit_commons.zk.registry import artefact_files
from own_state import forget_configured_instance, postgres_schema
from served import commons_server, free_port, percentile

_COMMONS = [sys.executable, "-m", "credit_commons.cli"]
SILVER = 25_000_000
AUDIENCE = "https://bank.example"


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _wallet_server(wallet_env: dict[str, str], base: str, tmp: Path) -> tuple[Any, str, str]:
    # commons wallet serve for the member's wallet: (process, URL, token).
    port = free_port()
    token_file = tmp / "wallet.token"
    process = subprocess.Popen(
        [*_COMMONS, "wallet", "serve", "--port", str(port), "--url", base,
         "--token-file", str(token_file), "--rate", "100000"],
        env=wallet_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if token_file.exists():
            try:
                httpx.get(url, timeout=1)
                return process, url, token_file.read_text()
            except httpx.TransportError:
                pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the wallet server did not start")
        time.sleep(0.1)


def _statement(base: str) -> zk.LoadedStatement:
    fetcher = OutboundFetcher(allow_private=True, allow_http=True, allow_loopback=True)
    with httpx.Client(timeout=10) as http:
        statement = fetch_statement(
            http, fetcher, f"{base}/v1/zk/statements", "community_score_at_least"
        )
    fetcher.close()
    paths = artefact_files(statement, zk.ARTEFACTS_DIR)
    return zk.LoadedStatement(statement, paths, {r: p.read_bytes() for r, p in paths.items()})


def _figure(name: str, samples: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "figure": name,
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.5), 2),
        "p95_ms": round(percentile(samples, 0.95), 2),
        **extra,
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proofs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    forget_configured_instance()
    load_start = _load()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with _url(args.backend, tmp) as database:
            env = commons_env(tmp / "var", database)
            env["COMMONS_PUBLIC_URL"] = base
            with commons_server(env, port, 1):
                with httpx.Client(base_url=base, timeout=30) as http:
                    holder = member_with_tier(base, env, tmp, http)
                    keys = http.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
                statement = _statement(base)
                figures = _measure(args, holder.wallet, base, env, tmp, statement, keys)
    for figure in figures:
        print(json.dumps({**figure, "backend": args.backend, "load_start": load_start,
                          "load_end": _load()}))  # fmt: skip


@contextmanager
def _url(backend: str, tmp: Path) -> Iterator[str]:
    # The database URL of the backend: a file under tmp, or a fresh PostgreSQL schema.
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'commons.db'}"
    else:
        with postgres_schema() as url:
            yield str(url)


def _measure(
    args: argparse.Namespace,
    wallet_env: dict[str, str],
    base: str,
    env: dict[str, str],
    tmp: Path,
    statement: zk.LoadedStatement,
    keys: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    process, url, token = _wallet_server(wallet_env, base, tmp)
    served: list[float] = []
    answers: list[tuple[str, dict[str, Any]]] = []
    try:
        with httpx.Client(
            base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as local:
            for i in range(args.warmup + args.proofs):
                nonce = f"bench-nonce-{i:06d}"
                body = {"ctx": CTX, "threshold": SILVER, "nonce": nonce, "audience": AUDIENCE}
                for _ in range(5):  # the first asks the platform to build the bundle
                    started = time.perf_counter()
                    answer = local.post("/v1/threshold-proof", json=body)
                    took = (time.perf_counter() - started) * 1000
                    if answer.status_code != 503:
                        break
                    cli(env, "log", "checkpoint", "--publish")
                if answer.status_code != 200:
                    raise SystemExit(f"the wallet server answered {answer.status_code}")
                if i >= args.warmup:
                    served.append(took)
                    answers.append((nonce, answer.json()))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    # The baseline: the same proof, directly, in this process.
    opened = Wallet.open(
        Path(wallet_env["COMMONS_WALLET_FILE"]), wallet_env["COMMONS_WALLET_PASSPHRASE"]
    )
    stored = next(c for c in reversed(opened.credentials) if "~" in c.credential)
    today = datetime.now(UTC).date()
    direct: list[float] = []
    for i in range(args.warmup + args.proofs):
        nonce = f"direct-nonce-{i:06d}"
        request_hash = threshold_request_hash(
            ctx=CTX, threshold=SILVER, nonce=nonce, audience=AUDIENCE
        )
        started = time.perf_counter()
        prove(
            stored, statement.statement, {"threshold": SILVER}, nonce=nonce,
            audience=AUDIENCE, request_hash=request_hash, today=today,
        )  # fmt: skip
        if i >= args.warmup:
            direct.append((time.perf_counter() - started) * 1000)

    # Where the server's time goes besides the proof: the parts it adds, each timed alone.
    fetcher = OutboundFetcher(allow_private=True, allow_http=True, allow_loopback=True)
    fetched: list[float] = []
    presented: list[float] = []
    saved: list[float] = []
    with Platform(base, opened.holder_key, None, fetcher=fetcher) as platform:
        for i in range(args.proofs):
            started = time.perf_counter()
            json.loads(platform.score_bundle(CTX).bundle or b"null")
            fetched.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            make_presentation(
                opened, stored.id, audience=AUDIENCE, nonce=f"p-{i:08d}", disclose=set()
            )
            presented.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            opened.reload()
            opened.save()
            saved.append((time.perf_counter() - started) * 1000)
    fetcher.close()

    # The relying party's check of each answer.
    by_kid = {k["kid"]: public_key_from_jwk(k) for k in keys}

    def resolve(header: Any, _payload: Any) -> PublicKey:
        return by_kid[header["kid"]]

    # Its status check: the platform's list, fetched once and cached (the list's ttl).
    list_fetcher = OutboundFetcher(allow_private=True, allow_http=True, allow_loopback=True)
    lists = StatusListFetcher(list_fetcher, lambda header: by_kid[header["kid"]])
    checked: list[float] = []
    day = zk.day_number(today)
    for nonce, answer in answers:
        started = time.perf_counter()
        verify_threshold_proof(
            answer, ctx=CTX, threshold=SILVER, nonce=nonce, audience=AUDIENCE,
            statement=statement, issuer_key_resolver=resolve, status=lists.status,
            now=int(time.time()), today=day,
        )  # fmt: skip
        checked.append((time.perf_counter() - started) * 1000)
    list_fetcher.close()

    baseline = _figure("zk_proofs_prove_direct", direct)
    return [
        _figure(
            "threshold_proof_over_wallet_server",
            served,
            baseline={k: baseline[k] for k in ("figure", "p50_ms", "p95_ms")},
        ),
        baseline,
        _figure("verify_threshold_proof", checked),
        _figure("part_platform_bundle_fetch_as_subject", fetched),
        _figure("part_presentation", presented),
        _figure("part_wallet_reload_and_save", saved),
    ]


if __name__ == "__main__":
    main()
