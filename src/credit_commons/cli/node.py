"""``commons node …``: a full node that follows a platform over NATS JetStream, verifies
every message, mirrors the log, blobs, status lists and checkpoints, and serves them
(docs/federation.md, "Full node")."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from credit_commons.cli.support import JsonOption, group, settings
from credit_commons.core.clock import SystemClock
from credit_commons.core.db import dispose_engine, make_engine, make_sessionmaker, transaction
from credit_commons.core.logging import configure_logging
from credit_commons.core.migrate import upgrade
from credit_commons.gateway.node_app import create_node_app
from credit_commons.node import Follower, Mirror, NodeScorer, Platform, Quotas
from credit_commons.node import store as node_store

__all__ = ["app"]

app = group("node", "A full node: follows a platform over NATS JetStream and mirrors it.")


@app.command("serve")
def node_serve(
    ctx: typer.Context,
    peer: Annotated[str, typer.Option("--peer", help="NATS server, e.g. nats://127.0.0.1:4222.")],
    follow: Annotated[str, typer.Option("--follow", help="The followed platform's URL.")],
    data: Annotated[
        Path, typer.Option("--data", help="The node's own state (SQLite by default).")
    ] = Path("./node"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8100,
    as_json: JsonOption = False,
) -> None:
    """Follow a platform and serve its mirror (its database: COMMONS_DATABASE_URL, else
    SQLite in --data), within the ingest quotas COMMONS_NODE_QUOTAS (docs/federation.md)."""
    del as_json  # the node prints one JSON line when it is ready
    configure_logging(os.environ.get("COMMONS_LOG_LEVEL", "INFO"))
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = os.environ.get("COMMONS_DATABASE_URL") or f"sqlite:///{data.resolve() / 'node.db'}"
    engine = make_engine(url)
    platform = Platform(follow)
    follower: Follower | None = None
    scorer: NodeScorer | None = None
    try:
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        clock = SystemClock()
        mirror = Mirror(sessions, platform, clock)
        pins = mirror.start()
        with transaction(sessions) as session:
            # The durable consumers' name prefix: made once, kept with the pins.
            node_id = node_store.pins(session).get("node_id") or f"node-{secrets.token_hex(6)}"
            node_store.pin(session, "node_id", node_id, clock.now())
        quotas = Quotas.from_settings(settings(ctx))
        follower = Follower(mirror, peer, node_id, quotas=quotas)
        follower.start()
        pending = follower.pending  # updated in place by the follower's thread
        scorer = NodeScorer(mirror)
        scorer.start()
        ready = {"node": node_id, "origin": pins.origin, "log_vkey": pins.log_vkey, "port": port}
        print(json.dumps(ready), flush=True)
        uvicorn.run(
            create_node_app(mirror, lag=lambda: dict(pending), scorer=scorer),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
        )
    finally:
        if scorer is not None:
            scorer.stop()
        if follower is not None:
            follower.stop()
        platform.close()
        dispose_engine(engine)
