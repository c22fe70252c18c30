"""RFC 9901 worked examples and the 17 sd-jwt-python test cases, through the project's own
issue → present → verify, each accepting vector with tampered siblings that must be rejected.

Provenance: tests/vectors/credentials/README.md.  RFC 9901 Appendix A.5 publishes only the
issuer's public key; sd-jwt-python's ``settings.yml`` holds the same key with its private
part, and its holder key is the ``cnf`` key of the RFC examples (both asserted below), so
the examples are reproduced and re-signed with them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.issuer import sd_jwt_errors as errors
from credit_commons.issuer.sd_jwt import (
    RFC_EXAMPLE_JSON,
    Disclosure,
    SdJwt,
    add_signature,
    disclosure_paths,
    issue,
    new_salt,
    present,
)
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.jwk import private_key_from_jwk, public_key_from_jwk, public_key_to_jwk
from credit_commons.verifier.sd_jwt_verify import Verified, verify

HERE = Path(__file__).parent / "credentials" / "sd-jwt"
RFC_DIR = HERE / "rfc9901"
CASES_DIR = HERE / "sd-jwt-python-testcases"
EXAMPLE = json.loads((RFC_DIR / "example-section5.json").read_text(encoding="utf-8"))
S5 = EXAMPLE["section_5"]
SETTINGS = yaml.safe_load((CASES_DIR / "settings.yml").read_text(encoding="utf-8"))
ISSUER = private_key_from_jwk(SETTINGS["key_settings"]["issuer_keys"][0])
HOLDER = private_key_from_jwk(SETTINGS["key_settings"]["holder_key"])
ATTACKER = PrivateKey.from_raw(KeyType.P256, bytes(31) + b"\x07")
ISSUER_ID = SETTINGS["identifiers"]["issuer"]
VERIFIER_ID = SETTINGS["identifiers"]["verifier"]
NONCE = SETTINGS["key_binding_nonce"]
CASE_NAMES = sorted(p.parent.name for p in CASES_DIR.glob("*/specification.yml"))
KB_IAT = S5["kb_jwt_payload"]["iat"]


# -- small JOSE helpers for building tampered siblings ------------------------------------


def _seg(value: object) -> str:
    return b64url_encode(json.dumps(value).encode("utf-8"))


def _unseg(segment: str) -> Any:
    return json.loads(b64url_decode(segment))


def _jws(header: Mapping[str, Any], payload: Mapping[str, Any], key: PrivateKey) -> str:
    signing_input = f"{_seg(header)}.{_seg(payload)}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode('ascii')))}"


def _flip_signature(jwt: str) -> str:
    head, body, sig = jwt.split(".")
    raw = bytearray(b64url_decode(sig))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{b64url_encode(bytes(raw))}"


def _non_canonical(encoded: str) -> str | None:
    """The same bytes with a non-zero unused trailing bit, or None when there is none."""
    if len(encoded) % 4 == 0:
        return None
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return encoded[:-1] + alphabet[alphabet.index(encoded[-1]) + 1]


def _compact(jwt: str, disclosures: list[str], kb: str = "") -> str:
    return jwt + "~" + "".join(d + "~" for d in disclosures) + kb


def _sd_hash(jwt: str, disclosures: list[str]) -> str:
    digest = hashlib.sha256(_compact(jwt, disclosures).encode("ascii")).digest()
    return b64url_encode(digest)


@dataclass(frozen=True)
class Accepting:
    """An accepting presentation and everything needed to verify and tamper with it."""

    presentation: str
    issuer: PrivateKey
    holder: PrivateKey | None
    resolver: Callable[[Mapping[str, Any], Mapping[str, Any]], PublicKey]
    now: int
    audience: str | None = None
    nonce: str | None = None
    serialization: Literal["compact", "json"] = "compact"

    def verify(self, text: str | None = None, **overrides: Any) -> Verified:
        kwargs: dict[str, Any] = {
            "issuer_key_resolver": self.resolver,
            "require_key_binding": self.holder is not None,
            "audience": self.audience,
            "nonce": self.nonce,
            "now": self.now,
            "serialization": self.serialization,
        }
        kwargs.update(overrides)
        return verify(self.presentation if text is None else text, **kwargs)


Mutation = tuple[str, str, type[Exception] | tuple[type[Exception], ...], dict[str, Any]]


def _compact_mutations(acc: Accepting) -> Iterator[Mutation]:
    """Tampered siblings of a compact presentation: each must be rejected."""
    jwt, *disclosures, kb = acc.presentation.split("~")
    head, body, sig = jwt.split(".")
    header, payload = _unseg(head), _unseg(body)
    genuine = acc.issuer.public_key
    alg = acc.issuer.alg

    def with_jwt(new_jwt: str) -> str:
        return _compact(new_jwt, disclosures, kb)

    yield "signature bit flipped", with_jwt(_flip_signature(jwt)), errors.SignatureInvalid, {}
    yield (
        "claim added",
        with_jwt(f"{head}.{_seg({**payload, 'x': 1})}.{sig}"),
        errors.SignatureInvalid,
        {},
    )
    yield (
        "signed by another key",
        with_jwt(_jws(header, payload, ATTACKER)),
        errors.SignatureInvalid,
        {},
    )
    yield (
        "alg none",
        with_jwt(f"{_seg({**header, 'alg': 'none'})}.{body}."),
        errors.AlgorithmNotAllowed,
        {},
    )
    hs_input = f"{_seg({**header, 'alg': 'HS256'})}.{body}"
    mac = hmac.new(genuine.raw(compressed=False), hs_input.encode(), hashlib.sha256).digest()
    yield (
        "alg HS256 keyed with the public key",
        with_jwt(f"{hs_input}.{b64url_encode(mac)}"),
        errors.AlgorithmNotAllowed,
        {},
    )
    other_alg = "EdDSA" if alg == "ES256" else "ES256"
    yield (
        "alg of the other key type",
        with_jwt(f"{_seg({**header, 'alg': other_alg})}.{body}.{sig}"),
        errors.AlgorithmNotAllowed,
        {},
    )
    embedded = {**header, "alg": ATTACKER.alg, "jwk": public_key_to_jwk(ATTACKER.public_key)}
    yield (
        "embedded jwk",
        with_jwt(_jws(embedded, payload, ATTACKER)),
        errors.EmbeddedKeyNotAllowed,
        {},
    )
    yield "unsigned payload", with_jwt(f"{head}.{body}"), errors.Malformed, {}
    fresh = Disclosure.create(new_salt(), "injected", True).encoded
    yield (
        "extra Disclosure",
        _compact(jwt, [*disclosures, fresh], kb),
        errors.DisclosureUnreferenced,
        {},
    )
    if acc.holder is None:
        yield (
            "key binding required",
            acc.presentation,
            errors.KeyBindingMissing,
            {
                "require_key_binding": True,
                "audience": VERIFIER_ID,
                "nonce": NONCE,
            },
        )
        # The last Disclosure is then read as a KB-JWT (or orphans its own Disclosures).
        yield (
            "final ~ dropped",
            acc.presentation[:-1],
            (errors.KeyBindingInvalid, errors.DisclosureUnreferenced, errors.Malformed),
            {},
        )
    if disclosures:
        first = Disclosure.parse(disclosures[0])
        tampered = Disclosure.create(first.salt, first.name, {"tampered": first.value}).encoded
        yield (
            "Disclosure sent twice",
            _compact(jwt, [*disclosures, disclosures[0]], kb),
            errors.DisclosureDuplicate,
            {},
        )
        yield (
            "Disclosure value changed",
            _compact(jwt, [tampered, *disclosures[1:]], kb),
            errors.DisclosureUnreferenced,
            {},
        )
        odd = _non_canonical(disclosures[0])
        if odd is not None:
            yield (
                "non-canonical base64url",
                _compact(jwt, [odd, *disclosures[1:]], kb),
                errors.Malformed,
                {},
            )
    if acc.holder is None or not kb:
        return
    kb_head, kb_body, _ = kb.split(".")
    kb_header, kb_payload = _unseg(kb_head), _unseg(kb_body)
    iat = kb_payload["iat"]
    yield "KB-JWT removed", _compact(jwt, disclosures), errors.KeyBindingMissing, {}
    yield (
        "KB-JWT signature flipped",
        _compact(jwt, disclosures, _flip_signature(kb)),
        errors.KeyBindingInvalid,
        {},
    )
    yield (
        "KB-JWT by another key",
        _compact(jwt, disclosures, _jws(kb_header, kb_payload, ATTACKER)),
        errors.KeyBindingInvalid,
        {},
    )
    yield (
        "KB-JWT typ jwt",
        _compact(jwt, disclosures, _jws({**kb_header, "typ": "jwt"}, kb_payload, acc.holder)),
        errors.KeyBindingInvalid,
        {},
    )
    yield (
        "KB-JWT alg none",
        _compact(jwt, disclosures, f"{_seg({**kb_header, 'alg': 'none'})}.{kb_body}."),
        errors.AlgorithmNotAllowed,
        {},
    )
    wrong_hash = {**kb_payload, "sd_hash": _sd_hash(jwt, disclosures[1:])}
    yield (
        "wrong sd_hash",
        _compact(jwt, disclosures, _jws(kb_header, wrong_hash, acc.holder)),
        errors.SdHashMismatch,
        {},
    )
    yield "wrong aud", acc.presentation, errors.KbAudienceMismatch, {"audience": "https://evil"}
    yield "wrong nonce", acc.presentation, errors.KbNonceMismatch, {"nonce": "0987654321"}
    yield "stale KB-JWT", acc.presentation, errors.KbStale, {"now": iat + 300 + 60 + 1}
    yield "KB-JWT from the future", acc.presentation, errors.KbStale, {"now": iat - 61}
    if disclosures:
        yield "Disclosure removed", _compact(jwt, disclosures[1:], kb), errors.SdHashMismatch, {}
    if len(disclosures) > 1:
        swapped = [disclosures[1], disclosures[0], *disclosures[2:]]
        yield "Disclosures reordered", _compact(jwt, swapped, kb), errors.SdHashMismatch, {}


def _assert_all_rejected(acc: Accepting, mutations: Iterator[Mutation]) -> int:
    failures, count = [], 0
    for label, text, expected, overrides in mutations:
        count += 1
        try:
            acc.verify(text, **overrides)
        except expected:
            continue
        except Exception as e:
            failures.append(f"{label}: {type(e).__name__}: {e}")
        else:
            failures.append(f"{label}: accepted")
    assert not failures, failures
    return count


# -- RFC 9901 §4.2 and §5 ------------------------------------------------------------------


def test_fixture_keys_are_the_rfc_keys() -> None:
    assert ISSUER.public_key == public_key_from_jwk(EXAMPLE["issuer_public_jwk"])
    assert HOLDER.public_key == public_key_from_jwk(S5["sd_jwt_payload"]["cnf"]["jwk"])


def test_rfc_4_2_disclosures_reproduce() -> None:
    sec = EXAMPLE["section_4_2"]
    salt, name, value = sec["family_name_disclosure_contents"]
    disclosure = Disclosure.create(salt, name, value, RFC_EXAMPLE_JSON)
    assert disclosure.encoded == sec["family_name_disclosure"]
    assert disclosure.digest() == sec["family_name_digest"]
    salt, value = sec["array_element_disclosure_contents"]
    element = Disclosure.create(salt, None, value, RFC_EXAMPLE_JSON)
    assert element.encoded == sec["array_element_disclosure"]


def test_rfc_4_2_1_equivalent_encodings_parse_alike_but_hash_apart() -> None:
    sec = EXAMPLE["section_4_2"]
    for encoded in sec["equivalent_encodings_same_claim"]:
        parsed = Disclosure.parse(encoded)
        assert [parsed.salt, parsed.name, parsed.value] == sec["family_name_disclosure_contents"]
        assert parsed.digest() != sec["family_name_digest"]


def _rfc_salts() -> Callable[[], str]:
    salts = iter(Disclosure.parse(d["disclosure"]).salt for d in S5["disclosures"])
    return lambda: next(salts)


RFC_PATHS = [
    "/given_name", "/family_name", "/email", "/phone_number", "/phone_number_verified",
    "/address", "/birthdate", "/updated_at", "/nationalities/0", "/nationalities/1",
]  # fmt: skip
RFC_CLAIMS = {
    "iss": "https://issuer.example.com",
    "iat": 1683000000,
    "exp": 1883000000,
    **S5["user_claims"],
}


def _rfc_issue() -> SdJwt:
    return issue(
        RFC_CLAIMS,
        disclosable=RFC_PATHS,
        signer=ISSUER,
        header={"typ": "example+sd-jwt"},
        salt=_rfc_salts(),
        holder_jwk=S5["sd_jwt_payload"]["cnf"]["jwk"],
        encoding=RFC_EXAMPLE_JSON,
    )


def test_rfc_5_issuance_reproduces_byte_for_byte() -> None:
    sd = _rfc_issue()
    assert [d.encoded for d in sd.disclosures] == [d["disclosure"] for d in S5["disclosures"]]
    assert [d.digest() for d in sd.disclosures] == [d["digest"] for d in S5["disclosures"]]
    assert sd.payload == S5["sd_jwt_payload"]
    # ES256 signatures are randomised: everything but the signature is identical.
    ours, theirs = sd.jwt.rsplit(".", 1)[0], S5["issuer_signed_jwt"].rsplit(".", 1)[0]
    assert ours == theirs
    assert sd.serialize().startswith(ours)
    assert [d.encoded for d in sd.disclosures] == S5["sd_jwt_issuance"].split("~")[1:-1]
    # The example's own signature verifies over the reproduced signing input.
    sig = b64url_decode(S5["issuer_signed_jwt"].rsplit(".", 1)[1])
    ISSUER.public_key.verify("ES256", ours.encode("ascii"), sig)


def _rfc_resolver(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
    assert payload["iss"] == "https://issuer.example.com"
    return public_key_from_jwk(EXAMPLE["issuer_public_jwk"])


def test_rfc_5_issuance_verifies_with_all_claims() -> None:
    verified = verify(
        S5["sd_jwt_issuance"],
        issuer_key_resolver=_rfc_resolver,
        require_key_binding=False,
        now=KB_IAT,
    )
    assert verified.payload == {**RFC_CLAIMS, "cnf": S5["sd_jwt_payload"]["cnf"]}
    assert verified.header == {"alg": "ES256", "typ": "example+sd-jwt"}
    assert len(verified.disclosures) == 10
    assert verified.key_binding is None


RFC_KB = Accepting(
    presentation=S5["sd_jwt_kb_presentation"],
    issuer=ISSUER,
    holder=HOLDER,
    resolver=_rfc_resolver,
    now=KB_IAT,
    audience=S5["expected_kb_aud"],
    nonce=S5["expected_kb_nonce"],
)


def test_rfc_5_2_presentation_with_key_binding_verifies() -> None:
    verified = RFC_KB.verify()
    assert verified.payload == S5["expected_processed_payload"]
    assert verified.key_binding is not None
    assert verified.key_binding.payload == S5["kb_jwt_payload"]
    assert verified.key_binding.header == {"alg": "ES256", "typ": "kb+jwt"}


def test_rfc_sd_hash_covers_the_final_tilde() -> None:
    jwt, *disclosures, _ = S5["sd_jwt_kb_presentation"].split("~")
    assert _sd_hash(jwt, disclosures) == S5["kb_jwt_payload"]["sd_hash"]
    without_tilde = _compact(jwt, disclosures)[:-1].encode("ascii")
    assert b64url_encode(hashlib.sha256(without_tilde).digest()) != S5["kb_jwt_payload"]["sd_hash"]


def test_rfc_5_2_tampered_siblings_are_rejected() -> None:
    assert _assert_all_rejected(RFC_KB, _compact_mutations(RFC_KB)) >= 20


def test_rfc_5_expiry_is_enforced() -> None:
    with pytest.raises(errors.Expired):
        RFC_KB.verify(now=1883000000 + 60, max_kb_age=10**9)
    with pytest.raises(errors.NotYetValid):
        RFC_KB.verify(now=1683000000 - 61, max_kb_age=10**9, leeway=60)
    RFC_KB.verify(now=1883000000 + 59, max_kb_age=10**9)  # within the leeway


def test_project_presentation_of_the_rfc_credential_verifies() -> None:
    sd = SdJwt.parse(S5["sd_jwt_issuance"])
    text = present(
        sd,
        disclose={"/given_name", "/family_name", "/address", "/nationalities/0"},
        holder_signer=HOLDER,
        audience=VERIFIER_ID,
        nonce=NONCE,
        iat=KB_IAT,
        encoding=RFC_EXAMPLE_JSON,
    )
    ours = Accepting(text, ISSUER, HOLDER, _rfc_resolver, KB_IAT, VERIFIER_ID, NONCE)
    assert ours.verify().payload == S5["expected_processed_payload"]
    assert _assert_all_rejected(ours, _compact_mutations(ours)) >= 20
    assert len(disclosure_paths(sd)) == 10


# -- RFC 9901 §8 JWS JSON Serialization examples (extracted from the draft text) ------------


def _draft_section_8_examples() -> list[dict[str, Any]]:
    text = (RFC_DIR / "draft-ietf-oauth-selective-disclosure-jwt-22.txt").read_text("utf-8")
    start = text.index("\n8.2.  Flattened JSON Serialization")
    section = text[start : text.index("\n8.4.  Verification of the JWS JSON", start)]
    # Drop page footers/headers, then take the JSON blocks indented by three spaces.
    section = re.sub(r"\n\nFett, et al\.[^\n]*\n\f\nInternet-Draft[^\n]*\n\n", "\n", section)
    blocks = re.findall(r"^   \{\n.*?^   \}$", section, flags=re.MULTILINE | re.DOTALL)
    out = []
    for block in blocks:
        # Strings are wrapped over lines for display; join them back together.
        joined = re.sub(r'"([^"]*)"', lambda m: '"' + re.sub(r"\s+", "", m.group(1)) + '"', block)
        out.append(json.loads(joined))
    return out


SEC8 = _draft_section_8_examples()


def _kid_resolver(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
    second = _load_spec("json_serialization_general")["settings_override"]["key_settings"]
    jwk = {k: v for k, v in second["issuer_keys"][1].items() if k in ("kty", "crv", "x", "y")}
    keys = {"issuer-key-1": ISSUER.public_key, "issuer-key-2": public_key_from_jwk(jwk)}
    return keys[header["kid"]] if "kid" in header else ISSUER.public_key


def _json_acc(index: int) -> Accepting:
    kb = "kb_jwt" in json.dumps(SEC8[index])
    return Accepting(
        json.dumps(SEC8[index]),
        ISSUER,
        HOLDER if kb else None,
        _kid_resolver,
        KB_IAT,
        S5["expected_kb_aud"] if kb else None,
        NONCE if kb else None,
        "json",
    )


def test_rfc_8_examples_were_extracted() -> None:
    assert len(SEC8) == 3
    assert set(SEC8[2]) == {"payload", "signatures"}


def test_rfc_8_2_flattened_issuance_verifies() -> None:
    verified = _json_acc(0).verify()
    assert {k: verified.payload[k] for k in ("sub", "given_name", "family_name", "birthdate")} == {
        "sub": "john_doe_42",
        "given_name": "John",
        "family_name": "Doe",
        "birthdate": "1940-01-01",
    }


@pytest.mark.parametrize("index", [1, 2], ids=["flattened", "general"])
def test_rfc_8_presentations_with_key_binding_verify(index: int) -> None:
    acc = _json_acc(index)
    verified = acc.verify()
    assert verified.payload["given_name"] == "John"
    assert verified.payload["family_name"] == "Doe"
    assert "sub" not in verified.payload
    assert verified.key_binding is not None


def _json_mutations(acc: Accepting) -> Iterator[Mutation]:
    obj = json.loads(acc.presentation)
    sigs = obj.get("signatures", [obj])
    first_header = sigs[0]["header"]

    def edited(change: Callable[[dict[str, Any]], None]) -> str:
        copy = json.loads(acc.presentation)
        change(copy)
        return json.dumps(copy)

    def flip(copy: dict[str, Any], i: int) -> None:
        target = copy["signatures"][i] if "signatures" in copy else copy
        target["signature"] = _flip_signature("a.b." + target["signature"]).split(".")[2]

    def header_of(copy: dict[str, Any]) -> dict[str, Any]:
        return copy["signatures"][0]["header"] if "signatures" in copy else copy["header"]

    for i in range(len(sigs)):
        yield (
            f"signature {i} flipped",
            edited(lambda c, i=i: flip(c, i)),
            errors.SignatureInvalid,
            {},
        )
    yield "compact parser on JSON", acc.presentation, errors.Malformed, {"serialization": "compact"}
    yield "extra member", edited(lambda c: c.update(extra=1)), errors.Malformed, {}
    disclosures = first_header["disclosures"]
    yield (
        "Disclosure sent twice",
        edited(lambda c: header_of(c)["disclosures"].append(disclosures[0])),
        errors.DisclosureDuplicate,
        {},
    )
    if len(sigs) > 1:
        yield (
            "disclosures in the second header",
            edited(lambda c: c["signatures"][1]["header"].update(disclosures=[])),
            errors.Malformed,
            {},
        )
    if "kb_jwt" in first_header:
        yield (
            "Disclosure removed",
            edited(lambda c: header_of(c)["disclosures"].pop()),
            errors.SdHashMismatch,
            {},
        )
        yield (
            "KB-JWT removed",
            edited(lambda c: header_of(c).pop("kb_jwt")),
            errors.KeyBindingMissing,
            {},
        )
        yield "wrong nonce", acc.presentation, errors.KbNonceMismatch, {"nonce": "x"}
        yield "wrong aud", acc.presentation, errors.KbAudienceMismatch, {"audience": "x"}


@pytest.mark.parametrize("index", [0, 1, 2], ids=["flattened", "flattened-kb", "general-kb"])
def test_rfc_8_tampered_siblings_are_rejected(index: int) -> None:
    acc = _json_acc(index)
    assert _assert_all_rejected(acc, _json_mutations(acc)) >= 4


# -- the sd-jwt-python test cases ----------------------------------------------------------


@dataclass(frozen=True)
class Sd:
    """A ``!sd``-tagged YAML node: the key or array element is selectively disclosable."""

    value: Any


class _SpecLoader(yaml.SafeLoader):
    """A safe YAML loader that understands sd-jwt-python's ``!sd`` tag."""


def _construct_sd(loader: yaml.SafeLoader, node: yaml.Node) -> Sd:
    if isinstance(node, yaml.ScalarNode):
        # A tagged scalar is not resolved implicitly; resolve it as if it were untagged
        # (quoted scalars stay strings), as sd-jwt-python's loader does.
        tag = (
            "tag:yaml.org,2002:str"
            if node.style in ('"', "'")
            else loader.resolve(yaml.ScalarNode, node.value, (True, False))
        )
        untagged = yaml.ScalarNode(tag, node.value, node.start_mark, node.end_mark, node.style)
        return Sd(loader.construct_object(untagged, deep=True))
    if isinstance(node, yaml.MappingNode):
        return Sd(loader.construct_mapping(node, deep=True))
    assert isinstance(node, yaml.SequenceNode)
    return Sd(loader.construct_sequence(node, deep=True))


_SpecLoader.add_constructor("!sd", _construct_sd)


def _load_spec(name: str) -> dict[str, Any]:
    text = (CASES_DIR / name / "specification.yml").read_text("utf-8")
    spec: dict[str, Any] = yaml.load(text, Loader=_SpecLoader)  # a SafeLoader subclass
    return spec


def _escape(name: str | int) -> str:
    return "/" + str(name).replace("~", "~0").replace("/", "~1")


def _split_sd(node: Any, prefix: str, paths: list[str]) -> Any:
    """The plain claims of a tagged tree, collecting the disclosable paths."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            name = key.value if isinstance(key, Sd) else key
            path = prefix + _escape(name)
            out[name] = _split_sd(value, path, paths)
            if isinstance(key, Sd):
                paths.append(path)
        return out
    if isinstance(node, list):
        items = []
        for i, element in enumerate(node):
            path = prefix + _escape(i)
            if isinstance(element, Sd):
                paths.append(path)
            plain = element.value if isinstance(element, Sd) else element
            items.append(_split_sd(plain, path, paths))
        return items
    assert not isinstance(node, Sd)
    return node


def _holder_paths(spec: Any, prefix: str = "") -> list[str]:
    """sd-jwt-python's ``holder_disclosed_claims`` as disclosure paths: a truthy entry
    discloses its claim, a nested object or array also what it lists."""
    entries = spec.items() if isinstance(spec, dict) else enumerate(spec)
    paths = []
    for key, value in entries:
        if not value:
            continue
        path = prefix + _escape(key)
        paths.append(path)
        if isinstance(value, dict | list):
            paths += _holder_paths(value, path)
    return paths


def _seeded_salts(seed: int) -> Callable[[], str]:
    # sd-jwt-python's test runner seeds `random` and draws 16 bytes per salt.
    rng = random.Random(seed)
    return lambda: b64url_encode(bytes(rng.getrandbits(8) for _ in range(16)))


def _run_case(name: str, variant: str) -> tuple[Accepting, SdJwt, dict[str, Any], dict[str, Any]]:
    spec = _load_spec(name)
    settings = {**SETTINGS, **spec.get("settings_override", {})}  # as upstream's runner
    key_binding = bool(spec.get("key_binding", False))
    serialization = "json" if spec.get("serialization_format") == "json" else "compact"
    jwks = settings["key_settings"]["issuer_keys"]
    if variant == "case-keys":
        issuers = [private_key_from_jwk({k: v for k, v in j.items() if k != "kid"}) for j in jwks]
        holder = private_key_from_jwk(settings["key_settings"]["holder_key"])
        salt = _seeded_salts(settings["random_seed"])
    else:
        issuers = [
            PrivateKey.from_raw(KeyType.ED25519, bytes([i + 1]) * 32) for i in range(len(jwks))
        ]
        holder = PrivateKey.from_raw(KeyType.ED25519, b"\x09" * 32)
        salt = new_salt
    kids = [j.get("kid") for j in jwks] if len(jwks) > 1 else [None]
    paths: list[str] = []
    claims = {"iss": ISSUER_ID, **_split_sd(spec["user_claims"], "", paths)}
    header = {"typ": "testcase+sd-jwt", **spec.get("extra_header_parameters", {})}
    sd = issue(
        claims,
        disclosable=paths,
        signer=issuers[0],
        header=header,
        salt=salt,
        holder_jwk=public_key_to_jwk(holder.public_key) if key_binding else None,
        unprotected_header={"kid": kids[0]} if kids[0] else None,
    )
    for signer, kid in zip(issuers[1:], kids[1:], strict=True):
        sd = add_signature(sd, signer, header=header, unprotected_header={"kid": kid})
    by_kid = dict(zip(kids, (k.public_key for k in issuers), strict=True))

    def resolver(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
        assert payload["iss"] == ISSUER_ID
        return by_kid[header.get("kid") if len(by_kid) > 1 else None]

    how = {"compact": "compact", "json": "general" if len(issuers) > 1 else "flattened"}
    text = present(
        sd,
        disclose=_holder_paths(spec["holder_disclosed_claims"]),
        holder_signer=holder if key_binding else None,
        audience=VERIFIER_ID if key_binding else None,
        nonce=NONCE if key_binding else None,
        iat=SETTINGS["iat"] if key_binding else None,
        serialization=how[serialization],  # type: ignore[arg-type]
    )
    acc = Accepting(
        text,
        issuers[0],
        holder if key_binding else None,
        resolver,
        SETTINGS["iat"],
        VERIFIER_ID if key_binding else None,
        NONCE if key_binding else None,
        serialization,  # type: ignore[arg-type]
    )
    expected = {**spec["expect_verified_user_claims"], "iss": ISSUER_ID}
    if key_binding:
        expected["cnf"] = {"jwk": public_key_to_jwk(holder.public_key)}
    expected_header = {"alg": issuers[0].alg, **header}
    if kids[0]:
        expected_header["kid"] = kids[0]
    return acc, sd, expected, expected_header


def test_all_17_cases_are_present() -> None:
    assert len(CASE_NAMES) == 17


@pytest.mark.parametrize("variant", ["case-keys", "ed25519"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_sd_jwt_python_case(name: str, variant: str) -> None:
    acc, _, expected, expected_header = _run_case(name, variant)
    verified = acc.verify()
    assert verified.payload == expected
    assert verified.header == expected_header
    assert (verified.key_binding is not None) == (acc.holder is not None)


@pytest.mark.parametrize("variant", ["case-keys", "ed25519"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_sd_jwt_python_case_tampered_siblings(name: str, variant: str) -> None:
    acc, _, _, _ = _run_case(name, variant)
    mutations = _json_mutations(acc) if acc.serialization == "json" else _compact_mutations(acc)
    assert _assert_all_rejected(acc, mutations) >= 4
