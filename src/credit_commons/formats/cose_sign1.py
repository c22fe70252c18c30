"""COSE_Sign1 (RFC 9052 §4.2): one signer, the platform's parser and signer, over ``cbor2``.

Used for IETF Token Status Lists in CWT form (``status_list_cwt.py``).  The rules, in the
order :func:`parse_sign1` applies them:

1. exactly one CBOR item in preferred serialisation (``cbor.loads_strict``: the array
   and the unprotected header are the transport, which nothing signs), a
   ``COSE_Sign1_Tagged`` (tag 18, optionally inside the CWT tag 61 of RFC 8392 §6) or an
   untagged ``COSE_Sign1`` where the media type says what it is (RFC 9052 §2); with
   ``require_tag18`` only the ``COSE_Sign1_Tagged`` itself (what a Token Status List
   requires, draft-ietf-oauth-status-list §5.2);
2. an array of four: the protected header as a byte string holding a map, the unprotected
   header map, the payload as a byte string (a detached payload is refused) and the
   signature as a byte string (§4.2).  The protected header is read with
   ``cbor.loads_unique``: any valid CBOR without a repeated label (RFC 9052 §9 restricts
   the encoding of the ``Sig_structure``, which is built here, not of the header, whose
   bytes the signature covers as they are);
3. no header label in both buckets (§3: "MUST NOT" appear twice), ``alg`` (label 1) in the
   protected bucket (it is integrity-protected, §3.1) and on the caller's allow-list of COSE
   algorithms (RFC 9053: -7 ES256, -8 EdDSA; and -9 ESP256 and -19 Ed25519, the fully
   specified ones of draft-ietf-jose-fully-specified-algorithms), ``crit`` (label 2)
   refused (no extension is understood here), and the headers that would bring their own
   key (``x5chain`` 33, ``x5u`` 35; RFC 9360) refused, as compact JWS refuses
   ``jwk``/``x5c`` (RFC 8725 §3.10).

:meth:`CoseSign1.verify` checks the signature over ``Sig_structure`` = ``["Signature1",
protected, external_aad, payload]`` (§4.4) with the keys domain's key: the signature
algorithms are the JOSE ones (RFC 9053 §2.1: ECDSA signatures are ``r || s`` as in JWS), so
no primitive is written here.  The signer may be an HSM key, which COSE libraries cannot
hold; that is why ``cbor2`` and the key layer are used rather than pycose.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from credit_commons.core.errors import CommonsError, IntegrityError
from credit_commons.formats.cbor import dumps, loads_strict, loads_unique
from credit_commons.formats.jws import JwsSigner, SignatureVerifier

__all__ = [
    "ALG",
    "COSE_TO_JOSE",
    "CRIT",
    "KID",
    "TYP",
    "CoseInvalid",
    "CoseSign1",
    "parse_sign1",
    "sign1",
]

# Header labels (RFC 9052 §3.1; typ: RFC 9596).
ALG: Final = 1
CRIT: Final = 2
KID: Final = 4
TYP: Final = 16
_KEY_BEARING: Final = frozenset({33, 35})  # x5chain, x5u (RFC 9360)

_COSE_SIGN1_TAG: Final = 18  # RFC 9052 §2
_COSE_MAC0_TAG: Final = 17  # RFC 9052 §2
_CWT_TAG: Final = 61  # RFC 8392 §6

#: COSE algorithm → the JOSE ``alg`` whose signature it is (RFC 9053 §2.1-2.2 and the fully
#: specified algorithms draft).
COSE_TO_JOSE: Final = {-7: "ES256", -9: "ES256", -8: "EdDSA", -19: "Ed25519"}
_JOSE_TO_COSE: Final = {"ES256": -7, "EdDSA": -8, "Ed25519": -19}


class CoseInvalid(IntegrityError):
    """A COSE_Sign1 that is malformed or refused by the header rules (the signature's own
    failure is the key's ``SignatureInvalid``)."""

    code = "credential.cose_invalid"
    title = "Invalid COSE_Sign1"


@dataclass(frozen=True, slots=True)
class CoseSign1:
    """A parsed COSE_Sign1 whose shape and headers passed :func:`parse_sign1`; its
    signature is NOT verified until :meth:`verify` returns."""

    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    payload: bytes
    signature: bytes
    to_be_signed: bytes

    @property
    def alg(self) -> str:
        """The JOSE name of the protected ``alg`` (on the allow-list it was parsed with)."""
        return COSE_TO_JOSE[self.protected[ALG]]

    def header(self, label: int) -> Any:
        """A header parameter from either bucket (none is in both), or ``None``."""
        return self.protected.get(label, self.unprotected.get(label))

    def verify(self, key: SignatureVerifier) -> None:
        """Verify the signature over ``Sig_structure`` under ``key``; raises what
        ``key.verify`` raises."""
        key.verify(self.alg, self.to_be_signed, self.signature)


def _to_be_signed(protected: bytes, payload: bytes) -> bytes:
    # RFC 9052 §4.4: Sig_structure for a COSE_Sign1, without external AAD.
    return dumps(["Signature1", protected, b"", payload])


def sign1(
    protected: Mapping[int, Any],
    unprotected: Mapping[int, Any],
    payload: bytes,
    signer: JwsSigner,
) -> bytes:
    """A ``COSE_Sign1_Tagged`` over ``payload``: ``alg`` (from the signer) first in the
    protected header, then ``protected``.  Raises :class:`CoseInvalid` for a signer whose
    algorithm has no COSE identifier here, and what ``signer.sign`` raises."""
    alg = _JOSE_TO_COSE.get(signer.alg)
    if alg is None:
        raise CoseInvalid(f"no COSE algorithm for {signer.alg}")
    body = dumps({ALG: alg, **protected})
    signature = signer.sign(_to_be_signed(body, payload))
    return dumps(cbor2.CBORTag(_COSE_SIGN1_TAG, [body, dict(unprotected), payload, signature]))


def parse_sign1(
    data: bytes,
    *,
    algs: Collection[int] = tuple(COSE_TO_JOSE),
    max_bytes: int | None = None,
    require_tag18: bool = False,
) -> CoseSign1:
    """Parse a COSE_Sign1 strictly (the module's steps 1-3) without verifying it; with
    ``require_tag18`` only a ``COSE_Sign1_Tagged`` (tag 18, not inside the CWT tag 61) is
    accepted.

    Raises :class:`CoseInvalid`.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise CoseInvalid("the COSE_Sign1 is too long")
    # 1. One item, tagged 18 (inside 61) or untagged.
    try:
        item = loads_strict(data, "the COSE_Sign1")
    except CommonsError as e:
        raise CoseInvalid(e.detail) from e
    if require_tag18 and not (isinstance(item, cbor2.CBORTag) and item.tag == _COSE_SIGN1_TAG):
        if isinstance(item, cbor2.CBORTag) and item.tag == _CWT_TAG:
            raise CoseInvalid("the CWT tag 61 is not accepted here, only COSE_Sign1_Tagged")
        if isinstance(item, cbor2.CBORTag) and item.tag == _COSE_MAC0_TAG:
            raise CoseInvalid("a COSE_Mac0 is not accepted: only signatures are verified here")
        raise CoseInvalid("a COSE_Sign1_Tagged (tag 18) is required")
    if isinstance(item, cbor2.CBORTag) and item.tag == _CWT_TAG:
        item = item.value
        if not isinstance(item, cbor2.CBORTag) or item.tag != _COSE_SIGN1_TAG:
            raise CoseInvalid("a CWT tag must enclose a COSE_Sign1_Tagged")
    if isinstance(item, cbor2.CBORTag):
        if item.tag != _COSE_SIGN1_TAG:
            raise CoseInvalid("not a COSE_Sign1 (tag 18)")
        item = item.value
    # 2. [protected bstr, unprotected map, payload bstr, signature bstr].
    if not isinstance(item, list) or len(item) != 4:
        raise CoseInvalid("a COSE_Sign1 is an array of four")
    body, unprotected, payload, signature = item
    if not isinstance(body, bytes) or not body:
        raise CoseInvalid("the protected header must be a non-empty byte string")
    if not isinstance(unprotected, dict):
        raise CoseInvalid("the unprotected header must be a map")
    if not isinstance(payload, bytes):
        raise CoseInvalid("the payload must be a byte string (detached payloads are refused)")
    if not isinstance(signature, bytes) or not signature:
        raise CoseInvalid("the signature must be a non-empty byte string")
    try:
        protected = loads_unique(body, "the protected header")
    except CommonsError as e:
        raise CoseInvalid(e.detail) from e
    if not isinstance(protected, dict):
        raise CoseInvalid("the protected header must be a map")
    # 3. The header rules.
    if set(protected) & set(unprotected):
        raise CoseInvalid("a header parameter appears in both buckets")
    alg = protected.get(ALG)
    if isinstance(alg, bool) or alg not in algs or alg not in COSE_TO_JOSE:
        raise CoseInvalid("the protected alg is missing or not accepted")
    labels = set(protected) | set(unprotected)
    if CRIT in labels:
        raise CoseInvalid("critical header parameters are not understood")
    if labels & _KEY_BEARING:
        raise CoseInvalid("keys carried in the COSE header are not accepted")
    return CoseSign1(protected, unprotected, payload, signature, _to_be_signed(body, payload))
