"""Migration 0056 on SQLite and PostgreSQL: ``events`` has ``(subject, id)`` in place of
``(subject)``, and going down to 0053 and up again swaps them back and forth."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from credit_commons.core.db import dispose_engine, make_engine
from credit_commons.core.migrate import head_revision, upgrade


def _downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", "credit_commons:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _subject_indexes(engine: Engine) -> dict[str, list[str | None]]:
    return {
        str(i["name"]): list(i["column_names"])
        for i in sa.inspect(engine).get_indexes("events")
        if "subject" in i["column_names"]
    }


def test_the_subject_index_orders_by_id_and_goes_down_and_up(backend_url: str) -> None:
    engine = make_engine(backend_url)
    try:
        assert upgrade(engine, "0056") == "0056"
        assert _subject_indexes(engine) == {"ix_events_subject_id": ["subject", "id"]}
        _downgrade(engine, "0053")
        assert _subject_indexes(engine) == {"ix_events_subject": ["subject"]}
        assert upgrade(engine) == head_revision()
        assert _subject_indexes(engine) == {"ix_events_subject_id": ["subject", "id"]}
    finally:
        dispose_engine(engine)
