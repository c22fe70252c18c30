from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from credit_commons.core.errors import ConfigurationError
from credit_commons.core.settings import Environment, Settings

PEPPER = "x" * 43
PG = "postgresql+psycopg://commons@db/commons"


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "database_url": PG,
        "pseudonym_pepper": PEPPER,
        "public_url": "https://commons.example",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_defaults_locate_state_under_the_data_dir() -> None:
    settings = Settings()
    assert settings.env is Environment.DEVELOPMENT
    assert settings.resolved_database_url == "sqlite:///var/commons.db"
    assert settings.resolved_master_key_file == Path("var/master.key")
    other = Settings(data_dir=Path("/srv/b"))
    assert other.resolved_database_url == "sqlite:////srv/b/commons.db"


def test_settings_come_from_commons_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMONS_DATA_DIR", "/tmp/x")
    monkeypatch.setenv("COMMONS_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.data_dir == Path("/tmp/x")
    assert settings.log_level == "DEBUG"


def test_unknown_or_bad_values_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings(env="staging")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        Settings(log_level="LOUD")


def test_pepper_is_never_shown() -> None:
    settings = production()
    assert PEPPER not in repr(settings)
    assert PEPPER not in str(settings.model_dump())


def test_good_production_settings_pass() -> None:
    production().check_production()


@pytest.mark.parametrize(
    ("overrides", "must_name"),
    [
        ({"database_url": None}, "COMMONS_DATABASE_URL"),
        ({"database_url": "sqlite:///x.db"}, "COMMONS_DATABASE_URL"),
        ({"pseudonym_pepper": None}, "COMMONS_PSEUDONYM_PEPPER"),
        ({"insecure_allow_http": True}, "COMMONS_INSECURE_ALLOW_HTTP"),
        ({"insecure_allow_private_network": True}, "COMMONS_INSECURE_ALLOW_PRIVATE_NETWORK"),
        ({"public_url": "http://commons.example"}, "COMMONS_PUBLIC_URL"),
    ],
)
def test_production_refusals_say_what_to_set(overrides: dict[str, object], must_name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        production(**overrides).check_production()
    assert must_name in info.value.diagnostics()


def test_development_allows_what_production_refuses() -> None:
    Settings(insecure_allow_http=True).check_production()
