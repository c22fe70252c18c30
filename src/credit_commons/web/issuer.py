"""The issuer desk, ``/issuer``: an issuing officer (signed in with an administrator's
platform token, role ``issuer``) issues credentials from a form generated from the
catalogue's JSON Schema, finds issued credentials and suspends, reinstates or revokes them,
and makes OID4VCI credential offers shown as QR codes (``web/issuer_offers.py``).

Every action calls the service functions the API's routes call
(``gateway/routes/issuer.py``: ``issue_credential``, ``change_status``; ``routes/oid4vci.py``:
``create_offer``) with the officer's administrator principal, in one unit of work, so the
same checks run and the same events are written.  The claims are checked by the same
schema, in the same call; its field-level errors are shown next to the form's fields
(``web/issuer_form.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from credit_commons.core.db import transaction
from credit_commons.core.errors import ConflictError, NotFoundError, ValidationError
from credit_commons.issuer import credentials, registry
from credit_commons.issuer.catalogue import ClaimsInvalid
from credit_commons.issuer.errors import StatusTransitionInvalid
from credit_commons.keys import KeyInvalid, public_key_from_jwk
from credit_commons.web import issuer_offers
from credit_commons.web.flash import add_flash
from credit_commons.web.i18n import N_
from credit_commons.web.issuer_form import Message, claims_of, field_errors
from credit_commons.web.issuer_support import (
    CREDENTIAL,
    FORMATS,
    SUBJECT,
    ClaimForm,
    Me,
    check_claims,
    check_subject,
    claim_form,
    form_lists,
    principal_of,
    runtime_of,
)
from credit_commons.web.render import render
from credit_commons.web.routing import Area, page_router
from credit_commons.web.sessions import WebSession

__all__ = ["AREA", "router"]

router = page_router(prefix="/issuer")
_PAGE = 20
_JWK_NEEDED = Message(N_("Paste the public key of the borrower's wallet, as a JWK (JSON)."))
_KEY_REFUSED = Message(N_("This key is not accepted: use an Ed25519 or P-256 public key."))
_ERASED = Message(N_("This borrower's data was erased; nothing can be issued to them."))
_NOT_POSSIBLE = N_("This change is not possible for this credential now.")
_ACTIONS: dict[str, str] = {
    "suspend": N_("Credential suspended."),
    "reinstate": N_("Credential reinstated."),
    "revoke": N_("Credential revoked."),
}


# -- the desk -----------------------------------------------------------------------------


@router.get("")
def desk(request: Request, me: Me) -> HTMLResponse:
    """The desk: issue, find a credential, make an offer."""
    del me
    return render(request, "issuer/desk.html")


# -- issuing -------------------------------------------------------------------------------


def _issue_page(
    request: Request,
    names: Sequence[str],
    form: ClaimForm | None,
    *,
    values: Mapping[str, Sequence[str]] | None = None,
    errors: Mapping[str, Message] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "issuer/issue.html",
        {
            "mode": "issue",
            "names": names,
            "form": form,
            "values": values or {},
            "errors": errors or {},
            "formats": FORMATS,
        },
        status=status,
    )


@router.get("/issue")
def issue_page(request: Request, me: Me, type: str = "") -> HTMLResponse:
    """Choose a credential type; then its form."""
    del me
    names, form = claim_form(request, type)
    return _issue_page(request, names, form, status=404 if type and form is None else 200)


def _holder_key(text: str) -> tuple[dict[str, str], dict[str, Message]]:
    problem = {"holder_jwk": _JWK_NEEDED}
    try:
        jwk = json.loads(text) if text.strip() else None
    except ValueError:
        return {}, problem
    if not isinstance(jwk, dict) or not all(isinstance(v, str) for v in jwk.values()):
        return {}, problem
    try:
        public_key_from_jwk(jwk)
    except KeyInvalid:
        return {}, {"holder_jwk": _KEY_REFUSED}
    return jwk, {}


def _issue(request: Request, me: WebSession, submitted: FormData) -> Response:
    type_name = str(submitted.get("type", ""))
    names, form = claim_form(request, type_name)
    if form is None or form.unavailable is not None:
        return _issue_page(request, names, form, status=404 if form is None else 422)
    subject = str(submitted.get("subject", "")).strip()
    credential_format = str(submitted.get("format", ""))
    holder_text = str(submitted.get("holder_jwk", ""))[:4000]
    lists = form_lists(submitted)
    claims, values = claims_of(form.fields, lists)
    shown: dict[str, Sequence[str]] = {
        **values,
        "subject": [subject],
        "format": [credential_format],
        "holder_jwk": [holder_text],
    }
    errors = {**check_subject(subject), **check_claims(form, claims)}
    if credential_format not in dict(FORMATS):
        errors["format"] = Message(N_("Choose a format."))
    holder_jwk, holder_errors = _holder_key(holder_text)
    errors.update(holder_errors)
    if errors:
        return _issue_page(request, names, form, values=shown, errors=errors, status=422)
    issued = _issue_with_service(
        request,
        me,
        form,
        subject=subject,
        claims=claims,
        holder_jwk=holder_jwk,
        credential_format=credential_format,
    )
    if isinstance(issued, str):
        response = RedirectResponse(f"/issuer/credentials/{issued}", status_code=303)
        add_flash(request, response, N_("Credential issued."), "success")
        return response
    errors = issued
    return _issue_page(request, names, form, values=shown, errors=errors, status=422)


def _issue_with_service(
    request: Request,
    me: WebSession,
    form: ClaimForm,
    *,
    subject: str,
    claims: dict[str, Any],
    holder_jwk: dict[str, str],
    credential_format: str,
) -> dict[str, Message] | str:
    # The API's call (POST /v1/credentials); the new credential's id, or the field errors.
    runtime = runtime_of(request)
    try:
        with transaction(runtime.sessions) as session:
            issued = credentials.issue_credential(
                session,
                runtime,
                principal_of(me),
                type_name=form.type.name,
                subject_token=subject,
                claims=claims,
                holder_jwk=holder_jwk,
                credential_format=credential_format,
            )
    except ClaimsInvalid as e:
        return field_errors(form.fields, e.extra.get("errors", []))
    except KeyInvalid:
        return {"holder_jwk": _KEY_REFUSED}
    except ConflictError:
        return {"subject": _ERASED}
    except NotFoundError:
        return {"subject": Message(N_("No borrower has this identity token."))}
    except ValidationError:
        return {"format": Message(N_("Choose a format."))}
    return issued.credential_id


@router.post("/issue")
async def issue(request: Request, me: Me) -> Response:
    """Issue the credential the form describes (``issue_credential``); its page after."""
    submitted = await request.form()
    return await run_in_threadpool(_issue, request, me, submitted)


# -- finding a credential, and changing its status -------------------------------------------


@router.get("/credentials")
def find_form(request: Request, me: Me) -> Response:
    """The form to find credentials (sent by POST: a borrower's identity token is never in
    a URL, where logs, histories and ``Referer`` keep it)."""
    del me
    context = {"q": "", "found": None, "error": None, "more": False}
    return render(request, "issuer/find.html", context)


@router.post("/credentials")
def find(
    request: Request,
    me: Me,
    q: Annotated[str, Form(max_length=200)] = "",
    after: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Find credentials: by credential id (straight to it) or by the borrower's identity
    token (their credentials, a page at a time; the next page is another POST)."""
    query = q.strip()
    if CREDENTIAL.fullmatch(query):
        return RedirectResponse(f"/issuer/credentials/{query}", status_code=303)
    found: list[registry.CredentialState] | None = None
    error = None
    more = False
    if SUBJECT.fullmatch(query):
        runtime = runtime_of(request)
        start = after if CREDENTIAL.fullmatch(after) else None
        with transaction(runtime.read_sessions) as session:
            found = registry.credential_states(
                session, runtime, principal_of(me), query, after=start, limit=_PAGE + 1
            )
        more, found = len(found) > _PAGE, found[:_PAGE]
    elif query:
        error = Message(N_("Enter a credential id (crd_…) or a borrower's identity token (idt_…)."))
    return render(
        request,
        "issuer/find.html",
        {"q": query, "found": found, "error": error, "more": more},
        status=422 if error else 200,
    )


def _credential(request: Request, me: WebSession, credential_id: str) -> registry.CredentialState:
    if not CREDENTIAL.fullmatch(credential_id):
        raise NotFoundError("no such credential")
    runtime = runtime_of(request)
    with transaction(runtime.read_sessions) as session:
        return registry.credential_state(session, runtime, principal_of(me), credential_id)


@router.get("/credentials/{credential_id}")
def credential(request: Request, me: Me, credential_id: str) -> HTMLResponse:
    """One credential: what it is, its status now, and what can be done to it."""
    state = _credential(request, me, credential_id)
    return render(request, "issuer/credential.html", {"credential": state})


@router.get("/credentials/{credential_id}/revoke")
def confirm_revoke(request: Request, me: Me, credential_id: str) -> HTMLResponse:
    """Revoking is final: this page asks the officer to confirm it."""
    state = _credential(request, me, credential_id)
    return render(request, "issuer/revoke.html", {"credential": state})


@router.post("/credentials/{credential_id}/{action}")
def change_status(request: Request, me: Me, credential_id: str, action: str) -> Response:
    """Suspend, reinstate or revoke (``change_status``, as ``POST
    /v1/credentials/{id}/{action}``); back to the credential's page."""
    if action not in _ACTIONS or not CREDENTIAL.fullmatch(credential_id):
        raise NotFoundError("no such page")
    runtime = runtime_of(request)
    response = RedirectResponse(f"/issuer/credentials/{credential_id}", status_code=303)
    try:
        with transaction(runtime.sessions) as session:
            registry.change_status(
                session,
                runtime,
                principal_of(me),
                credential_id,
                registry.StatusAction(action),
            )
    except (StatusTransitionInvalid, ValidationError) as e:
        if isinstance(e, NotFoundError):
            raise
        add_flash(request, response, _NOT_POSSIBLE, "error")
        return response
    add_flash(request, response, _ACTIONS[action], "success")
    return response


router.include_router(issuer_offers.router)
AREA = Area(router)
