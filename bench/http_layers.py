"""The app's middleware stack, layer by layer: CPU per request of a probe route that costs
nothing itself, through the whole stack and with each layer bypassed in turn.

The app is ``http_overhead.py``'s (``create_app`` as ``commons serve`` builds it, called
as an ASGI app in-process); a ``GET /probe`` route answering a constant is put first in
the router (so routing costs it one match) and declared beside the route registry.  Each
figure is the minimum over ``--repeats`` runs of ``--requests`` calls (the least disturbed
run on a shared machine), in process CPU µs per request; a layer's cost is the whole
stack's less the stack without it.  FastAPI's ``AsyncExitStackMiddleware`` is never
bypassed (the routes need it); bypassing the router skips the route registry's guard.
Baseline in the same run: a bare Starlette app with one async route, no middleware.  One
JSON line.

Usage: python bench/http_layers.py [--requests 2000] [--repeats 9]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.gateway.surface import declare_test_routes
from credit_commons.runtime import Runtime
from http_overhead import BASE, CLIENT, Call, bare_app, call, settings_env
from own_state import forget_configured_instance

KEEP = {"AsyncExitStackMiddleware"}


async def _run(app: Any, item: Call, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        status, body = await call(app, item)
        if status != 200:
            raise AssertionError(f"{status} {body[:200]!r}")
    return 1e6 * (time.process_time() - start) / n


def _layers(app: Any) -> list[Any]:
    chain, layer = [], app.middleware_stack
    while hasattr(layer, "app"):
        chain.append(layer)
        layer = layer.app
    return chain


def _name(layer: Any) -> str:
    # Bypassing the router calls its app directly: what goes is the route registry's guard
    # (the router's own middleware, surface.py) and the router's call of it.
    name = type(layer).__name__
    return "SurfaceGuard (router middleware)" if name == "APIRouter" else name


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    probe: Call = ("GET", "/probe", [], b"")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(settings_env(Path(tmp)))
        settings = Settings()
        runtime = Runtime.build(settings)
        upgrade(runtime.engine)
        app = create_app(settings, runtime=runtime, freeze_heap=True)

        async def answer(_request: Request) -> Response:
            return Response(b'{"status":"ok"}', media_type="application/json")

        app.router.routes.insert(0, Route("/probe", answer))
        declare_test_routes(app, settings, [("GET", "/probe"), ("HEAD", "/probe")])
        with TestClient(app, base_url=BASE, client=CLIENT) as http:
            portal = http.portal
            assert portal is not None
            http.get("/probe")

            def least(target: Any, item: Call = probe) -> float:
                return min(
                    portal.call(_run, target, item, args.requests) for _ in range(args.repeats)
                )

            bare = least(bare_app(), ("GET", "/healthz", [], b""))
            least(app)  # warm-up
            whole = least(app)
            layers: dict[str, float] = {}
            chain = _layers(app)
            for before, layer in itertools.pairwise(chain):
                if type(layer).__name__ in KEEP:
                    continue
                before.app = layer.app
                try:
                    layers[_name(layer)] = round(whole - least(app), 1)
                finally:
                    before.app = layer
    print(
        json.dumps(
            {
                "figure": "app_middleware_layers",
                "requests": args.requests,
                "repeats": args.repeats,
                "loadavg": [round(x, 2) for x in os.getloadavg()],
                "whole_stack_us": round(whole, 1),
                "layer_us": layers,
                "baseline": "bare Starlette app, one async route, no middleware, same run",
                "baseline_us": round(bare, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
