"""The one OAuth error type (formats/oauth.py, RFC 6749 §5.2)."""

from __future__ import annotations

import pytest

from credit_commons.formats.oauth import OAuthError
from credit_commons.gateway.oauth import TokenError
from credit_commons.issuer import oid4vci


def test_body_and_status() -> None:
    error = OAuthError("invalid_grant", "the code is used")
    assert error.body() == {"error": "invalid_grant", "error_description": "the code is used"}
    assert error.status == 400
    assert OAuthError("invalid_token", "no token", status=401).status == 401


@pytest.mark.parametrize("code", ["", "bad code", 'say "no"', "back\\slash", "é"])
def test_error_codes_are_rfc_6749_codes(code: str) -> None:
    with pytest.raises(ValueError, match=r"§5\.2"):
        OAuthError(code, "x")


def test_the_token_endpoint_and_oid4vci_share_it() -> None:
    assert oid4vci.OAuthError is OAuthError
    refused = TokenError("invalid_client", "failed", status=401, reason="auth.x", actor="a")
    assert isinstance(refused, OAuthError)
    assert refused.body() == {"error": "invalid_client", "error_description": "failed"}
    assert (refused.status, refused.reason, refused.actor) == (401, "auth.x", "a")
