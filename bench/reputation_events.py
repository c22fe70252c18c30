"""Sign-and-submit latency of reputation events through a real ``commons serve`` (issue 19,
"Figures": p95 <= 20 ms; seed 004: 200 ms), against ``GET /healthz`` in the same run.

One client, sequential requests (a latency, not a throughput): each sample signs a vouch
with the sender's Ed25519 key (RFC 8785 bytes, inline signature), POSTs it to
``/v1/events`` and reads the 201 answer (stored, spine event written, the log's pending
receipt signed).  The members are registered in-process beforehand (``register_member``
with a KYC type and issuer of the rule set), so the budgets (5 vouches per context and
month) and not the credential pipeline bound the senders.  Prints one JSON line per figure.

Usage: python bench/reputation_events.py [--events 600] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from credit_commons import reputation
from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.keys import KeyType, PrivateKey, encode_did_key
from credit_commons.reputation import new_nonce, register_rule_set, sign_event
from credit_commons.reputation import service as reputation_service
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance, postgres_schema
from served import commons_server, free_port, percentile

KYC_VCT = "https://credit-commons.dev/vct/kyc/v1"
CONTEXTS = ("general", "commerce", "shg:savings")
PER_CONTEXT = 5  # the example rule set's vouchesPerEpoch


def _prepare(settings: Settings, base: str, senders: int) -> list[PrivateKey]:
    # The example rule set in effect from a day ago, and ``senders`` KYC members.
    document = json.loads((Path(reputation.__file__).parent / "dev_rules.json").read_text())
    document["validFrom"] = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document["kyc"] = {"credentialTypes": [KYC_VCT], "trustedIssuers": [base]}
    keys = [PrivateKey.generate(KeyType.ED25519) for _ in range(senders)]
    rt = Runtime.build(settings)
    try:
        with transaction(rt.sessions) as session:
            register_rule_set(session, rt, document, actor=rt.operator_actor("bench"), dev=True)
            for i, key in enumerate(keys):
                reputation_service.register_member(
                    session,
                    rt,
                    did=encode_did_key(key.public_key),
                    vct=KYC_VCT,
                    issuer=base,
                    credential_sha256=f"{i:064x}",
                    status_ref=None,
                    rules=reputation.active_rule_set(session, rt, rt.clock.now()).rule_set,
                )
    finally:
        rt.close()
    return keys


@contextmanager
def _database(backend: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
    else:
        with postgres_schema() as url:
            yield url


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    forget_configured_instance()
    senders = -(-args.events // (PER_CONTEXT * len(CONTEXTS))) + 1
    with tempfile.TemporaryDirectory() as tmp, _database(args.backend) as url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "COMMONS_DATA_DIR": str(Path(tmp) / "var"),
            "COMMONS_PUBLIC_URL": base,
            "COMMONS_RATE_LIMITS": json.dumps(
                {"reputation-events.ip": "1000000/minute", "operations.ip": "1000000/minute"}
            ),
            "COMMONS_LOG_LEVEL": "WARNING",
        }
        if url is not None:
            env["COMMONS_DATABASE_URL"] = url
        settings = Settings(data_dir=Path(tmp) / "var", database_url=url, public_url=base)
        with commons_server(env, port, workers=1), httpx.Client(base_url=base) as http:
            keys = _prepare(settings, base, senders)
            recipient = encode_did_key(PrivateKey.generate(KeyType.ED25519).public_key)
            plan = [(key, ctx) for key in keys for ctx in CONTEXTS for _ in range(PER_CONTEXT)][
                : args.events + 20
            ]
            submit: list[float] = []
            for n, (key, ctx) in enumerate(plan):
                start = time.perf_counter()
                now = datetime.now(UTC).replace(microsecond=0)
                event = sign_event(
                    key,
                    type="vouch",
                    to=recipient,
                    ctx=ctx,
                    epoch=now.strftime("%Y-%m"),
                    nonce=new_nonce(os.urandom(12)),
                    issued_at=now,
                )
                answer = http.post("/v1/events", content=event.blob())
                elapsed = time.perf_counter() - start
                if answer.status_code != 201:
                    raise SystemExit(f"event {n} refused: {answer.text}")
                if n >= 20:  # the first requests warm the server up
                    submit.append(elapsed * 1000)
            floor: list[float] = []
            for n in range(len(submit) + 20):
                start = time.perf_counter()
                http.get("/healthz").raise_for_status()
                if n >= 20:
                    floor.append((time.perf_counter() - start) * 1000)
    print(
        json.dumps(
            {
                "figure": "reputation_sign_and_submit_ms",
                "backend": args.backend,
                "samples": len(submit),
                "p50": round(statistics.median(submit), 2),
                "p95": round(percentile(submit, 0.95), 2),
                "baseline": "GET /healthz, same server and client",
                "baseline_p50": round(statistics.median(floor), 2),
                "baseline_p95": round(percentile(floor, 0.95), 2),
                "target_p95": 20,
                "meets_target": percentile(submit, 0.95) <= 20,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
