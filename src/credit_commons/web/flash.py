"""Flash messages: a line shown once on the next page ("Consent revoked"), carried across
a POST → 303 → GET in a short-lived cookie.

The cookie holds message ids (English text marked with :func:`~credit_commons.web.i18n.N_`,
translated when shown) and an HMAC under the platform's pepper, so nobody can make the
console display text of their choosing.  It lives 60 seconds and is deleted by the page
that shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import Request, Response

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.errors import CommonsError
from credit_commons.runtime import Runtime
from credit_commons.web.cookies import delete_cookie, read_cookie, set_cookie

__all__ = ["KINDS", "Flash", "add_flash", "consumed", "pending"]

COOKIE = "flash"
KINDS = ("info", "success", "error")
_DOMAIN = "web.flash"
_SHOWN = "web_flash_shown"
_MAX = 4


@dataclass(frozen=True)
class Flash:
    """One message to show: its id (English, translated when rendered) and its kind."""

    message: str
    kind: str = "info"


def _mac(request: Request, payload: str) -> str:
    runtime: Runtime = request.app.state.runtime
    return runtime.pseudonymizer.pseudonym(_DOMAIN, payload)


def add_flash(request: Request, response: Response, message: str, kind: str = "info") -> None:
    """Show ``message`` (an ``N_``-marked English msgid) on the next page this visitor
    loads.  Raises ``ValueError`` for an unknown ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"flash kind must be one of {KINDS}")
    items = [[f.message, f.kind] for f in pending(request, mark=False)][-(_MAX - 1) :]
    items.append([message, kind])
    payload = b64url_encode(json.dumps(items, ensure_ascii=False).encode())
    set_cookie(request, response, COOKIE, f"{payload}.{_mac(request, payload)}", max_age=60)


def pending(request: Request, *, mark: bool = True) -> list[Flash]:
    """The messages waiting for this visitor (none when the cookie's HMAC is wrong);
    ``mark`` notes that the page showing them must delete the cookie."""
    raw = read_cookie(request, COOKIE)
    if not raw or "." not in raw:
        return []
    payload, _, mac = raw.partition(".")
    if mac != _mac(request, payload):
        return []
    try:
        items = json.loads(b64url_decode(payload))
    except (CommonsError, ValueError, UnicodeDecodeError):
        return []
    shown = [
        Flash(str(item[0]), str(item[1]))
        for item in items
        if isinstance(item, list) and len(item) == 2 and item[1] in KINDS
    ][:_MAX]
    if mark and shown:
        setattr(request.state, _SHOWN, True)
    return shown


def consumed(request: Request, response: Response) -> None:
    """Delete the flash cookie on ``response`` if this request's page showed it."""
    if getattr(request.state, _SHOWN, False):
        delete_cookie(request, response, COOKIE)
