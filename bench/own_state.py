"""What every benchmark shares: it builds its own state, never a configured instance's.

A benchmark runs from an operator's shell as often as from CI, and that shell may configure
an instance (``COMMONS_DATABASE_URL``, ``COMMONS_KMS=pkcs11``, ``COMMONS_REDIS_URL``, …).
Every script builds its state in a temporary directory, so it first forgets that
configuration: nothing it does may write to, or depend on, what those variables name.
"""

from __future__ import annotations

import os

__all__ = ["forget_configured_instance"]


def forget_configured_instance() -> None:
    """Remove every ``COMMONS_*`` variable from this process's environment, except the
    test services' (``COMMONS_TEST_*``: the PostgreSQL server a benchmark makes its own
    schema in)."""
    for name in [n for n in os.environ if n.startswith("COMMONS_")]:
        if not name.startswith("COMMONS_TEST_"):
            del os.environ[name]
