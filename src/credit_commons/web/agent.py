"""The field agent's pages (``/agent``): the assisted consent of seed 000, on the agent's
screen at a service centre — and the borrower's own-phone confirmation of it
(``/borrower/assisted/<consent>``).

1. **Find the borrower** (``/agent``): by identity token, or from the list of borrowers who
   gave this agent a live ``assist:consent`` delegation.  A borrower who did not delegate to
   the agent and one who does not exist get the same answer (the refusal is recorded in the
   borrower's history, as the API records a refused decision).
2. **Prepare** (``/agent/consents/<id>``): a pending request in plain words; *send the
   code* (``consent.assisted.assist``: a one-time code goes to the borrower).
3. **Confirm** (``/agent/consents/<id>/confirm``): the agent types the code the borrower
   reads from their phone (``confirm_assisted``) — or the borrower, signed in on their own
   phone, types it at ``/borrower/assisted/<id>`` (``confirm_assisted_by_borrower``).
4. **Done** (``/agent/consents/<id>/done``): the consent is active, and the borrower is
   shown the agent's name with it (``consent.assisted.assisting_agent``).

Every page calls the service functions the API's assist routes call, with the same
principal, so the same checks run and the same events are written; refusals
(:class:`~credit_commons.consent.access.Refused`) are recorded after the page's unit of
work, as the API's handler records them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from credit_commons.consent import assisted
from credit_commons.consent.access import Refused
from credit_commons.consent.errors import ConsentStateInvalid, OneTimeCodeRefused
from credit_commons.consent.requests import get_for_borrower
from credit_commons.core.db import transaction
from credit_commons.core.errors import NotFoundError
from credit_commons.identity import Principal
from credit_commons.identity import service as identity_service
from credit_commons.identity.delegations import (
    assist_delegation,
    assist_delegation_id,
    assist_delegations_page,
)
from credit_commons.identity.schemas import IDENTITY_TOKEN_PATTERN
from credit_commons.runtime import Runtime
from credit_commons.web.agent_terms import terms_of, terms_of_all
from credit_commons.web.auth import requires
from credit_commons.web.flash import add_flash
from credit_commons.web.i18n import N_
from credit_commons.web.limits import count_act
from credit_commons.web.render import render
from credit_commons.web.routing import Area, page_router
from credit_commons.web.sessions import WebSession

__all__ = ["AREA", "PAGE_SIZE", "router"]

router = page_router()
Agent = Annotated[WebSession, Depends(requires("agent"))]
Borrower = Annotated[WebSession, Depends(requires("borrower"))]
PAGE_SIZE = 20
_TOKEN = re.compile(IDENTITY_TOKEN_PATTERN)
_CONSENT = re.compile(r"^cns_[0-9A-Z]{26}$")
_DELEGATION = re.compile(r"^dlg_[0-9A-Z]{26}$")
_CODE = re.compile(r"^[0-9]{6}$")
_T = TypeVar("_T")

_CODE_ERRORS = {
    "consent.otp_expired": N_(
        "No code works now: it was not sent, or its 10 minutes are over. Send a new code."
    ),
    "consent.otp_exhausted": N_("The code was typed wrong 5 times. Send a new code."),
}
_WRONG_CODE = N_(
    "This code is not right. Ask the borrower to read it again from their phone. "
    "After 5 wrong tries a new code must be sent."
)
_CODE_FORMAT = N_("Enter the 6 digits of the code.")
_BORROWER_CODE_ERRORS = {
    "consent.otp_expired": N_(
        "No code works now: its 10 minutes are over. Ask the field agent to send a new code."
    ),
    "consent.otp_exhausted": N_(
        "The code was typed wrong 5 times. Ask the field agent to send a new code."
    ),
}
_BORROWER_WRONG_CODE = N_(
    "This code is not right. Check the code in the message on your phone. "
    "After 5 wrong tries the field agent must send a new code."
)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _principal(me: WebSession) -> Principal:
    # The console signs agents and borrowers in with their identity's platform token
    # (web/signin.py), so the session's subject is the identity the API would see.
    return Principal(me.subject, "identity")


def _record(request: Request, refused: Refused) -> None:
    # As the API's handler does (gateway/denials.py): after the page's unit of work.
    refused.record(_runtime(request), getattr(request.app.state, "denial_counter", None))


def _read(request: Request, work: Callable[[Session], _T]) -> _T:
    """``work`` in a read unit of work; a refusal is recorded and raised again."""
    try:
        with transaction(_runtime(request).read_sessions) as session:
            return work(session)
    except Refused as refused:
        _record(request, refused)
        raise


def _write(request: Request, work: Callable[[Session], _T]) -> _T:
    """``work`` in a write unit of work; a refusal is recorded and raised again."""
    try:
        with transaction(_runtime(request).sessions) as session:
            return work(session)
    except Refused as refused:
        _record(request, refused)
        raise


def _missing(request: Request) -> HTMLResponse:
    # One page for "no such borrower or request" and "not delegated to you".
    return render(request, "agent/missing.html", status=404)


# -- 1. find the borrower ----------------------------------------------------------------


@dataclass(frozen=True)
class _Borrowers:
    # One page of the borrowers who delegated to the agent, and the cursors of its
    # neighbours (None where there is none).
    shown: list[dict[str, Any]]
    previous: str | None
    next: str | None


def _my_borrowers(
    request: Request, me: WebSession, after: str | None, before: str | None
) -> _Borrowers:
    """A page of the borrowers who gave the agent a live ``assist:consent`` delegation, by
    delegation id (a keyset read: never every delegation of the agent): the delegation's
    id, the borrower's token, and the name when the delegation lets the agent read the
    profile."""
    rt, agent = _runtime(request), _principal(me)

    def work(session: Session) -> _Borrowers:
        page = assist_delegations_page(
            session, me.subject, rt.clock.now(), after=after, before=before, limit=PAGE_SIZE + 1
        )
        # One row more than the page says whether there is a page beyond it, in the
        # direction read; the other direction has one whenever a cursor was given.
        beyond = len(page) > PAGE_SIZE
        page = page[-PAGE_SIZE:] if before is not None else page[:PAGE_SIZE]
        found = []
        for d in page:
            try:
                name = identity_service.get_profile(session, rt, agent, d.delegator_token).name
            except NotFoundError:
                name = None  # the delegation does not let the agent read the profile
            found.append({"ref": d.id, "token": d.delegator_token, "name": name})
        first, last = (page[0].id, page[-1].id) if page else (None, None)
        if before is not None:
            return _Borrowers(found, first if beyond else None, last)
        return _Borrowers(found, first if after is not None else None, last if beyond else None)

    return _read(request, work)


def _index(
    request: Request,
    me: WebSession,
    *,
    after: str | None = None,
    before: str | None = None,
    token: str = "",
    error: str = "",
) -> HTMLResponse:
    borrowers = _my_borrowers(request, me, after, before)
    return render(
        request,
        "agent/index.html",
        {
            "borrowers": borrowers.shown,
            "previous": borrowers.previous,
            "next": borrowers.next,
            "token": token,
            "errors": {"token": error} if error else {},
        },
        status=(404 if error == _NOT_FOUND else 422) if error else 200,
    )


_NOT_FOUND = N_(
    "We found no borrower with this token who has asked you to help them. Check the token, "
    "or ask the borrower to give you permission to help."
)


@router.get("/agent")
def agent_home(
    request: Request, me: Agent, after: str | None = None, before: str | None = None
) -> HTMLResponse:
    """Find a borrower: the token form, and a page of the borrowers who delegated to this
    agent (``after``/``before``: the delegation id the page starts after or ends before)."""
    cursor = _DELEGATION.fullmatch
    if (after is not None and not cursor(after)) or (before is not None and not cursor(before)):
        return _missing(request)
    return _index(request, me, after=after, before=None if after is not None else before)


@router.post("/agent/find")
def find_borrower(
    request: Request, me: Agent, token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """The borrower of ``token``, if they delegated to this agent: to their requests."""
    token = token.strip()
    if not token:
        return _index(request, me, token=token, error=N_("Enter the borrower's identity token."))
    if not _TOKEN.fullmatch(token):
        return _index(
            request,
            me,
            token=token,
            error=N_("This is not an identity token. It starts with idt_."),
        )
    rt, agent = _runtime(request), _principal(me)

    def work(session: Session) -> str | None:
        assisted.pending_for_agent(session, rt, agent, token, limit=1)
        return assist_delegation_id(session, token, me.subject, rt.clock.now())

    try:
        ref = _read(request, work)
    except NotFoundError:
        return _index(request, me, token=token, error=_NOT_FOUND)
    if ref is None:  # pending_for_agent found the delegation: it ended in between
        return _index(request, me, token=token, error=_NOT_FOUND)
    # The borrower is named by the delegation's id: an identity token is never in a URL.
    return RedirectResponse(f"/agent/borrowers/{ref}", status_code=303)


@router.get("/agent/borrowers/{ref}")
def borrower_requests(
    request: Request, me: Agent, ref: str, before: str | None = None
) -> HTMLResponse:
    """The pending requests, newest first, of the borrower who gave this agent the
    delegation ``ref`` (its id: the borrower's identity token stays out of the URL)."""
    if not _DELEGATION.fullmatch(ref) or (before is not None and not _CONSENT.fullmatch(before)):
        return _missing(request)
    rt, agent = _runtime(request), _principal(me)

    def work(session: Session) -> tuple[str, list[Any]]:
        token = assist_delegation(session, me.subject, ref, rt.clock.now())
        if token is None:
            raise NotFoundError("no such delegation")
        pending = assisted.pending_for_agent(
            session, rt, agent, token, before=before, limit=PAGE_SIZE + 1
        )
        return token, terms_of_all(session, pending)

    try:
        token, found = _read(request, work)
    except NotFoundError:
        return _missing(request)
    return render(
        request,
        "agent/borrower.html",
        {
            "ref": ref,
            "token": token,
            "requests": found[:PAGE_SIZE],
            "next_before": found[PAGE_SIZE - 1].consent_id if len(found) > PAGE_SIZE else None,
        },
    )


# -- 2. prepare: the request in plain words, and the code --------------------------------


def _consent_page(
    request: Request, me: WebSession, consent_id: str, template: str, **more: Any
) -> Response:
    if not _CONSENT.fullmatch(consent_id):
        return _missing(request)
    rt, agent = _runtime(request), _principal(me)

    def work(session: Session) -> tuple[Any, str | None]:
        terms = terms_of(session, assisted.consent_for_agent(session, rt, agent, consent_id))
        return terms, identity_service.display_name(session, rt, me.subject)

    try:
        terms, my_name = _read(request, work)
    except NotFoundError:
        return _missing(request)
    if terms.status != "PENDING" and template != "agent/done.html":
        return RedirectResponse(f"/agent/consents/{consent_id}/done", status_code=303)
    errors = more.pop("errors", {})
    return render(
        request,
        template,
        {"terms": terms, "my_name": my_name, "errors": errors, **more},
        status=422 if errors else 200,
    )


@router.get("/agent/consents/{consent_id}")
def prepare(request: Request, me: Agent, consent_id: str) -> Response:
    """A pending request in plain words, with *send the code*."""
    return _consent_page(request, me, consent_id, "agent/prepare.html")


@router.post("/agent/consents/{consent_id}/send")
def send_code(request: Request, me: Agent, consent_id: str) -> Response:
    """Prepare the consent: a one-time code goes to the borrower (``assist``)."""
    if not _CONSENT.fullmatch(consent_id):
        return _missing(request)
    count_act(request, "consent", me.subject)
    rt, agent = _runtime(request), _principal(me)
    try:
        started = _write(request, lambda s: assisted.assist(s, rt, agent, consent_id))
    except NotFoundError:
        return _missing(request)
    except ConsentStateInvalid:
        response = RedirectResponse(f"/agent/consents/{consent_id}", status_code=303)
        add_flash(
            request,
            response,
            N_("Three codes were sent for this request in the last hour. Try again later."),
            "error",
        )
        return response
    response = RedirectResponse(f"/agent/consents/{consent_id}/confirm", status_code=303)
    if started.code_sent:
        add_flash(
            request,
            response,
            N_("A code was sent to the borrower's phone. It works for 10 minutes."),
            "success",
        )
    else:
        add_flash(
            request,
            response,
            N_("The code could not be sent to the borrower's phone. Try again later."),
            "error",
        )
    return response


# -- 3. confirm: the code the borrower reads out -----------------------------------------


@router.get("/agent/consents/{consent_id}/confirm")
def confirm_page(request: Request, me: Agent, consent_id: str) -> Response:
    """The form where the agent types the borrower's code."""
    return _consent_page(request, me, consent_id, "agent/confirm.html")


@router.post("/agent/consents/{consent_id}/confirm")
def confirm(
    request: Request,
    me: Agent,
    consent_id: str,
    code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Grant the consent with the borrower's code (``confirm_assisted``)."""
    code = code.strip().replace(" ", "")
    if not _CODE.fullmatch(code):
        return _consent_page(
            request, me, consent_id, "agent/confirm.html", errors={"code": _CODE_FORMAT}
        )
    if not _CONSENT.fullmatch(consent_id):
        return _missing(request)
    count_act(request, "consent", me.subject)
    rt, agent = _runtime(request), _principal(me)
    try:
        answer = _write(
            request, lambda s: assisted.confirm_assisted(s, rt, agent, consent_id, code)
        )
    except OneTimeCodeRefused as refused:
        error = _CODE_ERRORS.get(refused.reason, _CODE_ERRORS["consent.otp_expired"])
        return _consent_page(request, me, consent_id, "agent/confirm.html", errors={"code": error})
    except NotFoundError:
        return _missing(request)
    except ConsentStateInvalid:
        return _consent_page(
            request,
            me,
            consent_id,
            "agent/confirm.html",
            errors={"code": N_("This request has expired. The lender must ask again.")},
        )
    if not answer.accepted:
        return _consent_page(
            request, me, consent_id, "agent/confirm.html", errors={"code": _WRONG_CODE}
        )
    response = RedirectResponse(f"/agent/consents/{consent_id}/done", status_code=303)
    add_flash(request, response, N_("The consent is given."), "success")
    return response


@router.get("/agent/consents/{consent_id}/done")
def done(request: Request, me: Agent, consent_id: str) -> Response:
    """The consent this agent helped with is active; the borrower sees the agent's name."""
    return _consent_page(request, me, consent_id, "agent/done.html")


# -- the borrower's own phone ------------------------------------------------------------


def _borrower_page(
    request: Request, me: WebSession, consent_id: str, errors: dict[str, str] | None = None
) -> HTMLResponse:
    if not _CONSENT.fullmatch(consent_id):
        return render(request, "agent/borrower_missing.html", status=404)
    rt, borrower = _runtime(request), _principal(me)

    def work(session: Session) -> tuple[Any, Any]:
        consent = get_for_borrower(session, rt, borrower, consent_id)
        helper = assisted.assisting_agent(session, rt, borrower, consent_id)
        return terms_of(session, consent), helper

    try:
        terms, helper = _read(request, work)
    except NotFoundError:
        return render(request, "agent/borrower_missing.html", status=404)
    return render(
        request,
        "agent/borrower_confirm.html",
        {"terms": terms, "helper": helper, "errors": errors or {}},
        status=422 if errors else 200,
    )


@router.get("/borrower/assisted/{consent_id}")
def borrower_assisted(request: Request, me: Borrower, consent_id: str) -> HTMLResponse:
    """A request a field agent is preparing with the borrower: who helps, the terms in
    plain words, and the code form; once given, who helped."""
    return _borrower_page(request, me, consent_id)


@router.post("/borrower/assisted/{consent_id}")
def borrower_confirm(
    request: Request,
    me: Borrower,
    consent_id: str,
    code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The borrower types the agent's code on their own phone
    (``confirm_assisted_by_borrower``)."""
    code = code.strip().replace(" ", "")
    if not _CODE.fullmatch(code) or not _CONSENT.fullmatch(consent_id):
        return _borrower_page(request, me, consent_id, {"code": _CODE_FORMAT})
    count_act(request, "consent", me.subject)
    rt, borrower = _runtime(request), _principal(me)
    try:
        answer = _write(
            request,
            lambda s: assisted.confirm_assisted_by_borrower(s, rt, borrower, consent_id, code),
        )
    except OneTimeCodeRefused as refused:
        error = _BORROWER_CODE_ERRORS.get(
            refused.reason, _BORROWER_CODE_ERRORS["consent.otp_expired"]
        )
        return _borrower_page(request, me, consent_id, {"code": error})
    except NotFoundError:
        return render(request, "agent/borrower_missing.html", status=404)
    except ConsentStateInvalid:
        return _borrower_page(
            request,
            me,
            consent_id,
            {"code": N_("This request has expired. The lender must ask again.")},
        )
    if not answer.accepted:
        return _borrower_page(request, me, consent_id, {"code": _BORROWER_WRONG_CODE})
    response = RedirectResponse(f"/borrower/assisted/{consent_id}", status_code=303)
    add_flash(request, response, N_("The consent is given."), "success")
    return response


AREA = Area(router)
