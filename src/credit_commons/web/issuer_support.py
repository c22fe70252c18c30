"""What the issuer desk's pages share (``web/issuer.py`` and ``web/issuer_offers.py``): the
officer's session and principal, a credential type's claim form, and the checks a form
gets before the service is called (the API's own request rules: an identity token's
pattern, a known format)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import FormData

from credit_commons.core.db import transaction
from credit_commons.identity import Principal
from credit_commons.issuer import credentials
from credit_commons.issuer import service as catalogue
from credit_commons.issuer.catalogue import ClaimsInvalid, CredentialType
from credit_commons.runtime import Runtime
from credit_commons.web.auth import requires
from credit_commons.web.i18n import N_
from credit_commons.web.issuer_form import (
    PREFIX,
    Field,
    FormUnavailable,
    Message,
    field_errors,
    form_of,
    walk,
)
from credit_commons.web.sessions import WebSession

__all__ = [
    "CREDENTIAL",
    "FORMATS",
    "OFFER",
    "SUBJECT",
    "ClaimForm",
    "Me",
    "check_claims",
    "check_subject",
    "claim_form",
    "form_lists",
    "principal_of",
    "runtime_of",
]

Me = Annotated[WebSession, Depends(requires("issuer"))]

SUBJECT = re.compile(r"idt_[a-zA-Z0-9]{12,32}")
CREDENTIAL = re.compile(r"crd_[0-9A-Z]{26}")
OFFER = re.compile(r"off_[0-9A-Z]{26}")
TYPE = re.compile(r"[A-Z][A-Za-z0-9]{2,63}")
_SUBJECT_FORM = Message(
    N_("Enter the borrower's identity token: idt_ and 12 to 32 letters or digits.")
)
FORMATS: tuple[tuple[str, str], ...] = (
    ("dc+sd-jwt", N_("SD-JWT VC (the borrower can share parts of it)")),
    ("vc+jwt", N_("W3C verifiable credential (VC-JWT)")),
)


def principal_of(me: WebSession) -> Principal:
    """The officer as the API knows them: the administrator principal they signed in with."""
    return Principal(subject=me.subject, role="admin")


def runtime_of(request: Request) -> Runtime:
    """The app's runtime."""
    runtime: Runtime = request.app.state.runtime
    return runtime


class ClaimForm:
    """A credential type's claim form, or why it cannot be shown (``unavailable``)."""

    def __init__(self, credential_type: CredentialType) -> None:
        self.type = credential_type
        self.unavailable: FormUnavailable | None = None
        self.fields: tuple[Field, ...] = ()
        try:
            self.fields = form_of(credential_type.schema)
        except FormUnavailable as e:
            self.unavailable = e

    def labels(self) -> dict[str, str]:
        """Each claim field's label (an English msgid or the schema's own title), by name."""
        return {item.name: item.label for item in walk(self.fields)}


def claim_form(request: Request, type_name: str) -> tuple[list[str], ClaimForm | None]:
    """Every type name of the catalogue, and the form of ``type_name`` (None when it names
    no type)."""
    runtime = runtime_of(request)
    with transaction(runtime.sessions) as session:
        types = catalogue.list_types(session, runtime)
    chosen = next((t for t in types if t.name == type_name), None)
    return [t.name for t in types], ClaimForm(chosen) if chosen else None


def form_lists(form: FormData) -> dict[str, list[str]]:
    """The claim fields of a submitted form, each name to its values."""
    return {
        key: [str(v) for v in form.getlist(key)] for key in form if key.startswith(PREFIX + ".")
    }


def check_claims(form: ClaimForm, claims: Mapping[str, Any]) -> dict[str, Message]:
    """The claims' field errors as the service finds them (``checked_claims``, what
    ``issue_credential`` and ``create_offer`` call first)."""
    try:
        credentials.checked_claims(form.type, claims)
    except ClaimsInvalid as e:
        return field_errors(form.fields, e.extra.get("errors", []))
    return {}


def check_subject(subject: str) -> dict[str, Message]:
    """An error for a subject that is not an identity token (the API's pattern)."""
    if not SUBJECT.fullmatch(subject):
        return {"subject": _SUBJECT_FORM}
    return {}
