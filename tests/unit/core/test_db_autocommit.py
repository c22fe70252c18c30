"""core/db_autocommit.py: one autocommit session factory per engine, freed with its engine."""

from __future__ import annotations

import gc
import weakref

from sqlalchemy import create_engine

from credit_commons.core.db_autocommit import autocommit_sessions


def test_one_factory_per_engine_bound_in_autocommit() -> None:
    engine = create_engine("sqlite://")
    try:
        made = autocommit_sessions(engine)
        assert autocommit_sessions(engine) is made
        assert autocommit_sessions(create_engine("sqlite://")) is not made
        with made() as session:
            assert session.connection().get_execution_options()["isolation_level"] == "AUTOCOMMIT"
    finally:
        engine.dispose()


def test_disposed_engines_are_not_kept_by_their_factories() -> None:
    # The factory is bound to its engine: a cache holding it would keep every engine (and
    # every test runtime's) alive for good.
    gone: list[weakref.ref[object]] = []
    for _ in range(3):
        engine = create_engine("sqlite://")
        with autocommit_sessions(engine)() as session:
            session.connection()
        engine.dispose()
        gone.append(weakref.ref(engine))
        del engine, session
    gc.collect()
    assert [ref() for ref in gone] == [None, None, None]
