"""The witness program: C2SP tlog-witness@v1.0.0 add-checkpoint over HTTP, and its key file.

Run it as::

    python -m credit_commons.gateway.witness_app --data-dir DIR --name witness.example/w1 \\
        --log-key log.example/credit+1a2b3c4d+AeAb... [--log-key ...] \\
        [--log ORIGIN VKEY] [--database-url URL] --host 127.0.0.1 --port 7380

On start it creates or loads the witness key, opens its database (by default SQLite
``witness.db`` in the data directory), prints ``{"witness_vkey": "<vkey>"}`` as one JSON
line on stdout, and serves until SIGTERM or SIGINT.  Logs are JSON lines on stderr.  A
``--log-key`` trusts a log whose origin is the key name (tlog-checkpoint §Signatures: the
key name SHOULD match the origin); ``--log ORIGIN VKEY`` names the origin explicitly.

Key file.  ``witness.key`` in the data directory, created on first run with mode 0600 (and
refused if group or others can access it), holds one line: a Go ``note.GenerateKey`` signer
key ``PRIVATE+KEY+<name>+<hex id>+base64(0x01 || 32-byte Ed25519 seed)``, as made by
:func:`credit_commons.ledger.note.generate_key`.  Its type-0x01 key ID serves only as a
checksum of name and seed: the seed signs cosignature/v1 (type 0x04) messages only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from credit_commons.core.clock import Clock, SystemClock
from credit_commons.core.errors import CommonsError, ConfigurationError
from credit_commons.core.files import path_error
from credit_commons.core.logging import configure_logging
from credit_commons.gateway.middleware import FASTAPI_TELEMETRY_OFF
from credit_commons.gateway.problems import install_problem_handlers
from credit_commons.ledger import note as note_format
from credit_commons.ledger.cosignature import CosignatureSigner
from credit_commons.ledger.witness import (
    ConsistencyRejected,
    OldSizeMismatch,
    RootMismatch,
    SqlWitnessStore,
    Witness,
    WitnessConfig,
    WitnessStore,
)

__all__ = [
    "KEY_FILE",
    "MAX_BODY_BYTES",
    "TLOG_SIZE",
    "create_witness_app",
    "load_or_create_key",
    "main",
]

KEY_FILE = "witness.key"
# A checkpoint with 63 proof lines and a hundred signatures is well under this.
MAX_BODY_BYTES = 64 * 1024
# §add-checkpoint: the media type of the 409 body that carries the recorded tree size.
TLOG_SIZE = "text/x.tlog.size"

log = logging.getLogger("credit_commons.witness")


def create_witness_app(
    config: WitnessConfig,
    store: WitnessStore,
    clock: Clock,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The witness's HTTP app: ``POST /add-checkpoint`` and ``GET /healthz``.

    Errors are problem+json with the status tlog-witness@v1.0.0 §add-checkpoint requires,
    except the old-size conflict, whose 409 body is the recorded size in
    ``text/x.tlog.size``.  A body over ``max_body_bytes`` is refused with 413.
    """
    witness = Witness(config, store)
    app = FastAPI(
        title="Credit Commons witness",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=FASTAPI_TELEMETRY_OFF,
    )
    install_problem_handlers(app)

    @app.exception_handler(OldSizeMismatch)
    async def _old_size(_request: Request, error: OldSizeMismatch) -> Response:
        # §add-checkpoint: decimal size, newline, Content-Type exactly text/x.tlog.size
        # (no charset parameter).
        return Response(
            f"{error.recorded_size}\n", status_code=409, headers={"content-type": TLOG_SIZE}
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await _read_body(request, max_body_bytes)
        now = int(clock.now().timestamp())
        try:
            lines = await run_in_threadpool(witness.add_checkpoint, body, now)
        except (RootMismatch, ConsistencyRejected) as e:
            # §add-checkpoint: such a request, signed by the log, may prove misbehaviour.
            log.warning(
                "refused checkpoint",
                extra={"fields": {"code": e.code, "request": body.decode("utf-8", "replace")}},
            )
            raise
        except CommonsError as e:
            log.info("refused checkpoint", extra={"fields": {"code": e.code}})
            raise
        return Response("".join(lines), media_type="text/plain")

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    # isdigit() alone is true for "²", which int() refuses: ASCII digits only.
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413)
        chunks.append(chunk)
    return b"".join(chunks)


def load_or_create_key(path: Path, name: str) -> CosignatureSigner:
    """The witness key in ``path``, created with mode 0600 if missing (module docstring).

    Raises :class:`ConfigurationError` if the file is accessible to group or others, is
    not a Go-format Ed25519 signer key, or names a witness other than ``name``.
    """
    if not path.exists():
        _create_key(path, name)
    try:
        mode = path.stat().st_mode
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"witness key file {path} cannot be read") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"witness key file {path} is accessible to other users", hint=f"chmod 600 {path}"
        )
    try:
        signer = note_format.Ed25519Signer.from_skey(text.removesuffix("\n"))
    except CommonsError as e:
        raise ConfigurationError(f"witness key file {path} is malformed: {e.detail}") from e
    if signer.name != name:
        raise ConfigurationError(
            f"witness key file {path} belongs to witness {signer.name!r}, not {name!r}",
            hint="a witness keeps its name for life; use another data directory",
        )
    return CosignatureSigner(signer.name, signer.public_key, signer.raw)


def _create_key(path: Path, name: str) -> None:
    try:
        skey, _ = note_format.generate_key(name)
    except CommonsError as e:
        raise ConfigurationError(f"invalid witness name: {e.detail}") from e
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(skey + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # link() never replaces: if two first runs race, both end up with the winner's key.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m credit_commons.gateway.witness_app",
        description="An independent C2SP tlog-witness (add-checkpoint).",
    )
    parser.add_argument("--data-dir", required=True, type=Path, help="key and database home")
    parser.add_argument("--name", required=True, help="witness name, e.g. witness.example/w1")
    parser.add_argument(
        "--log-key", action="append", default=[], metavar="VKEY", help="trust a log (origin=name)"
    )
    parser.add_argument(
        "--log", action="append", default=[], nargs=2, metavar=("ORIGIN", "VKEY"),
        help="trust a log key for an explicit origin",
    )  # fmt: skip
    parser.add_argument("--database-url", help="default: sqlite:///DATA_DIR/witness.db")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7380)
    parser.add_argument("--log-level", default="INFO")
    return parser


def _trusted_logs(log_keys: Sequence[str], logs: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    trusted: dict[str, list[str]] = {}
    for vkey in log_keys:
        # The key name is the part before the first "+" (signed-note §Verifier keys).
        trusted.setdefault(vkey.split("+", 1)[0], []).append(vkey)
    for origin, vkey in logs:
        trusted.setdefault(origin, []).append(vkey)
    return trusted


def serve(argv: Sequence[str] | None = None) -> None:
    """Run a witness until SIGTERM (see module docstring).

    Raises :class:`CommonsError` for a configuration problem (bad key file, log key or
    database URL) and ``OSError`` for a data directory that cannot be made or used; the
    ``commons witness serve`` command reports both as one line with their exit code.
    """
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    data_dir: Path = args.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    signer = load_or_create_key(data_dir / KEY_FILE, args.name)
    config = WitnessConfig(signer, _trusted_logs(args.log_key, args.log))
    url = args.database_url or f"sqlite:///{data_dir.resolve() / 'witness.db'}"
    store = SqlWitnessStore.open(url)
    try:
        app = create_witness_app(config, store, SystemClock())
        print(json.dumps({"witness_vkey": config.vkey}), flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run :func:`serve` as a program; returns the process exit code.

    Configuration problems are printed to stderr and return their :class:`CommonsError`
    exit code; a data directory that cannot be used is a ``file.*`` error.
    """
    try:
        serve(argv)
    except CommonsError as e:
        print(e.diagnostics(), file=sys.stderr)
        return e.exit_code
    except OSError as e:
        error = path_error(e)
        print(error.diagnostics(), file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
