"""Webhook notices verified by the lender client with the platform's published keys, and
their tampered siblings, each refused as ``lender.webhook_invalid``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from credit_commons.client import Lender, LenderNotConfigured, WebhookInvalid
from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.formats.jws import sign_compact
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk

PLATFORM = "https://commons.example"
CLIENT = "lnd_01JABCDEFGHJKMNPQRSTVWXYZ0"
KEY = PrivateKey.from_raw(KeyType.ED25519, b"\x07" * 32)
JWKS = {"keys": [public_key_to_jwk(KEY.public_key, kid="consent-1")]}
PAYLOAD = {
    "iss": PLATFORM,
    "aud": CLIENT,
    "iat": 1_700_000_000,
    "jti": "whk_1",
    "consent_id": "cns_01JABCDEFGHJKMNPQRSTVWXYZ0",
    "status": "ACTIVE",
    "event_id": "evt_01JABCDEFGHJKMNPQRSTVWXYZ0",
}
HEADER = {"typ": "consent-event+jwt", "kid": "consent-1"}


def _notice(header: dict[str, Any] | None = None, key: PrivateKey = KEY, **claims: Any) -> str:
    payload = {k: v for k, v in {**PAYLOAD, **claims}.items() if v is not None}
    return sign_compact(header or HEADER, payload, key)


@pytest.fixture
def lender() -> Lender:
    return Lender(PLATFORM, client_id=CLIENT)


def test_a_notice_verifies(lender: Lender) -> None:
    notice = lender.verify_webhook(_notice().encode(), jwks=JWKS)
    assert notice.as_json() == {
        "consent_id": PAYLOAD["consent_id"],
        "status": "ACTIVE",
        "event_id": PAYLOAD["event_id"],
        "issued_at": PAYLOAD["iat"],
    }
    # With a trailing newline (as a file holds it) too.
    assert lender.verify_webhook(_notice() + "\n", jwks=JWKS) == notice


def _swap_payload(token: str, **claims: Any) -> str:
    header, payload, signature = token.split(".")
    changed = {**json.loads(b64url_decode(payload)), **claims}
    return ".".join([header, b64url_encode(json.dumps(changed).encode()), signature])


def _alg_none(token: str) -> str:
    _, payload, _ = token.split(".")
    none = b64url_encode(json.dumps({**HEADER, "alg": "none"}).encode())
    return f"{none}.{payload}."


TAMPERED = {
    "payload changed after signing": lambda: _swap_payload(_notice(), status="REVOKED"),
    "signed by another key": lambda: _notice(key=PrivateKey.generate()),
    "a kid the platform does not publish": lambda: _notice({**HEADER, "kid": "other"}),
    "another typ": lambda: _notice({**HEADER, "typ": "consent+jwt"}),
    "an embedded key": lambda: _notice(
        {**HEADER, "jwk": public_key_to_jwk(PrivateKey.generate().public_key)}
    ),
    "alg none": lambda: _alg_none(_notice()),
    "for another lender": lambda: _notice(aud="lnd_someoneelse0000000000000"),
    "from another platform": lambda: _notice(iss="https://other.example"),
    "without a consent id": lambda: _notice(consent_id=None),
    "without a time": lambda: _notice(iat=None),
    "not a JWS": lambda: "not-a-jws",
    "not ASCII": lambda: b"\xe9.\xe9.\xe9",
}


@pytest.mark.parametrize("name", sorted(TAMPERED))
def test_tampered_siblings_are_refused(lender: Lender, name: str) -> None:
    with pytest.raises(WebhookInvalid):
        lender.verify_webhook(TAMPERED[name](), jwks=JWKS)


def test_a_client_id_is_needed(lender: Lender) -> None:
    lender.client_id = None
    with pytest.raises(LenderNotConfigured):
        lender.verify_webhook(_notice(), jwks=JWKS)
