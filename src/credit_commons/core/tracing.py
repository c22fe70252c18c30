"""OpenTelemetry traces, optional by configuration (docs/operations.md "Tracing").

The platform's code makes spans through the OpenTelemetry *API* only
(``opentelemetry.trace.get_tracer``): until a process installs a provider, every tracer is
the API's no-op one, so tracing that is not configured costs a no-op call, and no
provider, processor or exporter is ever built (the exporter is not even imported).
:func:`start_tracing` installs the SDK's provider with a batching OTLP/HTTP exporter when
:class:`~credit_commons.core.tracing_settings.TracingSettings` say so; the processes that
serve or work (``commons serve``, its worker processes, ``commons worker``) call it once
at start.

What a span may carry is narrow on purpose: names are route templates, statement kinds and
step names; attributes are methods, statuses, route templates, statement text without its
parameters and host names of outbound calls — never a raw path, a query string, a header,
a body, an exception's message or an address of a client.  :func:`span` is how the
platform's own code opens one: an exception marks the span failed with its type only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from credit_commons.core.logging import attach_trace_ids

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    from credit_commons.core.tracing_settings import TracingSettings

__all__ = [
    "Tracing",
    "current_ids",
    "fail",
    "flush_tracing",
    "span",
    "start_tracing",
    "tracer",
]


class Tracing(Protocol):
    """The installed provider, as far as its owner needs it."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued."""
        ...

    def shutdown(self) -> None:
        """Export what is queued and stop exporting."""
        ...


_lock = threading.Lock()
# The provider this process installed (the API accepts one per process).
_installed: list[Tracing] = []


def tracer(name: str) -> trace.Tracer:
    """The tracer of one of the platform's modules (the API's proxy: a no-op until
    :func:`start_tracing` installs a provider)."""
    return trace.get_tracer(name)


def start_tracing(config: TracingSettings, *, version: str) -> Tracing | None:
    """Install the SDK's tracer provider for this process, exporting to the OTLP/HTTP
    endpoint of ``config``; None (and nothing installed or imported) when tracing is not
    enabled.  Idempotent: a second call returns the provider already installed (the API
    allows one per process).  The provider flushes at interpreter exit.

    Raises :class:`ValueError` for malformed OTLP headers (already refused when the
    settings were read)."""
    if not config.enabled:
        return None
    with _lock:
        if _installed:
            return _installed[0]
        provider = _build_provider(config, version=version)
        trace.set_tracer_provider(provider)
        _installed.append(provider)
    # OpenTelemetry's context runtime loads (importing a module) on its first use: make it
    # now rather than in a log formatter, under the logging lock.
    current_ids()
    attach_trace_ids(current_ids)
    return provider


def flush_tracing(timeout_millis: int = 10_000) -> None:
    """Export what this process's provider has queued (nothing when none is installed).

    Called as a server or worker stops: uvicorn ends a process stopped by SIGTERM by
    raising the signal again once it has shut down, so exit handlers (where the SDK would
    flush) never run."""
    with _lock:
        installed = list(_installed)
    for provider in installed:
        provider.force_flush(timeout_millis)


def _build_provider(config: TracingSettings, *, version: str) -> SdkTracerProvider:
    # Imported here: a process that does not trace never loads the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,  # deferred: only a traced process needs it
    )
    from opentelemetry.sdk.resources import Resource  # deferred: as above  # noqa: PLC0415
    from opentelemetry.sdk.trace import (  # noqa: PLC0415
        TracerProvider,  # deferred: as above
        sampling,
    )
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,  # deferred: as above
    )

    ratio = config.otel_traces_sampler_arg
    samplers: dict[str, sampling.Sampler] = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBased(sampling.TraceIdRatioBased(ratio)),
    }
    # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES; the service's own name and
    # version win over it.
    resource = Resource.create(
        {"service.name": config.otel_service_name, "service.version": version}
    )
    provider = TracerProvider(
        resource=resource, sampler=samplers[config.otel_traces_sampler], shutdown_on_exit=True
    )
    exporter = OTLPSpanExporter(
        endpoint=config.traces_endpoint,
        headers=config.headers(),
        timeout=config.otel_exporter_otlp_timeout / 1000,
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=config.otel_bsp_max_queue_size,
            schedule_delay_millis=config.otel_bsp_schedule_delay,
            max_export_batch_size=min(
                config.otel_bsp_max_export_batch_size, config.otel_bsp_max_queue_size
            ),
        )
    )
    return provider


def current_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id (lower-case hex, as W3C Trace Context
    writes them), or None outside a recorded span — and always None in a process that has
    not started tracing, which then never touches OpenTelemetry's context at all (every
    log line asks: untraced, it costs one list check)."""
    if not _installed:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def fail(current: Span, error: BaseException) -> None:
    """Mark ``current`` failed by ``error``'s type alone: an exception's message and
    traceback may quote input (a body, a token), so neither is recorded."""
    current.set_attribute("error.type", type(error).__name__)
    current.set_status(Status(StatusCode.ERROR))


@contextmanager
def span(
    source: trace.Tracer,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
    context: Context | None = None,
) -> Iterator[Span]:
    """A span of ``source`` current for the block (a child of ``context``'s span when given,
    e.g. a caller's extracted ``traceparent``, else of the current one); an exception
    leaving the block marks it failed with :func:`fail` and goes on."""
    with source.start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as e:
            fail(current, e)
            raise
