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
        "surface_registry_sha256": "ab" * 32,
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
        ({"surface_registry_sha256": None}, "COMMONS_SURFACE_REGISTRY_SHA256"),
    ],
)
def test_production_refusals_say_what_to_set(overrides: dict[str, object], must_name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        production(**overrides).check_production()
    assert must_name in info.value.diagnostics()


def test_development_allows_what_production_refuses() -> None:
    Settings(insecure_allow_http=True).check_production()
    # `make run` and the tests: the release's own pin is enough outside production.
    for env in ("development", "test"):
        settings = production(env=env, surface_registry_sha256=None)
        assert settings.production_violations() == []


# -- issue 12 item 13: an explicit data directory locates all state ---------------------------


@pytest.fixture
def configured_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator's configured instance, as the environment names it."""
    monkeypatch.setenv("COMMONS_DATA_DIR", "/srv/configured")
    monkeypatch.setenv("COMMONS_DATABASE_URL", PG)
    monkeypatch.setenv("COMMONS_MASTER_KEY_FILE", "/srv/configured/keys/master.key")
    monkeypatch.setenv("COMMONS_ANCHOR_FILE", "/srv/configured/anchors.jsonl")
    monkeypatch.setenv("COMMONS_LOG_PUBLISHED_FILE", "/srv/keys/log-published.json")


@pytest.mark.usefixtures("configured_env")
def test_an_explicit_data_dir_derives_all_state_from_it() -> None:
    settings = Settings(data_dir=Path("/tmp/demo"))
    assert settings.resolved_database_url == "sqlite:////tmp/demo/commons.db"
    assert settings.resolved_master_key_file == Path("/tmp/demo/master.key")
    assert settings.resolved_anchor_file == Path("/tmp/demo/anchors.jsonl")
    assert settings.resolved_log_published_file == Path("/tmp/demo/log-published.json")


@pytest.mark.usefixtures("configured_env")
def test_an_explicit_database_beside_an_explicit_data_dir_is_kept() -> None:
    settings = Settings(data_dir=Path("/tmp/demo"), database_url="sqlite:////tmp/other.db")
    assert settings.resolved_database_url == "sqlite:////tmp/other.db"
    # What was not given explicitly still follows the data directory, never the environment.
    assert settings.resolved_master_key_file == Path("/tmp/demo/master.key")


@pytest.mark.usefixtures("configured_env")
def test_the_environment_alone_locates_state_as_configured() -> None:
    settings = Settings()
    assert settings.data_dir == Path("/srv/configured")
    assert settings.resolved_database_url == PG
    assert settings.resolved_master_key_file == Path("/srv/configured/keys/master.key")
    assert settings.resolved_anchor_file == Path("/srv/configured/anchors.jsonl")
    assert settings.resolved_log_published_file == Path("/srv/keys/log-published.json")
    # Other explicit values leave the configured locations alone.
    assert Settings(log_level="debug").resolved_database_url == PG


# -- issue 12 item 17: every violation at once; only https public URLs ------------------------


def test_production_names_every_violation_at_once() -> None:
    settings = production(
        database_url=None,
        pseudonym_pepper=None,
        insecure_allow_http=True,
        public_url="http://commons.example",
        kms="pkcs11",
    )
    with pytest.raises(ConfigurationError) as info:
        settings.check_production()
    text = info.value.diagnostics()
    for name in (
        "COMMONS_DATABASE_URL",
        "COMMONS_PSEUDONYM_PEPPER",
        "COMMONS_INSECURE_ALLOW_HTTP",
        "COMMONS_PKCS11_LIB",
        "COMMONS_PUBLIC_URL",
    ):
        assert name in text
    violations = info.value.problem()["violations"]
    assert len(violations) == 5
    assert all(v["problem"] and v["hint"] for v in violations)


@pytest.mark.parametrize(
    "url",
    [
        "HTTP://commons.example",
        "Http://commons.example",
        "ftp://commons.example",
        "https://",
        "https:///path-only",
        "commons.example",
        "//commons.example",
    ],
)
def test_production_accepts_only_https_public_urls(url: str) -> None:
    try:
        settings = production(public_url=url)
    except pydantic.ValidationError:
        return  # refused even earlier: not a URL clients could use at all
    with pytest.raises(ConfigurationError) as info:
        settings.check_production()
    assert "COMMONS_PUBLIC_URL" in info.value.diagnostics()


def test_the_https_scheme_is_compared_case_insensitively() -> None:
    production(public_url="HTTPS://commons.example").check_production()


# -- issue 12 item 12: the default public URL is the server's own address ---------------------


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8201, "http://127.0.0.1:8201"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000"),
        ("::", 9000, "http://[::1]:9000"),
        ("::1", 9000, "http://[::1]:9000"),
        ("commons.local", 80, "http://commons.local:80"),
    ],
)
def test_the_default_public_url_follows_the_listening_address(
    host: str, port: int, url: str
) -> None:
    assert Settings(host=host, port=port).public_url == url
    assert Settings().listening_on(host, port).public_url == url


def test_an_explicit_public_url_is_kept_and_a_stale_one_is_named() -> None:
    behind_proxy = Settings(public_url="https://commons.example").listening_on("127.0.0.1", 8201)
    assert behind_proxy.public_url == "https://commons.example"
    assert behind_proxy.public_url_disagreement() is None
    stale = Settings(public_url="http://127.0.0.1:8000").listening_on("127.0.0.1", 8201)
    assert stale.public_url == "http://127.0.0.1:8000"
    message = stale.public_url_disagreement()
    assert message is not None
    assert "COMMONS_PUBLIC_URL=http://127.0.0.1:8000" in message
    assert "127.0.0.1:8201" in message
    assert Settings().listening_on("127.0.0.1", 8201).public_url_disagreement() is None


def test_a_derived_public_url_is_https_when_serving_tls() -> None:
    # `commons serve --ssl-certfile … --ssl-keyfile …` without COMMONS_PUBLIC_URL.
    served = Settings().listening_on("127.0.0.1", 8443, tls=True)
    assert served.public_url == "https://127.0.0.1:8443"
    assert served.public_url_disagreement() is None
    given = Settings(public_url="https://commons.example").listening_on("0.0.0.0", 8443, tls=True)
    assert given.public_url == "https://commons.example"


def test_the_initial_log_origin_comes_from_the_public_url_or_the_setting() -> None:
    assert Settings(port=8201).initial_log_origin == "127.0.0.1:8201/log"
    assert Settings(public_url="https://Commons.Example").initial_log_origin == (
        "commons.example/log"
    )
    assert Settings(log_origin="x.example/log").initial_log_origin == "x.example/log"


@pytest.mark.parametrize(
    "url", ["ftp://commons.example", "https://", "commons.example", "http://x:99999"]
)
def test_a_public_url_clients_cannot_use_is_refused_everywhere(url: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings(public_url=url)


def test_the_service_key_overlap_covers_a_token_lifetime() -> None:
    # A shorter overlap would retire a key while tokens it signed are still valid: a
    # rotation would fail calls in flight (docs/operations.md, service-to-service auth).
    with pytest.raises(pydantic.ValidationError, match="COMMONS_SERVICE_KEY_OVERLAP"):
        Settings(service_token_ttl=300, service_key_overlap=299)
    with pytest.raises(pydantic.ValidationError):
        Settings(service_token_ttl=301)  # at most five minutes
    assert Settings(service_token_ttl=60, service_key_overlap=60).service_key_overlap == 60
