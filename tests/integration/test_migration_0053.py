"""Migration 0053 on SQLite and PostgreSQL: a committee member's node binding names a
registered committee version (a foreign key), and going down to 0052 and up again leaves a
full node with no notes and no watermark claiming them, so it reads the entries again
instead of scoring without inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from credit_commons.core.db import dispose_engine, make_engine
from credit_commons.core.migrate import current_revision, head_revision, upgrade
from credit_commons.node.scoring_notes import NOTED_BELOW, noted_below

_NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", "credit_commons:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _bind(connection: sa.Connection, version: int) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO committee_member_nodes (version, member, node, bound_at)"
            " VALUES (:version, 1, 'node-a', :at)"
        ),
        {"version": version, "at": _NOW},
    )


def test_a_binding_names_a_registered_committee_version(backend_url: str) -> None:
    engine = make_engine(backend_url)
    try:
        assert upgrade(engine, "0053") == "0053"
        keys = sa.inspect(engine).get_foreign_keys("committee_member_nodes")
        assert [(k["constrained_columns"], k["referred_table"]) for k in keys] == [
            (["version"], "committee_configs")
        ]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            _bind(connection, 7)
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO committee_configs (version, name, threshold, members,"
                    " group_key, member_keys, registered_at, effective_at)"
                    " VALUES (7, 'c', 1, 1, :key, :key, :at, :at)"
                ),
                {"key": b"\x01" * 48, "at": _NOW},
            )
            _bind(connection, 7)
        _downgrade(engine, "0052")
        assert "committee_member_nodes" not in sa.inspect(engine).get_table_names()
        assert upgrade(engine) == head_revision()
    finally:
        dispose_engine(engine)


def test_down_to_0052_and_up_again_the_node_notes_its_leaves_again(backend_url: str) -> None:
    engine = make_engine(backend_url)
    try:
        assert upgrade(engine) == head_revision()
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO node_spine_leaves (position, stream) VALUES (0, 'E')")
            )
            connection.execute(
                sa.text("INSERT INTO node_pins (name, value, pinned_at) VALUES (:n, '256', :at)"),
                {"n": NOTED_BELOW, "at": _NOW},
            )
        with Session(engine) as session:
            assert noted_below(session) == 256
        _downgrade(engine, "0052")
        assert current_revision(engine) == "0052"
        assert upgrade(engine) == head_revision()
        with Session(engine) as session:
            assert noted_below(session) == 0  # every leaf is read again
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM node_spine_leaves")) == 0
    finally:
        dispose_engine(engine)
