"""A warm Node.js process that runs the zk layer's JavaScript: one JSON request per line.

The cryptography it runs is @noble/curves' (Poseidon over BLS12-381), circom_runtime's (a
circuit's witness) and snarkjs's (Groth16 proofs); this module only starts the process, writes
requests and reads answers.
Keeping one process warm saves Node's start-up (~0.5 s with snarkjs loaded) on every call.

The Node packages are pinned in ``node/package.json`` and ``node/package-lock.json`` beside this
module and installed there by ``npm ci`` (the Makefile does it for ``make test`` and
``make run``).
"""

from __future__ import annotations

import contextlib
import json
import select
import shutil
import subprocess
import threading
from pathlib import Path

from credit_commons.core.encoding import JsonObject
from credit_commons.zk.errors import NodeUnavailable

__all__ = ["NODE_DIR", "NodeWorker"]

NODE_DIR = Path(__file__).resolve().parent / "node"
"""The folder of the zk layer's Node project (package.json, worker.mjs, node_modules)."""

_INSTALL_HINT = f"install Node.js 20+ and run `npm ci --prefix {NODE_DIR}` (or `make venv`)"


class NodeWorker:
    """One ``node worker.mjs`` process, started on first use; thread-safe, one call at a time.

    Use it as a context manager, or call :meth:`close`.  ``node`` is the Node.js executable
    (found on ``PATH`` when not given); ``node_dir`` the folder holding ``worker.mjs`` and
    its installed ``node_modules``; ``timeout`` the seconds one call may take before the
    process is killed (a proof takes about a second).
    """

    def __init__(
        self, *, node: str | None = None, node_dir: Path = NODE_DIR, timeout: float = 120.0
    ) -> None:
        self._node = node
        self._dir = node_dir
        self._timeout = timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> NodeWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[str]:
        node = self._node or shutil.which("node")
        if node is None:
            raise NodeUnavailable("Node.js is not installed", hint=_INSTALL_HINT)
        for package in ("snarkjs", "circom_runtime", "@noble/curves"):
            if not (self._dir / "node_modules" / package / "package.json").is_file():
                raise NodeUnavailable(
                    f"the Node package {package} is not installed", hint=_INSTALL_HINT
                )
        try:
            return subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
                [node, str(self._dir / "worker.mjs")],
                cwd=self._dir,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
            )
        except OSError as error:
            raise NodeUnavailable("Node.js could not be started", hint=_INSTALL_HINT) from error

    def call(self, request: JsonObject) -> JsonObject:
        """Send one request and return the worker's answer (``ok`` true).

        Raises :class:`NodeUnavailable` when Node or the packages are missing or the process
        died; an answer with ``ok`` false is returned as is, for the caller to translate.
        """
        line = json.dumps(request, separators=(",", ":")) + "\n"
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            process = self._process
            assert process.stdin is not None
            assert process.stdout is not None
            try:
                process.stdin.write(line)
                process.stdin.flush()
                # One answer line per request, read whole: nothing is left buffered between
                # calls, so waiting on the pipe's descriptor is waiting for the answer.
                ready, _, _ = select.select([process.stdout], [], [], self._timeout)
                if not ready:
                    self._process = None
                    _stop(process, kill=True)
                    raise NodeUnavailable(
                        f"the zk Node process did not answer within {self._timeout:g} s"
                    )
                answer = process.stdout.readline()
            except OSError as error:
                raise NodeUnavailable("the zk Node process failed", hint=_INSTALL_HINT) from error
            if not answer:
                raise NodeUnavailable("the zk Node process exited", hint=_INSTALL_HINT)
        reply: JsonObject = json.loads(answer)
        return reply

    def close(self) -> None:
        """Stop the process (idempotent)."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            _stop(process, kill=False)


def _stop(process: subprocess.Popen[str], *, kill: bool) -> None:
    """End the process (closing its stdin ends the worker's loop) and close its pipes."""
    assert process.stdin is not None
    assert process.stdout is not None
    if kill:
        process.kill()
    with contextlib.suppress(OSError):  # the pipe of a killed process may already be broken
        process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stdout.close()
