"""``/signin/code``: a borrower signs in with a one-time code sent through the platform's
notification channel (``consent/notify.py``, purpose ``signin``) — for a borrower who has
their identity token (``idt_…``, on their card or in their wallet) but no platform token.

1. The borrower gives their identity token.  If it names an identity, a six-digit code is
   sent to it, valid :data:`CODE_TTL`, at most :data:`CODES_PER_HOUR` an hour per identity;
   the code is stored only as its keyed hash (the pseudonym pepper's HMAC, bound to the
   challenge), never in clear.  Whatever the token, the answer is the same: the page to
   enter the code, with a random challenge id in a cookie (``signin-code``) — an unknown
   identity gets a challenge that matches no row, so nothing tells whether it exists.
2. The borrower enters the code: right, within :data:`ATTEMPTS` tries and before it
   expires, signs them in (:func:`~credit_commons.web.auth.start_session`: a new session,
   the earlier one ended) as ``borrower``, and the code is spent.

Every refusal says only "Sign-in failed" and is recorded as ``web/signin.py`` records one
(``consent.access.record_refusal``, operation ``web.signin``): an ``access.denied`` event in
the borrower's history when it concerns an existing identity (a wrong, expired or used-up
code; a code asked for beyond the hourly limit), a count otherwise.  Both POSTs are under
``/signin/``, so they count in the ``web-signin`` rate limit per address (docs/limits.md),
and again per identity (web/limits.py): the one named at step 1, the one the challenge's
code was sent to at step 2, so guesses spread over many addresses are counted together.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from credit_commons.consent import notify
from credit_commons.consent.access import anonymous_actor, record_refusal
from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.identity import service as identity_service
from credit_commons.identity import subject_of
from credit_commons.runtime import Runtime
from credit_commons.web.auth import safe_next, start_session
from credit_commons.web.borrower_models import SignInCodeRow
from credit_commons.web.cookies import delete_cookie, read_cookie, set_cookie
from credit_commons.web.flash import add_flash
from credit_commons.web.i18n import N_
from credit_commons.web.limits import count_act
from credit_commons.web.render import render
from credit_commons.web.routing import SignInMethod, page_router

__all__ = [
    "ATTEMPTS",
    "CODES_PER_HOUR",
    "CODE_TTL",
    "COOKIE",
    "METHOD",
    "OPERATION",
    "forget_signin_codes",
    "prune_signin_codes",
    "router",
]

router = page_router()
OPERATION = "web.signin"
COOKIE = "signin-code"
CODE_TTL = timedelta(minutes=10)
"""How long a code can be used."""
ATTEMPTS = 5
"""Wrong tries a code survives."""
CODES_PER_HOUR = 3
"""Codes an identity can be sent in an hour."""
_KEPT = timedelta(hours=1)
_TOKEN = re.compile(r"idt_[a-zA-Z0-9]{12,32}")
_CODE = re.compile(r"[0-9]{6}")
METHOD = SignInMethod("/signin/code", N_("A one-time code sent to your phone"), ("borrower",))
"""The method as ``/signin`` lists it."""


def _digest(challenge: str) -> str:
    return hashlib.sha256(challenge.encode()).hexdigest()


def _code_hash(rt: Runtime, challenge: str, code: str) -> str:
    return rt.pseudonymizer.pseudonym("web-signin-code", f"{challenge}:{code}")


@dataclass(frozen=True)
class _Outcome:
    # What a step decided: the identity concerned (None when none exists or none was
    # named), and the refusal's reason (None when it succeeded).
    token: str | None
    refusal: str | None


def _refuse(request: Request, outcome: _Outcome) -> None:
    # As web/signin.py records a refusal: the borrower's event when it concerns an
    # existing identity, a count otherwise.
    rt: Runtime = request.app.state.runtime
    record_refusal(
        rt,
        actor=anonymous_actor(rt),
        operation=OPERATION,
        reason=outcome.refusal or "auth.code_invalid",
        subject=subject_of(rt, outcome.token) if outcome.token else None,
        counter=getattr(request.app.state, "denial_counter", None),
    )


def prune_signin_codes(session: Session, now: datetime) -> int:
    """Delete the codes sent more than an hour before ``now`` (past their use and their
    hourly count); how many went (retention: the worker's periodic step)."""
    result = session.execute(delete(SignInCodeRow).where(SignInCodeRow.created_at < now - _KEPT))
    return int(getattr(result, "rowcount", 0) or 0)


def forget_signin_codes(session: Session, token: str) -> int:
    """Delete every code sent to identity ``token`` (at its erasure); how many went."""
    result = session.execute(delete(SignInCodeRow).where(SignInCodeRow.subject == token))
    return int(getattr(result, "rowcount", 0) or 0)


@router.get("/signin/code")
def ask_page(request: Request, next: str = "/borrower") -> HTMLResponse:
    """Step 1: the borrower's identity token."""
    return render(request, "borrower/signin_code.html", {"next": safe_next(next), "errors": {}})


def _issue(rt: Runtime, token: str, challenge: str) -> tuple[_Outcome, str | None]:
    # A code for an existing identity under its hourly limit: the row written and the code
    # returned with it; otherwise the refusal, and nothing written.
    now = rt.clock.now()
    with transaction(rt.sessions) as session:
        prune_signin_codes(session, now)
        if not identity_service.identity_exists(session, token):
            return _Outcome(None, "auth.token_invalid"), None
        sent = session.scalar(
            select(func.count())
            .select_from(SignInCodeRow)
            .where(SignInCodeRow.subject == token, SignInCodeRow.created_at >= now - _KEPT)
        )
        if (sent or 0) >= CODES_PER_HOUR:
            return _Outcome(token, "auth.code_limited"), None
        code = f"{secrets.randbelow(1_000_000):06d}"
        session.add(
            SignInCodeRow(
                id_hash=_digest(challenge),
                subject=token,
                code_hash=_code_hash(rt, challenge, code),
                attempts=0,
                created_at=now,
                expires_at=now + CODE_TTL,
            )
        )
    return _Outcome(token, None), code


@router.post("/signin/code")
def send(
    request: Request,
    identity: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/borrower",
) -> Response:
    """Send a code to the identity named (if it exists, under its limit); always on to the
    page to enter it."""
    rt: Runtime = request.app.state.runtime
    token, next_path = identity.strip(), safe_next(next)
    if not _TOKEN.fullmatch(token):
        errors = {"identity": N_("Enter your identity token: it starts with idt_.")}
        return render(
            request,
            "borrower/signin_code.html",
            {"next": next_path, "errors": errors, "identity": token},
            status=422,
        )
    # Per identity named, whether it exists or not (the same answer either way).
    count_act(request, "web-signin", token)
    challenge = secrets.token_urlsafe(32)
    outcome, code = _issue(rt, token, challenge)
    if code is not None:
        notify.send_code(rt, token, "", code, purpose=notify.SIGN_IN)
    else:
        _refuse(request, outcome)
    response = RedirectResponse("/signin/code/enter?next=" + quote(next_path, safe="/"), 303)
    set_cookie(request, response, COOKIE, challenge, max_age=int(CODE_TTL.total_seconds()))
    return response


@router.get("/signin/code/enter")
def enter_page(request: Request, next: str = "/borrower") -> HTMLResponse:
    """Step 2: the code."""
    return render(
        request,
        "borrower/signin_code_enter.html",
        {"next": safe_next(next), "refused": False},
    )


def _subject_of(rt: Runtime, challenge: str | None) -> str | None:
    # The identity a challenge's code was sent to (None for no such challenge).
    if not challenge or len(challenge) > 128:
        return None
    with transaction(rt.read_sessions) as session:
        row = session.get(SignInCodeRow, _digest(challenge))
        return row.subject if row is not None else None


def _check(rt: Runtime, challenge: str | None, code: str) -> _Outcome:
    # The code against the challenge's row: a wrong one counts a try (committed).
    if not challenge or len(challenge) > 128:
        return _Outcome(None, "auth.code_invalid")
    now = rt.clock.now()
    with transaction(rt.sessions) as session:
        row = session.get(SignInCodeRow, _digest(challenge))
        if row is None:
            return _Outcome(None, "auth.code_invalid")
        if row.attempts >= ATTEMPTS:
            return _Outcome(row.subject, "auth.code_exhausted")
        if utc(row.expires_at) <= now:
            return _Outcome(row.subject, "auth.code_expired")
        if not _CODE.fullmatch(code) or not hmac.compare_digest(
            row.code_hash, _code_hash(rt, challenge, code)
        ):
            row.attempts += 1
            return _Outcome(row.subject, "auth.code_invalid")
        row.attempts = ATTEMPTS  # spent; the row stays an hour for the hourly count
        row.expires_at = now
        return _Outcome(row.subject, None)


@router.post("/signin/code/enter")
def enter(
    request: Request,
    code: Annotated[str, Form(max_length=20)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/borrower",
) -> Response:
    """Sign in with the code; back to ``next`` (a local path)."""
    rt: Runtime = request.app.state.runtime
    next_path = safe_next(next)
    challenge = read_cookie(request, COOKIE)
    subject = _subject_of(rt, challenge)
    if subject is not None:  # each try counts against the identity the code was sent to
        count_act(request, "web-signin", subject)
    outcome = _check(rt, challenge, code.strip())
    if outcome.refusal is not None or outcome.token is None:
        _refuse(request, outcome)
        return render(
            request,
            "borrower/signin_code_enter.html",
            {"next": next_path, "refused": True},
            status=401,
        )
    response = RedirectResponse(next_path, status_code=303)
    delete_cookie(request, response, COOKIE)
    token = outcome.token
    start_session(request, response, role="borrower", subject=token, display_name=token[:12] + "…")
    add_flash(request, response, N_("You are signed in."), "success")
    return response
