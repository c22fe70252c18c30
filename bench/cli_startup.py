"""CLI start-up figures: how long a ``commons`` command takes, start to exit, in a process.

Prints one JSON line per figure; progress goes to stderr.  Each figure is the median wall
time of ``--runs`` runs of ``python -m credit_commons.cli …`` (what the ``commons`` script
runs) and its user CPU time, against the same run's baseline, **an interpreter that does
nothing** (``python -c pass`` with the same interpreter and environment);
``overhead_ms = median - baseline`` is what the command itself costs.  The runs of the
figures are interleaved (one of each in turn), so a machine that gets busier affects them
all alike.

* ``cli_help`` — ``commons --help``.
* ``cli_version`` — ``commons version``.
* ``cli_wallet`` — ``commons wallet list --json`` on a wallet of the bench's own (made once
  beforehand with ``commons wallet init``): a command that needs no database.  Its time
  includes opening the wallet (the passphrase's key derivation).
* ``cli_database`` — ``commons db current --json`` on a migrated SQLite database of the
  bench's own: a command that builds the runtime.

``--src DIR`` runs the CLI from another checkout's ``src`` (``PYTHONPATH``) with this
interpreter, to compare two revisions in one run: e.g. ``git worktree add /tmp/before
<rev>`` then ``--src /tmp/before/src``.

Usage: python bench/cli_startup.py [--runs 15] [--src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from own_state import forget_configured_instance

FIGURES = {
    "cli_help": ["--help"],
    "cli_version": ["version"],
    "cli_wallet": ["wallet", "list", "--json"],
    "cli_database": ["db", "current", "--json"],
}


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and user CPU seconds of one run of ``argv``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    user = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--src", type=Path, help="run the CLI from this src directory")
    args = parser.parse_args()
    forget_configured_instance()

    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        state = Path(tmp)
        env = {
            **os.environ,
            "COMMONS_DATA_DIR": str(state / "var"),
            "COMMONS_DATABASE_URL": f"sqlite:///{state / 'commons.db'}",
            "COMMONS_WALLET_PASSPHRASE": "bench passphrase",
        }
        if args.src is not None:
            env["PYTHONPATH"] = str(args.src.resolve())
        commons = [sys.executable, "-m", "credit_commons.cli"]
        print("preparing: db upgrade, wallet init", file=sys.stderr)
        timed([*commons, "db", "upgrade"], env, state)
        timed([*commons, "wallet", "init"], env, state)

        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ["baseline", *FIGURES]}
        for i in range(args.runs):
            print(f"round {i + 1}/{args.runs}", file=sys.stderr)
            runs["baseline"].append(timed([sys.executable, "-c", "pass"], env, state))
            for name, argv in FIGURES.items():
                runs[name].append(timed([*commons, *argv], env, state))

    baseline_ms = statistics.median(wall for wall, _ in runs["baseline"]) * 1000
    for name, argv in FIGURES.items():
        wall_ms = statistics.median(wall for wall, _ in runs[name]) * 1000
        user_ms = statistics.median(user for _, user in runs[name]) * 1000
        figure = {
            "figure": name,
            "command": " ".join(["commons", *argv]),
            "runs": args.runs,
            "median_ms": round(wall_ms, 1),
            "user_ms": round(user_ms, 1),
            "baseline": "python -c pass",
            "baseline_ms": round(baseline_ms, 1),
            "overhead_ms": round(wall_ms - baseline_ms, 1),
            "src": str(args.src) if args.src is not None else None,
        }
        print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
