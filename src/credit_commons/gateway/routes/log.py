"""HTTP API of the transparency log: ``/v1/log/…`` and the tlog-tiles layout at the root."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from credit_commons.core.encoding import b64_decode
from credit_commons.core.errors import NotFoundError, ValidationError
from credit_commons.formats.tlog_tiles import TILE_WIDTH
from credit_commons.gateway.deps import ReadSessionDep, RuntimeDep
from credit_commons.gateway.openapi import answers, media
from credit_commons.ledger import service
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.schemas import (
    ConsistencyProof,
    InclusionProof,
    LogEntry,
    LogKey,
    Receipt,
)
from credit_commons.ledger.tiles import TileHashSource

__all__ = ["parse_tile_path", "router", "tiles_router"]

router = APIRouter(prefix="/v1/log", tags=["log"])
tiles_router = APIRouter(tags=["log tiles (tlog-tiles@v0.1.0)"])

_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_FRESH = {"Cache-Control": "no-cache"}
_NOTE = "text/plain; charset=utf-8"
_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_NOTE_BODY = media({_NOTE: {"type": "string", "description": "a C2SP signed note"}}, 404)
_TILE_BODY = media({"application/octet-stream": {"type": "string", "format": "binary"}}, 404)


def _checkpoint_text(session: Session) -> str:
    row = service.latest_checkpoint(session)
    if row is None:
        raise NotFoundError("the log has no checkpoint yet")
    return service.checkpoint_with_cosignatures(session, row)


@router.get(
    "/checkpoint",
    summary="The latest checkpoint with its cosignatures (signed note).",
    response_class=Response,
    responses=_NOTE_BODY,
)
@router.head("/checkpoint", include_in_schema=False)
def get_checkpoint(session: ReadSessionDep) -> Response:
    return Response(_checkpoint_text(session), media_type=_NOTE, headers=_FRESH)


@router.get(
    "/key", summary="The log's origin and signed-note verifier key.", responses=answers(LogKey)
)
def get_key(runtime: RuntimeDep) -> LogKey:
    # The identity recorded when the log was created, whatever the public URL is now.
    identity = log_identity(runtime)
    return LogKey(origin=identity.origin, vkey=identity.vkey)


@router.get(
    "/proof/inclusion",
    summary="Inclusion proof of a leaf, by index or by leaf hash.",
    responses=answers(InclusionProof, 404, 422),
)
def get_inclusion(
    session: ReadSessionDep,
    runtime: RuntimeDep,
    index: Annotated[int | None, Query(ge=0)] = None,
    leaf_hash: Annotated[str | None, Query(description="base64 leaf hash")] = None,
    size: Annotated[
        int | None, Query(ge=1, description="tree size; default latest checkpoint")
    ] = None,
) -> InclusionProof:
    if (index is None) == (leaf_hash is None):
        raise ValidationError("give exactly one of index and leaf_hash", extra={"field": "index"})
    if leaf_hash is not None:
        target = b64_decode(leaf_hash)
        if len(target) != 32:
            raise ValidationError("leaf_hash must be 32 bytes", extra={"field": "leaf_hash"})
        bound = size if size is not None else service.log_state(session)[0]
        index = service.leaf_index_of(session, target, bound)
    assert index is not None
    return service.inclusion_proof(session, index, size, runtime.tile_cache)


@router.get(
    "/proof/consistency",
    summary="Consistency proof between two tree sizes.",
    responses=answers(ConsistencyProof, 404, 422),
)
def get_consistency(
    session: ReadSessionDep,
    runtime: RuntimeDep,
    from_: Annotated[int, Query(alias="from", ge=1)],
    to: Annotated[int | None, Query(ge=1)] = None,
) -> ConsistencyProof:
    return service.consistency_proof(session, from_, to, runtime.tile_cache)


@router.get(
    "/entries",
    summary="Log entries [start, end), at most 1000.",
    responses=answers(list[LogEntry], 422),
)
def get_entries(
    session: ReadSessionDep,
    start: Annotated[int, Query(ge=0)],
    end: Annotated[int, Query(ge=1)],
) -> list[LogEntry]:
    return service.entries(session, start, end)


@router.get(
    "/receipts/{event_id}",
    summary="Public receipt of an event (without the event body).",
    responses=answers(Receipt, 404),
    response_model_exclude_none=True,  # a public receipt has no ``event`` member
)
def get_receipt(session: ReadSessionDep, runtime: RuntimeDep, event_id: str) -> Receipt:
    if not re.fullmatch(r"evt_[0-9A-Z]{26}", event_id):
        raise NotFoundError("no checkpointed log entry for that event yet")
    return service.receipt(session, event_id, include_event=False, cache=runtime.tile_cache)


# -- tlog-tiles@v0.1.0 ----------------------------------------------------------------------
# Tiles and checkpoints also answer HEAD (RFC 9110 §9.3.2): the same handler builds the GET
# response, so the headers (Content-Length of the GET's body included) are the same, and
# the server sends no body.  HEAD is left out of the OpenAPI document (an operation per
# method would repeat each GET).


def parse_tile_path(path: str) -> tuple[int, int | None]:
    """Parse ``x001/x234/067[.p/W]`` into (index, width or None).

    Raises :class:`NotFoundError` (the resource does not exist) for a malformed path.
    """
    parts = path.split("/")
    width: int | None = None
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        if not re.fullmatch(r"[1-9][0-9]{0,2}", parts[-1]) or int(parts[-1]) >= TILE_WIDTH:
            raise NotFoundError("no such tile")
        width = int(parts[-1])
        parts = [*parts[:-2], parts[-2][:-2]]
    if (
        not parts
        or not _LAST.fullmatch(parts[-1])
        or not all(_ELEMENT.fullmatch(p) for p in parts[:-1])
    ):
        raise NotFoundError("no such tile")
    if len(parts) > 1 and parts[0] == "x000":
        raise NotFoundError("no such tile")  # one index, one path: no leading zero elements
    return int("".join(p.lstrip("x") for p in parts)), width


def _octets(data: bytes) -> Response:
    return Response(data, media_type="application/octet-stream", headers=_IMMUTABLE)


@tiles_router.get(
    "/checkpoint",
    summary="The latest checkpoint (tlog-tiles).",
    response_class=Response,
    responses=_NOTE_BODY,
)
@tiles_router.head("/checkpoint", include_in_schema=False)
def tiles_checkpoint(session: ReadSessionDep) -> Response:
    return Response(_checkpoint_text(session), media_type=_NOTE, headers=_FRESH)


@tiles_router.get(
    "/tile/entries/{path:path}",
    summary="An entry bundle (tlog-tiles).",
    response_class=Response,
    responses=_TILE_BODY,
)
@tiles_router.head("/tile/entries/{path:path}", include_in_schema=False)
def tile_entries(session: ReadSessionDep, path: str) -> Response:
    index, width = parse_tile_path(path)
    count = width or TILE_WIDTH
    start = index * TILE_WIDTH
    bundle = service.entry_bundle(session, start, count)
    if bundle is None:
        raise NotFoundError("no such entry bundle")
    return _octets(bundle)


@tiles_router.get(
    "/tile/{level}/{path:path}",
    summary="A hash tile (tlog-tiles).",
    response_class=Response,
    responses=_TILE_BODY,
)
@tiles_router.head("/tile/{level}/{path:path}", include_in_schema=False)
def tile_hashes(session: ReadSessionDep, runtime: RuntimeDep, level: int, path: str) -> Response:
    index, width = parse_tile_path(path)
    if not 0 <= level <= 63:
        raise NotFoundError("no such tile")
    found = TileHashSource(session, runtime.tile_cache).tiles({(level, index)})
    data = found.get((level, index), b"")
    count = width or TILE_WIDTH
    if len(data) < count * 32:
        raise NotFoundError("no such tile")
    return _octets(data[: count * 32])
