"""Access tokens presented to lender routes (RFC 9068 §4), on both databases: a valid token
lets the lender in; every forged, expired, mistyped, misaddressed or orphaned token is
refused 401, and the refusal — which names no consent or borrower — is counted by operation,
reason and actor instead of being logged (issue 12 item 7)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from tests.conftest import declare_probes
from tests.lenders import (
    access_token,
    admin_headers,
    assertion,
    bag,
    counted,
    denials,
    events,
    register,
    token_request,
)

from credit_commons.consent.access import Denied, anonymous_actor, lender_actor
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.settings import Settings
from credit_commons.formats.jws import sign_compact
from credit_commons.gateway.access_token import (
    LenderPrincipal,
    authenticate_lender,
    mint_access_token,
    oauth_signer,
    require_scope,
)
from credit_commons.gateway.app import create_app
from credit_commons.gateway.lender_deps import LenderDep, lender_for
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.store import KeyVersion, StoredSigner
from credit_commons.runtime import Runtime

ISSUER = "http://127.0.0.1:8000"
OPERATION = "lender.whoami"


def now_of(clock: FixedClock) -> int:
    return int(clock.now().timestamp())


def platform_signer(runtime: Runtime) -> StoredSigner:
    with transaction(runtime.sessions) as session:
        return oauth_signer(session, runtime)


def signed(
    runtime: Runtime, client_id: str, now: int, *, typ: str = "at+jwt", **claims: Any
) -> str:
    """A token signed by the platform's real oauth key, with chosen header and claims."""
    signer = platform_signer(runtime)
    payload: dict[str, Any] = {
        "iss": ISSUER, "aud": ISSUER, "sub": client_id, "client_id": client_id,
        "iat": now, "exp": now + 300, "jti": "at_x", "scope": "consent:read",
    }  # fmt: skip
    payload.update(claims)
    return sign_compact({"typ": typ, "kid": signer.kid}, payload, signer)


def forged(runtime: Runtime, client_id: str, now: int) -> str:
    """A well-formed token under the platform's kid, signed by someone else's key."""
    real = platform_signer(runtime)
    fake = StoredSigner(
        KeyVersion(
            name="oauth", version=1, key_type=KeyType.ED25519, kid=real.kid,
            public_key=PrivateKey.generate().public_key, backend="x",
            created_at=real.info.created_at,
        ),
        PrivateKey.generate(),
    )  # fmt: skip
    return mint_access_token(
        fake,
        issuer=ISSUER,
        client_id=client_id,
        scopes=frozenset({"consent:read"}),
        now=runtime.clock.now(),
        ttl=timedelta(minutes=5),
    )


def whoami(client: TestClient, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/v1/lender/client", headers=headers)


def test_a_valid_token_lets_the_lender_in(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    client_id, key = register(client, admin_headers(runtime), purposes=["104"])
    token = access_token(client, key, client_id, now_of(clock))
    response = whoami(client, token)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "client_id": client_id,
        "name": "Test Bank",
        "allowed_purposes": ["104"],
        "scope": "consent:read consent:request credentials:read discovery:read",
    }
    assert response.headers["cache-control"] == "no-store"
    # Within the leeway after exp the token still works; past it, it does not.
    clock.advance(timedelta(seconds=300 + 29))
    assert whoami(client, token).status_code == 200
    assert denials(runtime) == counted(runtime) == []


def _expired(runtime: Runtime, client_id: str, now: int) -> str:
    return signed(runtime, client_id, now - 400, exp=now - 31)


def _wrong_typ(runtime: Runtime, client_id: str, now: int) -> str:
    return signed(runtime, client_id, now, typ="JWT")


def _wrong_aud(runtime: Runtime, client_id: str, now: int) -> str:
    return signed(runtime, client_id, now, aud="https://other.example")


def _wrong_iss(runtime: Runtime, client_id: str, now: int) -> str:
    return signed(runtime, client_id, now, iss="https://other.example")


def _future_iat(runtime: Runtime, client_id: str, now: int) -> str:
    return signed(runtime, client_id, now, iat=now + 120)


def _no_exp(runtime: Runtime, client_id: str, now: int) -> str:
    return signed(runtime, client_id, now, exp=None)


def _sub_mismatch(runtime: Runtime, client_id: str, now: int) -> str:
    return signed(runtime, client_id, now, sub="lnd_" + "S" * 22)


def _no_scope(runtime: Runtime, client_id: str, now: int) -> str:
    return signed(runtime, client_id, now, scope=None)


def _list_alg(runtime: Runtime, client_id: str, now: int) -> str:
    token = signed(runtime, client_id, now)
    _, body, sig = token.split(".")
    head = b64url_encode(json.dumps({"alg": ["EdDSA"], "typ": "at+jwt"}).encode())
    return f"{head}.{body}.{sig}"


Maker = Callable[[Runtime, str, int], str]
# (token maker, reason, whether the denial names the lender)
REFUSALS: dict[str, tuple[Maker, str, bool]] = {
    "forged signature": (forged, "auth.token_invalid", False),
    "expired": (_expired, "auth.token_expired", True),
    "wrong typ": (_wrong_typ, "auth.token_invalid", True),
    "wrong aud": (_wrong_aud, "auth.token_invalid", True),
    "wrong iss": (_wrong_iss, "auth.token_invalid", True),
    "iat in the future": (_future_iat, "auth.token_invalid", True),
    "no exp": (_no_exp, "auth.token_invalid", True),
    "sub is not the client": (_sub_mismatch, "auth.token_invalid", False),
    "no scope": (_no_scope, "auth.token_invalid", True),
    "alg as a list": (_list_alg, "auth.token_invalid", False),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_tokens_are_refused_and_logged(
    client: TestClient, runtime: Runtime, clock: FixedClock, case: str
) -> None:
    make, reason, names_lender = REFUSALS[case]
    client_id, _ = register(client, admin_headers(runtime))
    response = whoami(client, make(runtime, client_id, now_of(clock)))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["detail"] == "not permitted"
    actor = lender_actor(runtime, client_id) if names_lender else anonymous_actor(runtime)
    assert counted(runtime) == [{"actor": actor, "operation": OPERATION, "reason": reason}]
    assert denials(runtime) == []  # about nobody's data: nothing in the log


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "auth.token_missing"),
        ("Basic abc", "auth.token_missing"),
        ("Bearer ", "auth.token_missing"),
        ("Bearer not-a-jwt", "auth.token_invalid"),
        ("Bearer a.b.c", "auth.token_invalid"),
    ],
)
def test_missing_and_malformed_tokens(
    client: TestClient, runtime: Runtime, authorization: str | None, reason: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/v1/lender/client", headers=headers)
    assert response.status_code == 401
    assert counted(runtime) == [
        {"actor": anonymous_actor(runtime), "operation": OPERATION, "reason": reason}
    ]
    assert denials(runtime) == []


def test_tokens_of_deactivated_clients_stop_working(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    admin = admin_headers(runtime)
    client_id, key = register(client, admin)
    token = access_token(client, key, client_id, now_of(clock))
    assert whoami(client, token).status_code == 200
    client.patch(f"/v1/admin/lenders/{client_id}", json={"active": False}, headers=admin)
    assert whoami(client, token).status_code == 401
    clock.advance(timedelta(seconds=331))
    assert whoami(client, token).status_code == 401
    actor = lender_actor(runtime, client_id)
    assert counted(runtime) == bag(
        [
            {"actor": actor, "operation": OPERATION, "reason": "auth.client_inactive"},
            {"actor": actor, "operation": OPERATION, "reason": "auth.token_expired"},
        ]
    )
    # Neither named a borrower: counted, not in the log.
    assert events(runtime, "access.denied") == []


def test_service_level_checks_and_scopes(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    client_id, _ = register(client, admin_headers(runtime))
    token = signed(runtime, client_id, now_of(clock), scope="consent:read admin:all")
    with transaction(runtime.read_sessions) as session:
        lender = authenticate_lender(session, runtime, f"Bearer {token}", operation="x.read")
    assert lender == LenderPrincipal(
        client_id=client_id,
        scopes=frozenset({"consent:read"}),  # unknown scopes are dropped
        purposes=frozenset({"101", "loan.underwriting"}),
        actor=lender_actor(runtime, client_id),
    )
    require_scope(lender, "consent:read", operation="x.read")
    with pytest.raises(Denied) as refused:
        require_scope(lender, "credentials:read", operation="credentials.read")
    assert refused.value.reason == "auth.scope_missing"
    assert refused.value.status == 403
    assert refused.value.actor == lender.actor


def test_scope_missing_is_a_recorded_403(
    runtime: Runtime, settings: Settings, clock: FixedClock
) -> None:
    # Routes as another domain writes them: LenderDep plus require_scope, or lender_for.
    app = create_app(settings, runtime=runtime)

    @app.get("/test/credentials")
    def credentials(lender: LenderDep) -> dict[str, str]:
        require_scope(lender, "credentials:read", operation="credentials.read")
        return {"ok": lender.client_id}

    @app.get("/test/named")
    def named(
        lender: Annotated[LenderPrincipal, Depends(lender_for("discovery.read"))],
    ) -> dict[str, str]:
        return {"ok": lender.client_id}

    declare_probes(app)
    with TestClient(app) as test_client:
        client_id, key = register(test_client, admin_headers(runtime))
        response = token_request(
            test_client, assertion(key, client_id, now_of(clock)), scope="consent:read"
        )
        token = {"Authorization": f"Bearer {response.json()['access_token']}"}
        refused = test_client.get("/test/credentials", headers=token)
        assert refused.status_code == 403
        assert refused.json()["detail"] == "not permitted"
        assert test_client.get("/test/named", headers=token).json() == {"ok": client_id}
        assert test_client.get("/test/named").status_code == 401
    assert counted(runtime) == bag(
        [
            {
                "actor": lender_actor(runtime, client_id),
                "operation": "credentials.read",
                "reason": "auth.scope_missing",
            },
            {
                "actor": anonymous_actor(runtime),
                "operation": "discovery.read",
                "reason": "auth.token_missing",
            },
        ]
    )


def test_a_token_signature_is_checked_once_and_its_siblings_every_time(
    client: TestClient, runtime: Runtime, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id, key = register(client, admin_headers(runtime))
    token = access_token(client, key, client_id, now_of(clock))
    checks: list[bytes] = []
    real_verify = PublicKey.verify

    def counting(self: PublicKey, alg: str, data: bytes, signature: bytes) -> None:
        checks.append(data)
        real_verify(self, alg, data, signature)

    monkeypatch.setattr(PublicKey, "verify", counting)
    assert whoami(client, token).status_code == 200
    assert whoami(client, token).status_code == 200
    assert len(checks) == 1  # the second request reused the verified signature
    # A sibling with one changed signature character is another string: verified, refused.
    head, _, signature = token.rpartition(".")
    sibling = f"{head}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    assert whoami(client, sibling).status_code == 401
    assert len(checks) == 2
    # Expiry is still checked on every request of a cached token.
    clock.advance(timedelta(seconds=300 + 31))
    assert whoami(client, token).status_code == 401
    assert [d["reason"] for d in counted(runtime)] == ["auth.token_expired", "auth.token_invalid"]
