"""Credential figures: bulk SD-JWT VC issuance and presentation verification, on SQLite.

Prints one JSON line per figure, each with its baseline measured in the same run; the
project path and the baseline run in alternating rounds and the figure is the median round.

* ``bulk_issuance`` — ``CreditReadinessCredential`` SD-JWT VCs per second through
  ``credentials.issue_credentials``, the bulk path (catalogue lookup and JSON Schema check,
  tombstone and subject checks, random status index, Ed25519 signature, registry row, vault
  seal under the subject's ``credentials`` key, ``credential.issued`` event), ``--batch``
  issuances per call and committed transaction.  Each credential goes to its own subject
  by default (a borrower receives one credential), so each seal also creates that
  subject's key.  The SD-JWTs are built by ``--workers`` worker processes and the caller
  (``issuer/build_pool.py``), as ``commons issuer issue-batch`` runs by default on this
  machine (one fewer worker than CPUs, at most 2).  Baseline: raw ``cryptography`` Ed25519
  signing of the same JWS signing input; the ratio is the share of an issuance's time that
  its one signature takes.  Target (issue 5): >= 3,000/s.
* ``bulk_issuance_one_process`` — the same without workers (``--workers 0`` prints only
  this one), in rounds alternating with the pooled ones on fresh subjects of their own.
* ``presentation_verification`` — SD-JWT+KB presentations (one disclosure) verified per
  second by the pure library ``verifier.verify_sd_jwt`` (issuer signature, disclosures, key
  binding with audience, nonce, freshness and ``sd_hash``, validity).  Two signature checks
  per presentation, so the ideal is half the raw Ed25519 verify rate measured in the same
  run; ratio = rate / (raw verify rate / 2).  Target (issue 5): ratio >= 0.5.
* ``presentation_verification_db`` — the same presentations through
  ``verifier.verify_presentation`` (adds the issuer key lookup, the catalogue check and
  the status lookup in the database), one unit of work each, as the HTTP handler runs it.
  Same baseline and target.

Before the timed parts the heap is frozen (``gc.freeze``) as ``commons issuer issue-batch``
and ``commons serve`` freeze theirs after startup (credit_commons/core/heap.py); objects made
while timing (the results kept for the verification among them) are collected as usual.

The runtime's clock is a ``FixedClock`` set at the start of the run, so key-binding
freshness holds however long the run takes.  Identities, holder keys and presentations are
made outside the timed parts.  ``--profile`` then runs each path once more under cProfile
and prints the top functions by cumulative time to stderr (the figures are not affected).

Usage: python bench/credentials.py [--count 5000] [--verifications 1000] [--batch 500]
       [--rounds 5] [--per-subject 1] [--workers N] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from credit_commons import verifier
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.heap import freeze_startup_heap
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity import auth as identity_auth
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import Principal
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.issuer import credentials, status
from credit_commons.issuer.build_pool import BuildPool, default_workers
from credit_commons.issuer.catalogue import CREDIT_READINESS, commit_score
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance

AUDIENCE = "https://lender.example/verifier"
DISCLOSE = frozenset({"/income_bracket"})
WARM_UP = 50
PUBLISHED = "the leading Python agent publishes ~30 issuances/s sustained (context, not measured)"


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def rate(fn: Callable[[], object], ops: int) -> float:
    start = time.perf_counter()
    for _ in range(ops):
        fn()
    return ops / (time.perf_counter() - start)


class Subject:
    """A borrower: an identity in the database and the holder key of their wallet."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.holder = PrivateKey.generate(KeyType.ED25519)
        self.holder_jwk = public_key_to_jwk(self.holder.public_key)
        salt = secrets.token_urlsafe(16)
        score = 300 + secrets.randbelow(601)
        self.claims: dict[str, Any] = {
            "enterprise": {
                "identity_token": token,
                "gstin_pseudonym": "p1:" + b64url_encode(secrets.token_bytes(32)),
            },
            "credit_tier": "A",
            "income_bracket": "25L-1Cr",
            "debt_ratio_bracket": "<0.2",
            "score_commitment": commit_score(score, salt),
            "score_opening": {"score": score, "salt": salt},
            "verification_sources": ["gstn", "aa_fetch"],
        }


def make_subjects(rt: Runtime, n: int) -> list[Subject]:
    """``n`` enterprise-less business identities through the service (not timed)."""
    subjects: list[Subject] = []
    start = time.perf_counter()
    for lo in range(0, n, 200):
        with transaction(rt.sessions) as session:
            for i in range(lo, min(lo + 200, n)):
                body = IdentityCreate.model_validate(
                    {"roles": ["business"], "profile": {"name": f"Enterprise {i}"}}
                )
                made = identity_service.create_identity(session, rt, body)
                subjects.append(Subject(made.identity_token))
        if (lo // 200) % 10 == 9 or len(subjects) == n:
            progress(f"identities {len(subjects):,} / {n:,} ({time.perf_counter() - start:.0f} s)")
    return subjects


class Issued:
    """An issued credential and the subject (holder) it belongs to."""

    def __init__(self, subject: Subject, credential: str) -> None:
        self.subject = subject
        self.credential = credential


def issue_batch(
    rt: Runtime,
    admin: Principal,
    subjects: list[Subject],
    per_subject: int,
    builders: BuildPool | None = None,
) -> list[Issued]:
    """One committed transaction issuing ``per_subject`` credentials to each subject through
    ``credentials.issue_credentials`` (the bulk path), with ``builders`` if given."""
    owners = [subject for subject in subjects for _ in range(per_subject)]
    requests = [
        credentials.IssueRequest(
            type_name=CREDIT_READINESS.name,
            subject_token=subject.token,
            claims=subject.claims,
            holder_jwk=subject.holder_jwk,
        )
        for subject in owners
    ]
    with transaction(rt.sessions) as session:
        results = credentials.issue_credentials(session, rt, admin, requests, builders=builders)
    return [Issued(subject, r.credential) for subject, r in zip(owners, results, strict=True)]


def issuance_round(
    rt: Runtime,
    admin: Principal,
    subjects: list[Subject],
    args: argparse.Namespace,
    builders: BuildPool | None = None,
) -> tuple[float, list[Issued]]:
    """Issue to every subject in batches of ``args.batch`` credentials; (rate, issued)."""
    per_batch = max(1, args.batch // args.per_subject)
    issued: list[Issued] = []
    start = time.perf_counter()
    for lo in range(0, len(subjects), per_batch):
        issued += issue_batch(rt, admin, subjects[lo : lo + per_batch], args.per_subject, builders)
    return len(issued) / (time.perf_counter() - start), issued


def bench_issuance(
    rt: Runtime,
    admin: Principal,
    subjects: list[Subject],
    args: argparse.Namespace,
    builders: BuildPool | None,
) -> list[Issued]:
    """Print ``bulk_issuance`` (with ``builders``, as ``commons issuer issue-batch`` runs
    by default on this machine) and ``bulk_issuance_one_process`` (without) from alternating
    rounds, each next to a raw-signing round; returns every credential issued."""
    warm, rest = subjects[: 2 * WARM_UP], subjects[2 * WARM_UP :]
    # Issuer key, status list, catalogue; then the pool's workers (their first build).
    issued = issue_batch(rt, admin, warm[:WARM_UP], args.per_subject)
    issued += issue_batch(rt, admin, warm[WARM_UP:], args.per_subject, builders)
    # The baseline signs exactly what an issuance signs: the issuer JWT's signing input.
    jwt = issued[0].credential.split("~")[0]
    signing_input = jwt.rsplit(".", 1)[0].encode("ascii")
    raw_key = ed25519.Ed25519PrivateKey.generate()
    rate(lambda: raw_key.sign(signing_input), 500)  # warm up

    modes = [("bulk_issuance", builders), ("bulk_issuance_one_process", None)]
    if builders is None:
        modes = modes[1:]
    per_round = len(rest) // (args.rounds * len(modes))
    rates: dict[str, list[float]] = {figure: [] for figure, _ in modes}
    raw_rates: dict[str, list[float]] = {figure: [] for figure, _ in modes}
    at = 0
    for r in range(args.rounds):
        for figure, pool in modes:
            chunk, at = rest[at : at + per_round], at + per_round
            p, done = issuance_round(rt, admin, chunk, args, pool)
            issued += done
            rates[figure].append(p)
            raw_rates[figure].append(rate(lambda: raw_key.sign(signing_input), len(done)))
            progress(f"{figure} round {r + 1}/{args.rounds}: {p:,.0f}/s ({len(issued):,} issued)")
    for figure, pool in modes:
        p, raw = statistics.median(rates[figure]), statistics.median(raw_rates[figure])
        workers = pool.workers if pool is not None else 0
        emit(
            figure=figure,
            backend="sqlite",
            format=credentials.SD_JWT_VC,
            type=CREDIT_READINESS.name,
            credentials=per_round * args.rounds * args.per_subject,
            rounds=args.rounds,
            batch=args.batch,
            credentials_per_subject=args.per_subject,
            build_workers=workers,
            cpus=os.cpu_count(),
            issued_per_s=round(p),
            round_rates=[round(x) for x in rates[figure]],
            baseline="raw cryptography Ed25519 sign of the same JWS signing input",
            baseline_ops_per_s=round(raw),
            ratio=round(p / raw, 4),
            target_per_s=3_000,
            meets_target=p >= 3_000,
            signing_input_bytes=len(signing_input),
            credential_chars=len(issued[0].credential),
            context=PUBLISHED,
            note=f"issue_credentials incl. schema check, status index, signature, registry "
            f"row, vault seal, event; {args.batch} per committed transaction; SD-JWT builds "
            + (
                f"on {workers} worker process(es) and the caller (BuildPool)"
                if workers
                else "in the calling process only"
            )
            + "; ratio = the share of an issuance's time its one signature takes",
        )
    return issued


class Presentation:
    """A presentation made for the verifier, and the nonce it was made for."""

    def __init__(self, issued: Issued, iat: int) -> None:
        self.nonce = secrets.token_urlsafe(12)
        self.text = present(
            SdJwt.parse(issued.credential),
            disclose=DISCLOSE,
            holder_signer=issued.subject.holder,
            audience=AUDIENCE,
            nonce=self.nonce,
            iat=iat,
        )


def bench_verification(rt: Runtime, issued: list[Issued], args: argparse.Namespace) -> None:
    """Print ``presentation_verification`` and ``presentation_verification_db``."""
    now = int(rt.clock.now().timestamp())
    start = time.perf_counter()
    shown = [Presentation(issued[i % len(issued)], now) for i in range(args.verifications)]
    progress(f"{len(shown):,} presentations made ({time.perf_counter() - start:.1f} s)")

    with transaction(rt.sessions) as session:
        keys: dict[str, PublicKey] = {
            v.kid: v.public_key for v in rt.key_store.versions(session, status.ISSUER_KEY)
        }

    def resolve(header: Any, payload: Any) -> PublicKey:
        # What verify_presentation's resolver does: the issuer and kid must be ours.
        if payload.get("iss") != rt.settings.public_url or header.get("kid") not in keys:
            raise verifier.UnknownIssuerKey("unknown issuer key")
        return keys[str(header["kid"])]

    def verify_pure() -> float:
        t0 = time.perf_counter()
        for p in shown:
            verifier.verify_sd_jwt(
                p.text,
                issuer_key_resolver=resolve,
                require_key_binding=True,
                audience=AUDIENCE,
                nonce=p.nonce,
                now=now,
            )
        return len(shown) / (time.perf_counter() - t0)

    def verify_db() -> float:
        t0 = time.perf_counter()
        for p in shown:
            with transaction(rt.sessions) as session:  # the router's unit of work
                verifier.verify_presentation(session, rt, p.text, audience=AUDIENCE, nonce=p.nonce)
        return len(shown) / (time.perf_counter() - t0)

    # The baseline verifies one raw Ed25519 signature over an issuer JWT's signing input.
    raw_key = ed25519.Ed25519PrivateKey.generate()
    jwt = issued[0].credential.split("~")[0]
    message = jwt.rsplit(".", 1)[0].encode("ascii")
    raw_public, raw_sig = raw_key.public_key(), raw_key.sign(message)

    def raw_verify() -> None:
        raw_public.verify(raw_sig, message)

    # Sanity (not timed): the disclosed claim comes through, the undisclosed ones do not.
    with transaction(rt.sessions) as session:
        checked = verifier.verify_presentation(
            session, rt, shown[0].text, audience=AUDIENCE, nonce=shown[0].nonce
        )
    assert checked.claims["income_bracket"] == "25L-1Cr"
    assert "score_opening" not in checked.claims

    rate(raw_verify, 500)  # warm up
    pure_rates, db_rates, raw_rates = [], [], []
    for r in range(args.rounds):
        pure_rates.append(verify_pure())
        raw_rates.append(rate(raw_verify, len(shown)))
        db_rates.append(verify_db())
        progress(
            f"verification round {r + 1}/{args.rounds}: pure {pure_rates[-1]:,.0f}/s, "
            f"db {db_rates[-1]:,.0f}/s, raw verify {raw_rates[-1]:,.0f}/s"
        )
    raw = statistics.median(raw_rates)
    ideal = raw / 2
    for name, rates, what in (
        (
            "presentation_verification",
            pure_rates,
            "sd_jwt_verify.verify: issuer signature + KB-JWT, one disclosure, key binding "
            "with aud, nonce, iat and sd_hash; issuer key from an in-memory resolver",
        ),
        (
            "presentation_verification_db",
            db_rates,
            "verifier.verify_presentation in its own unit of work (as POST "
            "/v1/presentations/verify runs it): issuer keys, catalogue and status from SQLite",
        ),
    ):
        p = statistics.median(rates)
        where = {"backend": "sqlite"} if name.endswith("_db") else {}
        emit(
            figure=name,
            **where,
            presentations=len(shown),
            rounds=args.rounds,
            verified_per_s=round(p),
            baseline="raw cryptography Ed25519 verify; ideal = half of it (two signatures)",
            baseline_ops_per_s=round(raw),
            ideal_per_s=round(ideal),
            ratio=round(p / ideal, 3),
            target_ratio=0.5,
            meets_target=p / ideal >= 0.5,
            presentation_chars=len(shown[0].text),
            note=what,
        )


def profile(
    rt: Runtime,
    admin: Principal,
    subjects: list[Subject],
    issued: list[Issued],
    args: argparse.Namespace,
) -> None:
    """Run each path once more under cProfile; top functions by cumulative time to stderr."""
    now = int(rt.clock.now().timestamp())
    shown = [Presentation(issued[i % len(issued)], now) for i in range(min(1000, len(issued)))]
    with transaction(rt.sessions) as session:
        keys = {v.kid: v.public_key for v in rt.key_store.versions(session, status.ISSUER_KEY)}

    def pure() -> None:
        for p in shown:
            verifier.verify_sd_jwt(
                p.text,
                issuer_key_resolver=lambda h, _: keys[h["kid"]],
                require_key_binding=True,
                audience=AUDIENCE,
                nonce=p.nonce,
                now=now,
            )

    def db() -> None:
        for p in shown:
            with transaction(rt.sessions) as session:
                verifier.verify_presentation(session, rt, p.text, audience=AUDIENCE, nonce=p.nonce)

    runs: list[tuple[str, Callable[[], object]]] = [
        (
            f"issuance of {len(subjects) * args.per_subject} credentials",
            lambda: issuance_round(rt, admin, subjects, args),
        ),
        (f"pure verification of {len(shown)} presentations", pure),
        (f"verify_presentation of {len(shown)} presentations", db),
    ]
    for title, fn in runs:
        profiler = cProfile.Profile()
        profiler.enable()
        fn()
        profiler.disable()
        print(f"\n# cProfile: {title}", file=sys.stderr)
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(30)


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5_000, help="credentials to issue")
    parser.add_argument("--verifications", type=int, default=1_000, help="presentations")
    parser.add_argument("--batch", type=int, default=500, help="issuances per transaction")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-subject", type=int, default=1, help="credentials per subject")
    parser.add_argument("--profile", action="store_true", help="cProfile each path afterwards")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="build worker processes for bulk_issuance, as issue-batch's default "
        "(0: only the one-process figure)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(datetime.now(UTC))
        rt = Runtime.build(Settings(data_dir=Path(tmp) / "var"), clock=clock)
        upgrade(rt.engine)
        try:
            profiled = args.batch // args.per_subject if args.profile else 0
            modes = 2 if args.workers else 1
            n = 2 * WARM_UP + modes * -(-args.count // args.per_subject) + profiled
            subjects = make_subjects(rt, n)
            with transaction(rt.sessions) as session:
                identity_auth.issue_admin_token(session, rt, "bench-issuer")
            admin = Principal("admin:bench-issuer", "admin")
            # As `commons issuer issue-batch` and `commons serve` do after startup: the heap
            # alive now (the runtime, and here the bench's own subjects, which a real issuer
            # reads from its input instead of holding) is hidden from the cyclic collector.
            freeze_startup_heap()
            with contextlib.ExitStack() as stack:
                builders = None
                if args.workers:
                    builders = stack.enter_context(BuildPool(args.workers))
                    builders.start()
                issued = bench_issuance(rt, admin, subjects[: n - profiled], args, builders)
            bench_verification(rt, issued, args)
            if args.profile:
                profile(rt, admin, subjects[n - profiled :], issued, args)
        finally:
            rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
