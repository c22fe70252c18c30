"""The server span RequestContextMiddleware makes when tracing is on (gateway/middleware.py;
docs/operations.md "Tracing"): named by route template, continuing an incoming
``traceparent``, and failed by an exception's type alone — never its message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry
from starlette.types import Message, Receive, Scope, Send

from credit_commons.gateway import middleware
from credit_commons.gateway.middleware import RequestContextMiddleware, make_metrics

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
PHONE = "+919812345678"


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    # A provider of this test's own (the process's global one stays the no-op proxy),
    # its tracer taken as the middleware's.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(middleware, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def _routed(template: str, *, fails: bool) -> object:
    async def app(scope: Scope, _receive: Receive, send: Send) -> None:
        scope["route"] = SimpleNamespace(path=template)  # as the router records its match
        if fails:
            raise RuntimeError(f"refused {PHONE}")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def _call(app: object, headers: list[tuple[bytes, bytes]], *, traced: bool = True) -> None:
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "path": f"/v1/things/{PHONE}",
        "query_string": b"code=1234",
        "headers": headers,
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    wrapped = RequestContextMiddleware(
        app,  # type: ignore[arg-type]
        make_metrics(CollectorRegistry()),
        traced=traced,
    )
    asyncio.run(wrapped(scope, receive, send))


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, spans
    return spans[0]


def test_a_request_continues_the_callers_trace(exported: InMemorySpanExporter) -> None:
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01".encode()
    _call(
        _routed("/v1/things/{id}", fails=False),
        [(b"traceparent", traceparent), (b"x-request-id", b"req-from-the-proxy")],
    )
    current = _only(exported)
    assert current.name == "GET /v1/things/{id}"
    assert current.kind == SpanKind.SERVER
    assert dict(current.attributes or {}) == {
        "http.request.method": "GET",
        "url.scheme": "https",
        "commons.request_id": "req-from-the-proxy",
        "http.route": "/v1/things/{id}",
        "http.response.status_code": 204,
    }
    assert current.status.status_code == StatusCode.UNSET
    assert current.parent is not None
    assert format(current.context.trace_id, "032x") == CALLER_TRACE
    assert format(current.parent.span_id, "016x") == CALLER_SPAN


def test_a_failed_request_records_the_type_but_not_the_message(
    exported: InMemorySpanExporter,
) -> None:
    with pytest.raises(RuntimeError, match="refused"):
        _call(_routed("/v1/things/{id}", fails=True), [])
    current = _only(exported)
    assert current.name == "GET /v1/things/{id}"
    assert current.parent is None
    attributes = dict(current.attributes or {})
    assert attributes["error.type"] == "RuntimeError"
    assert attributes["http.response.status_code"] == 500
    assert current.status.status_code == StatusCode.ERROR
    assert current.status.description is None
    assert current.events == ()
    assert not any(PHONE in str(value) for value in attributes.values())


def test_no_span_when_tracing_is_off(exported: InMemorySpanExporter) -> None:
    _call(_routed("/v1/things/{id}", fails=False), [], traced=False)
    with pytest.raises(RuntimeError, match="refused"):
        _call(_routed("/v1/things/{id}", fails=True), [], traced=False)
    assert exported.get_finished_spans() == ()
