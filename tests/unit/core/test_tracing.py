"""Tracing's settings (the standard OTEL_* variables), the log lines' trace ids and the
worker's step names (core/tracing_settings.py, core/tracing.py; docs/operations.md
"Tracing").  The spans themselves are exported by a real server in
tests/e2e/test_tracing.py."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pydantic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from tests.commons_inprocess import commons

from credit_commons.core import logging as commons_logging
from credit_commons.core import tracing
from credit_commons.core.logging import JsonFormatter
from credit_commons.core.settings import Settings
from credit_commons.core.tracing import current_ids, span
from credit_commons.core.tracing_settings import TracingSettings
from credit_commons.jobs import consent_step, retention_step
from credit_commons.ledger.worker import step_name

ENDPOINT = "http://127.0.0.1:4318"


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def test_off_unless_configured() -> None:
    assert not TracingSettings().enabled
    assert TracingSettings(otel_exporter_otlp_endpoint=ENDPOINT).enabled
    assert TracingSettings(otel_exporter_otlp_traces_endpoint=ENDPOINT + "/x").enabled
    assert TracingSettings(otel_traces_exporter="otlp").enabled
    # "none" and OTEL_SDK_DISABLED win over an endpoint.
    assert not TracingSettings(
        otel_exporter_otlp_endpoint=ENDPOINT, otel_traces_exporter="none"
    ).enabled
    assert not TracingSettings(otel_exporter_otlp_endpoint=ENDPOINT, otel_sdk_disabled=True).enabled


def test_read_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT + "/")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "commons-eu-1")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret,tenant=a")
    tracing = Settings(data_dir=tmp_path, env="test").tracing
    assert tracing.enabled
    assert tracing.traces_endpoint == ENDPOINT + "/v1/traces"
    assert tracing.otel_service_name == "commons-eu-1"
    assert (tracing.otel_traces_sampler, tracing.otel_traces_sampler_arg) == (
        "parentbased_traceidratio",
        0.25,
    )
    assert tracing.headers() == {"api-key": "s=cret", "tenant": "a"}
    # The headers may hold a key: never shown.
    assert "s%3Dcret" not in repr(tracing)


def test_the_traces_endpoint_wins_over_the_base() -> None:
    tracing = TracingSettings(
        otel_exporter_otlp_endpoint=ENDPOINT,
        otel_exporter_otlp_traces_endpoint="https://collector.example/otlp/traces",
    )
    assert tracing.traces_endpoint == "https://collector.example/otlp/traces"
    assert TracingSettings(otel_traces_exporter="otlp").traces_endpoint == (
        "http://localhost:4318/v1/traces"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("otel_traces_exporter", "zipkin"),
        ("otel_traces_exporter", "console"),
        ("otel_exporter_otlp_protocol", "grpc"),
        ("otel_exporter_otlp_traces_protocol", "http/json"),
        ("otel_exporter_otlp_endpoint", "collector:4318"),
        ("otel_exporter_otlp_headers", "no-equals-sign"),
        ("otel_traces_sampler", "sometimes"),
        ("otel_traces_sampler_arg", "1.5"),
        ("otel_service_name", "two words"),
        ("otel_bsp_schedule_delay", "0"),
    ],
)
def test_what_cannot_be_honoured_is_refused(name: str, value: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        TracingSettings(**{name: value})
    assert caught.value.errors()[0]["loc"] == (name,)


def test_the_cli_names_the_otel_variable(tmp_path: Path) -> None:
    env = {
        "COMMONS_DATA_DIR": str(tmp_path / "var"),
        "OTEL_TRACES_EXPORTER": "jaeger",
        "OTEL_EXPORTER_OTLP_HEADERS": "broken-secret-value",
    }
    done = commons(["version"], env)
    assert done.returncode != 0
    assert "OTEL_TRACES_EXPORTER" in done.stderr
    assert "OTEL_EXPORTER_OTLP_HEADERS" in done.stderr
    assert "COMMONS_OTEL" not in done.stderr
    assert "broken-secret-value" not in done.stderr


def _line(formatter: JsonFormatter) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    parsed: dict[str, object] = json.loads(formatter.format(record))
    return parsed


def test_log_lines_carry_the_current_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    # A provider of this test's own (the process's global one stays the no-op proxy),
    # taken as the one started.
    provider = TracerProvider()
    formatter = JsonFormatter()
    with span(provider.get_tracer("test"), "before"):
        assert current_ids() is None  # no tracing started: never looked up
    monkeypatch.setattr(tracing, "_installed", [provider])
    monkeypatch.setattr(commons_logging, "_trace_ids", [current_ids])  # as start_tracing does
    assert current_ids() is None
    assert "trace_id" not in _line(formatter)
    with span(provider.get_tracer("test"), "outer") as current:
        context = current.get_span_context()
        line = _line(formatter)
        assert line["trace_id"] == format(context.trace_id, "032x")
        assert line["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in _line(formatter)
    provider.shutdown()


def test_a_failed_span_records_the_type_but_not_the_message() -> None:
    provider = TracerProvider()
    with (
        pytest.raises(ValueError, match="phone"),
        span(provider.get_tracer("test"), "failing") as current,
    ):
        raise ValueError("phone +919812345678 refused")
    assert current.attributes == {"error.type": "ValueError"}  # type: ignore[attr-defined]
    assert current.status.description is None  # type: ignore[attr-defined]
    assert current.events == ()  # type: ignore[attr-defined]
    provider.shutdown()


def plain_step(_rt: object, _size: int) -> dict[str, object]:
    return {}


def test_step_names() -> None:
    # A step made by a function is named after it; a plain function after itself.
    assert step_name(consent_step()) == "consent_step"
    assert step_name(retention_step()) == "retention_step"
    assert step_name(plain_step) == "plain_step"  # type: ignore[arg-type]
