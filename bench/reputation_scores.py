"""Cached score-bundle fetch latency through a real ``commons serve`` (issue 19, "Figures":
p95 <= 10 ms), against ``GET /healthz`` in the same run.

The benchmark registers ``--members`` KYC members in-process, submits their vouches over
HTTP (each member vouches for the next five, within the budget), runs one log-worker pass
with the scoring step (sequence, checkpoint, score: jobs.scores_step), fetches each bundle
once (the first fetch requests it: 202 Accepted) and runs the bundles step
(jobs.bundles_step) until every fetch answers 200, then measures ``--fetches``
sequential ``GET /v1/scores?did=&ctx=`` of kept bundles from one client.  Prints one JSON line.

Usage: python bench/reputation_scores.py [--members 60] [--fetches 1000]
       [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from credit_commons.core.settings import Settings
from credit_commons.jobs import bundles_step, scores_step
from credit_commons.keys import encode_did_key
from credit_commons.ledger.worker import LogWorker
from credit_commons.reputation import new_nonce, sign_event
from credit_commons.reputation.scores_service import BUNDLES_PER_PASS
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance
from reputation_events import _database, _percentile, _prepare
from served import commons_server, free_port

CTX = "shg:savings"
FAN_OUT = 5  # the example rule set's vouchesPerEpoch


def main() -> None:
    """Run the benchmark and print its figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=60)
    parser.add_argument("--fetches", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    forget_configured_instance()
    with tempfile.TemporaryDirectory() as tmp, _database(args.backend) as url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "COMMONS_DATA_DIR": str(Path(tmp) / "var"),
            "COMMONS_PUBLIC_URL": base,
            "COMMONS_RATE_LIMITS": json.dumps(
                {
                    "reputation-events.ip": "1000000/minute",
                    "scores.ip": "1000000/minute",
                    "operations.ip": "1000000/minute",
                }
            ),
            "COMMONS_LOG_CHECKPOINT_INTERVAL": "1",
            "COMMONS_LOG_LEVEL": "WARNING",
        }
        if url is not None:
            env["COMMONS_DATABASE_URL"] = url
        settings = Settings(data_dir=Path(tmp) / "var", database_url=url, public_url=base)
        with commons_server(env, port, workers=1), httpx.Client(base_url=base) as http:
            keys = _prepare(settings, base, args.members)
            dids = [encode_did_key(k.public_key) for k in keys]
            for i, key in enumerate(keys):
                for step in range(1, FAN_OUT + 1):
                    now = datetime.now(UTC).replace(microsecond=0)
                    event = sign_event(
                        key,
                        type="vouch",
                        to=dids[(i + step) % len(dids)],
                        ctx=CTX,
                        epoch=now.strftime("%Y-%m"),
                        nonce=new_nonce(os.urandom(12)),
                        issued_at=now,
                    )
                    answer = http.post("/v1/events", content=event.blob())
                    if answer.status_code != 201:
                        raise SystemExit(f"event refused: {answer.text}")
            # The log worker (here in-process, as `commons worker` runs it) sequences,
            # checkpoints and scores.
            rt = Runtime.build(settings)
            try:
                started = time.perf_counter()
                report = LogWorker(rt, steps=[scores_step()]).run_once(force_checkpoint=True)
                scoring_s = time.perf_counter() - started
            finally:
                rt.close()
            if not report.extra.get("scores_records"):
                raise SystemExit(f"nothing was scored: {report}")
            # The first fetch of each record requests its bundle (202 Accepted); the jobs
            # step (here in-process, as `commons worker` runs it) builds the requested
            # bundles off the request path; fetch until every one is kept (bounded).
            pending = list(dids)
            started = time.perf_counter()
            for _ in range(len(dids) // BUNDLES_PER_PASS + 3):
                waiting = []
                for did in pending:
                    answer = http.get("/v1/scores", params={"did": did, "ctx": CTX})
                    if answer.status_code == 202:
                        waiting.append(did)
                    else:
                        answer.raise_for_status()
                pending = waiting
                if not pending:
                    break
                rt = Runtime.build(settings)
                try:
                    bundles_step()(rt, 0)
                finally:
                    rt.close()
            if pending:
                raise SystemExit(f"{len(pending)} bundles were not prepared")
            bundles_s = time.perf_counter() - started
            fetch: list[float] = []
            size = 0
            for n in range(args.fetches):
                did = dids[n % len(dids)]
                start = time.perf_counter()
                answer = http.get("/v1/scores", params={"did": did, "ctx": CTX})
                fetch.append((time.perf_counter() - start) * 1000)
                answer.raise_for_status()
                size = max(size, len(answer.content))
            floor: list[float] = []
            for _ in range(args.fetches):
                start = time.perf_counter()
                http.get("/healthz").raise_for_status()
                floor.append((time.perf_counter() - start) * 1000)
    print(
        json.dumps(
            {
                "figure": "reputation_cached_score_fetch_ms",
                "backend": args.backend,
                "members": args.members,
                "samples": len(fetch),
                "max_bundle_bytes": size,
                "sequence_checkpoint_score_s": round(scoring_s, 2),
                "request_and_build_bundles_s": round(bundles_s, 2),
                "p50": round(statistics.median(fetch), 2),
                "p95": round(_percentile(fetch, 0.95), 2),
                "baseline": "GET /healthz, same server and client",
                "baseline_p50": round(statistics.median(floor), 2),
                "baseline_p95": round(_percentile(floor, 0.95), 2),
                "target_p95": 10,
                "meets_target": _percentile(fetch, 0.95) <= 10,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
