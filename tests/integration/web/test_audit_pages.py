"""The public log explorer (``/audit``) through the HTTP app, on SQLite and PostgreSQL: the
latest checkpoint and its witnesses, an entry, a receipt's checks (genuine, tampered,
malformed, pending), a kept checkpoint (consistent, forked, another log, a changed
signature, malformed), input bounds, and no sign-in anywhere."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate

from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.core.settings import Settings
from credit_commons.events import record_event
from credit_commons.gateway.app import create_app
from credit_commons.gateway.route_groups import classify
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger import pending_receipt
from credit_commons.ledger import service as log_service
from credit_commons.ledger.cosignature import CosignatureSigner
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.note import Ed25519Signer, parse_note, sign_note
from credit_commons.ledger.sequencer import sequence_pending
from credit_commons.ledger.steps import parse_witnesses, witness_step
from credit_commons.ledger.witness import SqlWitnessStore, Witness, WitnessConfig
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime
from credit_commons.web.audit import MAX_PASTE

LOOPBACK = "http://127.0.0.1:8000"
HTML = {"Accept": "text/html"}


def grow(runtime: Runtime, count: int) -> list[str]:
    """Record ``count`` events; their ids."""
    ids = []
    with transaction(runtime.sessions) as session:
        for i in range(count):
            recorded = record_event(
                session,
                KeyRotated(key_name="k", version=i + 1, key_type=KeyType.ED25519, kid=f"k{i}"),
                actor=runtime.operator_actor(),
                at=runtime.clock.now(),
            )
            ids.append(recorded.id)
    return ids


def checkpoint(runtime: Runtime) -> str:
    """Sequence and sign; the latest checkpoint note with its cosignatures."""
    LogWorker(runtime, steps=[]).run_once(force_checkpoint=True)
    with transaction(runtime.read_sessions) as session:
        row = log_service.latest_checkpoint(session)
        assert row is not None
        return log_service.checkpoint_with_cosignatures(session, row)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def paste(client: TestClient, field: str, text: str) -> httpx.Response:
    """Paste ``text`` in the form of ``/audit/<field>`` and send it, as a browser does."""
    form = client.get(f"/audit/{field}")
    found = _CSRF.search(form.text)
    assert found is not None, "the form has no CSRF token"
    return client.post(f"/audit/{field}", data={field: text, "csrf_token": found.group(1)})


def text_of(response: httpx.Response) -> str:
    """The page's visible words, tags removed and whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


@pytest.fixture
def browser(runtime: Runtime, settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings, runtime=runtime), base_url=LOOPBACK, raise_server_exceptions=False
    ) as client:
        client.headers.update(HTML)
        yield client


def receipt_of(runtime: Runtime, event_id: str) -> dict[str, Any]:
    with transaction(runtime.read_sessions) as session:
        found = log_service.receipt(session, event_id, include_event=True)
    document: dict[str, Any] = found.model_dump(mode="json", exclude_none=True)
    return document


def test_before_any_checkpoint_every_page_answers(browser: TestClient) -> None:
    page = browser.get("/audit")
    assert page.status_code == 200
    assert "The log has no checkpoint yet" in text_of(page)
    assert browser.get("/audit/entry", params={"index": "0"}).status_code == 400
    for path in ("/audit/entry", "/audit/receipt", "/audit/checkpoint"):
        assert browser.get(path).status_code == 200


def test_latest_checkpoint_page(runtime: Runtime, browser: TestClient) -> None:
    grow(runtime, 3)
    note = checkpoint(runtime)
    page = browser.get("/audit")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    words = text_of(page)
    identity = log_identity(runtime)
    assert identity.origin in words
    assert identity.vkey in words
    assert note.strip() in html.unescape(page.text)  # the signed note, as text
    assert "Verified with the log's key" in words
    assert "No witness has cosigned this checkpoint." in words
    assert len(page.content) < 100_000


def test_entry_lookup(runtime: Runtime, browser: TestClient) -> None:
    ids = grow(runtime, 5)
    checkpoint(runtime)
    page = browser.get("/audit/entry", params={"index": "3"})
    assert page.status_code == 200
    words = text_of(page)
    assert ids[3] in words
    assert "key.rotated" in words
    assert "Proved: this entry is in the log's signed checkpoint of size 5." in words
    grow(runtime, 1)
    sequence_pending(runtime.sessions, limit=100)  # sequenced, not yet checkpointed
    waiting = text_of(browser.get("/audit/entry", params={"index": "5"}))
    assert "The next checkpoint will include this entry." in waiting


@pytest.mark.parametrize("index", ["-1", "abc", "1.5", "٣", str(2**64), " ", "9" * 5000])
def test_entry_lookup_refuses_what_is_not_a_position(
    runtime: Runtime, browser: TestClient, index: str
) -> None:
    page = browser.get("/audit/entry", params={"index": index})
    assert page.status_code == 400
    assert 'aria-invalid="true"' in page.text
    assert "Write the position as a whole number" in text_of(page)


def test_entry_beyond_the_log(runtime: Runtime, browser: TestClient) -> None:
    grow(runtime, 2)
    checkpoint(runtime)
    page = browser.get("/audit/entry", params={"index": "9"})
    assert page.status_code == 400
    assert "the log holds 2 entries" in text_of(page)


def test_a_genuine_receipt_passes_every_check(runtime: Runtime, browser: TestClient) -> None:
    ids = grow(runtime, 4)
    old = checkpoint(runtime)
    grow(runtime, 3)
    checkpoint(runtime)
    document = receipt_of(runtime, ids[1])
    # A receipt handed out at size 4, checked against today's size 7.
    document["checkpoint"] = old
    document["inclusion_proof"] = _proof_at(runtime, 1, 4)
    page = paste(browser, "receipt", json.dumps(document, indent=2))
    assert page.status_code == 200, text_of(page)
    words = text_of(page)
    assert "The receipt is valid" in words
    assert words.count("Check passed") == 4
    assert "and the event matches the entry" in words
    assert "Today's checkpoint (size 7) extends the receipt's (size 4)." in words
    by_id = text_of(browser.get("/audit/receipt", params={"event": ids[2]}))
    assert "The receipt is valid" in by_id
    assert by_id.count("Check passed") == 4


def _proof_at(runtime: Runtime, index: int, size: int) -> list[str]:
    with transaction(runtime.read_sessions) as session:
        return log_service.inclusion_proof(session, index, size).proof


def _tamper(text: str, position: int) -> str:
    swapped = "B" if text[position] != "B" else "C"
    return text[:position] + swapped + text[position + 1 :]


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("checkpoint-root", "The log's signature does not match"),
        ("checkpoint-signature", "The log's signature does not match"),
        ("proof", "The proof does not lead from the entry to the checkpoint"),
        ("entry", "The proof does not lead from the entry to the checkpoint"),
        ("event", "The entry or the event in the receipt is malformed or does not match."),
        ("index", "The proof does not lead from the entry to the checkpoint"),
    ],
)
def test_one_changed_character_fails_the_receipt(
    runtime: Runtime, browser: TestClient, member: str, expected: str
) -> None:
    ids = grow(runtime, 6)
    checkpoint(runtime)
    document = receipt_of(runtime, ids[2])
    if member == "checkpoint-root":
        lines = document["checkpoint"].split("\n")
        lines[2] = _tamper(lines[2], 5)
        document["checkpoint"] = "\n".join(lines)
    elif member == "checkpoint-signature":
        note = document["checkpoint"]
        document["checkpoint"] = _tamper(note, len(note) - 10)
    elif member == "proof":
        document["inclusion_proof"][0] = _tamper(document["inclusion_proof"][0], 3)
    elif member == "event":
        document["event"]["actor"] = _tamper(document["event"]["actor"], 4)
    elif member == "entry":
        document["entry"] = document["entry"].replace(
            '"type":"key.rotated"', '"type":"key.rotatee"'
        )
    else:
        document["index"] = 3
    page = paste(browser, "receipt", json.dumps(document))
    assert page.status_code == 200
    words = text_of(page)
    assert "The receipt is not valid" in words
    assert expected in words
    assert "Check failed" in words


def test_the_entry_changed_with_its_event_fails_against_today(
    runtime: Runtime, browser: TestClient
) -> None:
    # A public receipt (no event) whose entry names another event of the log: its own proof
    # fails, so today's check is not run.
    ids = grow(runtime, 3)
    checkpoint(runtime)
    document = receipt_of(runtime, ids[0])
    del document["event"]
    document["entry"] = receipt_of(runtime, ids[1])["entry"]
    words = text_of(paste(browser, "receipt", json.dumps(document)))
    assert "The receipt is not valid" in words
    assert "Not checked: an earlier check failed." in words


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("{not json", "it is not valid JSON (line 1, column 2)"),
        ("[1, 2]", "A receipt is a JSON object"),
        ('{"format": "other"}', 'its "format" is not credit-commons-receipt/v1'),
        ('{"format": "credit-commons-receipt/v1"}', 'The receipt has no "entry"'),
        (
            '{"format": "credit-commons-receipt/v1", "entry": "{}"}',
            'neither a "checkpoint" nor a "signed_entry"',
        ),
        (
            '{"format": "credit-commons-receipt/v1", "entry": "{}", "checkpoint": "x", '
            '"index": -1, "inclusion_proof": []}',
            '"index" must be a whole number',
        ),
        (
            '{"format": "credit-commons-receipt/v1", "entry": "{}", "checkpoint": "x", '
            '"index": 0, "inclusion_proof": [1]}',
            '"inclusion_proof" must be a list of hashes',
        ),
        ('{"format": "credit-commons-receipt/v1", "entry": "{}", "checkpoint": 5}', "as text"),
        ("[" * 5000, "This is not a receipt: it is not valid JSON."),
        ('{"index": ' + "9" * 5000 + "}", "This is not a receipt: it is not valid JSON."),
        ('{"format": "credit-commons-receipt/v1", "entry": "\\ud800"}', "not valid JSON."),
    ],
)
def test_a_malformed_receipt_is_a_field_error(
    runtime: Runtime, browser: TestClient, pasted: str, expected: str
) -> None:
    page = paste(browser, "receipt", pasted)
    assert page.status_code == 400
    words = text_of(page)
    assert expected in words
    assert "There is a problem" in words
    assert 'id="error-receipt"' in page.text
    assert 'aria-invalid="true"' in page.text


def test_a_receipt_with_garbage_inside_fails_without_an_error_page(
    runtime: Runtime, browser: TestClient
) -> None:
    grow(runtime, 2)
    checkpoint(runtime)
    document = {
        "format": "credit-commons-receipt/v1",
        "entry": "not an entry",
        "checkpoint": "garbage\n",
        "index": 0,
        "inclusion_proof": ["%%%"],
    }
    page = paste(browser, "receipt", json.dumps(document))
    assert page.status_code == 200
    assert "The checkpoint in the receipt is not a signed checkpoint." in text_of(page)


def test_receipt_inputs_are_bounded_and_checked(runtime: Runtime, browser: TestClient) -> None:
    too_long = paste(browser, "receipt", "x" * (MAX_PASTE + 1))
    assert too_long.status_code == 400
    assert "This is too long for a receipt: at most 8,192 characters." in text_of(too_long)
    bad_id = browser.get("/audit/receipt", params={"event": "evt_nope"})
    assert bad_id.status_code == 400
    assert "An event id is evt_ followed by 26" in text_of(bad_id)
    unknown = browser.get("/audit/receipt", params={"event": "evt_" + "0" * 26})
    assert unknown.status_code == 400
    assert "No checkpoint covers this event yet" in text_of(unknown)
    empty = paste(browser, "receipt", "  ")
    assert empty.status_code == 400
    assert "Paste a receipt." in text_of(empty)
    no_id = browser.get("/audit/receipt", params={"event": ""})
    assert no_id.status_code == 400
    assert "Write the event id." in text_of(no_id)


def test_a_pending_receipt_is_genuine_and_found_later(
    runtime: Runtime, browser: TestClient
) -> None:
    ids = grow(runtime, 2)
    sequence_pending(runtime.sessions, limit=100)  # no checkpoint yet
    identity = log_identity(runtime)
    document = receipt_of_pending(runtime, ids[1])
    words = text_of(paste(browser, "receipt", json.dumps(document)))
    assert "The receipt is genuine, and waits for a checkpoint" in words
    assert "Today's log has no checkpointed entry for this event yet." in words
    checkpoint(runtime)
    later = text_of(paste(browser, "receipt", json.dumps(document)))
    assert "Proved: the log's latest checkpoint (size 2) holds this entry." in later
    assert identity.origin


def receipt_of_pending(runtime: Runtime, event_id: str) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        found = pending_receipt(session, runtime, event_id)
    document: dict[str, Any] = found.model_dump(mode="json", exclude_none=True)
    return document


def test_a_kept_checkpoint_is_extended(runtime: Runtime, browser: TestClient) -> None:
    grow(runtime, 3)
    old = checkpoint(runtime)
    grow(runtime, 4)
    new = checkpoint(runtime)
    # As a textarea sends it: CRLF line breaks, without the final newline.
    pasted = old.strip().replace("\n", "\r\n")
    page = paste(browser, "checkpoint", pasted)
    assert page.status_code == 200
    words = text_of(page)
    assert "Consistent: today's log extends your checkpoint" in words
    assert "Your checkpoint has 3 entries; today's has 7." in words
    assert new.strip() in html.unescape(page.text)


def test_a_kept_checkpoint_from_another_history(runtime: Runtime, browser: TestClient) -> None:
    grow(runtime, 3)
    checkpoint(runtime)
    grow(runtime, 2)
    checkpoint(runtime)
    # Signed with the log's own key, but a root this log never had: a fork.
    identity = log_identity(runtime)
    signer = _log_signer(runtime)
    forked = sign_note(f"{identity.origin}\n4\n{'A' * 43}=\n", signer)
    words = text_of(paste(browser, "checkpoint", forked))
    assert "Not consistent: today's log does not extend your checkpoint" in words


def _log_signer(runtime: Runtime) -> Any:
    identity = log_identity(runtime)
    with transaction(runtime.sessions) as session:
        return log_service.log_signer(session, runtime.key_store, identity)


def test_a_kept_checkpoint_of_another_log_or_changed(runtime: Runtime, browser: TestClient) -> None:
    grow(runtime, 3)
    old = checkpoint(runtime)
    skey = Ed25519Signer.from_private_key("other.example/log", Ed25519PrivateKey.generate())
    other = sign_note(f"other.example/log\n3\n{'A' * 43}=\n", skey)
    words = text_of(paste(browser, "checkpoint", other))
    assert "Not this log" in words
    assert "other.example/log" in words
    lines = old.split("\n")
    lines[1] = "2"  # one character: the size
    changed = text_of(paste(browser, "checkpoint", "\n".join(lines)))
    assert "The signature does not match" in changed


@pytest.mark.parametrize("pasted", ["hello", "a\nb\nc\n\n— x AAAA\n", "x" * 100])
def test_a_malformed_kept_checkpoint_is_a_field_error(
    runtime: Runtime, browser: TestClient, pasted: str
) -> None:
    grow(runtime, 1)
    checkpoint(runtime)
    page = paste(browser, "checkpoint", pasted)
    assert page.status_code == 400
    words = text_of(page)
    assert "This is not a signed checkpoint." in words
    assert 'aria-invalid="true"' in page.text
    too_long = paste(browser, "checkpoint", "y" * (MAX_PASTE + 1))
    assert too_long.status_code == 400
    assert "at most 8,192 characters" in text_of(too_long)


def test_the_explorer_changes_nothing_and_needs_no_sign_in(
    runtime: Runtime, browser: TestClient
) -> None:
    grow(runtime, 1)
    checkpoint(runtime)
    for path in ("/audit", "/audit/entry?index=0", "/audit/receipt", "/audit/checkpoint"):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert "Content-Security-Policy" in page.headers
        assert page.url.path == path.split("?")[0]  # not sent to /signin
        assert page.history == []
    # The pasting forms are POSTs: refused without this visitor's CSRF token.
    for path in ("/audit/receipt", "/audit/checkpoint"):
        refused = browser.post(path, data={"receipt": "{}", "checkpoint": "x"})
        assert refused.status_code == 403
    assert browser.post("/audit/entry", data={"index": "0"}).status_code in (403, 405)


# -- witnesses ------------------------------------------------------------------------------


@pytest.fixture
def witnessed(tmp_path: Path, backend_url: str) -> Iterator[tuple[Runtime, Settings, Any]]:
    """A runtime whose settings know two witnesses; one of them is run in process."""
    signer = CosignatureSigner.from_private_key("witness.example/w1", Ed25519PrivateKey.generate())
    silent = CosignatureSigner.from_private_key("witness.example/w2", Ed25519PrivateKey.generate())
    settings = make_settings(
        tmp_path,
        database_url=backend_url,
        log_witnesses=[
            f"{signer.verifier().vkey}@https://witness.example/w1",
            f"{silent.verifier().vkey}@https://witness.example/w2",
        ],
    )
    runtime = Runtime.build(settings)
    migrate(runtime.engine)
    try:
        yield runtime, settings, signer
    finally:
        runtime.close()


def test_witness_cosignatures_are_checked(
    witnessed: tuple[Runtime, Settings, Any], tmp_path: Path
) -> None:
    runtime, settings, signer = witnessed
    grow(runtime, 2)
    checkpoint(runtime)
    log_key = log_identity(runtime).vkey
    witness = Witness(
        WitnessConfig(signer, {log_key.split("+", 1)[0]: [log_key]}),
        SqlWitnessStore.open(f"sqlite:///{tmp_path / 'w1.db'}"),
    )

    def handle(request: httpx.Request) -> httpx.Response:
        try:
            lines = witness.add_checkpoint(request.content, now=1_700_000_000)
        except CommonsError as e:
            return httpx.Response(e.status, text=e.detail)
        return httpx.Response(200, text="".join(lines))

    endpoints = parse_witnesses(settings.log_witnesses)[:1]
    grow(runtime, 1)
    LogWorker(runtime, steps=[witness_step(endpoints, httpx.MockTransport(handle))]).run_once(
        force_checkpoint=True
    )
    with TestClient(create_app(settings, runtime=runtime), base_url=LOOPBACK) as client:
        client.headers.update(HTML)
        words = text_of(client.get("/audit"))
        assert "witness.example/w1" in words
        assert "Signature verified" in words
        assert "15 Nov 2023, 3:43:20 AM" in words  # the time the witness stated (1,700,000,000)
        assert "have not cosigned it: witness.example/w2" in words
        # A receipt's checkpoint with an unknown witness's line, and a forged known one.
        with transaction(runtime.read_sessions) as session:
            row = log_service.latest_checkpoint(session)
            assert row is not None
            note = log_service.checkpoint_with_cosignatures(session, row)
        stranger = CosignatureSigner.from_private_key(
            "stranger.example/w", Ed25519PrivateKey.generate()
        )
        text = parse_note(note).text
        extra = parse_note(note).with_signatures(stranger.cosign(text, 1_700_000_100)).format()
        ids = grow(runtime, 1)
        del ids
        document = receipt_of(runtime, _first_event(runtime))
        document["checkpoint"] = extra
        document["inclusion_proof"] = _proof_at(runtime, 0, 3)
        document["index"] = 0
        page = text_of(paste(client, "receipt", json.dumps(document)))
        assert "Unknown witness: not checked" in page
        assert "stranger.example/w" in page
        assert "The receipt is valid" in page
        forged = parse_note(note).with_signatures(
            CosignatureSigner("witness.example/w1", signer.public_key, stranger.raw).cosign(
                text, 1_700_000_200
            )
        )
        document["checkpoint"] = forged.format()
        page = text_of(paste(client, "receipt", json.dumps(document)))
        assert "Signature does not verify" in page


def _first_event(runtime: Runtime) -> str:
    with transaction(runtime.read_sessions) as session:
        (entry,) = log_service.entries(session, 0, 1)
    return str(entry.entry["id"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/audit"),
        ("GET", "/audit/entry"),
        ("GET", "/audit/receipt"),
        ("POST", "/audit/receipt"),
        ("POST", "/audit/checkpoint"),
    ],
)
def test_every_explorer_page_is_in_the_web_rate_limit_group(method: str, path: str) -> None:
    assert classify(method, path) == "web"
