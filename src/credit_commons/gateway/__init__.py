"""The HTTP gateway: the app factory and cross-cutting HTTP concerns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from credit_commons.gateway.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # The app is imported when asked for (PEP 562), not with the package: it imports every
    # router, so a service that needs one gateway module (consent/history.py uses
    # gateway.clients) would otherwise import the whole app, and with it privacy/dsr.py,
    # back into the half-imported privacy/export.py (`commons privacy export` failed so).
    if name == "create_app":
        from credit_commons.gateway.app import create_app  # noqa: PLC0415 - see above

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
