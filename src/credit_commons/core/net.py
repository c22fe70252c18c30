"""Outbound HTTP with an SSRF guard.

Every fetch the platform makes on behalf of input it received (a ``did:web`` document, a
status list, a credential offer) goes through :class:`OutboundFetcher`, which

1. accepts only ``https`` URLs (``http`` only with ``COMMONS_INSECURE_ALLOW_HTTP``),
2. resolves the host and refuses loopback, private, link-local, multicast, reserved and
   other non-global addresses (allowed only with ``COMMONS_INSECURE_ALLOW_PRIVATE_NETWORK``),
   — except, when built with ``allow_loopback=True`` (the wallet in development: a
   development platform's public URL is ``http`` on loopback), a host whose every address
   is a loopback address, over ``http`` or ``https``; each refusal names the setting that
   would allow it,
3. never follows redirects (a redirect could lead past step 2), and
4. caps the response size and the time spent.  The cap is on the decoded body, and it holds
   while decoding: a ``gzip`` or ``deflate`` body (the only content codings asked for) is
   inflated here, never more than the cap at a time (``zlib``'s ``max_length``), rather
   than by httpx, which inflates each network chunk whole (one 64 KiB chunk of a gzip bomb
   is 64 MiB).  A POST's answer body is never read.

TLS certificates are always verified, against the public roots (``certifi``) and, when the
fetcher is given a ``ca_file``, the CA certificates in it too (a private or test CA); the
environment (``SSL_CERT_FILE``, proxies) is never read.  :meth:`OutboundFetcher.http_client`
hands the same rules to a caller that builds its own requests.

The HTTP transport and the name resolver are injected, so tests use ``httpx.MockTransport``
and a fake resolver instead of the network.  Known limit: the address is checked before the
connection is made, so a host whose DNS answer changes in between (DNS rebinding) is not
caught here; production deployments should also route egress through a filtering proxy.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry.trace import Span, SpanKind

from credit_commons.core.encoding import json_decode
from credit_commons.core.errors import ConfigurationError, UnavailableError, ValidationError
from credit_commons.core.tracing import span, tracer

__all__ = ["ACCEPT_ENCODING", "FetchFailed", "OutboundFetcher", "UnsafeUrl", "system_resolver"]

Resolver = Callable[[str], Sequence[str]]
_tracer = tracer("credit_commons.net")


def _outbound_span(method: str, url: str) -> AbstractContextManager[Span]:
    # A client span naming the host called, never the path or query (a webhook's path
    # may carry a token), as OpenTelemetry's HTTP client spans ("{method}").
    parts = urlsplit(url)
    return span(
        _tracer,
        method,
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": method,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        },
    )


class UnsafeUrl(ValidationError):
    """An outbound URL refused by the SSRF guard."""

    code = "net.url_refused"
    title = "URL refused"


class FetchFailed(UnavailableError):
    """The remote resource could not be fetched or was not acceptable."""

    code = "net.fetch_failed"
    title = "Fetch failed"
    status = 502
    remote_status: int | None = None
    """The HTTP status the remote answered instead of 200 (None: no answer, or a bad one)."""

    @classmethod
    def answered(cls, status: int) -> FetchFailed:
        """The remote answered HTTP ``status``, not 200."""
        error = cls(f"remote answered HTTP {status}")
        error.remote_status = status
        return error


def system_resolver(host: str) -> list[str]:
    """All addresses ``host`` resolves to, through the system resolver."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        raise FetchFailed("host name does not resolve") from e
    except UnicodeError as e:
        # The name has no IDNA form (an empty or over-long label, a lone surrogate): no
        # query was sent, and no such host can exist.
        raise UnsafeUrl("host name is not a valid domain name") from e
    return sorted({str(info[4][0]) for info in infos})


_HTTP_HINT = "COMMONS_INSECURE_ALLOW_HTTP=true allows http (development only)"
_PRIVATE_HINT = "COMMONS_INSECURE_ALLOW_PRIVATE_NETWORK=true allows it (development only)"


# RFC 9110 §8.4.1: the content codings asked for (Accept-Encoding) and read here; zlib's
# wbits 32 + 15 reads a zlib ("deflate", RFC 1950) or gzip (RFC 1952) stream by its header.
ACCEPT_ENCODING = "gzip, deflate"
_DECODED = frozenset({"gzip", "x-gzip", "deflate"})
_ZLIB_OR_GZIP = 32 + zlib.MAX_WBITS


def _decoded(raw: Iterator[bytes], coding: str, limit: int) -> Iterator[bytes]:
    # The body's bytes in content coding ``coding``, decoded, at most ``limit + 1`` of them
    # in memory at once (one more than the cap, so the caller sees it was passed).
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        yield from raw
        return
    if coding not in _DECODED:
        raise FetchFailed(f"remote used a content coding not asked for: {coding[:40]}")
    inflate = zlib.decompressobj(_ZLIB_OR_GZIP)
    produced = 0
    try:
        for chunk in raw:
            data = chunk
            while data:
                out = inflate.decompress(data, limit + 1 - produced)
                produced += len(out)
                yield out
                if produced > limit:
                    return
                if inflate.eof:
                    if inflate.unused_data or any(more for more in raw):
                        raise FetchFailed("remote sent data after the compressed body")
                    return
                data = inflate.unconsumed_tail
    except zlib.error as e:
        raise FetchFailed("remote sent a malformed compressed body") from e
    if not inflate.eof:
        raise FetchFailed("remote sent a truncated compressed body")


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _tls_trust(ca_file: Path | None) -> ssl.SSLContext | bool:
    # The public roots (httpx's default, True), plus the CA certificates of ca_file.
    # Verification stays on either way: there is no setting that turns it off.
    if ca_file is None:
        return True
    context = httpx.create_ssl_context(trust_env=False)
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as e:
        raise ConfigurationError(
            f"the CA certificates in {ca_file} cannot be read",
            hint="a PEM file of one or more CA certificates",
        ) from e
    return context


class OutboundFetcher:
    """Fetches small JSON or text resources from untrusted URLs safely.

    Raises :class:`ConfigurationError` when ``ca_file`` (extra CA certificates, PEM) cannot
    be read."""

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver = system_resolver,
        allow_private: bool = False,
        allow_http: bool = False,
        allow_loopback: bool = False,
        timeout: float = 5.0,
        max_bytes: int = 512 * 1024,
        ca_file: Path | None = None,
    ) -> None:
        self._verify = _tls_trust(ca_file)
        self._client = httpx.Client(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            verify=self._verify,
        )
        self._resolver = resolver
        self._allow_private = allow_private
        self._allow_http = allow_http
        self._allow_loopback = allow_loopback
        self._max_bytes = max_bytes

    def close(self) -> None:
        """Release the underlying connections."""
        self._client.close()

    def http_client(
        self, *, transport: httpx.BaseTransport | None = None, timeout: float = 10.0
    ) -> httpx.Client:
        """An HTTP client for requests the caller builds itself (forms, streamed answers),
        with this fetcher's rules for what it does not check per request: no redirects
        followed, the environment ignored, certificates verified against the same CAs.
        The caller checks each URL with :meth:`check_url` first, and closes the client."""
        return httpx.Client(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            verify=self._verify,
        )

    def check_url(self, url: str) -> None:
        """Apply the guard's rules to ``url``; raises :class:`UnsafeUrl` (for any text that
        is not an acceptable URL), or :class:`FetchFailed` when its host does not resolve."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except (ValueError, TypeError) as e:  # "Invalid IPv6 URL", a non-str
            raise UnsafeUrl("malformed URL") from e
        if parts.scheme not in {"https", "http"}:
            raise UnsafeUrl("only https URLs may be fetched")
        plain = parts.scheme == "http" and not self._allow_http
        if plain and not self._allow_loopback:
            raise UnsafeUrl("only https URLs may be fetched", hint=_HTTP_HINT)
        if parts.username or parts.password:
            raise UnsafeUrl("URLs with credentials are refused")
        if not host:
            raise UnsafeUrl("URL has no host")
        try:
            addresses: Sequence[str] = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = self._resolver(host)
        if not addresses:
            raise UnsafeUrl("host name does not resolve")
        if self._allow_loopback and all(_loopback(a) for a in addresses):
            return
        if plain:
            raise UnsafeUrl(
                "only https URLs may be fetched (and http on loopback in development)",
                hint=_HTTP_HINT,
            )
        if self._allow_private:
            return
        for address in addresses:
            ip = ipaddress.ip_address(address)
            mapped = getattr(ip, "ipv4_mapped", None)
            blocked = not ip.is_global or ip.is_multicast
            if blocked or (mapped is not None and not mapped.is_global):
                raise UnsafeUrl("URL resolves to a non-public address", hint=_PRIVATE_HINT)

    def get_bytes(
        self, url: str, *, accept: str = "*/*", headers: Mapping[str, str] | None = None
    ) -> tuple[bytes, httpx.Headers]:
        """GET ``url`` after the guard's checks (with ``headers`` besides ours, e.g. a
        credential); the body and the response headers.

        Raises :class:`UnsafeUrl` or :class:`FetchFailed` (non-200, redirect, too large,
        network error).
        """
        self.check_url(url)
        headers = {**(headers or {}), "Accept": accept, "Accept-Encoding": ACCEPT_ENCODING}
        with _outbound_span("GET", url) as current:
            return self._get(url, headers, current)

    def _get(self, url: str, headers: dict[str, str], current: Span) -> tuple[bytes, httpx.Headers]:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                current.set_attribute("http.response.status_code", response.status_code)
                if response.status_code != 200:
                    raise FetchFailed.answered(response.status_code)
                if response.is_stream_consumed:
                    # Only a response built in memory (a test's transport) arrives already
                    # read, and so already decoded; what the network sends is a stream.
                    raw, coding = iter([response.content]), ""
                else:
                    raw = self._capped(response.iter_raw(), "remote resource is too large")
                    coding = response.headers.get("content-encoding", "")
                chunks: list[bytes] = []
                size = 0
                for chunk in _decoded(raw, coding, self._max_bytes):
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise FetchFailed("remote resource is too large")
                    chunks.append(chunk)
                return b"".join(chunks), response.headers
        except httpx.HTTPError as e:
            raise FetchFailed("remote resource could not be fetched") from e

    def _capped(self, raw: Iterator[bytes], message: str) -> Iterator[bytes]:
        # The body as received, refused past the cap (a compressed body is no larger than
        # the cap either).
        size = 0
        for chunk in raw:
            size += len(chunk)
            if size > self._max_bytes:
                raise FetchFailed(message)
            yield chunk

    def post(
        self,
        url: str,
        body: bytes,
        *,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """POST ``body`` to ``url`` after the guard's checks (with ``headers`` besides ours);
        the HTTP status (redirects are not followed).  Raises :class:`UnsafeUrl` or
        :class:`FetchFailed` (network error).
        """
        self.check_url(url)
        headers = {
            **(headers or {}),
            "Content-Type": content_type,
            "Accept-Encoding": "identity",
        }
        with _outbound_span("POST", url) as current:
            try:
                # Streamed and closed unread: only the status is wanted, so the answer's
                # body, of whatever size or coding, is never read.
                with self._client.stream("POST", url, content=body, headers=headers) as answer:
                    current.set_attribute("http.response.status_code", answer.status_code)
                    return answer.status_code
            except httpx.HTTPError as e:
                raise FetchFailed("remote endpoint could not be reached") from e

    def get_json(self, url: str) -> Any:
        """GET ``url`` and parse it as JSON; raises like :meth:`get_bytes`."""
        body, _ = self.get_bytes(url, accept="application/json")
        try:
            return json_decode(body)
        except ValidationError as e:
            raise FetchFailed("remote resource is not JSON") from e
