"""The HTTP edge: the app factory, every route (``routes/``) and the cross-cutting HTTP
concerns.  No domain imports it."""

from __future__ import annotations

from credit_commons.gateway.app import create_app

__all__ = ["create_app"]
