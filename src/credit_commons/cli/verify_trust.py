"""``commons verify trust …`` and ``commons verify policy …``: the trust bundle and its
entries, other platforms' bundles pinned by key, and verifiers' policies (docs/verifier.md).
Each command calls the service function its HTTP route calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import (
    JsonOption,
    emit,
    operator,
    read_json_file,
    read_text_file,
    runtime,
    unit,
)
from credit_commons.verifier import policy_service, trust, trust_pins, trust_registry
from credit_commons.verifier.schemas import PolicyView

__all__ = ["policy_app", "trust_app"]

trust_app = typer.Typer(
    help="The trust bundle: trusted issuers and anchors, and other platforms' bundles.",
    no_args_is_help=True,
)
policy_app = typer.Typer(help="Verifiers' policies, versions and floors.", no_args_is_help=True)

MarkOption = Annotated[list[str] | None, typer.Option("--mark", help="A trust mark (repeat).")]
TypeOption = Annotated[
    list[str] | None,
    typer.Option("--type", help="A credential type it may issue (repeat; none: any)."),
]


@trust_app.command("show")
def trust_show(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the trust bundle's newest version, its entries and the key verifiers pin."""
    with unit(ctx) as (rt, session):
        view = trust_registry.bundle_view(session, rt, operator())
    lines = [f"version {view.version} of {view.iss}, signed by {view.did}"]
    lines += [
        f"  {e['kind']:<8} {e['id']}  marks={','.join(e['marks']) or '-'}  "
        f"types={','.join(e['types'])}"
        + (f"  UNUSABLE (never verifies): {why}" if (why := view.unusable.get(e["id"])) else "")
        for e in view.issuers
    ]
    emit(as_json, view.model_dump(mode="json"), "\n".join(lines))


@trust_app.command("key")
def trust_key(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print the key that signs this platform's bundle (give it to verifiers that pin it)."""
    with unit(ctx) as (rt, session):
        key = trust_registry.bundle_key(session, rt)
    emit(as_json, {"did": key.did, "jwk": key.jwk}, f"{key.did}\n{json.dumps(key.jwk)}")


@trust_app.command("bundle")
def trust_bundle(ctx: typer.Context) -> None:
    """Print the signed bundle (the JWS /.well-known/trust-bundle serves)."""
    with unit(ctx) as (rt, session):
        signed = trust_registry.published_bundle(session, rt)
    typer.echo(signed.token)


@trust_app.command("add")
def trust_add(
    ctx: typer.Context,
    issuer: Annotated[
        str | None, typer.Argument(help="An https issuer URL, a did:web or a did:key.")
    ] = None,
    anchor: Annotated[
        Path | None, typer.Option("--anchor", help="An X.509 CA certificate (PEM or DER) instead.")
    ] = None,
    marks: MarkOption = None,
    types: TypeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trust an issuer or an X.509 anchor, with trust marks and types (a new bundle version)."""
    if (issuer is None) == (anchor is None):
        raise typer.BadParameter("give an issuer or --anchor, not both")
    with unit(ctx) as (rt, session):
        if anchor is not None:
            data = read_text_file(anchor, "the anchor").encode("latin-1", "replace")
            added = trust.add_trusted_anchor(
                session, rt, operator(), data, marks=marks or (), types=types or ()
            )
        else:
            added = trust.add_trusted_issuer(
                session, rt, operator(), issuer or "", marks=marks or (), types=types or ()
            )
    emit(
        as_json, added.model_dump(mode="json"), f"trusted {added.issuer} ({added.kind}, {added.id})"
    )


@trust_app.command("remove")
def trust_remove(
    ctx: typer.Context,
    issuer: Annotated[str, typer.Argument(help="The issuer or anchor id, or its entry id.")],
    as_json: JsonOption = False,
) -> None:
    """Stop trusting an issuer or anchor (a new bundle version)."""
    with unit(ctx) as (rt, session):
        removed = trust.remove_trusted_issuer(session, rt, operator(), issuer)
    emit(as_json, removed.model_dump(mode="json"), f"no longer trusted: {removed.issuer}")


@trust_app.command("pin")
def trust_pin(
    ctx: typer.Context,
    url: Annotated[str, typer.Option("--url", help="The other platform's bundle URL.")],
    key: Annotated[str, typer.Option("--key", help="Its signing key: a did:key or a public JWK.")],
    as_json: JsonOption = False,
) -> None:
    """Trust another platform's bundle, pinned by its key (fetched and verified now)."""
    with runtime(ctx) as rt:  # the pin opens its own units of work around the fetch
        pinned = trust_pins.pin_bundle(rt, operator(), url, key)
    emit(
        as_json,
        pinned.model_dump(mode="json"),
        f"pinned {pinned.url} (version {pinned.version}, {pinned.issuers} issuers, {pinned.id})",
    )


@trust_app.command("pins")
def trust_pins_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the pinned bundles."""
    with unit(ctx) as (rt, session):
        pins = trust_pins.list_pins(session, rt, operator())
    emit(
        as_json,
        [p.model_dump(mode="json") for p in pins],
        "\n".join(f"{p.id}  v{p.version}  {p.url}  expires {p.expires_at}" for p in pins),
    )


@trust_app.command("refresh")
def trust_refresh(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Fetch every pinned bundle again; a refused one keeps the last accepted."""
    with runtime(ctx) as rt:  # the refresh opens its own units of work around the fetches
        outcomes = trust_pins.refresh_pins(rt, operator())
    emit(
        as_json,
        [o.model_dump(mode="json") for o in outcomes],
        "\n".join(
            f"{o.url}: " + (f"version {o.version}" if o.accepted else f"refused ({o.reason})")
            for o in outcomes
        ),
    )


@trust_app.command("unpin")
def trust_unpin(
    ctx: typer.Context,
    pin: Annotated[str, typer.Argument(help="The pinned bundle's URL or pin id.")],
    as_json: JsonOption = False,
) -> None:
    """Stop trusting a pinned bundle."""
    with unit(ctx) as (rt, session):
        removed = trust_pins.unpin_bundle(session, rt, operator(), pin)
    emit(as_json, removed.model_dump(mode="json"), f"unpinned {removed.url}")


OwnerOption = Annotated[
    str, typer.Option("--owner", help="The verifier: 'platform' or a lender's client id.")
]
ProfileOption = Annotated[
    str | None, typer.Option("--profile", help="Compliance profile: default, india-dpdp, eu.")
]


def _policy_text(view: PolicyView) -> str:
    return (
        f"{view.owner}/{view.policy_id} version {view.version} (profile {view.profile}, "
        f"floor {view.floor})"
    )


@policy_app.command("create")
def policy_create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The policy document (JSON; - for stdin).")],
    owner: OwnerOption = policy_service.PLATFORM_VERIFIER,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a verifier's new policy."""
    document = read_json_file(file, "the policy document")
    with unit(ctx) as (rt, session):
        view = policy_service.create_policy(
            session, rt, operator(), owner=owner, document=document, profile=profile or "default"
        )
    emit(as_json, view.model_dump(mode="json"), _policy_text(view))


@policy_app.command("version")
def policy_version(
    ctx: typer.Context,
    policy_id: Annotated[str, typer.Argument(help="The policy id.")],
    file: Annotated[Path, typer.Argument(help="The new version's document (JSON; - for stdin).")],
    owner: OwnerOption = policy_service.PLATFORM_VERIFIER,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a version to a policy."""
    document = read_json_file(file, "the policy document")
    with unit(ctx) as (rt, session):
        view = policy_service.add_policy_version(
            session,
            rt,
            operator(),
            owner=owner,
            policy_id=policy_id,
            document=document,
            profile=profile,
        )
    emit(as_json, view.model_dump(mode="json"), _policy_text(view))


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    policy_id: Annotated[str, typer.Argument(help="The policy id.")],
    owner: OwnerOption = policy_service.PLATFORM_VERIFIER,
    version: Annotated[
        int | None, typer.Option("--version", help="A version (default: latest).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a policy version: the document and the effective policy after its profile."""
    with unit(ctx) as (rt, session):
        view = policy_service.get_policy(
            session, rt, operator(), owner=owner, policy_id=policy_id, version=version
        )
    data = view.model_dump(mode="json")
    emit(as_json, data, f"{_policy_text(view)}\n{json.dumps(view.effective, indent=2)}")


@policy_app.command("list")
def policy_list(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this verifier's.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the latest version of every policy."""
    with unit(ctx) as (rt, session):
        views = policy_service.list_policies(session, rt, operator(), owner=owner)
    emit(as_json, [v.model_dump(mode="json") for v in views], "\n".join(map(_policy_text, views)))


@policy_app.command("floor")
def policy_floor(
    ctx: typer.Context,
    policy_id: Annotated[str, typer.Argument(help="The policy id.")],
    floor: Annotated[int, typer.Argument(help="The oldest version requests may use.")],
    owner: OwnerOption = policy_service.PLATFORM_VERIFIER,
    as_json: JsonOption = False,
) -> None:
    """Raise a policy's version floor: requests under older versions are denied."""
    with unit(ctx) as (rt, session):
        view = policy_service.set_policy_floor(
            session, rt, operator(), owner=owner, policy_id=policy_id, floor=floor
        )
    emit(as_json, view.model_dump(mode="json"), _policy_text(view))
