"""SD-JWT verification rules (RFC 9901 §7), one rule at a time: Issuer-signed JWTs built
by hand so each violates exactly one rule, and the Key Binding JWT's checks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import pytest
from tests.unit.sd_jwt_support import (
    AUD,
    CLAIMS,
    HOLDER,
    ISSUER,
    NONCE,
    NOW,
    crafted_sd_jwt,
    make_credential,
    present_with_kb,
    raw_disclosure,
    segment,
    sha256_digest,
    signed_jwt,
    verify_plain,
    verify_with_kb,
)

from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import IntegrityError, ValidationError
from credit_commons.formats import sd_jwt_errors as errors
from credit_commons.formats.sd_jwt_format import MAX_DEPTH, b64_digest, split
from credit_commons.issuer.sd_jwt import (
    SdJwt,
    issue,
)
from credit_commons.keys.algorithms import PrivateKey, PublicKey
from credit_commons.keys.errors import KeyNotFound
from credit_commons.keys.jwk import private_key_to_jwk, public_key_to_jwk
from credit_commons.verifier.sd_jwt_verify import verify, verify_issuer_jwt

# -- verification: one rule at a time ------------------------------------------------------


def test_reserved_claim_names_in_disclosures() -> None:
    for name in ("_sd", "...", "_sd_alg"):
        d = raw_disclosure("salt", name, 1)
        with pytest.raises(errors.ReservedClaim):
            verify_plain(crafted_sd_jwt({"_sd": [sha256_digest(d)]}, d))


def test_array_element_disclosure_used_as_property() -> None:
    d = raw_disclosure("salt", "value")
    with pytest.raises(errors.DisclosureMisplaced) as caught:
        verify_plain(crafted_sd_jwt({"_sd": [sha256_digest(d)]}, d))
    assert caught.value.code == "credential.malformed"


def test_property_disclosure_used_as_array_element() -> None:
    d = raw_disclosure("salt", "name", "value")
    with pytest.raises(errors.DisclosureMisplaced):
        verify_plain(crafted_sd_jwt({"list": [{"...": sha256_digest(d)}]}, d))


def test_claim_name_that_already_exists() -> None:
    d = raw_disclosure("salt", "a", 2)
    with pytest.raises(errors.ClaimNameExists) as caught:
        verify_plain(crafted_sd_jwt({"a": 1, "_sd": [sha256_digest(d)]}, d))
    assert caught.value.code == "credential.reserved_claim"
    e = raw_disclosure("other", "a", 3)
    with pytest.raises(errors.ClaimNameExists):
        verify_plain(crafted_sd_jwt({"_sd": [sha256_digest(d), sha256_digest(e)]}, d, e))


def test_digest_collisions() -> None:
    d = raw_disclosure("salt", "a", 1)
    g = sha256_digest(d)
    decoy = sha256_digest("decoy")
    for payload in (
        {"_sd": [g, g]},  # a Disclosure referenced twice
        {"_sd": [g], "x": {"_sd": [g]}},
        {"_sd": [decoy, decoy]},  # a decoy repeated, no Disclosure at all
        {"_sd": [decoy], "x": [{"...": decoy}]},
    ):
        with pytest.raises(errors.DigestCollision):
            verify_plain(crafted_sd_jwt(payload, d))
    inner = raw_disclosure("s2", "b", {"_sd": [g]})
    with pytest.raises(errors.DigestCollision):
        verify_plain(crafted_sd_jwt({"_sd": [g, sha256_digest(inner)]}, d, inner))


def test_unreferenced_and_duplicate_disclosures() -> None:
    d = raw_disclosure("salt", "a", 1)
    with pytest.raises(errors.DisclosureUnreferenced):
        verify_plain(crafted_sd_jwt({}, d))
    with pytest.raises(errors.DisclosureDuplicate):
        verify_plain(crafted_sd_jwt({"_sd": [sha256_digest(d)]}, d, d))
    # A child Disclosure without the parent that embeds its digest is unreferenced too.
    child = raw_disclosure("c", "street", "x")
    parent = raw_disclosure("p", "address", {"_sd": [sha256_digest(child)]})
    assert verify_plain(
        crafted_sd_jwt({"_sd": [sha256_digest(parent)]}, parent, child)
    ).payload == {"address": {"street": "x"}}
    with pytest.raises(errors.DisclosureUnreferenced):
        verify_plain(crafted_sd_jwt({"_sd": [sha256_digest(parent)]}, child))


@pytest.mark.parametrize(
    "payload",
    [
        {"_sd": "digest"},
        {"_sd": [1]},
        {"_sd": [None]},
        {"x": {"_sd": {"a": 1}}},
    ],
)
def test_sd_must_be_an_array_of_strings(payload: dict[str, Any]) -> None:
    with pytest.raises(errors.Malformed):
        verify_plain(crafted_sd_jwt(payload))


@pytest.mark.parametrize(
    "payload",
    [
        {"...": "x"},
        {"x": {"...": "digest"}},
        {"x": [{"...": "digest", "extra": 1}]},
        {"x": [{"...": 5}]},
        {"x": {"_sd_alg": "sha-256"}},
    ],
)
def test_reserved_names_in_the_payload(payload: dict[str, Any]) -> None:
    with pytest.raises(errors.ReservedClaim):
        verify_plain(crafted_sd_jwt(payload))


def test_sd_alg_checks() -> None:
    with pytest.raises(errors.AlgorithmNotAllowed):
        verify_plain(crafted_sd_jwt({"_sd_alg": "md5"}))
    with pytest.raises(errors.Malformed):
        verify_plain(crafted_sd_jwt({"_sd_alg": 256}))
    assert verify_plain(crafted_sd_jwt({"_sd_alg": "sha-512", "a": 1})).payload == {"a": 1}


@pytest.mark.parametrize(
    "encoded",
    [
        b64url_encode(b'{"not": "an array"}'),
        raw_disclosure("only salt"),
        raw_disclosure("s", "n", "v", "extra"),
        raw_disclosure(1, "n", "v"),
        raw_disclosure("s", 7, "v"),
        b64url_encode(b'["s", "n", NaN]'),
        b64url_encode(b'["s", "n", {"a": 1, "a": 2}]'),
        b64url_encode(b"\xff\xfe"),
        b64url_encode(b"[") + "=",
        "Wy Jz",
        "WyJzIiwgInYiXQ==",
    ],
)
def test_malformed_disclosures(encoded: str) -> None:
    with pytest.raises(errors.Malformed):
        verify_plain(crafted_sd_jwt({}, encoded))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no-tilde",
        "a.b~",
        "a.b.c.d~",
        "~",
        "a.b.c~~",
        signed_jwt("not json at all") + "~",
        signed_jwt(b64url_encode(b"[1, 2]")) + "~",
        signed_jwt(b64url_encode(b'{"a": 1, "a": 2}')) + "~",
        signed_jwt(b64url_encode(b'{"a": Infinity}')) + "~",
        signed_jwt({"a": 1}).replace(".", ".x", 1) + "~",
    ],
)
def test_malformed_serializations(text: str) -> None:
    with pytest.raises(errors.Malformed):
        verify_plain(text)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{}",
        '{"payload": "e30", "signatures": []}',
        '{"payload": "e30", "protected": 1, "signature": ""}',
        '{"payload": "e30", "protected": "", "signature": "", "header": []}',
        '{"payload": "e30", "protected": "", "signature": "", "header": {"disclosures": "x"}}',
        '{"payload": "e30", "protected": "", "signature": "", "header": {"kb_jwt": ""}}',
    ],
)
def test_malformed_json_serializations(text: str) -> None:
    with pytest.raises(errors.Malformed):
        verify_plain(text, serialization="json")


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "HS512", "RS256", "PS256", "ES384"])
def test_algorithms_outside_the_allow_list(alg: str) -> None:
    calls = []

    def resolver(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
        calls.append(header)
        return ISSUER.public_key

    text = crafted_sd_jwt({"a": 1}, header={"alg": alg})
    with pytest.raises(errors.AlgorithmNotAllowed):
        verify_plain(text, issuer_key_resolver=resolver)
    assert not calls  # refused before any key is looked up


def test_key_type_confusion() -> None:
    text = crafted_sd_jwt({"a": 1}, header={"alg": "ES256"})  # signed by Ed25519, claims ES256
    with pytest.raises(errors.AlgorithmNotAllowed):
        verify_plain(text)
    assert verify_plain(crafted_sd_jwt({"a": 1}, header={"alg": "Ed25519"})).payload == {"a": 1}


@pytest.mark.parametrize("param", ["jwk", "jku", "x5u", "x5c", "crit"])
def test_headers_that_choose_a_key(param: str) -> None:
    value: Any = public_key_to_jwk(ISSUER.public_key) if param == "jwk" else ["x"]
    with pytest.raises(errors.EmbeddedKeyNotAllowed) as caught:
        verify_plain(crafted_sd_jwt({"a": 1}, header={param: value}))
    assert caught.value.code == "credential.algorithm_not_allowed"


def test_resolver_errors_propagate() -> None:
    def refuse(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
        raise KeyNotFound("unknown issuer")

    with pytest.raises(KeyNotFound):
        verify_plain(crafted_sd_jwt({"a": 1}), issuer_key_resolver=refuse)


def test_validity_claims_with_leeway() -> None:
    expiring = crafted_sd_jwt({"exp": NOW})
    verify_plain(expiring, now=NOW + 59)
    with pytest.raises(errors.Expired) as caught:
        verify_plain(expiring, now=NOW + 60)
    assert caught.value.extra == {"claim": "exp"}
    with pytest.raises(errors.Expired):
        verify_plain(expiring, now=NOW, leeway=0)
    for claim in ("nbf", "iat"):
        future = crafted_sd_jwt({claim: NOW + 61})
        with pytest.raises(errors.NotYetValid):
            verify_plain(future)
        verify_plain(future, now=NOW + 1)
    for bad in ("tomorrow", True, [1]):
        with pytest.raises(errors.Malformed):
            verify_plain(crafted_sd_jwt({"exp": bad}))


def test_validity_claims_may_be_selectively_disclosed() -> None:
    sd = issue({"exp": NOW - 3600}, disclosable=["/exp"], signer=ISSUER)
    with pytest.raises(errors.Expired):
        verify_plain(sd.serialize())


def test_deep_nesting_is_malformed_even_with_a_raised_recursion_limit() -> None:
    # py_ecc (imported with web3) raises the recursion limit to 100,000; the verifier must
    # not rely on RecursionError then, or a hostile depth overflows the C stack.
    deep = "[" * 100_000 + "]" * 100_000
    body = b64url_encode(('{"a": ' + deep + "}").encode())
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 100_000))
    try:
        with pytest.raises(errors.Malformed, match="deep"):
            verify_plain(signed_jwt(body) + "~")
    finally:
        sys.setrecursionlimit(limit)


def test_nesting_limit_boundary() -> None:
    def nested(levels: int) -> str:  # an object holding arrays: `levels` brackets deep
        return '{"a": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    ok = signed_jwt(b64url_encode(nested(MAX_DEPTH).encode())) + "~"
    assert "a" in verify_plain(ok).payload
    too_deep = signed_jwt(b64url_encode(nested(MAX_DEPTH + 1).encode())) + "~"
    with pytest.raises(errors.Malformed):
        verify_plain(too_deep)
    # Brackets inside strings, escaped quotes included, are not structure.
    text = json.dumps({"a": '\\"' + "[" * 500, "b": "{" * 500 + '\\"]'})
    assert verify_plain(signed_jwt(b64url_encode(text.encode())) + "~").payload["b"].startswith("{")


def test_chained_disclosures_are_depth_limited() -> None:
    def chain(length: int) -> str:
        disclosures: list[str] = []
        inner: dict[str, Any] = {"leaf": True}
        for i in range(length):
            d = raw_disclosure(f"s{i}", f"n{i}", inner)
            disclosures.append(d)
            inner = {"_sd": [sha256_digest(d)]}
        return crafted_sd_jwt(inner, *disclosures)

    assert verify_plain(chain(30)).payload
    with pytest.raises(errors.Malformed, match="deep"):
        verify_plain(chain(MAX_DEPTH + 2))


def test_claims_deeper_than_the_limit_are_refused() -> None:
    claims: dict[str, Any] = {"leaf": 1}
    for _ in range(MAX_DEPTH + 1):
        claims = {"x": claims}
    with pytest.raises(errors.ClaimsInvalid, match="deeper"):
        issue(claims, disclosable=[], signer=ISSUER)


# -- key binding -----------------------------------------------------------------------------


def _kb(header: Mapping[str, Any], payload: Mapping[str, Any], key: PrivateKey = HOLDER) -> str:
    signing_input = f"{segment(header)}.{segment(payload)}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"


def _with_kb(
    sd: SdJwt | str, header: Mapping[str, Any] | None = None, **claims: Any
) -> tuple[str, dict[str, Any]]:
    prefix = sd.jwt + "~" if isinstance(sd, SdJwt) else sd
    payload = {"nonce": NONCE, "aud": AUD, "iat": NOW, "sd_hash": b64_digest("sha-256", prefix)}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return prefix + _kb(header or {"alg": "EdDSA", "typ": "kb+jwt"}, payload), payload


def test_handmade_kb_jwt_verifies() -> None:
    text, _ = _with_kb(make_credential())
    assert verify_with_kb(text).key_binding is not None


@pytest.mark.parametrize(
    ("header", "claims", "expected"),
    [
        ({"alg": "EdDSA"}, {}, errors.KeyBindingInvalid),
        ({"alg": "EdDSA", "typ": "JWT"}, {}, errors.KeyBindingInvalid),
        ({"alg": "EdDSA", "typ": "kb+jwt", "jwk": {}}, {}, errors.EmbeddedKeyNotAllowed),
        ({"alg": "ES256", "typ": "kb+jwt"}, {}, errors.AlgorithmNotAllowed),
        ({"typ": "kb+jwt"}, {}, errors.KeyBindingInvalid),
        (None, {"iat": None}, errors.KeyBindingInvalid),
        (None, {"iat": "now"}, errors.KeyBindingInvalid),
        (None, {"aud": [AUD]}, errors.KeyBindingInvalid),
        (None, {"aud": None}, errors.KeyBindingInvalid),
        (None, {"nonce": 123}, errors.KeyBindingInvalid),
        (None, {"sd_hash": None}, errors.SdHashMismatch),
        (None, {"iat": NOW + 61}, errors.KbStale),
        (None, {"iat": NOW - 361}, errors.KbStale),
        (None, {"exp": NOW - 61}, errors.KbStale),
        (None, {"nbf": NOW + 61}, errors.KbStale),
        (None, {"aud": "https://other"}, errors.KbAudienceMismatch),
        (None, {"nonce": "other"}, errors.KbNonceMismatch),
    ],
)
def test_kb_jwt_rules(
    header: dict[str, Any] | None, claims: dict[str, Any], expected: type[Exception]
) -> None:
    text, _ = _with_kb(make_credential(), header, **claims)
    with pytest.raises(expected):
        verify_with_kb(text)


def test_kb_jwt_needs_a_usable_cnf_key() -> None:
    without = issue(CLAIMS, disclosable=[], signer=ISSUER)
    text, _ = _with_kb(without)
    with pytest.raises(errors.KeyBindingInvalid, match="cnf"):
        verify_with_kb(text)
    text, _ = _with_kb(crafted_sd_jwt({"cnf": {"jwk": private_key_to_jwk(HOLDER)}}))
    with pytest.raises(errors.KeyBindingInvalid, match="cnf"):
        verify_with_kb(text)
    two_parts = make_credential().serialize() + "a.b"
    with pytest.raises(errors.KeyBindingInvalid):
        verify_with_kb(two_parts)


def test_key_binding_can_be_forbidden() -> None:
    # An issuer-signed SD-JWT handed over as it is verifies; the same with a KB-JWT is a
    # presentation meant for someone else (issue 14 item 2).
    credential = make_credential()
    verify(
        credential.serialize(),
        issuer_key_resolver=lambda h, p: ISSUER.public_key,
        require_key_binding=False,
        forbid_key_binding=True,
        now=NOW,
    )
    with pytest.raises(errors.KeyBindingUnexpected):
        verify(
            present_with_kb(credential, set()),
            issuer_key_resolver=lambda h, p: ISSUER.public_key,
            require_key_binding=False,
            forbid_key_binding=True,
            now=NOW,
        )
    with pytest.raises(ValueError, match="both"):
        verify(
            credential.serialize(),
            issuer_key_resolver=lambda h, p: ISSUER.public_key,
            require_key_binding=True,
            forbid_key_binding=True,
            audience="a",
            nonce="n",
            now=NOW,
        )


def test_kb_age_is_configurable() -> None:
    text = present_with_kb(make_credential(), set())
    verify_with_kb(text, now=NOW + 3600, max_kb_age=3600)
    with pytest.raises(errors.KbStale):
        verify_with_kb(text, now=NOW + 3600)


def test_error_codes_are_stable() -> None:
    codes = {name: getattr(errors, name).code for name in errors.__all__}
    assert codes == {
        "SdJwtInvalid": "credential.invalid",
        "Malformed": "credential.malformed",
        "DisclosureMisplaced": "credential.malformed",
        "SignatureInvalid": "credential.signature_invalid",
        "AlgorithmNotAllowed": "credential.algorithm_not_allowed",
        "EmbeddedKeyNotAllowed": "credential.algorithm_not_allowed",
        "DisclosureUnreferenced": "credential.disclosure_unreferenced",
        "DisclosureDuplicate": "credential.disclosure_duplicate",
        "DigestCollision": "credential.digest_collision",
        "ReservedClaim": "credential.reserved_claim",
        "ClaimNameExists": "credential.reserved_claim",
        "KeyBindingMissing": "credential.key_binding_missing",
        "KeyBindingUnexpected": "credential.key_binding_unexpected",
        "KeyBindingInvalid": "credential.key_binding_invalid",
        "KbAudienceMismatch": "credential.kb_audience_mismatch",
        "KbNonceMismatch": "credential.kb_nonce_mismatch",
        "KbStale": "credential.kb_stale",
        "SdHashMismatch": "credential.sd_hash_mismatch",
        "Expired": "credential.expired",
        "NotYetValid": "credential.not_yet_valid",
        "ClaimsInvalid": "credential.claims_invalid",
        "DisclosurePathInvalid": "credential.sd_path_invalid",
    }
    assert issubclass(errors.ClaimsInvalid, ValidationError)
    assert issubclass(errors.SdJwtInvalid, IntegrityError)
    assert errors.SdJwtInvalid.status == 400
    for name in errors.__all__:
        assert getattr(errors, name).__doc__


def test_x5c_only_where_the_resolver_vouches_for_it() -> None:
    # The platform's pipeline takes an x5c chain's key itself (after verifying the chain
    # to an anchor): verify_issuer_jwt then lets x5c through, and nothing else.
    seen: list[Mapping[str, Any]] = []

    def chain_resolver(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
        seen.append(header)
        return ISSUER.public_key

    chained = split(crafted_sd_jwt({"a": 1}, header={"x5c": ["bGVhZg=="]}), "compact")
    signed = verify_issuer_jwt(chained, chain_resolver, key_headers=frozenset({"x5c"}))
    assert signed.payload == {"a": 1}
    assert seen[0]["x5c"] == ["bGVhZg=="]
    with pytest.raises(errors.EmbeddedKeyNotAllowed):  # not without key_headers
        verify_issuer_jwt(chained, chain_resolver)
    jwk = split(crafted_sd_jwt({"a": 1}, header={"jwk": {"kty": "OKP"}}), "compact")
    with pytest.raises(errors.EmbeddedKeyNotAllowed):  # jwk, jku, x5u: never
        verify_issuer_jwt(jwk, chain_resolver, key_headers=frozenset({"x5c"}))
    with pytest.raises(ValueError, match="only x5c"):
        verify_issuer_jwt(chained, chain_resolver, key_headers=frozenset({"jwk"}))
    # In a JWS JSON Serialization the chain must be protected by the signature.
    unprotected = issue(
        {"a": 1},
        disclosable=[],
        signer=ISSUER,
        unprotected_header={"x5c": ["bGVhZg=="]},
    ).serialize("json")
    with pytest.raises(errors.Malformed, match="protected"):
        verify_issuer_jwt(
            split(unprotected, "json"), chain_resolver, key_headers=frozenset({"x5c"})
        )
