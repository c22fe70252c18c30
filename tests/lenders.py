"""Lender helpers the HTTP tests share: keys, registration, client assertions, tokens."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from credit_commons.consent.models import AccessDenialCountRow
from credit_commons.core.db import transaction
from credit_commons.events import EventRow
from credit_commons.formats.jws import sign_compact
from credit_commons.gateway.oauth import CLIENT_ASSERTION_TYPE
from credit_commons.identity.auth import issue_admin_token
from credit_commons.keys.algorithms import KeyType, PrivateKey, Signer
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def admin_headers(runtime: Runtime) -> dict[str, str]:
    """An administrator's Authorization header."""
    with transaction(runtime.sessions) as session:
        token, _ = issue_admin_token(session, runtime, "lenders")
    return {"Authorization": f"Bearer {token}"}


def jwks_of(*keys: tuple[PrivateKey, str]) -> dict[str, Any]:
    """The public JWK Set of ``(key, kid)`` pairs."""
    return {"keys": [public_key_to_jwk(k.public_key, kid=kid) for k, kid in keys]}


def register(
    client: TestClient,
    admin: dict[str, str],
    key: PrivateKey | None = None,
    *,
    kid: str = "k1",
    purposes: list[str] | None = None,
    **extra: Any,
) -> tuple[str, PrivateKey]:
    """Register a lender with one key (a new Ed25519 key unless given); its id and key."""
    key = key or PrivateKey.generate(KeyType.ED25519)
    response = client.post(
        "/v1/admin/lenders",
        json={
            "name": "Test Bank",
            "jwks": jwks_of((key, kid)),
            "allowed_purposes": purposes or ["101", "loan.underwriting"],
            **extra,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"]), key


def assertion(
    signer: Signer,
    client_id: str,
    now: int,
    *,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A client assertion (RFC 7523 §3) for ``client_id``; ``claims`` override or, when
    ``None``, remove the defaults."""
    payload: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": "http://127.0.0.1:8000/oauth/token",
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return sign_compact({"kid": "k1", "typ": "JWT"} if header is None else header, payload, signer)


def token_request(client: TestClient, client_assertion: str, **form: str) -> httpx.Response:
    """POST a client credentials request with ``client_assertion`` to /oauth/token."""
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion,
        **form,
    }
    return client.post("/oauth/token", data=data, headers=FORM)


def access_token(client: TestClient, key: PrivateKey, client_id: str, now: int) -> str:
    """A fresh access token for a registered lender."""
    response = token_request(client, assertion(key, client_id, now))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def events(runtime: Runtime, event_type: str) -> list[EventRow]:
    """Every event of ``event_type``, oldest first."""
    with transaction(runtime.read_sessions) as session:
        rows = session.scalars(
            select(EventRow).where(EventRow.type == event_type).order_by(EventRow.id)
        ).all()
        return list(rows)


def denials(runtime: Runtime) -> list[dict[str, Any]]:
    """The ``access.denied`` events as ``{"actor", "operation", "reason"}``."""
    return [
        {"actor": row.actor, **json.loads(row.details)} for row in events(runtime, "access.denied")
    ]


def _denial_key(denial: dict[str, Any]) -> tuple[str, str, str]:
    return (denial["operation"], denial["reason"], denial["actor"])


def bag(denials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``denials`` in the order :func:`counted` lists them (counts have no order)."""
    return sorted(denials, key=_denial_key)


def counted(runtime: Runtime) -> list[dict[str, Any]]:
    """The refusals that named no consent or borrower — counted, never logged (issue 12
    item 7) — one ``{"actor", "operation", "reason"}`` per refusal, in :func:`bag` order."""
    with transaction(runtime.read_sessions) as session:
        rows = session.scalars(select(AccessDenialCountRow)).all()
        found = [
            {"actor": r.actor, "operation": r.operation, "reason": r.reason}
            for r in rows
            for _ in range(r.count)
        ]
    return bag(found)
