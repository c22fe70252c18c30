"""``POST /v1/reputation/members`` keeps the ``x5c`` chain of the issuer-signed JWT (issue
19: an X.509-certified issuer's status list is verified under the chain's end-entity key),
and nothing for a credential without one or with a malformed one."""

from __future__ import annotations

import json
from typing import Any

from credit_commons.core.encoding import b64url_encode, canonical_json
from credit_commons.gateway.routes.reputation_events import _issuer_signed


def _presentation(header: dict[str, Any]) -> str:
    protected = b64url_encode(canonical_json(header))
    payload = b64url_encode(canonical_json({"iss": "https://bank.example", "vct": "urn:x:y"}))
    return f"{protected}.{payload}.{b64url_encode(b'signature')}~"


def test_the_chain_is_kept_as_json() -> None:
    jwt, payload, x5c = _issuer_signed(_presentation({"alg": "ES256", "x5c": ["MIIB", "MIIC"]}))
    assert x5c is not None
    assert json.loads(x5c) == ["MIIB", "MIIC"]
    assert payload["iss"] == "https://bank.example"
    assert jwt.count(".") == 2


def test_no_chain_or_a_malformed_one_keeps_nothing() -> None:
    for header in ({"alg": "EdDSA"}, {"alg": "ES256", "x5c": "MIIB"}, {"x5c": [1, 2]}):
        assert _issuer_signed(_presentation(header))[2] is None
