"""SD-JWT issuance and presentation (RFC 9901 §4, §4.3, §7.2); verification is in
:mod:`credit_commons.verifier.sd_jwt_verify`, the data model in
:mod:`credit_commons.formats.sd_jwt_format` (its main names are re-exported here).

Pure functions: no clock, no randomness of their own (the salt generator and ``iat`` are
parameters), no I/O.  Signing goes through a :class:`~credit_commons.keys.algorithms.Signer`.

**Disclosure paths.**  Which claims are selectively disclosable (at issuance) and which are
disclosed (at presentation) is written as a set of JSON Pointers (RFC 6901) into the plain
claims: ``/given_name``, ``/address/street_address``, ``/nationalities/0``.  ``~1`` stands for
``/`` and ``~0`` for ``~`` inside a name.  A segment is a property name where the claims hold
an object and a decimal index where they hold an array, so ``/key_data_types/42`` is the
property ``"42"``.  At issuance each path makes that one node disclosable: a property gets an
object-property Disclosure (§4.2.1), an array element an array-element Disclosure (§4.2.2),
and listing both ``/address`` and ``/address/street_address`` gives a recursive disclosure
(§4.2.6).  At presentation a path discloses its node *and every disclosable node on the way to
it* (§7.2 step 2: a Disclosure must connect to the Issuer-signed JWT), but not the disclosable
nodes below it.  Array indexes count the elements of the issued array, decoys included.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from credit_commons.core.cache import BoundedCache
from credit_commons.core.encoding import JsonObject, b64url_encode
from credit_commons.formats.sd_jwt_errors import ClaimsInvalid, DisclosurePathInvalid, Malformed
from credit_commons.formats.sd_jwt_format import (
    COMPACT_JSON,
    DEFAULT_HASH_ALG,
    ELLIPSIS,
    FORBIDDEN_HEADER_PARAMS,
    HASH_ALGORITHMS,
    KB_TYP,
    MAX_DEPTH,
    PYTHON_JSON,
    RESERVED_NAMES,
    RFC_EXAMPLE_JSON,
    SD,
    SD_ALG,
    Disclosure,
    JsonEncoding,
    JwsSignature,
    SdJwt,
    Serialization,
    b64_digest,
    encode_segment,
    new_salt,
    serialize_parts,
)
from credit_commons.keys import KeyInvalid, Signer, public_key_from_jwk

__all__ = [
    "COMPACT_JSON",
    "PYTHON_JSON",
    "RFC_EXAMPLE_JSON",
    "Disclosure",
    "JsonEncoding",
    "Prepared",
    "SdJwt",
    "add_signature",
    "compact_sd_jwt",
    "disclosure_paths",
    "issue",
    "new_salt",
    "parse_path",
    "prepare",
    "present",
]

_INDEX = re.compile(r"0|[1-9][0-9]*")
_SEGMENT = re.compile(r"(?:[^~]|~[01])*")


# -- disclosure paths ----------------------------------------------------------------------


def parse_path(path: str) -> tuple[str, ...]:
    """The unescaped segments of a disclosure path; raises :class:`DisclosurePathInvalid`."""
    if type(path) is not str:
        return _parse_path(path)
    # A type's few paths, parsed on every issuance: remembered (bounded, since paths can
    # come from requests too).
    found = _PATHS.get(path)
    if found is None:
        found = _parse_path(path)
        _PATHS.put(path, found)
    return found


_PATHS: BoundedCache[str, tuple[str, ...]] = BoundedCache(
    max_entries=1024, max_bytes=1024 * 1024, size=lambda path, _segments: 2 * len(path)
)


def _parse_path(path: str) -> tuple[str, ...]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise DisclosurePathInvalid(f"a disclosure path starts with '/': {path!r}")
    segments = path[1:].split("/")
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        raise DisclosurePathInvalid(f"bad '~' escape in {path!r}")
    return tuple(s.replace("~1", "/").replace("~0", "~") for s in segments)


def _escape(segment: str | int) -> str:
    return "/" + str(segment).replace("~", "~0").replace("/", "~1")


def _index(segment: str, length: int, path: str) -> int:
    if not _INDEX.fullmatch(segment) or int(segment) >= length:
        raise DisclosurePathInvalid(f"{path!r}: {segment!r} is not an index of the array")
    return int(segment)


def _array_digest(element: object) -> str | None:
    if isinstance(element, dict) and len(element) == 1 and isinstance(element.get(ELLIPSIS), str):
        return str(element[ELLIPSIS])
    return None


# -- issuance (§4) -------------------------------------------------------------------------


def _where(path: tuple[str | int, ...]) -> str:
    return "".join(_escape(segment) for segment in path)


_SCALARS = frozenset({str, int, bool, type(None)})
_CONTAINERS = (dict, list)  # a tuple: isinstance checks it faster than a union


def _check_claims(node: object, path: tuple[str | int, ...] = (), depth: int = 0) -> None:
    # The path is only turned into text for an error message: this runs on every claim of
    # every credential issued, so scalar members are checked here rather than by a call.
    if depth > MAX_DEPTH:
        raise ClaimsInvalid(f"{_where(path)}: the claims are nested deeper than {MAX_DEPTH}")
    kind = type(node)
    if kind in _SCALARS:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if type(key) is not str and not isinstance(key, str):
                raise ClaimsInvalid(f"{_where(path)}: claim names must be strings")
            if key in RESERVED_NAMES:
                raise ClaimsInvalid(f"{_where(path)}: {key!r} is reserved by RFC 9901")
            if depth >= MAX_DEPTH or type(value) not in _SCALARS:
                _check_claims(value, (*path, key), depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if depth >= MAX_DEPTH or type(value) not in _SCALARS:
                _check_claims(value, (*path, i), depth + 1)
    elif isinstance(node, float) and not math.isfinite(node):
        raise ClaimsInvalid(f"{_where(path)}: JSON has no {node}")
    elif not isinstance(node, str | int | float):
        raise ClaimsInvalid(f"{_where(path)}: {type(node).__name__} is not a JSON value")


def _resolve(claims: JsonObject, path: str) -> tuple[str | int, ...]:
    node: Any = claims
    resolved: list[str | int] = []
    for segment in parse_path(path):
        if isinstance(node, dict) and segment in node:
            node = node[segment]
            resolved.append(segment)
        elif isinstance(node, list):
            i = _index(segment, len(node), path)
            node = node[i]
            resolved.append(i)
        else:
            raise DisclosurePathInvalid(f"{path!r} names no claim")
    return tuple(resolved)


def _check_header(header: Mapping[str, Any], alg: str) -> None:
    if header.get("alg", alg) != alg:
        raise ValueError(f"the header alg must be the signer's ({alg})")
    if FORBIDDEN_HEADER_PARAMS & set(header):
        raise ValueError(f"header parameters {sorted(FORBIDDEN_HEADER_PARAMS)} are refused")


# A trie of the disclosable paths: segment -> [disclose this node, the trie below it].
_Trie = dict[str | int, list[Any]]


def _trie(paths: Collection[tuple[str | int, ...]]) -> _Trie:
    root: _Trie = {}
    for path in paths:
        node = root
        for segment in path[:-1]:
            node = node.setdefault(segment, [False, {}])[1]
        node.setdefault(path[-1], [False, {}])[0] = True
    return root


@dataclass
class _Builder:
    salt: Callable[[], str]
    decoys: int
    hash_alg: str
    encoding: JsonEncoding
    disclosures: list[Disclosure] = field(default_factory=list)
    salts: set[str] = field(default_factory=set)

    def _salt(self) -> str:
        value = self.salt()
        if not isinstance(value, str) or value in self.salts:
            raise ValueError("the salt generator must return a new string each time (§4.2.1)")
        self.salts.add(value)
        return value

    def _disclose(self, name: str | None, value: Any) -> str:
        # The subtree is built before the salt is drawn, as sd-jwt-python does, so a seeded
        # salt generator reproduces its output.
        disclosure = Disclosure.create(self._salt(), name, value, self.encoding)
        self.disclosures.append(disclosure)
        return disclosure.digest(self.hash_alg)

    def build(self, node: Any, trie: _Trie) -> Any:
        # Only the branches that lead to a disclosable path are walked and rebuilt; every
        # other value goes into the payload as it is (shared with the claims, not copied).
        if isinstance(node, dict):
            plain: JsonObject = {}
            digests: list[str] = []
            for key, value in node.items():
                entry = trie.get(key)
                if entry is None:
                    plain[key] = value
                    continue
                disclose, below = entry
                built = self.build(value, below) if below else value
                if disclose:
                    digests.append(self._disclose(key, built))
                else:
                    plain[key] = built
            if not digests:
                return plain
            digests += [b64_digest(self.hash_alg, self._salt()) for _ in range(self.decoys)]
            # §4.2.4.1: hide the original order of the claims by sorting the digests.
            return {SD: sorted(digests), **plain}
        if isinstance(node, list):
            out: list[Any] = []
            for i, value in enumerate(node):
                entry = trie.get(i)
                if entry is None:
                    out.append(value)
                    continue
                disclose, below = entry
                built = self.build(value, below) if below else value
                out.append({ELLIPSIS: self._disclose(None, built)} if disclose else built)
            return out
        return node


def _sign(
    signer: Signer,
    header: Mapping[str, Any],
    payload_segment: str,
    encoding: JsonEncoding,
    unprotected_header: Mapping[str, Any] | None = None,
) -> JwsSignature:
    _check_header(header, signer.alg)
    protected = _protected(signer.alg, header, encoding)
    signature = signer.sign(f"{protected}.{payload_segment}".encode("ascii"))
    return JwsSignature(protected, b64url_encode(signature), dict(unprotected_header or {}))


def _protected(alg: str, header: Mapping[str, Any], encoding: JsonEncoding) -> str:
    # An issuer signs many tokens under one header: headers of strings are encoded once.
    members = tuple(header.items())
    if all(type(k) is str and type(v) is str for k, v in members):
        return _protected_segment(alg, members, encoding)
    return encode_segment({"alg": alg, **header}, encoding)


@functools.lru_cache(maxsize=256)
def _protected_segment(
    alg: str, members: tuple[tuple[str, str], ...], encoding: JsonEncoding
) -> str:
    return encode_segment({"alg": alg, **dict(members)}, encoding)


def issue(
    claims: Mapping[str, Any],
    *,
    disclosable: Collection[str],
    signer: Signer,
    header: Mapping[str, Any] | None = None,
    salt: Callable[[], str] = new_salt,
    decoys: int = 0,
    hash_alg: str = DEFAULT_HASH_ALG,
    holder_jwk: Mapping[str, Any] | None = None,
    encoding: JsonEncoding = COMPACT_JSON,
    unprotected_header: Mapping[str, Any] | None = None,
) -> SdJwt:
    """Issue an SD-JWT (RFC 9901 §4): the claims with the ``disclosable`` paths replaced by
    digests, ``_sd_alg``, optionally ``cnf`` ``{"jwk": holder_jwk}`` (§4.1.2), signed.
    ``holder_jwk`` must be a public Ed25519 or P-256 JWK.

    ``header`` adds JOSE header parameters (``typ``, ``kid``) after ``alg``;
    ``unprotected_header`` is kept for the JWS JSON Serialization only.  ``decoys`` decoy
    digests are added to every ``_sd`` array (§4.2.5).  Raises :class:`ClaimsInvalid` for
    claims an SD-JWT cannot carry, :class:`DisclosurePathInvalid` for a path naming no
    claim, and :class:`ValueError` for an unknown ``hash_alg``, a negative ``decoys``, a
    repeating salt generator or a header that sets a key (``jwk``, ``x5c``…) or another
    ``alg``.
    """
    prepared = prepare(
        claims,
        disclosable=disclosable,
        alg=signer.alg,
        header=header,
        salt=salt,
        decoys=decoys,
        hash_alg=hash_alg,
        holder_jwk=holder_jwk,
        encoding=encoding,
        unprotected_header=unprotected_header,
    )
    return prepared.complete(signer.sign(prepared.signing_input))


@dataclass(frozen=True, slots=True)
class Prepared:
    """An SD-JWT built and waiting for its one signature over :attr:`signing_input` (so a
    batch of them can be signed together)."""

    signing_input: bytes
    protected: str
    payload_segment: str
    payload: JsonObject
    disclosures: tuple[Disclosure, ...]
    unprotected_header: Mapping[str, Any]

    def complete(self, signature: bytes) -> SdJwt:
        """The SD-JWT with ``signature`` (the signer's raw signature of the signing input)."""
        jws = JwsSignature(self.protected, b64url_encode(signature), dict(self.unprotected_header))
        return SdJwt(self.payload_segment, self.payload, (jws,), self.disclosures)

    @property
    def disclosures_text(self) -> str:
        """The Disclosures as the compact form carries them, each followed by ``~``."""
        return "".join(d.encoded + "~" for d in self.disclosures)


def compact_sd_jwt(signing_input: bytes, disclosures_text: str, signature: bytes) -> str:
    """A prepared SD-JWT signed with ``signature``, in the compact form: exactly
    ``prepared.complete(signature).serialize()``, composed directly from
    :attr:`Prepared.signing_input` and :attr:`Prepared.disclosures_text` (a bulk issuance
    needs only the text, and builds on worker processes send only these two)."""
    return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}~{disclosures_text}"


def prepare(
    claims: Mapping[str, Any],
    *,
    disclosable: Collection[str],
    alg: str,
    header: Mapping[str, Any] | None = None,
    salt: Callable[[], str] = new_salt,
    decoys: int = 0,
    hash_alg: str = DEFAULT_HASH_ALG,
    holder_jwk: Mapping[str, Any] | None = None,
    encoding: JsonEncoding = COMPACT_JSON,
    unprotected_header: Mapping[str, Any] | None = None,
) -> Prepared:
    """Everything :func:`issue` does except the signature, for a signer of ``alg``; raises
    what :func:`issue` raises.  ``prepare(...).complete(signer.sign(signing_input))`` is
    exactly ``issue(...)``."""
    if hash_alg not in HASH_ALGORITHMS:
        raise ValueError(f"unsupported hash algorithm {hash_alg!r}")
    if decoys < 0:
        raise ValueError("decoys must not be negative")
    top = dict(claims)
    _check_claims(top)
    if holder_jwk is not None:
        if "cnf" in top:
            raise ClaimsInvalid("cnf is set from holder_jwk; do not pass it as a claim too")
        try:  # A private JWK here would publish the holder's private key.
            public_key_from_jwk(dict(holder_jwk))
        except KeyInvalid as e:
            raise ClaimsInvalid("holder_jwk must be a public Ed25519 or P-256 JWK") from e
    trie = _trie({_resolve(top, p) for p in disclosable})
    builder = _Builder(salt, decoys, hash_alg, encoding)
    payload: JsonObject = builder.build(top, trie)
    payload[SD_ALG] = hash_alg
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": dict(holder_jwk)}
    try:
        payload_segment = encode_segment(payload, encoding)
    except ValueError as e:
        raise ClaimsInvalid("the claims have no JSON form") from e
    header = header or {}
    _check_header(header, alg)
    protected = _protected(alg, header, encoding)
    return Prepared(
        f"{protected}.{payload_segment}".encode("ascii"),
        protected,
        payload_segment,
        payload,
        tuple(builder.disclosures),
        unprotected_header or {},
    )


def add_signature(
    sd_jwt: SdJwt,
    signer: Signer,
    *,
    header: Mapping[str, Any] | None = None,
    unprotected_header: Mapping[str, Any] | None = None,
    encoding: JsonEncoding = COMPACT_JSON,
) -> SdJwt:
    """Add another issuer signature over the same payload, for the General JSON
    Serialization (§8.3).  Raises :class:`ValueError` for a header :func:`issue` refuses."""
    signature = _sign(signer, header or {}, sd_jwt.payload_segment, encoding, unprotected_header)
    return replace(sd_jwt, signatures=(*sd_jwt.signatures, signature))


# -- presentation (§7.2, §4.3) -------------------------------------------------------------


def _digest_map(sd_jwt: SdJwt) -> dict[str, Disclosure]:
    return {d.digest(sd_jwt.hash_alg): d for d in sd_jwt.disclosures}


def disclosure_paths(sd_jwt: SdJwt) -> dict[str, Disclosure]:
    """Every usable Disclosure of ``sd_jwt`` by the path of the claim it discloses, in
    issuance order (a Disclosure no digest reaches is left out).

    Raises :class:`ValueError` when the payload names an unsupported ``_sd_alg`` and
    :class:`Malformed` when it nests deeper than ``MAX_DEPTH``.
    """
    by_digest = _digest_map(sd_jwt)
    out: dict[str, Disclosure] = {}
    seen: set[str] = set()  # a digest is followed once, so shared digests cannot blow up

    def follow(digest: str, prefix: str, depth: int, *, named: bool) -> None:
        found = by_digest.get(digest)
        if digest in seen or found is None or (found.name is not None) != named:
            return
        seen.add(digest)
        out[prefix] = found
        walk(found.value, prefix, depth + 1)

    def walk(node: Any, prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise Malformed("the SD-JWT is nested too deeply")
        if isinstance(node, dict):
            for key, value in node.items():
                if key != SD:
                    walk(value, prefix + _escape(key), depth + 1)
            listed = node.get(SD)
            for digest in listed if isinstance(listed, list) else []:
                found = by_digest.get(digest) if isinstance(digest, str) else None
                if found is not None and found.name is not None:
                    follow(digest, prefix + _escape(found.name), depth, named=True)
        elif isinstance(node, list):
            for i, element in enumerate(node):
                digest = _array_digest(element)
                if digest is None:
                    walk(element, prefix + _escape(i), depth + 1)
                else:
                    follow(digest, prefix + _escape(i), depth, named=False)

    walk(sd_jwt.payload, "", 0)
    order = {d.encoded: i for i, d in enumerate(sd_jwt.disclosures)}
    return dict(sorted(out.items(), key=lambda item: order[item[1].encoded]))


def _select(sd_jwt: SdJwt, by_digest: Mapping[str, Disclosure], path: str) -> set[str]:
    node: Any = sd_jwt.payload
    chosen: set[str] = set()
    for segment in parse_path(path):
        if isinstance(node, dict):
            if segment in node and segment not in RESERVED_NAMES:
                node = node[segment]
                continue
            listed = node.get(SD)
            digests = [g for g in listed if isinstance(g, str)] if isinstance(listed, list) else []
            match = [g for g in digests if g in by_digest and by_digest[g].name == segment]
            if not match:
                raise DisclosurePathInvalid(f"{path!r} names no claim of this SD-JWT")
            chosen.add(match[0])
            node = by_digest[match[0]].value
        elif isinstance(node, list):
            element = node[_index(segment, len(node), path)]
            digest = _array_digest(element)
            if digest is None:
                node = element
                continue
            if digest not in by_digest or by_digest[digest].name is not None:
                raise DisclosurePathInvalid(f"{path!r}: no Disclosure for that array element")
            chosen.add(digest)
            node = by_digest[digest].value
        else:
            raise DisclosurePathInvalid(f"{path!r} names no claim of this SD-JWT")
    return chosen


def present(
    sd_jwt: SdJwt,
    *,
    disclose: Collection[str] | Callable[[str], bool],
    holder_signer: Signer | None = None,
    audience: str | None = None,
    nonce: str | None = None,
    iat: int | None = None,
    encoding: JsonEncoding = COMPACT_JSON,
    serialization: Serialization = "compact",
) -> str:
    """Build a presentation: the SD-JWT with the selected Disclosures (§7.2) and, with a
    ``holder_signer``, a Key Binding JWT (§4.3): ``typ: kb+jwt``, ``nonce``, ``aud``,
    ``iat`` and ``sd_hash`` over ``<JWT>~<D1>~…~<Dn>~`` (§4.3.1).

    ``disclose`` is a collection of disclosure paths or a predicate over the paths of
    :func:`disclosure_paths`; each disclosed path brings the Disclosures on its way.
    Disclosures keep their issuance order.  Raises :class:`DisclosurePathInvalid` for a path
    naming no claim, and :class:`ValueError` when ``holder_signer``, ``audience``, ``nonce``
    and ``iat`` are not given together, the signer's key is not the ``cnf`` key, or the
    serialization cannot carry the signatures.
    """
    by_digest = _digest_map(sd_jwt)
    if callable(disclose):
        paths = [p for p in disclosure_paths(sd_jwt) if disclose(p)]
    else:
        paths = [disclose] if isinstance(disclose, str) else list(disclose)
    chosen: set[str] = set()
    for path in paths:
        chosen |= _select(sd_jwt, by_digest, path)
    selected = [d for g, d in by_digest.items() if g in chosen]
    kb_args = (holder_signer, audience, nonce, iat)
    if all(a is None for a in kb_args):
        return serialize_parts(sd_jwt, selected, None, serialization)
    if holder_signer is None or audience is None or nonce is None or iat is None:
        raise ValueError("holder_signer, audience, nonce and iat go together")
    _check_holder_key(sd_jwt, holder_signer)
    hash_input = sd_jwt.jwt + "~" + "".join(d.encoded + "~" for d in selected)
    kb_header = encode_segment({"alg": holder_signer.alg, "typ": KB_TYP}, encoding)
    sd_hash = b64_digest(sd_jwt.hash_alg, hash_input)
    claims = {"nonce": nonce, "aud": audience, "iat": iat, "sd_hash": sd_hash}
    signing_input = f"{kb_header}.{encode_segment(claims, encoding)}"
    kb = f"{signing_input}.{b64url_encode(holder_signer.sign(signing_input.encode('ascii')))}"
    return serialize_parts(sd_jwt, selected, kb, serialization)


def _check_holder_key(sd_jwt: SdJwt, signer: Signer) -> None:
    cnf = sd_jwt.payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if jwk is None:
        return
    try:
        matches = public_key_from_jwk(jwk) == signer.public_key
    except KeyInvalid:
        return
    if not matches:
        raise ValueError("the holder signer's key is not the cnf key of the SD-JWT")
