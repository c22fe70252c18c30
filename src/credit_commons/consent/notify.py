"""Delivering one-time codes to borrowers: for an assisted consent, and for signing in to
the web console (``purpose``).

A deployment sends codes by SMS through its gateway; the embedded default — with no SMS
gateway — appends them to ``<data_dir>/notifications/codes.jsonl`` (mode 0600), which
``commons consent codes`` reads for the operator.  This file holds live secrets for ten
minutes: it exists for one-laptop pilots and the demo, and production refuses it
(``COMMONS_ENV=production`` makes :func:`send_code` report non-delivery).

Erasure scrubs the file (:func:`forget_codes`): the lines addressed to the erased borrower
are removed by rewriting the file without them (a new file renamed over the old one), so
it no longer holds their identity token.  Appends and the rewrite take an exclusive lock on
the file, so a code sent meanwhile is never lost.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from credit_commons.core.files import write_private
from credit_commons.runtime import Runtime

__all__ = [
    "CONSENT",
    "SIGN_IN",
    "SentCode",
    "codes_file",
    "forget_codes",
    "read_codes",
    "send_code",
]


@dataclass(frozen=True, slots=True)
class SentCode:
    """A one-time code the embedded notifier sent: to whom (the borrower's identity
    token), for which consent (empty for another purpose), the code, when (ISO 8601) and
    what for (``purpose``: :data:`CONSENT`, or :data:`SIGN_IN` for the console's sign-in)."""

    to: str
    consent_id: str
    code: str
    at: str
    purpose: str = "consent"


CONSENT = "consent"
"""The purpose of a code that confirms an assisted consent."""
SIGN_IN = "signin"
"""The purpose of a code that signs a borrower in to the web console."""


def codes_file(rt: Runtime) -> Path:
    """Where the embedded notifier writes codes."""
    return Path(rt.settings.data_dir) / "notifications" / "codes.jsonl"


def send_code(
    rt: Runtime, borrower_token: str, consent_id: str, code: str, *, purpose: str = CONSENT
) -> bool:
    """Send ``code`` to the borrower; whether it was delivered.  ``purpose`` says what the
    code is for (:data:`CONSENT`: confirming ``consent_id``; :data:`SIGN_IN`: signing in
    to the console, ``consent_id`` empty), so the message can say it."""
    if rt.settings.env.value == "production":
        return False
    path = codes_file(rt)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    entry = {
        "to": borrower_token,
        "consent_id": consent_id,
        "code": code,
        "at": rt.clock.now().isoformat(),
    }
    if purpose != CONSENT:
        entry["purpose"] = purpose
    line = json.dumps(entry)
    with _locked(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    return True


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # A sidecar lock: the file itself is replaced by a rename when it is scrubbed.
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def forget_codes(rt: Runtime, borrower_token: str) -> int:
    """Remove every line addressed to ``borrower_token`` from the codes file (at erasure);
    returns how many were removed."""
    path = codes_file(rt)
    if not path.exists():
        return 0
    with _locked(path):
        kept, removed = [], 0
        for line in path.read_text().splitlines():
            if json.loads(line).get("to") == borrower_token:
                removed += 1
            else:
                kept.append(line + "\n")
        if removed:
            write_private(path, "".join(kept).encode())
    return removed


def read_codes(rt: Runtime, borrower_token: str | None = None) -> list[SentCode]:
    """The codes sent so far (to one borrower, if given), oldest first."""
    path = codes_file(rt)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if borrower_token is None or entry.get("to") == borrower_token:
            out.append(
                SentCode(
                    to=entry["to"],
                    consent_id=entry["consent_id"],
                    code=entry["code"],
                    at=entry["at"],
                    purpose=entry.get("purpose", CONSENT),
                )
            )
    return out
