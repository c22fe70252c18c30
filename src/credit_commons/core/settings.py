"""The one typed settings object of Credit Commons.

Built once, from ``COMMONS_*`` environment variables (and optionally a ``.env`` file named by
the caller), in ``create_app(settings)`` or at the CLI root, then handed down.  Nothing reads
the environment anywhere else.  ``COMMONS_DATABASE_URL`` and ``COMMONS_DATA_DIR`` locate all
state, so several instances can run side by side on one machine.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from credit_commons.core.errors import ConfigurationError

__all__ = ["Environment", "Settings"]


class Environment(StrEnum):
    """Where the platform runs; ``production`` turns on every refusal of unsafe settings."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every configurable value of the platform, read once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="COMMONS_", extra="forbid", frozen=True, validate_default=True
    )

    env: Environment = Field(default=Environment.DEVELOPMENT, description="deployment kind")
    data_dir: Path = Field(default=Path("./var"), description="where local state lives")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/commons.db",
    )
    master_key_file: Path | None = Field(
        default=None, description="local master key file; default <data_dir>/master.key"
    )
    pseudonym_pepper: SecretStr | None = Field(
        default=None,
        description="secret pepper for pseudonyms, >= 32 bytes as base64url; "
        "derived from the master key in development when unset",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="the URL clients use to reach this instance"
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    log_origin: str | None = Field(
        default=None,
        description="the log's checkpoint origin line; default <public_url host>/log",
        max_length=255,
        pattern=r"^[^\s+]+$",
    )
    log_checkpoint_interval: float = Field(
        default=10.0, gt=0, description="seconds between checkpoints while the log grows"
    )
    log_checkpoint_leaves: int = Field(
        default=10_000, ge=1, description="publish a checkpoint as soon as this many new leaves"
    )
    log_batch_size: int = Field(default=10_000, ge=1, le=100_000)
    log_witnesses: list[str] = Field(
        default_factory=list,
        description="witnesses to ask for cosignatures, each 'VKEY@URL' (tlog-witness)",
    )
    anchor_backends: list[str] = Field(
        default_factory=lambda: ["file"], description="where checkpoints are anchored: file, evm"
    )
    anchor_file: Path | None = Field(
        default=None, description="the file anchor journal; default <data_dir>/anchors.jsonl"
    )
    anchor_max_attempts: int = Field(default=8, ge=1, description="attempts before DEAD")
    anchor_interval: float = Field(
        default=60.0, ge=0, description="at most one anchor per backend per this many seconds"
    )
    anchor_evm_rpc_url: str | None = Field(default=None, description="EVM JSON-RPC endpoint")
    anchor_evm_contract: str | None = Field(default=None, description="Anchor contract address")
    anchor_evm_private_key: SecretStr | None = Field(
        default=None, description="hex private key of the anchoring account"
    )
    issuer_key_type: Literal["Ed25519", "P-256"] = Field(
        default="Ed25519",
        description="the issuer signing key type: Ed25519 (EdDSA) or P-256 (ES256, as HAIP asks)",
    )
    kms: Literal["local", "pkcs11"] = Field(
        default="local", description="where the vault's master keys live"
    )
    pkcs11_lib: Path | None = Field(default=None, description="PKCS#11 module (.so) path")
    pkcs11_token: str | None = Field(default=None, description="PKCS#11 token label")
    pkcs11_pin: SecretStr | None = Field(default=None, description="PKCS#11 user PIN")
    pkcs11_key_prefix: str = Field(
        default="commons-kek", pattern=r"^[a-z0-9-]{1,32}$", description="HSM key label prefix"
    )
    vault_cache_ttl: float = Field(
        default=300.0, ge=0, description="seconds an unwrapped subject key stays cached"
    )
    retention_access_tokens_days: int = Field(default=1, ge=0, le=3650)
    retention_dsr_requests_days: int = Field(default=30, ge=0, le=3650)
    retention_delegations_days: int = Field(default=365, ge=0, le=36500)
    retention_denial_counts_days: int = Field(
        default=90,
        ge=0,
        le=3650,
        description="days the hourly counts of refusals that named nobody are kept",
    )
    retention_interval: float = Field(
        default=3600.0, gt=0, description="seconds between retention runs in the worker"
    )
    access_token_ttl: int = Field(
        default=300, ge=30, le=3600, description="seconds a lender's OAuth access token lives"
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis for rate limits (redis://host:port/db); in-process memory when unset",
    )
    rate_limit_client: str = Field(
        default="600/minute", description="requests per lender client, e.g. 600/minute"
    )
    rate_limit_ip: str = Field(
        default="1200/minute", description="requests per client IP address, e.g. 1200/minute"
    )
    rate_limit_strategy: Literal["moving-window", "fixed-window"] = Field(
        default="moving-window", description="how rate-limit windows are counted"
    )
    insecure_allow_private_network: bool = Field(
        default=False,
        description="let outbound fetches (did:web, status lists) reach loopback and private "
        "addresses; development only",
    )
    insecure_allow_http: bool = Field(
        default=False, description="let outbound fetches use plain http; development only"
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("rate_limit_client", "rate_limit_ip")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        # The `limits` notation: "<count>/<granularity>", several joined by ";" or ",".
        try:
            parse_many(value)
        except ValueError as e:
            raise ValueError("a rate limit looks like 600/minute or 10/second;1000/hour") from e
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'commons.db'}"

    @property
    def resolved_master_key_file(self) -> Path:
        """The master key file, defaulting to ``<data_dir>/master.key``."""
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def resolved_log_origin(self) -> str:
        """The log origin, defaulting to ``<host[:port] of the public URL>/log``."""
        if self.log_origin:
            return self.log_origin
        return f"{urlsplit(self.public_url).netloc}/log"

    @property
    def resolved_anchor_file(self) -> Path:
        """The file anchor journal, defaulting to ``<data_dir>/anchors.jsonl``."""
        return self.anchor_file or self.data_dir / "anchors.jsonl"

    @property
    def is_production(self) -> bool:
        """Whether the production refusals apply."""
        return self.env is Environment.PRODUCTION

    def insecure_flags(self) -> list[str]:
        """Names of the ``COMMONS_INSECURE_*`` flags that are switched on."""
        return [
            f"COMMONS_{name.upper()}"
            for name in type(self).model_fields
            if name.startswith("insecure_") and getattr(self, name)
        ]

    def check_production(self) -> None:
        """Refuse unsafe settings in production (cf. seed 002 §15).

        Checks what the settings alone can tell; the master key's origin is checked when the
        key file is loaded.  Raises :class:`ConfigurationError` naming what to set.
        """
        if not self.is_production:
            return
        if self.resolved_database_url.startswith("sqlite"):
            raise ConfigurationError(
                "production refuses SQLite",
                hint="set COMMONS_DATABASE_URL to a PostgreSQL URL, "
                "e.g. postgresql+psycopg://commons@db:5432/commons",
            )
        if self.pseudonym_pepper is None:
            raise ConfigurationError(
                "production needs a pseudonymisation pepper",
                hint="set COMMONS_PSEUDONYM_PEPPER to 32+ random bytes, base64url "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")',
            )
        flags = self.insecure_flags()
        if flags:
            raise ConfigurationError(
                f"production refuses insecure flags: {', '.join(flags)}",
                hint="unset " + " and ".join(flags),
            )
        if self.kms == "pkcs11" and not (self.pkcs11_lib and self.pkcs11_token and self.pkcs11_pin):
            raise ConfigurationError(
                "COMMONS_KMS=pkcs11 needs the module, token and PIN",
                hint="set COMMONS_PKCS11_LIB, COMMONS_PKCS11_TOKEN and COMMONS_PKCS11_PIN",
            )
        if self.public_url.startswith("http://"):
            raise ConfigurationError(
                "production needs an https public URL",
                hint="set COMMONS_PUBLIC_URL to the https:// address clients use",
            )
