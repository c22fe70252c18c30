"""Each of the four former compact-JWS parsers now goes through formats/jws.py, and refuses
what RFC 7515 says to refuse, each with its own error at its boundary:

* ``issuer/jws.decode_unverified`` (VC-JWT verification, the lender client's artefact and
  webhook check, remote status lists, and the service callers) — it ignored ``crit``, so a
  token with a critical extension nobody implements was accepted (RFC 7515 §4.1.11: "MUST be
  rejected"); these cases fail on the tree before the change;
* ``verifier/predicates.verify_attestation``, the SD-JWT issuer JWT and the Key Binding JWT —
  they refused duplicate members, padding and ``crit`` already, and still do.

A duplicate member name or a padded segment was already refused by every parser (``core``'s
strict decoders): those cases are kept here so that no caller can regress to a lenient one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from credit_commons.client.errors import ArtefactInvalid
from credit_commons.client.verify import verify_platform_jws
from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.errors import CommonsError
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats import sd_jwt_errors
from credit_commons.formats.sd_jwt_format import b64_digest
from credit_commons.formats.status_list import StatusList
from credit_commons.formats.vc_jwt import VcJwtInvalid, issue_vc_jwt, verify_vc_jwt
from credit_commons.identity.predicates import (
    ATTESTATION_TYP,
    ClaimResult,
    PredicateRequest,
    sign_attestation,
)
from credit_commons.issuer.sd_jwt import issue
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier.predicate_errors import AttestationInvalid
from credit_commons.verifier.predicates import verify_attestation
from credit_commons.verifier.sd_jwt_verify import verify as verify_sd_jwt
from credit_commons.verifier.status_fetch import StatusListFetcher, StatusListRejected

KEY = PrivateKey.generate(KeyType.ED25519)
NOW = 1_800_000_000
CASES = pytest.mark.parametrize(
    "case", ["duplicate header member", "padded payload", "crit not understood"]
)


def _seg(value: dict[str, Any] | str) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return b64url_encode(text.encode("utf-8"))


def _sign(header: dict[str, Any] | str, payload: dict[str, Any] | str) -> str:
    signing_input = f"{_seg(header)}.{_seg(payload)}"
    return f"{signing_input}.{b64url_encode(KEY.sign(signing_input.encode('ascii')))}"


def _dup_header(header: dict[str, Any]) -> str:
    # The same header with its alg member written twice (the last one is the real one).
    assert "alg" in header
    text = json.dumps(header)
    return "{" + f'"alg": "none", {text[1:]}'


def _padded(token: str) -> str:
    # Re-signed, so that only the padding of the payload segment is wrong.
    head, body, _ = token.split(".")
    body += "=" * (-len(body) % 4 or 2)
    signing_input = f"{head}.{body}"
    return f"{signing_input}.{b64url_encode(KEY.sign(signing_input.encode('ascii')))}"


def _variants(header: dict[str, Any], payload: dict[str, Any]) -> dict[str, str]:
    return {
        "duplicate header member": _sign(_dup_header(header), payload),
        "padded payload": _padded(_sign(header, payload)),
        "crit not understood": _sign({**header, "crit": ["ext"], "ext": 1}, payload),
    }


# -- former parser 1: issuer/jws.decode_unverified and its callers -------------------------


def _vc_jwt_header_payload() -> tuple[dict[str, Any], dict[str, Any]]:
    token = issue_vc_jwt(
        type_name="CreditReadiness",
        claims={"score": 700},
        issuer="https://commons.example",
        holder_did="did:key:z6Mk",
        credential_id="crd_1",
        status_uri="https://commons.example/status-lists/sl_1",
        status_index=3,
        iat=NOW,
        exp=NOW + 3600,
        signer=KEY,
        kid="k1",
    )
    head, body, _ = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))


@CASES
def test_vc_jwt_refuses(case: str) -> None:
    header, payload = _vc_jwt_header_payload()
    good = _sign(header, payload)
    assert verify_vc_jwt(good, KEY.public_key, algs=ACCEPTED_ALGS, now=NOW) == payload
    with pytest.raises((VcJwtInvalid, CommonsError)) as info:
        verify_vc_jwt(_variants(header, payload)[case], KEY.public_key, algs=ACCEPTED_ALGS, now=NOW)
    assert info.value.status == 400


@CASES
def test_lender_client_artefact_check_refuses(case: str) -> None:
    jwks = {"keys": [{**public_key_to_jwk(KEY.public_key), "kid": "k1"}]}
    header = {"alg": KEY.alg, "typ": "consent+jwt", "kid": "k1"}
    payload = {"iss": "https://commons.example", "consentId": "cns_1"}
    check = {"typ": "consent+jwt", "issuer": "https://commons.example", "error": ArtefactInvalid}
    assert verify_platform_jws(_sign(header, payload), jwks, **check) == payload  # type: ignore[arg-type]
    with pytest.raises(ArtefactInvalid):
        verify_platform_jws(_variants(header, payload)[case], jwks, **check)  # type: ignore[arg-type]


@CASES
def test_remote_status_list_refuses(case: str) -> None:
    uri = "https://issuer.example/status-lists/sl_1"
    header = {"alg": KEY.alg, "typ": "statuslist+jwt", "kid": "k1"}
    payload = {"sub": uri, "iat": NOW, "exp": NOW + 600, "status_list": StatusList.new(8).to_json()}
    bodies = [_sign(header, payload), _variants(header, payload)[case]]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=bodies.pop(0))

    fetcher = OutboundFetcher(
        transport=httpx.MockTransport(handler), resolver=lambda _h: ["93.184.216.34"]
    )
    lists = StatusListFetcher(fetcher, lambda _h: KEY.public_key, clock=lambda: NOW, max_ttl=0)
    lists.status(uri, 1)  # the good one
    with pytest.raises(StatusListRejected):
        StatusListFetcher(fetcher, lambda _h: KEY.public_key, clock=lambda: NOW).status(uri, 1)


# -- former parser 2: verifier/predicates.verify_attestation -------------------------------


def _attestation() -> tuple[dict[str, Any], dict[str, Any]]:
    request = PredicateRequest.model_validate(
        {
            "claims": [{"attribute": "age", "operator": ">=", "value": 60}],
            "nonce": "n0nce-0123456789abcdef",
            "audience": "https://lender.example",
        }
    )
    token = sign_attestation(
        [ClaimResult(claim="age >= 60", satisfied=True)],
        subject="idt_a1b2c3d4e5f6",
        request=request,
        issuer="https://commons.example",
        signer=KEY,
        kid="k1",
        now=datetime.fromtimestamp(NOW, UTC),
    )
    head, body, _ = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))


@CASES
def test_predicate_attestation_refuses(case: str) -> None:
    header, payload = _attestation()
    assert header["typ"] == ATTESTATION_TYP
    check = {
        "public_key": KEY.public_key,
        "audience": "https://lender.example",
        "nonce": "n0nce-0123456789abcdef",
        "now": datetime.fromtimestamp(NOW, UTC),
    }
    verify_attestation(_sign(header, payload), **check)  # type: ignore[arg-type]
    with pytest.raises(AttestationInvalid):
        verify_attestation(_variants(header, payload)[case], **check)  # type: ignore[arg-type]


# -- former parsers 3 and 4: the SD-JWT issuer JWT and the Key Binding JWT -----------------


def _sd_jwt_verify(presentation: str, *, key_binding: bool) -> None:
    verify_sd_jwt(
        presentation,
        issuer_key_resolver=lambda _h, _p: KEY.public_key,
        require_key_binding=key_binding,
        audience="https://verifier.example" if key_binding else None,
        nonce="n-1" if key_binding else None,
        now=NOW,
    )


@CASES
def test_sd_jwt_issuer_jwt_refuses(case: str) -> None:
    sd = issue({"iss": "https://commons.example", "score": 700}, disclosable=[], signer=KEY)
    header, payload = sd.header, sd.payload
    _sd_jwt_verify(_sign(header, payload) + "~", key_binding=False)
    with pytest.raises(sd_jwt_errors.SdJwtInvalid):
        _sd_jwt_verify(_variants(header, payload)[case] + "~", key_binding=False)


@CASES
def test_sd_jwt_key_binding_jwt_refuses(case: str) -> None:
    holder_jwk = public_key_to_jwk(KEY.public_key)
    sd = issue(
        {"iss": "https://commons.example"}, disclosable=[], signer=KEY, holder_jwk=holder_jwk
    )
    issued = sd.serialize()
    header = {"alg": KEY.alg, "typ": "kb+jwt"}
    payload = {
        "iat": NOW,
        "aud": "https://verifier.example",
        "nonce": "n-1",
        "sd_hash": b64_digest("sha-256", issued),
    }
    _sd_jwt_verify(issued + _sign(header, payload), key_binding=True)
    with pytest.raises(sd_jwt_errors.SdJwtInvalid):
        _sd_jwt_verify(issued + _variants(header, payload)[case], key_binding=True)
