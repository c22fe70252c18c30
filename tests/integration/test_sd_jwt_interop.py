"""Interop with the independent ``sd-jwt`` PyPI package (sd-jwt-python 0.10.4 on jwcrypto).

Both directions, ES256 keys: credentials and presentations made by ``sd_jwt`` verify in the
project's :func:`verify`, and the project's credentials and presentations verify in
``SDJWTVerifier``.  With the same seeded salts and ``PYTHON_JSON``, the project reproduces
``sd_jwt``'s Disclosures, payload and header byte for byte for every compact test case.

``sd_jwt`` 0.10.4 predates the RFC 9901 §8 JWS JSON Serialization (it puts ``disclosures`` at
the top level of the JSON), so JSON interop is not tested here; the §8 examples of the RFC
itself are in tests/vectors/test_sd_jwt_vectors.py.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.utils.yaml_specification import load_yaml_specification
from sd_jwt.verifier import SDJWTVerifier

from credit_commons.core.encoding import b64url_encode
from credit_commons.issuer.sd_jwt import (
    PYTHON_JSON,
    SdJwt,
    disclosure_paths,
    issue,
    present,
)
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.jwk import private_key_to_jwk, public_key_to_jwk
from credit_commons.verifier.sd_jwt_verify import verify

CASES = Path(__file__).parents[1] / "vectors" / "credentials" / "sd-jwt" / "sd-jwt-python-testcases"
ISSUER = PrivateKey.from_raw(KeyType.P256, bytes(31) + b"\x11")
HOLDER = PrivateKey.from_raw(KeyType.P256, bytes(31) + b"\x22")
AUD = "https://verifier.example.org"
NONCE = "n-0S6_WzA2Mj"
ISS = "https://issuer.example.com"


def _jwcrypto(key: PrivateKey) -> JWK:
    return JWK(**private_key_to_jwk(key))


def _jwcrypto_public(key: PrivateKey) -> JWK:
    return JWK(**public_key_to_jwk(key.public_key))


def _resolver(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
    assert payload["iss"] == ISS
    return ISSUER.public_key


def _their_verifier(presentation: str, *, key_binding: bool) -> dict[str, Any]:
    verifier = SDJWTVerifier(
        presentation,
        lambda iss, header: _jwcrypto_public(ISSUER),
        AUD if key_binding else None,
        NONCE if key_binding else None,
    )
    payload: dict[str, Any] = verifier.get_verified_payload()
    return payload


def _our_verify(presentation: str, *, key_binding: bool) -> dict[str, Any]:
    return verify(
        presentation,
        issuer_key_resolver=_resolver,
        require_key_binding=key_binding,
        audience=AUD if key_binding else None,
        nonce=NONCE if key_binding else None,
        now=int(time.time()),  # sd_jwt stamps its KB-JWT with the wall clock
    ).payload


THEIR_CLAIMS: dict[Any, Any] = {
    "iss": ISS,
    "iat": 1683000000,
    SDObj("given_name"): "Erika",
    SDObj("address"): {SDObj("street"): "Heidestraße 17", "country": "DE"},
    "nationalities": [SDObj("DE"), "FR", SDObj({"code": "UK", SDObj("since"): 2001})],
    "nested": [[SDObj(1), 2], {SDObj("deep"): [SDObj(None)]}],
}
THEIR_DISCLOSE = {
    "given_name": True,
    "address": {"street": True},
    "nationalities": [True, None, {"since": True}],
    "nested": [[True], {"deep": [True]}],
}
EXPECTED = {
    "iss": ISS,
    "iat": 1683000000,
    "given_name": "Erika",
    "address": {"street": "Heidestraße 17", "country": "DE"},
    "nationalities": ["DE", "FR", {"code": "UK", "since": 2001}],
    "nested": [[1, 2], {"deep": [None]}],
}


@pytest.mark.parametrize("decoys", [False, True], ids=["plain", "decoys"])
def test_their_credential_and_presentation_verify_here(decoys: bool) -> None:
    issuer = SDJWTIssuer(
        THEIR_CLAIMS,
        _jwcrypto(ISSUER),
        _jwcrypto(HOLDER),
        sign_alg="ES256",
        add_decoy_claims=decoys,
    )
    cnf = {"jwk": public_key_to_jwk(HOLDER.public_key)}
    # The issuance itself (no key binding) verifies with every claim.
    assert _our_verify(issuer.sd_jwt_issuance, key_binding=False) == {**EXPECTED, "cnf": cnf}
    holder = SDJWTHolder(issuer.sd_jwt_issuance)
    holder.create_presentation(THEIR_DISCLOSE, NONCE, AUD, _jwcrypto(HOLDER), "ES256")
    ours = _our_verify(holder.sd_jwt_presentation, key_binding=True)
    assert ours == {**EXPECTED, "cnf": cnf}
    assert ours == _their_verifier(holder.sd_jwt_presentation, key_binding=True)


def test_their_credential_presented_by_us_verifies_in_both() -> None:
    issuer = SDJWTIssuer(THEIR_CLAIMS, _jwcrypto(ISSUER), _jwcrypto(HOLDER), sign_alg="ES256")
    sd = SdJwt.parse(issuer.sd_jwt_issuance)
    assert set(disclosure_paths(sd)) >= {"/given_name", "/address/street", "/nationalities/2"}
    text = present(
        sd,
        disclose={"/address/street", "/nationalities/2/since"},
        holder_signer=HOLDER,
        audience=AUD,
        nonce=NONCE,
        iat=int(time.time()),
    )
    ours = _our_verify(text, key_binding=True)
    assert ours["address"] == {"street": "Heidestraße 17", "country": "DE"}
    assert ours["nationalities"] == ["FR", {"code": "UK", "since": 2001}]
    assert "given_name" not in ours
    assert ours == _their_verifier(text, key_binding=True)


OUR_CLAIMS = {
    "iss": ISS,
    "iat": 1683000000,
    "exp": 4102444800,
    "vct": "https://credit-commons.dev/vct/CreditReadinessCredential",
    "tier": "A",
    "income": {"bracket": "B3", "currency": "INR"},
    "sources": ["gst", "udyam", {"bank": "statement"}],
}
OUR_PATHS = ["/tier", "/income", "/income/bracket", "/sources/0", "/sources/2", "/sources/2/bank"]


def _our_credential() -> SdJwt:
    return issue(
        OUR_CLAIMS,
        disclosable=OUR_PATHS,
        signer=ISSUER,
        header={"typ": "dc+sd-jwt"},
        decoys=2,
        holder_jwk=public_key_to_jwk(HOLDER.public_key),
    )


def test_our_credential_and_presentation_verify_there() -> None:
    sd = _our_credential()
    everything = _their_verifier(sd.serialize(), key_binding=False)
    assert everything == {**OUR_CLAIMS, "cnf": {"jwk": public_key_to_jwk(HOLDER.public_key)}}
    text = present(
        sd,
        disclose=["/income/bracket", "/sources/2/bank"],
        holder_signer=HOLDER,
        audience=AUD,
        nonce=NONCE,
        iat=int(time.time()),
    )
    theirs = _their_verifier(text, key_binding=True)
    assert theirs["income"] == {"bracket": "B3", "currency": "INR"}
    assert theirs["sources"] == ["udyam", {"bank": "statement"}]
    assert theirs == _our_verify(text, key_binding=True)


def test_our_credential_presented_by_them_verifies_in_both() -> None:
    sd = _our_credential()
    holder = SDJWTHolder(sd.serialize())
    holder.create_presentation(
        {"tier": True, "sources": [True, None, True]}, NONCE, AUD, _jwcrypto(HOLDER), "ES256"
    )
    ours = _our_verify(holder.sd_jwt_presentation, key_binding=True)
    assert ours["tier"] == "A"
    assert ours["sources"] == ["gst", "udyam", {}]
    assert ours == _their_verifier(holder.sd_jwt_presentation, key_binding=True)


# -- byte-for-byte issuance over the sd-jwt-python test cases ------------------------------


def _paths(node: Any, prefix: str, out: list[str]) -> Any:
    """Plain claims and disclosure paths of an ``SDObj``-marked tree."""
    if isinstance(node, dict):
        plain = {}
        for key, value in node.items():
            name = key.value if isinstance(key, SDObj) else key
            path = prefix + "/" + str(name).replace("~", "~0").replace("/", "~1")
            plain[name] = _paths(value, path, out)
            if isinstance(key, SDObj):
                out.append(path)
        return plain
    if isinstance(node, list):
        items = []
        for i, element in enumerate(node):
            if isinstance(element, SDObj):
                out.append(f"{prefix}/{i}")
            items.append(_paths(getattr(element, "value", element), f"{prefix}/{i}", out))
        return items
    return node


@pytest.fixture
def seeded_random(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """sd_jwt's reproducible mode: ``unsafe_randomness`` and the global ``random`` seeded."""
    monkeypatch.setattr(SDJWTIssuer, "unsafe_randomness", True)
    state = random.getstate()
    random.seed(0)
    try:
        yield
    finally:
        random.setstate(state)


COMPACT_CASES = sorted(
    p.parent.name
    for p in CASES.glob("*/specification.yml")
    if "serialization_format: json" not in p.read_text("utf-8")
)


@pytest.mark.usefixtures("seeded_random")
@pytest.mark.parametrize("name", COMPACT_CASES)
def test_issuance_matches_sd_jwt_python_byte_for_byte(name: str) -> None:
    spec = load_yaml_specification(CASES / name / "specification.yml")
    key_binding = bool(spec.get("key_binding", False))
    header = {"typ": "testcase+sd-jwt", **spec.get("extra_header_parameters", {})}
    theirs = SDJWTIssuer(
        {"iss": ISS, **spec["user_claims"]},
        _jwcrypto(ISSUER),
        _jwcrypto(HOLDER) if key_binding else None,
        sign_alg="ES256",
        extra_header_parameters=header,
    )
    paths: list[str] = []
    claims = _paths({"iss": ISS, **spec["user_claims"]}, "", paths)
    rng = random.Random(0)
    ours = issue(
        claims,
        disclosable=paths,
        signer=ISSUER,
        header=header,
        salt=lambda: b64url_encode(bytes(rng.getrandbits(8) for _ in range(16))),
        holder_jwk=theirs.sd_jwt_payload["cnf"]["jwk"] if key_binding else None,
        encoding=PYTHON_JSON,
    )
    assert [d.encoded for d in ours.disclosures] == [d.b64 for d in theirs.ii_disclosures]
    assert ours.payload == theirs.sd_jwt_payload
    their_head, their_body, _ = theirs.serialized_sd_jwt.split(".")
    our_head, our_body, _ = ours.jwt.split(".")
    assert (our_head, our_body) == (their_head, their_body)
    # And each side verifies the other's issuance.
    assert _our_verify(theirs.sd_jwt_issuance, key_binding=False) == _their_verifier(
        ours.serialize(), key_binding=False
    )
