"""The borrower's consents in the console: the requests waiting for them (approve or
refuse), their consents (pause, resume, withdraw in one click, withdraw everything given to
one lender) and one consent in full.

Every page and every decision calls what the API's borrower routes call
(``gateway/routes/consent.py``): ``consent.requests.list_for_borrower`` /
``get_for_borrower``, ``consent.decisions.decide`` and ``revoke_all``, with the signed-in
borrower as the principal, so the same authorisation runs and the same events are written.
A refused decision (someone who may not act for this borrower) is recorded exactly as the
API records it — the app's handler does, after the unit of work rolled back — and answered
with the console's 404 page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from credit_commons.consent import assisted, decisions
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.errors import ConsentStateInvalid
from credit_commons.consent.model import ConsentStatus
from credit_commons.consent.schemas import AssistingAgent, ConsentView
from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode
from credit_commons.identity import Principal
from credit_commons.lenders import client_names
from credit_commons.runtime import Runtime
from credit_commons.web import N_, WebSession, add_flash, page_router, render, requires, safe_next
from credit_commons.web.borrower_words import ACTIONS, PURPOSES, STATUSES, UNITS, fact, word

__all__ = [
    "PAGE_SIZE",
    "ConsentCard",
    "Me",
    "borrower_principal",
    "cards",
    "router",
]

router = page_router(prefix="/borrower")
Me = Annotated[WebSession, Depends(requires("borrower"))]
PAGE_SIZE = 20
"""Consents per page."""
_LENDERS_SHOWN = 200
"""At most this many lenders offered "withdraw everything" at once."""
ConsentId = Annotated[str, Path(pattern=r"^cns_[0-9A-Z]{26}$")]
Before = Annotated[str | None, Query(pattern=r"^cns_[0-9A-Z]{26}$")]
Action = Literal["approve", "reject", "pause", "resume", "revoke"]

_FREQUENCY = {
    "HOUR": N_("Up to %(count)s times an hour"),
    "DAY": N_("Up to %(count)s times a day"),
    "MONTH": N_("Up to %(count)s times a month"),
    "YEAR": N_("Up to %(count)s times a year"),
}
_ALLOWED: dict[str, tuple[Action, ...]] = {
    ConsentStatus.PENDING: ("approve", "reject"),
    ConsentStatus.ACTIVE: ("pause", "revoke"),
    ConsentStatus.PAUSED: ("resume", "revoke"),
}


def borrower_principal(me: WebSession) -> Principal:
    """The principal the API would see for this signed-in borrower: their identity, as its
    bearer token authenticates it (``identity.auth.authenticate``)."""
    return Principal(me.subject, "identity")


@dataclass(frozen=True)
class Duration:
    """A length of time to show: its msgid (one unit, or several with ``count``)."""

    text: str
    count: int


@dataclass(frozen=True)
class ConsentCard:
    """One consent as the borrower's pages show it, in plain words (msgids and values)."""

    id: str
    status: str
    status_text: str
    lender: str
    lender_name: str
    purpose: str
    facts: tuple[str, ...]
    starts: datetime
    until: datetime
    once: bool
    often: str
    often_count: int
    keeps: bool
    data_life: Duration
    uses: int
    actions: tuple[Action, ...]
    assisted: bool
    created: datetime | None = None
    agent_name: str | None = None
    agent_at: datetime | None = None


def _at(text: str) -> datetime:
    return utc(datetime.fromisoformat(text))


def _duration(unit: str, value: int) -> Duration:
    one, many = UNITS.get(unit, (unit, "%(count)s " + unit))
    return Duration(one if value == 1 else many, value)


def _granted_at(artefact: str | None) -> datetime | None:
    # When the consent was granted: its signed artefact's ``iat`` (the platform signed it).
    if artefact is None:
        return None
    try:
        payload = json.loads(b64url_decode(artefact.split(".")[1]))
        return datetime.fromtimestamp(int(payload["iat"]), UTC)
    except (ValueError, IndexError, KeyError, TypeError):
        return None


def _card(
    view: ConsentView, names: dict[str, str], agent: AssistingAgent | None = None
) -> ConsentCard:
    facts = tuple(fact(path) for scope in view.scopes for path in scope.claims)
    return ConsentCard(
        id=view.consent_id,
        status=view.status,
        status_text=word(STATUSES, view.status),
        lender=view.lender,
        lender_name=names.get(view.lender, view.lender),
        purpose=PURPOSES.get(view.purpose.code, view.purpose.text or view.purpose.code),
        facts=facts,
        starts=_at(view.consent_start),
        until=_at(view.consent_expiry),
        once=view.fetch_type == "ONETIME",
        often=_FREQUENCY.get(view.frequency.unit, "%(count)s"),
        often_count=view.frequency.value,
        keeps=view.mode == "STORE",
        data_life=_duration(view.data_life.unit, view.data_life.value),
        uses=view.uses,
        actions=_ALLOWED.get(view.status, ()),
        assisted=view.assisted or agent is not None,
        created=_at(view.created_at),
        agent_name=agent.name if agent is not None else None,
        agent_at=_granted_at(view.artefact) if agent is not None and agent.granted else None,
    )


def cards(
    session: Session,
    rt: Runtime,
    me: WebSession,
    views: Sequence[ConsentView],
    *,
    also_named: Sequence[str] = (),
) -> tuple[list[ConsentCard], dict[str, str]]:
    """``views`` as :class:`ConsentCard`: their lenders named, and the field agent who
    helped with each, by name (``consent.assisted.assisting_agents``); and the name of each
    lender named, those of ``also_named`` too (read with the cards' in one query)."""
    names = client_names(session, [*(v.lender for v in views), *also_named])
    agents: Mapping[str, AssistingAgent] = assisted.assisting_agents(
        session, rt, borrower_principal(me), me.subject, [v.consent_id for v in views]
    )
    return [_card(v, names, agents.get(v.consent_id)) for v in views], names


def _page(
    session: Session,
    rt: Runtime,
    me: WebSession,
    status: str | None,
    before: str | None,
    *,
    also_named: Sequence[str] = (),
) -> tuple[list[ConsentCard], str | None, dict[str, str]]:
    views = consent_requests.list_for_borrower(
        session,
        rt,
        borrower_principal(me),
        me.subject,
        status,
        limit=PAGE_SIZE + 1,
        before=before,
    )
    more = views[PAGE_SIZE - 1].consent_id if len(views) > PAGE_SIZE else None
    shown, names = cards(session, rt, me, views[:PAGE_SIZE], also_named=also_named)
    return shown, more, names


@router.get("/requests")
def requests_page(request: Request, me: Me, before: Before = None) -> HTMLResponse:
    """The consent requests waiting for the borrower's answer, newest first."""
    rt: Runtime = request.app.state.runtime
    with transaction(rt.read_sessions) as session:
        waiting, more, _names = _page(session, rt, me, ConsentStatus.PENDING, before)
    return render(
        request,
        "borrower/requests.html",
        {"consents": waiting, "more": more, "first": before is None},
    )


def _lenders_holding(session: Session, rt: Runtime, me: WebSession) -> list[str]:
    # The lenders holding an active or paused consent of the borrower.
    return consent_requests.lenders_holding(
        session,
        rt,
        borrower_principal(me),
        me.subject,
        (ConsentStatus.ACTIVE, ConsentStatus.PAUSED),
        limit=_LENDERS_SHOWN,
    )


@router.get("/consents")
def consents_page(request: Request, me: Me, before: Before = None) -> HTMLResponse:
    """All the borrower's consents, newest first, a page at a time, with their actions;
    and, for each lender holding a live consent, "withdraw everything"."""
    rt: Runtime = request.app.state.runtime
    with transaction(rt.read_sessions) as session:
        # "Withdraw everything" only on the first page; its lenders named with the cards'.
        held = _lenders_holding(session, rt, me) if before is None else []
        shown, more, names = _page(session, rt, me, None, before, also_named=held)
    lenders = sorted(((c, names[c]) for c in held), key=lambda item: (item[1].casefold(), item[0]))
    return render(
        request,
        "borrower/consents.html",
        {"consents": shown, "more": more, "first": before is None, "lenders": lenders},
    )


@router.get("/consents/{consent_id}")
def consent_page(request: Request, me: Me, consent_id: ConsentId) -> HTMLResponse:
    """One consent in full, with its actions (404 for anyone else's)."""
    rt: Runtime = request.app.state.runtime
    with transaction(rt.read_sessions) as session:
        view = consent_requests.get_for_borrower(session, rt, borrower_principal(me), consent_id)
        card = cards(session, rt, me, [view])[0][0]
    return render(request, "borrower/consent.html", {"consent": card, "view": view})


def _back(next_path: str, fallback: str) -> str:
    chosen = safe_next(next_path)
    return chosen if chosen.startswith("/borrower") else fallback


@router.post("/consents/{consent_id}/{action}")
def decide(
    request: Request,
    me: Me,
    consent_id: ConsentId,
    action: Annotated[Action, Path()],
    next: Annotated[str, Form(max_length=2000)] = "/borrower/consents",
) -> Response:
    """Approve, refuse, pause, resume or withdraw one consent: one button, one POST, back
    to the page it was pressed on."""
    rt: Runtime = request.app.state.runtime
    response = RedirectResponse(_back(next, "/borrower/consents"), status_code=303)
    try:
        with transaction(rt.sessions) as session:
            decisions.decide(session, rt, borrower_principal(me), consent_id, action)
    except ConsentStateInvalid:
        add_flash(
            request,
            response,
            N_("That could not be done: the consent has changed. Here is how it stands now."),
            "error",
        )
        return response
    add_flash(request, response, ACTIONS[action], "success")
    return response


@router.post("/lenders/{client_id}/revoke-all")
def revoke_all(
    request: Request,
    me: Me,
    client_id: Annotated[str, Path(pattern=r"^[a-z]{2,8}_[0-9A-Za-z_-]{8,64}$")],
) -> Response:
    """Withdraw every active or paused consent given to one lender."""
    rt: Runtime = request.app.state.runtime
    with transaction(rt.sessions) as session:
        done = decisions.revoke_all(session, rt, borrower_principal(me), me.subject, client_id)
    response = RedirectResponse("/borrower/consents", status_code=303)
    if done.revoked:
        add_flash(
            request, response, N_("You withdrew every consent given to that lender."), "success"
        )
    else:
        add_flash(request, response, N_("That lender held no consent to withdraw."), "info")
    return response
