"""The followed platform over HTTP: its log key, entry bundles, blobs, status lists and
issuer metadata, and — with the node's service token — the member documents it scores, its
internal log state (how far the node lags behind), the signed messages of a leaf it lacks
and the rotation of the node's own service key.  Through
:class:`~credit_commons.core.net.OutboundFetcher` (no redirects,
a size cap, a timeout); loopback, private addresses and plain http are allowed because the
operator names this one URL (``--follow``), not a credential presented to the node."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ValidationError
from credit_commons.core.net import FetchFailed, OutboundFetcher
from credit_commons.formats.tlog_tiles import TILE_WIDTH

__all__ = ["Platform", "parse_bundle", "tile_path"]

_STATUS_ACCEPT = "application/statuslist+jwt, application/vc+jwt;q=0.5"
_MESSAGE_PARTS = ("stream", "subject", "body")


def tile_path(index: int, width: int | None = None) -> str:
    """The tlog-tiles path of tile ``index`` (``x001/x234/067``), ``.p/W`` when partial."""
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    path = "/".join([*(f"x{p}" for p in parts[:-1]), parts[-1]])
    return path if width is None else f"{path}.p/{width}"


def parse_bundle(data: bytes, count: int) -> list[bytes]:
    """The entries of an entry bundle (each a big-endian uint16 length and its bytes);
    raises :class:`ValidationError` unless it holds exactly ``count``."""
    entries, offset = [], 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise ValidationError("a truncated entry bundle")
        (length,) = struct.unpack_from(">H", data, offset)
        end = offset + 2 + length
        if end > len(data):
            raise ValidationError("a truncated entry bundle")
        entries.append(data[offset + 2 : end])
        offset = end
    if len(entries) != count:
        raise ValidationError(f"an entry bundle of {len(entries)} entries, not {count}")
    return entries


class Platform:
    """One followed platform at ``base`` (``http[s]://host:port``)."""

    def __init__(
        self,
        base: str,
        *,
        timeout: float = 5.0,
        max_bytes: int = 2 * 1024 * 1024,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError("--follow must be an http(s) URL", extra={"field": "follow"})
        self.base = base.rstrip("/")
        self._fetcher = OutboundFetcher(
            transport=transport,
            allow_http=parts.scheme == "http",
            allow_loopback=True,
            allow_private=True,
            timeout=timeout,
            max_bytes=max_bytes,
        )

    def close(self) -> None:
        self._fetcher.close()

    def _json(self, path: str, token: Callable[[], str] | None = None) -> Any:
        """The JSON at ``path``, with a service token from ``token()`` when given."""
        headers = None if token is None else {"Authorization": f"Bearer {token()}"}
        try:
            body, _ = self._fetcher.get_bytes(
                self.base + path, accept="application/json", headers=headers
            )
        except FetchFailed as e:
            if e.remote_status != 503:
                raise
            # Up but not serving: its /readyz names why (a database not migrated yet:
            # service.not_migrated).  The node is started again once the platform is ready.
            not_ready = FetchFailed(
                f"the platform at {self.base} is not ready: {path} answered HTTP 503",
                hint=f"GET {self.base}/readyz says why (service.not_migrated: run "
                "`commons db upgrade` on the platform)",
            )
            not_ready.remote_status = e.remote_status
            raise not_ready from e
        try:
            return json.loads(body)
        except ValueError as e:
            raise ValidationError(f"{path} did not answer JSON") from e

    def log_key(self) -> tuple[str, str]:
        """The log's (origin, vkey) as the platform publishes them."""
        found = self._json("/v1/log/key")
        if not isinstance(found, dict):
            raise ValidationError("/v1/log/key is not an object")
        origin, vkey = found.get("origin"), found.get("vkey")
        if not isinstance(origin, str) or not isinstance(vkey, str):
            raise ValidationError("/v1/log/key lacks origin or vkey")
        return origin, vkey

    def issuer_metadata(self) -> JsonObject:
        """The platform's JWT VC Issuer Metadata (``issuer`` and ``jwks``)."""
        found = self._json("/.well-known/jwt-vc-issuer")
        if not isinstance(found, dict):
            raise ValidationError("the issuer metadata is not an object")
        return found

    def entries(self, tile: int, count: int) -> list[bytes]:
        """The entries of tile ``tile``: all 256, or the first ``count`` of a partial one."""
        width = None if count == TILE_WIDTH else count
        body, _ = self._fetcher.get_bytes(
            f"{self.base}/tile/entries/{tile_path(tile, width)}",
            accept="application/octet-stream",
        )
        return parse_bundle(body, count)

    def blob(self, cid: str) -> bytes:
        """The bytes the platform serves under ``cid`` (the caller checks the CID)."""
        body, _ = self._fetcher.get_bytes(f"{self.base}/v1/blobs/{quote(cid, safe='')}")
        return body

    def status_list(self, list_id: str) -> tuple[bytes, str]:
        """A status list token and its media type."""
        body, headers = self._fetcher.get_bytes(
            f"{self.base}/status-lists/{quote(list_id, safe='')}", accept=_STATUS_ACCEPT
        )
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        return body, media_type

    def rule_set(self, rule_set_id: str, version: int) -> JsonObject:
        """A rule set version as the platform serves it (with its signed ``token``)."""
        found = self._json(f"/v1/rules/{quote(rule_set_id, safe='')}?version={version}")
        if not isinstance(found, dict):
            raise ValidationError("the rule set is not an object")
        return found

    def rule_set_keys(self) -> JsonObject:
        """The platform's rule-set registry keys (a JWK Set)."""
        found = self._json("/v1/rules/jwks")
        if not isinstance(found, dict):
            raise ValidationError("the registry keys are not an object")
        return found

    def member(self, event_id: str, token: Callable[[], str]) -> JsonObject:
        """The member document of a ``reputation.member`` spine event (the caller checks
        it against the event), with a service token (scope ``members:read``) from
        ``token()``.  Raises ``FetchFailed`` (``remote answered HTTP 404`` once the DID is
        excluded, 401 when the token is refused)."""
        found = self._json(f"/v1/reputation/members/{quote(event_id, safe='')}", token)
        if not isinstance(found, dict):
            raise ValidationError("the member document is not an object")
        return found

    def leaf_messages(self, index: int, token: Callable[[], str]) -> list[tuple[str, str, bytes]]:
        """``GET /v1/internal/log/messages/{index}`` with a service token (scope
        ``log:messages``): the signed messages of leaf ``index`` as (stream, subject, body),
        unchecked (the caller verifies them as any message).  Raises ``FetchFailed``."""
        found = self._json(f"/v1/internal/log/messages/{int(index)}", token)
        listed = found.get("messages") if isinstance(found, dict) else None
        if not isinstance(listed, list):
            raise ValidationError("the leaf's messages are not a list")
        out = []
        for item in listed:
            parts = [item.get(k) if isinstance(item, dict) else None for k in _MESSAGE_PARTS]
            if not all(isinstance(p, str) for p in parts):
                raise ValidationError("a leaf message lacks its stream, subject or body")
            stream, subject, body = (str(p) for p in parts)
            out.append((stream, subject, body.encode("ascii", "replace")))
        return out

    def audience(self) -> str:
        """The platform's own name for itself, which the node's service tokens must carry
        as ``aud``: the ``issuer`` of its authorization server metadata (RFC 8414)."""
        found = self._json("/.well-known/oauth-authorization-server")
        issuer = found.get("issuer") if isinstance(found, dict) else None
        if not isinstance(issuer, str) or not issuer:
            raise ValidationError("the platform's metadata names no issuer")
        return issuer.rstrip("/")

    def log_state(self, token: Callable[[], str]) -> JsonObject:
        """``GET /v1/internal/log/state`` with a service token (scope ``log:state``) from
        ``token()``: the platform's log size, root and newest checkpoint.  Raises
        ``FetchFailed`` (``remote answered HTTP 401`` when the token is refused)."""
        found = self._json("/v1/internal/log/state", token)
        if not isinstance(found, dict) or not isinstance(found.get("size"), int):
            raise ValidationError("the log state names no size")
        return found

    def rotate_service_key(self, token: str, proof: str) -> int:
        """``POST /v1/internal/service-keys/rotate`` (scope ``keys:rotate``): register the
        node's next key, ``proof`` signed by it; the HTTP status (200: registered)."""
        return self._fetcher.post(
            f"{self.base}/v1/internal/service-keys/rotate",
            json.dumps({"proof": proof}).encode(),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
