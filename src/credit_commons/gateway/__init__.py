"""The HTTP edge: the app factory (``gateway/app.py``, :func:`create_app`), every route
(``routes/``) and the cross-cutting HTTP concerns.  No domain imports it.

The package itself imports nothing: uvicorn's spawned workers import gateway modules
(``serving.py``, ``size_limits.py``) before they answer the supervisor's health check, so
importing one gateway module must not import the whole app.  Import the factory from
``credit_commons.gateway.app``.
"""

from __future__ import annotations

__all__: list[str] = []
