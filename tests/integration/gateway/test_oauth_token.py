"""The lender token endpoint (RFC 6749 §4.4 with RFC 7523 client assertions) over HTTP, on
both databases: tokens for Ed25519 and P-256 clients, and every refusal, each of which is
counted by operation, reason and actor — a token request names no borrower, so none is a log
event (issue 12 item 7)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.lenders import (
    FORM,
    admin_headers,
    assertion,
    bag,
    counted,
    denials,
    jwks_of,
    register,
    token_request,
)

from credit_commons.consent.access import anonymous_actor, lender_actor
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_encode
from credit_commons.formats.jws import parse_compact, verify_compact
from credit_commons.gateway import oauth
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_from_jwk, public_key_to_jwk
from credit_commons.lenders.models import ClientAssertionRow
from credit_commons.runtime import Runtime

ISSUER = "http://127.0.0.1:8000"


def _header_payload(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    jws = parse_compact(token, algs=ACCEPTED_ALGS)
    return jws.header, jws.payload


def now_of(clock: FixedClock) -> int:
    return int(clock.now().timestamp())


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_tokens_for_ed25519_and_p256_clients(
    client: TestClient, runtime: Runtime, clock: FixedClock, key_type: KeyType
) -> None:
    client_id, key = register(client, admin_headers(runtime), PrivateKey.generate(key_type))
    now = now_of(clock)
    response = token_request(client, assertion(key, client_id, now), scope="consent:read")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "consent:read"

    header, payload = _header_payload(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "EdDSA"
    jwks = client.get("/oauth/jwks").json()
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert verify_compact(
        body["access_token"], public_key_from_jwk(jwk), typ="at+jwt", algs=ACCEPTED_ALGS
    )
    assert payload["iss"] == ISSUER
    assert payload["aud"] == ISSUER
    assert payload["sub"] == payload["client_id"] == client_id
    assert payload["iat"] == now
    assert payload["exp"] == now + 300
    assert payload["scope"] == "consent:read"
    assert payload["jti"].startswith("at_")
    assert denials(runtime) == counted(runtime) == []

    # No scope asked: every lender scope; the issuer URL is an accepted audience too.
    again = token_request(client, assertion(key, client_id, now, aud=ISSUER)).json()
    assert again["scope"] == "consent:read consent:request credentials:read discovery:read"
    listed = assertion(key, client_id, now, aud=["https://a.example", f"{ISSUER}/oauth/token"])
    assert token_request(client, listed).status_code == 200
    # The form may name the client too (RFC 7521 §4.2).
    named = token_request(client, assertion(key, client_id, now), client_id=client_id)
    assert named.status_code == 200


def test_ttl_setting(client: TestClient, runtime: Runtime, clock: FixedClock) -> None:
    runtime.settings = runtime.settings.model_copy(update={"access_token_ttl": 60})
    client_id, key = register(client, admin_headers(runtime))
    response = token_request(client, assertion(key, client_id, now_of(clock)))
    assert response.json()["expires_in"] == 60
    _, payload = _header_payload(response.json()["access_token"])
    assert payload["exp"] - payload["iat"] == 60


def _alg_none(_key: PrivateKey, client_id: str, now: int) -> str:
    header = b64url_encode(json.dumps({"alg": "none", "kid": "k1"}).encode())
    body = b64url_encode(
        json.dumps(
            {"iss": client_id, "sub": client_id, "aud": ISSUER, "iat": now, "exp": now + 60,
             "jti": "j-none"}
        ).encode()
    )  # fmt: skip
    return f"{header}.{body}."


def _hs256(key: PrivateKey, client_id: str, now: int) -> str:
    # HMAC keyed with the client's public key bytes: the classic algorithm confusion.
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    header = b64url_encode(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    body = b64url_encode(
        json.dumps(
            {"iss": client_id, "sub": client_id, "aud": ISSUER, "iat": now, "exp": now + 60,
             "jti": "j-hs"}
        ).encode()
    )  # fmt: skip
    mac = hmac.new(key.public_key.raw(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64url_encode(mac)}"


def _raw_header(header: dict[str, Any]) -> Callable[[PrivateKey, str, int], str]:
    """An assertion whose header is exactly ``header`` (sign_compact would set alg)."""

    def make(key: PrivateKey, client_id: str, now: int) -> str:
        head = b64url_encode(json.dumps(header).encode())
        body = b64url_encode(
            json.dumps(
                {"iss": client_id, "sub": client_id, "aud": ISSUER, "iat": now,
                 "exp": now + 60, "jti": secrets.token_hex(8)}
            ).encode()
        )  # fmt: skip
        return f"{head}.{body}.{b64url_encode(key.sign(f'{head}.{body}'.encode()))}"

    return make


def _tampered(key: PrivateKey, client_id: str, now: int) -> str:
    token = assertion(key, client_id, now)
    head, body, sig = token.split(".")
    flipped = "A" if sig[0] != "A" else "B"
    return f"{head}.{body}.{flipped}{sig[1:]}"


def _other_key(_key: PrivateKey, client_id: str, now: int) -> str:
    return assertion(PrivateKey.generate(KeyType.ED25519), client_id, now)


def _embedded_jwk(key: PrivateKey, client_id: str, now: int) -> str:
    jwk = public_key_to_jwk(key.public_key)
    return assertion(key, client_id, now, header={"kid": "k1", "jwk": jwk})


def _unknown_kid(key: PrivateKey, client_id: str, now: int) -> str:
    return assertion(key, client_id, now, header={"kid": "k2"})


def _unknown_client(key: PrivateKey, _client_id: str, now: int) -> str:
    other = "lnd_" + "Z" * 22
    return assertion(key, other, now)


def _key_type_confusion(_key: PrivateKey, client_id: str, now: int) -> str:
    # An ES256 signature under a kid whose registered key is Ed25519.
    return assertion(PrivateKey.generate(KeyType.P256), client_id, now)


def _access_token_typ(key: PrivateKey, client_id: str, now: int) -> str:
    return assertion(key, client_id, now, header={"kid": "k1", "typ": "at+jwt"})


ANONYMOUS_REFUSALS = {
    "bad signature": (_tampered, "auth.assertion_signature_invalid"),
    "signed by another key": (_other_key, "auth.assertion_signature_invalid"),
    "key-type confusion": (_key_type_confusion, "auth.assertion_signature_invalid"),
    "alg none": (_alg_none, "auth.assertion_invalid"),
    "HS256": (_hs256, "auth.assertion_invalid"),
    "embedded jwk header": (_embedded_jwk, "auth.assertion_invalid"),
    "typ at+jwt": (_access_token_typ, "auth.assertion_invalid"),
    "unknown kid": (_unknown_kid, "auth.assertion_key_unknown"),
    "alg as a list": (_raw_header({"alg": ["EdDSA"], "kid": "k1"}), "auth.assertion_invalid"),
    "typ as a list": (
        _raw_header({"alg": "EdDSA", "kid": "k1", "typ": ["JWT"]}),
        "auth.assertion_invalid",
    ),
    "kid as a list": (_raw_header({"alg": "EdDSA", "kid": ["k1"]}), "auth.assertion_key_unknown"),
    "crit header": (
        _raw_header({"alg": "EdDSA", "kid": "k1", "crit": ["exp"]}),
        "auth.assertion_invalid",
    ),
    "fully specified Ed25519 alg is fine": (_raw_header({"alg": "Ed25519", "kid": "k1"}), ""),
    "unknown client": (_unknown_client, "auth.client_unknown"),
}


@pytest.mark.parametrize("case", sorted(ANONYMOUS_REFUSALS))
def test_unauthenticated_assertions_are_refused(
    client: TestClient, runtime: Runtime, clock: FixedClock, case: str
) -> None:
    make, reason = ANONYMOUS_REFUSALS[case]
    client_id, key = register(client, admin_headers(runtime))
    response = token_request(client, make(key, client_id, now_of(clock)))
    if not reason:  # the control case: the same construction, accepted
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 401, response.text
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
    assert response.headers["cache-control"] == "no-store"
    assert counted(runtime) == [
        {"actor": anonymous_actor(runtime), "operation": "oauth.token", "reason": reason}
    ]
    assert denials(runtime) == []  # a token request names no borrower: never logged


# (claims to change, reason) for assertions the client really signed.
AUD = "auth.assertion_audience_invalid"
SIGNED_REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "wrong aud": ({"aud": "https://elsewhere.example/oauth/token"}, AUD),
    "aud list without us": ({"aud": ["https://a.example", 7]}, AUD),
    "no aud": ({"aud": None}, AUD),
    "wrong sub": ({"sub": "lnd_" + "Q" * 22}, "auth.assertion_invalid"),
    "expired": ({"exp": -31, "iat": -90}, "auth.assertion_expired"),
    "no exp": ({"exp": None}, "auth.assertion_invalid"),
    "no iat": ({"iat": None}, "auth.assertion_invalid"),
    "exp too far": ({"exp": 400}, "auth.assertion_lifetime_too_long"),
    "lifetime too long": ({"iat": -200, "exp": 200}, "auth.assertion_lifetime_too_long"),
    "iat in the future": ({"iat": 120, "exp": 200}, "auth.assertion_not_yet_valid"),
    "nbf in the future": ({"nbf": 120}, "auth.assertion_not_yet_valid"),
    "no jti": ({"jti": None}, "auth.assertion_jti_missing"),
    "empty jti": ({"jti": ""}, "auth.assertion_jti_missing"),
    "numeric jti": ({"jti": 12}, "auth.assertion_jti_missing"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(SIGNED_REFUSALS))
def test_signed_but_invalid_assertions_are_refused(
    client: TestClient, runtime: Runtime, clock: FixedClock, case: str
) -> None:
    changes, reason = SIGNED_REFUSALS[case]
    client_id, key = register(client, admin_headers(runtime))
    now = now_of(clock)
    claims = {
        k: (now + v if k in {"exp", "iat", "nbf"} and isinstance(v, int) else v)
        for k, v in changes.items()
    }
    response = token_request(client, assertion(key, client_id, now, **claims))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert counted(runtime) == [
        {"actor": lender_actor(runtime, client_id), "operation": "oauth.token", "reason": reason}
    ]
    assert denials(runtime) == []


def test_wrong_iss_is_an_unknown_or_mismatched_client(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    admin = admin_headers(runtime)
    client_id, key = register(client, admin)
    other_id, _ = register(client, admin)
    now = now_of(clock)
    # iss names another registered client: its keys do not verify this signature.
    wrong_iss = token_request(client, assertion(key, client_id, now, iss=other_id))
    # The form's client_id disagrees with iss.
    mismatch = token_request(client, assertion(key, client_id, now), client_id=other_id)
    assert wrong_iss.status_code == mismatch.status_code == 401
    assert [d["reason"] for d in counted(runtime)] == [
        "auth.assertion_invalid",
        "auth.assertion_signature_invalid",
    ]


def test_inactive_clients_and_scope_escalation(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    admin = admin_headers(runtime)
    client_id, key = register(client, admin)
    now = now_of(clock)
    escalated = token_request(
        client, assertion(key, client_id, now), scope="consent:read admin:all"
    )
    assert escalated.status_code == 400
    assert escalated.json()["error"] == "invalid_scope"
    client.patch(f"/v1/admin/lenders/{client_id}", json={"active": False}, headers=admin)
    inactive = token_request(client, assertion(key, client_id, now))
    assert inactive.status_code == 401
    assert inactive.json()["error"] == "invalid_client"
    actor = lender_actor(runtime, client_id)
    assert counted(runtime) == bag(
        [
            {"actor": actor, "operation": "oauth.token", "reason": "auth.scope_not_allowed"},
            {"actor": actor, "operation": "oauth.token", "reason": "auth.client_inactive"},
        ]
    )


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({"grant_type": None}, "invalid_request"),
        ({"client_assertion_type": "urn:example:other"}, "invalid_request"),
        ({"client_assertion": None}, "invalid_request"),
    ],
)
def test_malformed_requests(
    client: TestClient, runtime: Runtime, clock: FixedClock, form: dict[str, Any], error: str
) -> None:
    client_id, key = register(client, admin_headers(runtime))
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": oauth.CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion(key, client_id, now_of(clock)),
    }
    data.update(form)
    response = client.post(
        "/oauth/token", data={k: v for k, v in data.items() if v is not None}, headers=FORM
    )
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert denials(runtime) == counted(runtime) == []


def test_requests_must_be_single_valued_forms(client: TestClient, clock: FixedClock) -> None:
    as_json = client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"
    twice = client.post(
        "/oauth/token",
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers=FORM,
    )
    assert twice.json()["error"] == "invalid_request"
    big = client.post("/oauth/token", content="a=" + "b" * 9000, headers=FORM)
    assert big.json()["error"] == "invalid_request"


def test_replayed_assertions_are_refused_and_expired_ids_purged(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    client_id, key = register(client, admin_headers(runtime))
    now = now_of(clock)
    used = assertion(key, client_id, now, jti="same-jti")
    assert token_request(client, used).status_code == 200
    replay = token_request(client, used)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"
    assert counted(runtime) == [
        {
            "actor": lender_actor(runtime, client_id),
            "operation": "oauth.token",
            "reason": "auth.assertion_replayed",
        }
    ]
    # Another client may use the same jti value: uniqueness is per issuer.
    other_id, other_key = register(client, admin_headers(runtime), kid="k1")
    assert token_request(client, assertion(other_key, other_id, now, jti="same-jti")).is_success
    # Only hashes are stored.
    with transaction(runtime.read_sessions) as session:
        stored = session.scalars(select(ClientAssertionRow.jti_hash)).all()
    assert len(stored) == 2
    assert all(len(h) == 64 and "same" not in h for h in stored)

    # Once the assertions are past their expiry, the next token request purges their ids.
    clock.advance(timedelta(seconds=60 + 31))
    assert token_request(client, assertion(key, client_id, now_of(clock))).is_success
    with transaction(runtime.read_sessions) as session:
        count = session.scalar(select(func.count()).select_from(ClientAssertionRow))
    assert count == 1


def test_concurrent_replays_only_one_succeeds(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    client_id, key = register(client, admin_headers(runtime))
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": oauth.CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion(key, client_id, now_of(clock)),
    }
    with transaction(runtime.read_sessions) as session:
        authenticated = oauth.authenticate_client(session, runtime, form)
    racers = 6
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        try:
            with transaction(runtime.sessions) as session:
                oauth.issue_token(session, runtime, authenticated)
            outcome = "issued"
        except oauth.TokenError as e:
            outcome = str(e.reason)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["auth.assertion_replayed"] * (racers - 1) + ["issued"]


def test_jwks_and_rotation(client: TestClient, runtime: Runtime, clock: FixedClock) -> None:
    client_id, key = register(client, admin_headers(runtime))
    first = client.get("/oauth/jwks").json()["keys"]
    assert len(first) == 1
    assert first[0]["alg"] == "EdDSA"
    assert "d" not in first[0]
    token = token_request(client, assertion(key, client_id, now_of(clock))).json()
    header, _ = _header_payload(token["access_token"])
    assert header["kid"] == first[0]["kid"]
    # The client replaces its keys: the old key no longer authenticates, the new one does.
    new_key = PrivateKey.generate(KeyType.P256)
    client.patch(
        f"/v1/admin/lenders/{client_id}",
        json={"jwks": jwks_of((new_key, "k1"))},
        headers=admin_headers(runtime),
    )
    now = now_of(clock)
    assert token_request(client, assertion(key, client_id, now)).status_code == 401
    assert token_request(client, assertion(new_key, client_id, now)).status_code == 200


def test_metadata_members(runtime: Runtime) -> None:
    metadata = oauth.authorization_server_metadata(runtime)
    assert metadata.token_endpoint == f"{ISSUER}/oauth/token"
    assert metadata.jwks_uri == f"{ISSUER}/oauth/jwks"
    assert metadata.token_endpoint_auth_methods_supported == ["private_key_jwt"]
    assert metadata.grant_types_supported == ["client_credentials"]
