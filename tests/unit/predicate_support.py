"""Shared by the predicate-attestation tests: the issuing side's
(``tests/unit/identity/test_predicates.py``) and the verifier's
(``tests/unit/verifier/test_predicates.py``).  Attribute values here are synthetic."""

import json
from datetime import UTC, date, datetime
from typing import Any

from credit_commons.core.encoding import b64url_decode, b64url_encode, canonical_json
from credit_commons.identity.predicates import (
    Attestation,
    PredicateRequest,
    evaluate,
    sign_attestation,
)
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.verifier.predicates import verify_attestation

SUBJECT = "idt_a1b2c3d4e5f6"
NONCE = "n0nce-0123456789abcdef"
AUDIENCE = "https://lender.example/client/42"
ISSUER = "https://commons.example"
NOW = datetime(2026, 2, 26, 10, 5, tzinfo=UTC)
TODAY = NOW.date()

# Seed 003 §4.3: "Is user eligible for senior citizen scheme?"
SEED_CLAIMS = [
    {"attribute": "age", "operator": ">=", "value": 60},
    {"attribute": "income_annual", "operator": "<=", "value": 500000},
    {"attribute": "state", "operator": "==", "value": "UP"},
]
SEED_TEXTS = ["age >= 60", "income_annual <= 500000", "state == UP"]
HELD = {"birth_date": "1961-07-15", "income_annual": 412345, "state": "UP"}

KEYS = {kt: PrivateKey.generate(kt) for kt in KeyType}


def make_request(*claims: dict[str, Any], **members: Any) -> PredicateRequest:
    body = {"claims": list(claims or SEED_CLAIMS), "nonce": NONCE, "audience": AUDIENCE}
    return PredicateRequest.model_validate(body | members)


def claim(attribute: str, op: str, value: object) -> dict[str, Any]:
    return {"attribute": attribute, "operator": op, "value": value}


def answers(
    attributes: dict[str, object], *claims: dict[str, Any], today: date = TODAY
) -> list[bool]:
    return [r.satisfied for r in evaluate(make_request(*claims), attributes, today=today)]


def issue(key: PrivateKey, attributes: dict[str, object] = HELD, **kw: Any) -> str:
    request = make_request()
    results = evaluate(request, attributes, today=TODAY)
    args: dict[str, Any] = {
        "subject": SUBJECT, "request": request, "issuer": ISSUER, "now": NOW, "kid": "key-1"
    }  # fmt: skip
    return sign_attestation(results, signer=key, **(args | kw))


def verify(token: str, key: PrivateKey | PublicKey, **kw: Any) -> Attestation:
    public = key.public_key if isinstance(key, PrivateKey) else key
    args: dict[str, Any] = {"audience": AUDIENCE, "nonce": NONCE, "now": NOW}
    return verify_attestation(token, public_key=public, **(args | kw))


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def signing_input(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes) -> str:
    raw = [p if isinstance(p, bytes) else canonical_json(p) for p in (header, payload)]
    return ".".join(b64url_encode(p) for p in raw)


def forge(key: PrivateKey, header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes) -> str:
    """Sign arbitrary header and payload with a good key, to reach the checks after step 4."""
    text = signing_input(header, payload)
    return f"{text}.{b64url_encode(key.sign(text.encode()))}"


def flip(part: str, byte: int, bit: int = 0) -> str:
    raw = bytearray(b64url_decode(part))
    raw[byte] ^= 1 << bit
    return b64url_encode(bytes(raw))
