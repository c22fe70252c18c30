"""The one typed settings object of Credit Commons.

Built once, from ``COMMONS_*`` environment variables (and optionally a ``.env`` file named by
the caller), in ``create_app(settings)`` or at the CLI root, then handed down.  Nothing reads
the environment anywhere else.  ``COMMONS_DATABASE_URL`` and ``COMMONS_DATA_DIR`` locate all
state, so several instances can run side by side on one machine.

A ``Settings`` built in code with an explicit ``data_dir`` (the demo, the benchmarks, tests)
takes its state locations (:data:`STATE_LOCATIONS`) from that directory, never from the
environment: only values given explicitly beside it are kept.  Otherwise a demo run from a
shell that configures an instance would write into that instance's database.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from credit_commons.core.alert_settings import AlertSettings
from credit_commons.core.node_quota_settings import NodeQuotaSettings
from credit_commons.core.settings_checks import (
    Violation,
    production_violations,
    refuse,
    url_for_address,
)
from credit_commons.core.tracing_settings import TracingSettings

__all__ = [
    "STATE_LOCATIONS",
    "Environment",
    "Settings",
    "Violation",
    "refuse",
    "url_for_address",
]

#: Settings that locate state.  Given ``data_dir`` explicitly, these default under it
#: instead of coming from the environment (see :class:`_UnlessDataDirGiven`).
STATE_LOCATIONS = frozenset(
    {"database_url", "master_key_file", "anchor_file", "log_published_file"}
)


class _UnlessDataDirGiven(PydanticBaseSettingsSource):
    """An environment source that yields no state location when ``data_dir`` was passed
    explicitly (and that location was not).

    pydantic-settings merges the keyword arguments over the environment field by field, so
    ``Settings(data_dir=tmp)`` would otherwise keep ``COMMONS_DATABASE_URL`` from the
    operator's shell and write elsewhere than ``tmp``.
    """

    def __init__(self, inner: PydanticBaseSettingsSource, init: InitSettingsSource) -> None:
        super().__init__(inner.settings_cls)
        self._inner = inner
        self._given = {name.lower() for name in init.init_kwargs}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` delegates to the wrapped source."""
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:  # signature: pydantic-settings' source
        values = self._inner()
        if "data_dir" not in self._given:
            return values
        return {k: v for k, v in values.items() if k not in STATE_LOCATIONS - self._given}


_LIMIT_KEY = re.compile(r"[a-z][a-z0-9-]{1,31}\.(?:ip|client)")


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
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        max_length=255,
        description="the address `commons serve` listens on (its --host overrides)",
    )
    port: int = Field(
        default=8000, ge=1, le=65535, description="the port `commons serve` listens on (--port)"
    )
    public_url: str = Field(
        default="",
        description="the URL clients use to reach this instance; default http://<host>:<port>. "
        "It makes links; the log's origin is recorded when the log is created (docs/log.md)",
    )
    db_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="database connections each process keeps open (as many again may open "
        "beyond it for a moment)",
    )
    db_pool_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="seconds a unit of work waits for a free connection before it is answered "
        "503 service.database_busy",
    )
    admission_writers: int | None = Field(
        default=None,
        ge=1,
        le=200,
        description="requests of the write routes a process runs at once; default 4 on SQLite "
        "(one writer at a time), half of COMMONS_DB_POOL_SIZE on PostgreSQL (docs/limits.md)",
    )
    admission_readers: int | None = Field(
        default=None,
        ge=1,
        le=200,
        description="requests of the read routes a process runs at once; default 8 on SQLite, "
        "half of COMMONS_DB_POOL_SIZE on PostgreSQL",
    )
    admission_queue: int = Field(
        default=128,
        ge=0,
        le=100_000,
        description="requests of each route class that may wait for their turn (503 beyond)",
    )
    admission_wait: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="seconds a request waits for its turn before it is answered 503",
    )
    log_origin: str | None = Field(
        default=None,
        description="the log's checkpoint origin line, recorded when the log is created; "
        "default <public URL host[:port]>/log.  A later value must equal the recorded one",
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
    log_published_file: Path | None = Field(
        default=None,
        description="the record of the last checkpoint the log published, kept outside the "
        "database (never restored with it); default <data_dir>/log-published.json",
    )
    log_witnesses: list[str] = Field(
        default_factory=list,
        description="witnesses to ask for cosignatures, each 'VKEY@URL' (tlog-witness)",
    )
    committee_notice: float = Field(
        default=7 * 24 * 3600.0,
        ge=0,
        description="seconds a change of checkpoint committee waits before it takes effect",
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
    nats_url: SecretStr | None = Field(
        default=None,
        description="NATS server with JetStream (nats://host:4222) the worker publishes the "
        "federation subjects to (docs/federation.md); off when unset",
    )
    federation_batch: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="messages the federation publisher sends per batch",
    )
    node_quotas: NodeQuotaSettings = Field(default_factory=NodeQuotaSettings)  # node/quotas.py
    # GET /v1/subscribe (docs/federation.md): open streams per process (503 beyond) and per
    # bearer token (429 beyond); messages buffered per subscriber, dropped when its buffer
    # stays full subscribe_stall seconds; seconds between a caught-up stream's polls.
    subscribe_streams: int = Field(default=32, ge=1, le=10_000)
    subscribe_streams_per_credential: int = Field(default=4, ge=1, le=1_000)
    subscribe_buffer: int = Field(default=256, ge=2, le=100_000)
    subscribe_stall: float = Field(default=5.0, gt=0, le=600)
    subscribe_poll: float = Field(default=0.5, gt=0, le=60)
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
    erasure_epoch: float = Field(
        default=86400.0,
        ge=60,
        le=31 * 86400,
        description="seconds an erasure epoch lasts: an erasure is unreadable in every backup "
        "once its epoch has closed (docs/operations.md)",
    )
    access_token_ttl: int = Field(
        default=300, ge=30, le=3600, description="seconds a lender's OAuth access token lives"
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis for rate limits (redis://host:port/db); in-process memory when unset",
    )
    rate_limit_client: str = Field(
        default="600/minute",
        description="requests per lender client to the lender API and token endpoint",
    )
    rate_limit_ip: str = Field(
        default="1200/minute",
        description="requests per IP address to the lender API and token endpoint",
    )
    service_token_ttl: int = Field(
        default=300,
        ge=10,
        le=300,
        description="seconds a service-to-service token lives (at most 5 minutes)",
    )
    service_key_overlap: int = Field(
        default=600,
        ge=10,
        le=7 * 86400,
        description="seconds a service key keeps verifying after its successor starts "
        "signing; at least the token lifetime (docs/operations.md, service auth)",
    )
    service_key_rotation_days: float = Field(
        default=30.0,
        gt=0,
        le=365,
        description="days between scheduled rotations of each service key (the worker)",
    )
    surface_registry_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="the SHA-256 of the route registry this deployment audited; the server "
        "refuses to start with another (docs/operations.md); default: the release's own pin "
        "(production requires it)",
    )
    migration_database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the schema owner's role, for `commons db upgrade` "
        "and `commons db grant-service-role`; default COMMONS_DATABASE_URL",
    )
    strict_db_role: bool = Field(
        default=False,
        description="check at start-up that the database role cannot change the schema or "
        "delete log rows (docs/operations.md); production always checks",
    )
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description="limits per route group and kind, overriding the defaults, as JSON: "
        '{"registration.ip": "10/minute", "log.ip": "600/minute"} (docs/limits.md)',
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="addresses or CIDRs of the proxies whose forwarding header names the "
        "client, comma-separated; none by default (loopback is not trusted either)",
    )
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = Field(
        default="x-forwarded-for",
        description="the header the trusted proxies write: X-Forwarded-For or RFC 7239 Forwarded",
    )
    client_cert_header: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9-]+$",
        description="the header in which a trusted TLS proxy forwards the verified client "
        "certificate (URL-encoded PEM, nginx's $ssl_client_escaped_cert), e.g. x-client-cert; "
        "unset: no mutual TLS, certificate-bound lenders get no tokens (docs/lenders.md)",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest request body (413 beyond)"
    )
    max_batch_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="largest body of POST /v1/credentials/batch (1,000 credentials)",
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="largest request line and header section together (431 beyond)",
    )
    max_header_line_bytes: int = Field(
        default=8 * 1024,
        ge=256,
        le=1024 * 1024,
        description="largest request line or single header line (431 beyond)",
    )
    http_keep_alive: int = Field(
        default=20,
        ge=1,
        le=300,
        description="seconds an idle keep-alive connection stays open; longer than clients' "
        "own idle expiry (httpx 5 s, aiohttp 15 s), so that a client never sends a request on "
        "a connection the server is closing",
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
    wallet_ca_file: Path | None = Field(
        default=None,
        description="a PEM file of CA certificates the wallet's https connections trust "
        "besides the public roots (a private or test CA); certificates are always verified",
    )

    # Anomalous-access alerts (docs/operations.md "Monitoring and alerts"): the thresholds as
    # one JSON object, and where alert webhooks go (none queued when unset).
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    alert_webhook_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    # OpenTelemetry traces, from the standard OTEL_* variables (core/tracing_settings.py).
    tracing: TracingSettings = Field(default_factory=TracingSettings)

    _public_url_derived: bool = PrivateAttr(default=False)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments first, then the environment, a ``.env`` file and secret files,
        each of the last three blind to state locations when ``data_dir`` is given
        explicitly."""
        assert isinstance(init_settings, InitSettingsSource)
        return (
            init_settings,
            *(
                _UnlessDataDirGiven(source, init_settings)
                for source in (env_settings, dotenv_settings, file_secret_settings)
            ),
        )

    @model_validator(mode="after")
    def _derive_public_url(self) -> Self:
        # The default public URL is where `commons serve` listens, so a server started on
        # another port presents links to itself rather than to port 8000.
        if not self.public_url:
            object.__setattr__(self, "public_url", url_for_address(self.host, self.port))
            self._public_url_derived = True
        return self

    @model_validator(mode="after")
    def _overlap_covers_tokens(self) -> Self:
        # A token signed just before a rotation must expire before the key that signed it
        # stops verifying, or a call in flight fails.
        if self.service_key_overlap < self.service_token_ttl:
            raise ValueError(
                "COMMONS_SERVICE_KEY_OVERLAP must be at least COMMONS_SERVICE_TOKEN_TTL"
            )
        return self

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        if not value:
            return value  # derived from host and port after validation
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError as e:
            raise ValueError("the public URL is malformed") from e
        if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
            raise ValueError("the public URL must be an absolute http(s) URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("the public URL takes no query or fragment")
        return value

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

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, value: dict[str, str]) -> dict[str, str]:
        # Keys "<group>.<ip|client>"; the group names are checked against the gateway's
        # route groups when the limiter is built (core cannot know them).
        for key, limit in value.items():
            if not _LIMIT_KEY.fullmatch(key):
                raise ValueError(f"{key!r}: a key looks like registration.ip or log.client")
            cls._rate_limit(limit)
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        # A comma-separated list in the environment; a list when built in code (anything
        # else is left to the field's own validation).
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            return value
        networks = []
        for entry in value:
            try:
                networks.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
            except ValueError as e:
                raise ValueError(f"{entry!r} is not an IP address or CIDR") from e
        return networks

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
    def initial_log_origin(self) -> str:
        """The origin a new log is created with: ``COMMONS_LOG_ORIGIN``, or
        ``<host[:port] of the public URL>/log``.

        Only the log's creation reads this; afterwards the origin recorded then is the log's
        (``credit_commons.ledger.identity``), whatever the public URL becomes.
        """
        if self.log_origin:
            return self.log_origin
        return f"{urlsplit(self.public_url).netloc.lower()}/log"

    @property
    def public_url_is_derived(self) -> bool:
        """Whether the public URL was derived from ``host`` and ``port`` (none was set)."""
        return self._public_url_derived

    def listening_on(self, host: str, port: int, *, tls: bool = False) -> Settings:
        """These settings for a server listening on ``host``:``port`` (over TLS with
        ``tls``); a derived public URL follows the address, ``https`` with TLS."""
        update: dict[str, Any] = {"host": host, "port": port}
        if self._public_url_derived:
            url = url_for_address(host, port)
            update["public_url"] = "https" + url.removeprefix("http") if tls else url
        return self.model_copy(update=update)

    def public_url_disagreement(self) -> str | None:
        """Why the configured public URL cannot reach this server, or None.

        A public URL naming this machine (loopback, or the listening host) on another port
        than the one served can only be a stale setting; a proxy in front of the server
        makes any other public URL legitimate.
        """
        if self._public_url_derived:
            return None
        parts = urlsplit(self.public_url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        host = (parts.hostname or "").lower()
        local = {"localhost", self.host.strip("[]").lower()}
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if (loopback or host in local) and port != self.port:
            return (
                f"COMMONS_PUBLIC_URL={self.public_url} names port {port} of this machine, "
                f"but the server listens on {self.host}:{self.port}"
            )
        return None

    @property
    def resolved_anchor_file(self) -> Path:
        """The file anchor journal, defaulting to ``<data_dir>/anchors.jsonl``."""
        return self.anchor_file or self.data_dir / "anchors.jsonl"

    @property
    def resolved_log_published_file(self) -> Path:
        """The record of the last published checkpoint, defaulting to
        ``<data_dir>/log-published.json``."""
        return self.log_published_file or self.data_dir / "log-published.json"

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

    def production_violations(self) -> list[Violation]:
        """Every setting production refuses (cf. seed 002 §15), each with what to set.

        Checks what the settings alone can tell; the master key's origin is checked when the
        key file is loaded (``Runtime.build`` adds it to the same list).
        """
        return production_violations(self)

    def check_production(self) -> None:
        """Refuse unsafe settings in production, naming every one at once.

        Raises :class:`ConfigurationError` listing each :meth:`production_violations` entry
        with its hint (and ``violations`` in its problem details).
        """
        refuse(self.production_violations())
