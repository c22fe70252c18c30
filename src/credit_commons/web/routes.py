"""The console's areas, and :func:`install_console`, which puts them in the app.

**Adding a part of the console is one line here**: append its module's ``AREA`` to
:data:`AREAS`.  Nothing else shared is edited (templates, message catalogues and sign-in
methods live with the module; docs/console.md, "For developers").
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from credit_commons.web import agent, audit, borrower, home, issuer, lender, lender_proofs, signin
from credit_commons.web.erasure import install_erasure
from credit_commons.web.errors import install_error_pages, prerender_pages
from credit_commons.web.limits import Counter, install_counter
from credit_commons.web.render import load
from credit_commons.web.routing import Area

__all__ = ["AREAS", "StaticAssets", "install_console"]

AREAS: tuple[Area, ...] = (
    home.AREA,
    signin.AREA,
    agent.AREA,
    audit.AREA,
    issuer.AREA,
    borrower.AREA,
    lender.AREA,
    lender_proofs.AREA,
    # One line per part of the console: borrower.AREA, agent.AREA, lender.AREA, ...
)
"""Every part of the console, in routing order."""


class StaticAssets(StaticFiles):
    """The package's static files, cacheable for a day (their URLs carry a digest of their
    content: :func:`~credit_commons.web.render.static_url`) and never sniffed."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=86400"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install_console(app: FastAPI, count_act: Counter) -> None:
    """Add the console to ``app``: every area's routes, its sign-in methods, ``/static/``,
    the ``count_act`` its pages count their acts with (web/limits.py),
    HTML error pages for console requests (call it after the API's exception handlers)
    and the console's share of an erasure on the app's runtime.  Reads every message
    catalogue and renders the refusal pages of the size limits and admission now, so a
    broken one stops the start: raises what Babel or Jinja raises."""
    load()
    install_counter(app, count_act)
    for area in AREAS:
        app.include_router(area.router)
    app.state.web_sign_in_methods = tuple(m for area in AREAS for m in area.sign_in)
    directory = resources.files("credit_commons.web") / "static"
    app.mount("/static", StaticAssets(directory=str(directory)), name="static")
    install_error_pages(app)
    install_erasure(app.state.runtime)
    prerender_pages()
