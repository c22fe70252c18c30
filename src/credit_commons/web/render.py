"""Rendering pages: one Jinja2 environment per language over the package's templates, and
:func:`render`, which every page handler calls.

The environments share one configuration: the package loader (``web/templates/``),
autoescaping on for every template, ``StrictUndefined`` (a misspelt variable is an error,
not an empty string) and ``jinja2.ext.i18n`` with new-style gettext (``_("Hello %(name)s",
name=...)`` escapes its arguments).  Each has its language's translations and filters
installed (``day``, ``moment``, ``number``: :mod:`credit_commons.web.i18n`), so a render
never mutates shared state and two requests in two languages can render at once.

Hand-written on top of the extension: ``_`` itself (:func:`_bound_gettext`) answers as the
extension's new-style ``gettext`` does — the catalogue's text made ``Markup`` when
autoescaping, %-formatted with the escaped variables — but is called directly instead of
through three ``Context.call`` dispatches per message, a third of a page's rendering time.
``tests/unit/web/test_i18n.py`` renders every message of the console both ways and compares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from babel.support import Translations
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from markupsafe import Markup

from credit_commons.web import csrf, flash, i18n
from credit_commons.web.i18n import Language
from credit_commons.web.sessions import WebSession, current_session

__all__ = ["environment", "language", "load", "render", "static_url"]

_LANGUAGE_KEY = "web_language"


@cache
def _translations() -> Mapping[str, Any]:
    return i18n.load_translations()


@cache
def environment(code: str) -> Environment:
    """The template environment of language ``code`` (built once).  Raises ``KeyError``
    for a code that is not one of :data:`~credit_commons.web.i18n.LANGUAGES`."""
    language = i18n.language_of(code)
    if language is None:
        raise KeyError(code)
    env = Environment(
        loader=PackageLoader("credit_commons.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translations = _translations()[code]
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.globals["_"] = _bound_gettext(translations)
    env.filters["day"] = _bound_day(language)
    env.filters["moment"] = _bound_moment(language)
    env.filters["number"] = _bound_number(language)
    env.globals["static_url"] = static_url
    return env


_PLAIN_KEPT = 4096
"""At most this many translated messages without variables kept per language."""


def _bound_gettext(translations: Translations) -> Callable[..., str]:
    # ``_()`` as jinja2.ext.i18n's new-style gettext answers it — the translation, made
    # Markup when autoescaping, then always %-formatted with the (escaped) variables —
    # but called directly: the extension's ``_`` resolves ``gettext`` in the context and
    # calls it through Context.call, which calls the translation through Context.call
    # again, three dispatches for every message of every page.  A message without
    # variables translates to the same Markup every time, so up to _PLAIN_KEPT of them
    # are kept (the console's messages are a few hundred; once that many are kept, any
    # other text given to ``_`` -- a code a word table does not know, shown as it is --
    # is translated at each call).
    gettext = translations.gettext
    plain: dict[str, Markup] = {}

    @pass_eval_context
    def translate(eval_ctx: EvalContext, message: str, /, **variables: Any) -> str:
        if not eval_ctx.autoescape:
            return gettext(message) % variables
        # As the extension does: the catalogue's text is markup, the variables are escaped.
        if variables:
            return Markup(gettext(message)) % variables  # noqa: S704
        found = plain.get(message)
        if found is None:
            found = Markup(gettext(message)) % variables  # noqa: S704
            if len(plain) < _PLAIN_KEPT:
                plain[message] = found
        return found

    return translate


def _bound_day(language: Language) -> Callable[..., str]:
    def day(value: date, style: str = "medium") -> str:
        return i18n.format_day(value, language, style)

    return day


def _bound_moment(language: Language) -> Callable[..., str]:
    def moment(value: datetime, style: str = "medium") -> str:
        return i18n.format_moment(value, language, style)

    return moment


def _bound_number(language: Language) -> Callable[[float | int], str]:
    return lambda value: i18n.format_number(value, language)


def load() -> None:
    """Read every catalogue and build every environment now (at start-up), so a broken
    ``.po`` file stops the start instead of a request.  Raises what Babel raises."""
    for language in i18n.LANGUAGES:
        environment(language.code)


@cache
def static_url(name: str) -> str:
    """The URL of static asset ``name`` with a digest of its content, so a changed file is
    fetched again despite the cache header.  Raises ``FileNotFoundError``."""
    data = (resources.files("credit_commons.web") / "static" / name).read_bytes()
    return f"/static/{name}?v={hashlib.sha256(data).hexdigest()[:12]}"


def language(request: Request) -> Language:
    """The language of ``request`` (the ``lang`` cookie, ``Accept-Language``, English)."""
    chosen: Language | None = getattr(request.state, _LANGUAGE_KEY, None)
    if chosen is None:
        chosen = i18n.negotiate(
            request.cookies.get(i18n.COOKIE), request.headers.get("accept-language")
        )
        setattr(request.state, _LANGUAGE_KEY, chosen)
    return chosen


def _here(request: Request) -> str:
    path = request.url.path
    return path + ("?" + request.url.query if request.url.query else "")


def _language_links(request: Request) -> list[tuple[Language, str]]:
    back = quote(_here(request), safe="/")
    return [(lang, f"/lang/{lang.code}?next={back}") for lang in i18n.LANGUAGES]


def base_context(request: Request, session: WebSession | None) -> Mapping[str, object]:
    """What every page's template gets besides its own context: ``request``, ``lang``,
    ``languages`` (each with its switch link), ``csrf_token``, ``session`` (the signed-in
    :class:`WebSession` or None), ``flashes`` and ``path``."""
    return {
        "request": request,
        "lang": language(request),
        "languages": _language_links(request),
        "csrf_token": session.csrf_secret if session else csrf.anonymous_token(request),
        "session": session,
        "flashes": flash.pending(request),
        "path": request.url.path,
    }


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    status: int = 200,
    *,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` (a path under ``web/templates/``) in the request's language with
    ``context`` and the :func:`base_context`, as an HTML response with ``status``.

    Call it from a plain ``def`` handler: it may read the session from the database.  The
    security headers (CSP, ``no-store``…) are added to every HTML response by the app's
    middleware (``web/headers.py``).  Raises what Jinja2 raises for a broken template or a
    missing variable.
    """
    session = current_session(request)
    values = {**base_context(request, session), **(context or {})}
    html = environment(language(request).code).get_template(template).render(values)
    response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
    if session is None:
        csrf.issue_cookie(request, response)
    flash.consumed(request, response)
    return response
