"""Mixed load behind nginx (issue 21 item 8): the production shape under a long closed loop.

``commons serve --no-worker --workers 2`` and one ``commons worker`` (the log worker, as in
deploy/compose.yaml) on a fresh PostgreSQL schema, behind Debian's nginx on loopback TLS
(the shipped deploy/nginx/commons-mtls.conf.template, a CA and server certificate made for
this run with ``cryptography``; clients present no certificate, which the template allows).

Seeding (direct to the platform): ``--lenders`` lenders, one borrower per client, each with a
credential, and the admin token issuance uses; then the run waits for the first checkpoint.

Each of ``--clients`` closed-loop clients (one keep-alive HTTPS connection each, all in this
process, asyncio + httpx) repeats one cycle until ``--duration`` is over:

* ``consent.request`` — the lender asks for a one-time consent (``POST /v1/consents``);
* ``consent.approve`` — the borrower grants it;
* ``retrieval`` — the lender retrieves the credential under it (consent-gated);
* ``consent.revoke`` — the borrower revokes it;
* ``log.checkpoint`` and ``log.entries`` — the latest checkpoint, then its last 16 entries;
* ``issuance`` — every other cycle, a credential issued to the client's borrower;
* ``token`` — a fresh lender access token whenever the client's is 200 s old (they live 300 s).

Phases: ``--warmup`` seconds through nginx, then ``--duration`` through nginx (the measured
run), then ``--baseline-seconds`` of the same mix straight to the platform's port (no nginx,
no TLS) on the same server: the same-run baseline.

Errors are 5xx responses and transport errors (refused, reset, timed out).  A 429 is counted
apart: the rate limits are raised for the run (one loopback address and a handful of
credentials carry what would be many clients' traffic), so a 429 means a limit the run did
not raise; its client waits the Retry-After and tries again.  Any other status than the one
each step expects is ``unexpected``.  RSS of every server process (the uvicorn supervisor and
its workers, the log worker, nginx's master and worker) is read from /proc every
``--sample-seconds``; growth is end of the measured run against end of warm-up.

Prints one JSON line per figure: ``load_kind`` (one per request kind: requests/s, p50, p99,
statuses, nginx and baseline), ``load_errors``, ``load_memory`` and ``load_mixed`` (the
summary; targets: 0 errors, memory growth < 10 %).  ``load_average`` is the 1-minute load
average before the run: on a busy machine the latencies say more about the machine.

Usage: python bench/load.py [--duration 600] [--clients 8] [--warmup 30]
       [--baseline-seconds 60] [--lenders 2] [--sample-seconds 5] [--max-cycles N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.settings import Settings
from credit_commons.demo import client_assertion
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.catalogue import commit_score
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance, postgres_schema
from served import free_port, percentile, process_tree

# The run's certificates and nginx configuration live with the tests (one copy of each).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.mtls import issue, make_ca, nginx_config

TYPE = "CreditReadinessCredential"
COMMONS = [sys.executable, "-m", "credit_commons.cli"]
TARGET_GROWTH_PCT = 10.0
TOKEN_REFRESH_S = 200.0
_REPORTED = 20  # unexpected answers printed (to stderr) per phase
KINDS = (
    "consent.request",
    "consent.approve",
    "retrieval",
    "consent.revoke",
    "log.checkpoint",
    "log.entries",
    "issuance",
    "token",
)


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# -- certificates and nginx --------------------------------------------------------------


# -- the processes -----------------------------------------------------------------------


@dataclass
class Deployment:
    base: str  # https, through nginx
    direct: str  # http, the platform's own port
    env: dict[str, str]
    ca_file: Path
    roots: dict[str, int] = field(default_factory=dict)  # role -> pid

    def pids(self) -> list[int]:
        found: list[int] = []
        for pid in self.roots.values():
            found += process_tree(pid)
        return found


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, **client: Any) -> None:
    deadline = time.monotonic() + 120  # starting `commons serve` imports a lot
    while True:
        try:
            if httpx.get(url, timeout=2, **client).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{url} did not come up:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


@contextmanager
def _process(argv: list[str], env: dict[str, str] | None, log: Path) -> Iterator[Any]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a hung process
                process.kill()
                process.wait()


@contextmanager
def deployment(tmp: Path, database_url: str, workers: int) -> Iterator[Deployment]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is not installed: scripts/ensure-system-deps.sh installs it")
    certs, work = tmp / "certs", tmp / "nginx"
    certs.mkdir()
    work.mkdir()
    ca = make_ca("Load bench CA")
    ca.write(certs, "ca")
    issue(ca, "localhost", server=True).write(certs, "server")
    api_port, tls_port = free_port(), free_port()
    base = f"https://127.0.0.1:{tls_port}"
    raised = "100000000/minute"
    limits = {f"{g}.ip": raised for g in ("registration", "consent", "issuance", "admin", "log")}
    limits |= {f"{g}.client": raised for g in ("registration", "consent", "issuance", "admin")}
    limits["operations.ip"] = raised
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")},
        "COMMONS_DATA_DIR": str(tmp / "var"),
        "COMMONS_DATABASE_URL": database_url,
        "COMMONS_PUBLIC_URL": base,
        "COMMONS_TRUSTED_PROXIES": "127.0.0.1",
        "COMMONS_CLIENT_CERT_HEADER": "x-client-cert",
        "COMMONS_RATE_LIMIT_CLIENT": raised,
        "COMMONS_RATE_LIMIT_IP": raised,
        "COMMONS_RATE_LIMITS": json.dumps(limits),
        "COMMONS_LOG_LEVEL": "WARNING",
    }
    subprocess.run([*COMMONS, "db", "upgrade"], env=env, check=True, capture_output=True)
    config = nginx_config(
        work,
        listen=tls_port,
        upstream=f"127.0.0.1:{api_port}",
        certs=certs,
        worker_connections=1024,
        access_log=False,
    )
    serve = [*COMMONS, "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(api_port)]
    with ExitStack() as stack:
        server = stack.enter_context(
            _process([*serve, "--workers", str(workers)], env, tmp / "serve.log")
        )
        worker = stack.enter_context(_process([*COMMONS, "worker"], env, tmp / "worker.log"))
        proxy = stack.enter_context(
            _process(
                [nginx, "-c", str(config), "-e", str(work / "error.log"), "-g", "daemon off;"],
                None,
                work / "stdout.log",
            )
        )
        _wait(f"http://127.0.0.1:{api_port}/readyz", server, tmp / "serve.log")
        verify = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        _wait(f"{base}/healthz", proxy, work / "error.log", verify=verify)
        yield Deployment(
            base=base,
            direct=f"http://127.0.0.1:{api_port}",
            env=env,
            ca_file=certs / "ca.crt",
            roots={"serve": server.pid, "worker": worker.pid, "nginx": proxy.pid},
        )


# -- seeding -----------------------------------------------------------------------------


@dataclass
class Actor:
    """One client's parties: its borrower, its lender, and the admin token for issuance."""

    borrower: str
    borrower_token: str
    holder_jwk: dict[str, Any]
    lender_id: str
    lender_key: PrivateKey
    admin_token: str


def _claims(borrower: str) -> dict[str, Any]:
    salt = b64url_encode(secrets.token_bytes(16))
    return {
        "enterprise": {"identity_token": borrower},
        "credit_tier": "B",
        "income_bracket": "5L-25L",
        "debt_ratio_bracket": "0.2-0.4",
        "score_commitment": commit_score(700, salt),
        "score_opening": {"score": 700, "salt": salt},
        "verification_sources": ["gstn"],
    }


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 300:
        raise SystemExit(f"seeding failed: {response.status_code} {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def seed(dep: Deployment, clients: int, lenders: int) -> list[Actor]:
    """``lenders`` lenders and one borrower with a credential per client (straight to the
    platform), then wait (at most 120 s) for the log's first checkpoint."""
    env = dep.env
    rt = Runtime.build(
        Settings(
            data_dir=Path(env["COMMONS_DATA_DIR"]),
            database_url=env["COMMONS_DATABASE_URL"],
            public_url=env["COMMONS_PUBLIC_URL"],
        )
    )
    try:
        with transaction(rt.sessions) as session:
            admin, _ = issue_admin_token(session, rt, "bench-load")
    finally:
        rt.close()
    as_admin = {"Authorization": f"Bearer {admin}"}
    actors: list[Actor] = []
    with httpx.Client(base_url=dep.direct, timeout=60) as http:
        made_lenders = []
        for i in range(lenders):
            key = PrivateKey.generate(KeyType.ED25519)
            body = {
                "name": f"Load Bank {i}",
                "jwks": {"keys": [public_key_to_jwk(key.public_key)]},
                "allowed_purposes": ["105"],
            }
            lender = _ok(http.post("/v1/admin/lenders", json=body, headers=as_admin))
            made_lenders.append((str(lender["client_id"]), key))
        for i in range(clients):
            profile = {"roles": ["business"], "profile": {"name": f"Borrower {i}"}}
            made = _ok(http.post("/v1/identities", json=profile))
            holder = public_key_to_jwk(PrivateKey.generate(KeyType.ED25519).public_key)
            borrower = str(made["identity_token"])
            credential = {
                "type": TYPE,
                "subject": borrower,
                "claims": _claims(borrower),
                "holder_jwk": holder,
            }
            _ok(http.post("/v1/credentials", json=credential, headers=as_admin))
            lender_id, key = made_lenders[i % lenders]
            actors.append(Actor(borrower, str(made["access_token"]), holder, lender_id, key, admin))
        deadline = time.monotonic() + 120
        while http.get("/v1/log/checkpoint").status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit("the log worker made no checkpoint in 120 s")
            time.sleep(0.5)
    return actors


# -- the load ----------------------------------------------------------------------------


@dataclass
class Tally:
    """What one phase saw, per request kind."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    transport: Counter[str] = field(default_factory=Counter)
    cycles: int = 0
    seconds: float = 0.0
    reported: int = 0

    def kind(self, kind: str) -> dict[str, Any]:
        done = self.latencies.get(kind, [])
        statuses = self.statuses.get(kind, Counter())
        return {
            "ok": len(done),
            "per_s": round(len(done) / self.seconds, 2) if self.seconds else 0.0,
            "p50_ms": round(1000 * statistics.median(done), 1) if done else None,
            "p99_ms": round(1000 * percentile(done, 0.99), 1) if done else None,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
        }

    def counts(self) -> dict[str, Any]:
        by_status: Counter[int] = Counter()
        for statuses in self.statuses.values():
            by_status.update(statuses)
        unexpected = sum(
            n for kind, s in self.statuses.items() for code, n in s.items() if code != _EXPECT[kind]
        )
        server = sum(v for k, v in by_status.items() if k >= 500)
        too_many = by_status.get(429, 0)
        return {
            "seconds": round(self.seconds, 1),
            "cycles": self.cycles,
            "requests": sum(by_status.values()) + sum(self.transport.values()),
            "requests_per_s": round(sum(by_status.values()) / self.seconds, 2)
            if self.seconds
            else 0.0,
            "errors": server + sum(self.transport.values()),
            "server_errors": server,
            "transport_errors": dict(self.transport),
            "rate_limited_429": too_many,
            "unexpected_4xx": unexpected - server - too_many,
            "statuses": {str(k): v for k, v in sorted(by_status.items())},
        }


_EXPECT = {
    "consent.request": 201,
    "consent.approve": 200,
    "retrieval": 200,
    "consent.revoke": 200,
    "log.checkpoint": 200,
    "log.entries": 200,
    "issuance": 201,
    "token": 200,
}


class Client:
    """One closed-loop client: one connection, one request at a time."""

    def __init__(self, http: httpx.AsyncClient, actor: Actor, tally: Tally, public: str) -> None:
        self.http, self.actor, self.tally, self.public = http, actor, tally, public
        self.token, self.token_at = "", -TOKEN_REFRESH_S

    async def step(
        self, kind: str, method: str, url: str, stop: float, **kwargs: Any
    ) -> httpx.Response | None:
        """One request; a 429 waits its Retry-After and is tried again (until ``stop``)."""
        while True:
            started = time.monotonic()
            try:
                response = await self.http.request(method, url, **kwargs)
            except httpx.TransportError as e:
                self.tally.transport[f"{kind}:{type(e).__name__}"] += 1
                return None
            elapsed = time.monotonic() - started
            self.tally.statuses[kind][response.status_code] += 1
            if response.status_code == _EXPECT[kind]:
                self.tally.latencies[kind].append(elapsed)
                return response
            if response.status_code == 429 and time.monotonic() < stop:
                await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 5.0))
                continue
            if response.status_code != 429 and self.tally.reported < _REPORTED:
                self.tally.reported += 1  # the first few, to say what went wrong
                progress(f"{kind}: {response.status_code} {response.text[:300]}")
            return None

    def _lender(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def cycle(self, n: int, stop: float) -> None:
        actor = self.actor
        if time.monotonic() - self.token_at >= TOKEN_REFRESH_S:
            form = {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": client_assertion(
                    actor.lender_id, actor.lender_key, f"{self.public}/oauth/token"
                ),
            }
            got = await self.step("token", "POST", "/oauth/token", stop, data=form)
            if got is None:
                return
            self.token, self.token_at = str(got.json()["access_token"]), time.monotonic()
        borrower = {"Authorization": f"Bearer {actor.borrower_token}"}
        request = {
            "template": "loan_underwriting",
            "borrower": actor.borrower,
            "purpose": "105",
            "consent_expiry": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
            "scopes": [{"type": TYPE, "claims": ["/income_bracket"]}],
        }
        made = await self.step(
            "consent.request", "POST", "/v1/consents", stop, json=request, headers=self._lender()
        )
        if made is not None:
            consent = str(made.json()["consent_id"])
            decision = f"/v1/borrowers/consents/{consent}"
            if await self.step(
                "consent.approve", "POST", f"{decision}/approve", stop, headers=borrower
            ):
                await self.step(
                    "retrieval",
                    "GET",
                    "/v1/lender/credentials",
                    stop,
                    params={"consent_id": consent},
                    headers=self._lender(),
                )
                await self.step(
                    "consent.revoke", "POST", f"{decision}/revoke", stop, headers=borrower
                )
        checkpoint = await self.step("log.checkpoint", "GET", "/v1/log/checkpoint", stop)
        if checkpoint is not None:
            size = int(checkpoint.text.split("\n")[1])
            window = {"start": max(0, size - 16), "end": size}
            await self.step("log.entries", "GET", "/v1/log/entries", stop, params=window)
        if n % 2 == 1:
            credential = {
                "type": TYPE,
                "subject": actor.borrower,
                "claims": _claims(actor.borrower),
                "holder_jwk": actor.holder_jwk,
            }
            admin = {"Authorization": f"Bearer {actor.admin_token}"}
            await self.step(
                "issuance", "POST", "/v1/credentials", stop, json=credential, headers=admin
            )


def run_phase(
    base: str,
    verify: ssl.SSLContext | bool,
    actors: list[Actor],
    seconds: float,
    public: str,
    max_cycles: int | None = None,
) -> Tally:
    """Every actor's client cycling until ``seconds`` are over (a cycle in progress ends)
    or, with ``max_cycles``, until it has done that many cycles, whichever comes first."""

    async def one(actor: Actor, tally: Tally, stop: float) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=base, verify=verify, timeout=60, limits=limits
        ) as http:
            client = Client(http, actor, tally, public)
            n = 0
            while time.monotonic() < stop and (max_cycles is None or n < max_cycles):
                await client.cycle(n, stop)
                n += 1
                tally.cycles += 1

    async def all_clients() -> Tally:
        tally = Tally()
        started = time.monotonic()
        stop = started + seconds
        await asyncio.gather(*(one(actor, tally, stop) for actor in actors))
        tally.seconds = time.monotonic() - started
        return tally

    return asyncio.run(all_clients())


# -- memory ------------------------------------------------------------------------------


def rss_kib(pids: list[int]) -> dict[int, int]:
    """Resident set size (KiB) of each of ``pids`` still alive."""
    found = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[pid] = int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


class Sampler:
    """The servers' total RSS every ``interval`` seconds, in a thread, labelled by phase."""

    def __init__(self, dep: Deployment, interval: float) -> None:
        self.dep, self.interval = dep, interval
        self.phase = "seed"
        self.samples: list[tuple[str, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        total = sum(rss_kib(self.dep.pids()).values())
        self.samples.append((self.phase, time.monotonic(), total))
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def of(self, phase: str) -> list[int]:
        return [kib for p, _, kib in self.samples if p == phase]


# -- the run -----------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> bool:
    load_average = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        postgres_schema() as url,
        deployment(Path(tmp_name), url, args.workers) as dep,
    ):
        progress(f"servers up: {dep.roots}; seeding")
        actors = seed(dep, args.clients, args.lenders)
        verify = ssl.create_default_context(cafile=str(dep.ca_file))
        with Sampler(dep, args.sample_seconds) as sampler:
            sampler.phase = "warmup"
            warm = run_phase(dep.base, verify, actors, args.warmup, dep.base, args.max_cycles)
            progress(f"warm-up: {warm.counts()}")
            sampler.phase = "run"
            rss_start = sampler.sample()
            found = run_phase(dep.base, verify, actors, args.duration, dep.base, args.max_cycles)
            rss_end = sampler.sample()
            sampler.phase = "baseline"
            progress(f"run: {found.counts()}")
            baseline = run_phase(
                dep.direct, False, actors, args.baseline_seconds, dep.base, args.max_cycles
            )
            progress(f"baseline: {baseline.counts()}")
            per_process = {
                role: sum(rss_kib(process_tree(pid)).values()) for role, pid in dep.roots.items()
            }
        during = sampler.of("run")
    for kind in KINDS:
        emit(
            figure="load_kind",
            kind=kind,
            through="nginx (TLS) -> commons serve --workers 2",
            **found.kind(kind),
            baseline_direct=baseline.kind(kind),
        )
    counts, base_counts = found.counts(), baseline.counts()
    emit(
        figure="load_errors",
        **counts,
        baseline_direct=base_counts,
        errors_are="5xx responses and transport errors (refused, reset, timed out)",
        rate_limited_are="429s: limits the run did not raise; the client waits Retry-After",
    )
    growth = 100.0 * (rss_end - rss_start) / rss_start
    emit(
        figure="load_memory",
        processes="uvicorn supervisor + workers, commons worker, nginx master + worker",
        rss_mib_warmup_end=round(rss_start / 1024, 1),
        rss_mib_end=round(rss_end / 1024, 1),
        rss_mib_max_during=round(max(during) / 1024, 1) if during else None,
        samples=len(during),
        sample_seconds=args.sample_seconds,
        growth_pct=round(growth, 2),
        target_growth_pct=TARGET_GROWTH_PCT,
        rss_mib_by_role_after_baseline={k: round(v / 1024, 1) for k, v in per_process.items()},
    )
    meets = counts["errors"] == 0 and counts["unexpected_4xx"] == 0 and growth < TARGET_GROWTH_PCT
    emit(
        figure="load_mixed",
        backend="postgresql",
        load_average=round(load_average, 2),
        cpus=os.cpu_count(),
        server=f"commons serve --no-worker --workers {args.workers} + commons worker, "
        "behind nginx (deploy/nginx/commons-mtls.conf.template, TLS on loopback)",
        clients=args.clients,
        lenders=args.lenders,
        warmup_s=args.warmup,
        duration_s=args.duration,
        baseline_s=args.baseline_seconds,
        max_cycles=args.max_cycles,
        requests=counts["requests"],
        requests_per_s=counts["requests_per_s"],
        cycles=counts["cycles"],
        errors=counts["errors"],
        rate_limited_429=counts["rate_limited_429"],
        unexpected_4xx=counts["unexpected_4xx"],
        p99_ms={kind: found.kind(kind)["p99_ms"] for kind in KINDS},
        growth_pct=round(growth, 2),
        baseline="the same mix straight to the platform's port (no nginx, no TLS), same run",
        baseline_requests_per_s=base_counts["requests_per_s"],
        target="0 errors, memory growth < 10 %",
        meets_target=meets,
    )
    return meets


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="measured run (s)")
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--baseline-seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--lenders", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument(
        "--max-cycles", type=int, default=None, help="per client and phase (tests: a fixed count)"
    )
    args = parser.parse_args()
    if args.clients < 1 or args.lenders < 1 or args.duration <= 0:
        parser.error("--clients, --lenders and --duration must be positive")
    bench(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
