"""SD-JWT and SD-JWT+KB verification (RFC 9901 §7.1 and §7.3, §8.4).

:func:`verify` raises a :mod:`~credit_commons.formats.sd_jwt_errors` class for the first check
that fails and returns only when every check passed.  The steps are numbered as in the RFC.
It runs four stages, in order, which the platform's pipeline (``verifier/pipeline.py``) runs
between its own steps: :func:`parse_presentation`, :func:`verify_issuer_jwt`,
:func:`check_validity` and :func:`verify_key_binding`.

JOSE policy (RFC 8725 §3.1), applied by the platform's one JWS module (``formats/jws.py``):
the ``alg`` must be one of ``EdDSA``, ``Ed25519`` and ``ES256`` and must fit the key's type
(checked by :meth:`PublicKey.verify`); ``none`` and HMAC are refused before any key is looked
up.  The issuer key comes from the caller's resolver only: a header carrying ``jwk``, ``jku``,
``x5u`` or ``x5c`` is refused, and so is any ``crit`` (no extension is understood) — except
``x5c`` when the caller's resolver verifies the chain itself (:func:`verify_issuer_jwt`'s
``key_headers``: the platform's pipeline, for issuers trusted through an X.509 anchor).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from credit_commons.core.encoding import JsonObject
from credit_commons.formats import sd_jwt_errors as errors
from credit_commons.formats.jws import (
    EMBEDDED_KEY_HEADERS,
    JwsAlgorithmRefused,
    JwsHeaderRefused,
    JwsInvalid,
    check_header,
    parse_compact,
)
from credit_commons.formats.sd_jwt_format import (
    DEFAULT_HASH_ALG,
    ELLIPSIS,
    HASH_ALGORITHMS,
    KB_TYP,
    MAX_DEPTH,
    SD,
    SD_ALG,
    Disclosure,
    JwsSignature,
    Parts,
    b64_digest,
    decode_b64,
    decode_object,
    split,
)
from credit_commons.keys import (
    ACCEPTED_ALGS,
    AlgorithmNotAllowed,
    KeyInvalid,
    KeyTypeMismatch,
    PublicKey,
    SignatureInvalid,
    public_key_from_jwk,
)

__all__ = [
    "IssuerKeyResolver",
    "IssuerSigned",
    "KeyBinding",
    "Verified",
    "check_validity",
    "nesting_guard",
    "parse_presentation",
    "verify",
    "verify_issuer_jwt",
    "verify_key_binding",
]

#: Looks up the issuer's key from the (not yet verified) JOSE header and payload, checking
#: that the key belongs to the issuer (§7.1 step 2.3).  It raises to refuse.
IssuerKeyResolver = Callable[[Mapping[str, Any], Mapping[str, Any]], PublicKey]


@dataclass(frozen=True, slots=True)
class KeyBinding:
    """The verified Key Binding JWT's header and payload."""

    header: JsonObject
    payload: JsonObject


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified presentation: the Processed SD-JWT Payload (Disclosures applied; ``_sd``,
    ``_sd_alg`` and ``...`` removed), the issuer JWT header, the Disclosures and the KB-JWT."""

    payload: JsonObject
    header: JsonObject
    disclosures: tuple[Disclosure, ...]
    key_binding: KeyBinding | None


@contextmanager
def _jose_errors(invalid: type[errors.SdJwtInvalid]) -> Iterator[None]:
    # The one JWS parser's refusals, as this module's classes (RFC 9901 §7.1 step 2.1).
    try:
        yield
    except JwsAlgorithmRefused as e:  # none, HS256, RS256…: RFC 8725 §3.1
        raise errors.AlgorithmNotAllowed(str(e)) from e
    except JwsHeaderRefused as e:  # jwk, jku, x5u, x5c, or any crit (RFC 7515 §4.1.11)
        raise errors.EmbeddedKeyNotAllowed(str(e)) from e
    except JwsInvalid as e:
        raise invalid(str(e)) from e


def _check_jose_header(
    header: Mapping[str, Any],
    invalid: type[errors.SdJwtInvalid],
    key_headers: frozenset[str] = frozenset(),
) -> str:
    if not isinstance(header.get("alg"), str):
        raise invalid("the JOSE header has no alg")
    with _jose_errors(invalid):
        return check_header(
            header, algs=ACCEPTED_ALGS, refused_headers=EMBEDDED_KEY_HEADERS - key_headers
        )


def _check_signature(
    key: PublicKey,
    alg: str,
    signing_input: str,
    signature: str,
    invalid: type[errors.SdJwtInvalid],
) -> None:
    _verify_signature(
        key,
        alg,
        signing_input.encode("ascii"),
        decode_b64(signature, invalid, "the signature"),
        invalid,
    )


def _verify_signature(
    key: PublicKey, alg: str, signing_input: bytes, raw: bytes, invalid: type[errors.SdJwtInvalid]
) -> None:
    try:
        key.verify(alg, signing_input, raw)
    except (AlgorithmNotAllowed, KeyTypeMismatch) as e:
        raise errors.AlgorithmNotAllowed(f"alg {alg} does not fit the key") from e
    except SignatureInvalid as e:
        raise invalid("the signature does not verify") from e


def _issuer_header(signature: JwsSignature) -> JsonObject:
    protected = decode_object(signature.protected, errors.Malformed, "the JWT header")
    if "alg" not in protected:
        raise errors.Malformed("alg must be in the protected header")
    if set(protected) & set(signature.header):  # RFC 7515 §7.2.1: the headers are disjoint
        raise errors.Malformed("a header parameter is both protected and unprotected")
    return {**protected, **signature.header}


class _Processor:
    """§7.1 steps 3.2 to 3.6 and 4: replace digests by Disclosures, recursively."""

    def __init__(self, by_digest: Mapping[str, Disclosure]) -> None:
        self.by_digest = by_digest
        self.seen: set[str] = set()
        self.used: set[str] = set()

    def _lookup(self, digest: str) -> Disclosure | None:
        # Step 4: any digest met twice, directly or through Disclosures, is a rejection.
        if digest in self.seen:
            raise errors.DigestCollision("a digest appears more than once")
        self.seen.add(digest)
        return self.by_digest.get(digest)  # step 3.3.1: no Disclosure, ignore the digest

    def value(self, node: Any, depth: int) -> Any:
        # Disclosures nest inside one another, so bound the depth of the result, too.
        if depth > MAX_DEPTH:
            raise errors.Malformed("the credential is nested too deeply")
        if isinstance(node, dict):
            return self.object(node, depth)
        if isinstance(node, list):
            return self.array(node, depth)
        return node

    def object(self, node: Mapping[str, Any], depth: int) -> JsonObject:
        out: JsonObject = {}
        for key, value in node.items():
            if key == ELLIPSIS or (key == SD_ALG and depth):
                # §4.1 rule 7 and §4.1.1: "..." only in array elements, _sd_alg top-level only.
                raise errors.ReservedClaim(f"{key!r} is not allowed here")
            if key not in (SD, SD_ALG):
                out[key] = self.value(value, depth + 1)  # 3.5/3.6: _sd and _sd_alg removed
        if SD not in node:
            return out
        digests = node[SD]
        if not isinstance(digests, list) or not all(isinstance(g, str) for g in digests):
            raise errors.Malformed("_sd must be an array of strings")  # step 3.2.1
        for digest in digests:
            found = self._lookup(digest)
            if found is None:
                continue
            if found.name is None:  # step 3.3.2.1: must be a three-element Disclosure
                raise errors.DisclosureMisplaced("an array-element Disclosure is used in _sd")
            if found.name in out:  # step 3.3.2.3
                raise errors.ClaimNameExists(f"the claim {found.name!r} already exists")
            self.used.add(digest)
            out[found.name] = self.value(found.value, depth + 1)  # steps 3.3.2.4 and 3.3.2.5
        return out

    def array(self, node: list[Any], depth: int) -> list[Any]:
        out: list[Any] = []
        for element in node:
            if not (isinstance(element, dict) and ELLIPSIS in element):
                out.append(self.value(element, depth + 1))
                continue
            digest = element[ELLIPSIS]
            if len(element) != 1 or not isinstance(digest, str):  # §4.2.4.2
                raise errors.ReservedClaim("'...' must be the only key and hold a digest")
            found = self._lookup(digest)
            if found is None:
                continue  # step 3.4: array elements without a Disclosure are removed
            if found.name is not None:  # step 3.3.3.1: must be a two-element Disclosure
                raise errors.DisclosureMisplaced("an object-property Disclosure is in an array")
            self.used.add(digest)
            out.append(self.value(found.value, depth + 1))  # steps 3.3.3.2 and 3.3.3.3
        return out


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _number(
    payload: Mapping[str, Any], name: str, invalid: type[errors.SdJwtInvalid]
) -> int | float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{name} must be a number")
    return value


def check_validity(payload: Mapping[str, Any], now: int, leeway: int = 60) -> None:
    """Stage 3: the processed payload's ``exp``, ``nbf`` and ``iat`` (§7.1 step 6, with RFC
    7519 §4.1.4-4.1.6 semantics and ``leeway`` seconds).  Raises ``Expired``,
    ``NotYetValid`` or ``Malformed`` (a claim that is not a number)."""
    exp = _number(payload, "exp", errors.Malformed)
    nbf = _number(payload, "nbf", errors.Malformed)
    iat = _number(payload, "iat", errors.Malformed)
    if exp is not None and now >= exp + leeway:
        raise errors.Expired("the credential has expired", extra={"claim": "exp"})
    if nbf is not None and now + leeway < nbf:
        raise errors.NotYetValid("the credential is not valid yet", extra={"claim": "nbf"})
    if iat is not None and now + leeway < iat:
        raise errors.NotYetValid("the credential is issued in the future", extra={"claim": "iat"})


def _verify_key_binding(
    kb_jwt: str,
    processed: Mapping[str, Any],
    hash_input: str,
    hash_alg: str,
    *,
    audience: str | None,
    nonce: str | None,
    now: int,
    leeway: int,
    max_kb_age: int,
) -> KeyBinding:
    invalid = errors.KeyBindingInvalid
    # §7.3 step 5.1: the holder key is the cnf.jwk of the SD-JWT (§4.1.2).
    cnf = processed.get("cnf")
    if not isinstance(cnf, dict) or "jwk" not in cnf:
        raise invalid("the SD-JWT has no cnf.jwk holder key")
    try:
        holder_key = public_key_from_jwk(cnf["jwk"])
    except KeyInvalid as e:
        raise invalid("the cnf.jwk holder key is not usable") from e
    with _jose_errors(invalid):  # step 5.2: a compact JWS, alg allowed, no key, no crit
        jws = parse_compact(kb_jwt, algs=ACCEPTED_ALGS, refused_headers=EMBEDDED_KEY_HEADERS)
    header, payload = jws.header, jws.payload
    _verify_signature(holder_key, jws.alg, jws.signing_input, jws.signature, invalid)  # 5.3
    if header.get("typ") != KB_TYP:  # step 5.4
        raise invalid("the Key Binding JWT typ must be kb+jwt")
    iat = _number(payload, "iat", invalid)  # step 5.5
    if iat is None:
        raise invalid("the Key Binding JWT has no iat")
    if iat > now + leeway or iat < now - max_kb_age - leeway:
        raise errors.KbStale("the Key Binding JWT was not created recently")
    if not isinstance(payload.get("nonce"), str) or not isinstance(payload.get("aud"), str):
        raise invalid("the Key Binding JWT nonce and aud must be strings (§4.3)")
    if nonce is not None and not _same(payload["nonce"], nonce):  # step 5.6
        raise errors.KbNonceMismatch("the Key Binding JWT is for another transaction")
    if audience is not None and payload.get("aud") != audience:
        raise errors.KbAudienceMismatch("the Key Binding JWT is for another verifier")
    sd_hash = payload.get("sd_hash")  # step 5.7
    expected = b64_digest(hash_alg, hash_input)
    if not isinstance(sd_hash, str) or not _same(sd_hash, expected):
        raise errors.SdHashMismatch("sd_hash does not cover this presentation")
    # Step 5.8: the KB-JWT is a valid JWT in all other respects (RFC 7519 exp and nbf).
    exp, nbf = _number(payload, "exp", invalid), _number(payload, "nbf", invalid)
    if (exp is not None and now >= exp + leeway) or (nbf is not None and now + leeway < nbf):
        raise errors.KbStale("the Key Binding JWT is outside its validity period")
    return KeyBinding(header, payload)


def verify(
    presentation: str,
    *,
    issuer_key_resolver: IssuerKeyResolver,
    require_key_binding: bool,
    forbid_key_binding: bool = False,
    audience: str | None = None,
    nonce: str | None = None,
    now: int,
    leeway: int = 60,
    max_kb_age: int = 300,
    serialization: Literal["compact", "json"] = "compact",
    accepted_hash_algs: frozenset[str] = frozenset(HASH_ALGORITHMS),
    key_headers: frozenset[str] = frozenset(),
) -> Verified:
    """Verify an SD-JWT or SD-JWT+KB (RFC 9901 §7.1, §7.3) and return the processed payload.

    With ``require_key_binding`` a KB-JWT must be present and ``audience`` and ``nonce``
    are required; with ``forbid_key_binding`` a KB-JWT must be absent (an issuer-signed
    SD-JWT handed over as it is); otherwise a KB-JWT that is present is always verified
    (its ``aud``/``nonce`` against the expected values when given).  ``now`` is Unix
    seconds; ``exp``/``nbf``/``iat`` get ``leeway`` seconds, and the KB-JWT ``iat`` must lie
    within ``max_kb_age`` (plus leeway) before ``now``.  ``serialization="json"`` reads the
    JWS JSON Serialization (§8); every signature of a General one must verify.

    The four stages, in order: :func:`parse_presentation`, :func:`verify_issuer_jwt`,
    :func:`check_validity`, :func:`verify_key_binding` (the platform's verifier,
    ``verifier/pipeline.py``, runs the same stages between its own steps).

    Raises :class:`~credit_commons.formats.sd_jwt_errors.SdJwtInvalid` subclasses —
    ``Malformed``, ``AlgorithmNotAllowed``, ``EmbeddedKeyNotAllowed``, ``SignatureInvalid``,
    ``DisclosureDuplicate``, ``DigestCollision``, ``ReservedClaim``, ``ClaimNameExists``,
    ``DisclosureMisplaced``, ``DisclosureUnreferenced``, ``Expired``, ``NotYetValid``,
    ``KeyBindingMissing``, ``KeyBindingUnexpected``, ``KeyBindingInvalid``, ``KbStale``,
    ``KbNonceMismatch``, ``KbAudienceMismatch``, ``SdHashMismatch`` — and whatever
    ``issuer_key_resolver`` raises.  ``key_headers`` is :func:`verify_issuer_jwt`'s (``x5c``,
    for a resolver that takes the key from a chain it verified up to an anchor).
    Raises :class:`ValueError` when key binding is required without ``audience`` and
    ``nonce``, or both required and forbidden.
    """
    if require_key_binding and (audience is None or nonce is None):
        raise ValueError("key binding needs the expected audience and nonce")
    if require_key_binding and forbid_key_binding:
        raise ValueError("key binding cannot be both required and forbidden")
    with nesting_guard():
        parts = parse_presentation(
            presentation,
            require_key_binding=require_key_binding,
            forbid_key_binding=forbid_key_binding,
            serialization=serialization,
        )
        signed = verify_issuer_jwt(
            parts, issuer_key_resolver, accepted_hash_algs, key_headers=key_headers
        )
        check_validity(signed.payload, now, leeway)
        key_binding = verify_key_binding(
            parts,
            signed,
            audience=audience,
            nonce=nonce,
            now=now,
            leeway=leeway,
            max_kb_age=max_kb_age,
        )
        return signed.verified(key_binding)


@contextmanager
def nesting_guard() -> Iterator[None]:
    """Turn a :class:`RecursionError` met while verifying into ``Malformed`` (belt and
    braces: ``MAX_DEPTH`` should stop any nesting first)."""
    try:
        yield
    except RecursionError as e:
        raise errors.Malformed("the credential is nested too deeply") from e


def parse_presentation(
    presentation: str,
    *,
    require_key_binding: bool,
    forbid_key_binding: bool,
    serialization: Literal["compact", "json"] = "compact",
) -> Parts:
    """Stage 1: separate the Issuer-signed JWT, Disclosures and KB-JWT (§7.3 step 3, §7.1
    step 1), and apply the key-binding policy (§7.3 steps 1-2): a missing KB-JWT is
    ``KeyBindingMissing`` when required, a present one ``KeyBindingUnexpected`` when
    forbidden.  Raises ``Malformed`` for anything that does not split."""
    parts = split(presentation, serialization)
    if require_key_binding and parts.kb_jwt is None:
        raise errors.KeyBindingMissing("this verifier requires key binding")
    if forbid_key_binding and parts.kb_jwt is not None:
        raise errors.KeyBindingUnexpected("this verifier expects no Key Binding JWT")
    return parts


@dataclass(frozen=True, slots=True)
class IssuerSigned:
    """The Issuer-signed JWT once its signatures and Disclosures passed (§7.1 steps 2-5):
    the processed payload, the JOSE header of each signature, the Disclosures and the
    ``_sd_alg`` they are hashed with."""

    payload: JsonObject
    headers: tuple[JsonObject, ...]
    disclosures: tuple[Disclosure, ...]
    hash_alg: str

    def verified(self, key_binding: KeyBinding | None) -> Verified:
        """The :class:`Verified` result, with the (verified) ``key_binding``."""
        return Verified(self.payload, self.headers[0], self.disclosures, key_binding)


def verify_issuer_jwt(
    parts: Parts,
    resolver: IssuerKeyResolver,
    accepted_hash_algs: frozenset[str] = frozenset(HASH_ALGORITHMS),
    *,
    key_headers: frozenset[str] = frozenset(),
) -> IssuerSigned:
    """Stage 2: the Issuer-signed JWT (§7.1 step 2: each signature, its key from
    ``resolver``) and its Disclosures (§7.1 steps 3-5).

    ``key_headers`` may name ``x5c``: a header carrying it is then not refused, because the
    caller's ``resolver`` takes the key from that chain only after verifying it up to a
    trust anchor and checking that it names the issuer (SD-JWT VC draft, "X.509
    Certificates" issuer signature mechanism); the chain must be in the protected header.
    ``jwk``, ``jku`` and ``x5u`` are always refused.

    Raises the ``SdJwtInvalid`` subclasses of those steps and whatever ``resolver`` raises;
    :class:`ValueError` for ``key_headers`` other than ``x5c``.
    """
    if not key_headers <= {"x5c"}:
        raise ValueError("only x5c can be vouched for by a resolver")
    # §7.1 step 2: validate the Issuer-signed JWT (each signature of a JSON serialization).
    payload = decode_object(parts.payload, errors.Malformed, "the JWT payload")
    headers = []
    for signature in parts.signatures:
        header = _issuer_header(signature)
        if key_headers & set(signature.header):  # the signature must cover the chain
            raise errors.Malformed("x5c must be in the protected header")
        alg = _check_jose_header(header, errors.Malformed, key_headers)  # step 2.1
        key = resolver(header, payload)  # step 2.3: the resolver vouches for the issuer
        signing_input = f"{signature.protected}.{parts.payload}"
        _check_signature(key, alg, signing_input, signature.signature, errors.SignatureInvalid)
        headers.append(header)  # step 2.2 passed
    hash_alg = payload.get(SD_ALG, DEFAULT_HASH_ALG)  # step 2.4
    if not isinstance(hash_alg, str):
        raise errors.Malformed("_sd_alg must be a string")
    if hash_alg not in accepted_hash_algs or hash_alg not in HASH_ALGORITHMS:
        raise errors.AlgorithmNotAllowed(f"_sd_alg {hash_alg!r} is not accepted")
    # §7.1 step 3.1: the digest of every Disclosure; the same Disclosure twice is refused.
    by_digest: dict[str, Disclosure] = {}
    for text in parts.disclosures:
        disclosure = Disclosure.parse(text)
        digest = disclosure.digest(hash_alg)
        if digest in by_digest:
            raise errors.DisclosureDuplicate("the same Disclosure was sent twice")
        by_digest[digest] = disclosure
    # §7.1 steps 3.2-3.6 and 4.
    processor = _Processor(by_digest)
    processed = processor.object(payload, 0)
    # §7.1 step 5: every Disclosure must be referenced.
    if len(processor.used) != len(by_digest):
        raise errors.DisclosureUnreferenced("a Disclosure is not referenced by any digest")
    return IssuerSigned(processed, tuple(headers), tuple(by_digest.values()), hash_alg)


def verify_key_binding(
    parts: Parts,
    signed: IssuerSigned,
    *,
    audience: str | None,
    nonce: str | None,
    now: int,
    leeway: int = 60,
    max_kb_age: int = 300,
) -> KeyBinding | None:
    """Stage 4: the Key Binding JWT, when there is one (§7.3 step 5), against the holder key
    in the processed payload's ``cnf``; ``None`` without a KB-JWT.

    Raises ``KeyBindingInvalid``, ``KbStale``, ``KbNonceMismatch``, ``KbAudienceMismatch``,
    ``SdHashMismatch``, ``AlgorithmNotAllowed`` or ``EmbeddedKeyNotAllowed``.
    """
    if parts.kb_jwt is None:
        return None
    return _verify_key_binding(
        parts.kb_jwt,
        signed.payload,
        parts.hash_input,
        signed.hash_alg,
        audience=audience,
        nonce=nonce,
        now=now,
        leeway=leeway,
        max_kb_age=max_kb_age,
    )
