"""HTTP to the platform: one base URL the lender chose, JSON in and out, problems as
typed errors.

The base URL must be ``https`` — or ``http`` on a loopback address, a development platform
on the lender's own machine — with no credentials, query or fragment.  Redirects are not
followed and proxies from the environment are not used.  Verification fetches (issuer
metadata, status lists) go through :class:`PlatformFetcher`: the SSRF-guarded fetcher of
``core/net.py``, which lets through the platform's own origin (the lender chose it) and
applies its usual rules (https, public addresses only) to every other URL a credential
names.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from credit_commons.client.errors import (
    ApiUnavailable,
    KeyFileInvalid,
    KeyFileUnprotected,
    PlatformUrlInvalid,
    api_error,
)
from credit_commons.core.encoding import JsonObject
from credit_commons.core.files import path_error
from credit_commons.core.net import OutboundFetcher

__all__ = ["PlatformFetcher", "PlatformHttp", "client_tls", "origin_of", "platform_url"]

_LOOPBACK_NAMES = frozenset({"localhost"})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def platform_url(url: str) -> str:
    """``url`` without a trailing slash, if it is an acceptable platform URL.

    Raises :class:`PlatformUrlInvalid` otherwise.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        raise PlatformUrlInvalid("the platform URL is malformed") from e
    if not host or parts.username or parts.password or parts.query or parts.fragment:
        raise PlatformUrlInvalid(
            "the platform URL must be scheme://host[:port][/path], without credentials, "
            "query or fragment"
        )
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(host)):
        raise PlatformUrlInvalid(
            "the platform URL must be https (http only on a loopback address)",
            hint="use the platform's COMMONS_PUBLIC_URL",
        )
    return url.rstrip("/")


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, the port defaulted (RFC 6454 §4)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


class PlatformHttp:
    """JSON requests to the platform at ``base_url``; a non-2xx answer raises its
    :class:`~credit_commons.client.errors.ApiError`."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 20.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = platform_url(base_url)
        self._client = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            # A caller's TLS context: its CA and, for mutual TLS, its client certificate.
            verify=tls if tls is not None else True,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        """Release the connections."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> object:
        """The JSON body of a 2xx answer to ``method path`` (not yet checked: see
        :meth:`request_object` and :meth:`request_list`).

        Raises the :class:`ApiError` for the answer's status, and :class:`ApiUnavailable`
        when the platform cannot be reached or answers something other than JSON.
        """
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._client.request(
                method, path, json=json, data=data, params=params, headers=headers
            )
        except httpx.HTTPError as e:
            raise ApiUnavailable(
                503,
                {"code": "lender.platform_unreachable", "detail": "the platform is unreachable"},
            ) from e
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and body is not None:
            return body
        if not isinstance(body, dict):
            body = {"detail": f"HTTP {response.status_code} without a JSON body"}
        retry = response.headers.get("Retry-After")
        raise api_error(
            response.status_code if not response.is_success else 502,
            body,
            int(retry) if retry and retry.isascii() and retry.isdigit() else None,
        )

    def request_object(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        """:meth:`request` for an answer that must be a JSON object (the platform's JSON,
        unvalidated); raises :class:`ApiUnavailable` (502) for anything else."""
        found = self.request(method, path, **kwargs)
        if not isinstance(found, dict):
            raise _unexpected("a JSON object")
        return found

    def request_list(self, method: str, path: str, **kwargs: Any) -> list[JsonObject]:
        """:meth:`request` for an answer that must be a JSON array of objects; raises
        :class:`ApiUnavailable` (502) for anything else."""
        found = self.request(method, path, **kwargs)
        if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
            raise _unexpected("a JSON array of objects")
        return found


def _unexpected(wanted: str) -> ApiUnavailable:
    return ApiUnavailable(
        502,
        {
            "code": "lender.platform_answer_invalid",
            "detail": f"the platform did not answer {wanted}",
        },
    )


class PlatformFetcher(OutboundFetcher):
    """The SSRF-guarded fetcher, except for the platform's own origin."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._platform = origin_of(platform_url(base_url))

    def check_url(self, url: str) -> None:
        """Let the platform's origin through; apply the guard to any other URL."""
        try:
            same = origin_of(url) == self._platform
        except ValueError:
            same = False
        if not same:
            super().check_url(url)


def client_tls(
    cert: Path | None = None, key: Path | None = None, ca: Path | None = None
) -> ssl.SSLContext:
    """A TLS context for reaching the platform: the system's CAs (or only ``ca``, a PEM
    file) and, with ``cert`` and ``key`` (PEM files), the lender's client certificate for
    mutual TLS (certificate-bound tokens, RFC 8705; docs/lenders.md).

    Raises :class:`KeyFileUnprotected` for a ``key`` others may read (``chmod 600``),
    :class:`KeyFileInvalid` for a certificate and key that do not load or do not match (or
    one given without the other), and a ``file.*`` error for a file that cannot be read.
    """
    if (cert is None) != (key is None):
        raise KeyFileInvalid("a client certificate needs its key, and a key its certificate")
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
        if cert is None or key is None:
            return context
        if stat.S_IMODE(os.stat(key).st_mode) & 0o077:
            raise KeyFileUnprotected(f"{key} may be read by other users", hint=f"chmod 600 {key}")
        context.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        raise KeyFileInvalid("the client certificate or its key cannot be loaded") from e
    except OSError as e:
        raise path_error(e, "read") from e
    return context
