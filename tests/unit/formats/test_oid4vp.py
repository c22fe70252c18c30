"""OpenID4VP 1.0 messages: client identifiers (§5.9), the request and its rules (§5, §8.2),
signed Request Objects (RFC 9101), the response and its encryption (§8.1-§8.3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.formats.oid4vp import (
    REQUEST_OBJECT_TYP,
    AuthorizationRequestInvalid,
    ClientIdPrefix,
    ErrorCode,
    ResponseDecryptionFailed,
    ResponseInvalid,
    decrypt_response,
    encrypt_response,
    new_response_encryption_key,
    parse_authorization_request,
    parse_authorization_response,
    parse_client_id,
    parse_invocation,
    parse_vp_token,
    read_request_object,
    read_unsigned_request_object,
    sign_request_object,
)
from credit_commons.keys.algorithms import KeyType, PrivateKey

DID = "did:web:verifier.example"
RESPONSE_URI = "https://verifier.example/v1/verifier/response/abc"
DCQL = {
    "credentials": [
        {
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": ["urn:vct"]},
            "claims": [{"path": ["given_name"]}],
        }
    ]
}


def _params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "client_id": f"decentralized_identifier:{DID}",
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": RESPONSE_URI,
        "nonce": "n-0S6_WzA2Mj",
        "state": "s-123",
        "dcql_query": DCQL,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def _redirect_params(**overrides: Any) -> dict[str, Any]:
    return _params(client_id=f"redirect_uri:{RESPONSE_URI}", **overrides)


# --- Client identifiers -------------------------------------------------------------------


def test_client_id_prefixes() -> None:
    assert parse_client_id("example-client").prefix is ClientIdPrefix.PRE_REGISTERED
    did = parse_client_id(f"decentralized_identifier:{DID}")
    assert (did.prefix, did.value, did.did) == (ClientIdPrefix.DECENTRALIZED_IDENTIFIER, DID, DID)
    redirect = parse_client_id("redirect_uri:https://client.example.org/cb")
    assert redirect.value == "https://client.example.org/cb"
    assert parse_client_id("redirect_uri:http://127.0.0.1:8000/cb").value.startswith("http:")
    # An unknown prefix falls back to a pre-registered client (§5.9.2).
    assert parse_client_id("https://client.example.org").prefix is ClientIdPrefix.PRE_REGISTERED
    with pytest.raises(ValueError, match="decentralized_identifier"):
        _ = redirect.did


@pytest.mark.parametrize(
    "client_id",
    [
        "x509_san_dns:client.example.org",
        "x509_hash:Uvo3HtuIxuhC92rShpgqcT3YXwrqRxWEviRiA0OZszk",
        "verifier_attestation:verifier.example",
        "openid_federation:https://federation-verifier.example.com",
        "origin:https://verifier.example.com/",
    ],
)
def test_recognised_prefixes_refused_by_name(client_id: str) -> None:
    with pytest.raises(AuthorizationRequestInvalid, match=r"prefix .* is not supported") as e:
        parse_client_id(client_id)
    assert e.value.error == "invalid_request"


@pytest.mark.parametrize(
    "client_id",
    [
        "",
        "redirect_uri:http://client.example.org/cb",  # not https, not loopback
        "redirect_uri:client.example.org",
        "redirect_uri:https://client.example.org/cb#frag",
        "decentralized_identifier:example:123",
        "decentralized_identifier:did:web:",
        "a\nb",
    ],
)
def test_malformed_client_ids(client_id: str) -> None:
    with pytest.raises(AuthorizationRequestInvalid):
        parse_client_id(client_id)


# --- The request --------------------------------------------------------------------------


def test_request_from_query_parameters_and_back() -> None:
    request = parse_authorization_request(_redirect_params(), signed=False)
    query = request.to_query()
    assert json.loads(query["dcql_query"]) == DCQL
    assert parse_authorization_request(query, signed=False) == request
    assert request.client.prefix is ClientIdPrefix.REDIRECT_URI


@pytest.mark.parametrize(
    ("params", "reason", "error"),
    [
        (
            _redirect_params(transaction_data=["e30"]),
            "transaction_data",
            "invalid_transaction_data",
        ),
        (_redirect_params(scope="com.example.pid"), "scope", "invalid_scope"),
        (_redirect_params(dcql_query=None), "no dcql_query", "invalid_request"),
        (_redirect_params(response_mode="fragment"), "response_mode", "invalid_request"),
        (_redirect_params(response_mode=None), "response_mode", "invalid_request"),
        (_redirect_params(redirect_uri=RESPONSE_URI), "redirect_uri must not", "invalid_request"),
        (_redirect_params(response_uri=None), "requires response_uri", "invalid_request"),
        (_redirect_params(response_type="code"), "response_type", "invalid_request"),
        (_redirect_params(nonce=None), "nonce", "invalid_request"),
        (_redirect_params(nonce="has space"), "nonce", "invalid_request"),
        (_redirect_params(state="é"), "state", "invalid_request"),
        (_redirect_params(dcql_query={"credentials": []}), "dcql_query", "invalid_request"),
        (_redirect_params(dcql_query="{not json"), "dcql_query", "invalid_request"),
        (
            _redirect_params(response_uri="https://elsewhere.example/post"),
            "response_uri must be the client identifier",
            "invalid_request",
        ),
        (_params(response_uri="http://verifier.example/post"), "https", "invalid_request"),
        (_params(response_mode="direct_post.jwt"), "client_metadata.jwks", "invalid_request"),
        (
            _params(client_metadata={"jwks": {"keys": [{"kty": "EC"}]}}),
            "kid",
            "invalid_request",
        ),
        (_params(client_id="x509_hash:abc"), "not supported", "invalid_request"),
        (
            _params(
                state=None,
                dcql_query={
                    "credentials": [
                        {**DCQL["credentials"][0], "require_cryptographic_holder_binding": False}
                    ]
                },
            ),
            "needs a state",
            "invalid_request",
        ),
    ],
)
def test_request_rules(params: dict[str, Any], reason: str, error: str) -> None:
    with pytest.raises(AuthorizationRequestInvalid) as e:
        parse_authorization_request(params, signed=params["client_id"].startswith("dec"))
    assert reason in e.value.detail
    assert e.value.error == error


def test_signing_rules_per_prefix() -> None:
    with pytest.raises(AuthorizationRequestInvalid, match="must not be signed"):
        parse_authorization_request(_redirect_params(), signed=True)
    with pytest.raises(AuthorizationRequestInvalid, match="must sign"):
        parse_authorization_request(_params(), signed=False)
    redirect = parse_authorization_request(_redirect_params(), signed=False)
    with pytest.raises(AuthorizationRequestInvalid, match="cannot be signed"):
        sign_request_object(redirect, PrivateKey.generate(), "kid")


def test_unknown_parameters_and_iss_are_ignored() -> None:
    request = parse_authorization_request(
        _params(iss="someone-else", aud="x", extension={"a": 1}), signed=True
    )
    assert "iss" not in request.to_payload()


# --- Request Objects ----------------------------------------------------------------------

KID = f"{DID}#key-1"


def _signed(key: PrivateKey, **overrides: Any) -> str:
    request = parse_authorization_request(_params(**overrides), signed=True)
    return sign_request_object(request, key, KID)


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_request_object_round_trip(key_type: KeyType) -> None:
    key = PrivateKey.generate(key_type)
    token = _signed(key, wallet_nonce="w-1")
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header == {"alg": key.alg, "kid": KID, "typ": REQUEST_OBJECT_TYP}
    asked: list[str] = []

    def key_for_kid(kid: str) -> Any:
        asked.append(kid)
        return key.public_key

    request = read_request_object(
        token, key_for_kid, client_id=f"decentralized_identifier:{DID}", wallet_nonce="w-1"
    )
    assert asked == [KID]
    assert request.nonce == "n-0S6_WzA2Mj"
    assert json.loads(b64url_decode(token.split(".")[1]))["aud"] == "https://self-issued.me/v2"


def _resign(key: PrivateKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    # A token made by hand, so the tests can build what sign_request_object refuses to.
    head = b64url_encode(json.dumps(header).encode())
    body = b64url_encode(json.dumps(payload).encode())
    signature = key.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64url_encode(signature)}"


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body, _ = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))


def test_request_object_tampering_refused() -> None:
    key, other = PrivateKey.generate(), PrivateKey.generate()
    client_id = f"decentralized_identifier:{DID}"
    token = _signed(key)
    header, payload = _parts(token)

    def read(t: str, *, client: str = client_id, verifier: PrivateKey = key) -> None:
        read_request_object(t, lambda _kid: verifier.public_key, client_id=client)

    cases: list[tuple[str, str]] = [
        (_resign(key, {**header, "typ": "JWT"}, payload), "typ"),
        (_resign(key, {k: v for k, v in header.items() if k != "typ"}, payload), "typ"),
        (_resign(key, {**header, "kid": "did:web:evil.example#key-1"}, payload), "kid"),
        (_resign(key, {**header, "kid": DID}, payload), "kid"),
        (_resign(key, {k: v for k, v in header.items() if k != "kid"}, payload), "kid"),
        (_resign(key, {**header, "alg": "HS256"}, payload), "not acceptable"),
        (_resign(key, {**header, "jwk": {"kty": "OKP"}}, payload), "not acceptable"),
        (_resign(key, header, {**payload, "nonce": "changed"}), "n/a"),
        (token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), "signature"),
        (_resign(other, header, payload), "signature"),
        (
            _resign(key, header, {**payload, "client_id": "decentralized_identifier:did:web:x"}),
            "client_id",
        ),
        (_resign(key, header, {**payload, "response_mode": "fragment"}), "response_mode"),
        ("not.a-token", "not acceptable"),
    ]
    for bad, reason in cases:
        if reason == "n/a":  # re-signed by the right key: a valid token, still accepted
            read(bad)
            continue
        with pytest.raises(AuthorizationRequestInvalid) as e:
            read(bad)
        assert reason in e.value.detail, (reason, e.value.detail)
    with pytest.raises(AuthorizationRequestInvalid, match="client_id"):
        read(token, client="decentralized_identifier:did:web:other.example")
    with pytest.raises(AuthorizationRequestInvalid, match="wallet_nonce"):
        read_request_object(
            token, lambda _kid: key.public_key, client_id=client_id, wallet_nonce="w-2"
        )


def test_signed_request_of_redirect_uri_client_refused() -> None:
    key = PrivateKey.generate()
    request = parse_authorization_request(_params(), signed=True)
    header = {"typ": REQUEST_OBJECT_TYP, "kid": "k", "alg": key.alg}
    payload = {**request.to_payload(), "client_id": f"redirect_uri:{RESPONSE_URI}"}
    with pytest.raises(AuthorizationRequestInvalid, match="must not be signed"):
        read_request_object(
            _resign(key, header, payload),
            lambda _kid: key.public_key,
            client_id=f"redirect_uri:{RESPONSE_URI}",
        )


# --- The response -------------------------------------------------------------------------


def test_vp_token_shapes() -> None:
    token = parse_vp_token('{"pid": ["eyJ...~"], "ldp": [{"type": ["VerifiablePresentation"]}]}')
    assert token.presentations["pid"] == ("eyJ...~",)
    assert token.to_json()["ldp"] == [{"type": ["VerifiablePresentation"]}]
    for bad in [
        "[]",
        "{}",
        '{"pid": []}',
        '{"pid": "x"}',
        '{"pid": [1]}',
        '{"p id": ["x"]}',
        '{"pid": [""]}',
        "not json",
        '{"pid": ["a"], "pid": ["b"]}',
    ]:
        with pytest.raises(ResponseInvalid):
            parse_vp_token(bad)


def test_direct_post_response() -> None:
    response = parse_authorization_response({"vp_token": '{"pid": ["x"]}', "state": "s"})
    assert response.vp_token is not None
    assert response.state == "s"
    error = parse_authorization_response(
        {"error": "access_denied", "error_description": "no", "state": "s"}
    )
    assert (error.error, error.vp_token) == (ErrorCode.ACCESS_DENIED, None)
    for bad in [
        {},
        {"state": "s"},
        {"error": "x", "vp_token": '{"pid": ["x"]}'},
        {"error": "", "state": "s"},  # RFC 6749: error = 1*NQSCHAR
        {"error": 'access"denied', "state": "s"},
        {"error": "refusé", "state": "s"},
    ]:
        with pytest.raises(ResponseInvalid):
            parse_authorization_response(bad)


def test_direct_post_jwt_round_trip() -> None:
    private, public = new_response_encryption_key("k1")
    assert "d" not in public
    assert public["alg"] == "ECDH-ES"
    assert public["kid"] == "k1"
    for enc in ("A128GCM", "A256GCM"):
        jwe = encrypt_response({"vp_token": {"pid": ["x"]}, "state": "s"}, public, enc)
        header = json.loads(b64url_decode(jwe.split(".")[0]))
        assert (header["alg"], header["enc"], header["kid"]) == ("ECDH-ES", enc, "k1")
        response = parse_authorization_response({"response": jwe}, decryption_key=private)
        assert response.vp_token is not None
        assert response.vp_token.to_json() == {"pid": ["x"]}
        assert response.state == "s"
    # An unencrypted vp_token when encryption was asked for, and the reverse, are refused.
    with pytest.raises(ResponseInvalid, match="must be encrypted"):
        parse_authorization_response({"vp_token": '{"pid": ["x"]}'}, decryption_key=private)
    with pytest.raises(ResponseInvalid, match="not asked for"):
        parse_authorization_response({"response": jwe})
    # An unencrypted error is allowed (§8.3.1).
    error = parse_authorization_response({"error": "access_denied"}, decryption_key=private)
    assert error.error == "access_denied"


def test_encryption_refuses_other_keys_and_encs() -> None:
    _, public = new_response_encryption_key("k1")
    with pytest.raises(AuthorizationRequestInvalid, match="enc"):
        encrypt_response({}, public, "A128CBC-HS256")
    with pytest.raises(AuthorizationRequestInvalid, match="ECDH-ES"):
        encrypt_response({}, {**public, "alg": "ECDH-ES+A128KW"}, "A128GCM")
    with pytest.raises(AuthorizationRequestInvalid, match="P-256"):
        encrypt_response({}, {**public, "crv": "P-384"}, "A128GCM")


def test_decryption_failures_are_opaque() -> None:
    private, public = new_response_encryption_key("k1")
    other, _ = new_response_encryption_key("k1")
    jwe = encrypt_response({"vp_token": {"pid": ["x"]}}, public, "A128GCM")
    head, key, iv, ciphertext, tag = jwe.split(".")
    header = json.loads(b64url_decode(head))

    def with_header(**changes: Any) -> str:
        new = b64url_encode(json.dumps({**header, **changes}).encode())
        return ".".join([new, key, iv, ciphertext, tag])

    flipped = ciphertext[:-2] + ("A" if ciphertext[-2] != "A" else "B") + ciphertext[-1]
    bad_tokens = [
        jwe + ".x",
        ".".join([head, key, iv, flipped, tag]),
        ".".join([head, key, iv, ciphertext, tag[::-1]]),
        with_header(enc="A256GCM"),  # authenticated header changed
        with_header(alg="RSA-OAEP"),
        with_header(alg="dir"),
        with_header(enc="A128CBC-HS256"),
        with_header(zip="DEF"),
        with_header(kid="k2"),
        "x" * 600_000,
        12,
    ]
    for bad in bad_tokens:
        with pytest.raises(ResponseDecryptionFailed) as e:
            decrypt_response(bad, private)
        assert e.value.detail == "The response could not be decrypted"
    with pytest.raises(ResponseDecryptionFailed):
        decrypt_response(jwe, other)  # same kid, another key
    with pytest.raises(ResponseDecryptionFailed):
        decrypt_response(jwe, public)  # no private part
    with pytest.raises(ResponseDecryptionFailed):
        decrypt_response(jwe, private, enc_values=["A256GCM"])


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20), max_size=4))
def test_encryption_round_trips_any_payload(payload: dict[str, str]) -> None:
    private, public = new_response_encryption_key("k")
    assert decrypt_response(encrypt_response(payload, public, "A256GCM"), private) == payload


# --- Invocation and unsigned Request Objects ---------------------------------------------


def test_parse_invocation() -> None:
    by_ref = parse_invocation(
        "openid4vp://?client_id=decentralized_identifier%3Adid%3Aweb%3Av.example"
        "&request_uri=https%3A%2F%2Fv.example%2Fr%2F1&request_uri_method=post"
    )
    assert by_ref.client_id == "decentralized_identifier:did:web:v.example"
    assert (by_ref.request_uri, by_ref.request_uri_method) == ("https://v.example/r/1", "post")
    assert parse_invocation("openid4vp://?client_id=c&request_uri=u").request_uri_method == "get"
    assert parse_invocation("openid4vp://?client_id=c&request=t").request == "t"
    assert parse_invocation("https://wallet.example/x?client_id=c&nonce=n").params["nonce"] == "n"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("openid4vp://?request_uri=u", "invalid_request"),
        ("openid4vp://?client_id=", "invalid_request"),
        ("openid4vp://?client_id=c&client_id=d", "invalid_request"),
        ("openid4vp://?client_id=c&request=t&request_uri=u", "invalid_request"),
        (
            "openid4vp://?client_id=c&request_uri=u&request_uri_method=GET",
            "invalid_request_uri_method",
        ),
        ("openid4vp://?client_id=c&request_uri_method=post", "invalid_request"),
        ("openid4vp://?client_id=c&broken", "invalid_request"),
    ],
)
def test_parse_invocation_refusals(url: str, error: str) -> None:
    with pytest.raises(AuthorizationRequestInvalid) as e:
        parse_invocation(url)
    assert e.value.error == error


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    head = b64url_encode(json.dumps(header).encode())
    return f"{head}.{b64url_encode(json.dumps(payload).encode())}."


def test_unsigned_request_objects() -> None:
    client_id = f"redirect_uri:{RESPONSE_URI}"
    payload = parse_authorization_request(_redirect_params(), signed=False).to_payload()
    header = {"alg": "none", "typ": REQUEST_OBJECT_TYP}
    request = read_unsigned_request_object(_unsigned(header, payload), client_id=client_id)
    assert request.client_id == client_id
    refusals = [
        (_unsigned({"alg": "none"}, payload), client_id, "typ"),
        (_unsigned({**header, "alg": "EdDSA"}, payload), client_id, "alg none"),
        (_unsigned({**header, "kid": "k"}, payload), client_id, "says too much"),
        (_unsigned(header, payload) + "c2ln", client_id, "empty signature"),
        (_unsigned(header, payload), "redirect_uri:https://other.example/cb", "client_id"),
        (
            _unsigned(header, {**_params(), "dcql_query": DCQL}),
            f"decentralized_identifier:{DID}",
            "must sign",
        ),
        ("a.b", client_id, "empty signature"),
        (12, client_id, "not acceptable"),
    ]
    for token, client, reason in refusals:
        with pytest.raises(AuthorizationRequestInvalid) as e:
            read_unsigned_request_object(token, client_id=client)
        assert reason in e.value.detail, (reason, e.value.detail)
