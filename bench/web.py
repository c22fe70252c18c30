"""Console figures (issue 17): the server time and the size of every page of the web console
with 1,000,000 consents in the database.

Prints one JSON line per figure.

* ``web_page`` — one per page: every ``GET`` route of the console that exists when the
  bench runs, found in the app's routes (:func:`console_pages`: the routes whose handler
  lives in ``credit_commons.web``), requested ``--requests`` times (after ``--warmup``)
  one after another through a real ``commons serve`` (one worker, loopback), signed in as
  the role its area is for (``/borrower``: the borrower with ``--borrower-consents``
  consents; ``/lender``: the lender with about a fifth of all consents; ``/agent``: a field
  agent the borrower delegated to; ``/issuer``: an administrator; anything else: nobody
  signed in).  Server time is the response's ``Server-Timing: app;dur=`` (the console's
  outermost middleware, ``web/headers.py``): p50/p95/p99.  Bytes transferred: the
  response's status line, headers and body as sent (the server does not compress), and the
  first visit's weight — the page and every ``/static/`` asset it links.  Targets: p95 ≤
  50 ms, first visit ≤ 100 KB.  Beside the server time, the server's CPU per request
  (``server_cpu_ms``): the user and system CPU the server processes spent over the recorded
  requests (``/proc``, in clock ticks), divided by their number — the requests come one at
  a time and the server runs no log worker, so it is what the page costs the server: a
  loaded machine stretches the server time, hardly this.  Path parameters are filled from
  the seeded people (:func:`parameter`): a page whose parameter the bench cannot supply,
  or that does not answer 200 (a redirect, for a handler that does not return a page),
  **fails the run**: the bench never skips a page.
* ``web_baseline`` — the console's stylesheet under ``/static/`` (the whole middleware
  stack, no database, no template), the same number of times in the same run: the floor of
  any page's server time.

Usage: python bench/web.py [--consents 1000000] [--borrower-consents 300] [--lenders 50]
       [--requests 200] [--warmup 10] [--backend sqlite|postgresql] [--no-cache]
       [--pages REGEX] [--seed-only]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from credit_commons.consent import requests as consent_requests
from credit_commons.consent.assisted import assist, confirm_assisted
from credit_commons.consent.model import ConsentRequest
from credit_commons.consent.notify import read_codes
from credit_commons.core.db import transaction
from credit_commons.gateway.app import create_app
from credit_commons.identity import Principal
from credit_commons.identity.auth import issue_admin_token, issue_token
from credit_commons.issuer import oid4vci
from credit_commons.ledger import service as log_service
from credit_commons.lenders import issue_console_token
from credit_commons.runtime import Runtime
from credit_commons.verifier import service as verifier_service
from credit_commons.web.headers import SERVER_TIMING, server_timing
from credit_commons.web.lender_proofs import proof_request
from credit_commons.zk import register_dev_statements
from own_state import forget_configured_instance
from served import commons_server, cpu_seconds, free_port, percentile, process_tree
from web_seed import (
    LENDERS,
    TYPE,
    World,
    platform_env,
    progress,
    readiness_claims,
    seeded,
    settings_of,
)

__all__ = ["Page", "console_pages", "parameter"]

TARGET_P95_MS = 50.0
TARGET_BYTES = 100 * 1024
AREAS = {"/borrower": "borrower", "/agent": "agent", "/lender": "lender", "/issuer": "issuer"}
"""Where each signed-in role's pages live (docs/console.md, "Areas"); every other console
page is public."""
_ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


# -- the pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A console ``GET`` route: its path template, the role it is for (None: public), its
    path parameters and its required and optional query parameters."""

    path: str
    role: str | None
    path_params: tuple[str, ...]
    required_query: tuple[str, ...]
    optional_query: tuple[str, ...]


def role_of(path: str) -> str | None:
    """The role whose area ``path`` is in (None: a public page)."""
    for prefix, role in AREAS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return role
    return None


def _params(dependant: Dependant) -> tuple[list[Any], list[Any]]:
    # The path and query parameters of a route and of every dependency it has.
    path, query = list(dependant.path_params), list(dependant.query_params)
    for sub in dependant.dependencies:
        more_path, more_query = _params(sub)
        path += more_path
        query += more_query
    return path, query


def _routes(routes: list[Any]) -> Iterator[tuple[str, Any]]:
    # (full path, route) of every route, those of included routers too (FastAPI keeps an
    # included router as one entry whose routes it resolves with their prefixes).
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            yield getattr(route, "path", ""), route
            continue
        for context in contexts():
            yield context.path, context.original_route


def console_pages(app: FastAPI) -> list[Page]:
    """Every ``GET`` route of the console in ``app``: the routes whose handler is in the
    ``credit_commons.web`` package, in routing order."""
    pages = []
    for path, route in _routes(list(app.routes)):
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        if not str(getattr(route.endpoint, "__module__", "")).startswith("credit_commons.web"):
            continue
        path_params, query_params = _params(route.dependant)
        pages.append(
            Page(
                path=path,
                role=role_of(path),
                path_params=tuple(dict.fromkeys(p.name for p in path_params)),
                required_query=tuple(q.name for q in query_params if q.field_info.is_required()),
                optional_query=tuple(
                    q.name for q in query_params if not q.field_info.is_required()
                ),
            )
        )
    return pages


class Unmeasurable(Exception):
    """A page the bench cannot request: it fails the run, naming the page and why."""


def _first(found: dict[str, list[str]], status: str, what: str) -> str:
    ids = found.get(status) or []
    if not ids:
        raise Unmeasurable(f"the seed has no {status} {what}")
    return ids[0]


@dataclass(frozen=True)
class Fresh:
    """What the bench makes at each run, beside the seed, through the services: things that
    expire (an OID4VCI offer, a one-time code), and the log's size."""

    offer: str
    preparing: str
    """A request of the measured lender that the agent is preparing with the borrower (a
    code sent)."""
    assisted: str
    """A consent the agent confirmed with the borrower's code."""
    log_size: int
    proof: str = ""
    """A pending OpenID4VP request of the measured lender for a proof that the score is at
    least 650, as the lender's proof page makes it."""


def _assisted(rt: Runtime, world: World, *, confirm: bool) -> str:
    # A request of the measured lender to the borrower, prepared by the agent (a code sent
    # through the notification channel) and, with ``confirm``, confirmed with that code.
    lender = SimpleNamespace(client_id=world.lender, purposes=frozenset({"105"}))
    body = ConsentRequest.model_validate(
        {
            "template": "loan_underwriting",
            "borrower": world.borrower,
            "purpose": "105",
            "consent_expiry": (rt.clock.now() + timedelta(days=14)).isoformat(),
            "scopes": [{"type": TYPE, "claims": ["/income_bracket", "/debt_ratio_bracket"]}],
        }
    )
    agent = Principal(subject=world.agent, role="identity")
    with transaction(rt.sessions) as session:
        consent_id = consent_requests.request_consent(session, rt, lender, body).consent_id
    with transaction(rt.sessions) as session:
        assist(session, rt, agent, consent_id)
    if confirm:
        sent = [c for c in read_codes(rt, world.borrower) if c.consent_id == consent_id]
        with transaction(rt.sessions) as session:
            confirm_assisted(session, rt, agent, consent_id, sent[-1].code)
    return consent_id


def fresh_things(rt: Runtime, world: World) -> Fresh:
    """An OID4VCI offer of a CreditReadinessCredential to the borrower (as the issuer desk
    makes it), the lender's request for a score proof (as its proof page makes it), two
    assisted requests (one being prepared, one confirmed: as the agent's
    pages make them) and the size of the log's latest checkpoint.  Each run adds them to
    the seed."""
    preparing = _assisted(rt, world, confirm=False)
    assisted = _assisted(rt, world, confirm=True)
    admin = Principal(subject="admin:bench", role="admin")
    with transaction(rt.sessions) as session:
        offer = oid4vci.create_offer(
            session,
            rt,
            admin,
            type_name=TYPE,
            subject_token=world.borrower,
            claims=readiness_claims(world.borrower),
            with_tx_code=True,
        )
    with transaction(rt.sessions) as session:
        # The dev statements outside production (registered once; a no-op after).
        register_dev_statements(session, rt, actor=rt.operator_actor("bench"))
        proof = verifier_service.create_request(session, rt, world.lender, proof_request(650))
    with transaction(rt.read_sessions) as session:
        row = log_service.latest_checkpoint(session)
    return Fresh(
        offer=offer.offer_id,
        preparing=preparing,
        assisted=assisted,
        log_size=0 if row is None else int(row.size),
        proof=proof.id,
    )


def parameter(page: Page, name: str, world: World, fresh: Fresh) -> str:
    """The value of path parameter ``name`` of ``page`` for the seeded ``world``: each
    role's own things (the borrower's active consent, the lender's, the borrower's
    credential…).  Raises :class:`Unmeasurable` for a parameter the bench does not know."""
    role = page.role
    if name == "offer_id" and role == "issuer":
        return fresh.offer
    if page.path.startswith("/lang/") and name == "code":
        return "en"  # the cookie it sets keeps the next pages in English
    if name == "consent_id" and page.path.startswith("/borrower/assisted/"):
        return fresh.preparing  # what a field agent prepares with the borrower
    if name == "consent_id" and role == "borrower":
        return _first(world.borrower_consents, "ACTIVE", "consent of the borrower")
    if name == "consent_id" and role == "agent":
        # Preparing and confirming are for a pending request, the last step for the consent
        # the agent confirmed.
        return fresh.assisted if page.path.endswith("/done") else fresh.preparing
    if name == "consent_id" and role == "lender":
        return _first(world.lender_consents, "ACTIVE", "consent of the lender")
    if name == "event_id" and role == "lender":
        if not world.lender_access_events:
            raise Unmeasurable("the seed has no access event of the lender")
        return world.lender_access_events[0]
    if name == "credential_id" and role == "issuer":
        return world.credentials[0]
    if name == "ref" and role == "agent":
        if not world.agent_delegation:
            raise Unmeasurable("the seed has no delegation to the agent (seed it again)")
        return world.agent_delegation
    if name == "transaction_id" and role == "lender":
        if not fresh.proof:
            raise Unmeasurable("no proof request of the lender was made")
        return fresh.proof
    raise Unmeasurable(f"no value for the path parameter {name!r} of {page.path} ({role})")


LOOKUPS = ("index", "event", "q", "type", "template", "tier")
"""Optional query parameters that make a page look something up or build something (the
log explorer's entry by position and receipt by event id, the issuer desk's search by
borrower and form of a credential type, the lender's request from a template and discovery
by tier): such a page is measured bare and with them."""


def lookup(page: Page, name: str, world: World, fresh: Fresh) -> str:
    """The value of lookup parameter ``name`` (:data:`LOOKUPS`): the middle of the log, an
    access event of the measured borrower, the borrower's identity token, the credential
    type.  Raises :class:`Unmeasurable`."""
    if name == "index":
        if fresh.log_size == 0:
            raise Unmeasurable("the seed's log is empty")
        return str(fresh.log_size // 2)
    if name == "event" and world.lender_access_events:
        return world.lender_access_events[0]
    if name == "q":
        return world.borrower
    if name == "type":
        return TYPE
    if name == "template":
        return "loan_underwriting"
    if name == "tier":
        return "B"
    raise Unmeasurable(f"no value for the query parameter {name!r} of {page.path}")


def urls_of(page: Page, world: World, fresh: Fresh) -> list[str]:
    """The URLs the bench requests for ``page``: the page, and the page with each lookup
    parameter it takes.  Raises :class:`Unmeasurable`."""
    if page.required_query:
        raise Unmeasurable(f"{page.path} needs query parameters {list(page.required_query)}")
    path = page.path
    for name in page.path_params:
        path = path.replace("{" + name + "}", parameter(page, name, world, fresh))
    found = [path]
    for name in page.optional_query:
        if name in LOOKUPS:
            found.append(f"{path}?{name}={lookup(page, name, world, fresh)}")
    return found


# -- signing in --------------------------------------------------------------------------


def _sign_in_with_platform_token(http: httpx.Client, token: str, role: str) -> None:
    form = http.get("/signin")
    found = _CSRF.search(form.text)
    if form.status_code != 200 or found is None:
        raise Unmeasurable(f"/signin answered {form.status_code} without a CSRF token")
    done = http.post(
        "/signin", data={"token": token, "role": role, "next": "/", "csrf_token": found.group(1)}
    )
    if done.status_code != 303:
        raise Unmeasurable(f"signing in as {role} answered {done.status_code}")


def _sign_in_lender(http: httpx.Client, rt: Runtime, world: World) -> None:
    admin = Principal(subject="admin:bench", role="admin")
    with transaction(rt.sessions) as session:
        issued = issue_console_token(session, rt, admin, world.lender, label="bench")
    form = http.get("/signin/lender")
    found = _CSRF.search(form.text)
    if form.status_code != 200 or found is None:
        raise Unmeasurable(f"/signin/lender answered {form.status_code} without a CSRF token")
    done = http.post(
        "/signin/lender",
        data={"token": issued.token, "next": "/lender", "csrf_token": found.group(1)},
    )
    if done.status_code != 303:
        raise Unmeasurable(f"signing in as the lender answered {done.status_code}")


def sign_in(http: httpx.Client, rt: Runtime, role: str | None, world: World) -> None:
    """Sign ``http``'s cookie jar in as ``role`` (nothing for a public page), with a token
    issued now in-process: an identity's for the borrower and the agent, an administrator's
    for the issuer desk, a lender console token for the lender."""
    if role is None:
        return
    if role == "lender":
        _sign_in_lender(http, rt, world)
        return
    with transaction(rt.sessions) as session:
        if role == "issuer":
            token, _ = issue_admin_token(session, rt, "bench")
        elif role in ("borrower", "agent"):
            who = world.borrower if role == "borrower" else world.agent
            token, _ = issue_token(session, rt, who, "identity")
        else:
            raise Unmeasurable(f"no way to sign in as {role!r}")
    _sign_in_with_platform_token(http, token, role)


# -- measuring ---------------------------------------------------------------------------


def _wire_bytes(response: httpx.Response) -> int:
    """The response as sent over HTTP/1.1: status line, headers, blank line, body."""
    head = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n")
    head += sum(len(k) + len(v) + 4 for k, v in response.headers.raw) + 2
    return head + response.num_bytes_downloaded


def measure(
    http: httpx.Client,
    url: str,
    page: Page | None,
    requests: int,
    warmup: int,
    server: list[int] | None = None,
) -> dict[str, Any]:
    """``requests`` GETs of ``url`` one after another (after ``warmup`` unrecorded): server
    times in ms, the server's CPU ms per recorded request (the processes ``server``, when
    given), the last response's bytes and its linked assets.  Raises
    :class:`Unmeasurable` for an answer that is not the page."""
    times: list[float] = []
    response: httpx.Response | None = None
    cpu = 0.0
    for i in range(warmup + requests):
        if i == warmup:
            cpu = sum(map(cpu_seconds, server or []))
        response = http.get(url)
        _check(response, url, page)
        value = server_timing(response.headers.get(SERVER_TIMING, ""))
        if value is None:
            raise Unmeasurable(f"{url}: no Server-Timing header")
        if i >= warmup:
            times.append(value)
    assert response is not None
    cpu = sum(map(cpu_seconds, server or [])) - cpu
    assets = sorted(set(_ASSET.findall(response.text))) if _is_html(response) else []
    asset_bytes = sum(_wire_bytes(http.get(a)) for a in assets)
    return {
        "requests": requests,
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(percentile(times, 0.95), 3),
        "p99_ms": round(percentile(times, 0.99), 3),
        "max_ms": round(max(times), 3),
        "server_cpu_ms": round(1000 * cpu / requests, 3) if server else None,
        "status": response.status_code,
        "bytes": _wire_bytes(response),
        "body_bytes": response.num_bytes_downloaded,
        "content_encoding": response.headers.get("content-encoding", "identity"),
        "assets": assets,
        "first_visit_bytes": _wire_bytes(response) + asset_bytes,
    }


def _is_html(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/html")


def _check(response: httpx.Response, url: str, page: Page | None) -> None:
    # Every page must answer 200: a redirect (to sign in, or from a page that wants another
    # state) or an error is not the page.  The language switch is a redirect by design.
    if response.status_code == 200:
        return
    location = response.headers.get("location", "")
    if page is not None and page.path.startswith("/lang/") and response.status_code == 303:
        return
    raise Unmeasurable(f"{url} answered {response.status_code} {location}".rstrip())


@contextmanager
def _client(base: str) -> Iterator[httpx.Client]:
    headers = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "en"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        yield http


def run(args: argparse.Namespace) -> int:
    """Seed (or reuse the cached seed), serve, measure every page; the exit status is 1 when
    a page could not be measured."""
    load = os.getloadavg()
    with (
        tempfile.TemporaryDirectory() as tmp,
        seeded(
            args.consents,
            args.borrower_consents,
            lenders=args.lenders,
            backend=args.backend,
            cache=not args.no_cache,
            scratch=Path(tmp),
        ) as seed,
    ):
        if args.seed_only:
            return 0
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        rt = Runtime.build(settings_of(seed.values, base))
        try:
            pages = console_pages(create_app(rt.settings, runtime=rt))
            chosen = [p for p in pages if re.search(args.pages, p.path)]
            progress(f"{len(pages)} console pages found, {len(chosen)} measured")
            fresh = fresh_things(rt, seed.world)
            urls = {p: urls_of(p, seed.world, fresh) for p in chosen}  # fails before serving
            with commons_server(platform_env(seed.values, base), port, workers=1) as pid:
                server = process_tree(pid)
                failed = _measure_all(args, rt, base, seed.world, urls, load, server)
        finally:
            rt.close()
    return 1 if failed else 0


def _measure_all(
    args: argparse.Namespace,
    rt: Runtime,
    base: str,
    world: World,
    urls: dict[Page, list[str]],
    load: tuple[float, float, float],
    server: list[int],
) -> bool:
    common = {
        "backend": args.backend,
        "consents": args.consents,
        "borrower_consents": args.borrower_consents,
        "server": "commons serve (uvicorn, one worker, loopback)",
        "load_average_at_start": [round(x, 2) for x in load],
        "cpus": os.cpu_count(),
    }
    with _client(base) as http:
        home = http.get("/")
        css = next(
            (a for a in _ASSET.findall(home.text) if a.endswith(".css") or ".css?" in a), None
        )
        if css is None:
            raise Unmeasurable("the home page links no stylesheet under /static/")
        floor = measure(http, css, None, args.requests, args.warmup, server)
    emit(
        figure="web_baseline",
        path=css,
        what="the console's stylesheet (no database, no template)",
        **floor,
        **common,
    )
    failed = False
    by_role: dict[str | None, list[Page]] = {}
    for page in urls:
        by_role.setdefault(page.role, []).append(page)
    for role, pages in by_role.items():
        with _client(base) as http:
            try:
                sign_in(http, rt, role, world)
            except Unmeasurable as e:
                failed = True
                for page in pages:
                    emit(
                        figure="web_page",
                        page=page.path,
                        role=role,
                        error=str(e),
                        meets_target=False,
                        **common,
                    )
                continue
            for page in pages:
                for url in urls[page]:
                    failed |= not _one(args, http, page, url, floor, common, server)
    return failed


def _one(
    args: argparse.Namespace,
    http: httpx.Client,
    page: Page,
    url: str,
    floor: dict[str, Any],
    common: dict[str, Any],
    server: list[int],
) -> bool:
    """Measure ``url`` of ``page`` and print its figure; whether it could be measured."""
    role = page.role or "public"
    started = time.perf_counter()
    try:
        found = measure(http, url, page, args.requests, args.warmup, server)
    except Unmeasurable as e:
        emit(
            figure="web_page",
            page=page.path,
            url=url,
            role=role,
            error=str(e),
            meets_target=False,
            **common,
        )
        return False
    meets = found["p95_ms"] <= TARGET_P95_MS and found["first_visit_bytes"] <= TARGET_BYTES
    emit(
        figure="web_page",
        page=page.path,
        url=url,
        role=role,
        **found,
        target_p95_ms=TARGET_P95_MS,
        target_bytes=TARGET_BYTES,
        meets_target=meets,
        baseline="the console's stylesheet, same server and run",
        baseline_p95_ms=floor["p95_ms"],
        baseline_server_cpu_ms=floor["server_cpu_ms"],
        wall_s=round(time.perf_counter() - started, 1),
        **common,
    )
    return True


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consents", type=int, default=1_000_000)
    parser.add_argument("--borrower-consents", type=int, default=300)
    parser.add_argument("--lenders", type=int, default=LENDERS)
    parser.add_argument("--requests", type=int, default=200, help="per page, after the warm-up")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--no-cache", action="store_true", help="seed afresh in a temporary directory"
    )
    parser.add_argument("--pages", default="", help="measure only the pages whose path matches")
    parser.add_argument(
        "--seed-only", action="store_true", help="build the cached seed, measure nothing"
    )
    args = parser.parse_args()
    try:
        return run(args)
    except Unmeasurable as e:
        print(f"bench/web.py: a page cannot be measured: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
