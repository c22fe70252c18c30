"""The full node's mirror on SQLite and PostgreSQL (issue 20 item 2): the platform's own
signed messages, fed to a :class:`Mirror` that fetches leaves and blobs from the platform's
HTTP API, are verified and stored once; the mirrored tree's root is each checkpoint's and its
proofs are the platform's; bad messages are dropped and counted; a fork is refused and
recorded; a changed log key is refused at start."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode, canonical_json
from credit_commons.events import EventSpec, record_events
from credit_commons.federation import Message, checkpoint_message
from credit_commons.federation.feed import spine_batch
from credit_commons.formats.jws import sign_compact
from credit_commons.gateway.node_app import create_node_app
from credit_commons.ledger import Checkpoint, Hash
from credit_commons.ledger import service as ledger_service
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.note import Ed25519Signer, generate_key, sign_note
from credit_commons.ledger.worker import LogWorker
from credit_commons.node import Mirror, NodeScorer, PinMismatch, Platform, ScoringRefused
from credit_commons.node import store as node_store
from credit_commons.node.messages import checkpoint_at
from credit_commons.node.models import NodeMessageRow
from credit_commons.reputation import blob_cid, register_dev_rule_set
from credit_commons.reputation.service import EventRecorded
from credit_commons.runtime import Runtime

EVENTS = 300  # more than one 256-entry tile: a full bundle and a partial one


def _blob(i: int) -> bytes:
    return canonical_json({"n": i, "what": "a test blob"})


class _Forward(httpx.BaseTransport):
    """Requests to the platform's test client, answered from memory."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        headers = {"Accept": request.headers.get("accept", "*/*")}
        if "authorization" in request.headers:  # the node's service token
            headers["Authorization"] = request.headers["authorization"]
        answer = self.client.get(path, headers=headers)
        headers = {"content-type": answer.headers.get("content-type", "")}
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)


class _Platform(Platform):
    """The real platform over its test client, with blobs from this test (the reputation
    events here are recorded directly, so the platform holds no blob for them)."""

    def __init__(self, client: TestClient, blobs: dict[str, bytes]) -> None:
        super().__init__("http://127.0.0.1", transport=_Forward(client))
        self.blobs, self.blob_calls = blobs, 0
        self.vkey: str | None = None

    def blob(self, cid: str) -> bytes:
        self.blob_calls += 1
        return self.blobs[cid]

    def log_key(self) -> tuple[str, str]:
        origin, vkey = super().log_key()
        return origin, self.vkey or vkey


def _record(rt: Runtime, count: int) -> dict[str, bytes]:
    blobs = {blob_cid(_blob(i)): _blob(i) for i in range(count)}
    sender = rt.pseudonymizer.pseudonym("did", "did:key:sender")
    specs = [
        EventSpec(
            EventRecorded(
                cid=cid,
                kind="vouch",
                ctx="agri" if i % 2 else "shg.lucknow",
                epoch="2026-W49",
                from_sha256=hashlib.sha256(b"did:key:sender").hexdigest(),
                to_sha256=hashlib.sha256(f"did:key:{i}".encode()).hexdigest(),
            ),
            actor=sender,
            subject=rt.pseudonymizer.pseudonym("did", f"did:key:{i}"),
            at=rt.clock.now(),
        )
        for i, cid in enumerate(blobs)
    ]
    with transaction(rt.sessions) as session:
        record_events(session, specs)
    LogWorker(rt, steps=[]).run_once(force_checkpoint=True)
    return blobs


def _messages(rt: Runtime) -> list[Message]:
    with transaction(rt.read_sessions) as session:
        events, _, _ = spine_batch(session, rt, 0, 10_000)
        identity = log_identity(rt)
        signer = rt.key_store.signer(session, identity.key_name)
        checkpoints = [
            checkpoint_message(size, note, identity.origin, signer, at, log_key="test")
            for size, note, at in ledger_service.checkpoints_after(session, 0, 100)
        ]
    return [*events, *checkpoints]


def _mirror(rt: Runtime, platform: Platform, drops: list[tuple[str, str]]) -> Mirror:
    mirror = Mirror(rt.sessions, platform, rt.clock, on_drop=lambda s, r: drops.append((s, r)))
    mirror.start()
    return mirror


def _counters(rt: Runtime) -> dict[str, int]:
    with transaction(rt.read_sessions) as session:
        return node_store.counters(session)


def test_mirrors_and_serves_what_the_platform_proves(runtime: Runtime, client: TestClient) -> None:
    rt = runtime
    blobs = _record(rt, EVENTS)
    platform = _Platform(client, blobs)
    drops: list[tuple[str, str]] = []
    mirror = _mirror(rt, platform, drops)
    messages = _messages(rt)
    assert [m.stream for m in messages].count("COMMONS_CHECKPOINTS") >= 1

    outcomes = [mirror.accept(m.body, m.subject, m.stream) for m in messages]
    assert outcomes == ["stored"] * len(messages)
    # Delivered again (a crash before the acknowledgements): nothing stored twice.
    again = [mirror.accept(m.body, m.subject, m.stream) for m in messages]
    assert again == ["duplicate"] * len(messages)
    assert drops == []
    counters = _counters(rt)
    assert counters["accepted.COMMONS_EVENTS"] == EVENTS
    assert platform.blob_calls == EVENTS

    node = TestClient(create_node_app(mirror))
    latest = client.get("/v1/log/checkpoint").text
    size = int(latest.split("\n")[1])
    assert counters["tree.size"] == size
    assert node.get("/v1/checkpoints/latest").text == latest
    assert node.get(f"/v1/checkpoints/{size}").text == latest
    assert node.get("/v1/checkpoints/1").status_code == 404
    for index in (0, 1, 255, 256, size - 1):
        mine = node.get("/v1/log/proof/inclusion", params={"index": index}).json()
        theirs = client.get("/v1/log/proof/inclusion", params={"index": index}).json()
        assert mine == theirs
    mine = node.get("/v1/log/proof/consistency", params={"from": 7, "to": size}).json()
    assert mine == client.get("/v1/log/proof/consistency", params={"from": 7}).json()
    cid, body = next(iter(blobs.items()))
    served = node.get(f"/v1/blobs/{cid}")
    assert served.status_code == 200
    assert served.content == body
    assert node.get("/v1/blobs/bafynothing").status_code == 404
    state = node.get("/v1/node").json()
    assert state["tree_size"] == size
    assert state["forks"] == 0


def _sign(rt: Runtime, payload: dict[str, Any]) -> bytes:
    with transaction(rt.read_sessions) as session:
        signer = rt.key_store.signer(session, log_identity(rt).key_name)
    return sign_compact({"typ": "commons-federation+jws"}, payload, signer).encode()


def test_drops_and_counts_bad_messages(runtime: Runtime, client: TestClient) -> None:
    rt = runtime
    blobs = _record(rt, 3)
    drops: list[tuple[str, str]] = []
    mirror = _mirror(rt, _Platform(client, blobs), drops)
    good = next(m for m in _messages(rt) if m.stream == "COMMONS_EVENTS")
    header, payload_b64, signature = good.body.decode().split(".")
    payload = json.loads(
        __import__("base64").urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4))
    )
    forged_sig = f"{header}.{payload_b64}.{signature[:-4]}AAAA".encode()
    other_event = {**payload["event"], "actor": "p1:someone-else"}
    cases = {
        "oversize": (b"x" * (64 * 1024 + 1), good.subject),
        "signature": (forged_sig, good.subject),
        "schema": (_sign(rt, {**payload, "extra": 1}), good.subject),
        "issuer": (_sign(rt, {**payload, "iss": "elsewhere.example/log"}), good.subject),
        "subject": (good.body, "events.other"),
        "digest": (_sign(rt, {**payload, "event": other_event}), good.subject),
    }
    for reason, (body, subject) in cases.items():
        assert mirror.accept(body, subject, "COMMONS_EVENTS") == "dropped", reason
    # A blob whose bytes are not its CID.
    cid = payload["event"]["details"]["cid"]
    blobs[cid] = b"tampered"
    assert mirror.accept(good.body, good.subject, good.stream) == "dropped"
    counters = _counters(rt)
    for reason in [*cases, "blob"]:
        assert counters[f"dropped.{reason}"] == 1, reason
    assert [r for _, r in drops] == [*cases, "blob"]
    assert "accepted.COMMONS_EVENTS" not in counters
    blobs[cid] = (
        _blob(0)
        if blob_cid(_blob(0)) == cid
        else next(_blob(i) for i in range(3) if blob_cid(_blob(i)) == cid)
    )
    assert mirror.accept(good.body, good.subject, good.stream) == "stored"


def _signed_checkpoint(rt: Runtime, session: Session, size: int, root: bytes) -> str:
    identity = log_identity(rt)
    signer = ledger_service.log_signer(session, rt.key_store, identity)
    return sign_note(Checkpoint(identity.origin, size, Hash(root)).format(), signer)


def test_a_fork_is_refused_and_recorded(runtime: Runtime, client: TestClient) -> None:
    rt = runtime
    blobs = _record(rt, 5)
    mirror = _mirror(rt, _Platform(client, blobs), [])
    for m in _messages(rt):
        assert mirror.accept(m.body, m.subject, m.stream) == "stored"
    with transaction(rt.read_sessions) as session:
        size = node_store.tree_size(session)
        identity = log_identity(rt)
        forged = _signed_checkpoint(rt, session, size - 1, b"\x07" * 32)
        signer = rt.key_store.signer(session, identity.key_name)
        message = checkpoint_message(
            size - 1, forged, identity.origin, signer, rt.clock.now(), log_key="test"
        )
    assert mirror.accept(message.body, message.subject, message.stream) == "dropped"
    with transaction(rt.read_sessions) as session:
        forks = node_store.forks(session)
        assert [(f.size, f.note) for f in forks] == [(size - 1, forged)]
        assert node_store.checkpoint(session, size - 1) is None
        assert node_store.tree_size(session) == size
    assert _counters(rt)["dropped.fork"] == 1


def test_another_log_key_is_refused_at_start(runtime: Runtime, client: TestClient) -> None:
    rt = runtime
    platform = _Platform(client, {})
    _mirror(rt, platform, [])
    _mirror(rt, platform, [])  # the same key again: fine
    platform.vkey = generate_key(log_identity(rt).origin)[1]  # same origin, another key
    with pytest.raises(PinMismatch):
        Mirror(rt.sessions, platform, rt.clock).start()


def test_rule_sets_are_mirrored_verified(runtime: Runtime, client: TestClient) -> None:
    rt = runtime
    with transaction(rt.sessions) as session:
        view = register_dev_rule_set(session, rt, actor=rt.operator_actor())
    assert view is not None
    blobs = _record(rt, 2)
    drops: list[tuple[str, str]] = []
    mirror = _mirror(rt, _Platform(client, blobs), drops)
    rules = next(m for m in _messages(rt) if m.stream == "COMMONS_RULES")
    node = TestClient(create_node_app(mirror))
    assert node.get(f"/v1/rules/{view.id}").status_code == 404
    assert mirror.accept(rules.body, rules.subject, rules.stream) == "stored"
    mirrored = node.get(f"/v1/rules/{view.id}", params={"version": view.version}).json()
    assert mirrored == {
        "id": view.id,
        "version": view.version,
        "hash": view.hash,
        "token": view.token,
    }

    # A message naming another hash than the registry signed is dropped.
    _, payload_b64, _ = rules.body.decode().split(".")
    payload = json.loads(
        __import__("base64").urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4))
    )
    event = payload["event"]
    event["details"]["hash"] = "0" * 64
    entry = json.loads(payload["entry"])
    entry["digest"] = hashlib.sha256(canonical_json(event)).hexdigest()
    forged = _sign(rt, {**payload, "event": event, "entry": canonical_json(entry).decode()})
    with transaction(rt.sessions) as session:  # as if it were new
        session.execute(sa.delete(NodeMessageRow).where(NodeMessageRow.stream == "COMMONS_RULES"))
    assert mirror.accept(forged, rules.subject, rules.stream) == "dropped"
    assert drops == [("COMMONS_RULES", "rules")]


def test_a_checkpoint_under_another_key_is_dropped(runtime: Runtime, client: TestClient) -> None:
    rt = runtime
    blobs = _record(rt, 2)
    drops: list[tuple[str, str]] = []
    mirror = _mirror(rt, _Platform(client, blobs), drops)
    good = next(m for m in _messages(rt) if m.stream == "COMMONS_CHECKPOINTS")
    skey, _ = generate_key(log_identity(rt).origin)
    other = Ed25519Signer.from_skey(skey)
    with transaction(rt.read_sessions) as session:
        size = ledger_service.log_state(session)[0]
        root = ledger_service.log_state(session)[1]
    note = sign_note(Checkpoint(log_identity(rt).origin, size, root).format(), other)
    payload = {"v": 1, "iss": log_identity(rt).origin, "sub": good.subject}
    forged = _sign(rt, {**payload, "kind": "checkpoint", "size": size, "note": note})
    assert mirror.accept(forged, good.subject, good.stream) == "dropped"
    assert drops == [("COMMONS_CHECKPOINTS", "checkpoint")]
    assert mirror.accept(good.body, good.subject, good.stream) == "stored"


class _OtherKey:
    """A JWS signer with an Ed25519 key that is not the log's."""

    alg = "EdDSA"

    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


def _payload(message: Message) -> dict[str, Any]:
    _, payload_b64, _ = message.body.decode().split(".")
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4))
    )
    return decoded


def test_a_checkpoint_message_must_say_its_time_in_utc(
    runtime: Runtime, client: TestClient
) -> None:
    """A checkpoint message's ``at`` (when the platform made it: what a node scores as of)
    is a UTC time or the message is dropped (schema); one without it (an older publisher)
    is stored, and a node refuses to score it (tests/integration/node/test_scoring.py)."""
    rt = runtime
    drops: list[tuple[str, str]] = []
    mirror = _mirror(rt, _Platform(client, _record(rt, 2)), drops)
    good = next(m for m in _messages(rt) if m.stream == "COMMONS_CHECKPOINTS")
    payload = json.loads(b64url_decode(good.body.decode("ascii").split(".")[1]))
    assert checkpoint_at(payload["at"]) is not None
    for bad in ("yesterday", "2026-12-07T09:00:00+01:00", "2026-13-40T09:00:00Z", 17):
        forged = _sign(rt, {**payload, "at": bad})
        assert mirror.accept(forged, good.subject, good.stream) == "dropped", bad
    assert drops == [("COMMONS_CHECKPOINTS", "schema")] * 4
    assert mirror.accept(good.body, good.subject, good.stream) == "stored"


def test_a_checkpoint_without_its_time_is_stored_but_not_scored(
    runtime: Runtime, client: TestClient
) -> None:
    """A checkpoint message from a platform before ``at`` is mirrored, but a node cannot
    say which day to score it as of: it refuses (``checkpoint_time_unknown``)."""
    rt = runtime
    mirror = _mirror(rt, _Platform(client, _record(rt, 2)), [])
    good = next(m for m in _messages(rt) if m.stream == "COMMONS_CHECKPOINTS")
    payload = json.loads(b64url_decode(good.body.decode("ascii").split(".")[1]))
    del payload["at"]
    assert mirror.accept(_sign(rt, payload), good.subject, good.stream) == "stored"
    scorer = NodeScorer(mirror, member_token=lambda: "unused")
    with pytest.raises(ScoringRefused) as refused:
        scorer.score()
    assert refused.value.reason == "checkpoint_time_unknown"
    assert scorer.scores() is None


def _covered(
    rt: Runtime, client: TestClient, count: int
) -> tuple[Mirror, list[tuple[str, str]], list[Message]]:
    """A mirror that has stored the checkpoints covering ``count`` recorded events (not the
    events), the drops it reports, and the events' messages in order."""
    blobs = _record(rt, count)
    drops: list[tuple[str, str]] = []
    mirror = _mirror(rt, _Platform(client, blobs), drops)
    messages = _messages(rt)
    for m in messages:
        if m.stream == "COMMONS_CHECKPOINTS":
            assert mirror.accept(m.body, m.subject, m.stream) == "stored"
    events = [m for m in messages if m.stream == "COMMONS_EVENTS"]
    assert len(events) == count
    return mirror, drops, events


def test_a_batch_under_a_checkpoint_is_checked_against_its_leaves(
    runtime: Runtime, client: TestClient
) -> None:
    # Once a verified checkpoint covers an event's leaf, the message is proven by that leaf
    # instead of its own signature: content forged under another key, even with a digest
    # that matches the forged event, is refused and counted in the middle of a batch whose
    # other messages are stored.
    rt = runtime
    mirror, drops, events = _covered(rt, client, 6)

    forged = _payload(events[1])
    event = {**forged["event"], "actor": "p1:someone-else"}
    entry = json.loads(forged["entry"])
    entry["digest"] = hashlib.sha256(canonical_json(event)).hexdigest()
    forged.update(event=event, entry=canonical_json(entry).decode())
    other_key = sign_compact({"typ": "commons-federation+jws"}, forged, _OtherKey()).encode()
    by_log_key = _sign(rt, forged)  # the log never logged this entry: not its leaf either
    moved = _sign(rt, {**_payload(events[2]), "index": _payload(events[3])["index"]})
    wrong_subject = events[4].body, "events.other"
    items = [
        (events[0].body, events[0].subject),
        (other_key, events[1].subject),
        (by_log_key, events[1].subject),
        (moved, events[2].subject),
        wrong_subject,
        (events[5].body, events[5].subject),
    ]
    outcomes = mirror.accept_batch("COMMONS_EVENTS", items)
    assert outcomes == ["stored", "dropped", "dropped", "dropped", "dropped", "stored"]
    assert [r for _, r in drops] == ["digest", "digest", "digest", "subject"]
    counters = _counters(rt)
    assert counters["verified.checkpoint"] == 2  # the two that passed; drops by reason
    assert "verified.signature" not in counters
    assert counters["dropped.digest"] == 3
    assert counters["accepted.COMMONS_EVENTS"] == 2
    with transaction(rt.read_sessions) as session:
        stored = session.scalars(
            sa.select(NodeMessageRow.body).where(NodeMessageRow.stream == "COMMONS_EVENTS")
        ).all()
    assert sorted(stored) == sorted([events[0].body.decode(), events[5].body.decode()])

    # The genuine messages come again and are stored; what was stored is not stored twice.
    again = mirror.accept_batch("COMMONS_EVENTS", [(m.body, m.subject) for m in events])
    assert again == ["duplicate", "stored", "stored", "stored", "stored", "duplicate"]


def test_an_event_before_its_checkpoint_is_checked_by_its_signature(
    runtime: Runtime, client: TestClient
) -> None:
    # No checkpoint mirrored yet: the same forged content under another key is refused for
    # its signature, and the log's own messages are stored after their signatures verify.
    rt = runtime
    blobs = _record(rt, 2)
    drops: list[tuple[str, str]] = []
    mirror = _mirror(rt, _Platform(client, blobs), drops)
    events = [m for m in _messages(rt) if m.stream == "COMMONS_EVENTS"]
    forged = _payload(events[0])
    other_key = sign_compact({"typ": "commons-federation+jws"}, forged, _OtherKey()).encode()
    items = [(other_key, events[0].subject), *((m.body, m.subject) for m in events)]
    assert mirror.accept_batch("COMMONS_EVENTS", items) == ["dropped", "stored", "stored"]
    assert drops == [("COMMONS_EVENTS", "signature")]
    counters = _counters(rt)
    assert counters["verified.signature"] == 2
    assert "verified.checkpoint" not in counters


def _jws(header: dict[str, Any], payload_json: bytes, signature: bytes = b"\x00" * 64) -> bytes:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join([part(canonical_json(header)), part(payload_json), part(signature)]).encode()


def test_a_covered_message_is_authenticated_by_its_leaf_before_its_content_is_read(
    runtime: Runtime, client: TestClient
) -> None:
    # Under a mirrored checkpoint, what decides first is the form the log signs and the
    # leaf: a junk-signed message whose event has no canonical JSON form (an integer beyond
    # 2^53) is dropped and counted, not raised — the genuine messages of its batch are
    # stored and the stream goes on; the log's own content re-encoded (another number
    # form, another header) is refused, so what is stored is the log's bytes.
    rt = runtime
    mirror, drops, events = _covered(rt, client, 3)
    header = {"alg": "EdDSA", "typ": "commons-federation+jws"}
    genuine = _payload(events[0])
    huge = {**genuine, "event": {**genuine["event"], "n": 12345678901234567890123}}
    huge_json = json.dumps(huge, sort_keys=True, separators=(",", ":")).encode()
    spaced = json.dumps(genuine, sort_keys=True).encode()  # same JSON, not RFC 8785 bytes
    other_header = {**header, "kid": "x"}
    items = [
        (_jws(header, huge_json), events[0].subject),
        (_jws(header, spaced), events[0].subject),
        (_jws(other_header, canonical_json(genuine)), events[0].subject),
        *((m.body, m.subject) for m in events),
    ]
    outcomes = mirror.accept_batch("COMMONS_EVENTS", items)
    assert outcomes == ["dropped", "dropped", "dropped", "stored", "stored", "stored"]
    assert [r for _, r in drops] == ["schema", "schema", "signature"]
    with transaction(rt.read_sessions) as session:
        stored = session.scalars(
            sa.select(NodeMessageRow.body).where(NodeMessageRow.stream == "COMMONS_EVENTS")
        ).all()
    assert sorted(stored) == sorted(m.body.decode() for m in events)


def test_a_covered_message_read_leniently_is_held_to_the_logs_bytes(
    runtime: Runtime, client: TestClient
) -> None:
    # A message is read once, leniently (last duplicate name wins, base64url as the
    # standard library decodes it); under a mirrored checkpoint it must then be the log's
    # exact bytes.  A second "event" member before the genuine one (which a first-wins
    # reader would take) and a payload segment with a character base64url lacks are both
    # refused, though their lenient reading is the genuine payload (four stray characters
    # keep the segment's length, so the lenient decoder skips them).
    mirror, drops, events = _covered(runtime, client, 2)
    header, payload_b64, signature = events[0].body.decode().split(".")
    genuine = _payload(events[0])
    forged = canonical_json({**genuine["event"], "actor": "p1:someone-else"})
    doubled = canonical_json(genuine).replace(b',"event":', b',"event":' + forged + b',"event":')
    assert json.loads(doubled) == genuine
    header_json = {"alg": "EdDSA", "typ": "commons-federation+jws"}
    stray = f"{header}.{payload_b64[:9]}!!!!{payload_b64[9:]}.{signature}".encode()
    items = [
        (_jws(header_json, doubled), events[0].subject),
        (stray, events[0].subject),
        *((m.body, m.subject) for m in events),
    ]
    outcomes = mirror.accept_batch("COMMONS_EVENTS", items)
    assert outcomes == ["dropped", "dropped", "stored", "stored"]
    assert [r for _, r in drops] == ["schema", "schema"]
    with transaction(runtime.read_sessions) as session:
        stored = session.scalars(
            sa.select(NodeMessageRow.body).where(NodeMessageRow.stream == "COMMONS_EVENTS")
        ).all()
    assert sorted(stored) == sorted(m.body.decode() for m in events)


def test_sparse_leaf_lookups_read_the_leaves_named(runtime: Runtime, client: TestClient) -> None:
    # A batch naming leaf 0 beside a high index is read by the indexes named (not the range
    # between them), with the same answer as dense lookups.
    rt = runtime
    _covered(rt, client, 12)  # the mirror stores the leaves under the checkpoints
    with transaction(rt.read_sessions) as session:
        size = node_store.tree_size(session)
        source = node_store.TreeSource(session)
        every = source.leaves(list(range(size)))
        assert len(every) == size > 10
        sparse = source.leaves([0, size - 1, size + 5])
    assert sparse == {0: every[0], size - 1: every[size - 1]}
