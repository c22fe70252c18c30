"""`commons demo` never touches configured state (issue 12 item 13), on both databases.

A configured instance (its database, data directory, master key and anchor journal named by
``COMMONS_*`` variables) is snapshotted, `commons demo` runs as a real process in the same
environment, and the instance must be byte-identical afterwards (SQLite: the file's bytes;
PostgreSQL: every table's rows, digested) and still work.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from credit_commons.ledger.note import generate_key

COMMONS = [sys.executable, "-m", "credit_commons.cli"]


def configured_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    state = tmp_path / "configured"
    env.update(
        COMMONS_DATA_DIR=str(state),
        COMMONS_DATABASE_URL=database_url,
        COMMONS_MASTER_KEY_FILE=str(state / "keys" / "master.key"),
        COMMONS_ANCHOR_FILE=str(state / "journal" / "anchors.jsonl"),
        COMMONS_PUBLIC_URL="http://127.0.0.1:8301",
        COMMONS_LOG_LEVEL="WARNING",
    )
    return env


def commons(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMONS, *args],
        check=False,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def database_digest(url: str) -> dict[str, str]:
    """Every table's rows, digested (SQLite: the whole file's bytes as well)."""
    digests: dict[str, str] = {}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        digests["<file>"] = hashlib.sha256(path.read_bytes()).hexdigest()
        digests["<wal>"] = str(Path(f"{path}-wal").exists())
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            for table in sorted(sa.inspect(connection).get_table_names()):
                rows = connection.execute(sa.text(f'SELECT * FROM "{table}"')).all()
                text = "\n".join(sorted(repr(tuple(row)) for row in rows))
                digests[table] = hashlib.sha256(text.encode()).hexdigest()
    finally:
        engine.dispose()
    return digests


def files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_demo_leaves_a_configured_instance_byte_identical(
    tmp_path: Path, backend_url: str
) -> None:
    env = configured_env(tmp_path, backend_url)
    for command in (
        ["db", "upgrade"],
        ["keys", "create", "issuer-main"],
        ["log", "checkpoint", "--publish"],
    ):
        result = commons(env, *command, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    before = database_digest(backend_url), files(tmp_path)
    assert "configured/keys/master.key" in before[1]

    # Configured services the demo must not reach either.
    _, witness_vkey = generate_key("witness.example/w1")
    outside = {
        "COMMONS_KMS": "pkcs11",
        "COMMONS_PKCS11_LIB": str(tmp_path / "no-such-hsm.so"),
        "COMMONS_ANCHOR_BACKENDS": '["evm"]',
        "COMMONS_LOG_WITNESSES": json.dumps([f"{witness_vkey}@http://127.0.0.1:1"]),
        "COMMONS_REDIS_URL": "redis://127.0.0.1:1/0",
        "COMMONS_LOG_ORIGIN": "configured.example/log",
    }
    demo = commons({**env, **outside}, "demo", "--json", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert json.loads(demo.stdout)["steps"][-1]["title"] == "Log audited"

    assert (database_digest(backend_url), files(tmp_path)) == before
    # The configured instance still opens its own keys and log.
    for command in (["log", "checkpoint"], ["log", "audit"]):
        result = commons(env, *command, cwd=tmp_path)
        assert result.returncode == 0, result.stderr


def test_a_demo_data_dir_is_used_instead_of_configured_state(
    tmp_path: Path, backend_url: str
) -> None:
    env = configured_env(tmp_path, backend_url)
    assert commons(env, "db", "upgrade", cwd=tmp_path).returncode == 0
    before = database_digest(backend_url)
    kept = tmp_path / "kept"
    demo = commons(env, "demo", "--data-dir", str(kept), cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert (kept / "var" / "commons.db").is_file()
    assert (kept / "var" / "master.key").is_file()
    assert database_digest(backend_url) == before


BENCHES = [
    ["keys.py", "--rounds", "1", "--ops", "10"],
    ["vault.py", "--kms", "local", "--subjects", "10", "--opens", "10", "--identities", "10"],
    [
        "ledger.py",
        "--backend",
        "sqlite",
        "--events",
        "100",
        "--proof-leaves",
        "100",
        "--audit-leaves",
        "100",
        # Its fixed counts at their smallest too (2,000 proofs of each kind and 2,000 of the
        # writer's commits by default, most of the script's time here).
        "--samples",
        "10",
        "--writes",
        "10",
    ],
    ["credentials.py", "--count", "10", "--verifications", "10", "--rounds", "1"],
    # The workers figure at its smallest too: 10 prepared consents and 10 for the warm-up,
    # one second of load (its defaults, 6,400 consents over HTTP and 22 s of wrk per server,
    # were most of this test's time; its state is built the same way at any size).
    [
        "consent.py",
        "--consents",
        "1001",
        "--checks",
        "10",
        "--requests",
        "10",
        "--warm-up",
        "10",
        "--seconds",
        "1",
        "--skip",
        "http",
    ],
    ["cli_startup.py", "--runs", "1"],
]


@pytest.mark.slow
# Six scripts, two at a time, each up to 300 s (its subprocess timeout): the suite's 300 s
# per test is too short for the whole under load (a guard against a hang, not a measure).
@pytest.mark.timeout(1200)
def test_the_bench_scripts_build_their_own_state(tmp_path: Path, backend_url: str) -> None:
    # Not a measurement (benchmarks never run in the suite): each script, at its smallest,
    # run in a shell that configures an instance and outside services it must not reach.
    env = configured_env(tmp_path, backend_url)
    assert commons(env, "db", "upgrade", cwd=tmp_path).returncode == 0
    before = database_digest(backend_url), files(tmp_path)
    env.update(
        COMMONS_KMS="pkcs11",
        COMMONS_PKCS11_LIB=str(tmp_path / "no-such-hsm.so"),
        COMMONS_ANCHOR_BACKENDS='["evm"]',
        COMMONS_REDIS_URL="redis://127.0.0.1:1/0",
        COMMONS_PSEUDONYM_PEPPER="not base64url!",
    )
    bench = Path(__file__).parents[2] / "bench"

    def run(script_and_args: list[str]) -> subprocess.CompletedProcess[str]:
        script, *args = script_and_args
        return subprocess.run(
            [sys.executable, str(bench / script), *args],
            check=False,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    # Independent scripts, each in its own temporary state: two at a time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, BENCHES))
    for (script, *_), result in zip(BENCHES, results, strict=True):
        assert result.returncode == 0, (script, result.stderr[-2000:])
        assert result.stdout.strip(), script
    assert (database_digest(backend_url), files(tmp_path)) == before
