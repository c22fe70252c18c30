"""The console's cookies: ``HttpOnly; SameSite=Strict; Secure; Path=/`` under the
``__Host-`` prefix (RFC 6265bis §4.1.3.2: only ever set by this host, over HTTPS, for the
whole site, so a sibling subdomain cannot plant one).

``Secure`` — and with it the prefix, which requires it — is dropped in exactly one case: a
plain-HTTP request to a loopback host (``127.0.0.1``, ``::1``, ``localhost``) while the
platform is *not* in production, so ``make run`` works at http://127.0.0.1:8000/.  A
production deployment always sets both, whatever the request says.
"""

from __future__ import annotations

from fastapi import Request, Response

from credit_commons.runtime import Runtime

__all__ = ["LOOPBACK_HOSTS", "cookie_name", "delete_cookie", "read_cookie", "relaxed", "set_cookie"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})
_PREFIX = "__Host-"


def relaxed(request: Request) -> bool:
    """Whether ``request`` may get cookies without ``Secure`` (and so without the prefix):
    plain HTTP, to a loopback host, outside production."""
    runtime: Runtime = request.app.state.runtime
    return (
        not runtime.settings.is_production
        and request.url.scheme == "http"
        and (request.url.hostname or "").lower() in LOOPBACK_HOSTS
    )


def cookie_name(request: Request, base: str) -> str:
    """The name cookie ``base`` has for ``request``: ``__Host-<base>``, or ``<base>`` when
    :func:`relaxed`."""
    return base if relaxed(request) else _PREFIX + base


def read_cookie(request: Request, base: str) -> str | None:
    """The value of cookie ``base`` as this request would have been given it, or None."""
    return request.cookies.get(cookie_name(request, base))


def set_cookie(
    request: Request, response: Response, base: str, value: str, *, max_age: int | None
) -> None:
    """Set cookie ``base`` on ``response`` with the console's flags (a session cookie when
    ``max_age`` is None)."""
    secure = not relaxed(request)
    response.set_cookie(
        cookie_name(request, base),
        value,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def delete_cookie(request: Request, response: Response, base: str) -> None:
    """Expire cookie ``base`` on ``response`` (same name and flags as it was set with)."""
    response.delete_cookie(
        cookie_name(request, base),
        path="/",
        secure=not relaxed(request),
        httponly=True,
        samesite="strict",
    )
