"""Whether and where OpenTelemetry traces go (docs/operations.md "Tracing").

Read from the standard ``OTEL_*`` variables of the OpenTelemetry specification
("Environment Variable Specification", "OTLP Exporter Configuration"), not ``COMMONS_*``
ones, so an operator configures the platform as any other traced service.  Only the
subset the platform implements is read; every value is checked once at start-up, and a
value the platform cannot honour (another exporter, the gRPC protocol) stops the start
instead of being ignored.

Tracing is off unless ``OTEL_TRACES_EXPORTER=otlp`` is set, or an OTLP endpoint is set
and ``OTEL_TRACES_EXPORTER`` is not.  ``OTEL_SDK_DISABLED=true`` and
``OTEL_TRACES_EXPORTER=none`` turn it off whatever else is set.  (The specification's own
default exporter is ``otlp``: a platform that handles personal data sends nothing
anywhere until told where.)
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_OTLP_ENDPOINT", "TracingSettings"]

# OTLP/HTTP's default collector address (OTLP Exporter Configuration, "Endpoint URLs").
DEFAULT_OTLP_ENDPOINT = "http://localhost:4318"

Sampler = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]


class TracingSettings(BaseSettings):
    """The ``OTEL_*`` variables the platform reads (all optional)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    otel_sdk_disabled: bool = Field(default=False, description="true: no tracing at all")
    otel_traces_exporter: Literal["otlp", "none"] | None = Field(
        default=None, description="otlp (OTLP over HTTP, protobuf) or none"
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="the collector's base URL; /v1/traces is appended"
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None, description="the full URL spans are posted to (overrides the base)"
    )
    otel_exporter_otlp_headers: SecretStr | None = Field(
        default=None, description="key=value pairs, comma-separated (may carry an API key)"
    )
    otel_exporter_otlp_traces_headers: SecretStr | None = Field(default=None)
    otel_exporter_otlp_protocol: Literal["http/protobuf"] | None = Field(
        default=None, description="only http/protobuf is shipped"
    )
    otel_exporter_otlp_traces_protocol: Literal["http/protobuf"] | None = Field(default=None)
    otel_exporter_otlp_timeout: int = Field(
        default=10_000, ge=1, le=300_000, description="milliseconds per export"
    )
    otel_service_name: str = Field(
        default="credit-commons", min_length=1, max_length=200, pattern=r"^[^\s]+$"
    )
    otel_traces_sampler: Sampler = Field(default="parentbased_always_on")
    otel_traces_sampler_arg: float = Field(
        default=1.0, ge=0.0, le=1.0, description="the ratio of the traceidratio samplers"
    )
    otel_bsp_schedule_delay: int = Field(
        default=5000, ge=1, le=600_000, description="milliseconds between batch exports"
    )
    otel_bsp_max_queue_size: int = Field(default=2048, ge=1, le=1_000_000)
    otel_bsp_max_export_batch_size: int = Field(default=512, ge=1, le=100_000)

    @field_validator("otel_exporter_otlp_endpoint", "otel_exporter_otlp_traces_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError("an OTLP endpoint is an http(s) URL")
        return value

    @field_validator("otel_traces_exporter", mode="before")
    @classmethod
    def _exporter(cls, value: object) -> object:
        # The specification allows a comma-separated list; one exporter is all we ship.
        if isinstance(value, str):
            value = value.strip().lower() or None
        if isinstance(value, str) and value not in {"otlp", "none"}:
            raise ValueError(f"{value!r}: only otlp (or none) is supported")
        return value

    @property
    def enabled(self) -> bool:
        """Whether spans are exported (see the module's docstring)."""
        if self.otel_sdk_disabled or self.otel_traces_exporter == "none":
            return False
        if self.otel_traces_exporter == "otlp":
            return True
        return bool(self.otel_exporter_otlp_endpoint or self.otel_exporter_otlp_traces_endpoint)

    @property
    def traces_endpoint(self) -> str:
        """Where spans are posted: the traces endpoint as given, else the base endpoint
        (or the default collector's) with ``/v1/traces`` appended."""
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        base = self.otel_exporter_otlp_endpoint or DEFAULT_OTLP_ENDPOINT
        return base.rstrip("/") + "/v1/traces"

    @field_validator("otel_exporter_otlp_headers", "otel_exporter_otlp_traces_headers")
    @classmethod
    def _header_pairs(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _pairs(value.get_secret_value())  # the message names no value: it may be a key
        return value

    def headers(self) -> dict[str, str]:
        """The export request's extra headers: the traces' own, else the common ones."""
        raw = self.otel_exporter_otlp_traces_headers or self.otel_exporter_otlp_headers
        return {} if raw is None else _pairs(raw.get_secret_value())


def _pairs(text: str) -> dict[str, str]:
    # OTLP Exporter Configuration, "Specifying headers via environment variables": W3C
    # Baggage's format, ``key1=value1,key2=value2``, values percent-decoded.
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError("OTLP headers are key=value pairs separated by commas")
        pairs[unquote(name.strip())] = unquote(value.strip())
    return pairs
