"""The web console: server-rendered pages over the same service functions as the API, for
borrowers (and the field agents who help them), lenders, issuer desks and auditors, in
English, Hindi and Urdu (docs/console.md).

What a page module uses, all exported here: :func:`page_router` and :class:`Area` (its
routes, registered with one line in ``web/routes.py``), :func:`render`, :func:`require` /
:func:`requires` (the signed-in :class:`WebSession`), :func:`start_session`,
:func:`end_session`, :func:`end_all_sessions`, :class:`SignInMethod`, :func:`add_flash`
and :func:`N_`.  The app includes the console with ``web.routes.install_console``.
"""

from __future__ import annotations

from credit_commons.web.auth import (
    SignInRequired,
    WrongRole,
    end_all_sessions,
    end_session,
    require,
    requires,
    safe_next,
    start_session,
)
from credit_commons.web.flash import add_flash
from credit_commons.web.i18n import N_
from credit_commons.web.render import language, render
from credit_commons.web.routing import Area, SignInMethod, page_router
from credit_commons.web.sessions import ROLES, WebSession, prune_sessions

__all__ = [
    "N_",
    "ROLES",
    "Area",
    "SignInMethod",
    "SignInRequired",
    "WebSession",
    "WrongRole",
    "add_flash",
    "end_all_sessions",
    "end_session",
    "language",
    "page_router",
    "prune_sessions",
    "render",
    "require",
    "requires",
    "safe_next",
    "start_session",
]
