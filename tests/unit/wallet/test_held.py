"""wallet/held.py: the DCQL facts of stored credentials, and DCQL claims path pointers turned
into RFC 9901 disclosure paths — held to the platform's SD-JWT verifier as reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from credit_commons.formats.dcql import ClaimsQuery, parse_dcql, select
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.issuer.sd_jwt import issue, present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.verifier.sd_jwt_verify import verify
from credit_commons.wallet.held import (
    UnreadableCredential,
    claim_text,
    disclosure_pointers,
    held_facts,
    pointer_text,
)
from credit_commons.wallet.store import StoredCredential

ISSUER = PrivateKey.from_raw(KeyType.ED25519, b"\x01" * 32)
CLAIMS: dict[str, Any] = {
    "iss": "https://issuer.example",
    "vct": "urn:vct",
    "given_name": "Asha",
    "address": {"street": "MG Road 1", "city": "Pune"},
    "nationalities": ["IN", "DE", "FR"],
    "degrees": [{"type": "BSc", "year": 2001}, {"type": "MSc", "year": 2003}],
}
DISCLOSABLE = [
    "/given_name",
    "/address",
    "/address/street",
    "/nationalities/0",
    "/nationalities/2",
    "/degrees/1",
    "/degrees/1/year",
]
EXAMPLES = Path(__file__).parents[2] / "vectors/credentials/openid4vp-1.0-examples"


def _stored(credential: str) -> StoredCredential:
    return StoredCredential("c1", "https://issuer.example", "identity", credential, "t")


def _sd_jwt(decoys: int = 0) -> SdJwt:
    return issue(CLAIMS, disclosable=DISCLOSABLE, signer=ISSUER, decoys=decoys)


def _verified(text: str) -> dict[str, Any]:
    return verify(
        text,
        issuer_key_resolver=lambda _h, _p: ISSUER.public_key,
        require_key_binding=False,
        now=2_000_000_000,
    ).payload


@pytest.mark.parametrize("decoys", [0, 2])
def test_sd_jwt_facts_are_the_fully_disclosed_claims(decoys: int) -> None:
    sd_jwt = _sd_jwt(decoys)
    facts = held_facts(_stored(sd_jwt.serialize()))
    # The reference: the verifier's processed payload with every Disclosure presented.
    assert facts.claims == _verified(sd_jwt.serialize())
    assert (facts.format, facts.vct, facts.issuer) == ("dc+sd-jwt", "urn:vct", CLAIMS["iss"])
    assert facts.holder_binding is False  # no cnf


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["given_name"], {"given_name": "Asha"}),
        (["address", "city"], {"address": {"city": "Pune"}}),
        (["address"], {"address": {"street": "MG Road 1", "city": "Pune"}}),
        (["nationalities", None], {"nationalities": ["IN", "DE", "FR"]}),
        (["nationalities", 2], {"nationalities": ["DE", "FR"]}),
        # degrees[0] is not disclosable: it is always shown whole.
        (["degrees", None, "type"], {"degrees": [{"type": "BSc", "year": 2001}, {"type": "MSc"}]}),
        (
            ["degrees", 1],
            {"degrees": [{"type": "BSc", "year": 2001}, {"type": "MSc", "year": 2003}]},
        ),
        (["missing"], {}),
    ],
)
def test_pointers_disclose_exactly_the_selected_claims(
    path: list[Any], expected: dict[str, Any]
) -> None:
    sd_jwt = _sd_jwt()
    text = present(sd_jwt, disclose=disclosure_pointers(sd_jwt, [ClaimsQuery(path=tuple(path))]))
    shown = {k: v for k, v in _verified(text).items() if k not in ("iss", "vct")}
    # Non-disclosable claims (the plain array elements, "degrees"[0]) are always shown.
    always = {"nationalities": ["DE"], "degrees": [{"type": "BSc", "year": 2001}]}
    for name, value in always.items():
        shown_value = shown.get(name)
        if name not in expected:
            assert shown_value == value
            shown.pop(name)
    assert shown == expected


@pytest.mark.parametrize(
    ("path", "values", "expected"),
    [
        # Only the matching element of the array is disclosed, not IN (nationalities[0]).
        (["nationalities", None], ["FR"], ["DE", "FR"]),
        (["nationalities", None], ["IN"], ["IN", "DE"]),
        # None matches among the disclosable ones: only the always-shown DE.
        (["nationalities", None], ["XX"], ["DE"]),
        # A string is not a number of the same digits (§6.3: type and value).
        (["nationalities", None], [1], ["DE"]),
    ],
)
def test_values_filter_the_elements_a_null_path_discloses(
    path: list[Any], values: list[Any], expected: list[str]
) -> None:
    # OpenID4VP 1.0 §6.3: "the Wallet SHOULD return the claim only if the type and value of
    # the claim both match exactly" -- an element that does not match stays undisclosed.
    sd_jwt = _sd_jwt(decoys=2)
    claim = ClaimsQuery(path=tuple(path), values=tuple(values))
    text = present(sd_jwt, disclose=disclosure_pointers(sd_jwt, [claim]))
    assert _verified(text)["nationalities"] == expected


def test_values_filter_the_objects_under_a_null_path() -> None:
    sd_jwt = _sd_jwt()
    msc = ClaimsQuery(path=("degrees", None, "type"), values=("MSc",))
    shown = _verified(present(sd_jwt, disclose=disclosure_pointers(sd_jwt, [msc])))
    assert shown["degrees"] == [{"type": "BSc", "year": 2001}, {"type": "MSc"}]
    # BSc is the non-disclosable degrees[0]: asking for it discloses nothing of degrees[1].
    bsc = ClaimsQuery(path=("degrees", None, "type"), values=("BSc",))
    shown = _verified(present(sd_jwt, disclose=disclosure_pointers(sd_jwt, [bsc])))
    assert shown["degrees"] == [{"type": "BSc", "year": 2001}]


def test_select_then_disclose_round_trip() -> None:
    sd_jwt = _sd_jwt()
    query = parse_dcql(
        {
            "credentials": [
                {
                    "id": "q",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": ["urn:vct"]},
                    "require_cryptographic_holder_binding": False,
                    "claims": [{"path": ["address", "street"]}, {"path": ["given_name"]}],
                }
            ]
        }
    )
    match = select(query, [held_facts(_stored(sd_jwt.serialize()))]).plan()["q"][0]
    text = present(sd_jwt, disclose=disclosure_pointers(sd_jwt, match.claims))
    payload = _verified(text)
    # city is not selectively disclosable: it comes with the address (§6.4 allows it).
    assert payload["address"] == {"street": "MG Road 1", "city": "Pune"}
    assert payload["given_name"] == "Asha"


def test_vc_jwt_facts() -> None:
    payload = json.loads((EXAMPLES / "credentials/jwt_vc.json").read_text())
    token = sign_compact({"typ": "JWT"}, payload, ISSUER)
    facts = held_facts(_stored(token))
    assert facts.format == "jwt_vc_json"
    assert facts.types == ("VerifiableCredential", "IDCredential")
    assert facts.claims["credentialSubject"]["given_name"] == "Max"
    assert facts.issuer == payload["iss"]
    assert facts.holder_binding is True  # sub is a DID
    # VCDM 2.0: the payload is the credential.
    vc2 = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential", "X"],
        "issuer": {"id": "did:web:issuer.example"},
        "credentialSubject": {"name": "A"},
    }
    facts2 = held_facts(_stored(sign_compact({"typ": "vc+jwt"}, vc2, ISSUER)))
    assert (facts2.issuer, facts2.types) == (
        "did:web:issuer.example",
        ("VerifiableCredential", "X"),
    )
    assert facts2.holder_binding is False


@pytest.mark.parametrize("text", ["nonsense", "a.b", "e30.e30.", "x~y~"])
def test_unreadable(text: str) -> None:
    with pytest.raises(UnreadableCredential):
        held_facts(_stored(text))


def test_pointer_text() -> None:
    assert pointer_text(("address", "street")) == "address.street"
    assert pointer_text(("degrees", None, "type")) == "degrees[*].type"
    assert pointer_text(("nationalities", 1)) == "nationalities[1]"


def test_claim_text_names_the_values_asked_for() -> None:
    # What the holder is shown: under a null path only the matching elements go (§6.3).
    assert claim_text(ClaimsQuery(path=("nationalities", None), values=("FR",))) == (
        'nationalities[*] = "FR"'
    )
    assert claim_text(ClaimsQuery(path=("age_over_18",), values=(True, 1))) == (
        "age_over_18 = true or 1"
    )
    assert claim_text(ClaimsQuery(path=("address", "street"))) == "address.street"
