"""A did:web naming an IP address on both databases: adding one to the trust list is
refused, and one stored before that was refused (or listed in another platform's pinned
bundle) is read back, shown as unusable and never breaks the bundle or other issuers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from tests.conftest import migrate

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.errors import ValidationError
from credit_commons.core.net import OutboundFetcher
from credit_commons.core.settings import Settings
from credit_commons.identity import Principal
from credit_commons.keys import DidInvalid, DidResolver, PrivateKey, public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.verifier import trust, trust_pins, trust_registry
from credit_commons.verifier.models import TrustedIssuerRow
from credit_commons.verifier.trust_bundle import TrustBundle, TrustEntry, sign_bundle, verify_bundle

ADMIN = Principal("ops", "admin")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
OLD = "did:web:10.0.0.7"
HTTPS = "https://issuer.example"
PEER_URL = "https://other.example/.well-known/trust-bundle"


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.build(settings, clock=FixedClock(NOW))
    migrate(runtime.engine)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.mark.parametrize(
    "did", [OLD, "did:web:127.1", "did:web:2130706433", "did:web:0x7f.0.0.1%3A8443"]
)
def test_adding_a_did_web_naming_an_ip_address_is_refused(rt: Runtime, did: str) -> None:
    with transaction(rt.sessions) as session, pytest.raises(ValidationError) as refused:
        trust.add_trusted_issuer(session, rt, ADMIN, did)
    assert "IP address" in refused.value.detail
    with transaction(rt.sessions) as session:
        assert trust.list_trusted_issuers(session, rt, ADMIN) == []


def test_an_entry_stored_before_the_refusal_breaks_nothing(rt: Runtime) -> None:
    # As the code before the refusal stored it; the next addition writes a bundle version
    # listing both, which is read back from its stored JSON.
    with transaction(rt.sessions) as session:
        session.add(TrustedIssuerRow(id="tis_old", issuer=OLD, kind="did:web", added_at=NOW))
    with transaction(rt.sessions) as session:
        trust.add_trusted_issuer(session, rt, ADMIN, HTTPS)
    with transaction(rt.sessions) as session:
        # What /.well-known/trust-bundle serves.
        signed = trust_registry.published_bundle(session, rt)
        key = trust_registry.bundle_key(session, rt)
        view = trust_registry.bundle_view(session, rt, ADMIN)
        listed = {v.issuer: v.unusable for v in trust.list_trusted_issuers(session, rt, ADMIN)}
        # Step 6 for another issuer.
        assert trust_registry.trusted(session, rt, HTTPS, "Any").kind == "https"
    bundle = verify_bundle(signed.token, key.public_key, now=NOW)
    assert {e.id for e in bundle.entries} >= {OLD, HTTPS}
    assert set(view.unusable) == {OLD}
    assert "IP address" in view.unusable[OLD]
    assert listed[HTTPS] is None
    assert "IP address" in (listed[OLD] or "")
    # The entry itself never verifies anything: its DID is never fetched.
    with pytest.raises(DidInvalid, match="IP address"):
        DidResolver(OutboundFetcher()).resolve(OLD)


def test_a_pinned_bundle_listing_one_is_kept(rt: Runtime) -> None:
    signer = PrivateKey.generate()
    iat = int(NOW.timestamp())
    bundle = TrustBundle(
        "https://other.example", 3, iat, iat + 86400,
        (TrustEntry(OLD, "did:web"), TrustEntry("did:web:far.example", "did:web")),
    )  # fmt: skip
    token = sign_bundle(bundle, signer, "other-1")

    def handler(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == PEER_URL
        return httpx.Response(
            200, text=token, headers={"Content-Type": "application/trust-bundle+jwt"}
        )

    trust_pins.TRUST_FETCHER.set(
        rt,
        OutboundFetcher(
            transport=httpx.MockTransport(handler), resolver=lambda _h: ["93.184.216.34"]
        ),
    )
    pinned = trust_pins.pin_bundle(
        rt, ADMIN, PEER_URL, json.dumps(public_key_to_jwk(signer.public_key))
    )
    assert (pinned.version, pinned.issuers) == (3, 2)
    with transaction(rt.sessions) as session:
        entry = trust_registry.trusted(session, rt, "did:web:far.example", "Any")
    assert entry.kind == "did:web"
