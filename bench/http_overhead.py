"""The app's CPU per HTTP request, in-process: what every route pays for the middleware and
framework stack, and what the verifier's routes cost on top.

``verifier.py`` measures the whole server (uvicorn, its HTTP parser, the loopback and the
client threads on the same machine); this measures the ASGI app alone, so that a change to
the app's per-request work shows in microseconds without the noise of a shared machine.
The app is the one ``commons serve`` runs (``create_app``, its lifespan started and its
start-up heap frozen, SQLite under a temporary directory, limits raised as ``verifier.py``
raises them), called directly as an ASGI app from one event loop, one request after
another: a scope as uvicorn builds it for an httpx client's request (the same headers), the
body in one message.  CPU is the process's (``time.process_time``: the event loop's thread and the
worker threads sync handlers run on), per request, over ``--requests`` requests.

Figures (one JSON line each):

* ``app_cpu_healthz`` — ``GET /healthz``: the whole stack for the simplest route (the
  middleware, the routing to it, its handler and the response).
* ``app_cpu_verifier`` — per phase of ``verifier.py``'s HTTP transaction: ``create``
  (``POST /v1/verifier/requests``), ``response`` (the wallet's ``POST
  /v1/verifier/responses/{id}``: the decision, seed 002's ten steps) and ``decision``
  (``POST …/decision``).

Each with ``loop_us``, the event loop thread's share (the rest ran on worker threads).
Baseline, same run: a bare Starlette app with one async route answering the same JSON as
``/healthz``, no middleware, called the same way: the framework's own floor.  The figures
are medians of ``--rounds`` rounds, after a round that warms up.

``--cprofile PREFIX`` writes a cProfile of the event loop thread per phase (first round
measured), timed by that thread's CPU clock.

Usage: python bench/http_overhead.py [--requests 2000] [--holders 20] [--rounds 3]
       [--cprofile PREFIX]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from credit_commons import __version__
from credit_commons.core.db import transaction
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance
from verifier import (
    REDIRECT,
    Holder,
    Wallet,
    _http_holders,
    _lender,
    _platform_key,
    dcql_query,
    response_code,
)

BASE = "http://127.0.0.1:8000"
CLIENT = ("127.0.0.1", 50000)
# What httpx 0.28 sends on a keep-alive connection, as uvicorn hands it to the app.
HTTPX_HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"connection", b"keep-alive"),
    (b"user-agent", b"python-httpx/0.28.1"),
]

ASGIApp = Callable[..., Awaitable[None]]
Call = tuple[str, str, list[tuple[bytes, bytes]], bytes]  # method, path, extra headers, body
JSON = (b"content-type", b"application/json")
FORM = (b"content-type", b"application/x-www-form-urlencoded")


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def scope_of(method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> dict:
    target, _, query = path.partition("?")
    all_headers = [*HTTPX_HEADERS, *headers]
    if body or method == "POST":
        all_headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": CLIENT,
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "headers": all_headers,
        "state": {},
    }


async def call(app: ASGIApp, item: Call) -> tuple[int, bytes]:
    """One request through the ASGI app, as uvicorn would make it; its status and body."""
    method, path, headers, body = item
    scope = scope_of(method, path, headers, body)
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # a disconnect never comes
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


@dataclass
class Spent:
    """What a batch of calls cost: the process's CPU seconds (every thread), the event
    loop thread's alone, and the bodies answered."""

    cpu: float
    loop_cpu: float
    bodies: list[bytes]


async def batch(app: ASGIApp, items: Sequence[Call], expect: int, profile: str = "") -> Spent:
    """Every call in turn; raises AssertionError on an unexpected status.  ``profile``: a
    file for a cProfile of the event loop thread (its own CPU time as the clock)."""
    bodies = []
    profiler = cProfile.Profile(time.thread_time) if profile else None
    if profiler is not None:
        profiler.enable()
    cpu, loop = time.process_time(), time.thread_time()
    for item in items:
        status, body = await call(app, item)
        if status != expect:
            raise AssertionError(f"{item[0]} {item[1]}: {status} {body[:300]!r}")
        bodies.append(body)
    spent = Spent(time.process_time() - cpu, time.thread_time() - loop, bodies)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    return spent


def bare_app() -> Starlette:
    answer = {"status": "ok", "version": __version__}

    async def healthz(_request: Any) -> JSONResponse:
        return JSONResponse(answer)

    return Starlette(routes=[Route("/healthz", healthz)])


def settings_env(tmp: Path) -> dict[str, str]:
    limit = "100000000/minute"
    return {
        "COMMONS_DATA_DIR": str(tmp / "var"),
        "COMMONS_PUBLIC_URL": BASE,
        "COMMONS_RATE_LIMIT_CLIENT": limit,
        "COMMONS_RATE_LIMIT_IP": limit,
        "COMMONS_RATE_LIMITS": json.dumps(
            {
                f"{group}.{kind}": limit
                for group in ("verifier", "issuance", "admin", "registration", "well-known")
                for kind in ("ip", "client")
            }
            | {"operations.ip": limit, "other.ip": limit}
        ),
        "COMMONS_LOG_LEVEL": "WARNING",
    }


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(settings_env(Path(tmp)))
        settings = Settings()
        runtime = Runtime.build(settings)
        upgrade(runtime.engine)
        app = create_app(settings, runtime=runtime, freeze_heap=True)  # as commons serve
        with TestClient(app, base_url=BASE, client=CLIENT) as http:
            with transaction(runtime.sessions) as session:
                token, _ = issue_admin_token(session, runtime, "bench")
            admin = {"Authorization": f"Bearer {token}"}
            holders = _http_holders(http, admin, args.holders)
            lender = _lender(http, BASE, admin)
            wallet = Wallet(_platform_key(http), int(time.time()))
            progress(f"{len(holders)} holders; measuring")
            report(args, measure(http.portal, app, args, Phases(holders, lender, wallet)))


PHASES = ("bare", "healthz", "create", "response", "decision")


@dataclass
class Figures:
    """Per phase, each round's CPU µs per request: the process's and the event loop's."""

    cpu: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in PHASES})
    loop: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in PHASES})

    def add(self, phase: str, spent: Spent, n: int, keep: bool) -> None:
        if keep:
            self.cpu[phase].append(1e6 * spent.cpu / n)
            self.loop[phase].append(1e6 * spent.loop_cpu / n)


class Phases:
    """The calls of each phase, made as ``verifier.py``'s HTTP transaction makes them."""

    def __init__(self, holders: list[Holder], lender: dict[str, str], wallet: Wallet) -> None:
        self.holders, self.wallet = holders, wallet
        self.auth = [(b"authorization", lender["Authorization"].encode())]
        self.create_body = json.dumps(
            {
                "dcql_query": dcql_query(),
                "client_id_prefix": "redirect_uri",
                "response_mode": "direct_post",
                "redirect_uri": REDIRECT,
            }
        ).encode()

    def creates(self, n: int) -> list[Call]:
        return [("POST", "/v1/verifier/requests", [*self.auth, JSON], self.create_body)] * n

    def responses(self, made: list[bytes]) -> tuple[list[Call], list[str]]:
        forms, ids = [], []
        for i, raw in enumerate(made):
            created = json.loads(raw)
            request = self.wallet.read(created, None)
            answer = self.wallet.answer(self.holders[i % len(self.holders)], request)
            path = urlsplit(request.response_uri).path
            forms.append(("POST", path, [FORM], urlencode(answer).encode()))
            ids.append(created["id"])
        return forms, ids

    def decisions(self, ids: list[str], answered: list[bytes]) -> list[Call]:
        calls: list[Call] = []
        for tid, raw in zip(ids, answered, strict=True):
            code = response_code(json.loads(raw)["redirect_uri"])
            body = json.dumps({"response_code": code}).encode()
            path = f"/v1/verifier/requests/{tid}/decision"
            calls.append(("POST", path, [*self.auth, JSON], body))
        return calls


def measure(portal: Any, app: ASGIApp, args: argparse.Namespace, phases: Phases) -> Figures:
    n, figures, bare = args.requests, Figures(), bare_app()
    health: Call = ("GET", "/healthz", [], b"")

    def run(phase: str, target: ASGIApp, calls: list[Call], expect: int, keep: bool) -> Spent:
        first = keep and not figures.cpu[phase]
        profile = f"{args.cprofile}.{phase}" if args.cprofile and first else ""
        spent: Spent = portal.call(batch, target, calls, expect, profile)
        figures.add(phase, spent, n, keep)
        return spent

    for r in range(args.rounds + 1):  # the first round warms up
        keep = r > 0
        run("bare", bare, [health] * n, 200, keep)
        run("healthz", app, [health] * n, 200, keep)
        made = run("create", app, phases.creates(n), 201, keep).bodies
        forms, ids = phases.responses(made)
        answered = run("response", app, forms, 200, keep).bodies
        run("decision", app, phases.decisions(ids, answered), 200, keep)
        if keep:
            progress(
                f"round {r}: "
                + ", ".join(
                    f"{k} {figures.cpu[k][-1]:.0f} us (loop {figures.loop[k][-1]:.0f})"
                    for k in PHASES
                )
            )
    return figures


def report(args: argparse.Namespace, figures: Figures) -> None:
    def median(values: list[float]) -> float:
        return round(statistics.median(values), 1)

    common = {
        "requests": args.requests,
        "rounds": args.rounds,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "baseline": "bare Starlette app, one async route answering /healthz's JSON, no "
        "middleware, called the same way in the same run; CPU us per request",
        "baseline_us": median(figures.cpu["bare"]),
        "note": "cpu_us: the process's CPU per request (the event loop and the worker "
        "threads), median of the rounds; loop_us: the event loop thread's share",
    }
    emit(
        figure="app_cpu_healthz",
        **common,
        cpu_us=median(figures.cpu["healthz"]),
        loop_us=median(figures.loop["healthz"]),
        round_us=[round(x, 1) for x in figures.cpu["healthz"]],
    )
    verifier = ("create", "response", "decision")
    emit(
        figure="app_cpu_verifier",
        **common,
        cpu_us={k: median(figures.cpu[k]) for k in verifier},
        loop_us={k: median(figures.loop[k]) for k in verifier},
        round_us={k: [round(x, 1) for x in figures.cpu[k]] for k in verifier},
    )


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--holders", type=int, default=20)
    parser.add_argument(
        "--cprofile", default="", help="a file prefix: cProfile of the event loop per phase"
    )
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
