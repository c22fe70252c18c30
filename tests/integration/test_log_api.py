"""The log over HTTP (in-process app) on both databases: API, tiles layout, receipts, audit."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64_decode
from credit_commons.core.settings import Settings
from credit_commons.events import record_event
from credit_commons.gateway.app import create_app
from credit_commons.gateway.routes.log import parse_tile_path
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger import rfc6962
from credit_commons.ledger import service as log_service
from credit_commons.ledger.audit import AuditFailed, audit_log
from credit_commons.ledger.checkpoint import verify_checkpoint
from credit_commons.ledger.errors import InclusionProofInvalid, SignatureMissing
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import LogEntryRow
from credit_commons.ledger.note import Ed25519Verifier, generate_key
from credit_commons.ledger.receipts import ReceiptInvalid, verify_receipt
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

LEAVES = 600  # two full level-0 tiles and a partial one


@pytest.fixture
def populated(runtime: Runtime) -> Runtime:
    with transaction(runtime.sessions) as session:
        for i in range(LEAVES):
            record_event(
                session,
                KeyRotated(key_name="k", version=i + 1, key_type=KeyType.ED25519, kid=f"k{i}"),
                actor=runtime.operator_actor(),
                at=runtime.clock.now(),
            )
    LogWorker(runtime).run_once(force_checkpoint=True)
    return runtime


@pytest.fixture
def client(populated: Runtime, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, runtime=populated)) as test_client:
        yield test_client


def leaf_hashes(runtime: Runtime) -> list[bytes]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(sa.select(LogEntryRow.entry).order_by(LogEntryRow.leaf_index))
        return [rfc6962.leaf_hash(bytes(e)) for (e,) in rows]


def test_checkpoint_key_and_proofs(client: TestClient, populated: Runtime) -> None:
    key = client.get("/v1/log/key").json()
    note = client.get("/v1/log/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    assert client.get("/checkpoint").text == note.text
    checkpoint = verify_checkpoint(
        note.text, Ed25519Verifier.from_vkey(key["vkey"]), origin=key["origin"]
    )
    assert checkpoint.size == LEAVES
    leaves = leaf_hashes(populated)
    assert checkpoint.root_hash == rfc6962.merkle_root(leaves)
    for index in (0, 255, 256, 599):
        body = client.get("/v1/log/proof/inclusion", params={"index": index}).json()
        proof = [rfc6962.Hash(b64_decode(h)) for h in body["proof"]]
        rfc6962.verify_inclusion(leaves[index], index, LEAVES, proof, checkpoint.root_hash)
    by_hash = client.get(
        "/v1/log/proof/inclusion", params={"leaf_hash": rfc6962.Hash(leaves[7]).b64(), "size": 300}
    ).json()
    assert by_hash["index"] == 7
    body = client.get("/v1/log/proof/consistency", params={"from": 100}).json()
    proof = [rfc6962.Hash(b64_decode(h)) for h in body["proof"]]
    rfc6962.verify_consistency(
        100, LEAVES, proof, rfc6962.merkle_root(leaves[:100]), checkpoint.root_hash
    )
    entries = client.get("/v1/log/entries", params={"start": 10, "end": 12}).json()
    assert [e["index"] for e in entries] == [10, 11]
    assert entries[0]["leaf_hash"] == rfc6962.Hash(leaves[10]).b64()


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"index": 600}, 422),
        ({"index": 0, "size": 601}, 422),
        ({}, 422),
        ({"index": 1, "leaf_hash": "AAAA"}, 422),
        ({"leaf_hash": "not base64!"}, 422),
        ({"leaf_hash": "\u0089"}, 422),  # was a 500: the decoder's ASCII encode outside its try
        ({"index": -1}, 422),
    ],
)
def test_bad_proof_requests_are_problems(
    client: TestClient, params: dict[str, object], status: int
) -> None:
    response = client.get("/v1/log/proof/inclusion", params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


def test_tiles_layout(client: TestClient, populated: Runtime) -> None:
    leaves = leaf_hashes(populated)
    full = client.get("/tile/0/000")
    assert full.status_code == 200
    assert full.content == b"".join(leaves[:256])
    assert "immutable" in full.headers["cache-control"]
    assert client.get("/tile/0/001").content == b"".join(leaves[256:512])
    assert client.get("/tile/0/002").status_code == 404  # still partial
    partial = client.get("/tile/0/002.p/88")
    assert partial.content == b"".join(leaves[512:600])
    assert client.get("/tile/0/002.p/5").content == b"".join(leaves[512:517])
    assert client.get("/tile/0/002.p/89").status_code == 404
    level1 = client.get("/tile/1/000.p/2").content
    assert level1 == rfc6962.merkle_root(leaves[:256]) + rfc6962.merkle_root(leaves[256:512])
    bundle = client.get("/tile/entries/000").content
    entries, offset = [], 0
    while offset < len(bundle):
        (length,) = struct.unpack(">H", bundle[offset : offset + 2])
        entries.append(bundle[offset + 2 : offset + 2 + length])
        offset += 2 + length
    assert [rfc6962.leaf_hash(e) for e in entries] == leaves[:256]
    assert client.get("/tile/entries/002.p/88").status_code == 200
    for bad in (
        "/tile/0/0",
        "/tile/0/x000/000",
        "/tile/0/000.p/0",
        "/tile/0/000.p/256",
        "/tile/64/000",
    ):
        assert client.get(bad).status_code == 404, bad


def test_tile_path_parsing() -> None:
    assert parse_tile_path("x001/x234/067") == (1234067, None)
    assert parse_tile_path("067.p/5") == (67, 5)
    assert parse_tile_path("x001/000") == (1000, None)


def test_receipts_verify_offline_and_tampering_fails(
    client: TestClient, populated: Runtime
) -> None:
    vkey = client.get("/v1/log/key").json()["vkey"]
    with transaction(populated.sessions) as session:
        event_id = session.scalar(
            sa.select(LogEntryRow.event_id).where(LogEntryRow.leaf_index == 300)
        )
    public = client.get(f"/v1/log/receipts/{event_id}").json()
    assert "event" not in public
    assert verify_receipt(public, vkey).index == 300
    with transaction(populated.sessions) as session:
        full = log_service.receipt(session, str(event_id), include_event=True).model_dump()
    assert verify_receipt(full, vkey).event_checked
    tampered_event = json.loads(json.dumps(full))
    tampered_event["event"]["details"]["version"] = 999
    with pytest.raises(ReceiptInvalid):
        verify_receipt(tampered_event, vkey)
    moved = dict(public, index=301)
    with pytest.raises(InclusionProofInvalid):
        verify_receipt(moved, vkey)
    other_key = generate_key("127.0.0.1:8000/log")[1]  # same name, another key: unknown id
    with pytest.raises(SignatureMissing):
        verify_receipt(public, other_key)
    assert client.get("/v1/log/receipts/evt_nope").status_code == 404


def test_audit_passes_then_catches_a_rewritten_entry(populated: Runtime) -> None:
    vkey = log_identity(populated).vkey
    seen: list[int] = []
    report = audit_log(populated.engine, vkey, seen.append, chunk=128)
    assert report.size == LEAVES
    assert seen[-1] == LEAVES
    with populated.engine.begin() as connection:
        connection.execute(
            sa.update(LogEntryRow)
            .where(LogEntryRow.leaf_index == 42)
            .values(entry=b'{"forged":true}')
        )
    with pytest.raises(AuditFailed):
        audit_log(populated.engine, vkey)
