"""The trust registry on both databases: the trust list makes the signed bundle's versions
(with events), the lookup over the platform's list and pinned bundles, pins refusing a bad
signature, an expired bundle and a rollback, and the stored policies with their floors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from tests.conftest import migrate
from tests.unit.verifier.x509_support import chain

from credit_commons import jobs
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.errors import ConflictError, NotFoundError, ValidationError
from credit_commons.core.net import OutboundFetcher
from credit_commons.core.settings import Settings
from credit_commons.events import EventRow
from credit_commons.identity import Principal
from credit_commons.keys import KeyType, PrivateKey, encode_did_key, public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.verifier import policy_service, trust, trust_pins, trust_registry
from credit_commons.verifier.models import TrustBundleVersionRow, TrustedIssuerRow
from credit_commons.verifier.policy import PolicyDenied, PolicyInvalid
from credit_commons.verifier.trust_bundle import (
    IssuerNotTrusted,
    TrustBundle,
    TrustBundleSignatureInvalid,
    TrustEntry,
    sign_bundle,
    verify_bundle,
)

ADMIN = Principal("ops", "admin")
SOMEONE = Principal("idt_X", "identity")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
VCT = "https://coop.example/vct/membership/v1"
OTHER_URL = "https://other.example/.well-known/trust-bundle"


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.build(settings, clock=FixedClock(NOW))
    migrate(runtime.engine)
    try:
        yield runtime
    finally:
        runtime.close()


def _advance(rt: Runtime, delta: timedelta) -> None:
    assert isinstance(rt.clock, FixedClock)
    rt.clock.advance(delta)


def _events(rt: Runtime, prefix: str) -> list[str]:
    """The types of the events recorded so far under ``prefix``, sorted."""
    with transaction(rt.sessions) as session:
        return sorted(
            session.scalars(select(EventRow.type).where(EventRow.type.like(f"{prefix}%")))
        )


def test_the_trust_list_makes_signed_bundle_versions(rt: Runtime) -> None:
    did_key = encode_did_key(PrivateKey.generate().public_key)
    with transaction(rt.sessions) as session:
        trust.add_trusted_issuer(
            session, rt, ADMIN, "did:web:coop.example", marks=["shg-federation"], types=[VCT]
        )
        trust.add_trusted_issuer(session, rt, ADMIN, did_key)
    with transaction(rt.sessions) as session:
        signed = trust_registry.published_bundle(session, rt)
        key = trust_registry.bundle_key(session, rt)
        again = trust_registry.published_bundle(session, rt)
    assert again == signed  # not re-signed on every request
    bundle = verify_bundle(signed.token, key.public_key, now=NOW, iss=rt.settings.public_url)
    assert bundle.version == 2
    assert [e.id for e in bundle.entries] == sorted(["did:web:coop.example", did_key])
    assert bundle.entry("did:web:coop.example") == TrustEntry(
        "did:web:coop.example", "did:web", frozenset({"shg-federation"}), frozenset({VCT})
    )
    assert bundle.entry(did_key) is not None
    assert bundle.expires_at == NOW + trust_registry.BUNDLE_VALIDITY
    assert key.did.startswith("did:key:")

    # A removal is version 3, and the lookup follows it.
    with transaction(rt.sessions) as session:
        assert trust_registry.trusted(session, rt, did_key, "Anything").kind == "did:key"
        trust.remove_trusted_issuer(session, rt, ADMIN, did_key)
    with transaction(rt.sessions) as session:
        signed = trust_registry.published_bundle(session, rt)
        with pytest.raises(IssuerNotTrusted) as info:
            trust_registry.trusted(session, rt, did_key, "Anything")
        assert info.value.reason == "not_listed"
        with pytest.raises(IssuerNotTrusted) as info:
            trust_registry.trusted(
                session, rt, "did:web:coop.example", VCT, required_marks={"bank"}
            )
        assert info.value.reason == "mark_missing"
    assert verify_bundle(signed.token, key.public_key, now=NOW, last_version=2).version == 3
    assert _events(rt, "trust.") == ["trust.bundle_versioned"] * 3
    assert _events(rt, "issuer.") == ["issuer.trusted", "issuer.trusted", "issuer.untrusted"]

    # Past half its validity the same version is signed again, later.
    _advance(rt, timedelta(hours=13))
    with transaction(rt.sessions) as session:
        later = trust_registry.published_bundle(session, rt)
    assert (later.version, later.issued_at) == (3, NOW + timedelta(hours=13))


def test_a_list_from_before_the_bundle_is_published_as_version_1(rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        session.add(
            TrustedIssuerRow(id="tis_01", issuer="https://old.example", kind="https", added_at=NOW)
        )
    with transaction(rt.sessions) as session:
        assert trust_registry.trusted(session, rt, "https://old.example", "Any").kind == "https"
        signed = trust_registry.published_bundle(session, rt)
        key = trust_registry.bundle_key(session, rt)
    bundle = verify_bundle(signed.token, key.public_key, now=NOW)
    assert bundle.version == 1
    assert bundle.entries[0].types == frozenset({"*"})
    with transaction(rt.sessions) as session:
        assert session.scalar(select(TrustBundleVersionRow.version)) == 1


def test_x509_anchor_entries(rt: Runtime) -> None:
    root, intermediate, leaf = chain("bank.example")
    pem = root.certificate.public_bytes(Encoding.PEM)
    with transaction(rt.sessions) as session:
        added = trust.add_trusted_anchor(session, rt, ADMIN, pem, marks=["bank"])
        with pytest.raises(ConflictError):
            trust.add_trusted_anchor(session, rt, ADMIN, root.der)
        with pytest.raises(ValidationError):
            trust.add_trusted_anchor(session, rt, ADMIN, leaf.der)  # not a CA
        with pytest.raises(ValidationError):
            trust.add_trusted_anchor(session, rt, ADMIN, b"-----BEGIN CERTIFICATE-----\nxx")
    assert added.kind == "x509"
    assert added.issuer.startswith("x509:sha256:")
    with transaction(rt.sessions) as session:
        entry = trust_registry.trusted(
            session, rt, "https://bank.example", VCT, required_marks={"bank"},
            x5c=[leaf.x5c, intermediate.x5c],
        )  # fmt: skip
        assert entry.id == added.issuer
        _, other_intermediate, other_leaf = chain("bank.example")
        with pytest.raises(IssuerNotTrusted) as info:
            trust_registry.trusted(
                session,
                rt,
                "https://bank.example",
                VCT,
                x5c=[other_leaf.x5c, other_intermediate.x5c],
            )
        assert info.value.reason == "chain_invalid"


def test_entries_are_validated_and_admin_only(rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        with pytest.raises(NotFoundError):
            trust.add_trusted_issuer(session, rt, SOMEONE, "did:web:coop.example")
        with pytest.raises(ValidationError):
            trust.add_trusted_issuer(session, rt, ADMIN, "did:web:coop.example", marks=["Bank"])
        with pytest.raises(ValidationError):
            trust.add_trusted_issuer(session, rt, ADMIN, "did:web:coop.example", types=["x" * 256])
        with pytest.raises(NotFoundError):
            trust_registry.bundle_view(session, rt, SOMEONE)
        with pytest.raises(NotFoundError):
            trust_pins.list_pins(session, rt, SOMEONE)
    assert _events(rt, "trust.") == []


class OtherPlatform:
    """Another platform's well-known bundle, served by a fake transport."""

    def __init__(self) -> None:
        self.key = PrivateKey.generate(KeyType.P256)
        self.token = ""
        self.status = 200

    def publish(self, version: int, *, exp: timedelta = timedelta(days=1), key: Any = None) -> None:
        iat = int(NOW.timestamp())
        bundle = TrustBundle(
            "https://other.example", version, iat, iat + int(exp.total_seconds()),
            (TrustEntry("did:web:far.example", "did:web", frozenset({"bank"})),),
        )  # fmt: skip
        self.token = sign_bundle(bundle, key or self.key, "other-1")

    def handler(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) != OTHER_URL:
            return httpx.Response(404)
        return httpx.Response(
            self.status, text=self.token, headers={"Content-Type": "application/trust-bundle+jwt"}
        )


@pytest.fixture
def other(rt: Runtime) -> OtherPlatform:
    platform = OtherPlatform()
    trust_pins.TRUST_FETCHER.set(
        rt,
        OutboundFetcher(
            transport=httpx.MockTransport(platform.handler), resolver=lambda _h: ["93.184.216.34"]
        ),
    )
    return platform


def test_pinning_another_platforms_bundle(rt: Runtime, other: OtherPlatform) -> None:
    other.publish(5)
    jwk = public_key_to_jwk(other.key.public_key)
    # The wrong key: refused, nothing kept.
    with pytest.raises(TrustBundleSignatureInvalid):
        trust_pins.pin_bundle(
            rt, ADMIN, OTHER_URL, encode_did_key(PrivateKey.generate().public_key)
        )
    with pytest.raises(ValidationError):
        trust_pins.pin_bundle(rt, ADMIN, OTHER_URL, '{"kty": "OKP"}')
    pinned = trust_pins.pin_bundle(rt, ADMIN, OTHER_URL, json.dumps(jwk))
    with pytest.raises(ConflictError):
        trust_pins.pin_bundle(rt, ADMIN, OTHER_URL, json.dumps(jwk))
    assert (pinned.version, pinned.issuers, pinned.iss) == (5, 1, "https://other.example")
    with transaction(rt.sessions) as session:
        entry = trust_registry.trusted(
            session, rt, "did:web:far.example", VCT, required_marks={"bank"}
        )
        assert entry.kind == "did:web"

    # A rollback, a bad signature and an outage are refused; the kept bundle stays.
    other.publish(4)
    refusals = [trust_pins.refresh_pins(rt, ADMIN)[0].reason]
    other.publish(6, key=PrivateKey.generate(KeyType.P256))
    refusals.append(trust_pins.refresh_pins(rt, ADMIN)[0].reason)
    other.status = 500
    refusals.append(trust_pins.refresh_pins(rt, ADMIN)[0].reason)
    assert refusals == ["rollback", "signature_invalid", "fetch_failed"]
    other.status = 200
    other.publish(7, exp=timedelta(hours=2))
    outcome = trust_pins.refresh_pins(rt, ADMIN)[0]
    assert (outcome.accepted, outcome.version) == (True, 7)
    with transaction(rt.sessions) as session:
        assert trust_pins.list_pins(session, rt, ADMIN)[0].version == 7

    # The worker's step refreshes the pins too.
    other.publish(8, exp=timedelta(hours=2))
    assert jobs.trust_pins_step(interval=0.0)(rt, 0) == {"trust_pins_refreshed": 1}
    other.status = 404
    assert jobs.trust_pins_step(interval=0.0)(rt, 0) == {"trust_pins_refused": 1}

    # When the kept bundle expires, its issuers are not trusted (bundle_expired).
    _advance(rt, timedelta(hours=3))
    with transaction(rt.sessions) as session:
        with pytest.raises(IssuerNotTrusted) as info:
            trust_registry.trusted(session, rt, "did:web:far.example", VCT)
        assert info.value.reason == "bundle_expired"
        trust_pins.unpin_bundle(session, rt, ADMIN, OTHER_URL)
        with pytest.raises(IssuerNotTrusted) as info:
            trust_registry.trusted(session, rt, "did:web:far.example", VCT)
        assert info.value.reason == "not_listed"
    assert _events(rt, "trust.p") == [
        "trust.pin_refreshed", "trust.pin_refreshed", "trust.pin_refused", "trust.pin_refused",
        "trust.pin_refused", "trust.pin_refused", "trust.pinned",
    ]  # fmt: skip
    assert _events(rt, "trust.unp") == ["trust.unpinned"]


POLICY: dict[str, Any] = {
    "id": "income",
    "version": 1,
    "rule": {"rule": "predicate", "path": ["income"], "op": "gte", "value": 1000},
}


def test_policies_versions_and_floors(rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        created = policy_service.create_policy(
            session, rt, ADMIN, owner="platform", document=POLICY, profile="india-dpdp"
        )
        assert (created.version, created.floor, created.profile) == (1, 1, "india-dpdp")
        assert created.effective["rule"]["rule"] == "all_of"
        with pytest.raises(ConflictError):
            policy_service.create_policy(session, rt, ADMIN, owner="platform", document=POLICY)
        with pytest.raises(ValidationError):  # no such lender
            policy_service.create_policy(session, rt, ADMIN, owner="lnd_unknown", document=POLICY)
        with pytest.raises(ValidationError):
            policy_service.create_policy(
                session, rt, ADMIN, owner="platform", document={**POLICY, "id": "x"}, profile="us"
            )
        with pytest.raises(PolicyInvalid):
            policy_service.create_policy(
                session,
                rt,
                ADMIN,
                owner="platform",
                document={**POLICY, "rule": {"rule": "all_of", "rules": []}},
            )
        with pytest.raises(NotFoundError):
            policy_service.create_policy(session, rt, SOMEONE, owner="platform", document=POLICY)
    with transaction(rt.sessions) as session:
        for version in (2, 3):
            policy_service.add_policy_version(
                session, rt, ADMIN, owner="platform", policy_id="income",
                document={**POLICY, "version": version},
            )  # fmt: skip
        with pytest.raises(ConflictError):
            policy_service.add_policy_version(
                session, rt, ADMIN, owner="platform", policy_id="income", document=POLICY
            )
        with pytest.raises(ValidationError):
            policy_service.add_policy_version(
                session, rt, ADMIN, owner="platform", policy_id="income",
                document={**POLICY, "id": "other", "version": 9},
            )  # fmt: skip
        with pytest.raises(policy_service.PolicyNotFound):
            policy_service.add_policy_version(
                session, rt, ADMIN, owner="platform", policy_id="nope", document=POLICY
            )
        floored = policy_service.set_policy_floor(
            session, rt, ADMIN, owner="platform", policy_id="income", floor=2
        )
        assert (floored.version, floored.floor, floored.profile) == (3, 2, "india-dpdp")
        with pytest.raises(ConflictError):  # the floor only rises
            policy_service.set_policy_floor(
                session, rt, ADMIN, owner="platform", policy_id="income", floor=1
            )
        with pytest.raises(ConflictError):  # not above the latest version
            policy_service.set_policy_floor(
                session, rt, ADMIN, owner="platform", policy_id="income", floor=4
            )
    with transaction(rt.sessions) as session:
        assert [v.version for v in policy_service.list_policies(session, rt, ADMIN)] == [3]
        first = policy_service.get_policy(
            session, rt, ADMIN, owner="platform", policy_id="income", version=1
        )
        assert first.document == POLICY
        loaded = policy_service.load_policy(session, "platform", "income", 2)
        assert (loaded.policy.version, loaded.floor, loaded.profile) == (2, 2, "india-dpdp")
        policy_service.check_policy_version(session, "platform", "income", 2)
        with pytest.raises(PolicyDenied) as info:
            policy_service.check_policy_version(session, "platform", "income", 1)
        assert info.value.reason == "policy_version_downgrade"
        with pytest.raises(policy_service.PolicyNotFound):
            policy_service.load_policy(session, "platform", "income", 9)
    assert _events(rt, "verifier.") == [
        "verifier.policy_floor_set", "verifier.policy_versioned", "verifier.policy_versioned",
        "verifier.policy_versioned",
    ]  # fmt: skip


def test_a_pinned_policy_version_is_parsed_once_and_its_floor_read_every_time(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(rt.sessions) as session:
        policy_service.create_policy(
            session, rt, ADMIN, owner="platform", document=POLICY, profile="india-dpdp"
        )
        policy_service.add_policy_version(
            session, rt, ADMIN, owner="platform", policy_id="income",
            document={**POLICY, "version": 2},
        )  # fmt: skip
    parsed: list[str] = []
    real_parse = policy_service.parse_policy

    def counted(document: str) -> Any:
        parsed.append(document)
        return real_parse(document)

    monkeypatch.setattr(policy_service, "parse_policy", counted)
    with transaction(rt.read_sessions) as session:
        first = policy_service.pinned_policy(session, rt, "platform", "income", 1)
        again = policy_service.pinned_policy(session, rt, "platform", "income", 1)
        other = policy_service.pinned_policy(session, rt, "platform", "income", 2)
    assert len(parsed) == 2  # versions 1 and 2, each once
    assert again.policy is first.policy
    assert (first.policy.version, other.policy.version, first.floor) == (1, 2, 1)
    assert first.profile == "india-dpdp"
    with transaction(rt.sessions) as session:
        policy_service.set_policy_floor(
            session, rt, ADMIN, owner="platform", policy_id="income", floor=2
        )
    parsed.clear()  # the administrator's view parses what it shows
    with transaction(rt.read_sessions) as session:
        assert policy_service.pinned_policy(session, rt, "platform", "income", 1).floor == 2
        with pytest.raises(policy_service.PolicyNotFound):
            policy_service.pinned_policy(session, rt, "platform", "income", 9)
    assert parsed == []
