"""The trust bundle: a signed, versioned, expiring list of trusted issuers (pure).

A bundle is a compact JWS (``typ: trust-bundle+jwt``, RFC 7515) whose payload is::

    {"iss": "https://platform.example", "version": 7, "iat": 1767225600, "exp": 1767830400,
     "issuers": [{"id": "did:web:coop.example", "kind": "did:web",
                  "marks": ["shg-federation"], "types": ["https://…/vct/membership/v1"]},
                 {"id": "x509:sha256:…", "kind": "x509", "x5c_anchor": "MIIB…",
                  "marks": ["bank"], "types": ["*"]}]}

Each entry trusts one issuer identifier — an ``https`` issuer (keys from its JWT VC Issuer
Metadata), a ``did:web`` or a ``did:key`` — or one X.509 trust anchor (``x509``: a CA
certificate, DER in standard base64 as in ``x5c``), which trusts any issuer whose ``x5c``
chain verifies up to it and whose end-entity certificate names the issuer.  ``marks`` are
the entry's trust marks (``state-dpi``, ``bank``, ``shg-federation``); ``types`` the
credential types (``vct`` or VC ``type``) it may issue, ``*`` for any.

:func:`verify_bundle` checks, in order: 1 the JWS shape and ``alg`` allow-list, 2 ``typ``,
3 the signature under the pinned key, 4 the payload's shape, 5 the issuer when expected,
6 the validity window (``iat``/``exp``), 7 the version against the last accepted one
(rollback refused).  :meth:`TrustBundle.lookup` answers the verifier's question "may this
issuer issue this type, with these marks?" — with, for an ``x5c`` chain, the end-entity
key that must verify the credential — and raises :class:`IssuerNotTrusted` with its
reason otherwise.  X.509 chains are verified by ``cryptography.x509.verification`` only,
under the Web PKI profile (P-256 keys; Ed25519 is not in that profile) with one change:
an extended key usage, where present, must allow more than TLS.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification as x509v
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from credit_commons.core.encoding import JsonObject, b64_decode, b64_encode
from credit_commons.core.errors import CommonsError, IntegrityError, ValidationError
from credit_commons.formats.jws import (
    JwsInvalid,
    JwsSigner,
    SignatureVerifier,
    parse_compact,
    sign_compact,
)
from credit_commons.keys import ACCEPTED_ALGS, KeyInvalid, PublicKey
from credit_commons.verifier.sd_jwt_vc import UntrustedIssuer
from credit_commons.verifier.trust import ANY_TYPE, EntryKind, issuer_kind, x509_entry_id

__all__ = [
    "ANY_TYPE",
    "TRUST_BUNDLE_MEDIA_TYPE",
    "TRUST_BUNDLE_TYP",
    "IssuerNotTrusted",
    "TrustBundle",
    "TrustBundleExpired",
    "TrustBundleInvalid",
    "TrustBundleRollback",
    "TrustBundleSignatureInvalid",
    "TrustEntry",
    "TrustKind",
    "Trusted",
    "UntrustedReason",
    "bundle_from_payload",
    "entries_from_json",
    "lookup_in",
    "sign_bundle",
    "verify_bundle",
    "x509_entry_id",
]

TRUST_BUNDLE_TYP: Final = "trust-bundle+jwt"
#: The media type a bundle is served as: the one its ``typ`` names (RFC 7515 §4.1.9).
TRUST_BUNDLE_MEDIA_TYPE: Final = f"application/{TRUST_BUNDLE_TYP}"
#: How an entry's issuer is identified, which decides where its keys come from.
TrustKind = EntryKind
#: Why an issuer is not trusted (the verifier's record; never shown to the presenter).
UntrustedReason = Literal[
    "not_listed",
    "type_not_allowed",
    "mark_missing",
    "chain_invalid",
    "chain_expired",
    "chain_name_mismatch",
    "bundle_expired",
]

_MAX_TOKEN_CHARS: Final = 4 * 1024 * 1024
_MAX_ENTRIES: Final = 10_000
_MAX_CHAIN: Final = 8
_IAT_LEEWAY: Final = timedelta(minutes=5)
_MARK = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class TrustBundleInvalid(IntegrityError):
    """A trust bundle that is malformed or fails one of :func:`verify_bundle`'s steps."""

    code = "trust.bundle_invalid"
    title = "Trust bundle not acceptable"


class TrustBundleSignatureInvalid(TrustBundleInvalid):
    """The bundle's signature does not verify under the pinned key."""

    code = "trust.bundle_signature_invalid"
    title = "Trust bundle signature invalid"


class TrustBundleExpired(TrustBundleInvalid):
    """The bundle's ``exp`` has passed."""

    code = "trust.bundle_expired"
    title = "Trust bundle expired"


class TrustBundleRollback(TrustBundleInvalid):
    """The bundle's version is lower than one already accepted from the same source."""

    code = "trust.bundle_rollback"
    title = "Trust bundle rolled back"


class IssuerNotTrusted(UntrustedIssuer):
    """The issuer may not issue this credential here; ``reason`` says why (``not_listed``,
    ``type_not_allowed``, ``mark_missing``, ``chain_invalid``, ``chain_expired``,
    ``chain_name_mismatch``, ``bundle_expired``)."""

    def __init__(self, reason: UntrustedReason, detail: str | None = None) -> None:
        self.reason: UntrustedReason = reason
        super().__init__(detail or reason, extra={"reason": reason})


def _load_der(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as e:
        raise ValidationError(f"{what} is not a DER X.509 certificate") from e


@dataclass(frozen=True, slots=True)
class TrustEntry:
    """One trusted issuer (or X.509 anchor), its trust marks and the types it may issue.

    Raises :class:`ValidationError` when built with an identifier of another kind, an
    anchor that is not a CA certificate, malformed marks, or no types.
    """

    id: str
    kind: TrustKind
    marks: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset({ANY_TYPE})
    anchor: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind == "x509":
            if self.anchor is None or self.id != x509_entry_id(self.anchor):
                raise ValidationError("an x509 entry is its anchor, named by its SHA-256")
            certificate = _load_der(self.anchor, "the anchor")
            try:
                constraints = certificate.extensions.get_extension_for_class(
                    x509.BasicConstraints
                ).value
            except x509.ExtensionNotFound as e:
                raise ValidationError("an anchor is a CA certificate") from e
            if not constraints.ca:
                raise ValidationError("an anchor is a CA certificate")
        else:
            if self.anchor is not None:
                raise ValidationError("only x509 entries carry an anchor")
            if issuer_kind(self.id) != self.kind:
                raise ValidationError(f"{self.id!r} is not a {self.kind} issuer")
        if not all(_MARK.fullmatch(m) for m in self.marks) or len(self.marks) > 64:
            raise ValidationError("a trust mark is 1 to 64 of [a-z0-9-]")
        if not self.types or len(self.types) > 64:
            raise ValidationError("an entry lists 1 to 64 credential types (or *)")
        if not all(isinstance(t, str) and 1 <= len(t) <= 255 for t in self.types):
            raise ValidationError("a credential type is 1 to 255 characters")

    @classmethod
    def for_anchor(
        cls, anchor_der: bytes, *, marks: Collection[str] = (), types: Collection[str] = ()
    ) -> TrustEntry:
        """The entry of X.509 trust anchor ``anchor_der`` (its id derived from it)."""
        return cls(
            x509_entry_id(anchor_der),
            "x509",
            frozenset(marks),
            frozenset(types or (ANY_TYPE,)),
            anchor_der,
        )

    def allows(self, credential_type: str | Collection[str]) -> bool:
        """Whether the entry may issue ``credential_type`` (a ``vct``, or one of a VC's
        ``type`` members)."""
        if ANY_TYPE in self.types:
            return True
        wanted = {credential_type} if isinstance(credential_type, str) else set(credential_type)
        return bool(self.types & wanted)

    def to_json(self) -> JsonObject:
        """The entry as the bundle's payload carries it (members sorted)."""
        doc: JsonObject = {
            "id": self.id,
            "kind": self.kind,
            "marks": sorted(self.marks),
            "types": sorted(self.types),
        }
        if self.anchor is not None:
            doc["x5c_anchor"] = b64_encode(self.anchor)
        return doc


def _instant(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class TrustBundle:
    """A trust bundle's content: its issuer, version, validity window and entries.

    Raises :class:`ValidationError` for duplicate entry ids, ``exp`` not after ``iat`` or a
    version below 1.
    """

    iss: str
    version: int
    iat: int
    exp: int
    entries: tuple[TrustEntry, ...]

    def __post_init__(self) -> None:
        if self.version < 1 or self.exp <= self.iat:
            raise ValidationError("a bundle has a version from 1 and exp after iat")
        ids = [e.id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise ValidationError("a bundle lists each issuer once")
        if len(ids) > _MAX_ENTRIES:
            raise ValidationError(f"a bundle lists at most {_MAX_ENTRIES} issuers")

    @property
    def expires_at(self) -> datetime:
        """When the bundle stops being acceptable."""
        return _instant(self.exp)

    def payload(self) -> JsonObject:
        """The JWS payload of the bundle."""
        return {
            "iss": self.iss,
            "version": self.version,
            "iat": self.iat,
            "exp": self.exp,
            "issuers": [e.to_json() for e in self.entries],
        }

    def entry(self, entry_id: str) -> TrustEntry | None:
        """The entry with id ``entry_id``, if any."""
        return next((e for e in self.entries if e.id == entry_id), None)

    def trusted(
        self,
        issuer_id: str,
        credential_type: str | Collection[str],
        required_marks: Collection[str] = (),
        x5c: Sequence[str] | None = None,
        *,
        now: datetime,
    ) -> TrustEntry:
        """The entry of :meth:`lookup`.  Raises :class:`IssuerNotTrusted`."""
        return self.lookup(issuer_id, credential_type, required_marks, x5c, now=now).entry

    def lookup(
        self,
        issuer_id: str,
        credential_type: str | Collection[str],
        required_marks: Collection[str] = (),
        x5c: Sequence[str] | None = None,
        *,
        now: datetime,
    ) -> Trusted:
        """How ``issuer_id`` may issue ``credential_type`` with every one of
        ``required_marks``: under the issuer's own entry, or — when the credential carries
        an ``x5c`` chain (leaf first, standard base64 DER, RFC 7515 §4.1.6) — under the
        X.509 anchor entry the chain verifies up to, its end-entity certificate naming
        ``issuer_id``, with that certificate's key (the only key that may then verify the
        credential: SD-JWT VC draft, "X.509 Certificates" issuer signature mechanism).

        Raises :class:`IssuerNotTrusted` (``bundle_expired``, ``not_listed``,
        ``chain_invalid``, ``chain_expired``, ``chain_name_mismatch``, ``type_not_allowed``
        or ``mark_missing``).
        """
        if now >= self.expires_at:
            raise IssuerNotTrusted("bundle_expired", "the trust bundle has expired")
        if x5c is not None:
            # A chain is trusted through an anchor only: the issuer's own entry names the
            # keys of its metadata or DID document, not the chain's.
            anchors = [e for e in self.entries if e.kind == "x509"]
            if not anchors:
                raise IssuerNotTrusted("not_listed", "the trust bundle lists no X.509 anchor")
            found = _chain_entry(issuer_id, x5c, anchors, now)
        else:
            entry = self.entry(issuer_id)
            if entry is None or entry.kind == "x509":
                raise IssuerNotTrusted("not_listed", "the issuer is not in the trust bundle")
            found = Trusted(entry)
        if not found.entry.allows(credential_type):
            raise IssuerNotTrusted("type_not_allowed", "the issuer may not issue this type")
        missing = sorted(set(required_marks) - found.entry.marks)
        if missing:
            raise IssuerNotTrusted("mark_missing", f"the issuer lacks trust marks {missing}")
        return found


@dataclass(frozen=True, slots=True)
class Trusted:
    """How an issuer is trusted: the entry, and — trusted through an ``x5c`` chain — the
    end-entity certificate's public key, which must verify the credential."""

    entry: TrustEntry
    key: PublicKey | None = None


def _chain_entry(
    issuer_id: str, x5c: Sequence[str], anchors: Sequence[TrustEntry], now: datetime
) -> Trusted:
    """The anchor entry ``x5c`` verifies up to (cryptography's RFC 5280 path validation),
    its end-entity certificate naming the issuer, with that certificate's key; raises
    :class:`IssuerNotTrusted`."""
    if not x5c or len(x5c) > _MAX_CHAIN or not all(isinstance(c, str) for c in x5c):
        raise IssuerNotTrusted("chain_invalid", "x5c is 1 to 8 base64 certificates")
    try:
        chain = [_load_der(b64_decode(c), "an x5c member") for c in x5c]
    except CommonsError as e:
        raise IssuerNotTrusted("chain_invalid", "an x5c member is not a certificate") from e
    # The end entity, before its path: outside its validity period, or naming another
    # issuer, it is refused for that reason (RFC 5280 §4.1.2.5; SD-JWT VC's SAN rule).
    leaf = chain[0]
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise IssuerNotTrusted("chain_expired", "the issuer's certificate is not valid now")
    try:
        names = list(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        names = []
    if not _names_issuer(names, issuer_id):
        raise IssuerNotTrusted("chain_name_mismatch", "the certificate does not name the issuer")
    by_id = {e.id: e for e in anchors}
    store = x509v.Store([_load_der(e.anchor or b"", "the anchor") for e in anchors])
    # Issuer certificates are not TLS certificates.  The Web PKI profile's client verifier
    # would demand clientAuth of every extended key usage, refusing the document-signing
    # ones issuer CAs and end entities carry (ISO 18013-5's mdlDS); and allowing any EKU
    # would accept a TLS server certificate as an issuer's, so that anchoring a public TLS
    # root would let anyone holding a TLS certificate sign as https://their-domain.  So
    # on every certificate of the chain an EKU, when present, must allow more than TLS.
    ca_policy = x509v.ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, x509v.Criticality.AGNOSTIC, _not_tls_only
    )
    ee_policy = x509v.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, x509v.Criticality.AGNOSTIC, _not_tls_only
    )
    verifier = (
        x509v.PolicyBuilder()
        .store(store)
        .time(now)
        .max_chain_depth(_MAX_CHAIN)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(chain[0], chain[1:])
    except x509v.VerificationError as e:
        raise IssuerNotTrusted("chain_invalid", "the x5c chain does not verify") from e
    entry = by_id.get(x509_entry_id(verified.chain[-1].public_bytes(Encoding.DER)))
    if entry is None:  # the store holds only these anchors
        raise IssuerNotTrusted("chain_invalid", "the chain ends at no listed anchor")
    try:
        key = PublicKey.from_cryptography(verified.chain[0].public_key())
    except KeyInvalid as e:
        raise IssuerNotTrusted("chain_invalid", "the certificate's key is not P-256") from e
    return Trusted(entry, key)


_TLS_ONLY: Final = frozenset(
    {x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH}
)


def _not_tls_only(
    _policy: x509v.Policy, _certificate: x509.Certificate, usage: x509.ExtendedKeyUsage | None
) -> None:
    """An extension validator: refuse a certificate whose extended key usages are all TLS
    ones (RFC 5280 §4.2.1.12: the key may then be used only for TLS)."""
    if usage is not None and set(usage) <= _TLS_ONLY:
        raise ValueError("a TLS-only certificate is no credential issuer's")


def _names_issuer(subjects: Sequence[x509.GeneralName], issuer_id: str) -> bool:
    """Whether the end-entity certificate's subject alternative names name ``issuer_id``:
    its URI exactly, or — for an https issuer — its host as a dNSName (SD-JWT VC draft
    §3.5: the issuer's domain matches the leaf certificate's SAN)."""
    host = urlsplit(issuer_id).hostname if issuer_id.startswith("https://") else None
    for name in subjects:
        if isinstance(name, x509.UniformResourceIdentifier) and name.value == issuer_id:
            return True
        if host and isinstance(name, x509.DNSName) and name.value.lower() == host.lower():
            return True
    return False


def lookup_in(
    bundles: Sequence[TrustBundle],
    issuer_id: str,
    credential_type: str | Collection[str],
    required_marks: Collection[str] = (),
    x5c: Sequence[str] | None = None,
    *,
    now: datetime,
) -> Trusted:
    """:meth:`TrustBundle.lookup` over several bundles (the platform's own, then pinned
    ones): the first that trusts the issuer answers.  When none does, the reason raised is
    the most telling: one from a bundle that lists the issuer (``type_not_allowed``,
    ``mark_missing``, or a chain's ``chain_invalid``, ``chain_expired``,
    ``chain_name_mismatch``) before ``bundle_expired`` before ``not_listed``.

    Raises :class:`IssuerNotTrusted`.
    """
    rank = {"not_listed": 3, "bundle_expired": 2}
    worst: IssuerNotTrusted | None = None
    for bundle in bundles:
        try:
            return bundle.lookup(issuer_id, credential_type, required_marks, x5c, now=now)
        except IssuerNotTrusted as e:
            if worst is None or rank.get(e.reason, 0) < rank.get(worst.reason, 0):
                worst = e
    raise worst or IssuerNotTrusted("not_listed", "no trust bundle lists the issuer")


# -- the signed form -------------------------------------------------------------------------

_Text = Annotated[str, Field(min_length=1, max_length=512)]


class _EntryDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    id: _Text
    kind: TrustKind
    marks: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=64)]
    types: Annotated[list[Annotated[str, Field(max_length=255)]], Field(max_length=64)]
    x5c_anchor: Annotated[str, Field(max_length=16_384)] | None = None


class _BundleDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    iss: _Text
    version: Annotated[int, Field(ge=1, le=2**53 - 1)]
    iat: Annotated[int, Field(ge=0, le=2**53 - 1)]
    exp: Annotated[int, Field(ge=0, le=2**53 - 1)]
    issuers: Annotated[list[_EntryDoc], Field(max_length=_MAX_ENTRIES)]


def _entry(doc: _EntryDoc) -> TrustEntry:
    anchor = b64_decode(doc.x5c_anchor) if doc.x5c_anchor is not None else None
    return TrustEntry(doc.id, doc.kind, frozenset(doc.marks), frozenset(doc.types), anchor)


_ENTRIES: TypeAdapter[list[_EntryDoc]] = TypeAdapter(
    Annotated[list[_EntryDoc], Field(max_length=_MAX_ENTRIES)]
)


def entries_from_json(issuers: Any) -> tuple[TrustEntry, ...]:
    """The entries of a bundle's ``issuers`` member.  Raises :class:`TrustBundleInvalid`."""
    try:
        return tuple(_entry(e) for e in _ENTRIES.validate_python(issuers))
    except PydanticValidationError as e:
        raise TrustBundleInvalid("the bundle's issuers are not trust entries") from e
    except CommonsError as e:
        raise TrustBundleInvalid(f"a bundle entry is not valid: {e.detail}") from e


def bundle_from_payload(payload: Any) -> TrustBundle:
    """A bundle from its decoded payload.  Raises :class:`TrustBundleInvalid`."""
    try:
        doc = _BundleDoc.model_validate(payload)
        return TrustBundle(
            doc.iss, doc.version, doc.iat, doc.exp, tuple(_entry(e) for e in doc.issuers)
        )
    except PydanticValidationError as e:
        raise TrustBundleInvalid("the bundle payload is not a trust bundle") from e
    except CommonsError as e:
        raise TrustBundleInvalid(f"a bundle entry is not valid: {e.detail}") from e


def sign_bundle(bundle: TrustBundle, signer: JwsSigner, kid: str) -> str:
    """The compact JWS of ``bundle`` (``typ: trust-bundle+jwt``) signed by ``signer``."""
    return sign_compact({"typ": TRUST_BUNDLE_TYP, "kid": kid}, bundle.payload(), signer)


def verify_bundle(
    token: str,
    key: SignatureVerifier,
    *,
    now: datetime,
    last_version: int = 0,
    iss: str | None = None,
) -> TrustBundle:
    """Verify a signed trust bundle under the pinned ``key``; return it only if every step
    passes.  ``last_version`` is the highest version accepted before from the same source;
    ``iss``, when given, the issuer the bundle must name.

    Raises :class:`TrustBundleInvalid`, :class:`TrustBundleSignatureInvalid`,
    :class:`TrustBundleExpired` or :class:`TrustBundleRollback`.
    """
    # 1. A compact JWS, alg on the allow-list, no embedded keys (RFC 7515 §5.2, RFC 8725
    #    §3.1, §3.10); the payload decoded only after the signature is checked.
    try:
        jws = parse_compact(
            token, algs=ACCEPTED_ALGS, max_chars=_MAX_TOKEN_CHARS, decode_payload=False
        )
    except JwsInvalid as e:
        raise TrustBundleInvalid(f"not an acceptable JWS: {e.detail}") from e
    # 2. Explicit typing (RFC 8725 §3.11): a token of another kind is not a bundle.
    if jws.header.get("typ") != TRUST_BUNDLE_TYP:
        raise TrustBundleInvalid(f"the JWS typ is not {TRUST_BUNDLE_TYP}")
    # 3. The signature, under the key pinned for this source and nothing the token names.
    try:
        jws.verify(key)
    except CommonsError as e:
        raise TrustBundleSignatureInvalid("the bundle signature does not verify") from e
    # 4. The payload's shape.
    try:
        payload = jws.payload
    except JwsInvalid as e:
        raise TrustBundleInvalid("the bundle payload is not a JSON object") from e
    bundle = bundle_from_payload(payload)
    # 5. The issuer, when the caller knows whose bundle it fetched.
    if iss is not None and bundle.iss != iss:
        raise TrustBundleInvalid("the bundle is another platform's")
    # 6. The validity window (RFC 7519 §4.1.4, §4.1.6), a little leeway for iat only.
    if now >= bundle.expires_at:
        raise TrustBundleExpired("the trust bundle has expired")
    if _instant(bundle.iat) > now + _IAT_LEEWAY:
        raise TrustBundleInvalid("the trust bundle is issued in the future")
    # 7. No rollback: a version lower than one already accepted is an old bundle replayed.
    if bundle.version < last_version:
        raise TrustBundleRollback(
            f"bundle version {bundle.version} is older than the accepted {last_version}"
        )
    return bundle
