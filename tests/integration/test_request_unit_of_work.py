"""A request's unit of work commits before its response is sent (gateway/deps.py).

With FastAPI's default dependency scope the commit ran after the response went out: a
client could be told 200 for a write that was not committed yet, and its next request
could miss it (a verification right after a revocation passed).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import event
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tests.conftest import declare_probes

from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.gateway.deps import ReadSessionDep, SessionDep
from credit_commons.runtime import Runtime


class _ResponseOrder:
    def __init__(self, app: ASGIApp, order: list[str]) -> None:
        self.app, self.order = app, order

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def noted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.order.append("response")
            await send(message)

        await self.app(scope, receive, noted)


def test_the_commit_comes_before_the_response(runtime: Runtime, settings: Settings) -> None:
    order: list[str] = []
    app = create_app(settings, runtime=runtime)

    @app.post("/probe/write")
    def write(session: SessionDep) -> dict[str, Any]:
        session.execute(sa.text("SELECT 1"))
        order.append("handler")
        return {"ok": True}

    @app.get("/probe/read")
    def read(session: ReadSessionDep) -> dict[str, Any]:
        session.execute(sa.text("SELECT 1"))
        order.append("handler")
        return {"ok": True}

    declare_probes(app)
    app.add_middleware(_ResponseOrder, order=order)

    def committed(_connection: Any) -> None:
        order.append("commit")

    event.listen(runtime.engine, "commit", committed)
    try:
        with TestClient(app) as client:
            order.clear()  # the startup's own units of work
            assert client.post("/probe/write").status_code == 200
            assert order == ["handler", "commit", "response"]
            order.clear()
            assert client.get("/probe/read").status_code == 200
            # A read-only unit of work on PostgreSQL runs in autocommit: no COMMIT at all.
            assert order in (["handler", "commit", "response"], ["handler", "response"])
    finally:
        event.remove(runtime.engine, "commit", committed)
