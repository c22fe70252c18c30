"""The borrower's credentials and data: ``/borrower/credentials`` (what each credential
certifies, its dates and its status), ``/borrower/data`` (download everything as JSON or
PDF; opt in to or out of discovery) and ``/borrower/erase`` (erasure, confirmed twice).

The same service functions as the API: the credentials are the issuer's holdings for the
subject (``issuer.export_credentials``, after ``identity.authorise`` as ``privacy`` does),
the export is ``privacy.export.export_subject`` (its ``subject.exported`` event included)
rendered by ``privacy.pdf.render_export_pdf`` for the PDF, discovery is
``consent.retrieval.set_discoverable`` and erasure ``privacy.erasure.erase_subject``.

Erasure is confirmed twice: a page says what is erased and what stays in the public log
(pseudonyms and hashes, which name nobody once the keys are gone), the borrower types the
confirmation word, a second page asks once more, and the final POST erases, signs the
subject out everywhere and shows the erasure receipt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from credit_commons.consent import retrieval
from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject, b64url_decode
from credit_commons.core.errors import NotFoundError
from credit_commons.identity import authorise
from credit_commons.issuer import ExportedCredential, export_credentials
from credit_commons.privacy.erasure import erase_subject
from credit_commons.privacy.export import export_subject
from credit_commons.privacy.pdf import render_export_pdf
from credit_commons.runtime import Runtime
from credit_commons.web import N_, add_flash, end_all_sessions, page_router, render
from credit_commons.web.borrower_code import forget_signin_codes
from credit_commons.web.borrower_consents import Me, borrower_principal
from credit_commons.web.borrower_words import (
    CREDENTIAL_STATUSES,
    CREDENTIAL_TYPES,
    fact,
    word,
)
from credit_commons.web.limits import count_act

__all__ = ["CONFIRM_WORDS", "Credential", "Fact", "router"]

router = page_router(prefix="/borrower")
CONFIRM_WORDS = frozenset({"ERASE", "मिटाएँ", "مٹائیں"})
"""The words that confirm an erasure: the one shown, in each language (any of them)."""
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class Fact:
    """One fact a credential certifies: its plain words and, for a simple value, the value."""

    label: str
    value: str | None


@dataclass(frozen=True)
class Credential:
    """A credential as the page shows it."""

    id: str
    type_text: str
    status: str
    status_text: str
    expired: bool
    issued: datetime
    expires: datetime
    facts: tuple[Fact, ...]


def _claims(text: str) -> JsonObject:
    # The claims of one of the borrower's own stored credentials, to show them to the
    # borrower: the JWT payload and, for an SD-JWT, every disclosure's name and value.
    try:
        parts = text.split("~")
        payload = json.loads(b64url_decode(parts[0].split(".")[1]))
        claims: JsonObject = dict(payload.get("vc", {}).get("credentialSubject", payload))
        for disclosure in parts[1:]:
            if disclosure:
                item = json.loads(b64url_decode(disclosure))
                if isinstance(item, list) and len(item) == 3 and isinstance(item[1], str):
                    claims[item[1]] = item[2]
    except (ValueError, IndexError, AttributeError):
        return {}
    return claims


_SHOWN = ("credit_tier", "income_bracket", "debt_ratio_bracket", "verification_sources")
_HIDDEN = {"iss", "iat", "exp", "nbf", "vct", "cnf", "status", "sub", "_sd", "_sd_alg", "id"}


def _facts(claims: dict[str, Any]) -> tuple[Fact, ...]:
    out = []
    for name, value in claims.items():
        if name in _HIDDEN or name.startswith("_"):
            continue
        shown: str | None = None
        if name in _SHOWN and isinstance(value, str | int):
            shown = str(value)
        elif name in _SHOWN and isinstance(value, list):
            shown = ", ".join(str(v) for v in value)
        out.append(Fact(fact("/" + name), shown))
    return tuple(out)


def _credential(item: ExportedCredential) -> Credential:
    return Credential(
        id=item.credential_id,
        type_text=word(CREDENTIAL_TYPES, item.type),
        status=item.status,
        status_text=word(CREDENTIAL_STATUSES, item.status),
        expired=item.expired,
        issued=utc(datetime.fromisoformat(item.issued_at)),
        expires=utc(datetime.fromisoformat(item.expires_at)),
        facts=_facts(_claims(item.credential)),
    )


@router.get("/credentials")
def credentials_page(request: Request, me: Me) -> HTMLResponse:
    """The borrower's credentials: what each certifies, when, and whether it still holds."""
    rt: Runtime = request.app.state.runtime
    with transaction(rt.read_sessions) as session:
        authorise(session, borrower_principal(me), me.subject)
        held = export_credentials(session, rt, me.subject)
    shown = [_credential(item) for item in reversed(held)]
    return render(request, "borrower/credentials.html", {"credentials": shown})


@router.get("/data")
def data_page(request: Request, me: Me) -> HTMLResponse:
    """Download, discovery, and the way to erasure."""
    del me
    return render(request, "borrower/data.html")


@router.post("/data/export.json")
def export_json(request: Request, me: Me) -> Response:
    """Everything held on the borrower, as the API's export answers it (a download)."""
    count_act(request, "export", me.subject)
    rt: Runtime = request.app.state.runtime
    with transaction(rt.sessions) as session:
        data = export_subject(session, rt, borrower_principal(me), me.subject)
    return JSONResponse(
        data.model_dump(mode="json"),
        headers={**_NO_STORE, "Content-Disposition": 'attachment; filename="my-data.json"'},
    )


@router.post("/data/export.pdf")
def export_pdf(request: Request, me: Me) -> Response:
    """Everything held on the borrower, as a PDF (a download)."""
    count_act(request, "export", me.subject)
    rt: Runtime = request.app.state.runtime
    with transaction(rt.sessions) as session:
        data = export_subject(session, rt, borrower_principal(me), me.subject)
    pdf = render_export_pdf(data.model_dump(mode="json"), generated_at=rt.clock.now())
    return Response(
        pdf,
        media_type="application/pdf",
        headers={**_NO_STORE, "Content-Disposition": 'attachment; filename="my-data.pdf"'},
    )


@router.post("/data/discovery")
def discovery(
    request: Request, me: Me, enabled: Annotated[str, Form(max_length=5)] = ""
) -> Response:
    """Opt in to (``enabled=yes``) or out of discovery by lenders."""
    rt: Runtime = request.app.state.runtime
    response = RedirectResponse("/borrower/data", status_code=303)
    try:
        with transaction(rt.sessions) as session:
            setting = retrieval.set_discoverable(
                session, rt, borrower_principal(me), me.subject, enabled=enabled == "yes"
            )
    except NotFoundError:
        add_flash(
            request,
            response,
            N_("Lenders cannot find you yet: you need a valid credit readiness credential."),
            "error",
        )
        return response
    if setting.discoverable:
        add_flash(request, response, N_("Lenders can now find you by your credit tier."), "success")
    else:
        add_flash(request, response, N_("Lenders can no longer find you."), "success")
    return response


@router.get("/erase")
def erase_page(request: Request, me: Me) -> HTMLResponse:
    """Erasure, step 1: what is erased, what stays, and the word to type."""
    del me
    return render(request, "borrower/erase.html", {"errors": {}})


@router.post("/erase")
def erase_check(
    request: Request, me: Me, confirm: Annotated[str, Form(max_length=40)] = ""
) -> HTMLResponse:
    """Erasure, step 2: the typed word checked; one last question."""
    del me
    if confirm.strip() not in CONFIRM_WORDS:
        errors = {"confirm": N_("Type the word exactly as it is shown.")}
        return render(request, "borrower/erase.html", {"errors": errors}, status=422)
    return render(request, "borrower/erase_confirm.html")


@router.post("/erase/final")
def erase(request: Request, me: Me, confirm: Annotated[str, Form(max_length=40)] = "") -> Response:
    """Erasure, done: the subject erased (the API's ``DELETE /v1/identities/{token}``),
    signed out everywhere, and the erasure receipt shown."""
    if confirm.strip() not in CONFIRM_WORDS:
        return RedirectResponse("/borrower/erase", status_code=303)
    count_act(request, "erase", me.subject)
    rt: Runtime = request.app.state.runtime
    with transaction(rt.sessions) as session:
        receipt = erase_subject(session, rt, borrower_principal(me), me.subject)
        forget_signin_codes(session, me.subject)
    document = json.dumps(receipt.model_dump(mode="json"), indent=2, ensure_ascii=False)
    # Signed out everywhere first, so the receipt's page is rendered signed out.
    signed_out = Response()
    end_all_sessions(request, signed_out, me.subject)
    response = render(
        request,
        "borrower/erased.html",
        {
            "receipt": receipt,
            "document": document,
            "after": utc(datetime.fromisoformat(receipt.unreadable_in_backups_after)),
        },
    )
    for cookie in signed_out.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", cookie)
    return response
