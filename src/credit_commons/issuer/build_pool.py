"""Building SD-JWT VCs on worker processes, for bulk issuance.

Building an SD-JWT VC — its Disclosures with their salts and digests, the payload and header
JSON, the base64url segments — is pure Python and holds the interpreter lock: about a
quarter of a bulk issuance's time in one process.  :class:`BuildPool` moves those builds to
worker processes, so that they run while the calling process does the rest of the
issuance that needs no credential text (the subjects' vault keys and the
``credential.issued`` events, in :func:`~credit_commons.issuer.credentials.issue_credentials`);
the caller then collects the builds, signs them and seals them.  Each worker gets one slice
of the batch; a slice that no worker has started by then is built by the caller itself.

Only what a build needs crosses to a worker: the claims with the issuer, status and
validity fields added, the disclosable paths, the header and the holder's *public* JWK.  No
key leaves the caller: the signatures (``StoredSigner.sign_many``), the vault seal and every
database write stay where they were.

Workers are spawned, not forked (the caller may run threads: the SQLite checkpointer, the
signing pool), so the program's main module must guard its entry point with
``if __name__ == "__main__"`` (the ``commons`` command does).  They freeze their startup heap
as the long-running commands do.  A slice that fails on a worker for any reason — an invalid
claim, a value that cannot be pickled, a worker that died — is built again by the caller,
which raises the error itself if there is one, for the first failing job as a build in one
process would; a pool whose worker died is marked ``broken`` and not used again, and the
issuance goes on in the caller.

Used by ``commons issuer issue-batch`` (``--workers``); the HTTP API builds in its own
process (each server worker is a process already).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

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

# A built SD-JWT VC: the JWS signing input and the Disclosures, each followed by "~".  With
# the signature s, the compact SD-JWT is ``signing_input + "." + b64url(s) + "~" + tail``.
Built = tuple[bytes, str]

MAX_WORKERS = 32
MIN_JOBS = 100  # a smaller batch is built in the caller: sending it costs more than it saves
DEFAULT_MAX_WORKERS = 2


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
        out.append((made.signing_input, "".join(d.encoded + "~" for d in made.disclosures)))
    return out


def _start_worker() -> None:
    # Runs once in each worker: the imports are done; hide them from the cyclic collector.
    freeze_startup_heap()


class BuildPool:
    """Worker processes that build SD-JWT VCs for :func:`issue_credentials`.

    Batches of fewer than ``min_jobs`` are built in the calling process only (sending them
    would cost more than it saves).  Raises :class:`ValidationError` unless ``workers`` is
    1..32 and ``min_jobs`` at least 2.  Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, workers: int, *, min_jobs: int = MIN_JOBS) -> None:
        if not 1 <= workers <= MAX_WORKERS:
            raise ValidationError(f"workers must be between 1 and {MAX_WORKERS}")
        if min_jobs < 2:
            raise ValidationError("min_jobs must be at least 2")
        self.workers = workers
        self.min_jobs = min_jobs
        self.broken = False
        self._executor = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
        )

    def start(self) -> None:
        """Start the workers now and wait until they are ready (otherwise the first batch
        waits for them).  Raises :class:`BrokenProcessPool` if a worker cannot start."""
        for future in [self._executor.submit(build_all, []) for _ in range(self.workers)]:
            future.result()

    def submit(self, jobs: Sequence[BuildJob]) -> PendingBuilds:
        """Start building ``jobs`` on the workers; the caller collects the results with
        :meth:`PendingBuilds.result`, and meanwhile does other work."""
        if self.broken or len(jobs) < self.min_jobs:
            return PendingBuilds(jobs, [])
        # One slice per worker, sent at once.  Smaller slices were slower: while this
        # process is busy, each hand-over to a worker and each result sent back waits for
        # its interpreter lock (a switch interval, 5 ms, each time).
        size = -(-len(jobs) // self.workers)
        slices: list[tuple[int, int, Future[list[Built]] | None]] = []
        for lo in range(0, len(jobs), size):
            hi = min(lo + size, len(jobs))
            future = None
            if not self.broken:
                try:
                    future = self._executor.submit(build_all, jobs[lo:hi], lo)
                except (BrokenProcessPool, RuntimeError):
                    self._mark_broken()
            slices.append((lo, hi, future))
        return PendingBuilds(jobs, slices, self)

    def build_many(self, jobs: Sequence[BuildJob]) -> list[Built]:
        """Build every job on the workers (here, a slice none has started); results in
        ``jobs``' order.  Raises what :func:`build_all` raises, for the first failing job.
        """
        return self.submit(jobs).result()

    def _mark_broken(self) -> None:
        if not self.broken:
            log.warning("a credential build worker died; building in this process from now on")
        self.broken = True

    def close(self) -> None:
        """Stop the workers (idempotent); slices not started are cancelled."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BuildPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PendingBuilds:
    """Builds started by :meth:`BuildPool.submit` (or none: then :meth:`result` builds
    everything in this process)."""

    def __init__(
        self,
        jobs: Sequence[BuildJob],
        slices: list[tuple[int, int, Future[list[Built]] | None]],
        pool: BuildPool | None = None,
    ) -> None:
        self._jobs, self._slices, self._pool = jobs, slices, pool

    def result(self) -> list[Built]:
        """Every job's build, in order: slices no worker has started are built here (from
        the end), the others awaited; a slice that failed on a worker is built again here.

        Raises what :func:`build_all` raises, for the first failing job (as
        :func:`build_all` of all the jobs would).
        """
        if not self._slices:
            return build_all(self._jobs)
        parts: dict[int, list[Built]] = {}
        for lo, hi, future in reversed(self._slices):
            if future is None or future.cancel():
                # A failing slice is built again below, in order, so that the error raised
                # is always the first failing job's, wherever each slice was built.
                with contextlib.suppress(Exception):
                    parts[lo] = build_all(self._jobs[lo:hi], lo)
        for lo, _, future in self._slices:
            if lo in parts or future is None:
                continue
            try:
                parts[lo] = future.result()
            except BrokenProcessPool:
                if self._pool is not None:
                    self._pool._mark_broken()
            except Exception:  # built again here, which raises it with its own type
                log.debug("a build slice failed on a worker; building it here")
        try:
            return [
                built
                for lo, hi, _ in self._slices
                for built in (parts[lo] if lo in parts else build_all(self._jobs[lo:hi], lo))
            ]
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Cancel the slices no worker has started (when the issuance failed otherwise)."""
        for _, _, future in self._slices:
            if future is not None:
                future.cancel()
