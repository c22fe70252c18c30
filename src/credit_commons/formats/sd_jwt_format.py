"""The SD-JWT data model and its serializations (RFC 9901 §4, §4.2, §8).

The values issuance, presentation and verification share: :class:`Disclosure`,
:class:`SdJwt` and the JWS parts, the strict decoders (canonical base64url only, JSON without
duplicate member names or NaN), and the compact and JWS JSON serializations.

**JSON encoding.**  Digests are taken over the base64url Disclosure string (§4.2.3), so the
JSON text is fixed by the issuer and never re-encoded.  :class:`JsonEncoding` makes the choice
explicit: :data:`COMPACT_JSON` (the default), :data:`RFC_EXAMPLE_JSON` (``", "`` and ``": "``,
UTF-8 kept as is — reproduces every Disclosure in RFC 9901 byte for byte) and
:data:`PYTHON_JSON` (``json.dumps`` defaults, what the ``sd-jwt`` Python package emits).
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from credit_commons.core.encoding import JsonObject, b64url_decode, b64url_encode, json_decode
from credit_commons.core.errors import ValidationError
from credit_commons.formats.jws import JwsInvalid, decode_json_object
from credit_commons.formats.sd_jwt_errors import (
    ClaimsInvalid,
    DisclosureDuplicate,
    Malformed,
    ReservedClaim,
    SdJwtInvalid,
)

__all__ = [
    "COMPACT_JSON",
    "DEFAULT_HASH_ALG",
    "ELLIPSIS",
    "FORBIDDEN_HEADER_PARAMS",
    "HASH_ALGORITHMS",
    "KB_TYP",
    "MAX_DEPTH",
    "PYTHON_JSON",
    "RESERVED_NAMES",
    "RFC_EXAMPLE_JSON",
    "SD",
    "SD_ALG",
    "Disclosure",
    "JsonEncoding",
    "JwsSignature",
    "Parts",
    "SdJwt",
    "Serialization",
    "b64_digest",
    "decode_b64",
    "decode_object",
    "encode_segment",
    "loads_json",
    "new_salt",
    "serialize_parts",
    "split",
]

Serialization = Literal["compact", "flattened", "general"]

#: The ``_sd_alg`` values supported (IANA "Named Information Hash Algorithm" names, §4.1.1).
HASH_ALGORITHMS: Final[Mapping[str, Callable[[bytes], Any]]] = {
    "sha-256": hashlib.sha256,
    "sha-384": hashlib.sha384,
    "sha-512": hashlib.sha512,
    "sha3-256": hashlib.sha3_256,
    "sha3-384": hashlib.sha3_384,
    "sha3-512": hashlib.sha3_512,
}
DEFAULT_HASH_ALG: Final = "sha-256"  # §4.1.1: the default when _sd_alg is absent
SD: Final = "_sd"
ELLIPSIS: Final = "..."
SD_ALG: Final = "_sd_alg"
RESERVED_NAMES: Final = frozenset({SD, ELLIPSIS, SD_ALG})
#: The deepest nesting accepted in one JSON text and in a processed payload.  Explicit,
#: because a library may raise the recursion limit (py_ecc sets 100,000) so far that a
#: hostile nesting depth would overflow the C stack instead of raising RecursionError.
MAX_DEPTH: Final = 64
KB_TYP: Final = "kb+jwt"
#: Header parameters that would let a JWT choose its own verification key (RFC 8725 §3.10)
#: or demand extensions we do not implement (RFC 7515 §4.1.11).
FORBIDDEN_HEADER_PARAMS: Final = frozenset({"jwk", "jku", "x5u", "x5c", "crit"})


@dataclass(frozen=True, slots=True)
class JsonEncoding:
    """How JSON values become text in Disclosures and JWT segments."""

    item_separator: str = ","
    key_separator: str = ":"
    ensure_ascii: bool = False

    def dumps(self, value: Any) -> str:
        """The JSON text of ``value``; raises :class:`ValueError` for NaN or infinities."""
        return _encoder(self.item_separator, self.key_separator, self.ensure_ascii).encode(value)

    def dumps_array(self, *items: Any) -> str:
        """The JSON text of the array ``items``: exactly ``dumps(list(items))`` (a JSON
        array is its elements' texts between brackets, joined by the item separator), but
        a string element is escaped directly instead of through a whole encoder pass.
        Raises :class:`ValueError` as :meth:`dumps` does."""
        encoder = _encoder(self.item_separator, self.key_separator, self.ensure_ascii)
        escape = _escape_ascii if self.ensure_ascii else _escape
        texts = [escape(v) if type(v) is str else encoder.encode(v) for v in items]
        return "[" + self.item_separator.join(texts) + "]"


_escape = json.encoder.encode_basestring  # what JSONEncoder writes a str with
_escape_ascii = json.encoder.encode_basestring_ascii


@functools.cache
def _encoder(item_separator: str, key_separator: str, ensure_ascii: bool) -> json.JSONEncoder:
    # One encoder per encoding: json.dumps with options builds a new one on every call.
    return json.JSONEncoder(
        separators=(item_separator, key_separator), ensure_ascii=ensure_ascii, allow_nan=False
    )


COMPACT_JSON: Final = JsonEncoding()
RFC_EXAMPLE_JSON: Final = JsonEncoding(", ", ": ", ensure_ascii=False)
PYTHON_JSON: Final = JsonEncoding(", ", ": ", ensure_ascii=True)


def new_salt() -> str:
    """A fresh salt: 128 bits from ``secrets``, base64url (RFC 9901 §4.2.1, §9.3)."""
    return b64url_encode(secrets.token_bytes(16))


def b64_digest(hash_alg: str, text: str) -> str:
    """base64url(hash(US-ASCII bytes of ``text``)) — §4.2.3 and §4.3.1.

    Raises :class:`ValueError` for an unsupported ``hash_alg`` or non-ASCII ``text``.
    """
    try:
        fn = HASH_ALGORITHMS[hash_alg]
    except KeyError:
        raise ValueError(f"unsupported hash algorithm {hash_alg!r}") from None
    return b64url_encode(fn(text.encode("ascii")).digest())


# -- strict decoding -----------------------------------------------------------------------


def loads_json(raw: bytes, error: type[SdJwtInvalid], what: str) -> Any:
    """Parse UTF-8 I-JSON strictly (``core.encoding.json_decode``): no duplicate member
    names, no NaN or infinities, nesting no deeper than :data:`MAX_DEPTH`.

    Raises ``error`` (an :class:`SdJwtInvalid` subclass) when ``raw`` is not such JSON.
    """
    try:
        return json_decode(raw, max_depth=MAX_DEPTH)
    except ValidationError as e:
        raise error(f"{what} is not valid JSON ({e})") from e


def decode_b64(text: object, error: type[SdJwtInvalid], what: str) -> bytes:
    """Strict unpadded base64url; raises ``error`` on anything else (non-canonical included)."""
    if not isinstance(text, str) or not text.isascii():
        raise error(f"{what} is not base64url")
    try:
        return b64url_decode(text)
    except ValidationError as e:
        raise error(f"{what} is not canonical base64url") from e


def decode_object(segment: object, error: type[SdJwtInvalid], what: str) -> JsonObject:
    """A base64url JSON-object segment (JWT header or payload), decoded by the one JWS
    module's strict decoder; raises ``error``."""
    if not isinstance(segment, str):
        raise error(f"{what} is not base64url")
    try:
        return decode_json_object(segment, what)
    except JwsInvalid as e:
        raise error(f"{what} is not canonical base64url of a JSON object ({e})") from e


def encode_segment(value: Mapping[str, Any], encoding: JsonEncoding) -> str:
    return b64url_encode(encoding.dumps(value).encode("utf-8"))


# -- Disclosures ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One Disclosure (§4.2): ``encoded`` is the base64url string the digest covers.

    ``name`` is the claim name of an object-property Disclosure and ``None`` for an
    array-element Disclosure.
    """

    encoded: str
    salt: str
    name: str | None
    value: Any

    @classmethod
    def create(
        cls, salt: str, name: str | None, value: Any, encoding: JsonEncoding = COMPACT_JSON
    ) -> Disclosure:
        """Build a Disclosure from its parts (§4.2.1, §4.2.2).

        Raises :class:`ClaimsInvalid` for a reserved claim name or a value JSON cannot hold.
        """
        if name is not None and name in RESERVED_NAMES:
            raise ClaimsInvalid(f"{name!r} cannot be a claim name")
        try:
            text = (
                encoding.dumps_array(salt, value)
                if name is None
                else (encoding.dumps_array(salt, name, value))
            )
        except (TypeError, ValueError) as e:
            raise ClaimsInvalid("a disclosed value has no JSON form") from e
        return cls(b64url_encode(text.encode("utf-8")), salt, name, value)

    @classmethod
    def parse(cls, encoded: str) -> Disclosure:
        """Parse a received Disclosure strictly.

        Raises :class:`Malformed` unless it is canonical base64url of a JSON array of a string
        salt, optionally a string claim name, and a value; :class:`ReservedClaim` when the
        claim name is ``_sd``, ``...`` or ``_sd_alg`` (§7.1 step 3.3.2.2).
        """
        value = loads_json(
            decode_b64(encoded, Malformed, "a Disclosure"), Malformed, "a Disclosure"
        )
        if not isinstance(value, list) or len(value) not in (2, 3):
            raise Malformed("a Disclosure must be a JSON array of two or three elements")
        if not isinstance(value[0], str):
            raise Malformed("a Disclosure salt must be a string")
        if len(value) == 2:
            return cls(encoded, value[0], None, value[1])
        name = value[1]
        if not isinstance(name, str):
            raise Malformed("a Disclosure claim name must be a string")
        if name in RESERVED_NAMES:
            raise ReservedClaim(f"a Disclosure may not name the claim {name!r}")
        return cls(encoded, value[0], name, value[2])

    def digest(self, hash_alg: str = DEFAULT_HASH_ALG) -> str:
        """The digest over the base64url string (§4.2.3); ValueError for an unknown hash."""
        return b64_digest(hash_alg, self.encoded)


# -- the SD-JWT value ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JwsSignature:
    """One JWS signature over the payload: the protected header segment, the signature
    segment and (JSON serialization only, §8) the unprotected header."""

    protected: str
    signature: str
    header: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SdJwt:
    """An SD-JWT as issued: the Issuer-signed JWT and all its Disclosures (§4).

    ``payload`` is the decoded Issuer-signed payload (digests, not plain claims).  More than
    one signature exists only for the General JSON Serialization (§8.3).
    """

    payload_segment: str
    payload: JsonObject
    signatures: tuple[JwsSignature, ...]
    disclosures: tuple[Disclosure, ...]

    def __post_init__(self) -> None:
        if not self.signatures:
            raise ValueError("an SD-JWT has at least one signature")

    @property
    def header(self) -> JsonObject:
        """The protected header of the first signature; raises :class:`Malformed`."""
        return decode_object(self.signatures[0].protected, Malformed, "the JWT header")

    @property
    def jwt(self) -> str:
        """The Issuer-signed JWT in compact form (the first signature)."""
        first = self.signatures[0]
        return f"{first.protected}.{self.payload_segment}.{first.signature}"

    @property
    def hash_alg(self) -> str:
        """The ``_sd_alg`` of the payload, ``sha-256`` when absent (§4.1.1)."""
        alg = self.payload.get(SD_ALG, DEFAULT_HASH_ALG)
        return alg if isinstance(alg, str) else DEFAULT_HASH_ALG

    def serialize(self, serialization: Serialization = "compact") -> str:
        """The issuance form: ``<JWT>~<D1>~…~<Dn>~`` (§4) or a JWS JSON Serialization (§8).

        Raises :class:`ValueError` when the form cannot carry this SD-JWT's signatures.
        """
        return serialize_parts(self, self.disclosures, None, serialization)

    @classmethod
    def parse(cls, text: str, serialization: Literal["compact", "json"] = "compact") -> SdJwt:
        """Parse an issued SD-JWT for the holder, *without* checking the signature.

        Validate it with :func:`credit_commons.verifier.sd_jwt_verify.verify` (without key
        binding), as §7.2 step 1 asks.
        Raises :class:`Malformed` (including for an SD-JWT+KB, which a holder must reject,
        §7.2), :class:`ReservedClaim` and :class:`DisclosureDuplicate`.
        """
        parts = split(text, serialization)
        if parts.kb_jwt is not None:
            raise Malformed("an issued SD-JWT must not carry a Key Binding JWT")
        disclosures = tuple(Disclosure.parse(d) for d in parts.disclosures)
        if len(set(parts.disclosures)) != len(disclosures):
            raise DisclosureDuplicate("the same Disclosure appears twice")
        payload = decode_object(parts.payload, Malformed, "the JWT payload")
        return cls(parts.payload, payload, parts.signatures, disclosures)


@dataclass(frozen=True, slots=True)
class Parts:
    """The separated parts of a serialized SD-JWT or SD-JWT+KB (§7.1 step 1, §8.4)."""

    payload: str
    signatures: tuple[JwsSignature, ...]
    disclosures: tuple[str, ...]
    kb_jwt: str | None

    @property
    def hash_input(self) -> str:
        """The compact SD-JWT the ``sd_hash`` covers, final ``~`` included (§4.3.1, §8.1)."""
        first = self.signatures[0]
        jwt = f"{first.protected}.{self.payload}.{first.signature}"
        return jwt + "~" + "".join(d + "~" for d in self.disclosures)


def _str_member(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise Malformed(f"the JWS member {name!r} must be a string")
    return value


def _json_signature(obj: object, allowed: frozenset[str]) -> JwsSignature:
    if not isinstance(obj, dict) or not set(obj) <= allowed:
        raise Malformed("unexpected members in the JWS JSON Serialization")
    header = obj.get("header", {})
    if not isinstance(header, dict):
        raise Malformed("the unprotected header must be a JSON object")
    return JwsSignature(_str_member(obj, "protected"), _str_member(obj, "signature"), header)


def split(text: object, serialization: Literal["compact", "json"]) -> Parts:
    """Separate an SD-JWT or SD-JWT+KB into its parts without decoding them (§7.1 step 1).

    ``json`` accepts the Flattened and the General JWS JSON Serialization (§8).  Raises
    :class:`Malformed`.
    """
    if not isinstance(text, str):
        raise Malformed("an SD-JWT is a string")
    if serialization == "compact":
        if "~" not in text:
            raise Malformed("an SD-JWT ends with '~' or a Key Binding JWT after it")
        jwt, *disclosures, kb = text.split("~")
        if not all(disclosures):
            raise Malformed("empty Disclosure between two '~'")
        segments = jwt.split(".")
        if len(segments) != 3:
            raise Malformed("the Issuer-signed JWT must have three parts")
        return Parts(
            segments[1], (JwsSignature(segments[0], segments[2]),), tuple(disclosures), kb or None
        )
    obj = loads_json(text.encode("utf-8"), Malformed, "the JWS JSON Serialization")
    if not isinstance(obj, dict):
        raise Malformed("the JWS JSON Serialization is a JSON object")
    if "signatures" in obj:  # §8.3 General
        listed = obj["signatures"]
        if set(obj) != {"payload", "signatures"} or not isinstance(listed, list) or not listed:
            raise Malformed("malformed General JWS JSON Serialization")
        sigs = [_json_signature(s, frozenset({"protected", "signature", "header"})) for s in listed]
    else:  # §8.2 Flattened
        flat = frozenset({"payload", "protected", "signature", "header"})
        sigs = [_json_signature(obj, flat)]
    first = dict(sigs[0].header)
    if any("disclosures" in s.header or "kb_jwt" in s.header for s in sigs[1:]):
        raise Malformed("disclosures and kb_jwt belong in the first unprotected header only")
    disclosures = first.pop("disclosures", [])
    kb = first.pop("kb_jwt", None)
    if not isinstance(disclosures, list) or not all(isinstance(d, str) and d for d in disclosures):
        raise Malformed("disclosures must be an array of non-empty strings")
    if kb is not None and not (isinstance(kb, str) and kb):
        raise Malformed("kb_jwt must be a non-empty string")
    sigs[0] = replace(sigs[0], header=first)
    return Parts(_str_member(obj, "payload"), tuple(sigs), tuple(disclosures), kb)


def serialize_parts(
    sd_jwt: SdJwt, disclosures: Collection[Disclosure], kb: str | None, how: Serialization
) -> str:
    encoded = [d.encoded for d in disclosures]
    if how == "compact":
        if len(sd_jwt.signatures) != 1:
            raise ValueError("the compact serialization carries exactly one signature")
        return sd_jwt.jwt + "~" + "".join(d + "~" for d in encoded) + (kb or "")
    first, *rest = sd_jwt.signatures
    header: JsonObject = {**first.header, "disclosures": encoded}
    if kb is not None:
        header["kb_jwt"] = kb
    if how == "flattened":
        if rest:
            raise ValueError("the Flattened JSON Serialization carries exactly one signature")
        flat = {
            "header": header,
            "payload": sd_jwt.payload_segment,
            "protected": first.protected,
            "signature": first.signature,
        }
        return COMPACT_JSON.dumps(flat)
    signatures = [{"header": header, "protected": first.protected, "signature": first.signature}]
    signatures += [
        {"header": dict(s.header), "protected": s.protected, "signature": s.signature} for s in rest
    ]
    return COMPACT_JSON.dumps({"payload": sd_jwt.payload_segment, "signatures": signatures})
