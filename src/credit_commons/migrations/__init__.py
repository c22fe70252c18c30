"""Alembic migrations of the platform schema; run with ``commons db upgrade``."""
