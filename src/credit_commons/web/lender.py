"""The lender's pages (``/lender``) and their sign-in (``/signin/lender``).

A lender's staff sign in with a **console token** an administrator issued for their lender
client (``commons admin lender console-token``; ``lenders/console.py``).  The session's
subject is the token's id, and every page checks the token again (:func:`lender_of`): a
revoked or expired token, or a suspended lender, ends the session at the next page.  The
pages then act as that lender client — with every scope a client may hold — through the
same service functions as the lender API, so the same checks run and the same events are
written:

- ``/lender``: the decisions — the lender's consent requests and their status, newest
  first, a page at a time (``consent.requests.list_for_lender``);
- ``/lender/request``: a consent request from a template (``requests.request_consent``, as
  ``POST /v1/consents``), with field-level errors;
- ``/lender/consents/{id}``: one request (``requests.get_for_lender``, as
  ``GET /v1/consents/{id}``) and, once approved, the retrieval: ``POST …/retrieve`` runs
  ``consent.retrieval.retrieve`` (as ``GET /v1/lender/credentials``) and shows the facts
  with their checks (``web/lender_checks.py``).  A refused retrieval is recorded as the
  API records it and answered with the same "not permitted" whatever the reason.  The
  facts are shown in the answer to the POST and kept nowhere (a VIEW consent's facts may
  be looked at, not kept), so that page is not a redirect;
- ``/lender/receipts/{event_id}``: the public log's receipt of an access, verified here;
- ``/lender/discovery``: opted-in borrowers' public attributes (``retrieval.discover``, as
  ``GET /v1/lender/discovery``), each with a link to ask them for consent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from credit_commons import lenders
from credit_commons.consent import requests as consent_requests
from credit_commons.consent import retrieval
from credit_commons.consent.access import Denied, anonymous_actor, lender_actor, record_refusal
from credit_commons.consent.model import TEMPLATES
from credit_commons.consent.schemas import ConsentView
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.issuer import service as catalogue_service
from credit_commons.runtime import Runtime
from credit_commons.web.auth import SignInRequired, require, safe_next, start_session
from credit_commons.web.flash import add_flash
from credit_commons.web.i18n import N_
from credit_commons.web.lender_checks import check_credential, check_receipt
from credit_commons.web.lender_forms import (
    CLAIM_LABELS,
    FIELD_LABELS,
    PURPOSE_LABELS,
    TEMPLATE_LABELS,
    UNITS,
    RequestForm,
    errors_of,
    max_days,
    read_form,
)
from credit_commons.web.limits import count_act
from credit_commons.web.render import render
from credit_commons.web.routing import Area, SignInMethod, page_router
from credit_commons.web.sessions import delete_all_sessions, remember_session

__all__ = ["AREA", "OPERATION", "PAGE_SIZE", "ConsoleLender", "lender_of", "router"]

router = page_router()
OPERATION = "web.signin"
PAGE_SIZE = 20
_CONSENT_ID = r"^cns_[0-9A-Z]{26}$"
_EVENT_ID = r"^evt_[0-9A-Z]{26}$"


@dataclass(frozen=True)
class ConsoleLender:
    """The lender client a console session acts as (what the consent services take as the
    lender, like the API's ``LenderPrincipal``), and who signed in."""

    client_id: str
    name: str
    purposes: frozenset[str]
    actor: str
    label: str


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def lender_of(request: Request) -> ConsoleLender:
    """The lender the signed-in console session acts as, its token checked again now.

    Raises :class:`SignInRequired` (303 to the sign-in page, the session ended) when the
    token was revoked or expired or the lender suspended, and what ``require`` raises."""
    me = require(request, "lender")
    rt = _runtime(request)
    with transaction(rt.read_sessions) as session:
        grant = lenders.console_grant(session, rt, me.subject)
    if grant is None:
        with transaction(rt.sessions) as session:
            delete_all_sessions(session, me.subject)
        remember_session(request, None)
        raise SignInRequired(request.url.path)
    return ConsoleLender(
        grant.client_id, grant.name, grant.purposes, lender_actor(rt, grant.client_id), grant.label
    )


Me = Annotated[ConsoleLender, Depends(lender_of)]


# -- sign-in -----------------------------------------------------------------------------


@router.get("/signin/lender")
def sign_in_page(request: Request, next: str = "/lender") -> HTMLResponse:
    """The lender's sign-in: a console token."""
    return render(request, "lender/signin.html", {"next": safe_next(next), "refused": False})


@router.post("/signin/lender")
def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=400)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/lender",
) -> Response:
    """Sign in with a console token; one refusal whatever the reason, counted as the API
    counts a refused credential (it names no borrower)."""
    rt = _runtime(request)
    with transaction(rt.read_sessions) as session:
        grant = lenders.console_sign_in(session, rt, token.strip())
    if grant is None:
        record_refusal(
            rt,
            actor=anonymous_actor(rt),
            operation=OPERATION,
            reason="auth.token_invalid",
            counter=getattr(request.app.state, "denial_counter", None),
        )
        context = {"next": safe_next(next), "refused": True}
        return render(request, "lender/signin.html", context, status=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    start_session(
        request,
        response,
        role="lender",
        subject=grant.token_id,
        display_name=f"{grant.name} ({grant.label})"[:200],
    )
    add_flash(request, response, N_("You are signed in."), "success")
    return response


# -- decisions ---------------------------------------------------------------------------


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class _Shown:
    # A consent request as the pages show it: the API's view, its times, and its labels.
    consent: ConsentView
    starts: datetime | None
    expires: datetime | None
    created: datetime | None
    purpose_label: str
    template_label: str


def _shown(view: ConsentView) -> _Shown:
    return _Shown(
        consent=view,
        starts=_moment(view.consent_start),
        expires=_moment(view.consent_expiry),
        created=_moment(view.created_at),
        purpose_label=PURPOSE_LABELS.get(view.purpose.code, view.purpose.text),
        template_label=TEMPLATE_LABELS.get(view.template, view.template),
    )


@router.get("/lender")
def decisions(
    request: Request,
    me: Me,
    before: Annotated[str | None, Query(pattern=_CONSENT_ID)] = None,
) -> HTMLResponse:
    """The lender's consent requests and their status, newest first, a page at a time."""
    rt = _runtime(request)
    with transaction(rt.read_sessions) as session:
        found = consent_requests.list_for_lender(
            session, rt, me, before=before, limit=PAGE_SIZE + 1
        )
    rows = [_shown(v) for v in found[:PAGE_SIZE]]
    older = found[PAGE_SIZE - 1].consent_id if len(found) > PAGE_SIZE else None
    context = {"me": me, "rows": rows, "older": older, "first_page": before is None}
    return render(request, "lender/decisions.html", context)


@router.get("/lender/consents/{consent_id}")
def consent_page(
    request: Request, me: Me, consent_id: Annotated[str, Path(pattern=_CONSENT_ID)]
) -> HTMLResponse:
    """One consent request: its terms and status, and the retrieval once approved."""
    rt = _runtime(request)
    with transaction(rt.read_sessions) as session:
        view = consent_requests.get_for_lender(session, rt, me, consent_id)
    context = {"me": me, "row": _shown(view), "claim_labels": CLAIM_LABELS}
    return render(request, "lender/consent.html", context)


@router.post("/lender/consents/{consent_id}/retrieve")
def retrieve(
    request: Request, me: Me, consent_id: Annotated[str, Path(pattern=_CONSENT_ID)]
) -> HTMLResponse:
    """Retrieve the consented facts (the API's consent-gated retrieval), and show them with
    their checks; a refusal is recorded and shown as "not permitted", whatever it was."""
    count_act(request, "lender-api", me.client_id)
    rt = _runtime(request)
    try:
        result = retrieval.retrieve(rt, me, consent_id)
    except Denied as e:
        e.record(rt, getattr(request.app.state, "denial_counter", None))
        return render(request, "lender/denied.html", {"consent_id": consent_id}, status=403)
    checked = check_credential(rt, result.credential)
    receipt = check_receipt(rt, result.access_event_id)
    context = {
        "me": me,
        "result": result,
        "checked": checked,
        "receipt": receipt,
        "claim_labels": CLAIM_LABELS,
    }
    return render(request, "lender/retrieved.html", context)


@router.get("/lender/receipts/{event_id}")
def receipt_page(
    request: Request, me: Me, event_id: Annotated[str, Path(pattern=_EVENT_ID)]
) -> HTMLResponse:
    """The public log's receipt of an access, verified on the server."""
    receipt = check_receipt(_runtime(request), event_id)
    return render(
        request, "lender/receipt.html", {"me": me, "event_id": event_id, "receipt": receipt}
    )


# -- a consent request from a template ---------------------------------------------------


def _catalogue(request: Request) -> list[tuple[str, list[str]]]:
    # Every credential type of the catalogue and its disclosable claim paths (the
    # catalogue installs its built-in types on first use: a write unit of work).
    rt = _runtime(request)
    with transaction(rt.sessions) as session:
        types = catalogue_service.list_types(session, rt)
    return [(t.name, list(t.disclosable)) for t in types]


def _form_page(
    request: Request,
    me: ConsoleLender,
    form: RequestForm,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    template = TEMPLATES[form.template]
    purposes = [
        (code, PURPOSE_LABELS.get(code, code)) for code in sorted(template.purposes & me.purposes)
    ]
    context = {
        "me": me,
        "form": form,
        "template": template,
        "template_label": TEMPLATE_LABELS.get(template.name, template.name),
        "purposes": purposes,
        "catalogue": _catalogue(request),
        "claim_labels": CLAIM_LABELS,
        "labels": FIELD_LABELS,
        "errors": errors or {},
        "max_days": max_days(template),
        "periodic": "PERIODIC" in template.fetch_types,
        "units": UNITS,
    }
    return render(request, "lender/request.html", context, status=422 if errors else 200)


@router.get("/lender/request")
def request_page(
    request: Request,
    me: Me,
    template: Annotated[str | None, Query(max_length=40)] = None,
    borrower: Annotated[str, Query(max_length=420)] = "",
) -> HTMLResponse:
    """Choose a template, then fill in the request it allows."""
    if template is None or template not in TEMPLATES:
        choices = [
            (t, TEMPLATE_LABELS.get(t, t), TEMPLATES[t], max_days(TEMPLATES[t])) for t in TEMPLATES
        ]
        return render(
            request,
            "lender/templates.html",
            {"me": me, "choices": choices, "borrower": borrower},
        )
    days = str(min(14, max_days(TEMPLATES[template])))
    return _form_page(request, me, RequestForm(template=template, borrower=borrower, days=days))


@router.post("/lender/request")
def request_consent(
    request: Request,
    me: Me,
    *,
    template: Annotated[str, Form(max_length=40)],
    borrower: Annotated[str, Form(max_length=420)] = "",
    purpose: Annotated[str, Form(max_length=40)] = "",
    facts: Annotated[list[str] | None, Form()] = None,
    mode: Annotated[str, Form(max_length=8)] = "VIEW",
    days: Annotated[str, Form(max_length=8)] = "",
    data_life_value: Annotated[str, Form(max_length=8)] = "",
    data_life_unit: Annotated[str, Form(max_length=8)] = "DAY",
    frequency_value: Annotated[str, Form(max_length=8)] = "1",
    frequency_unit: Annotated[str, Form(max_length=8)] = "DAY",
) -> Response:
    """Ask the borrower for consent, as ``POST /v1/consents`` does for this lender."""
    if template not in TEMPLATES:
        return RedirectResponse("/lender/request", status_code=303)
    form = RequestForm(
        template=template,
        borrower=borrower,
        purpose=purpose,
        facts=[f[:200] for f in (facts or [])[:64]],
        mode=mode,
        days=days,
        data_life_value=data_life_value,
        data_life_unit=data_life_unit,
        frequency_value=frequency_value,
        frequency_unit=frequency_unit,
    )
    rt = _runtime(request)
    body = read_form(form, rt.clock.now())
    if isinstance(body, dict):
        return _form_page(request, me, form, body)
    try:
        with transaction(rt.sessions) as session:
            made = consent_requests.request_consent(session, rt, me, body)
    except CommonsError as e:
        errors = errors_of(e)
        if errors is None:
            raise
        return _form_page(request, me, form, errors)
    response = RedirectResponse(f"/lender/consents/{made.consent_id}", status_code=303)
    add_flash(request, response, N_("Consent requested. The borrower will be asked."), "success")
    return response


# -- discovery ---------------------------------------------------------------------------


@router.get("/lender/discovery")
def discovery(
    request: Request,
    me: Me,
    tier: Annotated[str, Query(pattern=r"^(A|B|C)?$")] = "",
) -> HTMLResponse:
    """Opted-in borrowers' public attributes (the API's discovery), by credit tier."""
    rt = _runtime(request)
    with transaction(rt.read_sessions) as session:
        found = retrieval.discover(session, rt, me, credit_tier=tier or None, limit=50)
    context = {"me": me, "found": found, "tier": tier, "tiers": ("A", "B", "C")}
    return render(request, "lender/discovery.html", context)


AREA = Area(
    router,
    sign_in=(SignInMethod("/signin/lender", N_("A lender's console token"), ("lender",)),),
)
