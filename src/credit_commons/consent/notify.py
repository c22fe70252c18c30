"""Delivering one-time codes to borrowers (assisted consent).

A deployment sends codes by SMS through its gateway; the embedded default — with no SMS
gateway — appends them to ``<data_dir>/notifications/codes.jsonl`` (mode 0600), which
``commons consent codes`` reads for the operator.  This file holds live secrets for ten
minutes: it exists for one-laptop pilots and the demo, and production refuses it
(``COMMONS_ENV=production`` makes :func:`send_code` report non-delivery).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from credit_commons.runtime import Runtime

__all__ = ["codes_file", "read_codes", "send_code"]


def codes_file(rt: Runtime) -> Path:
    """Where the embedded notifier writes codes."""
    return Path(rt.settings.data_dir) / "notifications" / "codes.jsonl"


def send_code(rt: Runtime, borrower_token: str, consent_id: str, code: str) -> bool:
    """Send ``code`` to the borrower; whether it was delivered."""
    if rt.settings.env.value == "production":
        return False
    path = codes_file(rt)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps(
        {
            "to": borrower_token,
            "consent_id": consent_id,
            "code": code,
            "at": rt.clock.now().isoformat(),
        }
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def read_codes(rt: Runtime, borrower_token: str | None = None) -> list[dict[str, Any]]:
    """The codes sent so far (to one borrower, if given), oldest first."""
    path = codes_file(rt)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if borrower_token is None or entry.get("to") == borrower_token:
            out.append(entry)
    return out
