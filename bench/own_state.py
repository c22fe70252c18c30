"""What every benchmark shares: it builds its own state, never a configured instance's.

A benchmark runs from an operator's shell as often as from CI, and that shell may configure
an instance (``COMMONS_DATABASE_URL``, ``COMMONS_KMS=pkcs11``, ``COMMONS_REDIS_URL``, …).
Every script builds its state in a temporary directory, so it first forgets that
configuration: nothing it does may write to, or depend on, what those variables name.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

__all__ = ["POSTGRES_URL", "forget_configured_instance", "postgres_schema"]

POSTGRES_URL = os.environ.get(
    "COMMONS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def forget_configured_instance() -> None:
    """Remove every ``COMMONS_*`` variable from this process's environment, except the
    test services' (``COMMONS_TEST_*``: the PostgreSQL server a benchmark makes its own
    schema in)."""
    for name in [n for n in os.environ if n.startswith("COMMONS_")]:
        if not name.startswith("COMMONS_TEST_"):
            del os.environ[name]


@contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a fresh schema on the test PostgreSQL server (``COMMONS_TEST_POSTGRES_URL``),
    dropped with everything in it afterwards."""
    schema = f"bench_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
