"""``/signin`` (the sign-in page, and its bearer-token method), ``/signout`` and
``/signout/everywhere``.

The bearer-token method signs in whoever holds a platform token (``cct_…``): an identity's
token as a borrower, or as a field agent when the identity holds the ``field_agent`` role
(the visitor chooses), an administrator's as the issuer desk.  A token without the role
asked for is refused as a wrong token is.  Other methods (a borrower's one-time code, a
lender's key) belong to their page modules: each owns its page under ``/signin/<method>``, calls
:func:`~credit_commons.web.auth.start_session` once it has authenticated the visitor, and
lists itself here through its :class:`~credit_commons.web.routing.Area`.

A refused sign-in says only that it was refused — the same words whatever the reason — and
is recorded as the API records a refused credential (``consent.access.record_refusal``):
an ``access.denied`` event in the borrower's history (operation ``web.signin``) when the
token names an existing identity, a count otherwise.  A successful one is logged (role and
the actor's pseudonym), as the API's requests are; no event is added.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from credit_commons.consent.access import anonymous_actor, record_refusal
from credit_commons.core.db import transaction
from credit_commons.core.errors import UnauthorizedError
from credit_commons.identity import Principal, subject_of, token_digest
from credit_commons.identity import auth as identity_auth
from credit_commons.identity import service as identity_service
from credit_commons.identity.schemas import Role
from credit_commons.runtime import Runtime
from credit_commons.web.auth import end_all_sessions, end_session, require, safe_next, start_session
from credit_commons.web.flash import add_flash
from credit_commons.web.i18n import N_
from credit_commons.web.render import render
from credit_commons.web.routing import Area, page_router

__all__ = ["AREA", "OPERATION", "TOKEN_ROLES", "router"]

router = page_router()
OPERATION = "web.signin"
TOKEN_ROLES: dict[str, str] = {"borrower": "identity", "agent": "identity", "issuer": "admin"}
"""The console roles the bearer-token method signs in as, and the platform role the
token must have for each."""
IDENTITY_ROLES: dict[str, Role] = {"agent": Role.FIELD_AGENT}
"""The console roles an identity must also hold a role of its own for (identity/)."""
_MAX_NAME = 120  # a session's display name is at most 200 characters (web/sessions.py)


def _page(request: Request, next_path: str, *, refused: bool = False) -> HTMLResponse:
    methods = getattr(request.app.state, "web_sign_in_methods", ())
    return render(
        request,
        "signin.html",
        {"next": next_path, "refused": refused, "methods": methods, "roles": tuple(TOKEN_ROLES)},
        status=401 if refused else 200,
    )


@router.get("/signin")
def sign_in_page(request: Request, next: str = "/") -> HTMLResponse:
    """The sign-in page: the bearer-token form and the other methods' links."""
    return _page(request, safe_next(next))


def _authenticate(request: Request, token: str, role: str) -> Principal | None:
    """The principal of ``token`` if it may sign in as ``role``; None after recording the
    refusal."""
    runtime: Runtime = request.app.state.runtime
    reason, subject = "auth.token_invalid", None
    if role in TOKEN_ROLES and token.startswith("cct_") and len(token) <= 200:
        try:
            with transaction(runtime.read_sessions) as session:
                principal = identity_auth.authenticate(session, runtime, f"Bearer {token}")
                needed = IDENTITY_ROLES.get(role)
                holds = needed is None or (
                    principal.subject.startswith("idt_")
                    and identity_service.has_role(session, principal.subject, needed)
                )
        except UnauthorizedError:
            principal, holds = None, False
        if principal is not None and principal.role == TOKEN_ROLES[role] and holds:
            return principal
        if principal is not None:
            reason = "auth.role_mismatch"
            if principal.subject.startswith("idt_"):
                subject = subject_of(runtime, principal.subject)
    record_refusal(
        runtime,
        actor=anonymous_actor(runtime),
        operation=OPERATION,
        reason=reason,
        subject=subject,
        counter=getattr(request.app.state, "denial_counter", None),
    )
    return None


def _display_name(runtime: Runtime, principal: Principal) -> str:
    # What the console's header calls the signed-in visitor: an administrator's name, an
    # identity's registered name, else the start of its token.  ``display_name`` has no
    # authorisation of its own; here the identity that just proved its token is naming
    # itself, so nobody learns another's name.
    if principal.subject.startswith("admin:"):
        return principal.subject.removeprefix("admin:")
    with transaction(runtime.read_sessions) as session:
        name = identity_service.display_name(session, runtime, principal.subject)
    if name is not None and name.strip():
        return name.strip()[:_MAX_NAME]
    return principal.subject[:12] + "…"


@router.post("/signin")
def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=400)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Sign in with a platform token as ``role``; back to ``next`` (a local path)."""
    token = token.strip()
    principal = _authenticate(request, token, role)
    if principal is None:
        return _page(request, safe_next(next), refused=True)
    response = RedirectResponse(safe_next(next), status_code=303)
    start_session(
        request,
        response,
        role=role,
        subject=principal.subject,
        display_name=_display_name(request.app.state.runtime, principal),
        token_hash=token_digest(token),
    )
    add_flash(request, response, N_("You are signed in."), "success")
    return response


@router.post("/signout")
def sign_out(request: Request) -> Response:
    """Sign this browser out."""
    response = RedirectResponse("/", status_code=303)
    end_session(request, response)
    add_flash(request, response, N_("You are signed out."), "success")
    return response


@router.post("/signout/everywhere")
def sign_out_everywhere(request: Request) -> Response:
    """Sign the signed-in subject out of every browser."""
    me = require(request)
    response = RedirectResponse("/", status_code=303)
    end_all_sessions(request, response, me.subject)
    add_flash(request, response, N_("You are signed out on every device."), "success")
    return response


AREA = Area(router)
