"""SD-JWT issuance, presentation and verification rules (RFC 9901), one rule at a time.

Rejection tests build Issuer-signed JWTs by hand so each violates exactly one rule; the
property test checks issue → present → verify against a naive reference of what a verifier
must see.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import IntegrityError, ValidationError
from credit_commons.formats import sd_jwt_errors as errors
from credit_commons.formats.sd_jwt_format import HASH_ALGORITHMS, MAX_DEPTH, b64_digest
from credit_commons.issuer.sd_jwt import (
    COMPACT_JSON,
    Disclosure,
    SdJwt,
    add_signature,
    compact_sd_jwt,
    disclosure_paths,
    issue,
    new_salt,
    prepare,
    present,
)
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.errors import KeyNotFound
from credit_commons.keys.jwk import private_key_to_jwk, public_key_to_jwk
from credit_commons.verifier.sd_jwt_verify import Verified, verify

ISSUER = PrivateKey.from_raw(KeyType.ED25519, b"\x01" * 32)
HOLDER = PrivateKey.from_raw(KeyType.ED25519, b"\x02" * 32)
P256 = PrivateKey.from_raw(KeyType.P256, bytes(31) + b"\x05")
NOW = 1_700_000_000
AUD = "https://verifier.example"
NONCE = "abc123"

CLAIMS: dict[str, Any] = {
    "iss": "https://issuer.example",
    "iat": NOW - 100,
    "given_name": "Asha",
    "address": {"street": "MG Road 1", "city": "Pune", "country": "IN"},
    "nationalities": ["IN", "DE", "FR"],
    "score": {"commitment": "c0ffee", "opening": {"salt": "s", "value": 712}},
}
PATHS = [
    "/given_name",
    "/address",
    "/address/street",
    "/nationalities/0",
    "/nationalities/2",
    "/score/opening",
]


def _salts() -> Callable[[], str]:
    counter = count()
    return lambda: f"salt-{next(counter)}"


def _resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
    return ISSUER.public_key


def _credential(**kwargs: Any) -> SdJwt:
    args: dict[str, Any] = {
        "disclosable": PATHS,
        "signer": ISSUER,
        "header": {"typ": "dc+sd-jwt"},
        "holder_jwk": public_key_to_jwk(HOLDER.public_key),
    }
    args.update(kwargs)
    return issue(CLAIMS, **args)


def _verify(text: str, **kwargs: Any) -> Verified:
    args: dict[str, Any] = {
        "issuer_key_resolver": _resolve,
        "require_key_binding": False,
        "now": NOW,
    }
    args.update(kwargs)
    return verify(text, **args)


def _present_kb(sd: SdJwt, disclose: Any, **kwargs: Any) -> str:
    args: dict[str, Any] = {"holder_signer": HOLDER, "audience": AUD, "nonce": NONCE, "iat": NOW}
    args.update(kwargs)
    return present(sd, disclose=disclose, **args)


def _verify_kb(text: str, **kwargs: Any) -> Verified:
    args: dict[str, Any] = {"require_key_binding": True, "audience": AUD, "nonce": NONCE}
    args.update(kwargs)
    return _verify(text, **args)


# -- crafting Issuer-signed JWTs that break one rule each -----------------------------------


def _seg(value: object) -> str:
    return b64url_encode(json.dumps(value).encode())


def _jwt(payload: object, header: Mapping[str, Any] | None = None, key: PrivateKey = ISSUER) -> str:
    head = _seg({"alg": key.alg, **(header or {})})
    body = payload if isinstance(payload, str) else _seg(payload)
    signing_input = f"{head}.{body}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"


def _raw_disclosure(*parts: object) -> str:
    return b64url_encode(json.dumps(list(parts)).encode())


def _digest(encoded: str) -> str:
    return b64_digest("sha-256", encoded)


def _crafted(payload: object, *disclosures: str, header: Mapping[str, Any] | None = None) -> str:
    return _jwt(payload, header) + "~" + "".join(d + "~" for d in disclosures)


# -- issuance --------------------------------------------------------------------------------


@pytest.mark.parametrize("signer", [ISSUER, P256])
def test_prepare_then_complete_is_issue(signer: PrivateKey) -> None:
    # The bulk issuance path prepares a batch, signs every signing input at once, then
    # completes each: the same SD-JWT, byte for byte, as issue() (Ed25519 signatures are
    # deterministic; ES256 ones are checked by verification instead).
    prepared = prepare(
        CLAIMS,
        disclosable=PATHS,
        alg=signer.alg,
        header={"typ": "dc+sd-jwt"},
        salt=_salts(),
        holder_jwk=public_key_to_jwk(HOLDER.public_key),
    )
    signature = signer.sign(prepared.signing_input)
    completed = prepared.complete(signature).serialize()
    assert compact_sd_jwt(prepared.signing_input, prepared.disclosures_text, signature) == (
        completed
    )
    issued = _credential(signer=signer, salt=_salts()).serialize()
    if signer is ISSUER:
        assert completed == issued
    else:
        assert completed.split("~")[1:] == issued.split("~")[1:]
    assert completed.split("~")[0].rsplit(".", 1)[0] == prepared.signing_input.decode()
    verified = verify(
        completed,
        issuer_key_resolver=lambda *_: signer.public_key,
        require_key_binding=False,
        now=NOW,
    )
    assert verified.payload["given_name"] == "Asha"
    with pytest.raises(ValueError, match="header alg"):  # refused as issue() refuses it
        prepare(CLAIMS, disclosable=PATHS, alg="EdDSA", header={"alg": "ES256"})


def test_issued_payload_shape() -> None:
    sd = _credential(salt=_salts())
    payload = sd.payload
    assert payload["_sd_alg"] == "sha-256"
    assert payload["cnf"] == {"jwk": public_key_to_jwk(HOLDER.public_key)}
    assert next(iter(payload)) == "_sd"
    assert payload["_sd"] == sorted(payload["_sd"])
    assert "given_name" not in payload
    assert "address" not in payload
    assert payload["nationalities"][1] == "DE"
    assert set(payload["nationalities"][0]) == {"..."}
    assert payload["score"]["commitment"] == "c0ffee"
    # Recursive disclosure: the address Disclosure itself carries the street digest.
    address = next(d for d in sd.disclosures if d.name == "address")
    assert set(address.value) == {"_sd", "city", "country"}
    # The children are built (and salted) before their parent, as sd-jwt-python does.
    assert [d.name for d in sd.disclosures] == [
        "given_name",
        "street",
        "address",
        None,
        None,
        "opening",
    ]
    assert [d.salt for d in sd.disclosures] == [f"salt-{i}" for i in range(6)]
    assert sd.header == {"alg": "EdDSA", "typ": "dc+sd-jwt"}


def test_default_salts_are_128_bit_and_unique() -> None:
    sd = _credential()
    salts = [d.salt for d in sd.disclosures]
    assert len(set(salts)) == len(salts)
    assert all(len(s) == 22 for s in salts)
    assert len(new_salt()) == 22


def test_full_issuance_verifies_to_the_claims() -> None:
    sd = _credential()
    verified = _verify(sd.serialize())
    assert verified.payload == {**CLAIMS, "cnf": sd.payload["cnf"]}
    assert len(verified.disclosures) == len(PATHS)


def test_decoys_are_added_to_every_sd_array_and_ignored() -> None:
    sd = _credential(decoys=3)
    assert len(sd.payload["_sd"]) == 2 + 3  # given_name, address
    assert len(sd.payload["score"]["_sd"]) == 1 + 3
    assert "_sd" not in sd.payload["cnf"]["jwk"]
    assert _verify(sd.serialize()).payload == {**CLAIMS, "cnf": sd.payload["cnf"]}


@pytest.mark.parametrize("alg", ["sha-256", "sha-384", "sha-512", "sha3-256"])
def test_hash_algorithms(alg: str) -> None:
    sd = _credential(hash_alg=alg)
    assert sd.payload["_sd_alg"] == alg
    text = _present_kb(sd, {"/address/street"})
    assert _verify_kb(text).payload["address"]["street"] == "MG Road 1"
    with pytest.raises(errors.AlgorithmNotAllowed):
        _verify_kb(text, accepted_hash_algs=frozenset(HASH_ALGORITHMS) - {alg})


def test_unknown_hash_algorithm_is_refused_at_issuance() -> None:
    with pytest.raises(ValueError, match="hash"):
        _credential(hash_alg="md5")


@pytest.mark.parametrize(
    "claims",
    [
        {"_sd": []},
        {"a": {"...": "x"}},
        {"a": [{"_sd_alg": "sha-256"}]},
        {"_sd_alg": "sha-256"},
        {1: "non-string key"},
        {"a": float("nan")},
        {"a": float("inf")},
        {"a": (1, 2)},
        {"a": {1, 2}},
        {"a": b"bytes"},
    ],
)
def test_claims_an_sd_jwt_cannot_carry(claims: dict[Any, Any]) -> None:
    with pytest.raises(errors.ClaimsInvalid):
        issue(claims, disclosable=[], signer=ISSUER)


def test_cnf_twice_is_refused() -> None:
    holder = public_key_to_jwk(HOLDER.public_key)
    with pytest.raises(errors.ClaimsInvalid):
        issue({"cnf": {}}, disclosable=[], signer=ISSUER, holder_jwk=holder)


@pytest.mark.parametrize("jwk", [private_key_to_jwk(HOLDER), {"kty": "oct", "k": "AA"}, {}])
def test_holder_jwk_must_be_a_public_key(jwk: dict[str, str]) -> None:
    with pytest.raises(errors.ClaimsInvalid, match="holder_jwk"):
        issue({}, disclosable=[], signer=ISSUER, holder_jwk=jwk)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "given_name",
        "/missing",
        "/nationalities/3",
        "/nationalities/01",
        "/nationalities/-1",
        "/nationalities/x",
        "/given_name/deeper",
        "/address/street~2",
        "/address~",
    ],
)
def test_disclosable_paths_must_name_a_claim(path: str) -> None:
    with pytest.raises(errors.DisclosurePathInvalid):
        _credential(disclosable=[path])


def test_path_escapes_and_numeric_keys() -> None:
    claims = {"a/b": 1, "m~n": 2, "42": 3, "": 4, "list": [[5, 6]]}
    sd = issue(claims, disclosable=["/a~1b", "/m~0n", "/42", "/", "/list/0/1"], signer=ISSUER)
    assert set(disclosure_paths(sd)) == {"/a~1b", "/m~0n", "/42", "/", "/list/0/1"}
    assert _verify(sd.serialize()).payload == {**claims}
    shown = _verify(present(sd, disclose={"/a~1b", "/"})).payload
    assert shown == {"a/b": 1, "": 4, "list": [[5]]}


@pytest.mark.parametrize(
    ("header", "signer"),
    [
        ({"alg": "ES256"}, ISSUER),
        ({"jwk": {}}, ISSUER),
        ({"x5c": []}, ISSUER),
        ({"crit": []}, P256),
    ],
)
def test_issuer_header_cannot_choose_alg_or_key(header: dict[str, Any], signer: PrivateKey) -> None:
    with pytest.raises(ValueError, match="header"):
        issue({}, disclosable=[], signer=signer, header=header)


def test_repeating_salt_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="salt"):
        _credential(salt=lambda: "same")


def test_negative_decoys_are_refused() -> None:
    with pytest.raises(ValueError, match="decoys"):
        _credential(decoys=-1)


def test_disclosure_create_refuses_reserved_names() -> None:
    for name in ("_sd", "...", "_sd_alg"):
        with pytest.raises(errors.ClaimsInvalid):
            Disclosure.create("salt", name, 1)


# -- presentation ----------------------------------------------------------------------------


def test_disclosing_a_nested_claim_brings_its_ancestors_only() -> None:
    sd = _credential()
    payload = _verify(present(sd, disclose={"/address/street"})).payload
    assert payload["address"] == {"street": "MG Road 1", "city": "Pune", "country": "IN"}
    payload = _verify(present(sd, disclose={"/address"})).payload
    assert payload["address"] == {"city": "Pune", "country": "IN"}
    payload = _verify(present(sd, disclose={"/address/city"})).payload
    assert payload["address"] == {"city": "Pune", "country": "IN"}
    payload = _verify(present(sd, disclose=set())).payload
    assert "address" not in payload
    assert "given_name" not in payload
    assert payload["nationalities"] == ["DE"]
    assert payload["score"] == {"commitment": "c0ffee"}


def test_disclose_by_predicate_and_paths() -> None:
    sd = _credential()
    assert list(disclosure_paths(sd)) == [
        "/given_name",
        "/address/street",
        "/address",
        "/nationalities/0",
        "/nationalities/2",
        "/score/opening",
    ]
    everything = _verify(present(sd, disclose=lambda p: True)).payload
    assert everything == {**CLAIMS, "cnf": sd.payload["cnf"]}
    opening = _verify(present(sd, disclose=lambda p: p.startswith("/score"))).payload
    assert opening["score"] == CLAIMS["score"]
    assert _verify(present(sd, disclose="/nationalities/2")).payload["nationalities"] == [
        "DE",
        "FR",
    ]


@pytest.mark.parametrize("path", ["/nope", "/nationalities/3", "/given_name/x", "/_sd", "x"])
def test_presenting_an_unknown_path_fails(path: str) -> None:
    with pytest.raises(errors.DisclosurePathInvalid):
        present(_credential(), disclose={path})


def test_presentation_with_key_binding() -> None:
    sd = _credential()
    text = _present_kb(sd, {"/given_name"})
    verified = _verify_kb(text)
    assert verified.payload["given_name"] == "Asha"
    assert verified.key_binding is not None
    assert verified.key_binding.header == {"alg": "EdDSA", "typ": "kb+jwt"}
    assert set(verified.key_binding.payload) == {"nonce", "aud", "iat", "sd_hash"}
    # A KB-JWT that is present is checked even when the policy does not require one.
    assert _verify(text).key_binding is not None
    with pytest.raises(errors.KbNonceMismatch):
        _verify(text, nonce="other")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"holder_signer": None},
        {"audience": None},
        {"nonce": None},
        {"iat": None},
    ],
)
def test_key_binding_arguments_go_together(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="together"):
        _present_kb(_credential(), set(), **kwargs)


def test_holder_signer_must_own_the_cnf_key() -> None:
    with pytest.raises(ValueError, match="cnf"):
        _present_kb(_credential(), set(), holder_signer=P256)


def test_verify_requires_audience_and_nonce_for_key_binding() -> None:
    text = _present_kb(_credential(), set())
    with pytest.raises(ValueError, match="audience"):
        _verify(text, require_key_binding=True, nonce=NONCE)


def test_parse_round_trip_and_holder_rules() -> None:
    sd = _credential()
    parsed = SdJwt.parse(sd.serialize())
    assert parsed == sd
    assert SdJwt.parse(sd.serialize("flattened"), "json") == sd
    with pytest.raises(errors.Malformed, match="Key Binding"):
        SdJwt.parse(_present_kb(sd, set()))
    with pytest.raises(errors.DisclosureDuplicate):
        SdJwt.parse(sd.serialize() + sd.disclosures[0].encoded + "~")


def test_json_serializations() -> None:
    sd = _credential()
    flat = _present_kb(sd, {"/given_name"}, serialization="flattened")
    assert set(json.loads(flat)) == {"header", "payload", "protected", "signature"}
    assert _verify_kb(flat, serialization="json").payload["given_name"] == "Asha"
    second = PrivateKey.from_raw(KeyType.ED25519, b"\x03" * 32)
    both = add_signature(sd, second, header={"kid": "k2"})
    with pytest.raises(ValueError, match="compact"):
        both.serialize()
    with pytest.raises(ValueError, match="Flattened"):
        both.serialize("flattened")
    general = _present_kb(both, {"/given_name"}, serialization="general")
    keys = {None: ISSUER.public_key, "k2": second.public_key}

    def by_kid(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
        return keys[header.get("kid")]

    verified = _verify_kb(general, serialization="json", issuer_key_resolver=by_kid)
    assert verified.payload["given_name"] == "Asha"
    # Every signature must verify: a resolver handing out the wrong key for k2 fails.
    with pytest.raises(errors.SignatureInvalid):
        _verify_kb(general, serialization="json")


def test_unprotected_header_must_not_repeat_protected_parameters() -> None:
    sd = issue({}, disclosable=[], signer=ISSUER, unprotected_header={"alg": "EdDSA"})
    with pytest.raises(errors.Malformed, match="protected"):
        _verify(sd.serialize("flattened"), serialization="json")


# -- verification: one rule at a time ------------------------------------------------------


def test_reserved_claim_names_in_disclosures() -> None:
    for name in ("_sd", "...", "_sd_alg"):
        d = _raw_disclosure("salt", name, 1)
        with pytest.raises(errors.ReservedClaim):
            _verify(_crafted({"_sd": [_digest(d)]}, d))


def test_array_element_disclosure_used_as_property() -> None:
    d = _raw_disclosure("salt", "value")
    with pytest.raises(errors.DisclosureMisplaced) as caught:
        _verify(_crafted({"_sd": [_digest(d)]}, d))
    assert caught.value.code == "credential.malformed"


def test_property_disclosure_used_as_array_element() -> None:
    d = _raw_disclosure("salt", "name", "value")
    with pytest.raises(errors.DisclosureMisplaced):
        _verify(_crafted({"list": [{"...": _digest(d)}]}, d))


def test_claim_name_that_already_exists() -> None:
    d = _raw_disclosure("salt", "a", 2)
    with pytest.raises(errors.ClaimNameExists) as caught:
        _verify(_crafted({"a": 1, "_sd": [_digest(d)]}, d))
    assert caught.value.code == "credential.reserved_claim"
    e = _raw_disclosure("other", "a", 3)
    with pytest.raises(errors.ClaimNameExists):
        _verify(_crafted({"_sd": [_digest(d), _digest(e)]}, d, e))


def test_digest_collisions() -> None:
    d = _raw_disclosure("salt", "a", 1)
    g = _digest(d)
    decoy = _digest("decoy")
    for payload in (
        {"_sd": [g, g]},  # a Disclosure referenced twice
        {"_sd": [g], "x": {"_sd": [g]}},
        {"_sd": [decoy, decoy]},  # a decoy repeated, no Disclosure at all
        {"_sd": [decoy], "x": [{"...": decoy}]},
    ):
        with pytest.raises(errors.DigestCollision):
            _verify(_crafted(payload, d))
    inner = _raw_disclosure("s2", "b", {"_sd": [g]})
    with pytest.raises(errors.DigestCollision):
        _verify(_crafted({"_sd": [g, _digest(inner)]}, d, inner))


def test_unreferenced_and_duplicate_disclosures() -> None:
    d = _raw_disclosure("salt", "a", 1)
    with pytest.raises(errors.DisclosureUnreferenced):
        _verify(_crafted({}, d))
    with pytest.raises(errors.DisclosureDuplicate):
        _verify(_crafted({"_sd": [_digest(d)]}, d, d))
    # A child Disclosure without the parent that embeds its digest is unreferenced too.
    child = _raw_disclosure("c", "street", "x")
    parent = _raw_disclosure("p", "address", {"_sd": [_digest(child)]})
    assert _verify(_crafted({"_sd": [_digest(parent)]}, parent, child)).payload == {
        "address": {"street": "x"}
    }
    with pytest.raises(errors.DisclosureUnreferenced):
        _verify(_crafted({"_sd": [_digest(parent)]}, child))


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
        _verify(_crafted(payload))


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
        _verify(_crafted(payload))


def test_sd_alg_checks() -> None:
    with pytest.raises(errors.AlgorithmNotAllowed):
        _verify(_crafted({"_sd_alg": "md5"}))
    with pytest.raises(errors.Malformed):
        _verify(_crafted({"_sd_alg": 256}))
    assert _verify(_crafted({"_sd_alg": "sha-512", "a": 1})).payload == {"a": 1}


@pytest.mark.parametrize(
    "encoded",
    [
        b64url_encode(b'{"not": "an array"}'),
        _raw_disclosure("only salt"),
        _raw_disclosure("s", "n", "v", "extra"),
        _raw_disclosure(1, "n", "v"),
        _raw_disclosure("s", 7, "v"),
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
        _verify(_crafted({}, encoded))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no-tilde",
        "a.b~",
        "a.b.c.d~",
        "~",
        "a.b.c~~",
        _jwt("not json at all") + "~",
        _jwt(b64url_encode(b"[1, 2]")) + "~",
        _jwt(b64url_encode(b'{"a": 1, "a": 2}')) + "~",
        _jwt(b64url_encode(b'{"a": Infinity}')) + "~",
        _jwt({"a": 1}).replace(".", ".x", 1) + "~",
    ],
)
def test_malformed_serializations(text: str) -> None:
    with pytest.raises(errors.Malformed):
        _verify(text)


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
        _verify(text, serialization="json")


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "HS512", "RS256", "PS256", "ES384"])
def test_algorithms_outside_the_allow_list(alg: str) -> None:
    calls = []

    def resolver(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
        calls.append(header)
        return ISSUER.public_key

    text = _crafted({"a": 1}, header={"alg": alg})
    with pytest.raises(errors.AlgorithmNotAllowed):
        _verify(text, issuer_key_resolver=resolver)
    assert not calls  # refused before any key is looked up


def test_key_type_confusion() -> None:
    text = _crafted({"a": 1}, header={"alg": "ES256"})  # signed by Ed25519, claims ES256
    with pytest.raises(errors.AlgorithmNotAllowed):
        _verify(text)
    assert _verify(_crafted({"a": 1}, header={"alg": "Ed25519"})).payload == {"a": 1}


@pytest.mark.parametrize("param", ["jwk", "jku", "x5u", "x5c", "crit"])
def test_headers_that_choose_a_key(param: str) -> None:
    value: Any = public_key_to_jwk(ISSUER.public_key) if param == "jwk" else ["x"]
    with pytest.raises(errors.EmbeddedKeyNotAllowed) as caught:
        _verify(_crafted({"a": 1}, header={param: value}))
    assert caught.value.code == "credential.algorithm_not_allowed"


def test_resolver_errors_propagate() -> None:
    def refuse(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
        raise KeyNotFound("unknown issuer")

    with pytest.raises(KeyNotFound):
        _verify(_crafted({"a": 1}), issuer_key_resolver=refuse)


def test_validity_claims_with_leeway() -> None:
    expiring = _crafted({"exp": NOW})
    _verify(expiring, now=NOW + 59)
    with pytest.raises(errors.Expired) as caught:
        _verify(expiring, now=NOW + 60)
    assert caught.value.extra == {"claim": "exp"}
    with pytest.raises(errors.Expired):
        _verify(expiring, now=NOW, leeway=0)
    for claim in ("nbf", "iat"):
        future = _crafted({claim: NOW + 61})
        with pytest.raises(errors.NotYetValid):
            _verify(future)
        _verify(future, now=NOW + 1)
    for bad in ("tomorrow", True, [1]):
        with pytest.raises(errors.Malformed):
            _verify(_crafted({"exp": bad}))


def test_validity_claims_may_be_selectively_disclosed() -> None:
    sd = issue({"exp": NOW - 3600}, disclosable=["/exp"], signer=ISSUER)
    with pytest.raises(errors.Expired):
        _verify(sd.serialize())


def test_deep_nesting_is_malformed_even_with_a_raised_recursion_limit() -> None:
    # py_ecc (imported with web3) raises the recursion limit to 100,000; the verifier must
    # not rely on RecursionError then, or a hostile depth overflows the C stack.
    deep = "[" * 100_000 + "]" * 100_000
    body = b64url_encode(('{"a": ' + deep + "}").encode())
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 100_000))
    try:
        with pytest.raises(errors.Malformed, match="deep"):
            _verify(_jwt(body) + "~")
    finally:
        sys.setrecursionlimit(limit)


def test_nesting_limit_boundary() -> None:
    def nested(levels: int) -> str:  # an object holding arrays: `levels` brackets deep
        return '{"a": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    ok = _jwt(b64url_encode(nested(MAX_DEPTH).encode())) + "~"
    assert "a" in _verify(ok).payload
    too_deep = _jwt(b64url_encode(nested(MAX_DEPTH + 1).encode())) + "~"
    with pytest.raises(errors.Malformed):
        _verify(too_deep)
    # Brackets inside strings, escaped quotes included, are not structure.
    text = json.dumps({"a": '\\"' + "[" * 500, "b": "{" * 500 + '\\"]'})
    assert _verify(_jwt(b64url_encode(text.encode())) + "~").payload["b"].startswith("{")


def test_chained_disclosures_are_depth_limited() -> None:
    def chain(length: int) -> str:
        disclosures: list[str] = []
        inner: dict[str, Any] = {"leaf": True}
        for i in range(length):
            d = _raw_disclosure(f"s{i}", f"n{i}", inner)
            disclosures.append(d)
            inner = {"_sd": [_digest(d)]}
        return _crafted(inner, *disclosures)

    assert _verify(chain(30)).payload
    with pytest.raises(errors.Malformed, match="deep"):
        _verify(chain(MAX_DEPTH + 2))


def test_claims_deeper_than_the_limit_are_refused() -> None:
    claims: dict[str, Any] = {"leaf": 1}
    for _ in range(MAX_DEPTH + 1):
        claims = {"x": claims}
    with pytest.raises(errors.ClaimsInvalid, match="deeper"):
        issue(claims, disclosable=[], signer=ISSUER)


# -- key binding -----------------------------------------------------------------------------


def _kb(header: Mapping[str, Any], payload: Mapping[str, Any], key: PrivateKey = HOLDER) -> str:
    signing_input = f"{_seg(header)}.{_seg(payload)}"
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
    text, _ = _with_kb(_credential())
    assert _verify_kb(text).key_binding is not None


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
    text, _ = _with_kb(_credential(), header, **claims)
    with pytest.raises(expected):
        _verify_kb(text)


def test_kb_jwt_needs_a_usable_cnf_key() -> None:
    without = issue(CLAIMS, disclosable=[], signer=ISSUER)
    text, _ = _with_kb(without)
    with pytest.raises(errors.KeyBindingInvalid, match="cnf"):
        _verify_kb(text)
    text, _ = _with_kb(_crafted({"cnf": {"jwk": private_key_to_jwk(HOLDER)}}))
    with pytest.raises(errors.KeyBindingInvalid, match="cnf"):
        _verify_kb(text)
    two_parts = _credential().serialize() + "a.b"
    with pytest.raises(errors.KeyBindingInvalid):
        _verify_kb(two_parts)


def test_key_binding_can_be_forbidden() -> None:
    # An issuer-signed SD-JWT handed over as it is verifies; the same with a KB-JWT is a
    # presentation meant for someone else (issue 14 item 2).
    credential = _credential()
    verify(
        credential.serialize(),
        issuer_key_resolver=lambda h, p: ISSUER.public_key,
        require_key_binding=False,
        forbid_key_binding=True,
        now=NOW,
    )
    with pytest.raises(errors.KeyBindingUnexpected):
        verify(
            _present_kb(credential, set()),
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
    text = _present_kb(_credential(), set())
    _verify_kb(text, now=NOW + 3600, max_kb_age=3600)
    with pytest.raises(errors.KbStale):
        _verify_kb(text, now=NOW + 3600)


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


# -- property: issue → present → verify equals a naive reference ---------------------------

_names = st.text(alphabet="ab/~_.", max_size=3).filter(lambda n: n not in {"_sd", "...", "_sd_alg"})
_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet="xyz", max_size=2)
_trees = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
    max_leaves=12,
)


def _all_paths(node: Any, prefix: str = "") -> list[str]:
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    out = []
    for key, value in items:
        path = prefix + "/" + str(key).replace("~", "~0").replace("/", "~1")
        out += [path, *_all_paths(value, path)]
    return out


def _reference(node: Any, sd: set[str], shown: set[str], prefix: str = "") -> Any:
    """What a verifier must see: SD nodes not disclosed (with all below them) are gone."""
    if isinstance(node, dict | list):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        kept = []
        for key, value in items:
            path = prefix + "/" + str(key).replace("~", "~0").replace("/", "~1")
            if path in sd and path not in shown:
                continue
            kept.append((key, _reference(value, sd, shown, path)))
        return dict(kept) if isinstance(node, dict) else [v for _, v in kept]
    return node


@settings(max_examples=60, deadline=None)
@given(data=st.data(), claims=st.dictionaries(_names, _trees, max_size=4))
def test_issue_present_verify_matches_reference(
    data: st.DataObject, claims: dict[str, Any]
) -> None:
    paths = _all_paths(claims)
    sd_paths = set(data.draw(st.lists(st.sampled_from(paths), unique=True)) if paths else [])
    sd = issue(claims, disclosable=sd_paths, signer=ISSUER, encoding=COMPACT_JSON)
    assert set(disclosure_paths(sd)) == sd_paths
    asked = set(data.draw(st.lists(st.sampled_from(paths), unique=True)) if paths else [])
    # A disclosed path shows every selectively disclosable node on its way.
    shown = {p for p in sd_paths if any(a == p or a.startswith(p + "/") for a in asked)}
    verified = _verify(present(sd, disclose=asked))
    assert verified.payload == _reference(claims, sd_paths, shown)
    assert len(verified.disclosures) == len(shown)


# -- odd corners -----------------------------------------------------------------------------


def test_array_element_without_its_disclosure_cannot_be_presented() -> None:
    sd = _credential()
    missing_first = SdJwt.parse(
        sd.jwt + "~" + "".join(d.encoded + "~" for d in sd.disclosures if d.value != "IN")
    )
    assert "/nationalities/0" not in disclosure_paths(missing_first)
    with pytest.raises(errors.DisclosurePathInvalid):
        present(missing_first, disclose={"/nationalities/0"})


def test_key_binding_without_cnf_is_created_but_not_verifiable() -> None:
    sd = issue(CLAIMS, disclosable=[], signer=ISSUER)
    text = _present_kb(sd, set())
    with pytest.raises(errors.KeyBindingInvalid, match="cnf"):
        _verify_kb(text)


def test_disclosure_corner_cases() -> None:
    with pytest.raises(ValueError, match="hash"):
        Disclosure.create("s", "n", 1).digest("md5")
    with pytest.raises(errors.ClaimsInvalid):
        Disclosure.create("s", "n", float("nan"))
    with pytest.raises(errors.Malformed):
        Disclosure.parse("WyJzIiwgIm4iLCAx\u00e9")
    with pytest.raises(errors.Malformed):
        _verify(b"bytes")  # type: ignore[arg-type]


def test_alg_only_in_the_unprotected_header_is_refused() -> None:
    sd = issue({}, disclosable=[], signer=ISSUER)
    flat = json.loads(sd.serialize("flattened"))
    flat["protected"] = _seg({"typ": "x"})
    flat["header"]["alg"] = "EdDSA"
    with pytest.raises(errors.Malformed, match="protected"):
        _verify(json.dumps(flat), serialization="json")
