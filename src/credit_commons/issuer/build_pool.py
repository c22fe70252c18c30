"""Building SD-JWT VCs on worker processes, for bulk issuance.

Building an SD-JWT VC — its Disclosures with their salts and digests, the payload and header
JSON, the base64url segments — is pure Python and holds the interpreter lock: about a
quarter of a bulk issuance's time in one process.  :class:`BuildPool` moves most of those
builds to worker processes, so that they run while the calling process does the rest of the
issuance that needs no credential text (the subjects' vault keys and the
``credential.issued`` events, in :func:`~credit_commons.issuer.credentials.issue_credentials`);
the caller then builds the share of the batch it kept, collects the workers' builds, signs
them all and seals them.  The caller's share adapts after every batch (it grows when the
caller had to wait for the workers and shrinks when it did not), so both finish together
whatever the machine.

Only what a build needs is sent to a worker: the claims with the issuer, status and
validity fields added, the disclosable paths, the header and the holder's *public* JWK.  No
key is sent: the signatures (``StoredSigner.sign_many``), the vault seal and every database
write stay in the caller.  (The workers are processes of the same user and inherit the
caller's environment, as any child process does; they use none of it.)

Hand-written rather than ``concurrent.futures.ProcessPoolExecutor``: the executor hands work
to its processes, and takes their results, through helper threads of the calling process,
each of which waits for the interpreter lock (a switch interval, 5 ms, every time) while the
caller is busy — exactly when the workers should be building.  Here each worker has its own
pipe, a slice is pickled and written by the caller itself, and the answer is read when the
caller asks for it.

Workers are spawned, not forked (the caller may run threads: the SQLite checkpointer, the
signing pool), so the program's main module must guard its entry point with
``if __name__ == "__main__"`` (the ``commons`` command does).  They freeze their startup heap
as the long-running commands do.  A slice that fails on a worker for any reason — an invalid
claim, a value that cannot be pickled, a worker that died or stopped answering (it is killed
after ``timeout``), a pipe interrupted mid-message (the worker is killed) — is built again
by the caller, which raises the error itself if there is
one, for the first failing job, as a build in one process would; a pool whose worker died
is marked ``broken`` and not used again, and the issuance goes on in the caller.

Used by ``commons issuer issue-batch`` (``--workers``); the HTTP API builds in its own
process (each server worker is a process already).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import Any, cast

from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.core.heap import freeze_startup_heap
from credit_commons.issuer.sd_jwt import prepare

__all__ = [
    "MIN_JOBS",
    "BuildJob",
    "BuildPool",
    "Built",
    "PendingBuilds",
    "build_all",
    "default_workers",
]

log = logging.getLogger(__name__)

# What one SD-JWT VC build needs: its claims (payload before selective disclosure), the
# disclosable paths, the signer's JOSE alg, the protected header and the holder's public JWK.
BuildJob = tuple[Mapping[str, Any], Sequence[str], str, Mapping[str, Any], Mapping[str, Any]]

# A built SD-JWT VC: the JWS signing input and the Disclosures, each followed by "~"
# (``sd_jwt.compact_sd_jwt`` makes the credential of these two and the signature).
Built = tuple[bytes, str]

MAX_WORKERS = 32
MIN_JOBS = 100  # a smaller batch is built in the caller: sending it costs more than it saves
DEFAULT_MAX_WORKERS = 2
_READY = b"ready"
_TIMEOUT = 30.0  # seconds a worker may take to start or to build one slice (~0.1 s)
_FIRST_SHARE, _SHARE_STEP, _MAX_SHARE = 0.2, 0.04, 0.5
_WAIT_SLACK = 0.002  # seconds of waiting for the workers that count as none


def default_workers() -> int:
    """The build workers ``commons issuer issue-batch`` starts by default: one fewer than
    the CPUs this process may run on (the caller builds too, and writes), at most 2 — past
    that the caller's own share (checks, vault, database, events) is the limit — and 0 on
    a single CPU."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(DEFAULT_MAX_WORKERS, cpus - 1))


def build_all(jobs: Sequence[BuildJob], first: int = 0) -> list[Built]:
    """Build every job in this process.

    Raises what :func:`~credit_commons.issuer.sd_jwt.prepare` raises; a
    :class:`CommonsError` carries the failing job's position (plus ``first``) as ``item``.
    """
    out: list[Built] = []
    for position, (payload, disclosable, alg, header, holder_jwk) in enumerate(jobs, first):
        try:
            made = prepare(
                payload, disclosable=disclosable, alg=alg, header=header, holder_jwk=holder_jwk
            )
        except CommonsError as e:
            e.extra["item"] = position
            raise
        out.append((made.signing_input, made.disclosures_text))
    return out


def _serve(conn: Connection) -> None:
    # A worker's life: say it is ready, then build each slice it is sent until it is sent
    # an empty message or its caller goes away.  A slice that fails is answered with
    # (False, None): the caller builds it again and raises the error with its own type.
    # Ctrl-C reaches the whole process group: the caller stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    freeze_startup_heap()  # the imports are done: hide them from the cyclic collector
    conn.send_bytes(_READY)
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        try:
            # From the parent, over the pipe it made for this process alone.
            jobs, first = pickle.loads(message)  # noqa: S301
            reply = pickle.dumps((True, build_all(jobs, first)), pickle.HIGHEST_PROTOCOL)
        except Exception:
            reply = pickle.dumps((False, None))
        try:
            conn.send_bytes(reply)
        except OSError:
            return


class _Worker:
    def __init__(self, context: SpawnContext) -> None:
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_serve, args=(child,), name="commons-build", daemon=True
        )
        self.process.start()
        child.close()
        self.ready = False
        self.busy = False  # a slice was sent and its answer not yet received
        self.lost = False  # interrupted mid-message, or stopped answering: killed

    def kill(self) -> None:
        self.lost = True
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()


class BuildPool:
    """Worker processes that build SD-JWT VCs for :func:`issue_credentials`.

    Batches of fewer than ``min_jobs`` are built in the calling process only (sending them
    would cost more than it saves).  The workers start at :meth:`start` or with the first
    batch that needs them.  One issuance at a time: a pool is not shared between threads.
    Raises :class:`ValidationError` unless ``workers`` is 1..32 and ``min_jobs`` at least 2.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, workers: int, *, min_jobs: int = MIN_JOBS, timeout: float = _TIMEOUT
    ) -> None:
        if not 1 <= workers <= MAX_WORKERS:
            raise ValidationError(f"workers must be between 1 and {MAX_WORKERS}")
        if min_jobs < 2:
            raise ValidationError("min_jobs must be at least 2")
        self.workers = workers
        self.min_jobs = min_jobs
        self.broken = False
        self._timeout = timeout
        self.share = _FIRST_SHARE  # of each batch, built by the caller (see _balance)
        self._workers: list[_Worker] = []
        self._closed = False

    def start(self) -> None:
        """Start the workers now and wait until they are ready (otherwise the first batch
        that needs them waits).  A worker that cannot start marks the pool ``broken``."""
        self._started()

    def _started(self) -> list[_Worker]:
        if self._closed:
            raise RuntimeError("the build pool is closed")
        if not self._workers and not self.broken:
            context = multiprocessing.get_context("spawn")
            for _ in range(self.workers):
                try:
                    self._workers.append(_Worker(context))
                except Exception:  # kept in _workers so far: close() stops them
                    log.exception("a build worker could not start")
                    self._mark_broken("a build worker could not start")
                    break
        for worker in self._workers:
            if not worker.ready and not self.broken:
                worker.ready = self._receive_raw(worker) == _READY
                if not worker.ready:
                    self._mark_broken("a build worker did not start")
        return [] if self.broken else self._workers

    def submit(self, jobs: Sequence[BuildJob]) -> PendingBuilds:
        """Send ``jobs`` to the workers, one slice each, and return at once; the caller
        collects the builds with :meth:`PendingBuilds.result` and meanwhile does other work.

        The slices are pickled and written here, not by a helper thread: a helper thread
        would wait for this process's interpreter lock (a switch interval, 5 ms, each time)
        while the caller is busy, and the workers with it.  A slice that cannot be sent (a
        worker still busy, a value that cannot be pickled) is built here at collection.
        """
        workers = self._started() if len(jobs) >= self.min_jobs else []
        if not workers:
            return PendingBuilds(jobs, [])
        # The caller keeps the last ``share`` of the batch to build itself once its own
        # work is done; the rest is cut into one slice per worker.
        sent = len(jobs) - round(len(jobs) * self.share)
        size = -(-sent // len(workers))
        slices: list[tuple[int, int, _Worker | None]] = []
        for worker, lo in zip(workers, range(0, sent, size), strict=False):
            hi = min(lo + size, sent)
            slices.append((lo, hi, self._send(worker, jobs[lo:hi], lo)))
        if sent < len(jobs):
            slices.append((sent, len(jobs), None))
        return PendingBuilds(jobs, slices, self)

    def _balance(self, waited: float) -> None:
        # After each batch: if the caller had to wait for the workers, it keeps more of the
        # next batch; if not, the workers were done first and get more.  The share settles
        # where both finish together, whatever the machine and the caller's other work.
        step = _SHARE_STEP if waited > _WAIT_SLACK else -_SHARE_STEP
        self.share = min(_MAX_SHARE, max(0.0, self.share + step))

    def build_many(self, jobs: Sequence[BuildJob]) -> list[Built]:
        """Build every job on the workers (here, a slice none could take); results in
        ``jobs``' order.  Raises what :func:`build_all` raises, for the first failing job.
        """
        return self.submit(jobs).result()

    def _send(self, worker: _Worker, jobs: Sequence[BuildJob], first: int) -> _Worker | None:
        if worker.busy or self.broken:
            return None
        try:
            message = pickle.dumps((list(jobs), first), pickle.HIGHEST_PROTOCOL)
        except Exception:  # a value that cannot be pickled: built here
            return None
        try:
            worker.conn.send_bytes(message)
        except OSError:
            self._mark_broken("a build worker died")
            return None
        except BaseException:  # interrupted mid-message: the pipe is out of step
            self._lose(worker)
            raise
        worker.busy = True
        return worker

    def _lose(self, worker: _Worker) -> None:
        worker.kill()
        self._mark_broken("a build worker was interrupted")

    def _receive_raw(self, worker: _Worker) -> bytes | None:
        try:
            if worker.conn.poll(self._timeout):
                return worker.conn.recv_bytes()
            log.warning("a build worker did not answer in %.0f s; stopping it", self._timeout)
            worker.kill()
        except (EOFError, OSError):
            pass
        except BaseException:  # interrupted mid-message: the pipe is out of step
            self._lose(worker)
            raise
        return None

    def _receive(self, worker: _Worker) -> list[Built] | None:
        # The answer to the slice ``worker`` was sent; None if it failed there.
        raw = self._receive_raw(worker)
        worker.busy = False
        if raw is None:
            self._mark_broken("a build worker died")
            return None
        ok, built = pickle.loads(raw)  # noqa: S301 — from our own worker, over its own pipe
        return cast(list[Built], built) if ok else None

    def _mark_broken(self, why: str) -> None:
        if not self.broken:
            log.warning("%s; building credentials in this process from now on", why)
        self.broken = True

    def close(self) -> None:
        """Stop the workers (idempotent), after the answers they still owe."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            if worker.busy and not worker.lost:
                self._receive_raw(worker)
            if worker.lost:
                continue
            with contextlib.suppress(OSError):
                worker.conn.send_bytes(b"")
        for worker in self._workers:
            worker.process.join(0 if worker.lost else 5)
            if worker.process.is_alive():
                worker.kill()
                worker.process.join()
            worker.process.close()
            worker.conn.close()

    def __enter__(self) -> BuildPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PendingBuilds:
    """Builds sent by :meth:`BuildPool.submit` (or none: then :meth:`result` builds
    everything in this process)."""

    def __init__(
        self,
        jobs: Sequence[BuildJob],
        slices: list[tuple[int, int, _Worker | None]],
        pool: BuildPool | None = None,
    ) -> None:
        self._jobs, self._slices, self._pool = jobs, slices, pool
        self.sent = sum(1 for _, _, worker in slices if worker is not None)
        self.from_workers = 0  # slices whose builds came back from a worker

    def result(self) -> list[Built]:
        """Every job's build, in order: the slices no worker took are built here first,
        then the workers' answers received; a slice that failed on a worker is built again
        here.  Raises what :func:`build_all` raises, for the first failing job (as
        :func:`build_all` of all the jobs would)."""
        if not self._slices:
            return build_all(self._jobs)
        parts: dict[int, list[Built] | None] = {}
        for lo, hi, worker in self._slices:
            if worker is None:
                # A failing slice is built again below, in order, so that the error raised
                # is always the first failing job's, wherever each slice was built.
                with contextlib.suppress(Exception):
                    parts[lo] = build_all(self._jobs[lo:hi], lo)
        self._collect(parts)
        return [
            built
            for lo, hi, _ in self._slices
            for built in (parts.get(lo) or build_all(self._jobs[lo:hi], lo))
        ]

    def _collect(self, parts: dict[int, list[Built] | None], *, balance: bool = True) -> None:
        pool, self._pool = self._pool, None  # each answer is received once
        if pool is None or not self.sent:
            return
        start = time.monotonic()
        for lo, _, worker in self._slices:
            if worker is not None:
                parts[lo] = pool._receive(worker)
                self.from_workers += parts[lo] is not None
        if balance:
            pool._balance(time.monotonic() - start)

    def cancel(self) -> None:
        """Receive and drop the answers not collected (after the issuance failed
        otherwise), so that the workers are free for the next batch."""
        self._collect({}, balance=False)
