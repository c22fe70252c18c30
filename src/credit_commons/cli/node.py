"""``commons node …``: a full node that follows a platform over NATS JetStream, verifies
every message, mirrors the log, blobs, status lists and checkpoints, and serves them
(docs/federation.md, "Full node")."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from credit_commons.cli.support import JsonOption, emit, group, settings
from credit_commons.core.clock import Clock, SystemClock
from credit_commons.core.db import dispose_engine, make_engine, make_sessionmaker, transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.core.logging import configure_logging
from credit_commons.core.migrate import upgrade
from credit_commons.gateway.node_app import create_node_app
from credit_commons.keys import ServiceIdentity
from credit_commons.ledger import CommitteeVerifier
from credit_commons.node import (
    Follower,
    Mirror,
    NodeScorer,
    Pins,
    Platform,
    PlatformLag,
    Quotas,
    RepairIncomplete,
    repair_inputs,
    rotate_node_key,
    service_token,
    skip_lost_gaps,
)
from credit_commons.node import store as node_store

__all__ = ["app"]

app = group("node", "A full node: follows a platform over NATS JetStream and mirrors it.")
key_app = group(
    "service-key", "The node's own service key: its public half to register, its rotation."
)
app.add_typer(key_app)

_KEY_FILE = "service-key.json"
_DATA_HELP = "The node's own state (SQLite by default)."


@contextmanager
def _database(data: Path) -> Iterator[sessionmaker[Session]]:
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = os.environ.get("COMMONS_DATABASE_URL") or f"sqlite:///{data.resolve() / 'node.db'}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield make_sessionmaker(engine)
    finally:
        dispose_engine(engine)


def _node_id(sessions: sessionmaker[Session], clock: Clock) -> str:
    with transaction(sessions) as session:
        # The durable consumers' name prefix and the node's service instance: made once,
        # kept with the pins.
        node_id = node_store.pins(session).get("node_id") or f"node-{secrets.token_hex(6)}"
        node_store.pin(session, "node_id", node_id, clock.now())
    return node_id


def _identity(data: Path, node_id: str) -> ServiceIdentity:
    return ServiceIdentity.open_or_create(data / _KEY_FILE, service="node", name=node_id)


def _register_hint(identity: ServiceIdentity) -> str:
    jwk = json.dumps(identity.public_jwk(), separators=(",", ":"), sort_keys=True)
    return (
        f"commons service-token register --service node --name {identity.name} --public-key '{jwk}'"
    )


@key_app.command("show")
def node_key_show(
    data: Annotated[Path, typer.Option("--data", help=_DATA_HELP)] = Path("./node"),
    as_json: JsonOption = False,
) -> None:
    """The node's id and its service key's public JWK (made on first use), and the command
    the platform's operator runs to register it."""
    with _database(data) as sessions:
        identity = _identity(data, _node_id(sessions, SystemClock()))
    emit(
        as_json,
        {
            "service": identity.service,
            "name": identity.name,
            "kid": identity.kid,
            "public_key": identity.public_jwk(),
            "register": _register_hint(identity),
        },
        f"node {identity.name}, key {identity.kid}; on the platform run:\n"
        f"{_register_hint(identity)}",
    )


@key_app.command("rotate")
def node_key_rotate(
    ctx: typer.Context,
    follow: Annotated[str, typer.Option("--follow", help="The followed platform's URL.")],
    data: Annotated[Path, typer.Option("--data", help=_DATA_HELP)] = Path("./node"),
    as_json: JsonOption = False,
) -> None:
    """Register the node's next service key with the platform and sign with it from now (a
    running node picks it up when it next renews its token); the old key keeps verifying
    for the platform's COMMONS_SERVICE_KEY_OVERLAP seconds."""
    with _database(data) as sessions:
        identity = _identity(data, _node_id(sessions, SystemClock()))
    platform = Platform(follow)
    try:
        kid = rotate_node_key(platform, identity, ttl=settings(ctx).service_token_ttl)
    finally:
        platform.close()
    emit(as_json, {"name": identity.name, "kid": kid}, f"node {identity.name}: key {kid}")


def _ready(node_id: str, pins: Pins, port: int, identity: ServiceIdentity) -> JsonObject:
    """The JSON line the node prints when it is ready."""
    return {
        "node": node_id,
        "origin": pins.origin,
        "log_vkey": pins.log_vkey,
        "port": port,
        "service_key": identity.public_jwk(),
    }


@app.command("repair")
def node_repair(
    ctx: typer.Context,
    follow: Annotated[str, typer.Option("--follow", help="The followed platform's URL.")],
    data: Annotated[Path, typer.Option("--data", help=_DATA_HELP)] = Path("./node"),
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="Leaves per stream, at most.")
    ] = 1000,
    peer: Annotated[
        str | None,
        typer.Option(
            "--peer",
            help="NATS server: first move the events, members and checkpoints streams' "
            "cursors past messages the stream no longer holds.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch the reputation events and membership messages the node's scoring lacks below
    its newest checkpoint (GET /v1/node: scores.missing) from the platform's HTTP API, with
    the node's service token (scope log:messages), and store each only if it passes every
    check a message from NATS passes, its entry the mirrored leaf; with --peer, first
    un-stall a stream waiting for messages it no longer holds (docs/federation.md,
    "Missing inputs").  Safe while the node serves."""
    with closing(Platform(follow)) as platform, _database(data) as sessions:
        clock = SystemClock()
        mirror = Mirror(sessions, platform, clock)
        mirror.start()
        gaps = [] if peer is None else skip_lost_gaps(mirror, peer)
        identity = _identity(data, _node_id(sessions, clock))
        ttl = settings(ctx).service_token_ttl
        token = service_token(platform, identity, "log:messages", ttl=ttl)
        report = repair_inputs(mirror, token, limit=limit)
    missing = report.remaining.counts
    emit(
        as_json,
        {**report.to_json(), "gaps": [asdict(gap) for gap in gaps]},
        "".join(
            f"{g.stream}: sequences {g.after + 1}-{g.to} are gone from the stream"
            + (", skipped\n" if g.skipped else ", NOT skipped (see docs/federation.md)\n")
            for g in gaps
        )
        + f"checkpoint {report.checkpoint}: {len(report.repaired)} leaves repaired, "
        f"{len(report.unrepaired)} not; still missing: "
        f"{missing.get('COMMONS_EVENTS', 0)} events, {missing.get('COMMONS_MEMBERS', 0)} "
        "membership messages",
    )
    if report.unrepaired:
        first = min(report.unrepaired)
        raise RepairIncomplete(
            f"{len(report.unrepaired)} leaves not repaired (leaf {first}: "
            f"{report.unrepaired[first]})"
        )


@app.command("serve")
def node_serve(
    ctx: typer.Context,
    peer: Annotated[str, typer.Option("--peer", help="NATS server, e.g. nats://127.0.0.1:4222.")],
    follow: Annotated[str, typer.Option("--follow", help="The followed platform's URL.")],
    data: Annotated[Path, typer.Option("--data", help=_DATA_HELP)] = Path("./node"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8100,
    lag_interval: Annotated[
        float,
        typer.Option(
            "--lag-interval",
            min=1,
            max=86400,
            help="Seconds between readings of the platform's log state (the node's lag).",
        ),
    ] = 30.0,
    committee_key: Annotated[
        list[str] | None,
        typer.Option(
            "--committee-key",
            help="The checkpoint committee's group vkey (commons committee show; repeat for "
            "each version): its cosignature is verified with it and served on the node's "
            "checkpoints; without one a committee line is dropped.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Follow a platform and serve its mirror (its database: COMMONS_DATABASE_URL, else
    SQLite in --data), within the ingest quotas COMMONS_NODE_QUOTAS (docs/federation.md).
    Every --lag-interval seconds it reads the platform's log state with its own service
    token (--data/service-key.json; register it: commons node service-key show).  Each
    --committee-key is a committee group key whose cosignature the node verifies and serves
    on its checkpoints."""
    committee = [CommitteeVerifier.from_vkey(vkey) for vkey in committee_key or ()]
    del as_json  # the node prints one JSON line when it is ready
    configure_logging(os.environ.get("COMMONS_LOG_LEVEL", "INFO"))
    follower: Follower | None = None
    scorer: NodeScorer | None = None
    lag: PlatformLag | None = None
    with closing(Platform(follow)) as platform, _database(data) as sessions:
        try:
            clock = SystemClock()
            mirror = Mirror(sessions, platform, clock, committee_keys=committee)
            pins = mirror.start()
            node_id = _node_id(sessions, clock)
            identity = _identity(data, node_id)
            config = settings(ctx)
            follower = Follower(mirror, peer, node_id, quotas=Quotas.from_settings(config))
            follower.start()
            pending = follower.pending  # updated in place by the follower's thread
            token = service_token(platform, identity, "members:read", ttl=config.service_token_ttl)
            scorer = NodeScorer(mirror, member_token=token)
            scorer.start()

            def mirrored() -> int:
                with transaction(sessions) as session:
                    return node_store.tree_size(session)

            ttl = config.service_token_ttl
            lag = PlatformLag(platform, identity, mirrored, clock, ttl=ttl, interval=lag_interval)
            lag.start()
            print(json.dumps(_ready(node_id, pins, port, identity)), flush=True)
            uvicorn.run(
                create_node_app(mirror, lag=lambda: dict(pending), scorer=scorer, platform_lag=lag),
                host=host,
                port=port,
                log_config=None,
                access_log=False,
            )
        finally:
            for running in (lag, scorer, follower):
                if running is not None:
                    running.stop()
