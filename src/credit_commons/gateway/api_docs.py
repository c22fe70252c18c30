"""The API docs page (Swagger UI) with its assets served by the platform itself.

FastAPI's default ``/docs`` page loads Swagger UI's script and stylesheet from a CDN, and
Swagger UI then asks ``validator.swagger.io`` for a badge: offline, or on a network that
reaches only this platform, the page stays blank.  Here the page is FastAPI's own
(``get_swagger_ui_html``, its documented self-hosting recipe) pointing at copies of
Swagger UI's distribution files served under ``/docs/assets/`` from the ``fastapi-offline``
package (MIT; it ships ``swagger-ui-dist`` 5's bundle, stylesheet and a favicon, refreshed
at each release), with the online validator turned off, and ``lang="en"`` on its root
element.  Nothing is downloaded at run time; the page is written once, when the app is built.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_URL", "DOCS_URL", "install_api_docs"]

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
_REDIRECT_URL = "/docs/oauth2-redirect"


def _with_language(html: bytes) -> bytes:
    # FastAPI's page names no language (axe-core's html-has-lang): Swagger UI's words are
    # English, so its root element says so, for screen readers and translation tools
    # (tests/unit/gateway/test_api_docs.py fails if a FastAPI release writes it otherwise).
    return html.replace(b"<html>", b'<html lang="en">', 1)


def install_api_docs(app: FastAPI, *, openapi_url: str) -> None:
    """Serve the Swagger UI page at :data:`DOCS_URL` (with its OAuth2 redirect page) and
    its assets at :data:`ASSETS_URL`.  The app must be built with ``docs_url=None``."""
    assets = resources.files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")
    title = f"{app.title} - API"

    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=_REDIRECT_URL,
        # Swagger UI would otherwise load a badge from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = _with_language(bytes(page.body))

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(html)

    @app.get(_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
