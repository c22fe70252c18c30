"""Today's checkpoint and the consistency proof from a kept size, read from the local log or
fetched from a server, for :func:`~credit_commons.ledger.extension.verify_extension`."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx

from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64_decode
from credit_commons.core.errors import (
    CommonsError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from credit_commons.ledger import rfc6962
from credit_commons.ledger import service as log_service
from credit_commons.ledger.errors import LogError
from credit_commons.ledger.extension import parse_checkpoint_note
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.tiles import TileHashSource
from credit_commons.runtime import Runtime

__all__ = ["local_extension_inputs", "remote_extension_inputs"]

_MAX_BODY = 1 << 20  # a checkpoint with cosignatures, or a proof of at most 128 hashes
_TIMEOUT = 10.0


def local_extension_inputs(
    rt: Runtime, old_size: int, log_key: str | None
) -> tuple[str, str, list[bytes]]:
    """The verifier key (``log_key``, or the log's recorded one), the latest checkpoint
    with its cosignatures, and the consistency proof from ``old_size`` to its size (empty
    when there is none to give: equal sizes, a smaller tree, or ``old_size`` 0).

    Raises :class:`NotFoundError` when the log has no checkpoint yet.
    """
    vkey = log_key or log_identity(rt).vkey
    with transaction(rt.read_sessions) as session:
        row = log_service.latest_checkpoint(session)
        if row is None:
            raise NotFoundError(
                "the log has no checkpoint yet", hint="run `commons log checkpoint --publish`"
            )
        note = log_service.checkpoint_with_cosignatures(session, row)
        proof: list[bytes] = []
        if 0 < old_size < row.size:
            source = TileHashSource(session, rt.tile_cache)
            proof = list(rfc6962.consistency_proof(old_size, row.size, source))
    return vkey, note, proof


def _get(client: httpx.Client, url: str) -> bytes:
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise UnavailableError(f"{url} answered {response.status_code}")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _MAX_BODY:
                    raise UnavailableError(f"{url} answered more than {_MAX_BODY} bytes")
            return body
    except httpx.HTTPError as e:
        raise UnavailableError(f"cannot fetch {url}: {e.__class__.__name__}") from e


def remote_extension_inputs(
    base_url: str, old_size: int, *, transport: httpx.BaseTransport | None = None
) -> tuple[str, list[bytes]]:
    """The server's latest checkpoint (tlog-tiles ``/checkpoint``) and its consistency proof
    from ``old_size`` (``/v1/log/proof/consistency``), fetched from ``base_url`` without
    following redirects.  Nothing fetched is trusted: the caller verifies both.

    Raises :class:`ValidationError` for a URL that is not http(s),
    :class:`UnavailableError` when the server cannot be reached or does not answer 200, and
    ``LogError`` for a malformed answer.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("--url must be an http(s) URL of a Credit Commons server")
    base = base_url.rstrip("/")
    with httpx.Client(timeout=_TIMEOUT, follow_redirects=False, transport=transport) as client:
        try:
            note = _get(client, f"{base}/checkpoint").decode("utf-8")
        except UnicodeDecodeError as e:
            raise LogError("the server's checkpoint is not UTF-8 text") from e
        size = parse_checkpoint_note(note).size
        if not 0 < old_size < size:
            return note, []
        body = _get(client, f"{base}/v1/log/proof/consistency?from={old_size}&to={size}")
    try:
        answer = json.loads(body)
        if not isinstance(answer, dict):
            raise LogError("the server's consistency proof is not a JSON object")
        hashes = answer["proof"]
        if answer.get("from") != old_size or answer.get("to") != size:
            raise LogError("the server's consistency proof is for other tree sizes")
        return note, [b64_decode(h) for h in hashes]
    except (ValueError, KeyError, TypeError) as e:
        raise LogError("the server's consistency proof is malformed") from e
    except CommonsError as e:
        if isinstance(e, LogError):
            raise
        raise LogError("the server's consistency proof is malformed") from e
