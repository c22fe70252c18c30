"""The CLI never prints a traceback (issue 12 item 16), through the real `commons` program.

Every command that takes a path or writes an output is run with a missing, unreadable or
wrong-kind path, an unwritable output, an unreachable PostgreSQL, a malformed setting and
Ctrl-C: each must answer one line on stderr and the exit code docs/cli.md gives, and with
``--json`` one problem+json line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.commons_inprocess import commons

from credit_commons.core.errors import ExitCode

COMMONS = str(Path(sys.executable).with_name("commons"))
PASSPHRASE = "correct horse battery staple"
LOG_KEY = "example.com/log+00000000+AeKmt5hcyrKXBxXQEXDSvS7NJUpCVoa3PLsfvm7xGvbz"
UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/test"


def _without_file_permission_override() -> list[str]:
    """A prefix that runs a command without root's power to read and write any file, so a
    mode-0000 file is unreadable to it as it would be to any operator."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # pragma: no cover - util-linux is part of the image
        pytest.fail("running as root needs setpriv to drop CAP_DAC_OVERRIDE")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


@dataclass(frozen=True)
class Place:
    """Paths of every kind a command could be handed."""

    root: Path

    def __getitem__(self, name: str) -> str:
        return str(self.root / name)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    root = tmp_path_factory.mktemp("paths")
    (root / "a-directory").mkdir()
    (root / "a-file").write_text("{}\n")
    (root / "unreadable").write_text("{}\n")
    (root / "unreadable").chmod(0)
    (root / "locked-dir").mkdir()
    (root / "locked-dir").chmod(0o500)  # no writing inside
    (root / "binary").write_bytes(b"\xff\xfe\x00garbage")
    (root / "empty.jsonl").write_text("")
    env = environment(root)
    # The state the cases need, made in this process (tests/commons_inprocess.py): the cases
    # themselves are the real program.
    for command in (["db", "upgrade"], ["wallet", "init", "--wallet", str(root / "wallet.json")]):
        made = commons(command, env)
        assert made.returncode == 0, made.stderr
    created = commons(["identity", "create", "--name", "Asha", "--json"], env)
    assert created.returncode == 0, created.stderr
    (root / "token").write_text(json.loads(created.stdout)["identity_token"])
    yield Place(root)
    (root / "locked-dir").chmod(0o700)
    (root / "unreadable").chmod(0o600)


def environment(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    env.update(
        COMMONS_DATA_DIR=str(root / "var"),
        COMMONS_WALLET_PASSPHRASE=PASSPHRASE,
        COMMONS_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


# (case id, arguments with {placeholders}, extra environment, exit code, error code)
CASES: list[tuple[str, list[str], dict[str, str], int, str]] = [
    # Inputs: missing, a directory, unreadable, not text.
    ("receipt-missing", ["log", "verify-receipt", "{missing}", "--log-key", LOG_KEY], {},
     ExitCode.NOT_FOUND, "file.not_found"),
    ("receipt-directory", ["log", "verify-receipt", "{a-directory}", "--log-key", LOG_KEY], {},
     ExitCode.VALIDATION, "file.invalid"),
    ("receipt-unreadable", ["log", "verify-receipt", "{unreadable}", "--log-key", LOG_KEY], {},
     ExitCode.FORBIDDEN, "file.permission_denied"),
    ("receipt-binary", ["log", "verify-receipt", "{binary}", "--log-key", LOG_KEY], {},
     ExitCode.VALIDATION, "request.invalid"),
    ("type-missing", ["issuer", "type", "put", "{missing}"], {},
     ExitCode.NOT_FOUND, "file.not_found"),
    ("type-directory", ["issuer", "type", "put", "{a-directory}"], {},
     ExitCode.VALIDATION, "file.invalid"),
    ("type-unreadable", ["issuer", "type", "put", "{unreadable}"], {},
     ExitCode.FORBIDDEN, "file.permission_denied"),
    ("batch-missing", ["issuer", "issue-batch", "{missing}"], {},
     ExitCode.NOT_FOUND, "file.not_found"),
    ("batch-directory", ["issuer", "issue-batch", "{a-directory}"], {},
     ExitCode.VALIDATION, "file.invalid"),
    ("batch-unreadable", ["issuer", "issue-batch", "{unreadable}"], {},
     ExitCode.FORBIDDEN, "file.permission_denied"),
    ("wallet-missing", ["wallet", "list", "--wallet", "{missing}"], {},
     ExitCode.NOT_FOUND, "resource.not_found"),
    ("wallet-directory", ["wallet", "list", "--wallet", "{a-directory}"], {},
     ExitCode.VALIDATION, "file.invalid"),
    ("wallet-unreadable", ["wallet", "present", "1", "--nonce", "n", "--aud", "a",
                           "--wallet", "{unreadable}"], {},
     ExitCode.FORBIDDEN, "file.permission_denied"),
    # Outputs: a missing parent, a directory, a directory that may not be written, a parent
    # that is a file.
    ("batch-out-missing-parent", ["issuer", "issue-batch", "{empty.jsonl}",
                                  "--out", "{missing}/results.jsonl"], {},
     ExitCode.NOT_FOUND, "file.not_found"),
    ("batch-out-directory", ["issuer", "issue-batch", "{empty.jsonl}", "--out", "{a-directory}"],
     {}, ExitCode.VALIDATION, "file.invalid"),
    ("batch-out-unwritable", ["issuer", "issue-batch", "{empty.jsonl}",
                              "--out", "{locked-dir}/results.jsonl"], {},
     ExitCode.FORBIDDEN, "file.permission_denied"),
    ("export-out-missing-parent", ["privacy", "export", "{token}",
                                   "--out", "{missing}/export.json"], {},
     ExitCode.NOT_FOUND, "file.not_found"),
    ("export-out-directory", ["privacy", "export", "{token}", "--out", "{a-directory}"], {},
     ExitCode.VALIDATION, "file.invalid"),
    ("export-pdf-unwritable", ["privacy", "export", "{token}",
                               "--pdf", "{locked-dir}/export.pdf"], {},
     ExitCode.FORBIDDEN, "file.permission_denied"),
    ("wallet-init-unwritable", ["wallet", "init", "--wallet", "{locked-dir}/w.json"], {},
     ExitCode.FORBIDDEN, "file.permission_denied"),
    ("wallet-init-parent-is-file", ["wallet", "init", "--wallet", "{a-file}/w.json"], {},
     ExitCode.VALIDATION, "file.invalid"),
    ("demo-data-dir-is-file", ["demo", "--data-dir", "{a-file}"], {},
     ExitCode.VALIDATION, "file.invalid"),
    ("demo-data-dir-unwritable", ["demo", "--data-dir", "{locked-dir}/demo"], {},
     ExitCode.FORBIDDEN, "file.permission_denied"),
    ("witness-data-dir-is-file", ["witness", "serve", "--data-dir", "{a-file}", "--name",
                                  "witness.example/w1", "--log-key", LOG_KEY], {},
     ExitCode.VALIDATION, "file.invalid"),
    ("master-key-unwritable", ["keys", "init-master"],
     {"COMMONS_MASTER_KEY_FILE": "{locked-dir}/master.key"},
     ExitCode.FORBIDDEN, "file.permission_denied"),
    ("data-dir-is-file", ["db", "current"], {"COMMONS_DATA_DIR": "{a-file}"},
     ExitCode.VALIDATION, "file.invalid"),
    # Settings and services.
    ("postgres-unreachable", ["db", "upgrade"], {"COMMONS_DATABASE_URL": UNREACHABLE_PG},
     ExitCode.UNAVAILABLE, "service.unavailable"),
    ("postgres-unreachable-log", ["log", "audit"], {"COMMONS_DATABASE_URL": UNREACHABLE_PG},
     ExitCode.UNAVAILABLE, "service.unavailable"),
    ("not-migrated", ["log", "entries", "--start", "0", "--end", "1"],
     {"COMMONS_DATABASE_URL": "sqlite:///{a-directory}/empty.db"},
     ExitCode.CONFIGURATION, "database.not_migrated"),
    ("malformed-number", ["version"], {"COMMONS_PORT": "eighty"},
     ExitCode.CONFIGURATION, "config.invalid"),
    ("malformed-json-list", ["version"], {"COMMONS_ANCHOR_BACKENDS": "file"},
     ExitCode.CONFIGURATION, "config.invalid"),
    ("malformed-url", ["version"], {"COMMONS_PUBLIC_URL": "ftp://commons.example"},
     ExitCode.CONFIGURATION, "config.invalid"),
]  # fmt: skip


def fill(text: str, place: Place) -> str:
    if "{token}" in text:
        return (place.root / "token").read_text()
    for name in ("missing", "a-directory", "a-file", "unreadable", "locked-dir", "binary"):
        text = text.replace("{" + name + "}", place[name])
    return text.replace("{empty.jsonl}", place["empty.jsonl"])


def _first_of_each_code() -> set[str]:
    firsts: dict[str, str] = {}
    for case_id, *_, code in CASES:
        firsts.setdefault(code, case_id)
    return set(firsts.values())


# Every case as text; with --json the first case of each error code (the JSON line is the
# same rendering of the same error, and each case is a program start of its own).
RUNS = [
    (case, as_json)
    for as_json in (False, True)
    for case in CASES
    if not as_json or case[0] in _first_of_each_code()
]


def _run_id(run: tuple[tuple[str, list[str], dict[str, str], int, str], bool]) -> str:
    (case_id, *_), as_json = run
    return f"{'json' if as_json else 'text'}-{case_id}"


@pytest.fixture(scope="module")
def outcomes(place: Place) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every run's result.  The runs are independent program starts (each CPU-bound in its
    imports), so they run two at a time; each test then checks its own."""

    def one(run: tuple[tuple[str, list[str], dict[str, str], int, str], bool]) -> Any:
        (_, args, extra, _, _), as_json = run
        env = environment(place.root, **{k: fill(v, place) for k, v in extra.items()})
        command = [COMMONS, *(fill(a, place) for a in args), *(["--json"] if as_json else [])]
        return subprocess.run(
            [*_without_file_permission_override(), *command],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(map(_run_id, RUNS), pool.map(one, RUNS), strict=True))


@pytest.mark.parametrize("run", RUNS, ids=map(_run_id, RUNS))
def test_each_failure_is_one_line_and_its_exit_code(
    outcomes: dict[str, subprocess.CompletedProcess[str]],
    run: tuple[tuple[str, list[str], dict[str, str], int, str], bool],
) -> None:
    (_, _, _, exit_code, code), as_json = run
    result = outcomes[_run_id(run)]
    assert "Traceback" not in result.stderr
    assert result.returncode == exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    if as_json:
        problem = json.loads(lines[0])
        assert problem["code"] == code
        assert problem["status"] >= 400
    else:
        assert lines[0].startswith(f"error: {code}: ")
    assert "postgres@" not in result.stderr  # a database URL is never shown


def test_a_usage_error_with_json_is_a_problem(place: Place) -> None:
    result = subprocess.run(
        [COMMONS, "log", "entries", "--json"],
        env=environment(place.root),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == ExitCode.USAGE
    problem = json.loads(result.stderr.strip())
    assert problem["code"] == "cli.usage"
    assert "--start" in problem["detail"]


def _syscall(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/syscall").read_text()
    except OSError:
        return ""


def _interrupt_once_reading(process: subprocess.Popen[str]) -> None:
    """Send SIGINT once ``process`` is blocked reading its standard input (its system call
    is read(0, …)): a condition, not a guess at how long start-up takes."""
    while not _syscall(process.pid).startswith("0 0x0 "):
        assert process.poll() is None, "the command ended before reading its input"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)


@pytest.mark.parametrize(
    "args",
    [
        ["log", "verify-receipt", "-", "--log-key", LOG_KEY],
        ["wallet", "init", "--wallet", "{missing}/w.json"],
    ],
    ids=["reading-stdin", "at-a-prompt"],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_ctrl_c_is_one_line_and_exit_130(place: Place, args: list[str], as_json: bool) -> None:
    env = environment(place.root)
    del env["COMMONS_WALLET_PASSPHRASE"]
    # As at a terminal: SIGINT delivered, even when the suite runs where SIGINT is ignored
    # (a script's `cmd &` ignores it and children inherit that: Python would then never
    # raise KeyboardInterrupt, and the read would see EOF).  A handled signal is reset to
    # its default in the child at exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [COMMONS, *(fill(a, place) for a in args), *(["--json"] if as_json else [])],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        _interrupt_once_reading(process)
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in err
    assert process.returncode == ExitCode.INTERRUPTED
    lines = err.strip().splitlines()
    if "wallet" in args:
        # Without a terminal, Python's getpass warns that it cannot hide the passphrase and
        # prints the prompt on stderr; the rest is ours.
        noise = ("getpass", "echo", "passphrase")
        lines = [line.strip() for line in lines if not any(n in line.lower() for n in noise)]
    assert len(lines) == 1, err
    if as_json:
        assert json.loads(lines[0])["code"] == "cli.interrupted"
    else:
        assert lines[0].startswith("error: cli.interrupted")
