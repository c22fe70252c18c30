"""The home page ``/`` (what the platform is, and the way to each area) and the language
switch ``/lang/{code}``, a plain link that works without JavaScript."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from credit_commons.web import i18n
from credit_commons.web.auth import safe_next
from credit_commons.web.cookies import relaxed
from credit_commons.web.render import render
from credit_commons.web.routing import Area, page_router

__all__ = ["AREA", "router"]

router = page_router()
_YEAR = 365 * 24 * 3600


@router.get("/")
def home(request: Request) -> HTMLResponse:
    """The home page."""
    return render(request, "home.html")


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/") -> Response:
    """Remember language ``code`` in the ``lang`` cookie and go back to ``next`` (a local
    path); an unknown code changes nothing."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if i18n.language_of(code) is not None:
        # Only a language code; Lax so that a link from elsewhere arrives in it.
        response.set_cookie(
            i18n.COOKIE,
            code,
            max_age=_YEAR,
            path="/",
            secure=not relaxed(request),  # as the session cookie's
            httponly=True,
            samesite="lax",
        )
    return response


AREA = Area(router)
