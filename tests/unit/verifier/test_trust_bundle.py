"""The trust bundle: signing and verifying (and every tampered sibling refused), entries,
and the lookup's reasons — X.509 chains built with cryptography's certificate builder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from tests.unit.verifier.x509_support import certificate, chain

from credit_commons.core.encoding import b64url_decode, b64url_encode, canonical_json
from credit_commons.core.errors import ValidationError
from credit_commons.formats.jws import sign_compact
from credit_commons.keys import KeyType, PrivateKey, PublicKey, encode_did_key
from credit_commons.verifier.trust_bundle import (
    TRUST_BUNDLE_TYP,
    IssuerNotTrusted,
    TrustBundle,
    TrustBundleExpired,
    TrustBundleInvalid,
    TrustBundleRollback,
    TrustBundleSignatureInvalid,
    TrustEntry,
    lookup_in,
    sign_bundle,
    verify_bundle,
    x509_entry_id,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
T = int(NOW.timestamp())
VCT = "https://coop.example/vct/membership/v1"
DID_KEY = encode_did_key(PrivateKey.generate().public_key)
ROOT, INTERMEDIATE, LEAF = chain("bank.example")
DAY = timedelta(days=1)


ENTRIES = (
    TrustEntry("did:web:coop.example", "did:web", frozenset({"shg-federation"}), frozenset({VCT})),
    TrustEntry("https://issuer.example", "https", frozenset({"state-dpi"})),
    TrustEntry(DID_KEY, "did:key"),
    TrustEntry.for_anchor(ROOT.der, marks={"bank"}, types={VCT}),
)


def bundle(
    version: int = 3, *, iat: int = T - 60, exp: int = T + 86400, entries: Any = ENTRIES
) -> TrustBundle:
    return TrustBundle("https://platform.example", version, iat, exp, entries)


KEY = PrivateKey.generate(KeyType.ED25519)


def test_sign_and_verify_round_trip() -> None:
    token = sign_bundle(bundle(), KEY, "trust-bundle-1")
    verified = verify_bundle(token, KEY.public_key, now=NOW, last_version=3)
    assert verified == bundle()
    assert verify_bundle(token, KEY.public_key, now=NOW, iss="https://platform.example")
    p256 = PrivateKey.generate(KeyType.P256)
    assert verify_bundle(sign_bundle(bundle(), p256, "k"), p256.public_key, now=NOW) == bundle()


def _resign(token: str, header: dict[str, Any] | None = None, **payload: Any) -> str:
    head, body, _ = token.split(".")
    decoded = {**canonical_decode(body), **payload}
    return sign_compact(header or canonical_decode(head), decoded, KEY)


def canonical_decode(segment: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(b64url_decode(segment))
    return value


def _doc(**changes: Any) -> dict[str, Any]:
    return {"id": DID_KEY, "kind": "did:key", "marks": [], "types": ["*"], **changes}


@pytest.mark.parametrize(
    ("tamper", "error"),
    [
        # A bit flipped in the signature, the payload, the header.
        (lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1], TrustBundleSignatureInvalid),
        (
            lambda t: t.split(".")[0]
            + "."
            + b64url_encode(canonical_json({**canonical_decode(t.split(".")[1]), "version": 99}))
            + "."
            + t.split(".")[2],
            TrustBundleSignatureInvalid,
        ),
        (lambda t: t + ".", TrustBundleInvalid),
        (lambda t: t.split(".", 1)[1], TrustBundleInvalid),
        (lambda t: "", TrustBundleInvalid),
        # Signed by another key.
        (lambda t: sign_bundle(bundle(), PrivateKey.generate(), "k"), TrustBundleSignatureInvalid),
        # Wrong typ, no typ, alg none.
        (lambda t: _resign(t, {"typ": "JWT", "kid": "k"}), TrustBundleInvalid),
        (lambda t: _resign(t, {"kid": "k"}), TrustBundleInvalid),
        (
            lambda t: b64url_encode(b'{"alg":"none","typ":"trust-bundle+jwt"}')
            + "."
            + t.split(".")[1]
            + ".",
            TrustBundleInvalid,
        ),
        # A key embedded in the header (the token choosing its own key).
        (
            lambda t: _resign(t, {"typ": TRUST_BUNDLE_TYP, "jwk": {"kty": "OKP"}}),
            TrustBundleInvalid,
        ),
        # Expired, issued in the future, rolled back, another platform's.
        (lambda t: sign_bundle(bundle(iat=T - 7200, exp=T), KEY, "k"), TrustBundleExpired),
        (lambda t: sign_bundle(bundle(iat=T + 3600, exp=T + 7200), KEY, "k"), TrustBundleInvalid),
        (lambda t: sign_bundle(bundle(version=2), KEY, "k"), TrustBundleRollback),
        (lambda t: _resign(t, iss="https://other.example"), TrustBundleInvalid),
        # Payload shape: unknown member, missing member, bad entry, duplicate entry.
        (lambda t: _resign(t, extra=1), TrustBundleInvalid),
        (lambda t: _resign(t, issuers=None), TrustBundleInvalid),
        (lambda t: _resign(t, version="3"), TrustBundleInvalid),
        (lambda t: _resign(t, issuers=[_doc(id="did:web:x.example")]), TrustBundleInvalid),
        (lambda t: _resign(t, issuers=[_doc(types=[])]), TrustBundleInvalid),
        (lambda t: _resign(t, issuers=[_doc(marks=["Bank!"])]), TrustBundleInvalid),
        (lambda t: _resign(t, issuers=[_doc(), _doc()]), TrustBundleInvalid),
        (lambda t: _resign(t, issuers=[_doc(x5c_anchor=ROOT.x5c)]), TrustBundleInvalid),
        (
            lambda t: _resign(
                t, issuers=[_doc(id="x509:sha256:" + "0" * 64, kind="x509", x5c_anchor=ROOT.x5c)]
            ),
            TrustBundleInvalid,
        ),
        (lambda t: _resign(t, issuers=[_doc(kind="x509")]), TrustBundleInvalid),
        (lambda t: _resign(t, exp=T - 120, iat=T - 60), TrustBundleInvalid),
    ],
)  # fmt: skip
def test_tampered_bundles_are_refused(tamper: Any, error: type[Exception]) -> None:
    token = sign_bundle(bundle(), KEY, "trust-bundle-1")
    with pytest.raises(error):
        verify_bundle(
            tamper(token), KEY.public_key, now=NOW, last_version=3, iss="https://platform.example"
        )


def test_a_higher_version_is_accepted_after_a_lower_one() -> None:
    assert verify_bundle(sign_bundle(bundle(4), KEY, "k"), KEY.public_key, now=NOW, last_version=3)


# -- entries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: TrustEntry("did:web:coop.example", "https"),
        lambda: TrustEntry("https://x.example", "did:web"),
        lambda: TrustEntry("http://x.example", "https"),
        lambda: TrustEntry("https://x.example", "https", frozenset({"BANK"})),
        lambda: TrustEntry("https://x.example", "https", types=frozenset()),
        lambda: TrustEntry("https://x.example", "https", anchor=ROOT.der),
        lambda: TrustEntry(x509_entry_id(ROOT.der), "x509"),
        lambda: TrustEntry(x509_entry_id(b"junk"), "x509", anchor=b"junk"),
        lambda: TrustEntry.for_anchor(LEAF.der),  # not a CA
        lambda: TrustBundle("https://p.example", 1, T, T + 1, (ENTRIES[2], ENTRIES[2])),
        lambda: TrustBundle("https://p.example", 0, T, T + 1, ()),
        lambda: TrustBundle("https://p.example", 1, T, T, ()),
    ],
)  # fmt: skip
def test_invalid_entries_and_bundles_cannot_be_built(build: Any) -> None:
    with pytest.raises(ValidationError):
        build()


# -- the lookup ----------------------------------------------------------------------------


def reason(*args: Any, b: TrustBundle | None = None, now: datetime = NOW, **kw: Any) -> str:
    with pytest.raises(IssuerNotTrusted) as info:
        (b or bundle()).trusted(*args, now=now, **kw)
    assert info.value.code == "credential.issuer_untrusted"
    return info.value.reason


def test_listed_issuers() -> None:
    entry = bundle().trusted("did:web:coop.example", VCT, {"shg-federation"}, now=NOW)
    assert entry.kind == "did:web"
    assert bundle().trusted("https://issuer.example", "Anything", now=NOW).kind == "https"
    assert bundle().trusted(DID_KEY, ["VerifiableCredential", "X"], now=NOW).kind == "did:key"
    assert bundle().trusted("did:web:coop.example", ["VerifiableCredential", VCT], now=NOW)


def test_reasons() -> None:
    assert reason("did:web:other.example", VCT) == "not_listed"
    assert reason("did:web:coop.example", "Other") == "type_not_allowed"
    assert reason("did:web:coop.example", VCT, {"bank"}) == "mark_missing"
    assert reason("did:web:coop.example", VCT, now=NOW + timedelta(days=2)) == "bundle_expired"
    # An X.509 entry's id is not an issuer one can claim to be.
    assert reason(x509_entry_id(ROOT.der), VCT) == "not_listed"


def test_x509_chain_to_a_listed_anchor() -> None:
    x5c = [LEAF.x5c, INTERMEDIATE.x5c]
    entry = bundle().trusted("https://bank.example", VCT, {"bank"}, x5c, now=NOW)
    assert entry.kind == "x509"
    assert entry.id == x509_entry_id(ROOT.der)
    # A URI SAN naming the issuer exactly also names it.
    uri_leaf = certificate(
        "b",
        issuer=INTERMEDIATE,
        ca=False,
        san=[x509.UniformResourceIdentifier("did:web:b.example")],
    )
    assert bundle().trusted("did:web:b.example", VCT, (), [uri_leaf.x5c, INTERMEDIATE.x5c], now=NOW)


def test_x509_refusals() -> None:
    x5c = [LEAF.x5c, INTERMEDIATE.x5c]
    # The chain verifies, but to an anchor that is not listed.
    _root, other_intermediate, other_leaf = chain("bank.example")
    assert reason("https://bank.example", VCT, (), [other_leaf.x5c, other_intermediate.x5c]) == (
        "chain_invalid"
    )
    # The intermediate missing, the chain out of order, garbage, too long, empty.
    assert reason("https://bank.example", VCT, (), [LEAF.x5c]) == "chain_invalid"
    # Out of order, the first certificate (the end entity, RFC 7515 §4.1.6) names no issuer.
    assert reason("https://bank.example", VCT, (), [INTERMEDIATE.x5c, LEAF.x5c]) == (
        "chain_name_mismatch"
    )
    assert reason("https://bank.example", VCT, (), ["bm90IGEgY2VydA=="]) == "chain_invalid"
    assert reason("https://bank.example", VCT, (), ["%%%"]) == "chain_invalid"
    assert reason("https://bank.example", VCT, (), [LEAF.x5c] * 9) == "chain_invalid"
    assert reason("https://bank.example", VCT, (), []) == "chain_invalid"
    # The leaf names another host than the issuer claims to be.
    assert reason("https://evil.example", VCT, (), x5c) == "chain_name_mismatch"
    # A leaf signed by the intermediate's key but expired at "now".
    old = certificate("bank.example", issuer=INTERMEDIATE, ca=False,
                      san=[x509.DNSName("bank.example")], days=30)  # fmt: skip
    assert reason("https://bank.example", VCT, (), [old.x5c, INTERMEDIATE.x5c]) == "chain_expired"
    # ... or not valid yet.
    san = [x509.DNSName("bank.example")]
    early = certificate("bank.example", issuer=INTERMEDIATE, ca=False, san=san, start=NOW + DAY)
    assert reason("https://bank.example", VCT, (), [early.x5c, INTERMEDIATE.x5c]) == (
        "chain_expired"
    )
    # A leaf that is itself the anchor (a CA certificate presented as the issuer's) names
    # no issuer; one that does is still no end entity.
    assert reason("https://bank.example", VCT, (), [ROOT.x5c]) == "chain_name_mismatch"
    named_ca = certificate("CA", issuer=ROOT, ca=True, san=[x509.DNSName("bank.example")])
    assert reason("https://bank.example", VCT, (), [named_ca.x5c]) == "chain_invalid"
    # The anchor's type and mark limits apply to the chain's issuer too.
    assert reason("https://bank.example", "Other", (), x5c) == "type_not_allowed"
    assert reason("https://bank.example", VCT, {"state-dpi"}, x5c) == "mark_missing"
    # No x5c and not listed.
    assert reason("https://bank.example", VCT) == "not_listed"
    # No x509 entry in the bundle at all.
    plain = bundle(entries=(TrustEntry(DID_KEY, "did:key"),))
    assert reason("https://bank.example", VCT, (), x5c, b=plain) == "not_listed"


#: ISO 18013-5's document signer extended key usage (an issuer's, not a TLS one).
DOCUMENT_SIGNER = x509.ObjectIdentifier("1.0.18013.5.1.2")


def test_a_chain_yields_its_end_entity_key() -> None:
    x5c = [LEAF.x5c, INTERMEDIATE.x5c]
    found = bundle().lookup("https://bank.example", VCT, {"bank"}, x5c, now=NOW)
    assert found.entry.id == x509_entry_id(ROOT.der)
    assert found.key == PublicKey.from_cryptography(LEAF.certificate.public_key())
    assert found.key != PublicKey.from_cryptography(INTERMEDIATE.certificate.public_key())
    # Without a chain the issuer's own entry answers, and no key comes with it.
    assert bundle().lookup(DID_KEY, VCT, now=NOW).key is None
    assert lookup_in([bundle()], "https://bank.example", VCT, (), x5c, now=NOW).key == found.key


def test_a_chain_is_trusted_only_through_an_anchor() -> None:
    # https://issuer.example has its own entry (keys from its metadata): a chain naming it
    # is trusted only if it verifies up to an anchor, never through that entry.
    _root, other_intermediate, other_leaf = chain("issuer.example")
    foreign = [other_leaf.x5c, other_intermediate.x5c]
    assert reason("https://issuer.example", VCT, (), foreign) == "chain_invalid"


def test_extended_key_usages() -> None:
    tls = [ExtendedKeyUsageOID.SERVER_AUTH]
    san = [x509.DNSName("bank.example")]

    def leaf(under: Any, eku: Any) -> str:
        return certificate("bank.example", issuer=under, ca=False, san=san, eku=eku).x5c

    # A TLS server (or client) certificate is not an issuer's, even under a listed anchor.
    assert reason("https://bank.example", VCT, (), [leaf(INTERMEDIATE, tls), INTERMEDIATE.x5c]) == (
        "chain_invalid"
    )
    both = [*tls, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert reason(
        "https://bank.example", VCT, (), [leaf(INTERMEDIATE, both), INTERMEDIATE.x5c]
    ) == ("chain_invalid")
    # A TLS-only intermediate cannot issue an issuer's certificate either.
    tls_ca = certificate("TLS Intermediate", issuer=ROOT, ca=True, eku=tls)
    assert reason("https://bank.example", VCT, (), [leaf(tls_ca, None), tls_ca.x5c]) == (
        "chain_invalid"
    )
    # Document-signing usages, on the end entity and on the intermediate, are accepted
    # (the client verifier's clientAuth rule would refuse the intermediate's).
    ds = [DOCUMENT_SIGNER]
    bundle().trusted(
        "https://bank.example", VCT, (), [leaf(INTERMEDIATE, ds), INTERMEDIATE.x5c], now=NOW
    )
    ds_ca = certificate("DS Intermediate", issuer=ROOT, ca=True, eku=ds)
    bundle().trusted("https://bank.example", VCT, (), [leaf(ds_ca, ds), ds_ca.x5c], now=NOW)
    # A usage beside the TLS ones is more than TLS.
    mixed = [*tls, DOCUMENT_SIGNER]
    bundle().trusted(
        "https://bank.example", VCT, (), [leaf(INTERMEDIATE, mixed), INTERMEDIATE.x5c], now=NOW
    )


def test_lookup_in_several_bundles() -> None:
    own = bundle()
    pinned = TrustBundle(
        "https://other.example", 9, T, T + 60, (TrustEntry("did:web:far.example", "did:web"),)
    )
    far = lookup_in([own, pinned], "did:web:far.example", VCT, now=NOW)
    assert far.entry.id == "did:web:far.example"
    assert lookup_in([own, pinned], DID_KEY, VCT, now=NOW).entry.id == DID_KEY
    later = NOW + timedelta(seconds=120)
    with pytest.raises(IssuerNotTrusted) as info:
        lookup_in([own, pinned], "did:web:far.example", VCT, now=later)
    assert info.value.reason == "bundle_expired"
    with pytest.raises(IssuerNotTrusted) as info:
        lookup_in([pinned, own], "did:web:coop.example", "Other", now=NOW)
    assert info.value.reason == "type_not_allowed"
    with pytest.raises(IssuerNotTrusted) as info:
        lookup_in([own, pinned], "did:web:nobody.example", VCT, now=NOW)
    assert info.value.reason == "not_listed"
    with pytest.raises(IssuerNotTrusted) as info:
        lookup_in([], DID_KEY, VCT, now=NOW)
    assert info.value.reason == "not_listed"
