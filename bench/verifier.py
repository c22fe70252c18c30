"""Verifier figures: OpenID4VP request -> response -> decision, through the library and over HTTP.

Prints one JSON line per figure; progress goes to stderr.  Every figure is compared with the
same baseline, measured in the same run: **the pure signature verification of the bench's
own presentations** — for each SD-JWT+KB the verifier accepted, the issuer JWS signature
(the platform's issuer key, Ed25519 or ``--issuer-key P-256``) and the KB-JWT signature (the
holder's Ed25519 key), two raw ``cryptography`` verify calls over the presentation's own
signing inputs, keys parsed and signatures decoded beforehand.  Its rate (presentations per
second) is what a verifier would reach if signatures were all it did;
``ratio = rate / baseline``.

* ``verifier_library_pipeline`` — one presentation through the pipeline per second:
  ``verifier.service.accept_response`` as the response route calls it, in its own units of
  work (the form parsed, seed 002's ten steps — the one-time challenge, the KB-JWT, the
  issuer signature, the tombstone, the DID binding, trust, predicates, the zero-knowledge
  slot, status, the policy floor — DCQL in a read unit of work, then the decision, which
  consumes the challenge, and its event written) **and its commit** (SQLite syncs every
  commit: ``synchronous=FULL``).  ``without_commit`` gives the same calls less the write's
  commit (timed from SQLAlchemy's ``commit`` event to the session's ``after_commit``).
  Target (issue 16): ratio >= 0.5.
* ``verifier_library_lifecycle`` — whole transactions per second: ``create_request``,
  ``request_object`` (signed requests only), ``accept_response`` and ``decision`` (the
  claims read once with the response code), each in its own unit of work and committed.
  The wallet's part between them (reading the request, building the SD-JWT+KB) is not
  timed.  ``phase_mean_us`` splits a transaction's time between the calls.
* ``verifier_http`` — one ``commons serve`` (uvicorn, one worker process, no log worker)
  on a fresh platform, driven by ``--concurrency`` client threads (httpx, HTTP/1.1
  keep-alive, one connection each) of this process; one line per concurrency level.  Each
  phase runs over every transaction in turn: ``POST /v1/verifier/requests`` (a lender's
  access token), ``GET …/request.jwt`` (signed requests only), the wallet's
  ``POST /v1/verifier/responses/{id}`` — the decision: its rate and latency are the figure
  — and ``POST …/decision``.  The presentations are built by the client between the
  request and the response phases, not timed.  Beside it: ``GET /healthz`` driven the same
  way (the floor of the server, client and loopback), the server's CPU per decision and its
  utilisation during the phase (1.0 = the worker's one core saturated), and the client's
  CPU share (a client near 1.0 would be the bottleneck).  Targets (issue 16):
  >= 300 decisions/s with p99 <= 25 ms, one worker.  The server and the client share the
  machine.

The defaults are SQLite, the ``redirect_uri:`` client identifier (request by value) and
``direct_post``; ``--backend postgresql`` runs on a fresh schema of the test PostgreSQL
server (``COMMONS_TEST_POSTGRES_URL``), ``--prefix decentralized_identifier`` and
``--mode direct_post.jwt`` measure the signed request object and the encrypted response.

Usage: python bench/verifier.py [--transactions 2000] [--rounds 5] [--holders 50]
       [--backend sqlite|postgresql] [--issuer-key Ed25519|P-256]
       [--prefix redirect_uri|decentralized_identifier] [--mode direct_post|direct_post.jwt]
       [--concurrency 4[,8,...]] [--skip library,http]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import event

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import READ_ONLY, transaction
from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.demo import lender_token
from credit_commons.formats import oid4vp
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import Principal, issue_admin_token
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.issuer import credentials, status
from credit_commons.issuer.catalogue import CREDIT_READINESS, commit_score
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.jwk import public_key_from_jwk, public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.verifier import PresentationRequest
from credit_commons.verifier import service as verifier_service
from own_state import forget_configured_instance, postgres_schema
from served import commons_server, cpu_seconds, free_port, percentile, process_tree

OWNER = "lnd_bench_verifier"  # the verifier (a lender client id) in the library figure
LIBRARY_BASE = "https://commons.bench"
REDIRECT = "https://lender.example/done"
DISCLOSE = frozenset({"/income_bracket"})
WARM_UP = 20


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def dcql_query() -> dict[str, Any]:
    """The Credit Readiness Credential with its income bracket, as a lender asks for it."""
    return {
        "credentials": [
            {
                "id": "crc",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [CREDIT_READINESS.vct]},
                "claims": [{"path": ["income_bracket"]}],
            }
        ]
    }


def claims_for(token: str) -> dict[str, Any]:
    salt = b64url_encode(secrets.token_bytes(16))
    score = 300 + secrets.randbelow(601)
    return {
        "enterprise": {"identity_token": token},
        "credit_tier": "B",
        "income_bracket": "5L-25L",
        "debt_ratio_bracket": "0.2-0.4",
        "score_commitment": commit_score(score, salt),
        "score_opening": {"score": score, "salt": salt},
        "verification_sources": ["gstn"],
    }


@dataclass(frozen=True)
class Holder:
    """A borrower's wallet: its credential of this platform and its holder key."""

    credential: str
    key: PrivateKey


def _signature_check(key: PublicKey, signing_input: str, signature: str) -> Callable[[], None]:
    """One raw ``cryptography`` verify of a JWS signature, everything else done beforehand
    (the key parsed, the signature decoded, for ES256 re-encoded as DER)."""
    data, raw = signing_input.encode("ascii"), b64url_decode(signature)
    native = key.cryptography_key
    if isinstance(native, ed25519.Ed25519PublicKey):
        return lambda: native.verify(raw, data)
    assert isinstance(native, ec.EllipticCurvePublicKey)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    ecdsa = ec.ECDSA(hashes.SHA256())
    return lambda: native.verify(der, data, ecdsa)


class SignatureBaseline:
    """The pure signature verification of presentations the verifier accepted in this run:
    per presentation, the issuer JWS signature (under ``issuer_key``) and the KB-JWT
    signature (under the holder key its ``cnf`` names) — what a presentation costs a
    verifier that only checked signatures."""

    def __init__(self, presentations: Sequence[str], issuer_key: PublicKey) -> None:
        self.checks: list[tuple[Callable[[], None], Callable[[], None]]] = []
        for text in presentations:
            issuer_jwt, kb_jwt = text.split("~", 1)[0], text.rsplit("~", 1)[1]
            payload = json.loads(b64url_decode(issuer_jwt.split(".")[1]))
            holder_key = public_key_from_jwk(payload["cnf"]["jwk"])
            self.checks.append(
                (
                    _signature_check(issuer_key, *issuer_jwt.rsplit(".", 1)),
                    _signature_check(holder_key, *kb_jwt.rsplit(".", 1)),
                )
            )
        self.issuer_alg = issuer_key.key_type.jose_alg
        self.rate(200)  # warm up, and every signature checked once: they all verify

    def rate(self, n: int) -> float:
        """Presentations per second: ``n`` of them, both signatures each."""
        checks, count = self.checks, len(self.checks)
        start = time.perf_counter()
        for i in range(n):
            issuer, holder = checks[i % count]
            issuer()
            holder()
        return n / (time.perf_counter() - start)

    def describe(self) -> str:
        return (
            f"raw cryptography verify of each accepted presentation's issuer JWS "
            f"({self.issuer_alg}) and KB-JWT (EdDSA) signatures, same run; presentations/s"
        )


# -- the wallet's part (not timed) ---------------------------------------------------------


class Wallet:
    """Reads a request and answers it: what a holder's wallet does between the verifier's
    calls, built from the platform's OpenID4VP formats."""

    def __init__(self, platform_key: Callable[[str], PublicKey], now: int) -> None:
        self._platform_key = platform_key
        self._now = now
        #: The presentations made so far (the baseline verifies the last ones).
        self.shown: list[str] = []

    def read(self, created: dict[str, Any], fetched: str | None) -> oid4vp.AuthorizationRequest:
        if created["request"] is not None:
            return oid4vp.parse_authorization_request(created["request"], signed=False)
        return oid4vp.read_request_object(
            fetched, self._platform_key, client_id=created["client_id"]
        )

    def answer(self, holder: Holder, request: oid4vp.AuthorizationRequest) -> dict[str, str]:
        shown = present(
            SdJwt.parse(holder.credential),
            disclose=set(DISCLOSE),
            holder_signer=holder.key,
            audience=request.client_id,
            nonce=request.nonce,
            iat=self._now,
        )
        self.shown.append(shown)
        vp_token = {"crc": [shown]}
        if request.response_mode == "direct_post.jwt":
            assert request.client_metadata is not None
            jwk = oid4vp.select_encryption_key(request.client_metadata)
            members = {"vp_token": vp_token, "state": request.state}
            return {"response": oid4vp.encrypt_response(members, jwk, "A128GCM")}
        return {"vp_token": json.dumps(vp_token), "state": str(request.state)}


def response_code(redirect: str | None) -> str:
    assert redirect is not None, "the verifier gave no redirect"
    return parse_qs(urlsplit(redirect).query)["response_code"][0]


# -- the library ---------------------------------------------------------------------------


def make_holders(rt: Runtime, n: int) -> list[Holder]:
    """``n`` borrowers, each with a Credit Readiness Credential (SD-JWT VC) of this platform."""
    admin = Principal("admin:bench-issuer", "admin")
    with transaction(rt.sessions) as session:
        issue_admin_token(session, rt, "bench-issuer")
        requests = []
        keys = []
        for i in range(n):
            body = IdentityCreate.model_validate(
                {"roles": ["business"], "profile": {"name": f"Enterprise {i}"}}
            )
            token = identity_service.create_identity(session, rt, body).identity_token
            key = PrivateKey.generate(KeyType.ED25519)
            keys.append(key)
            requests.append(
                credentials.IssueRequest(
                    type_name=CREDIT_READINESS.name,
                    subject_token=token,
                    claims=claims_for(token),
                    holder_jwk=public_key_to_jwk(key.public_key),
                )
            )
        issued = credentials.issue_credentials(session, rt, admin, requests)
    return [Holder(c.credential, k) for c, k in zip(issued, keys, strict=True)]


@dataclass
class Phases:
    """Seconds spent in each verifier call, summed over a round (``commit``: the part of
    ``response`` spent committing its unit of work)."""

    create: float = 0.0
    request_object: float = 0.0
    response: float = 0.0
    commit: float = 0.0
    decision: float = 0.0

    @property
    def total(self) -> float:
        return self.create + self.request_object + self.response + self.decision


class WriteCommits:
    """Seconds spent committing write units of work (the driver's COMMIT of a session of
    ``rt.sessions``, from SQLAlchemy's ``commit`` event to the session's ``after_commit``),
    summed: what ``accept_response``'s durable commit costs inside its own call."""

    def __init__(self, rt: Runtime) -> None:
        self.total = 0.0
        self._started: float | None = None
        event.listen(rt.engine, "commit", self._commit)
        event.listen(rt.sessions, "after_commit", self._after)

    def _commit(self, connection: Any) -> None:
        if not connection.get_execution_options().get(READ_ONLY):
            self._started = time.perf_counter()

    def _after(self, _session: Any) -> None:
        if self._started is not None:
            self.total += time.perf_counter() - self._started
            self._started = None


def library_round(
    rt: Runtime,
    holders: list[Holder],
    wallet: Wallet,
    spec: PresentationRequest,
    n: int,
    commits: WriteCommits,
) -> Phases:
    """``n`` transactions through the service, each call in its own unit of work
    (``accept_response`` opens its own: a read, then a short write)."""
    phases = Phases()
    for i in range(n):
        t0 = time.perf_counter()
        with transaction(rt.sessions) as session:
            created = verifier_service.create_request(session, rt, OWNER, spec)
        t1 = time.perf_counter()
        phases.create += t1 - t0
        fetched = None
        if created.request_uri is not None:
            with transaction(rt.read_sessions) as session:
                fetched = verifier_service.request_object(session, rt, created.id)
            phases.request_object += time.perf_counter() - t1
        request = wallet.read(created.model_dump(), fetched)
        form = wallet.answer(holders[i % len(holders)], request)
        t2 = time.perf_counter()
        committed = commits.total
        verdict = verifier_service.accept_response(rt, created.id, form)
        t3 = time.perf_counter()
        phases.response += t3 - t2
        phases.commit += commits.total - committed
        assert verdict.allowed, "the bench's presentation was denied"
        assert verdict.answer is not None
        with transaction(rt.sessions) as session:
            got = verifier_service.decision(
                session, rt, OWNER, created.id, response_code(verdict.answer.redirect_uri)
            )
        phases.decision += time.perf_counter() - t3
        assert got.credentials[0].claims["income_bracket"] == "5L-25L"
    return phases


@contextmanager
def database(backend: str) -> Iterator[str | None]:
    """None (SQLite under the data directory) or a fresh PostgreSQL schema's URL."""
    if backend == "sqlite":
        yield None
        return
    with postgres_schema() as url:
        yield url


def bench_library(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(args.backend) as url:
        clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
        settings = Settings(
            data_dir=Path(tmp) / "var",
            public_url=LIBRARY_BASE,
            database_url=url,
            issuer_key_type=args.issuer_key,
        )
        rt = Runtime.build(settings, clock=clock)
        upgrade(rt.engine)
        try:
            holders = make_holders(rt, args.holders)
            progress(f"{len(holders)} holders with a credential ({args.backend})")
            with transaction(rt.sessions) as session:
                platform = status.issuer_signer(session, rt).public_key
            wallet = Wallet(lambda _kid: platform, int(clock.now().timestamp()))
            spec = PresentationRequest(
                dcql_query=dcql_query(),
                client_id_prefix=args.prefix,
                response_mode=args.mode,
                redirect_uri=REDIRECT,
            )
            commits = WriteCommits(rt)
            library_round(rt, holders, wallet, spec, WARM_UP, commits)
            per_round = max(1, args.transactions // args.rounds)
            rounds: list[Phases] = []
            baselines: list[float] = []
            for r in range(args.rounds):
                wallet.shown.clear()
                rounds.append(library_round(rt, holders, wallet, spec, per_round, commits))
                # The presentations this round's pipeline accepted, their signatures alone.
                baseline = SignatureBaseline(wallet.shown, platform)
                baselines.append(baseline.rate(per_round))
                progress(
                    f"library round {r + 1}/{args.rounds}: "
                    f"{per_round / rounds[-1].response:,.0f} presentations/s through the "
                    f"pipeline, {per_round / rounds[-1].total:,.0f} transactions/s, "
                    f"signatures alone {baselines[-1]:,.0f}/s"
                )
        finally:
            rt.close()
    raw = statistics.median(baselines)
    common = {
        "backend": args.backend,
        "issuer_key": args.issuer_key,
        "client_id_prefix": args.prefix,
        "response_mode": args.mode,
        "transactions": per_round * args.rounds,
        "rounds": args.rounds,
        "holders": args.holders,
        "baseline": baseline.describe(),
        "baseline_per_s": round(raw),
        "baseline_round_rates": [round(x) for x in baselines],
    }

    def mean_us(part: str) -> float:
        return round(1e6 * sum(getattr(p, part) for p in rounds) / (per_round * len(rounds)), 1)

    pipeline = statistics.median(per_round / p.response for p in rounds)
    uncommitted = statistics.median(per_round / (p.response - p.commit) for p in rounds)
    emit(
        figure="verifier_library_pipeline",
        **common,
        presentations_per_s=round(pipeline),
        round_rates=[round(per_round / p.response) for p in rounds],
        mean_us=mean_us("response"),
        commit_mean_us=mean_us("commit"),
        ratio=round(pipeline / raw, 4),
        without_commit_per_s=round(uncommitted),
        ratio_without_commit=round(uncommitted / raw, 4),
        target_ratio=0.5,
        meets_target=pipeline / raw >= 0.5,
        note="verifier.service.accept_response, its own units of work committed: the form "
        "parsed, steps 1-10 and DCQL read, the decision (consuming the challenge) and its "
        "event written; without_commit: the same less the write's commit",
    )
    lifecycle = statistics.median(per_round / p.total for p in rounds)
    emit(
        figure="verifier_library_lifecycle",
        **common,
        transactions_per_s=round(lifecycle),
        round_rates=[round(per_round / p.total) for p in rounds],
        phase_mean_us={p: mean_us(p) for p in ("create", "request_object", "response", "decision")},
        ratio=round(lifecycle / raw, 4),
        note="create_request, request_object (decentralized_identifier only), accept_response "
        "and decision (claims read once), each in its own unit of work and committed; the "
        "wallet's part is not timed",
    )


# -- over HTTP -----------------------------------------------------------------------------


@contextmanager
def serving(
    tmp: Path, url: str | None, issuer_key: str, public_url: str | None = None
) -> Iterator[tuple[str, dict[str, str], int]]:
    """``commons serve`` (one worker, no log worker) on a fresh platform (SQLite, or the
    PostgreSQL schema ``url``) presenting ``public_url`` (default: the served address);
    yields its base URL, environment and process id."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")},
        "COMMONS_DATA_DIR": str(tmp / "var"),
        "COMMONS_PUBLIC_URL": public_url or base,
        # One client drives the whole platform: per-client limits would measure the limiter.
        "COMMONS_RATE_LIMIT_CLIENT": "100000000/minute",
        "COMMONS_RATE_LIMIT_IP": "100000000/minute",
        "COMMONS_RATE_LIMITS": json.dumps(
            {
                f"{group}.{kind}": "100000000/minute"
                for group in ("verifier", "issuance", "admin", "registration", "well-known")
                for kind in ("ip", "client")
            }
            | {"operations.ip": "100000000/minute"}
        ),
        "COMMONS_LOG_LEVEL": "WARNING",
        "COMMONS_ISSUER_KEY_TYPE": issuer_key,
    }
    if url is not None:
        env["COMMONS_DATABASE_URL"] = url
    with commons_server(env, port, workers=1) as pid:
        yield base, env, pid


def _admin_token(env: dict[str, str], base: str) -> str:
    """An administrator token made in-process on the server's database."""
    settings = Settings(
        data_dir=Path(env["COMMONS_DATA_DIR"]),
        public_url=env["COMMONS_PUBLIC_URL"],
        database_url=env.get("COMMONS_DATABASE_URL"),
    )
    rt = Runtime.build(settings)
    try:
        with transaction(rt.sessions) as session:
            token, _ = issue_admin_token(session, rt, "bench")
    finally:
        rt.close()
    return token


def _http_holders(http: httpx.Client, admin: dict[str, str], n: int) -> list[Holder]:
    holders = []
    for i in range(n):
        made = http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": f"E {i}"}}
        )
        made.raise_for_status()
        token = made.json()["identity_token"]
        key = PrivateKey.generate(KeyType.ED25519)
        issued = http.post(
            "/v1/credentials",
            json={
                "type": CREDIT_READINESS.name,
                "subject": token,
                "claims": claims_for(token),
                "holder_jwk": public_key_to_jwk(key.public_key),
            },
            headers=admin,
        )
        issued.raise_for_status()
        holders.append(Holder(issued.json()["credential"], key))
    return holders


def _lender(http: httpx.Client, base: str, admin: dict[str, str]) -> dict[str, str]:
    key = PrivateKey.generate(KeyType.ED25519)
    made = http.post(
        "/v1/admin/lenders",
        json={
            "name": "Bench Verifier Bank",
            "jwks": {"keys": [public_key_to_jwk(key.public_key)]},
            "allowed_purposes": ["loan.underwriting"],
        },
        headers=admin,
    )
    made.raise_for_status()
    return {"Authorization": f"Bearer {lender_token(http, base, made.json()['client_id'], key)}"}


def _platform_key(http: httpx.Client) -> Callable[[str], PublicKey]:
    from credit_commons.keys import method_key  # noqa: PLC0415  # the wallet's resolver

    document = http.get("/.well-known/did.json").json()

    def key(kid: str) -> PublicKey:
        did, _, fragment = kid.partition("#")
        return method_key(document, did, fragment)

    return key


def _issuer_key(base: str, credential: str) -> PublicKey:
    """The public key the platform signed ``credential`` with, from its published JWKS
    (its JWT VC Issuer Metadata, ``/.well-known/jwt-vc-issuer``, by the JWS ``kid``)."""
    kid = json.loads(b64url_decode(credential.split(".", 1)[0]))["kid"]
    keys = httpx.get(f"{base}/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
    return public_key_from_jwk(next(k for k in keys if k.get("kid") == kid))


def _drive(
    base: str, items: Sequence[Any], call: Callable[[httpx.Client, Any], Any], threads: int
) -> tuple[float, list[float], list[Any]]:
    """Run ``call`` over ``items`` from ``threads`` keep-alive clients; returns the wall-clock
    seconds, each call's latency (s) and the results in order."""
    latencies: list[float] = [0.0] * len(items)
    results: list[Any] = [None] * len(items)
    next_item = iter(range(len(items)))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while True:
                with lock:
                    i = next(next_item, None)
                if i is None:
                    return
                start = time.perf_counter()
                try:
                    results[i] = call(http, items[i])
                except BaseException as e:  # reported after the run
                    failures.append(e)
                    return
                latencies[i] = time.perf_counter() - start

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    return elapsed, latencies, results


@dataclass(frozen=True)
class Load:
    """One phase under load: its wall-clock seconds, each call's latency (s), and the CPU
    seconds the server processes and this process (the client threads) spent meanwhile."""

    seconds: float
    latencies: list[float]
    server_cpu: float
    client_cpu: float

    def summary(self) -> dict[str, float]:
        n = len(self.latencies)
        return {
            "per_s": round(n / self.seconds),
            "p50_ms": round(1000 * percentile(self.latencies, 0.50), 2),
            "p99_ms": round(1000 * percentile(self.latencies, 0.99), 2),
            "server_cpu_ms_per_call": round(1000 * self.server_cpu / n, 3),
            "server_utilisation": round(self.server_cpu / self.seconds, 3),
            "client_cpu_share": round(self.client_cpu / self.seconds, 3),
        }


def _measured(
    server: int,
    base: str,
    items: Sequence[Any],
    call: Callable[[httpx.Client, Any], Any],
    threads: int,
) -> tuple[Load, list[Any]]:
    tree = process_tree(server)
    server_before, client_before = sum(map(cpu_seconds, tree)), time.process_time()
    seconds, latencies, results = _drive(base, items, call, threads)
    load = Load(
        seconds,
        latencies,
        sum(map(cpu_seconds, tree)) - server_before,
        time.process_time() - client_before,
    )
    return load, results


def bench_http(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(args.backend) as url,
        # A signed request needs the platform's did:web, which only an https domain carries
        # (did:web §3.1, §3.2; 422 verifier.prefix_unavailable otherwise): the server then
        # presents LIBRARY_BASE, and the bench, which reads its keys directly, calls paths.
        serving(
            Path(tmp),
            url,
            args.issuer_key,
            LIBRARY_BASE if args.prefix == "decentralized_identifier" else None,
        ) as (base, env, pid),
    ):
        admin = {"Authorization": f"Bearer {_admin_token(env, base)}"}
        with httpx.Client(base_url=base, timeout=30) as http:
            holders = _http_holders(http, admin, args.holders)
            lender = _lender(http, env["COMMONS_PUBLIC_URL"], admin)
            platform_key = _platform_key(http)
            wallet = Wallet(platform_key, int(time.time()))
        progress(f"server at {base} ({args.backend}); {len(holders)} holders with a credential")
        body = {
            "dcql_query": dcql_query(),
            "client_id_prefix": args.prefix,
            "response_mode": args.mode,
            "redirect_uri": REDIRECT,
        }

        def create(http: httpx.Client, _i: int) -> dict[str, Any]:
            made = http.post("/v1/verifier/requests", json=body, headers=lender)
            assert made.status_code == 201, made.text
            return dict(made.json())

        def fetch(http: httpx.Client, created: dict[str, Any]) -> str | None:
            if created["request_uri"] is None:
                return None
            got = http.get(urlsplit(created["request_uri"]).path)
            assert got.status_code == 200, got.text
            return got.text

        def respond(http: httpx.Client, item: tuple[str, dict[str, str]]) -> str:
            path, form = item
            answered = http.post(path, data=form)
            assert answered.status_code == 200, answered.text
            return response_code(answered.json()["redirect_uri"])

        def read(http: httpx.Client, item: tuple[str, str]) -> None:
            transaction_id, code = item
            got = http.post(
                f"/v1/verifier/requests/{transaction_id}/decision",
                json={"response_code": code},
                headers=lender,
            )
            assert got.status_code == 200, got.text

        def health(http: httpx.Client, _i: int) -> None:
            got = http.get("/healthz")
            assert got.status_code == 200, got.text

        def run(n: int, threads: int) -> dict[str, Load]:
            made, created = _measured(pid, base, range(n), create, threads)
            fetched_load, fetched = _measured(pid, base, created, fetch, threads)
            forms = []
            wallet.shown.clear()
            for i, (c, f) in enumerate(zip(created, fetched, strict=True)):
                request = wallet.read(c, f)
                path = urlsplit(request.response_uri).path
                forms.append((path, wallet.answer(holders[i % len(holders)], request)))
            answered, codes = _measured(pid, base, forms, respond, threads)
            pairs = [(c["id"], code) for c, code in zip(created, codes, strict=True)]
            decided, _ = _measured(pid, base, pairs, read, threads)
            found = {"create": made, "response": answered, "decision": decided}
            if created[0]["request_uri"] is not None:
                found["request_object"] = fetched_load
            return found

        issuer_key = _issuer_key(base, holders[0].credential)
        levels = [int(x) for x in str(args.concurrency).split(",")]
        run(WARM_UP * max(levels), max(levels))
        for threads in levels:
            progress(f"measuring with {threads} client threads")
            found = run(args.transactions, threads)
            floor, _ = _measured(pid, base, range(args.transactions), health, threads)
            raw = SignatureBaseline(wallet.shown, issuer_key).rate(args.transactions)
            _emit_http(args, threads, found, floor, raw)


def _emit_http(
    args: argparse.Namespace, threads: int, found: dict[str, Load], floor: Load, raw: float
) -> None:
    n = args.transactions
    answered = found["response"]
    decisions = n / answered.seconds
    p99 = 1000 * percentile(answered.latencies, 0.99)
    flow_s = sum(load.seconds for load in found.values())
    emit(
        figure="verifier_http",
        backend=args.backend,
        issuer_key=args.issuer_key,
        server="commons serve (uvicorn, one worker process, loopback, no log worker)",
        concurrency=threads,
        load=f"{threads} httpx keep-alive client threads in the bench process",
        client_id_prefix=args.prefix,
        response_mode=args.mode,
        transactions=n,
        decisions_per_s=round(decisions),
        p50_ms=round(1000 * percentile(answered.latencies, 0.50), 2),
        p99_ms=round(p99, 2),
        phases={phase: load.summary() for phase, load in found.items()},
        transactions_per_s=round(n / flow_s),
        healthz=floor.summary(),
        target_decisions_per_s=300,
        target_p99_ms=25,
        meets_target=decisions >= 300 and p99 <= 25,
        baseline="raw cryptography verify of each accepted presentation's issuer JWS and "
        "KB-JWT signatures, same run; presentations/s",
        baseline_per_s=round(raw),
        ratio=round(decisions / raw, 4),
        note="decisions = POST /v1/verifier/responses/{id} (the pipeline runs there); "
        "transactions_per_s = every verifier call of a transaction (request, request object "
        "when signed, response, decision read) over the summed phase times; healthz = GET "
        "/healthz with the same threads (the floor of server, client and loopback); "
        "server_utilisation = server CPU seconds per wall second (1.0 = its core saturated); "
        "client_cpu_share = this process's CPU per wall second",
    )


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5, help="library rounds")
    parser.add_argument("--holders", type=int, default=50, help="borrowers with a credential")
    parser.add_argument(
        "--prefix", choices=["redirect_uri", "decentralized_identifier"], default="redirect_uri"
    )
    parser.add_argument("--mode", choices=["direct_post", "direct_post.jwt"], default="direct_post")
    parser.add_argument(
        "--concurrency", default="4", help="HTTP client threads; a comma-separated list runs each"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--issuer-key", choices=["Ed25519", "P-256"], default="Ed25519")
    parser.add_argument("--skip", default="", help="comma-separated: library,http")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if "library" not in skip:
        bench_library(args)
    if "http" not in skip:
        bench_http(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
