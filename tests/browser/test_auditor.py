"""The public log explorer in a browser at a phone's width (web/audit.py), in English and in
Urdu, signed in as nobody: a credential is issued (a real action, through the API), the
auditor reads the latest checkpoint and keeps it, verifies the issuance's receipt as its
holder received it, sees a copy with one character changed fail, looks the entry up by its
position, and — once the log has grown and signed a new checkpoint — sees today's
checkpoint extend the one kept.  axe-core on every page and its screenshots in
docs/console/."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.browser.live import LiveServer
from tests.browser.support import Network

WAIT_SECONDS = 60
"""How long a checkpoint may take to cover an event (the server signs every 10 s)."""

WORDS = {
    "en": {
        "valid": "The receipt is valid",
        "invalid": "The receipt is not valid",
        "consistent": "Consistent: today's log extends your checkpoint",
        "problem": "There is a problem",
    },
    "ur": {
        "valid": "رسید درست ہے",
        "invalid": "رسید درست نہیں ہے",
        "consistent": "ہم آہنگ: آج کا لاگ آپ کے چیک پوائنٹ کو آگے بڑھاتا ہے",
        "problem": "ایک مسئلہ ہے",
    },
}


def _receipt(server: LiveServer, event_id: str) -> dict[str, Any]:
    """The event's public receipt once a checkpoint covers it (``GET /v1/log/receipts``)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        answer = server.http.get(f"/v1/log/receipts/{event_id}")
        if answer.status_code == 200:
            found: dict[str, Any] = answer.json()
            return found
        assert answer.status_code == 404, answer.text
        if time.monotonic() > deadline:
            pytest.fail(f"no checkpoint covered {event_id} in {WAIT_SECONDS} s")
        time.sleep(0.5)


def _size(note: str) -> int:
    return int(note.split("\n")[1])


def _grown_past(server: LiveServer, size: int) -> None:
    """Wait until the log signs a checkpoint larger than ``size``."""
    deadline = time.monotonic() + WAIT_SECONDS
    while _size(server.http.get("/v1/log/checkpoint").text) <= size:
        if time.monotonic() > deadline:
            pytest.fail(f"the log signed no checkpoint past size {size} in {WAIT_SECONDS} s")
        time.sleep(0.5)


def _tampered(receipt: dict[str, Any]) -> dict[str, Any]:
    """The receipt with one character of its checkpoint's root hash changed."""
    lines = receipt["checkpoint"].split("\n")
    root = lines[2]
    lines[2] = root[:10] + ("A" if root[10] != "A" else "B") + root[11:]
    return {**receipt, "checkpoint": "\n".join(lines)}


def _issued_event(server: LiveServer, name: str) -> str:
    borrower = server.register_identity(name)
    return str(server.issue_credential(borrower)["event_id"])


@pytest.mark.parametrize(("code", "direction"), [("en", "ltr"), ("ur", "rtl")])
def test_an_auditor_verifies_a_receipt_and_a_kept_checkpoint(
    page: Page,
    server: LiveServer,
    network: Network,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
    code: str,
    direction: str,
) -> None:
    words = WORDS[code]
    event_id = _issued_event(server, f"Lakshmi Dairy {code}")
    receipt = _receipt(server, event_id)  # as the issuance's holder would fetch it

    # The latest checkpoint: no sign-in, in the visitor's language; the auditor keeps it.
    page.goto("/audit")
    if code != "en":
        page.get_by_role("navigation", name="Language").locator(f'a[hreflang="{code}"]').click()
    html = page.locator("html")
    expect(html).to_have_attribute("lang", code)
    expect(html).to_have_attribute("dir", direction)
    expect(page).to_have_url(f"{server.base}/audit")
    note = page.locator("pre.note")
    expect(note).to_be_visible()
    kept = note.inner_text()
    assert kept.split("\n")[0] == receipt["checkpoint"].split("\n")[0]  # the log's origin
    check_accessibility(page)
    screenshot(page, f"audit-checkpoint-{code}")

    # The receipt, pasted: every check passes.
    page.locator(".audit-nav a[href='/audit/receipt']").click()
    page.locator("#field-receipt").fill(json.dumps(receipt, indent=2))
    page.locator('form[action="/audit/receipt"][method="post"] button').click()
    expect(page.locator("#verdict-title")).to_have_text(words["valid"])
    expect(page.locator(".check-failed")).to_have_count(0)
    expect(page.locator(".check-passed")).to_have_count(4)
    check_accessibility(page)
    screenshot(page, f"audit-receipt-valid-{code}")

    # One character changed: the log's signature no longer matches, the later checks do
    # not run.
    page.locator("#field-receipt").fill(json.dumps(_tampered(receipt), indent=2))
    page.locator('form[action="/audit/receipt"][method="post"] button').click()
    expect(page.locator("#verdict-title")).to_have_text(words["invalid"])
    expect(page.locator(".check-failed")).to_have_count(1)
    expect(page.locator(".check-not-checked")).to_have_count(3)
    check_accessibility(page)
    screenshot(page, f"audit-receipt-tampered-{code}")

    # Not a receipt at all: the field's error, summarised at the top.
    page.locator("#field-receipt").fill("{not a receipt")
    page.locator('form[action="/audit/receipt"][method="post"] button').click()
    expect(page.locator(".error-summary h2")).to_have_text(words["problem"])
    expect(page.locator("#field-receipt")).to_have_attribute("aria-invalid", "true")
    check_accessibility(page)
    if code == "en":
        screenshot(page, "audit-receipt-error-en")

    # The entry, by its position in the log: what the public log holds of the issuance.
    page.locator(".audit-nav a[href='/audit/entry']").click()
    page.locator("#field-index").fill(str(receipt["index"]))
    page.locator('form[action="/audit/entry"] button').click()
    expect(page.locator("main")).to_contain_text(event_id)
    expect(page.locator("main")).to_contain_text("credential.issued")
    expect(page.locator(".check-passed")).to_have_count(1)
    check_accessibility(page)
    screenshot(page, f"audit-entry-{code}")

    # The log grows and signs again; today's checkpoint extends the one kept.
    _issued_event(server, f"Lakshmi Dairy {code} 2")
    _grown_past(server, _size(kept))
    page.locator(".audit-nav a[href='/audit/checkpoint']").click()
    page.locator("#field-checkpoint").fill(kept)
    page.locator('form[action="/audit/checkpoint"] button').click()
    expect(page.locator("#verdict-title")).to_have_text(words["consistent"])
    expect(page.locator("pre.note")).to_be_visible()  # today's, to keep for the next check
    check_accessibility(page)
    screenshot(page, f"audit-kept-checkpoint-{code}")
    assert network.blocked == []
