"""The one platform-signing-key helper (keys.service.platform_signer and
platform_key_versions): every domain's own key is made on first use, once, recorded as
key.created by that domain's operator role, and its signer is the newest version."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.consent import artefacts
from credit_commons.core.db import transaction
from credit_commons.events import EventRow
from credit_commons.gateway import access_token
from credit_commons.identity import attestations
from credit_commons.issuer import status
from credit_commons.keys import KeyNotFound
from credit_commons.keys import service as key_service
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.store import StoredSigner
from credit_commons.runtime import Runtime

SIGNERS: dict[str, tuple[Callable[[Session, Runtime], StoredSigner], str, str]] = {
    "issuer": (status.issuer_signer, status.ISSUER_KEY, "issuer"),
    "consent": (artefacts.consent_signer, artefacts.CONSENT_KEY, "consent"),
    "oauth": (access_token.oauth_signer, access_token.OAUTH_KEY, "oauth"),
    "attestation": (
        attestations.attestation_signer,
        attestations.ATTESTATION_KEY,
        "attestation",
    ),
}


@pytest.mark.parametrize("domain", sorted(SIGNERS))
def test_each_domain_key_is_made_once_by_its_role(runtime: Runtime, domain: str) -> None:
    signer_of, name, role = SIGNERS[domain]
    with transaction(runtime.sessions) as session:
        first = signer_of(session, runtime)
    with transaction(runtime.sessions) as session:
        again = signer_of(session, runtime)
        versions = runtime.key_store.versions(session, name)
        created = session.scalars(select(EventRow).where(EventRow.type == "key.created")).all()
    assert first.kid == again.kid == versions[-1].kid
    assert [json.loads(e.details)["key_name"] for e in created] == [name]
    assert created[0].actor == runtime.operator_actor(role)
    assert first.public_key == versions[-1].public_key


def test_versions_and_signer_agree(runtime: Runtime) -> None:
    key = key_service.PlatformKey("test-platform", KeyType.P256, "tests")
    with transaction(runtime.sessions) as session:
        versions = key_service.platform_key_versions(session, runtime, key)  # made here
        signer = key_service.platform_signer(session, runtime, key)
    assert [v.kid for v in versions] == [signer.kid]
    assert signer.key_type is KeyType.P256
    signer.public_key.verify(signer.alg, b"x", signer.sign(b"x"))


def test_a_key_another_process_made_since_the_read_is_used_not_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `serve` workers answering their first requests at once both find no key; the
    one whose insert loses (KeyExists) uses the other's version 1 instead of answering 409."""
    key = key_service.PlatformKey("test-race", KeyType.ED25519, "tests")
    with transaction(runtime.sessions) as session:
        made = key_service.platform_signer(session, runtime, key)  # "the other process"
    store = runtime.key_store
    real = store.signer
    missed: list[str] = []

    def signer_not_yet_seen(session: Session, name: str) -> StoredSigner:
        if not missed:  # this process's first read ran before the other's commit
            missed.append(name)
            raise KeyNotFound(f"no key named {name!r}")
        return real(session, name)

    monkeypatch.setattr(store, "signer", signer_not_yet_seen)
    with transaction(runtime.sessions) as session:
        found = key_service.platform_signer(session, runtime, key)
        versions = runtime.key_store.versions(session, key.name)
        created = session.scalars(select(EventRow).where(EventRow.type == "key.created")).all()
    assert missed == [key.name]
    assert found.kid == made.kid == versions[0].kid
    assert len(versions) == 1
    assert [json.loads(e.details)["key_name"] for e in created] == [key.name]
