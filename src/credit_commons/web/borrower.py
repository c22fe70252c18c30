"""The borrower's area of the console (``/borrower``): an overview, the requests waiting
for them, their consents, their credentials, who saw what, and their data (export,
erasure, discovery) — and a sign-in by one-time code (``/signin/code``).

Each part is a module of its own, with its routes on its own page router; this module puts
them together in :data:`AREA`, the one line ``web/routes.py`` registers:

- ``borrower_consents``: requests, consents, decisions, "withdraw everything";
- ``borrower_history``: who saw what, each access's receipt checked by the server;
- ``borrower_data``: credentials, export (JSON, PDF), erasure, discovery;
- ``borrower_code``: the one-time-code sign-in.

Every page calls the service functions the API's borrower routes call, with the signed-in
borrower (their identity) as the principal (docs/console.md, "Borrower").
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from credit_commons.consent import requests as consent_requests
from credit_commons.consent.model import ConsentStatus
from credit_commons.core.db import transaction
from credit_commons.runtime import Runtime
from credit_commons.web import (
    Area,
    borrower_code,
    borrower_consents,
    borrower_data,
    borrower_history,
    page_router,
    render,
)
from credit_commons.web.borrower_consents import Me, borrower_principal

__all__ = ["AREA", "router"]

router = page_router()
_COUNTED = 100


@router.get("/borrower")
def overview(request: Request, me: Me) -> HTMLResponse:
    """Where the borrower starts: how many requests wait for them, and the way to each page."""
    rt: Runtime = request.app.state.runtime
    with transaction(rt.read_sessions) as session:
        waiting = consent_requests.count_for_borrower(
            session, rt, borrower_principal(me), me.subject, ConsentStatus.PENDING, limit=_COUNTED
        )
    return render(
        request,
        "borrower/overview.html",
        {"waiting": waiting, "many": waiting >= _COUNTED},
    )


for part in (
    borrower_consents.router,
    borrower_history.router,
    borrower_data.router,
    borrower_code.router,
):
    router.include_router(part)

AREA = Area(router, sign_in=(borrower_code.METHOD,))
"""The borrower's area, as ``web/routes.py`` registers it."""
