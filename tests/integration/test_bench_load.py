"""``bench/load.py`` cannot rot: how it counts (errors, 429s, unexpected statuses), and one
short run of the whole production shape (PostgreSQL, `commons serve --workers 2`, `commons
worker`, nginx on loopback TLS) with two clients doing a fixed number of cycles each."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import load  # noqa: E402


def test_errors_are_5xx_and_transport_errors_and_429s_are_counted_apart() -> None:
    tally = load.Tally(seconds=2.0, cycles=1)
    tally.statuses["retrieval"] = Counter({200: 3, 429: 2, 503: 1})
    tally.statuses["consent.request"] = Counter({201: 4, 403: 1})
    tally.latencies["retrieval"] = [0.01, 0.02, 0.03]
    tally.transport["log.entries:ConnectError"] = 2
    counts = tally.counts()
    assert counts["errors"] == 3  # the 503 and the two connection errors
    assert counts["server_errors"] == 1
    assert counts["rate_limited_429"] == 2
    assert counts["unexpected_4xx"] == 1  # the 403: not what the step expects
    assert counts["requests"] == 13
    retrieval = tally.kind("retrieval")
    assert retrieval["ok"] == 3
    assert retrieval["p50_ms"] == 20.0
    assert retrieval["p99_ms"] == 30.0
    assert retrieval["per_s"] == 1.5
    assert tally.kind("issuance") == {
        "ok": 0,
        "per_s": 0.0,
        "p50_ms": None,
        "p99_ms": None,
        "statuses": {},
    }


@pytest.mark.slow
def test_a_short_run_behind_nginx_does_every_kind_without_errors() -> None:
    clients, cycles = 2, 3
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "load.py"),
            f"--clients={clients}",
            "--lenders=1",
            f"--max-cycles={cycles}",
            # Long enough never to cut a phase short: the cycle count bounds each one.
            "--warmup=300",
            "--duration=300",
            "--baseline-seconds=300",
            "--sample-seconds=0.5",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = [json.loads(line) for line in done.stdout.splitlines()]
    assert [f["figure"] for f in figures] == ["load_kind"] * 8 + [
        "load_errors",
        "load_memory",
        "load_mixed",
    ]
    kinds = {f["kind"]: f for f in figures[:8]}
    assert set(kinds) == set(load.KINDS)
    # Each client: a token, then per cycle a consent requested, approved, retrieved under
    # and revoked, a checkpoint and its entries read; a credential issued every other cycle.
    expected = dict.fromkeys(load.KINDS, clients * cycles)
    expected |= {"token": clients, "issuance": clients * (cycles // 2)}
    for kind, found in kinds.items():
        for phase in (found, found["baseline_direct"]):
            assert phase["ok"] == expected[kind], (kind, phase)
            assert phase["statuses"] == {str(load._EXPECT[kind]): expected[kind]}
            assert 0 < phase["p50_ms"] <= phase["p99_ms"]
    errors = figures[8]
    assert errors["errors"] == 0
    assert errors["cycles"] == clients * cycles
    assert errors["baseline_direct"]["errors"] == 0
    memory = figures[9]
    assert memory["rss_mib_warmup_end"] > 0
    assert memory["rss_mib_end"] > 0
    assert set(memory["rss_mib_by_role_after_baseline"]) == {"serve", "worker", "nginx"}
    summary = figures[10]
    assert summary["errors"] == 0
    assert summary["unexpected_4xx"] == 0
    assert summary["max_cycles"] == cycles
    assert summary["requests"] == sum(expected.values())
