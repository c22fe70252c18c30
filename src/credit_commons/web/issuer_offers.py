"""The issuer desk's OID4VCI credential offers, ``/issuer/offers``: the officer fills in
the claim form, the platform makes the offer (``oid4vci.create_offer``, as ``POST
/v1/credential-offers``) and the offer's page shows its ``openid-credential-offer://`` URI
(by reference, as the API gives it) as a QR code the borrower's wallet scans, drawn on the
server with segno (``/issuer/offers/{id}/qr.svg``: an image of this site, as the CSP's
``img-src 'self'`` wants), and the transaction code the officer reads to the borrower.

The transaction code exists in clear only in ``create_offer``'s answer (the platform keeps
its hash).  To show it after the POST → 303 → GET, it is kept on the server with the
officer's session row for two minutes (``web/sessions.keep_offer_code``, written in the
offer's own unit of work) and cleared by the page that shows it (``take_offer_code``): it
is shown once, to that session only, as the API shows it once, and never travels in a
cookie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from credit_commons.core.db import transaction
from credit_commons.core.errors import NotFoundError
from credit_commons.issuer import oid4vci
from credit_commons.issuer.catalogue import ClaimsInvalid
from credit_commons.issuer.schemas import CredentialOffer
from credit_commons.web.cookies import read_cookie
from credit_commons.web.flash import add_flash
from credit_commons.web.i18n import N_
from credit_commons.web.issuer_form import Message, claims_of, field_errors
from credit_commons.web.issuer_support import (
    FORMATS,
    OFFER,
    ClaimForm,
    Me,
    check_claims,
    check_subject,
    claim_form,
    form_lists,
    principal_of,
    runtime_of,
)
from credit_commons.web.qr import qr_svg
from credit_commons.web.render import render
from credit_commons.web.routing import page_router
from credit_commons.web.sessions import COOKIE as SESSION_COOKIE
from credit_commons.web.sessions import WebSession, keep_offer_code, take_offer_code

__all__ = ["offer_uri", "router"]

router = page_router(prefix="/offers")
_TX_CODE_KEPT = timedelta(minutes=2)


def offer_uri(offer_id: str, offer: CredentialOffer) -> str:
    """The offer's URI by reference, as ``create_offer`` answers it
    (``offer_uri_by_reference``): the wallet fetches the offer from this platform."""
    reference = f"{offer.credential_issuer}/v1/credential-offers/{offer_id}"
    return "openid-credential-offer://?credential_offer_uri=" + quote(reference, safe="")


def _offer_page(
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
            "mode": "offer",
            "names": names,
            "form": form,
            "values": values or {"tx_code": ["yes"]},
            "errors": errors or {},
            "formats": FORMATS,
        },
        status=status,
    )


@router.get("/new")
def new_offer(request: Request, me: Me, type: str = "") -> HTMLResponse:
    """Choose a credential type; then its form, for an offer."""
    del me
    names, form = claim_form(request, type)
    return _offer_page(request, names, form, status=404 if type and form is None else 200)


def _create(request: Request, me: WebSession, submitted: FormData) -> Response:
    names, form = claim_form(request, str(submitted.get("type", "")))
    if form is None or form.unavailable is not None:
        return _offer_page(request, names, form, status=404 if form is None else 422)
    subject = str(submitted.get("subject", "")).strip()
    credential_format = str(submitted.get("format", ""))
    with_tx_code = submitted.get("tx_code") == "yes"
    claims, values = claims_of(form.fields, form_lists(submitted))
    shown: dict[str, Sequence[str]] = {
        **values,
        "subject": [subject],
        "format": [credential_format],
        "tx_code": ["yes"] if with_tx_code else [],
    }
    errors = {**check_subject(subject), **check_claims(form, claims)}
    if credential_format not in dict(FORMATS):
        errors["format"] = Message(N_("Choose a format."))
    if errors:
        return _offer_page(request, names, form, values=shown, errors=errors, status=422)
    runtime = runtime_of(request)
    session_id = read_cookie(request, SESSION_COOKIE) or ""
    try:
        with transaction(runtime.sessions) as session:
            created = oid4vci.create_offer(
                session,
                runtime,
                principal_of(me),
                type_name=form.type.name,
                subject_token=subject,
                claims=claims,
                with_tx_code=with_tx_code,
                credential_format=credential_format,
            )
            if created.tx_code:
                until = runtime.clock.now() + _TX_CODE_KEPT
                keep_offer_code(session, session_id, created.offer_id, created.tx_code, until)
    except ClaimsInvalid as e:
        errors = field_errors(form.fields, e.extra.get("errors", []))
        return _offer_page(request, names, form, values=shown, errors=errors, status=422)
    response = RedirectResponse(f"/issuer/offers/{created.offer_id}", status_code=303)
    add_flash(request, response, N_("Offer made."), "success")
    return response


@router.post("")
async def create(request: Request, me: Me) -> Response:
    """Make the offer the form describes (``create_offer``); its page after."""
    submitted = await request.form()
    return await run_in_threadpool(_create, request, me, submitted)


def _offer(request: Request, offer_id: str) -> CredentialOffer:
    if not OFFER.fullmatch(offer_id):
        raise NotFoundError("no such credential offer")
    runtime = runtime_of(request)
    with transaction(runtime.read_sessions) as session:
        return oid4vci.get_offer(session, runtime, offer_id)


def _tx_code(request: Request, offer_id: str) -> str | None:
    # The transaction code of this offer if this session was just given it (taken: the
    # next visit has none), else None.
    session_id = read_cookie(request, SESSION_COOKIE)
    if not session_id:
        return None
    runtime = runtime_of(request)
    with transaction(runtime.sessions) as session:
        return take_offer_code(session, session_id, offer_id, runtime.clock.now())


@router.get("/{offer_id}")
def offer(request: Request, me: Me, offer_id: str) -> HTMLResponse:
    """The offer: its QR code and URI, and its transaction code the first time."""
    found = _offer(request, offer_id)
    del me
    tx_code = _tx_code(request, offer_id)
    grant = found.grants.get(oid4vci.PRE_AUTHORIZED_GRANT, {})
    return render(
        request,
        "issuer/offer.html",
        {
            "offer_id": offer_id,
            "uri": offer_uri(offer_id, found),
            "configurations": found.credential_configuration_ids,
            "needs_code": isinstance(grant, dict) and "tx_code" in grant,
            "tx_code": tx_code,
        },
    )


@router.get("/{offer_id}/qr.svg")
def offer_qr(request: Request, me: Me, offer_id: str) -> Response:
    """The offer's URI as a QR code (SVG), drawn here."""
    del me
    found = _offer(request, offer_id)
    return qr_svg(offer_uri(offer_id, found), scale=5)
