"""A live platform for the browser tests: ``commons serve`` as a real process on a loopback
port, and the test data its users would create, made the way they would make it.

The server is the program a user starts with ``make run`` (the HTTP API, the console and
the log worker in one process) on a migrated database: a SQLite file in a temporary
directory, or a fresh PostgreSQL schema.  The test process keeps a :class:`Runtime` over
the same database and data directory (the same settings), for what no HTTP call gives: an
administrator token (``commons admin token``) and the one-time codes the notification
channel "sent" (a file in the data directory, as ``commons consent codes`` reads it).
Everything else goes through the HTTP API, as the browser, a lender or a field agent would.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings, migrate
from tests.factories import readiness_claims
from tests.lenders import admin_headers, jwks_of
from tests.ports import free_port

from credit_commons.consent.notify import SentCode, read_codes
from credit_commons.demo import lender_token
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

__all__ = ["Identity", "Lender", "LiveServer", "live_server_on"]

_COMMONS = [sys.executable, "-m", "credit_commons.cli"]
START_SECONDS = 120
"""How long the server may take to answer /readyz (only a hung process reaches it; 60 s
was outlasted by a healthy start at a load average of 20)."""
STOP_SECONDS = 30


@dataclass(frozen=True)
class Identity:
    """A registered identity: its public token and a bearer access token for the API."""

    name: str
    identity_token: str
    access_token: str

    @property
    def auth(self) -> dict[str, str]:
        """Its Authorization header."""
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass(frozen=True)
class Lender:
    """A registered lender: its OAuth client id, signing key and a fresh access token."""

    name: str
    client_id: str
    key: PrivateKey
    access_token: str

    @property
    def auth(self) -> dict[str, str]:
        """Its Authorization header."""
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class LiveServer:
    """A running ``commons serve`` at ``base``, its settings' runtime in this process, and
    helpers that create test data through its HTTP API."""

    base: str
    runtime: Runtime
    log: Path
    http: httpx.Client

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return f"{self.base}{path}"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the server wrote (for a failure report)."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def admin_headers(self) -> dict[str, str]:
        """An administrator's Authorization header (``commons admin token``)."""
        return admin_headers(self.runtime)

    def register_identity(self, name: str, roles: Sequence[str] = ("business",)) -> Identity:
        """Register an identity (``POST /v1/identities``) named ``name`` with ``roles``."""
        made = _created(
            self.http.post("/v1/identities", json={"roles": list(roles), "profile": {"name": name}})
        )
        return Identity(name, str(made["identity_token"]), str(made["access_token"]))

    def delegate_to_agent(self, borrower: Identity, agent: Identity, days: int = 30) -> str:
        """The borrower gives ``agent`` (a ``field_agent`` identity) a ``field_agent_assist``
        delegation for consents, and the agent accepts it; its id."""
        delegation = _created(
            self.http.post(
                f"/v1/identities/{borrower.identity_token}/delegations",
                json={
                    "delegatee_token": agent.identity_token,
                    "type": "field_agent_assist",
                    "permissions": ["assist:consent"],
                    "expires_in_days": days,
                },
                headers=borrower.auth,
            )
        )
        delegation_id = str(delegation["id"])
        _created(
            self.http.post(
                f"/v1/identities/{agent.identity_token}/delegations/{delegation_id}/accept",
                headers=agent.auth,
            )
        )
        return delegation_id

    def register_lender(
        self, name: str = "Sahyadri Cooperative Bank", purposes: Sequence[str] = ("105",)
    ) -> Lender:
        """Register a lender (an administrator's ``POST /v1/admin/lenders``) with a new
        Ed25519 key, allowed ``purposes`` and ``loan.underwriting``, and get its access
        token by OAuth client credentials (``private_key_jwt``)."""
        key = PrivateKey.generate(KeyType.ED25519)
        made = _created(
            self.http.post(
                "/v1/admin/lenders",
                json={
                    "name": name,
                    "jwks": jwks_of((key, "k1")),
                    "allowed_purposes": [*purposes, "loan.underwriting"],
                },
                headers=self.admin_headers(),
            )
        )
        client_id = str(made["client_id"])
        return Lender(name, client_id, key, lender_token(self.http, self.base, client_id, key))

    def issue_credential(
        self, borrower: Identity, holder: PrivateKey | None = None, **claims: Any
    ) -> dict[str, Any]:
        """Issue a CreditReadinessCredential to ``borrower``, bound to ``holder``'s key (a
        new Ed25519 key unless given), by the issuer desk's ``POST /v1/credentials``;
        ``claims`` override :func:`tests.factories.readiness_claims`'s.  The answer
        (``credential``, ``format``, ...)."""
        holder = holder or PrivateKey.generate(KeyType.ED25519)
        body = {
            "type": "CreditReadinessCredential",
            "subject": borrower.identity_token,
            "claims": readiness_claims(borrower.identity_token, **claims),
            "holder_jwk": public_key_to_jwk(holder.public_key),
        }
        return _created(self.http.post("/v1/credentials", json=body, headers=self.admin_headers()))

    def request_consent(
        self,
        lender: Lender,
        borrower: Identity,
        claims: Sequence[str] = ("/income_bracket", "/debt_ratio_bracket"),
        *,
        days: int = 14,
    ) -> str:
        """A lender's consent request (``POST /v1/consents``, the ``loan_underwriting``
        template: view once, kept 7 days) for ``claims`` of the borrower's
        CreditReadinessCredential, valid ``days`` days; its consent id."""
        body = {
            "template": "loan_underwriting",
            "borrower": borrower.identity_token,
            "purpose": "loan.underwriting",
            "mode": "VIEW",
            "fetch_type": "ONETIME",
            "data_life": {"unit": "DAY", "value": 7},
            "consent_expiry": (self.runtime.clock.now() + timedelta(days=days)).isoformat(),
            "scopes": [{"type": "CreditReadinessCredential", "claims": list(claims)}],
        }
        return str(
            _created(self.http.post("/v1/consents", json=body, headers=lender.auth))["consent_id"]
        )

    def sent_codes(self, borrower: Identity) -> list[SentCode]:
        """The one-time codes the notification channel sent ``borrower``, oldest first."""
        return read_codes(self.runtime, borrower.identity_token)


def _created(response: httpx.Response) -> dict[str, Any]:
    # A helper's call must succeed: anything else is a broken fixture, said with its body.
    if response.status_code not in (200, 201):
        request = response.request
        pytest.fail(f"{request.method} {request.url.path}: {response.status_code} {response.text}")
    found: dict[str, Any] = response.json()
    return found


def _environment(values: dict[str, Any]) -> dict[str, str]:
    # The server's whole environment: this one without COMMONS_* (a developer's shell
    # setting must not reach it), and the settings the in-process runtime uses.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    for name, value in values.items():
        env[f"COMMONS_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


@contextmanager
def live_server_on(directory: Path, database_url: str) -> Iterator[LiveServer]:
    """Migrate ``database_url``, run ``commons serve`` (with its log worker) on a free
    loopback port with its data directory under ``directory``, wait for ``/readyz``, yield
    the :class:`LiveServer`, and stop it (SIGTERM) on leaving.  Fails the test, with the
    server's output, when it does not start."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    values: dict[str, Any] = {
        "data_dir": str(directory / "var"),
        "database_url": database_url,
        "env": "test",
        "public_url": base,
        "pseudonym_pepper": secrets.token_urlsafe(32),
        "rate_limits": GENEROUS_RATE_LIMITS,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in os.environ:
            if name.startswith("COMMONS_") and not name.startswith("COMMONS_TEST_"):
                patch.delenv(name)
        settings = make_settings(directory, **values)
    runtime = Runtime.build(settings)
    log = directory / "server.log"
    try:
        migrate(runtime.engine)
        with log.open("wb") as out, httpx.Client(base_url=base, timeout=30) as http:
            process = subprocess.Popen(
                [*_COMMONS, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=_environment(values),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_until_ready(process, http, log)
                yield LiveServer(base, runtime, log, http)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=STOP_SECONDS)
    finally:
        runtime.close()


def _wait_until_ready(process: subprocess.Popen[bytes], http: httpx.Client, log: Path) -> None:
    # A condition (/readyz answers 200) polled until the process dies or a deadline only a
    # hung server reaches.
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if http.get("/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"commons serve did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
