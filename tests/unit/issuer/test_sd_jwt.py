"""SD-JWT issuance and presentation rules (RFC 9901), one rule at a time; the property test
checks issue → present → verify against a naive reference of what a verifier must see.
The verifier's rules are tested in tests/unit/verifier/test_sd_jwt_verify.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.sd_jwt_support import (
    CLAIMS,
    HOLDER,
    ISSUER,
    NONCE,
    NOW,
    P256,
    PATHS,
    counting_salts,
    make_credential,
    present_with_kb,
    segment,
    verify_plain,
    verify_with_kb,
)

from credit_commons.formats import sd_jwt_errors as errors
from credit_commons.formats.sd_jwt_format import HASH_ALGORITHMS
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
from credit_commons.keys.jwk import private_key_to_jwk, public_key_to_jwk
from credit_commons.verifier.sd_jwt_verify import verify

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
        salt=counting_salts(),
        holder_jwk=public_key_to_jwk(HOLDER.public_key),
    )
    signature = signer.sign(prepared.signing_input)
    completed = prepared.complete(signature).serialize()
    assert compact_sd_jwt(prepared.signing_input, prepared.disclosures_text, signature) == (
        completed
    )
    issued = make_credential(signer=signer, salt=counting_salts()).serialize()
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
    sd = make_credential(salt=counting_salts())
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
    sd = make_credential()
    salts = [d.salt for d in sd.disclosures]
    assert len(set(salts)) == len(salts)
    assert all(len(s) == 22 for s in salts)
    assert len(new_salt()) == 22


def test_full_issuance_verifies_to_the_claims() -> None:
    sd = make_credential()
    verified = verify_plain(sd.serialize())
    assert verified.payload == {**CLAIMS, "cnf": sd.payload["cnf"]}
    assert len(verified.disclosures) == len(PATHS)


def test_decoys_are_added_to_every_sd_array_and_ignored() -> None:
    sd = make_credential(decoys=3)
    assert len(sd.payload["_sd"]) == 2 + 3  # given_name, address
    assert len(sd.payload["score"]["_sd"]) == 1 + 3
    assert "_sd" not in sd.payload["cnf"]["jwk"]
    assert verify_plain(sd.serialize()).payload == {**CLAIMS, "cnf": sd.payload["cnf"]}


@pytest.mark.parametrize("alg", ["sha-256", "sha-384", "sha-512", "sha3-256"])
def test_hash_algorithms(alg: str) -> None:
    sd = make_credential(hash_alg=alg)
    assert sd.payload["_sd_alg"] == alg
    text = present_with_kb(sd, {"/address/street"})
    assert verify_with_kb(text).payload["address"]["street"] == "MG Road 1"
    with pytest.raises(errors.AlgorithmNotAllowed):
        verify_with_kb(text, accepted_hash_algs=frozenset(HASH_ALGORITHMS) - {alg})


def test_unknown_hash_algorithm_is_refused_at_issuance() -> None:
    with pytest.raises(ValueError, match="hash"):
        make_credential(hash_alg="md5")


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
        make_credential(disclosable=[path])


def test_path_escapes_and_numeric_keys() -> None:
    claims = {"a/b": 1, "m~n": 2, "42": 3, "": 4, "list": [[5, 6]]}
    sd = issue(claims, disclosable=["/a~1b", "/m~0n", "/42", "/", "/list/0/1"], signer=ISSUER)
    assert set(disclosure_paths(sd)) == {"/a~1b", "/m~0n", "/42", "/", "/list/0/1"}
    assert verify_plain(sd.serialize()).payload == {**claims}
    shown = verify_plain(present(sd, disclose={"/a~1b", "/"})).payload
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
        make_credential(salt=lambda: "same")


def test_negative_decoys_are_refused() -> None:
    with pytest.raises(ValueError, match="decoys"):
        make_credential(decoys=-1)


def test_disclosure_create_refuses_reserved_names() -> None:
    for name in ("_sd", "...", "_sd_alg"):
        with pytest.raises(errors.ClaimsInvalid):
            Disclosure.create("salt", name, 1)


# -- presentation ----------------------------------------------------------------------------


def test_disclosing_a_nested_claim_brings_its_ancestors_only() -> None:
    sd = make_credential()
    payload = verify_plain(present(sd, disclose={"/address/street"})).payload
    assert payload["address"] == {"street": "MG Road 1", "city": "Pune", "country": "IN"}
    payload = verify_plain(present(sd, disclose={"/address"})).payload
    assert payload["address"] == {"city": "Pune", "country": "IN"}
    payload = verify_plain(present(sd, disclose={"/address/city"})).payload
    assert payload["address"] == {"city": "Pune", "country": "IN"}
    payload = verify_plain(present(sd, disclose=set())).payload
    assert "address" not in payload
    assert "given_name" not in payload
    assert payload["nationalities"] == ["DE"]
    assert payload["score"] == {"commitment": "c0ffee"}


def test_disclose_by_predicate_and_paths() -> None:
    sd = make_credential()
    assert list(disclosure_paths(sd)) == [
        "/given_name",
        "/address/street",
        "/address",
        "/nationalities/0",
        "/nationalities/2",
        "/score/opening",
    ]
    everything = verify_plain(present(sd, disclose=lambda p: True)).payload
    assert everything == {**CLAIMS, "cnf": sd.payload["cnf"]}
    opening = verify_plain(present(sd, disclose=lambda p: p.startswith("/score"))).payload
    assert opening["score"] == CLAIMS["score"]
    assert verify_plain(present(sd, disclose="/nationalities/2")).payload["nationalities"] == [
        "DE",
        "FR",
    ]


@pytest.mark.parametrize("path", ["/nope", "/nationalities/3", "/given_name/x", "/_sd", "x"])
def test_presenting_an_unknown_path_fails(path: str) -> None:
    with pytest.raises(errors.DisclosurePathInvalid):
        present(make_credential(), disclose={path})


def test_presentation_with_key_binding() -> None:
    sd = make_credential()
    text = present_with_kb(sd, {"/given_name"})
    verified = verify_with_kb(text)
    assert verified.payload["given_name"] == "Asha"
    assert verified.key_binding is not None
    assert verified.key_binding.header == {"alg": "EdDSA", "typ": "kb+jwt"}
    assert set(verified.key_binding.payload) == {"nonce", "aud", "iat", "sd_hash"}
    # A KB-JWT that is present is checked even when the policy does not require one.
    assert verify_plain(text).key_binding is not None
    with pytest.raises(errors.KbNonceMismatch):
        verify_plain(text, nonce="other")


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
        present_with_kb(make_credential(), set(), **kwargs)


def test_holder_signer_must_own_the_cnf_key() -> None:
    with pytest.raises(ValueError, match="cnf"):
        present_with_kb(make_credential(), set(), holder_signer=P256)


def test_verify_requires_audience_and_nonce_for_key_binding() -> None:
    text = present_with_kb(make_credential(), set())
    with pytest.raises(ValueError, match="audience"):
        verify_plain(text, require_key_binding=True, nonce=NONCE)


def test_parse_round_trip_and_holder_rules() -> None:
    sd = make_credential()
    parsed = SdJwt.parse(sd.serialize())
    assert parsed == sd
    assert SdJwt.parse(sd.serialize("flattened"), "json") == sd
    with pytest.raises(errors.Malformed, match="Key Binding"):
        SdJwt.parse(present_with_kb(sd, set()))
    with pytest.raises(errors.DisclosureDuplicate):
        SdJwt.parse(sd.serialize() + sd.disclosures[0].encoded + "~")


def test_json_serializations() -> None:
    sd = make_credential()
    flat = present_with_kb(sd, {"/given_name"}, serialization="flattened")
    assert set(json.loads(flat)) == {"header", "payload", "protected", "signature"}
    assert verify_with_kb(flat, serialization="json").payload["given_name"] == "Asha"
    second = PrivateKey.from_raw(KeyType.ED25519, b"\x03" * 32)
    both = add_signature(sd, second, header={"kid": "k2"})
    with pytest.raises(ValueError, match="compact"):
        both.serialize()
    with pytest.raises(ValueError, match="Flattened"):
        both.serialize("flattened")
    general = present_with_kb(both, {"/given_name"}, serialization="general")
    keys = {None: ISSUER.public_key, "k2": second.public_key}

    def by_kid(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
        return keys[header.get("kid")]

    verified = verify_with_kb(general, serialization="json", issuer_key_resolver=by_kid)
    assert verified.payload["given_name"] == "Asha"
    # Every signature must verify: a resolver handing out the wrong key for k2 fails.
    with pytest.raises(errors.SignatureInvalid):
        verify_with_kb(general, serialization="json")


def test_unprotected_header_must_not_repeat_protected_parameters() -> None:
    sd = issue({}, disclosable=[], signer=ISSUER, unprotected_header={"alg": "EdDSA"})
    with pytest.raises(errors.Malformed, match="protected"):
        verify_plain(sd.serialize("flattened"), serialization="json")


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
    verified = verify_plain(present(sd, disclose=asked))
    assert verified.payload == _reference(claims, sd_paths, shown)
    assert len(verified.disclosures) == len(shown)


# -- odd corners -----------------------------------------------------------------------------


def test_array_element_without_its_disclosure_cannot_be_presented() -> None:
    sd = make_credential()
    missing_first = SdJwt.parse(
        sd.jwt + "~" + "".join(d.encoded + "~" for d in sd.disclosures if d.value != "IN")
    )
    assert "/nationalities/0" not in disclosure_paths(missing_first)
    with pytest.raises(errors.DisclosurePathInvalid):
        present(missing_first, disclose={"/nationalities/0"})


def test_key_binding_without_cnf_is_created_but_not_verifiable() -> None:
    sd = issue(CLAIMS, disclosable=[], signer=ISSUER)
    text = present_with_kb(sd, set())
    with pytest.raises(errors.KeyBindingInvalid, match="cnf"):
        verify_with_kb(text)


def test_disclosure_corner_cases() -> None:
    with pytest.raises(ValueError, match="hash"):
        Disclosure.create("s", "n", 1).digest("md5")
    with pytest.raises(errors.ClaimsInvalid):
        Disclosure.create("s", "n", float("nan"))
    with pytest.raises(errors.Malformed):
        Disclosure.parse("WyJzIiwgIm4iLCAx\u00e9")
    with pytest.raises(errors.Malformed):
        verify_plain(b"bytes")  # type: ignore[arg-type]


def test_alg_only_in_the_unprotected_header_is_refused() -> None:
    sd = issue({}, disclosable=[], signer=ISSUER)
    flat = json.loads(sd.serialize("flattened"))
    flat["protected"] = segment({"typ": "x"})
    flat["header"]["alg"] = "EdDSA"
    with pytest.raises(errors.Malformed, match="protected"):
        verify_plain(json.dumps(flat), serialization="json")
