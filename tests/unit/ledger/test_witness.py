"""Unit tests of the witness (C2SP tlog-witness@v1.0.0): core rules, store, key file, HTTP
app and the log-side client, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from credit_commons.core.clock import FixedClock
from credit_commons.core.errors import (
    CommonsError,
    ConfigurationError,
    ExitCode,
    ValidationError,
)
from credit_commons.gateway import witness_app
from credit_commons.gateway.witness_app import (
    KEY_FILE,
    TLOG_SIZE,
    create_witness_app,
    load_or_create_key,
)
from credit_commons.ledger import note
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    TimestampedSignature,
    verify_cosigned,
)
from credit_commons.ledger.errors import VerifierKeyInvalid
from credit_commons.ledger.rfc6962 import (
    EMPTY_ROOT,
    Hash,
    InMemoryTree,
    consistency_proof,
    leaf_hash,
)
from credit_commons.ledger.witness import (
    AddCheckpointRequest,
    CheckpointUntrusted,
    ConsistencyRejected,
    OldSizeMismatch,
    OldSizeTooLarge,
    RequestMalformed,
    RootMismatch,
    SqlWitnessStore,
    TreeHead,
    UnknownLog,
    Witness,
    WitnessConfig,
)
from credit_commons.ledger.witness_client import (
    CollectResult,
    CosignatureRejected,
    WitnessEndpoint,
    WitnessRejected,
    WitnessUnreachable,
    collect_cosignatures,
)


def _key(i: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32)


ORIGIN = "log.example/credit"
LOG = note.Ed25519Signer.from_private_key(ORIGIN, _key(1))
IMPOSTOR = note.Ed25519Signer.from_private_key(ORIGIN, _key(9))  # same name, other key
W1 = CosignatureSigner.from_private_key("w1.example/witness", _key(2))
W2 = CosignatureSigner.from_private_key("w2.example/witness", _key(3))
T = 1_700_000_000


def tree(n: int, salt: bytes = b"") -> InMemoryTree:
    return InMemoryTree(leaf_hash(salt + b"entry %d" % i) for i in range(n))


def signed(t: InMemoryTree, size: int, *signers: note.Signer, origin: str = ORIGIN) -> str:
    text = Checkpoint(origin, size, t.root(size)).format()
    return note.sign_note(text, *(signers or (LOG,)))


def body(t: InMemoryTree, old: int, size: int, *, checkpoint: str | None = None) -> bytes:
    proof = consistency_proof(old, size, t) if 0 < old < size else ()
    return AddCheckpointRequest(old, proof, checkpoint or signed(t, size)).format()


def config(signer: CosignatureSigner = W1) -> WitnessConfig:
    return WitnessConfig(signer, {ORIGIN: [LOG.verifier().vkey]})


@pytest.fixture
def store(backend_url: str) -> Iterator[SqlWitnessStore]:
    opened = SqlWitnessStore.open(backend_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def witness(store: SqlWitnessStore) -> Witness:
    return Witness(config(), store)


LOG_TREE = tree(300)


# -- core rules, in spec order --------------------------------------------------------------


def test_first_checkpoint_is_cosigned_and_recorded(witness: Witness) -> None:
    checkpoint = signed(LOG_TREE, 5)
    lines = witness.add_checkpoint(body(LOG_TREE, 0, 5), T)
    assert len(lines) == 1
    assert lines[0].startswith("— w1.example/witness ")
    assert lines[0].endswith("\n")
    cosigned = note.parse_note(checkpoint).with_signatures(note.Signature.parse_line(lines[0][:-1]))
    verified = verify_cosigned(cosigned.format(), LOG.verifier(), [W1.verifier()], 1)
    assert verified.cosigners[0].timestamp == T
    assert witness.store.latest(ORIGIN) == TreeHead(5, LOG_TREE.root(5))


def test_growing_log_and_repeated_checkpoint(witness: Witness) -> None:
    old = 0
    for size in (1, 2, 3, 7, 8, 9, 64, 65, 255, 300):
        witness.add_checkpoint(body(LOG_TREE, old, size), T + size)
        old = size
    # The same checkpoint again (equal sizes, equal roots, empty proof) is cosigned again.
    assert witness.add_checkpoint(body(LOG_TREE, 300, 300), T + 1000)
    assert witness.store.latest(ORIGIN) == TreeHead(300, LOG_TREE.root())


def test_unknown_origin_is_404(witness: Witness) -> None:
    other = note.Ed25519Signer.from_private_key("other.example/log", _key(4))
    checkpoint = signed(LOG_TREE, 3, other, origin="other.example/log")
    with pytest.raises(UnknownLog) as caught:
        witness.add_checkpoint(body(LOG_TREE, 0, 3, checkpoint=checkpoint), T)
    assert caught.value.status == 404


def _flip_signature(checkpoint: str) -> str:
    text, _, line = checkpoint[:-1].rpartition("\n")
    sig = note.Signature.parse_line(line)
    flipped = bytes([sig.signature[0] ^ 1]) + sig.signature[1:]
    return text + "\n" + note.Signature(sig.name, sig.key_id, flipped).line()


def _cosigned_only(text: str) -> str:
    return note.Note(text, (W1.cosign(text, T),)).format()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: signed(LOG_TREE, 4, IMPOSTOR), id="only-unknown-key"),
        pytest.param(lambda: _flip_signature(signed(LOG_TREE, 4)), id="bad-trusted-signature"),
        pytest.param(
            lambda: _cosigned_only(Checkpoint(ORIGIN, 4, LOG_TREE.root(4)).format()),
            id="cosigned-only",
        ),
    ],
)
def test_no_trusted_signature_is_403(witness: Witness, make: Callable[[], str]) -> None:
    with pytest.raises(CheckpointUntrusted) as caught:
        witness.add_checkpoint(body(LOG_TREE, 0, 4, checkpoint=make()), T)
    assert caught.value.status == 403
    assert witness.store.latest(ORIGIN) is None


def test_unknown_signatures_are_ignored(witness: Witness) -> None:
    checkpoint = signed(LOG_TREE, 4, IMPOSTOR, LOG)
    assert witness.add_checkpoint(body(LOG_TREE, 0, 4, checkpoint=checkpoint), T)


def test_old_size_past_checkpoint_is_400(witness: Witness) -> None:
    request = AddCheckpointRequest(6, (), signed(LOG_TREE, 5)).format()
    with pytest.raises(OldSizeTooLarge) as caught:
        witness.add_checkpoint(request, T)
    assert caught.value.status == 400


def test_old_size_mismatch_is_409_with_recorded_size(witness: Witness) -> None:
    with pytest.raises(OldSizeMismatch) as caught:
        witness.add_checkpoint(body(LOG_TREE, 3, 5), T)
    assert (caught.value.status, caught.value.recorded_size) == (409, 0)
    witness.add_checkpoint(body(LOG_TREE, 0, 5), T)
    for old in (0, 4, 6):
        with pytest.raises(OldSizeMismatch) as caught:
            witness.add_checkpoint(body(LOG_TREE, old, 9), T)
        assert caught.value.recorded_size == 5


def test_same_size_other_root_is_409(witness: Witness) -> None:
    witness.add_checkpoint(body(LOG_TREE, 0, 5), T)
    fork = tree(5, b"fork")
    with pytest.raises(RootMismatch) as caught:
        witness.add_checkpoint(body(fork, 5, 5), T)
    assert caught.value.status == 409
    assert witness.store.latest(ORIGIN) == TreeHead(5, LOG_TREE.root(5))


def test_empty_tree_checkpoint(witness: Witness) -> None:
    empty = AddCheckpointRequest(0, (), signed(InMemoryTree(), 0)).format()
    assert witness.add_checkpoint(empty, T)
    assert witness.store.latest(ORIGIN) == TreeHead(0, EMPTY_ROOT)
    bogus = note.sign_note(Checkpoint(ORIGIN, 0, leaf_hash(b"x")).format(), LOG)
    with pytest.raises(RootMismatch):
        witness.add_checkpoint(AddCheckpointRequest(0, (), bogus).format(), T)


def _tampered_proofs() -> list[tuple[str, tuple[Hash, ...]]]:
    good = consistency_proof(13, 40, LOG_TREE)
    flipped = Hash(bytes([good[1][0] ^ 0x80]) + good[1][1:])
    fork = tree(40, b"fork")
    return [
        ("bit-flip", (good[0], flipped, *good[2:])),
        ("truncated", good[:-1]),
        ("extended", (*good, good[0])),
        ("swapped", (good[1], good[0], *good[2:])),
        ("empty", ()),
        ("other-tree", consistency_proof(13, 40, fork)),
    ]


@pytest.mark.parametrize(("label", "proof"), _tampered_proofs(), ids=lambda v: str(v)[:12])
def test_bad_consistency_proof_is_422(
    witness: Witness, label: str, proof: tuple[Hash, ...]
) -> None:
    witness.add_checkpoint(body(LOG_TREE, 0, 13), T)
    request = AddCheckpointRequest(13, proof, signed(LOG_TREE, 40)).format()
    with pytest.raises(ConsistencyRejected) as caught:
        witness.add_checkpoint(request, T)
    assert caught.value.status == 422, label
    assert witness.store.latest(ORIGIN) == TreeHead(13, LOG_TREE.root(13))


def test_forked_larger_tree_is_422(witness: Witness) -> None:
    witness.add_checkpoint(body(LOG_TREE, 0, 13), T)
    # The first ten entries are the log's; the fork rewrites entries 10-12 and grows on.
    fork = tree(10)
    fork.extend(leaf_hash(b"forged %d" % i) for i in range(30))
    with pytest.raises(ConsistencyRejected):
        witness.add_checkpoint(body(fork, 13, 40), T)
    assert witness.store.latest(ORIGIN) == TreeHead(13, LOG_TREE.root(13))


def test_proof_must_be_empty_from_zero_and_at_equal_sizes(witness: Witness) -> None:
    proof = consistency_proof(3, 5, LOG_TREE)
    with pytest.raises(ConsistencyRejected, match="old size is 0"):
        witness.add_checkpoint(AddCheckpointRequest(0, proof, signed(LOG_TREE, 5)).format(), T)
    witness.add_checkpoint(body(LOG_TREE, 0, 5), T)
    with pytest.raises(ConsistencyRejected, match="equal sizes"):
        witness.add_checkpoint(AddCheckpointRequest(5, proof, signed(LOG_TREE, 5)).format(), T)


GOOD = signed(LOG_TREE, 5)
H = LOG_TREE.root(2).b64()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"old 0\n" + GOOD.encode(),  # no empty line
        b"old 0\n\n",  # no checkpoint
        b"old 00\n\n" + GOOD.encode(),
        b"old -1\n\n" + GOOD.encode(),
        b"old +1\n\n" + GOOD.encode(),
        b"old 1 \n\n" + GOOD.encode(),
        b"Old 0\n\n" + GOOD.encode(),
        b"old  0\n\n" + GOOD.encode(),
        b"old 0\r\n\r\n" + GOOD.encode(),
        b"0\n\n" + GOOD.encode(),
        b"old 18446744073709551616\n\n" + GOOD.encode(),  # 2**64
        b"old 0\nnot base64\n\n" + GOOD.encode(),
        b"old 0\n" + H[:-2].encode() + b"\n\n" + GOOD.encode(),  # 31 bytes
        b"old 0\n" + H.encode() + b"AAAA\n\n" + GOOD.encode(),
        b"old 0\n\n" + GOOD.encode()[:-1],  # checkpoint note without final newline
        b"old 0\n\n" + GOOD.replace("\n5\n", "\n05\n").encode(),
        b"old 0\n\n" + GOOD.replace("\n5\n", "\n5\n\n").encode(),
        b"old 0\n\n\xff" + GOOD.encode(),
        b"old 0\n\n" + GOOD.replace("credit", "cre\x01dit").encode(),
        b"old 0\n\n" + Checkpoint(ORIGIN, 5, LOG_TREE.root(5)).format().encode(),  # unsigned
        b"old 0\n" + (H.encode() + b"\n") * 64 + b"\n" + GOOD.encode(),
    ],
    ids=lambda raw: repr(raw[:24]),
)
def test_malformed_bodies_are_400(witness: Witness, raw: bytes) -> None:
    with pytest.raises(RequestMalformed) as caught:
        witness.add_checkpoint(raw, T)
    assert caught.value.status == 400


def test_request_format_round_trip_and_proof_line_limit() -> None:
    proof = (LOG_TREE.root(1),) * 63
    request = AddCheckpointRequest(7, proof, GOOD)
    assert request.format().startswith(b"old 7\n" + proof[0].b64().encode() + b"\n")
    assert request.format().endswith(b"\n\n" + GOOD.encode())
    assert AddCheckpointRequest.parse(request.format()) == request
    with pytest.raises(RequestMalformed, match="63"):
        AddCheckpointRequest(7, (*proof, proof[0]), GOOD)
    with pytest.raises(RequestMalformed):
        AddCheckpointRequest(-1, (), GOOD)
    with pytest.raises(RequestMalformed):
        AddCheckpointRequest(1, (b"short",), GOOD)  # type: ignore[arg-type]


def test_now_must_be_a_cosignature_timestamp(witness: Witness) -> None:
    with pytest.raises(ValidationError):
        witness.add_checkpoint(body(LOG_TREE, 0, 5), 2**63)
    assert witness.store.latest(ORIGIN) is None


# -- atomicity ------------------------------------------------------------------------------


class RacingStore:
    """The real store, but another request runs between the read and the write."""

    def __init__(self, inner: SqlWitnessStore, race: Callable[[], object]) -> None:
        self.inner = inner
        self.race: Callable[[], object] | None = race

    def latest(self, origin: str, /) -> TreeHead | None:
        head = self.inner.latest(origin)
        if self.race is not None:
            race, self.race = self.race, None
            race()
        return head

    def compare_and_set(
        self, origin: str, expected: TreeHead | None, new: TreeHead, *, now: int
    ) -> None:
        self.inner.compare_and_set(origin, expected, new, now=now)


@pytest.mark.parametrize("start", [0, 4])
def test_concurrent_loser_gets_409_and_nothing_rolls_back(
    store: SqlWitnessStore, start: int
) -> None:
    # tlog-witness §add-checkpoint: request A (N) checked, B (N+K) checked and stored,
    # then A must not store N over N+K.
    honest = Witness(config(), store)
    if start:
        honest.add_checkpoint(body(LOG_TREE, 0, start), T)
    racing = Witness(
        config(), RacingStore(store, lambda: honest.add_checkpoint(body(LOG_TREE, start, 9), T))
    )
    with pytest.raises(OldSizeMismatch) as caught:
        racing.add_checkpoint(body(LOG_TREE, start, 6), T)
    assert caught.value.recorded_size == 9
    assert store.latest(ORIGIN) == TreeHead(9, LOG_TREE.root(9))


def test_threads_racing_from_the_same_size_one_wins(store: SqlWitnessStore) -> None:
    witness = Witness(config(), store)
    barrier = threading.Barrier(6)

    def submit(size: int) -> int | str:
        barrier.wait()
        try:
            witness.add_checkpoint(body(LOG_TREE, 0, size), T)
        except OldSizeMismatch as e:
            return f"409:{e.recorded_size}"
        return size

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(submit, range(10, 16)))
    winners = [o for o in outcomes if isinstance(o, int)]
    assert len(winners) == 1
    assert sorted(o for o in outcomes if isinstance(o, str)) == [f"409:{winners[0]}"] * 5
    assert store.latest(ORIGIN) == TreeHead(winners[0], LOG_TREE.root(winners[0]))


def test_state_survives_restart(backend_url: str) -> None:
    first = SqlWitnessStore.open(backend_url)
    Witness(config(), first).add_checkpoint(body(LOG_TREE, 0, 2**5), T)
    first.close()
    again = SqlWitnessStore.open(backend_url)
    try:
        assert again.latest(ORIGIN) == TreeHead(32, LOG_TREE.root(32))
        with pytest.raises(OldSizeMismatch):
            Witness(config(), again).add_checkpoint(body(LOG_TREE, 0, 40), T)
        Witness(config(), again).add_checkpoint(body(LOG_TREE, 32, 40), T)
        assert again.latest(ORIGIN) == TreeHead(40, LOG_TREE.root(40))
    finally:
        again.close()


def test_store_keeps_uint64_sizes_exactly(store: SqlWitnessStore) -> None:
    head = TreeHead(2**64 - 1, leaf_hash(b"r"))
    store.compare_and_set(ORIGIN, None, head, now=T)
    assert store.latest(ORIGIN) == head
    with pytest.raises(OldSizeMismatch) as caught:
        store.compare_and_set(ORIGIN, None, TreeHead(1, leaf_hash(b"r")), now=T)
    assert caught.value.recorded_size == 2**64 - 1


# -- configuration and key file -------------------------------------------------------------


def test_config_validation() -> None:
    assert config().name == "w1.example/witness"
    assert CosignatureVerifier.from_vkey(config().vkey) == W1.verifier()
    vkey = LOG.verifier().vkey
    bad: list[dict[str, list[str]]] = [
        {},
        {ORIGIN: []},
        {"": [vkey]},
        {"two\nlines": [vkey]},
        {ORIGIN: ["not a vkey"]},
        {ORIGIN: [W2.verifier().vkey]},  # a cosignature key is not a log key
        {ORIGIN: [vkey[:19] + "00000000" + vkey[27:]]},  # wrong key ID
    ]
    for logs in bad:
        with pytest.raises(ConfigurationError):
            WitnessConfig(W1, logs)
    # Several keys per origin (key rotation) are fine, and the mapping is frozen.
    rotated = WitnessConfig(W1, {ORIGIN: [vkey, IMPOSTOR.verifier().vkey]})
    assert len(rotated.verifiers[ORIGIN]) == 2
    with pytest.raises(TypeError):
        rotated.logs[ORIGIN] = ()  # type: ignore[index]


def test_key_file_created_0600_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "data" / KEY_FILE
    signer = load_or_create_key(path, "w1.example/witness")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("PRIVATE+KEY+w1.example/witness+")
    again = load_or_create_key(path, "w1.example/witness")
    assert again.public_key == signer.public_key
    line = again.cosign(Checkpoint(ORIGIN, 1, LOG_TREE.root(1)).format(), T)
    assert line.key_id == signer.verifier().key_id
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]


def test_key_file_refusals(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    load_or_create_key(path, "w1.example/witness")
    with pytest.raises(ConfigurationError, match="belongs to witness"):
        load_or_create_key(path, "w2.example/witness")
    os.chmod(path, 0o640)
    with pytest.raises(ConfigurationError, match="other users"):
        load_or_create_key(path, "w1.example/witness")
    os.chmod(path, 0o600)
    path.write_text("PRIVATE+KEY+garbage\n")
    with pytest.raises(ConfigurationError, match="malformed"):
        load_or_create_key(path, "w1.example/witness")
    with pytest.raises(ConfigurationError, match="name"):
        load_or_create_key(tmp_path / "other.key", "bad name")


# -- HTTP app -------------------------------------------------------------------------------


@pytest.fixture
def app_client(store: SqlWitnessStore) -> Iterator[TestClient]:
    clock = FixedClock(datetime.fromtimestamp(T, UTC))
    with TestClient(create_witness_app(config(), store, clock, max_body_bytes=4096)) as client:
        yield client


def test_http_add_checkpoint_statuses(app_client: TestClient) -> None:
    ok = app_client.post("/add-checkpoint", content=body(LOG_TREE, 0, 5))
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert ok.text.startswith("— w1.example/witness ")
    assert ok.text.endswith("\n")
    assert ok.text.count("\n") == 1

    conflict = app_client.post("/add-checkpoint", content=body(LOG_TREE, 0, 9))
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "text/x.tlog.size"
    assert conflict.content == b"5\n"

    fork = app_client.post("/add-checkpoint", content=body(tree(5, b"fork"), 5, 5))
    assert (fork.status_code, fork.json()["code"]) == (409, "witness.root_mismatch")
    assert fork.headers["content-type"] == "application/problem+json"

    cases = [
        (AddCheckpointRequest(5, (), signed(LOG_TREE, 9)).format(), 422),
        (body(LOG_TREE, 9, 9)[:-3], 400),
        (AddCheckpointRequest(9, (), signed(LOG_TREE, 5)).format(), 400),
        (body(LOG_TREE, 0, 3, checkpoint=signed(LOG_TREE, 3, IMPOSTOR)), 403),
        (body(LOG_TREE, 0, 3, checkpoint=signed(LOG_TREE, 3, origin="x.example/log")), 404),
        (b"old 0\n\n" + b"x" * 5000, 413),
    ]
    for raw, status in cases:
        response = app_client.post("/add-checkpoint", content=raw)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert app_client.get("/add-checkpoint").status_code == 405
    assert app_client.get("/healthz").json() == {"status": "ok"}


def test_http_streamed_body_over_limit_is_413(app_client: TestClient) -> None:
    chunks = iter([b"old 0\n\n", b"y" * 3000, b"y" * 3000])
    assert app_client.post("/add-checkpoint", content=chunks).status_code == 413


# -- log-side client ------------------------------------------------------------------------


def bridge(
    apps: dict[str, TestClient], seen: list[httpx.Request] | None = None
) -> httpx.MockTransport:
    """An httpx transport that hands each request to the in-process app of its host."""

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        client = apps.get(request.url.host)
        if client is None:
            raise httpx.ConnectError("connection refused", request=request)
        answer = client.post(request.url.path, content=request.content)
        return httpx.Response(
            answer.status_code,
            headers={"content-type": answer.headers["content-type"]},
            content=answer.content,
        )

    return httpx.MockTransport(handle)


@pytest.fixture
def two_witnesses(backend_url: str, tmp_path: Path) -> Iterator[dict[str, TestClient]]:
    clock = FixedClock(datetime.fromtimestamp(T, UTC))
    # Each witness has its own database: the backend under test, and a SQLite file.
    stores = [
        SqlWitnessStore.open(backend_url),
        SqlWitnessStore.open(f"sqlite:///{tmp_path}/w2.db"),
    ]
    apps = [
        create_witness_app(config(s), st, clock) for s, st in zip((W1, W2), stores, strict=True)
    ]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        yield {"w1.test": first, "w2.test": second}
    for opened in stores:
        opened.close()


ENDPOINTS = [
    WitnessEndpoint("http://w1.test", W1.verifier().vkey),
    WitnessEndpoint("http://w2.test/", W2.verifier().vkey),
]


def proofs(t: InMemoryTree) -> Callable[[int, int], tuple[Hash, ...]]:
    return lambda old, new: consistency_proof(old, new, t)


def test_client_collects_from_all_and_retries_once_on_409(
    two_witnesses: dict[str, TestClient],
) -> None:
    sizes: dict[str, int] = {}
    for size in (3, 17, 18):
        checkpoint = signed(LOG_TREE, size)
        result = collect_cosignatures(
            checkpoint, witnesses=ENDPOINTS, last_known_size=sizes,
            proof_for=proofs(LOG_TREE), transport=bridge(two_witnesses),
        )  # fmt: skip
        assert not result.failures
        assert {c.size for c in result.cosignatures.values()} == {size}
        sizes.update({n: c.size for n, c in result.cosignatures.items()})
        cosigned = result.cosigned_note(checkpoint)
        verify_cosigned(cosigned, LOG.verifier(), [e.verifier for e in ENDPOINTS], 2)
        assert set(result.signature_lines()) == {"w1.example/witness", "w2.example/witness"}
    # The log lost its record: each witness answers 409 with its size, then cosigns.
    seen: list[httpx.Request] = []
    result = collect_cosignatures(
        signed(LOG_TREE, 30), witnesses=ENDPOINTS, last_known_size=lambda _: None,
        proof_for=proofs(LOG_TREE), transport=bridge(two_witnesses, seen),
    )  # fmt: skip
    assert not result.failures
    assert [r.content.split(b"\n")[0] for r in seen] == [b"old 0", b"old 18"] * 2


def test_client_reports_failures_per_witness(two_witnesses: dict[str, TestClient]) -> None:
    transport = bridge(two_witnesses)

    def collect(t: InMemoryTree, size: int, known: dict[str, int]) -> CollectResult:
        return collect_cosignatures(
            signed(t, size), witnesses=ENDPOINTS, last_known_size=known,
            proof_for=proofs(t), transport=transport,
        )  # fmt: skip

    assert not collect(LOG_TREE, 20, {}).failures
    known = {e.name: 20 for e in ENDPOINTS}
    fork = tree(40, b"fork")
    same_size, bigger = collect(fork, 20, known), collect(fork, 40, known)
    older = collect(LOG_TREE, 10, {})
    for result, status, size in ((same_size, 409, None), (bigger, 422, None), (older, 409, 20)):
        assert not result.cosignatures
        assert set(result.failures) == {e.name for e in ENDPOINTS}
        for failure in result.failures.values():
            assert isinstance(failure.error, WitnessRejected)
            assert (failure.error.http_status, failure.size) == (status, size)

    # One witness down, the other still cosigns.
    partial = collect_cosignatures(
        signed(LOG_TREE, 25), witnesses=ENDPOINTS, last_known_size=known,
        proof_for=proofs(LOG_TREE), transport=bridge({"w2.test": two_witnesses["w2.test"]}),
    )  # fmt: skip
    assert list(partial.cosignatures) == ["w2.example/witness"]
    assert isinstance(partial.failures["w1.example/witness"].error, WitnessUnreachable)

    def broken(old: int, new: int) -> tuple[Hash, ...]:
        raise ConfigurationError("tiles missing")

    failed = collect_cosignatures(
        signed(LOG_TREE, 26), witnesses=ENDPOINTS[:1], last_known_size=known,
        proof_for=broken, transport=transport,
    )  # fmt: skip
    assert isinstance(failed.failures["w1.example/witness"].error, ConfigurationError)


def _answering(content: bytes, status: int = 200) -> httpx.MockTransport:
    return httpx.MockTransport(lambda _: httpx.Response(status, content=content))


CHECKPOINT_TEXT = Checkpoint(ORIGIN, 5, LOG_TREE.root(5)).format()


def _raw_cosignature(text: str) -> bytes:
    """A W1 cosignature line over any text, even one that is not a checkpoint."""
    signature = _key(2).sign(b"cosignature/v1\ntime %d\n" % T + text.encode())
    stamped = TimestampedSignature(T, signature).to_bytes()
    return note.Signature(W1.name, W1.key_id, stamped).line().encode()


OTHER_TEXT = Checkpoint(ORIGIN, 5, LOG_TREE.root(4)).format()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", CosignatureRejected),
        (b"hello\n", CosignatureRejected),
        (W2.cosign(CHECKPOINT_TEXT, T).line().encode(), CosignatureRejected),  # unknown key
        (W1.cosign(OTHER_TEXT, T).line().encode(), CosignatureRejected),  # other checkpoint
        (b"\n" + _raw_cosignature(CHECKPOINT_TEXT + "\n"), CosignatureRejected),
        (b"- " + W1.cosign(CHECKPOINT_TEXT, T).line().encode()[4:], CosignatureRejected),
        (b"x" * 70_000, WitnessUnreachable),
    ],
    ids=["empty", "junk", "other-witness", "other-text", "blank-line-trick", "dash", "huge"],
)
def test_client_never_trusts_witness_bytes(answer: bytes, error: type[CommonsError]) -> None:
    result = collect_cosignatures(
        note.sign_note(CHECKPOINT_TEXT, LOG), witnesses=ENDPOINTS[:1], last_known_size={},
        proof_for=proofs(LOG_TREE), transport=_answering(answer),
    )  # fmt: skip
    assert not result.cosignatures
    assert isinstance(result.failures["w1.example/witness"].error, error)


def test_client_accepts_valid_line_among_unknown_ones() -> None:
    answer = W2.cosign(CHECKPOINT_TEXT, T).line() + W1.cosign(CHECKPOINT_TEXT, T + 1).line()
    result = collect_cosignatures(
        note.sign_note(CHECKPOINT_TEXT, LOG), witnesses=ENDPOINTS[:1], last_known_size={},
        proof_for=proofs(LOG_TREE), transport=_answering(answer.encode()),
    )  # fmt: skip
    cosig = result.cosignatures["w1.example/witness"]
    assert (cosig.timestamp, cosig.size) == (T + 1, 5)
    assert cosig.line == W1.cosign(CHECKPOINT_TEXT, T + 1).line()


def test_client_input_checks() -> None:
    with pytest.raises(ValidationError):
        WitnessEndpoint("ftp://w1.test", W1.verifier().vkey)
    with pytest.raises(VerifierKeyInvalid):
        WitnessEndpoint("http://w1.test", LOG.verifier().vkey)
    with pytest.raises(ValidationError):
        collect_cosignatures(
            signed(LOG_TREE, 5), witnesses=[ENDPOINTS[0], ENDPOINTS[0]], last_known_size={},
            proof_for=proofs(LOG_TREE),
        )  # fmt: skip
    malformed = httpx.MockTransport(
        lambda _: httpx.Response(409, headers={"content-type": TLOG_SIZE}, content=b"five\n")
    )
    result = collect_cosignatures(
        signed(LOG_TREE, 5), witnesses=ENDPOINTS[:1], last_known_size={},
        proof_for=proofs(LOG_TREE), transport=malformed,
    )  # fmt: skip
    assert isinstance(result.failures["w1.example/witness"].error, WitnessRejected)


# -- the program entry point ----------------------------------------------------------------


@pytest.fixture
def quiet_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() configures process-wide logging; leave pytest's handlers alone."""
    monkeypatch.setattr(
        "credit_commons.gateway.witness_app.configure_logging", lambda level="INFO": None
    )


@pytest.mark.usefixtures("quiet_logging")
def test_main_prints_vkey_and_serves_configured_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: dict[str, object] = {}

    def fake_run(app: object, **options: object) -> None:
        served.update(options, app=app)

    monkeypatch.setattr("uvicorn.run", fake_run)
    other = note.Ed25519Signer.from_private_key("other-key-name", _key(5))
    argv = [
        "--data-dir", str(tmp_path / "w"), "--name", W1.name,
        "--log-key", LOG.verifier().vkey, "--log", "other.example/log", other.verifier().vkey,
        "--port", "7399",
    ]  # fmt: skip
    assert witness_app.main(argv) == 0
    out, _ = capsys.readouterr()
    vkey = json.loads(out.splitlines()[0])["witness_vkey"]
    assert CosignatureVerifier.from_vkey(vkey).name == W1.name
    assert (served["host"], served["port"]) == ("127.0.0.1", 7399)
    assert (tmp_path / "w" / "witness.db").exists()

    # The same data directory keeps its key; both logs are trusted.
    assert witness_app.main(argv) == 0
    assert json.loads(capsys.readouterr()[0])["witness_vkey"] == vkey
    app = served["app"]
    assert isinstance(app, FastAPI)
    other_tree = tree(3, b"other")
    other_note = signed(other_tree, 3, other, origin="other.example/log")
    with TestClient(app) as client:
        for raw in (body(LOG_TREE, 0, 3), body(other_tree, 0, 3, checkpoint=other_note)):
            assert client.post("/add-checkpoint", content=raw).status_code == 200


@pytest.mark.parametrize(
    ("extra", "name"),
    [(["--log-key", "not-a-vkey"], W1.name), ([], W1.name), ([], "bad name")],
    ids=["bad-log-key", "no-logs", "bad-witness-name"],
)
@pytest.mark.usefixtures("quiet_logging")
def test_main_refuses_bad_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], name: str
) -> None:
    argv = ["--data-dir", str(tmp_path), "--name", name, *extra]
    assert witness_app.main(argv) == ExitCode.CONFIGURATION
    out, err = capsys.readouterr()
    assert out == ""
    assert "config.invalid" in err
