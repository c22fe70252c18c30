"""``commons identity …``: identities, delegations and onboarding authorities, as an
operator (docs/onboarding.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from credit_commons import lenders
from credit_commons.cli.support import JsonOption, emit, group, operator, unit, validated
from credit_commons.core.errors import NotFoundError, ValidationError
from credit_commons.identity import delegations, onboarding, service
from credit_commons.identity.schemas import DelegationCreate, IdentifierBinding, IdentityCreate

__all__ = ["app"]

app = group("identity", "Identities (operator access).")


@app.command("create")
def identity_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    role: Annotated[list[str] | None, typer.Option("--role", help="A role (repeat).")] = None,
    phone: Annotated[str | None, typer.Option("--phone")] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
    identifier: Annotated[
        list[str] | None,
        typer.Option("--identifier", help="KIND=VALUE, e.g. pan=ABCPE1234F (repeat)."),
    ] = None,
    birth_date: Annotated[str | None, typer.Option("--birth-date", help="YYYY-MM-DD")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Two-letter state code.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Register an identity; prints its token and an access token (shown once)."""
    identifiers = {}
    for item in identifier or []:
        kind, sep, value = item.partition("=")
        if not sep:
            raise ValidationError("--identifier takes KIND=VALUE", extra={"field": "identifier"})
        identifiers[kind] = value
    request = validated(
        IdentityCreate,
        {
            "roles": role or ["citizen"],
            "profile": {
                k: v for k, v in {"name": name, "phone": phone, "email": email}.items() if v
            },
            "attributes": {
                k: v for k, v in {"birth_date": birth_date, "state": state}.items() if v
            },
            "identifiers": identifiers,
        },
        "identity",
    )
    with unit(ctx) as (rt, session):
        created = service.create_identity(session, rt, request, operator())
    emit(
        as_json,
        created.model_dump(mode="json", exclude_none=True),
        f"created {created.identity_token}\naccess token: {created.access_token}",
    )


@app.command("show")
def identity_show(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="Identity token idt_….")],
    as_json: JsonOption = False,
) -> None:
    """Show an identity's metadata (no personal data)."""
    with unit(ctx, read_only=True) as (rt, session):
        data = service.get_identity(session, rt, operator(), token).model_dump(mode="json")
    emit(as_json, data, json.dumps(data, indent=2))


@app.command("delegate")
def identity_delegate(
    ctx: typer.Context,
    delegator: Annotated[str, typer.Option("--from", help="Delegator identity token.")],
    delegatee: Annotated[str, typer.Option("--to", help="Delegatee identity token.")],
    kind: Annotated[
        str,
        typer.Option(
            "--type", help="parent_child, guardian_ward, business_owner or field_agent_assist."
        ),
    ],
    permission: Annotated[list[str], typer.Option("--permission", help="e.g. read:profile")],
    days: Annotated[int, typer.Option("--days", min=1, max=3650)] = 365,
    as_json: JsonOption = False,
) -> None:
    """Offer a delegation on the delegator's behalf (the delegatee must still accept)."""
    request = validated(
        DelegationCreate,
        {
            "delegatee_token": delegatee,
            "type": kind,
            "permissions": permission,
            "expires_in_days": days,
        },
        "delegation",
    )
    with unit(ctx) as (rt, session):
        made = delegations.create_delegation(session, rt, operator(), delegator, request)
    emit(as_json, made.model_dump(mode="json"), f"offered {made.id}; the delegatee must accept it")


authority_app = typer.Typer(
    help="Onboarding authorities: the banks and issuer desks that bind identifiers.",
    no_args_is_help=True,
)
app.add_typer(authority_app, name="authority")


@authority_app.command("add")
def authority_add(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option("--kind", help="bank or issuer_desk.")],
    name: Annotated[str, typer.Option("--name", help="Who the authority is.")],
    lender: Annotated[
        str | None, typer.Option("--lender", help="A bank's lender client id lnd_….")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Designate an onboarding authority; an issuer desk's token is printed once."""
    try:
        authority_kind = onboarding.AuthorityKind(kind)
    except ValueError as e:
        raise ValidationError("--kind is bank or issuer_desk", extra={"field": "kind"}) from e
    with unit(ctx) as (rt, session):
        if lender is not None and lenders.get_client(session, lender) is None:
            raise NotFoundError("no such lender client")
        data = onboarding.register_authority(
            session, rt, operator(), kind=authority_kind, name=name, lender_client_id=lender
        )
    text = f"designated {data.authority_id} ({data.kind})"
    if data.token is not None:
        text += f"\ndesk token: {data.token}"
    emit(as_json, data.model_dump(mode="json", exclude_unset=True), text)


@authority_app.command("list")
def authority_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the onboarding authorities."""
    with unit(ctx, read_only=True) as (_rt, session):
        rows = onboarding.list_authorities(session, operator())
    text = "\n".join(
        f"{r.authority_id}  {r.kind:<11}  {'active' if r.active else 'inactive':<8}  {r.name}"
        for r in rows
    )
    emit(as_json, [r.model_dump(mode="json") for r in rows], text or "no onboarding authorities")


@authority_app.command("deactivate")
def authority_deactivate(
    ctx: typer.Context,
    authority_id: Annotated[str, typer.Argument(help="Authority id oba_….")],
    as_json: JsonOption = False,
) -> None:
    """Stop an authority from binding (its earlier bindings stay, naming it)."""
    with unit(ctx) as (rt, session):
        data = onboarding.set_authority_active(session, rt, operator(), authority_id, active=False)
    emit(as_json, data.model_dump(mode="json"), f"deactivated {authority_id}")


@authority_app.command("token")
def authority_token(
    ctx: typer.Context,
    authority_id: Annotated[str, typer.Argument(help="Issuer desk id oba_….")],
    as_json: JsonOption = False,
) -> None:
    """Issue a new bearer token for an issuer desk (shown once; valid 30 days)."""
    with unit(ctx) as (rt, session):
        data = onboarding.issue_desk_token(session, rt, operator(), authority_id)
    emit(as_json, data.model_dump(mode="json"), data.token)


@app.command("bind")
def identity_bind(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="Identity token idt_….")],
    authority_id: Annotated[
        str, typer.Option("--authority", help="The issuer desk attesting it (oba_…).")
    ],
    identifier: Annotated[str, typer.Option("--identifier", help="KIND=VALUE, e.g. pan=…")],
    evidence: Annotated[
        str, typer.Option("--evidence", help="The desk's reference to what it checked.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Bind an identifier at an issuer desk's console (a bank binds through its API)."""
    kind, sep, value = identifier.partition("=")
    if not sep:
        raise ValidationError("--identifier takes KIND=VALUE", extra={"field": "identifier"})
    request = validated(
        IdentifierBinding,
        {"identity_token": token, "kind": kind, "value": value, "evidence_ref": evidence},
        "binding",
    )
    with unit(ctx) as (rt, session):
        authority = onboarding.issuer_desk(session, authority_id)
        data = onboarding.bind_identifier(session, rt, authority, request)
    emit(as_json, data.model_dump(mode="json"), f"{data.kind} bound to {token} by {authority_id}")
