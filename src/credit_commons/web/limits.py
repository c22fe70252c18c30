"""Rate limits counted by a console page, per identity, after the request was counted per
address (before routing, by the gateway's ``RateLimitMiddleware``).

A page that acts for someone counts the act against the per-credential limit of the API
group that limits the same act (docs/limits.md): the one-time-code sign-in per identity
the code is asked for or tried against (``web-signin``), an export or an erasure per
borrower (``export``, ``erase``), an assisted consent per field agent (``consent``), a
retrieval per lender client (``lender-api``, the API's own per-client budget).  The
counting itself is the gateway's (the web layer sits below it): ``install_console`` is
handed a :data:`Counter`, kept on the app's state, and a refusal is raised by it — the
gateway's ``RateLimited``, answered on a console page by the HTML 429 page with
``Retry-After`` (web/errors.py).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request

__all__ = ["Counter", "count_act", "install_counter"]

Counter = Callable[[Request, str, str], None]
"""Counts one act of the identity (or lender client id) given against the group named;
raises the gateway's ``RateLimited`` past the limit, ``RateLimitUnavailable`` when the
store is down."""

_STATE = "web_act_counter"


def install_counter(app: FastAPI, counter: Counter) -> None:
    """Keep ``counter`` as the one :func:`count_act` uses."""
    setattr(app.state, _STATE, counter)


def count_act(request: Request, group: str, who: str) -> None:
    """Count one act of ``who`` (an identity token, or a lender's client id in group
    ``lender-api``) against ``group``'s per-identity limit.

    Raises what the installed :data:`Counter` raises, and ``RuntimeError`` when none was
    installed (a console without its limits must not serve)."""
    counter: Counter | None = getattr(request.app.state, _STATE, None)
    if counter is None:
        raise RuntimeError("the console's rate-limit counter is not installed")
    counter(request, group, who)
