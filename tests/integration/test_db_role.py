"""The strict database role (issue 21 §5; core/db_role.py) on a real PostgreSQL: the schema
is migrated by its owner, ``commons db grant-service-role`` gives a service role exactly the
service's privileges, the service runs as that role (start-up checks it), the database
itself refuses its attempts to delete or rewrite log rows or change the schema, and the
owner's role is refused at a production start.  On SQLite the posture is file permissions."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate

from credit_commons.cli import main
from credit_commons.core.db_role import check_db_role, grant_statements, role_violations
from credit_commons.core.errors import ConfigurationError, ExitCode
from credit_commons.gateway.app import create_app, startup_checks
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime


@dataclass(frozen=True)
class Roles:
    """The schema owner's URL, and the service role's name and URL, on the same schema."""

    owner_url: str
    service: str
    service_url: str


@pytest.fixture
def roles(postgres_schema_url: str) -> Iterator[Roles]:
    owner = sa.create_engine(postgres_schema_url)
    migrate(owner)
    service = f"svc_{secrets.token_hex(4)}"
    with owner.begin() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {service} LOGIN")
    user = sa.engine.make_url(postgres_schema_url).username
    try:
        yield Roles(
            postgres_schema_url,
            service,
            postgres_schema_url.replace(f"//{user}@", f"//{service}@", 1),
        )
    finally:
        with owner.begin() as connection:
            connection.exec_driver_sql(f"DROP OWNED BY {service}")
            connection.exec_driver_sql(f"DROP ROLE {service}")
        owner.dispose()


def _grant(
    roles: Roles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> dict[str, object]:
    # As an operator would: the service's URL in COMMONS_DATABASE_URL, the owner's for
    # migrations and grants.
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", roles.service_url)
    monkeypatch.setenv("COMMONS_MIGRATION_DATABASE_URL", roles.owner_url)
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["db", "grant-service-role", roles.service, "--json"]) == 0
    granted: dict[str, object] = json.loads(capsys.readouterr().out)
    return granted


@pytest.mark.postgres
def test_a_granted_service_role_is_strict_and_serves(
    roles: Roles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    granted = _grant(roles, tmp_path, monkeypatch, capsys)
    assert granted["role"] == roles.service
    statements = granted["statements"]
    assert isinstance(statements, list)
    assert any(s.startswith("REVOKE UPDATE, DELETE ON") for s in statements)

    engine = sa.create_engine(roles.service_url)
    try:
        assert role_violations(engine) == []
        check_db_role(engine)
    finally:
        engine.dispose()
    assert main(["db", "check-role", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"strict": True, "violations": []}
    monkeypatch.setenv("COMMONS_STRICT_DB_ROLE", "true")
    assert main(["worker", "--once"]) == 0  # the worker runs the same check
    monkeypatch.setenv("COMMONS_DATABASE_URL", roles.owner_url)
    assert main(["worker", "--once"]) == ExitCode.CONFIGURATION
    assert "not the strict one" in capsys.readouterr().err
    monkeypatch.delenv("COMMONS_STRICT_DB_ROLE")

    # The service starts as that role with the check on, writes (an identity and its
    # event) through the API, and its log worker sequences and signs a checkpoint.
    settings = make_settings(tmp_path, database_url=roles.service_url, strict_db_role=True)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        body = {"roles": ["business"], "profile": {"name": "Asha"}}
        made = client.post("/v1/identities", json=body)
        assert made.status_code == 201, made.text
        for _ in range(2):  # twice: the second batch grows the partial tiles in place
            client.post("/v1/identities", json=body)
            report = LogWorker(client.app.state.runtime).run_once(force_checkpoint=True)
            assert report.checkpoint
        assert client.get("/v1/log/checkpoint").status_code == 200


@pytest.mark.postgres
def test_the_database_refuses_the_service_role_deleting_log_rows(
    roles: Roles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _grant(roles, tmp_path, monkeypatch, capsys)
    engine = sa.create_engine(roles.service_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO events (id, type, at, actor, details)"
                " VALUES ('ev_probe', 'probe', now(), 'actor', '{}')"
            )
        for statement in (
            "DELETE FROM events WHERE id = 'ev_probe'",
            "UPDATE events SET type = 'rewritten' WHERE id = 'ev_probe'",
            "TRUNCATE events",
            "DELETE FROM log_entries",
            "UPDATE log_checkpoints SET note = ''",
            "DELETE FROM log_cosignatures",
            "DELETE FROM alembic_version",
            "CREATE TABLE intruder (id integer)",
            "ALTER TABLE events ADD COLUMN intruder integer",
            "DROP TABLE log_entries",
        ):
            refused = pytest.raises(sa.exc.ProgrammingError, match=r"permission denied|owner")
            with refused, engine.begin() as connection:
                connection.exec_driver_sql(statement)
        with engine.connect() as connection:
            kept = connection.exec_driver_sql("SELECT type FROM events WHERE id = 'ev_probe'")
            assert kept.scalar_one() == "probe"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_owner_role_is_refused_at_a_production_start(
    roles: Roles,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = Runtime.build(make_settings(tmp_path, database_url=roles.owner_url))
    try:
        startup_checks(runtime)  # development: the owner is accepted
        runtime.settings = make_settings(tmp_path, env="production", database_url=roles.owner_url)
        with pytest.raises(ConfigurationError) as refused:
            startup_checks(runtime)
        detail = refused.value.detail
        assert "is not the strict one" in detail
        assert "the schema's owner" in detail or "is a superuser" in detail
        assert "grant-service-role" in (refused.value.hint or "")
    finally:
        runtime.close()
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", roles.owner_url)
    assert main(["db", "check-role"]) == ExitCode.CONFIGURATION
    assert "not the strict one" in capsys.readouterr().err


@pytest.mark.postgres
def test_a_role_granted_too_much_is_named(
    roles: Roles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _grant(roles, tmp_path, monkeypatch, capsys)
    owner = sa.create_engine(roles.owner_url)
    with owner.begin() as connection:
        connection.exec_driver_sql(f"GRANT DELETE ON events TO {roles.service}")
        connection.exec_driver_sql(f"GRANT TRUNCATE ON consents TO {roles.service}")
        connection.exec_driver_sql(f"REVOKE INSERT ON log_entries FROM {roles.service}")
    owner.dispose()
    engine = sa.create_engine(roles.service_url)
    try:
        problems = [v.problem for v in role_violations(engine)]
    finally:
        engine.dispose()
    assert problems == [
        f"the database role {roles.service} may TRUNCATE consents",
        f"the database role {roles.service} may DELETE events",
        f"the database role {roles.service} may not read and insert into log_entries",
    ]


def test_role_names_are_plain_identifiers_and_postgres_only(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection, pytest.raises(ConfigurationError, match="PostgreSQL"):
        grant_statements(connection, "commons_app")
    engine.dispose()


@pytest.mark.postgres
def test_a_role_name_that_is_not_an_identifier_is_refused(roles: Roles) -> None:
    owner = sa.create_engine(roles.owner_url)
    try:
        with owner.connect() as connection:
            for name in ("x; DROP TABLE events", 'a"b', "Upper", ""):
                with pytest.raises(ConfigurationError, match="plain SQL role name"):
                    grant_statements(connection, name)
    finally:
        owner.dispose()


def test_sqlite_posture_is_the_files_permissions(tmp_path: Path) -> None:
    directory = tmp_path / "var"
    directory.mkdir(mode=0o700)
    directory.chmod(0o700)
    database = directory / "commons.db"
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (id integer)")
        database.chmod(0o600)
        assert role_violations(engine) == []
        database.chmod(0o664)
        (violation,) = role_violations(engine)
        assert "writable by its group or others" in violation.problem
        assert violation.hint.startswith(f"chmod go-w {database}")
        database.chmod(0o600)
        directory.chmod(0o777)
        (violation,) = role_violations(engine)
        assert f"directory {directory}" in violation.problem
    finally:
        directory.chmod(0o700)
        engine.dispose()


def _service_problems(roles: Roles) -> list[str]:
    engine = sa.create_engine(roles.service_url)
    try:
        return [v.problem for v in role_violations(engine)]
    finally:
        engine.dispose()


def test_a_noinherit_member_of_the_owner_role_is_refused(
    roles: Roles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """NOINHERIT hides the owner's privileges from the privilege functions, but the member
    may still SET ROLE to the owner: membership, not usage, is what counts."""
    _grant(roles, tmp_path, monkeypatch, capsys)
    assert _service_problems(roles) == []
    owner_name = sa.engine.make_url(roles.owner_url).username
    owner = sa.create_engine(roles.owner_url)
    try:
        with owner.begin() as connection:
            connection.exec_driver_sql(f"ALTER ROLE {roles.service} NOINHERIT")
            connection.exec_driver_sql(f"GRANT {owner_name} TO {roles.service}")
    finally:
        owner.dispose()
    engine = sa.create_engine(roles.service_url)
    try:
        with engine.begin() as connection:  # what the check guards against: it can
            connection.exec_driver_sql(f"SET ROLE {owner_name}")
            connection.exec_driver_sql("RESET ROLE")
    finally:
        engine.dispose()
    problems = _service_problems(roles)
    assert f"the database role {roles.service} may become the schema's owner" in problems
    assert any("may become the owner of the table events" in p for p in problems)


@pytest.mark.parametrize("attribute", ["CREATEROLE", "BYPASSRLS", "REPLICATION"])
def test_a_role_with_createrole_bypassrls_or_replication_is_refused(
    roles: Roles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    attribute: str,
) -> None:
    _grant(roles, tmp_path, monkeypatch, capsys)
    owner = sa.create_engine(roles.owner_url)
    try:
        with owner.begin() as connection:
            connection.exec_driver_sql(f"ALTER ROLE {roles.service} {attribute}")
    finally:
        owner.dispose()
    assert _service_problems(roles) == [f"the database role {roles.service} has {attribute}"]


@pytest.mark.postgres
def test_before_the_grant_the_service_role_is_told_to_run_it(
    roles: Roles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The documented set-up (`commons db upgrade` as the owner, then `commons db
    # grant-service-role`): a service started between the two may see the schema (as in
    # `public`) but not read alembic_version.  Every route and /readyz answer 503
    # service.not_granted naming the command, never a 500; the grant opens the gate.
    owner = sa.create_engine(roles.owner_url)
    try:
        with owner.begin() as connection:
            schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
            connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {roles.service}")
    finally:
        owner.dispose()
    app = create_app(make_settings(tmp_path, database_url=roles.service_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(2):  # the first look, then the kept answer within the window
            for path in ["/v1/log/key", "/readyz"]:
                answer = client.get(path)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.headers["retry-after"] == "5"
                assert answer.json()["code"] == "service.not_granted"
                assert "commons db grant-service-role" in answer.json()["detail"]
        _grant(roles, tmp_path, monkeypatch, capsys)
        gate = app.state.schema_gate
        while not gate.due():
            threading.Event().wait(0.05)
        assert client.get("/v1/log/key").status_code == 200
        assert client.get("/readyz").json()["status"] == "ready"
