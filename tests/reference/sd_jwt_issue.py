"""Naive references for the SD-JWT issuance fast paths (what they are checked against).

These are the straightforward forms the optimised code in ``issuer/sd_jwt.py`` and
``issuer/sd_jwt_format.py`` replaced: one recursive call per claim, and whole-value JSON
encoding of a Disclosure array and of a JOSE header.
"""

from __future__ import annotations

import math
from typing import Any

from credit_commons.core.encoding import b64url_encode
from credit_commons.formats.sd_jwt_format import MAX_DEPTH, RESERVED_NAMES, JsonEncoding


def check_claims(node: object, depth: int = 0) -> str | None:
    """Why ``node`` cannot be SD-JWT claims (a short reason), or ``None`` when it can."""
    if depth > MAX_DEPTH:
        return "deep"
    if type(node) in (str, int, bool) or node is None:
        return None
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                return "key"
            if key in RESERVED_NAMES:
                return "reserved"
            reason = check_claims(value, depth + 1)
            if reason:
                return reason
        return None
    if isinstance(node, list):
        for value in node:
            reason = check_claims(value, depth + 1)
            if reason:
                return reason
        return None
    if isinstance(node, float) and not math.isfinite(node):
        return "nan"
    if not isinstance(node, str | int | float):
        return "type"
    return None


def disclosure_text(salt: str, name: str | None, value: Any, encoding: JsonEncoding) -> str:
    """The base64url Disclosure of RFC 9901 §4.2.1/§4.2.2, the whole array encoded at once."""
    parts = [salt, value] if name is None else [salt, name, value]
    return b64url_encode(encoding.dumps(parts).encode("utf-8"))


def protected_segment(alg: str, header: dict[str, Any], encoding: JsonEncoding) -> str:
    """The protected header segment, encoded afresh."""
    return b64url_encode(encoding.dumps({"alg": alg, **header}).encode("utf-8"))
