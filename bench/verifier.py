"""Verifier figures: OpenID4VP request -> response -> decision, through the library and over HTTP.

Prints one JSON line per figure, each with its baseline measured in the same run: the pure
signature-verification rate (``cryptography`` Ed25519 verify of an issuer JWT's signing
input).  A presentation costs the verifier two signature checks (the issuer's JWT and the
holder's KB-JWT), so the ideal is half the raw rate; ``ratio = rate / (raw rate / 2)``.
Progress goes to stderr.

* ``verifier_library`` — transactions per second through ``verifier.service`` as the routes
  call it, each call in its own unit of work on SQLite: ``create_request`` (DCQL parsed, the
  transaction stored), ``request_object`` (the signed request object, for a
  ``decentralized_identifier:`` client), ``accept_response`` (seed 002's ten-step pipeline:
  the one-time challenge, the KB-JWT, the issuer signature, the tombstone, the DID binding,
  trust, predicates, the zero-knowledge slot, status, the policy floor, then DCQL; the
  decision recorded with its event) and ``decision`` (the disclosed claims, read once with
  the response code).  The wallet's part between them (reading the request, building the
  SD-JWT+KB presentation) is not timed.  Rounds alternate with the baseline; the figure is
  the median round.  Target (issue 16): ratio >= 0.5.
* ``verifier_http`` — the same transactions through ``commons serve`` (uvicorn, one worker,
  loopback, SQLite), driven by ``--concurrency`` client threads (httpx, keep-alive) in this
  process: ``POST /v1/verifier/requests`` (a lender's access token), for a
  ``decentralized_identifier:`` client ``GET …/request.jwt``, the wallet's
  ``POST /v1/verifier/responses/{id}`` (the decision is made here: its rate and latency are
  the figure) and ``POST …/decision``.  Each phase runs over all transactions in turn (the
  presentations are built by the client between the request phase and the response phase,
  not timed).  Targets (issue 16): >= 300 decisions/s with p99 <= 25 ms, one worker.  The
  server and the client share the machine.

The defaults are the ``redirect_uri:`` client identifier (request by value) and
``direct_post``; ``--prefix decentralized_identifier`` and ``--mode direct_post.jwt`` measure
the signed request object and the encrypted response.

Usage: python bench/verifier.py [--transactions 2000] [--rounds 5] [--holders 50]
       [--prefix redirect_uri|decentralized_identifier] [--mode direct_post|direct_post.jwt]
       [--concurrency 8] [--skip library,http]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
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
from cryptography.hazmat.primitives.asymmetric import ed25519

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_encode
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
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.verifier import PresentationRequest
from credit_commons.verifier import service as verifier_service
from own_state import forget_configured_instance

OWNER = "lnd_bench_verifier"  # the verifier (a lender client id) in the library figure
LIBRARY_BASE = "https://commons.bench"
REDIRECT = "https://lender.example/done"
DISCLOSE = frozenset({"/income_bracket"})
WARM_UP = 20


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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


class RawBaseline:
    """The pure signature check: one raw Ed25519 verify of an issuer JWT's signing input."""

    def __init__(self, credential: str) -> None:
        key = ed25519.Ed25519PrivateKey.generate()
        self.message = credential.split("~", 1)[0].rsplit(".", 1)[0].encode("ascii")
        self.public, self.signature = key.public_key(), key.sign(self.message)
        self.rate(500)  # warm up

    def rate(self, ops: int) -> float:
        start = time.perf_counter()
        for _ in range(ops):
            self.public.verify(self.signature, self.message)
        return ops / (time.perf_counter() - start)


# -- the wallet's part (not timed) ---------------------------------------------------------


class Wallet:
    """Reads a request and answers it: what a holder's wallet does between the verifier's
    calls, built from the platform's OpenID4VP formats."""

    def __init__(self, platform_key: Callable[[str], PublicKey], now: int) -> None:
        self._platform_key = platform_key
        self._now = now

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
    """Seconds spent in each verifier call, summed over a round."""

    create: float = 0.0
    request_object: float = 0.0
    response: float = 0.0
    decision: float = 0.0

    @property
    def total(self) -> float:
        return self.create + self.request_object + self.response + self.decision


def library_round(
    rt: Runtime, holders: list[Holder], wallet: Wallet, spec: PresentationRequest, n: int
) -> Phases:
    """``n`` transactions through the service, each call in its own unit of work."""
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
        with transaction(rt.sessions) as session:
            verdict = verifier_service.accept_response(session, rt, created.id, form)
        t3 = time.perf_counter()
        phases.response += t3 - t2
        assert verdict.allowed, "the bench's presentation was denied"
        assert verdict.answer is not None
        with transaction(rt.sessions) as session:
            got = verifier_service.decision(
                session, rt, OWNER, created.id, response_code(verdict.answer.redirect_uri)
            )
        phases.decision += time.perf_counter() - t3
        assert got.credentials[0].claims["income_bracket"] == "5L-25L"
    return phases


def bench_library(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
        settings = Settings(data_dir=Path(tmp) / "var", public_url=LIBRARY_BASE)
        rt = Runtime.build(settings, clock=clock)
        upgrade(rt.engine)
        try:
            holders = make_holders(rt, args.holders)
            progress(f"{len(holders)} holders with a credential")
            with transaction(rt.sessions) as session:
                platform = status.issuer_signer(session, rt).public_key
            wallet = Wallet(lambda _kid: platform, int(clock.now().timestamp()))
            spec = PresentationRequest(
                dcql_query=dcql_query(),
                client_id_prefix=args.prefix,
                response_mode=args.mode,
                redirect_uri=REDIRECT,
            )
            baseline = RawBaseline(holders[0].credential)
            library_round(rt, holders, wallet, spec, WARM_UP)
            per_round = max(1, args.transactions // args.rounds)
            rates, raw_rates, rounds = [], [], []
            for r in range(args.rounds):
                phases = library_round(rt, holders, wallet, spec, per_round)
                rates.append(per_round / phases.total)
                raw_rates.append(baseline.rate(2 * per_round))
                rounds.append(phases)
                progress(f"library round {r + 1}/{args.rounds}: {rates[-1]:,.0f} transactions/s")
        finally:
            rt.close()
    rate, raw = statistics.median(rates), statistics.median(raw_rates)
    ideal = raw / 2

    def mean_us(part: str) -> float:
        return round(1e6 * sum(getattr(p, part) for p in rounds) / (per_round * len(rounds)), 1)

    emit(
        figure="verifier_library",
        backend="sqlite",
        client_id_prefix=args.prefix,
        response_mode=args.mode,
        transactions=per_round * args.rounds,
        rounds=args.rounds,
        holders=args.holders,
        transactions_per_s=round(rate),
        round_rates=[round(x) for x in rates],
        phase_mean_us={p: mean_us(p) for p in ("create", "request_object", "response", "decision")},
        baseline="raw cryptography Ed25519 verify of an issuer JWT signing input, same run",
        baseline_ops_per_s=round(raw),
        ideal_per_s=round(ideal),
        ratio=round(rate / ideal, 4),
        target_ratio=0.5,
        meets_target=rate / ideal >= 0.5,
        note="verifier.service create_request, request_object (decentralized_identifier), "
        "accept_response (the ten-step pipeline, DCQL, decision recorded), decision (claims "
        "read once), each in its own unit of work; the wallet's part is not timed; ideal = "
        "raw verify rate / 2 (issuer JWT and KB-JWT)",
    )


# -- over HTTP -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(tmp: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    """``commons serve`` (one worker, no log worker) on a fresh SQLite platform; yields its
    base URL, environment and process id."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")},
        "COMMONS_DATA_DIR": str(tmp / "var"),
        "COMMONS_PUBLIC_URL": base,
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
    }
    commons = [sys.executable, "-m", "credit_commons.cli"]
    subprocess.run([*commons, "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [*commons, "serve", "--port", str(port), "--no-worker", "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        yield base, env, server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def _admin_token(env: dict[str, str], base: str) -> str:
    """An administrator token made in-process on the server's database."""
    settings = Settings(data_dir=Path(env["COMMONS_DATA_DIR"]), public_url=base)
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


def bench_http(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp)) as (base, env, _pid):
        admin = {"Authorization": f"Bearer {_admin_token(env, base)}"}
        with httpx.Client(base_url=base, timeout=30) as http:
            holders = _http_holders(http, admin, args.holders)
            lender = _lender(http, base, admin)
            wallet = Wallet(_platform_key(http), int(time.time()))
        progress(f"server at {base}; {len(holders)} holders with a credential")
        baseline = RawBaseline(holders[0].credential)
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

        def run(n: int) -> dict[str, tuple[float, list[float]]]:
            made_s, made_lat, created = _drive(base, range(n), create, args.concurrency)
            fetch_s, fetch_lat, fetched = _drive(base, created, fetch, args.concurrency)
            forms = []
            for i, (c, f) in enumerate(zip(created, fetched, strict=True)):
                request = wallet.read(c, f)
                path = urlsplit(request.response_uri).path
                forms.append((path, wallet.answer(holders[i % len(holders)], request)))
            resp_s, resp_lat, codes = _drive(base, forms, respond, args.concurrency)
            pairs = [(c["id"], code) for c, code in zip(created, codes, strict=True)]
            read_s, read_lat, _ = _drive(base, pairs, read, args.concurrency)
            found = {
                "create": (made_s, made_lat),
                "response": (resp_s, resp_lat),
                "decision": (read_s, read_lat),
            }
            if created[0]["request_uri"] is not None:
                found["request_object"] = (fetch_s, fetch_lat)
            return found

        run(WARM_UP * args.concurrency)
        progress("warm; measuring")
        found = run(args.transactions)
        raw = baseline.rate(2 * args.transactions)
    n = args.transactions
    response_s, response_lat = found["response"]
    decisions = n / response_s
    p99 = 1000 * percentile(response_lat, 0.99)
    flow_s = sum(seconds for seconds, _ in found.values())
    emit(
        figure="verifier_http",
        backend="sqlite",
        server="commons serve (uvicorn, one worker, loopback, no log worker)",
        load=f"{args.concurrency} httpx keep-alive client threads in the bench process",
        client_id_prefix=args.prefix,
        response_mode=args.mode,
        transactions=n,
        decisions_per_s=round(decisions),
        p50_ms=round(1000 * percentile(response_lat, 0.50), 2),
        p99_ms=round(p99, 2),
        phases={
            phase: {
                "per_s": round(n / seconds),
                "p50_ms": round(1000 * percentile(lat, 0.50), 2),
                "p99_ms": round(1000 * percentile(lat, 0.99), 2),
            }
            for phase, (seconds, lat) in found.items()
        },
        transactions_per_s=round(n / flow_s),
        target_decisions_per_s=300,
        target_p99_ms=25,
        meets_target=decisions >= 300 and p99 <= 25,
        baseline="raw cryptography Ed25519 verify of an issuer JWT signing input, same run",
        baseline_ops_per_s=round(raw),
        ratio=round(decisions / (raw / 2), 4),
        note="decisions = POST /v1/verifier/responses/{id} (the pipeline runs there); "
        "transactions_per_s = every verifier call of a transaction (request, request object "
        "when signed, response, decision read) over the summed phase times; the client's "
        "presentations are built between phases, not timed",
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
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP client threads")
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
