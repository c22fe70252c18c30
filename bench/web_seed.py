"""The database ``bench/web.py`` measures the console on: a platform with ``--consents``
consents, and the people whose pages are measured.

Two parts, each written the way the platform writes it:

* **The people** (``World``), through the HTTP API of a real ``commons serve``: lenders
  (registered by an administrator, tokens by OAuth client credentials), the borrower whose
  pages are measured (an identity with a credential, and ``--borrower-consents`` consents
  from ten lenders, decided through the borrower API — approved, rejected, paused,
  revoked — fetched by the lenders, a fetch after a revocation refused), and a field agent
  the borrower delegated to.
* **The crowd**, in-process in bulk: the other consents, of ``consents // 5`` other
  borrowers, from the same lenders (Zipf: the first lender, whose pages are measured, has
  about a fifth of them), over the past year, in a realistic mix of statuses (30 % active,
  5 % paused, 8 % revoked, 10 % rejected, 12 % pending, 35 % expired).  Each row is what
  ``consent.requests.request_consent`` writes; a granted one carries an artefact signed by
  ``consent.artefacts.sign_artefact`` (for the lender's first granted consent of the crowd,
  copied to its others: same shape and size, an hour of signing saved); its events are the
  service's own details models recorded by ``events.record_events`` (requested; granted or
  rejected; paused, revoked or expired; one ``access.allowed`` for four granted ones in
  five, an ``access.denied`` for one revoked consent in ten).  Webhook deliveries (which no page
  reads) are not made.  Then every event is sequenced into the transparency log by the log
  worker's sequencer (``ledger.sequencer.sequence_pending``, committed 10,000 at a time),
  and ``commons log checkpoint --publish`` signs one checkpoint over them, as the log
  worker would.  (Sequencing through that command alone runs a whole worker pass — the
  continuity check, a signed checkpoint, every step — per 10,000 events: of a 1,000,000-
  consent seed's 2.8 million events it had sequenced 227,000 in 16 minutes, niced, on the
  shared machine at load 10-19.)

A SQLite seed is cached under ``var/bench/`` keyed by the schema's head revision, the seed's
version and its size (``manifest.json`` is written last: a seed without it is rebuilt).
A PostgreSQL seed is made in a fresh schema each run.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from credit_commons.consent.access import AccessAllowed, AccessDenied, lender_actor
from credit_commons.consent.artefacts import sign_artefact
from credit_commons.consent.model import ConsentStatus
from credit_commons.consent.models import ConsentRow, DiscoveryProfileRow
from credit_commons.consent.requests import ConsentRequested
from credit_commons.consent.transitions import (
    ConsentExpiredEvent,
    ConsentGranted,
    ConsentPausedEvent,
    ConsentRejected,
    ConsentRevokedEvent,
)
from credit_commons.core.db import HotStatement, transaction
from credit_commons.core.ids import new_id
from credit_commons.core.migrate import head_revision
from credit_commons.core.settings import Settings
from credit_commons.demo import lender_token
from credit_commons.events import EventRow, EventSpec, record_events
from credit_commons.gateway.route_groups import GROUPS
from credit_commons.identity.auth import issue_admin_token, subject_of
from credit_commons.issuer.catalogue import commit_score
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.ledger.sequencer import sequence_pending
from credit_commons.runtime import Runtime
from own_state import postgres_schema
from served import commons_server, free_port

__all__ = [
    "CACHE",
    "LENDERS",
    "SEED_VERSION",
    "TYPE",
    "Seed",
    "World",
    "platform_env",
    "readiness_claims",
    "seeded",
]

SEED_VERSION = 1
"""Raise when what a seed holds changes: cached seeds of another version are not used."""
CACHE = Path(__file__).resolve().parents[1] / "var" / "bench"
TYPE = "CreditReadinessCredential"
LENDERS = 50
"""Lenders registered by default (``--lenders``)."""
BORROWER_LENDERS = 10
STATUS_MIX = (
    (ConsentStatus.ACTIVE, 30),
    (ConsentStatus.PAUSED, 5),
    (ConsentStatus.REVOKED, 8),
    (ConsentStatus.REJECTED, 10),
    (ConsentStatus.PENDING, 12),
    (ConsentStatus.EXPIRED, 35),
)
_CHUNK = 10_000
_CONSENT_COLUMNS = tuple(c.key for c in ConsentRow.__table__.columns)
_INSERT_CONSENTS = HotStatement(insert(ConsentRow.__table__), _CONSENT_COLUMNS)
_COMMONS = [sys.executable, "-m", "credit_commons.cli"]
GENEROUS_RATE_LIMITS = json.dumps(
    {f"{group.name}.{kind}": "100000000/minute" for group in GROUPS for kind in ("ip", "client")}
)
"""Every group's limits out of the way: the bench is one address making thousands of calls
(production keeps its defaults)."""


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class World:
    """The people of a seed whose pages are measured, and what they own (JSON in the
    manifest): ids only, never a credential (access tokens are issued at each run)."""

    borrower: str
    """The identity token of the borrower with ``--borrower-consents`` consents."""
    agent: str
    """A field agent's identity token (the borrower delegated consents to them)."""
    lender: str
    """The client id of the lender with about a fifth of all consents."""
    lenders: list[str]
    borrower_consents: dict[str, list[str]]
    """The borrower's consent ids by status (all from the measured lender first)."""
    lender_consents: dict[str, list[str]]
    """The measured lender's consent ids with the borrower, by status."""
    lender_access_events: list[str]
    """The measured lender's ``access.allowed`` event ids with the borrower (receipts)."""
    credentials: list[str]
    """The borrower's credential ids."""
    agent_delegation: str = ""
    """The id of the borrower's delegation to the agent (the console names the borrower by
    it); empty in a manifest seeded before it was kept."""


@dataclass(frozen=True)
class Seed:
    """A seeded platform: its settings' values (``COMMONS_*``), size and people."""

    values: dict[str, str]
    consents: int
    world: World


def platform_env(values: dict[str, str], base: str) -> dict[str, str]:
    """The environment of a ``commons`` process on the seed whose settings are ``values``,
    serving at ``base``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    env.update(values)
    env.update(
        COMMONS_PUBLIC_URL=base,
        COMMONS_RATE_LIMITS=GENEROUS_RATE_LIMITS,
        COMMONS_LOG_LEVEL="WARNING",
    )
    return env


def settings_of(values: dict[str, str], base: str = "http://127.0.0.1:8000") -> Settings:
    """The settings of ``values`` for an in-process runtime on the seed."""
    return Settings(
        data_dir=Path(values["COMMONS_DATA_DIR"]),
        database_url=values["COMMONS_DATABASE_URL"],
        pseudonym_pepper=values["COMMONS_PSEUDONYM_PEPPER"],
        public_url=base,
    )


# -- the people, through the API ---------------------------------------------------------


def readiness_claims(borrower: str) -> dict[str, Any]:
    """The claims of a CreditReadinessCredential for identity ``borrower``."""
    salt = secrets.token_urlsafe(16)
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
    if response.status_code not in (200, 201):
        request = response.request
        raise SystemExit(
            f"seeding: {request.method} {request.url.path}: {response.status_code} "
            f"{response.text[:500]}"
        )
    found: dict[str, Any] = response.json()
    return found


class _People:
    """Builds the :class:`World` through the HTTP API of a running server at ``base``."""

    def __init__(self, rt: Runtime, http: httpx.Client, base: str) -> None:
        self.rt, self.http, self.base = rt, http, base
        with transaction(rt.sessions) as session:
            admin, _ = issue_admin_token(session, rt, "bench")
        self.admin = {"Authorization": f"Bearer {admin}"}

    def identity(self, name: str, roles: list[str]) -> tuple[str, dict[str, str]]:
        made = _ok(
            self.http.post("/v1/identities", json={"roles": roles, "profile": {"name": name}})
        )
        return str(made["identity_token"]), {"Authorization": f"Bearer {made['access_token']}"}

    def lender(self, index: int) -> tuple[str, dict[str, str]]:
        key = PrivateKey.generate(KeyType.ED25519)
        made = _ok(
            self.http.post(
                "/v1/admin/lenders",
                json={
                    "name": f"Bench Lender {index:02d}",
                    "jwks": {"keys": [public_key_to_jwk(key.public_key)]},
                    "allowed_purposes": ["105", "104", "loan.underwriting"],
                },
                headers=self.admin,
            )
        )
        client_id = str(made["client_id"])
        token = lender_token(self.http, self.base, client_id, key)
        return client_id, {"Authorization": f"Bearer {token}"}

    def credential(self, borrower: str) -> str:
        claims = readiness_claims(borrower)
        holder = PrivateKey.generate(KeyType.ED25519)
        made = _ok(
            self.http.post(
                "/v1/credentials",
                json={
                    "type": TYPE,
                    "subject": borrower,
                    "claims": claims,
                    "holder_jwk": public_key_to_jwk(holder.public_key),
                },
                headers=self.admin,
            )
        )
        return str(made["credential_id"])

    def request(self, lender: dict[str, str], borrower: str, days: int) -> str:
        body = {
            "template": "loan_underwriting",
            "borrower": borrower,
            "purpose": "105",
            "consent_expiry": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
            "scopes": [{"type": TYPE, "claims": ["/income_bracket", "/debt_ratio_bracket"]}],
        }
        return str(_ok(self.http.post("/v1/consents", json=body, headers=lender))["consent_id"])

    def decide(self, borrower: dict[str, str], consent_id: str, action: str) -> None:
        _ok(self.http.post(f"/v1/borrowers/consents/{consent_id}/{action}", headers=borrower))

    def fetch(self, lender: dict[str, str], consent_id: str, *, allowed: bool) -> None:
        found = self.http.get(
            "/v1/lender/credentials", params={"consent_id": consent_id}, headers=lender
        )
        if (found.status_code == 200) != allowed:
            raise SystemExit(f"seeding: a fetch answered {found.status_code}: {found.text[:300]}")

    def delegate(
        self, borrower: str, as_borrower: dict[str, str], agent: str, as_agent: dict[str, str]
    ) -> str:
        delegation = _ok(
            self.http.post(
                f"/v1/identities/{borrower}/delegations",
                json={
                    "delegatee_token": agent,
                    "type": "field_agent_assist",
                    "permissions": ["assist:consent"],
                    "expires_in_days": 365,
                },
                headers=as_borrower,
            )
        )
        _ok(
            self.http.post(
                f"/v1/identities/{agent}/delegations/{delegation['id']}/accept", headers=as_agent
            )
        )
        return str(delegation["id"])


def _people(rt: Runtime, base: str, borrower_consents: int, lenders_wanted: int) -> World:
    """The measured people and the borrower's consents, through the API (see the module)."""
    start = time.perf_counter()
    with httpx.Client(base_url=base, timeout=60) as http:
        make = _People(rt, http, base)
        lenders = [make.lender(i) for i in range(lenders_wanted)]
        progress(f"{lenders_wanted} lenders registered ({time.perf_counter() - start:.0f} s)")
        borrower, as_borrower = make.identity("Bench Borrower", ["business"])
        agent, as_agent = make.identity("Bench Agent", ["field_agent"])
        agent_delegation = make.delegate(borrower, as_borrower, agent, as_agent)
        credentials = [make.credential(borrower) for _ in range(3)]
        by_status: dict[str, list[str]] = {}
        of_lender: dict[str, list[str]] = {}
        # Every status early (a small seed has each), then the mix (no EXPIRED: through the
        # API a consent expires only with time).
        mix = [s for s, w in STATUS_MIX if s != ConsentStatus.EXPIRED for _ in range(w)]
        random.Random(20261206).shuffle(mix)
        first = [ConsentStatus.ACTIVE] * 4 + [
            ConsentStatus.PENDING,
            ConsentStatus.PENDING,
            ConsentStatus.REJECTED,
            ConsentStatus.PAUSED,
            ConsentStatus.REVOKED,
        ]
        for i in range(borrower_consents):
            index = i % min(BORROWER_LENDERS, lenders_wanted)
            _, as_lender = lenders[index]
            status = first[i] if i < len(first) else mix[i % len(mix)]
            consent_id = make.request(as_lender, borrower, days=7 + i % 23)
            if status == ConsentStatus.REJECTED:
                make.decide(as_borrower, consent_id, "reject")
            elif status != ConsentStatus.PENDING:
                make.decide(as_borrower, consent_id, "approve")
                make.fetch(as_lender, consent_id, allowed=True)
                if status == ConsentStatus.PAUSED:
                    make.decide(as_borrower, consent_id, "pause")
                elif status == ConsentStatus.REVOKED:
                    make.decide(as_borrower, consent_id, "revoke")
                    make.fetch(as_lender, consent_id, allowed=False)
            by_status.setdefault(status.value, []).append(consent_id)
            if index == 0:
                of_lender.setdefault(status.value, []).append(consent_id)
            if (i + 1) % 50 == 0 or i + 1 == borrower_consents:
                progress(
                    f"borrower's consents {i + 1:,} / {borrower_consents:,} "
                    f"({time.perf_counter() - start:.0f} s)"
                )
    with transaction(rt.read_sessions) as session:
        access = list(
            session.scalars(
                select(EventRow.id)
                .where(
                    EventRow.subject == subject_of(rt, borrower),
                    EventRow.actor == lender_actor(rt, lenders[0][0]),
                    EventRow.type == "access.allowed",
                )
                .order_by(EventRow.id.desc())
                .limit(20)
            )
        )
    return World(
        borrower=borrower,
        agent=agent,
        lender=lenders[0][0],
        lenders=[c for c, _ in lenders],
        borrower_consents=by_status,
        lender_consents=of_lender,
        lender_access_events=access,
        credentials=credentials,
        agent_delegation=agent_delegation,
    )


# -- the crowd, in bulk ------------------------------------------------------------------


def _lender_weights(lenders: list[str]) -> list[float]:
    return [1.0 / (rank + 1) for rank in range(len(lenders))]


def _crowd(rt: Runtime, lenders: list[str], n: int, rng: random.Random) -> None:
    """``n`` consents of ``n // 5`` other borrowers with their events (see the module)."""
    if n <= 0:
        return
    now = datetime.now(UTC).replace(microsecond=0)
    borrowers = ["idt_" + secrets.token_hex(11) for _ in range(max(1, n // 5))]
    principals = {t: subject_of(rt, t) for t in borrowers}
    borrower_actors = {t: rt.pseudonymizer.pseudonym("actor", t) for t in borrowers}
    actors = {c: lender_actor(rt, c) for c in lenders}
    expiry = rt.operator_actor("consent-expiry")
    weights = _lender_weights(lenders)
    statuses = [s for s, _ in STATUS_MIX]
    status_weights = [w for _, w in STATUS_MIX]
    scopes = json.dumps(
        [{"claims": ["/debt_ratio_bracket", "/income_bracket"], "type": TYPE}], sort_keys=True
    )
    artefacts: dict[str, tuple[str, str]] = {}
    start = time.perf_counter()
    done = 0
    while done < n:
        size = min(_CHUNK, n - done)
        rows: list[dict[str, Any]] = []
        specs: list[EventSpec] = []
        picked = rng.choices(lenders, weights, k=size)
        with transaction(rt.sessions) as session:
            for client_id in picked:
                token = rng.choice(borrowers)
                status = rng.choices(statuses, status_weights)[0]
                row, events = _consent(
                    session,
                    rt,
                    rng,
                    now,
                    client_id=client_id,
                    token=token,
                    principal=principals[token],
                    status=status,
                    scopes=scopes,
                    artefacts=artefacts,
                )
                rows.append(row)
                lender, borrower = actors[client_id], borrower_actors[token]
                obj = rt.objects.digest("consent", row["id"])
                for details, at, by in events:
                    who = {"lender": lender, "borrower": borrower, "expiry": expiry}[by]
                    specs.append(
                        EventSpec(details, actor=who, at=at, subject=row["principal"], object=obj)
                    )
            _INSERT_CONSENTS.executemany(session, rows)
            specs.sort(key=lambda spec: spec.at)
            record_events(session, specs)
        done += size
        progress(
            f"other consents {done:,} / {n:,}, with their events "
            f"({time.perf_counter() - start:.0f} s)"
        )


def _consent(
    session: Any,
    rt: Runtime,
    rng: random.Random,
    now: datetime,
    *,
    client_id: str,
    token: str,
    principal: str,
    status: ConsentStatus,
    scopes: str,
    artefacts: dict[str, tuple[str, str]],
) -> tuple[dict[str, Any], list[tuple[Any, datetime, str]]]:
    """One consent row as ``request_consent`` (and the decisions after it) leaves it, and
    its events: (details, time, ``lender`` or ``borrower``)."""
    # loan_underwriting consents last at most 30 days: the live ones are recent.
    if status in (ConsentStatus.ACTIVE, ConsentStatus.PAUSED):
        created = now - timedelta(seconds=rng.randrange(25 * 86_400))
    elif status == ConsentStatus.PENDING:
        created = now - timedelta(seconds=rng.randrange(14 * 86_400))
    else:
        created = now - timedelta(seconds=rng.randrange(31 * 86_400, 365 * 86_400))
    expires = created + timedelta(days=30)
    decided = created + timedelta(seconds=rng.randrange(60, 2 * 86_400))
    row: dict[str, Any] = {
        "id": new_id("cns"),
        "status": status.value,
        "template": "loan_underwriting",
        "lender_client_id": client_id,
        "principal": principal,
        "principal_token": token,
        "purpose_code": "105",
        "mode": "VIEW",
        "fetch_type": "ONETIME",
        "frequency_unit": "DAY",
        "frequency_value": 1,
        "data_life_unit": "MONTH",
        "data_life_value": 1,
        "scopes": scopes,
        "starts_at": created,
        "expires_at": expires,
        "artefact": None,
        "approval": None,
        "facilitator": None,
        "facilitator_token": None,
        "facilitator_name_sealed": None,
        "otp_hash": None,
        "otp_expires_at": None,
        "otp_attempts": 0,
        "uses": 0,
        "window": -1,
        "window_uses": 0,
        "created_at": created,
        "updated_at": created,
    }
    events: list[tuple[Any, datetime, str]] = [
        (ConsentRequested(template="loan_underwriting", purpose="105"), created, "lender")
    ]
    granted = status in (ConsentStatus.ACTIVE, ConsentStatus.PAUSED, ConsentStatus.REVOKED) or (
        status == ConsentStatus.EXPIRED and rng.random() < 0.7
    )
    if status == ConsentStatus.REJECTED:
        row["updated_at"] = decided
        events.append((ConsentRejected(status="REJECTED", approval="self"), decided, "borrower"))
    if granted:
        row.update(approval="self", updated_at=decided)
        # The first granted consent of each lender gets its own artefact; the others carry a
        # copy (same shape and size; signing each would make seeding an hour long).
        copy = artefacts.get(client_id)
        if copy is None:
            text = sign_artefact(session, rt, ConsentRow(**row), decided)
            copy = artefacts[client_id] = (text, hashlib.sha256(text.encode()).hexdigest())
        row["artefact"], digest = copy
        events.append(
            (
                ConsentGranted(status="ACTIVE", approval="self", artefact_digest=digest),
                decided,
                "borrower",
            )
        )
        if rng.random() < 0.8:  # fetched (one-time: once)
            row["uses"] = 1
            at = decided + timedelta(minutes=rng.randrange(1, 600))
            events.append((AccessAllowed(operation="credentials.read"), at, "lender"))
    later = decided + timedelta(seconds=rng.randrange(3_600, 2 * 86_400))
    if status == ConsentStatus.PAUSED:
        row["updated_at"] = later
        events.append((ConsentPausedEvent(status="PAUSED", approval="self"), later, "borrower"))
    elif status == ConsentStatus.REVOKED:
        row["updated_at"] = later
        events.append((ConsentRevokedEvent(status="REVOKED", approval="self"), later, "borrower"))
        if rng.random() < 0.1:
            denied = later + timedelta(hours=1)
            events.append(
                (
                    AccessDenied(operation="credentials.read", reason="consent.revoked"),
                    denied,
                    "lender",
                )
            )
    elif status == ConsentStatus.EXPIRED:
        row["updated_at"] = expires
        events.append((ConsentExpiredEvent(status="EXPIRED"), expires, "expiry"))
    return row, events


def _discovery(values: dict[str, str]) -> None:
    """One borrower in five opted in to discovery (``set_discoverable``'s row: the public
    attributes of their credential, tiers A/B/C), unless the seed already has profiles
    (seeds cached before this step get them on their next use)."""
    rt = Runtime.build(settings_of(values))
    rng = random.Random(20261207)
    try:
        with transaction(rt.sessions) as session:
            if session.scalar(select(func.count()).select_from(DiscoveryProfileRow)):
                return
            tokens = sorted(set(session.scalars(select(ConsentRow.principal_token))))
            now = datetime.now(UTC)
            rows = [
                {
                    "principal_token": token,
                    "credit_tier": rng.choice("ABC"),
                    "income_bracket": rng.choice(["<5L", "5L-25L", "25L-1Cr"]),
                    "debt_ratio_bracket": rng.choice(["0-0.2", "0.2-0.4", "0.4-0.6"]),
                    "opted_in_at": now - timedelta(seconds=rng.randrange(365 * 86_400)),
                }
                for token in tokens
                if rng.random() < 0.2
            ]
            session.execute(insert(DiscoveryProfileRow), rows)
        progress(f"{len(rows):,} borrowers opted in to discovery")
    finally:
        rt.close()


# -- the seed ----------------------------------------------------------------------------


def _sequence(rt: Runtime, env: dict[str, str]) -> None:
    """Every event into the transparency log (the sequencer, in-process), then one signed
    checkpoint by the CLI."""
    start = time.perf_counter()
    total = 0
    while True:
        done_now = sequence_pending(rt.sessions, cache=rt.tile_cache, max_total=100_000)
        total += done_now.appended
        if done_now.appended:
            progress(f"{total:,} events sequenced ({time.perf_counter() - start:.0f} s)")
        if done_now.appended < 100_000:
            break
    done = subprocess.run(
        [*_COMMONS, "log", "checkpoint", "--publish", "--json"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"seeding: commons log checkpoint --publish failed:\n{done.stderr}")
    progress(f"log sequenced and checkpoint signed ({time.perf_counter() - start:.0f} s)")


def _build(values: dict[str, str], consents: int, borrower_consents: int, lenders: int) -> World:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = platform_env(values, base)
    rt = Runtime.build(settings_of(values, base))
    try:
        with commons_server(env, port, workers=1):
            world = _people(rt, base, borrower_consents, lenders)
        _crowd(rt, world.lenders, consents - borrower_consents, random.Random(20261206))
        _sequence(rt, env)
    finally:
        rt.close()
    _discovery(values)
    return world


def _values(directory: Path, database_url: str | None) -> dict[str, str]:
    data = directory / "var"
    url = database_url or f"sqlite:///{directory / 'commons.db'}"
    return {
        "COMMONS_DATA_DIR": str(data),
        "COMMONS_DATABASE_URL": url,
        "COMMONS_PSEUDONYM_PEPPER": secrets.token_urlsafe(32),
        "COMMONS_ENV": "test",
    }


def _key(consents: int, borrower_consents: int, lenders: int) -> str:
    suffix = "" if lenders == LENDERS else f"-{lenders}"
    return f"web-{head_revision()}-v{SEED_VERSION}-{consents}-{borrower_consents}{suffix}"


@contextmanager
def seeded(
    consents: int,
    borrower_consents: int,
    *,
    lenders: int = LENDERS,
    backend: str = "sqlite",
    cache: bool = True,
    scratch: Path,
) -> Iterator[Seed]:
    """A seeded platform of ``consents`` consents (``borrower_consents`` of them the measured
    borrower's): the cached SQLite seed when there is one (and ``cache``), else built now —
    under :data:`CACHE` when ``cache``, else under ``scratch``; on PostgreSQL always in a
    fresh schema (dropped afterwards) with its data directory under ``scratch``."""
    if borrower_consents > consents or lenders < 1:
        raise SystemExit("--borrower-consents cannot exceed --consents; --lenders is at least 1")
    if backend == "postgresql":
        with postgres_schema() as url:
            values = _values(scratch, url)
            world = _build(values, consents, borrower_consents, lenders)
            yield Seed(values, consents, world)
        return
    directory = CACHE / _key(consents, borrower_consents, lenders) if cache else scratch / "seed"
    manifest = directory / "manifest.json"
    if cache and manifest.exists():
        found = json.loads(manifest.read_text())
        progress(f"using the cached seed {directory}")
        _discovery(found["values"])
        yield Seed(found["values"], found["consents"], World(**found["world"]))
        return
    if directory.exists():
        shutil.rmtree(directory)  # an unfinished seed
    directory.mkdir(parents=True)
    values = _values(directory, None)
    started = time.perf_counter()
    world = _build(values, consents, borrower_consents, lenders)
    seed = Seed(values, consents, world)
    manifest.write_text(json.dumps(asdict(seed), indent=1))
    progress(f"seeded {consents:,} consents in {time.perf_counter() - started:.0f} s: {directory}")
    yield seed
