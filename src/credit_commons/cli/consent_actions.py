"""``commons consent …`` but ``templates``: the commands that reach the database (the
group and ``templates`` are ``cli/consent.py``).

What the borrower decides — approve, reject, pause, resume, revoke, revoke-all — needs the
bearer token (``--token`` or ``COMMONS_TOKEN``) of the borrower, of the owner of an
enterprise borrower, or of a delegate the borrower named with ``manage:consents``: an
operator (even with an administrator's token) cannot consent for anyone, and such an
attempt is answered like an unknown consent and recorded in the borrower's history.
Operators may list and show consents, read a borrower's access history, run expiry, and
read the one-time codes of the embedded notifier (pilots without SMS).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from credit_commons.cli.support import JsonOption, emit, holder, operator, runtime, unit
from credit_commons.consent import decisions, denial_counts, history, notify, service
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.access import Refused
from credit_commons.consent.model import ConsentStatus
from credit_commons.consent.schemas import ConsentView
from credit_commons.core.db import transaction
from credit_commons.identity.auth import Principal, authenticate
from credit_commons.runtime import Runtime

__all__ = ["app"]

app = holder()

TokenOption = Annotated[
    str,
    typer.Option(
        "--token",
        envvar="COMMONS_TOKEN",
        help="The borrower's bearer token (cct_…).",
        show_default=False,
    ),
]
# The operator's commands here act under their own name (recorded as the events' actor).
_OPERATOR_NAME = "admin:cli-operator"


def _operator() -> Principal:
    return operator(_OPERATOR_NAME)


def _principal(session: Session, rt: Runtime, token: str) -> Principal:
    return authenticate(session, rt, f"Bearer {token}")


def _line(c: ConsentView) -> str:
    return (
        f"{c.consent_id}  {c.status:8s}  {c.lender}  {c.purpose.code}  "
        f"{c.fetch_type}  until {c.consent_expiry[:19]}"
    )


@app.command("list")
def list_command(
    ctx: typer.Context,
    borrower: Annotated[str, typer.Argument(help="The borrower's identity token (idt_…).")],
    status: Annotated[ConsentStatus | None, typer.Option(help="Only this status.")] = None,
    as_json: JsonOption = False,
) -> None:
    """A borrower's consents, newest first (operator view)."""
    with unit(ctx, read_only=True) as (rt, session):
        views = consent_requests.list_for_borrower(
            session, rt, _operator(), borrower, status.value if status else None
        )
    data = [v.model_dump(mode="json", exclude_unset=True) for v in views]
    emit(as_json, data, "\n".join(_line(c) for c in views) or "no consents")


@app.command("show")
def show(
    ctx: typer.Context,
    consent_id: Annotated[str, typer.Argument(help="cns_…")],
    as_json: JsonOption = False,
) -> None:
    """One consent, with its signed artefact once granted (operator view)."""
    with unit(ctx, read_only=True) as (rt, session):
        view = consent_requests.get_for_borrower(session, rt, _operator(), consent_id)
    data = view.model_dump(mode="json", exclude_unset=True)
    emit(as_json, data, json.dumps(data, indent=2))


@contextmanager
def _decision_unit(rt: Runtime) -> Iterator[Session]:
    # A decision's unit of work.  A refused one (someone who may not decide for the
    # borrower) is recorded for the borrower once the unit has rolled back — as the HTTP
    # handler does — and then answered like an unknown consent.
    try:
        with transaction(rt.sessions) as session:
            yield session
    except Refused as refused:
        refused.record(rt)
        raise


def _decide(ctx: typer.Context, consent_id: str, token: str, action: str, as_json: bool) -> None:
    with runtime(ctx) as rt, _decision_unit(rt) as session:
        principal = _principal(session, rt, token)
        decision = decisions.decide(session, rt, principal, consent_id, action)
    data = decision.model_dump(mode="json", exclude_unset=True)
    emit(as_json, data, f"{consent_id}: {decision.status}")


def _decision(action: str, what: str) -> None:
    # One command per decision of the borrower's: the same arguments, the same call.
    def command(
        ctx: typer.Context, consent_id: str, token: TokenOption, as_json: JsonOption = False
    ) -> None:
        _decide(ctx, consent_id, token, action, as_json)

    command.__doc__ = f"{what} (as the borrower)."
    app.command(action)(command)


for _action, _what in (
    ("approve", "Approve a pending consent"),
    ("reject", "Reject a pending consent"),
    ("pause", "Pause an active consent"),
    ("resume", "Resume a paused consent"),
    ("revoke", "Revoke a consent; no consent is irrevocable"),
):
    _decision(_action, _what)


@app.command("revoke-all")
def revoke_all(
    ctx: typer.Context,
    borrower: Annotated[str, typer.Argument(help="The borrower's identity token.")],
    lender: Annotated[str, typer.Option("--lender", help="The lender's client id (lnd_…).")],
    token: TokenOption,
    as_json: JsonOption = False,
) -> None:
    """Revoke every consent the borrower gave one lender."""
    with runtime(ctx) as rt, _decision_unit(rt) as session:
        principal = _principal(session, rt, token)
        revoked = decisions.revoke_all(session, rt, principal, borrower, lender)
    emit(as_json, revoked.model_dump(mode="json"), f"revoked {len(revoked.revoked)} consent(s)")


@app.command("history")
def history_command(
    ctx: typer.Context,
    borrower: Annotated[str, typer.Argument(help="The borrower's identity token.")],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
    as_json: JsonOption = False,
) -> None:
    """Who saw what, when, allowed or denied — each with its log receipt (operator view)."""
    with unit(ctx, read_only=True) as (rt, session):
        records = history.access_history(session, rt, _operator(), borrower, limit=limit)
    text = "\n".join(
        f"{e.at[:19]}  {e.outcome:7s}  {e.lender_name}  {e.operation}  "
        f"{e.reason or ''}  {'receipt' if e.receipt else 'receipt pending'}"
        for e in records
    )
    emit(as_json, [e.model_dump(mode="json") for e in records], text or "no accesses")


@app.command("denials")
def denials_command(
    ctx: typer.Context,
    hours: Annotated[int, typer.Option(min=1, max=24 * 366, help="How far back.")] = 24,
    as_json: JsonOption = False,
) -> None:
    """Hourly counts of refused requests that named no consent or borrower (no, forged or
    expired token, unknown consent, unknown client): counted, never logged."""
    with unit(ctx, read_only=True) as (rt, session):
        counts = denial_counts.denial_counts(session, rt, _operator(), hours=hours)
    text = "\n".join(
        f"{e.hour[:13]}h  {e.count:7d}  {e.operation}  {e.reason}  {e.actor}" for e in counts
    )
    emit(as_json, [e.model_dump(mode="json") for e in counts], text or "no refusals")


@app.command("expire")
def expire(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Expire consents past their expiry now (the worker does it on every pass)."""
    with unit(ctx) as (rt, session):
        report = service.expire_due(session, rt)
    emit(as_json, {"expired": report.expired}, f"expired {report.expired} consent(s)")


@app.command("codes")
def codes(
    ctx: typer.Context,
    borrower: Annotated[str | None, typer.Argument(help="Only this borrower's codes.")] = None,
    as_json: JsonOption = False,
) -> None:
    """One-time codes sent by the embedded notifier (pilots without an SMS gateway)."""
    with runtime(ctx) as rt:
        sent = notify.read_codes(rt, borrower)
    text = "\n".join(f"{c.at[:19]}  {c.to}  {c.consent_id}  {c.code}" for c in sent)
    emit(as_json, [asdict(c) for c in sent], text or "no codes")
