"""Whose messages a stream holds: the publisher's check, before it publishes anything, that
the last message of each JetStream stream is this platform's (docs/federation.md, "One NATS
account per platform").

The subject and stream names are the same on every platform, so two platforms given one
NATS account share every stream.  The publisher skips what a stream already holds by leaf
index (the module docstring of :mod:`.publisher`), so without this check a second platform
whose indices are below the first one's would publish nothing and move its cursors: its
events lost, silently.  A message is this platform's when it is a federation message
(``typ`` ``commons-federation+jws``, EdDSA) whose ``iss`` is one of this log's origins (the
current one, or one frozen by a declared new origin) and whose signature verifies under
the log's key — the origin alone is not enough, since two platforms left at the default
public URL have the same origin.  Pure: the last message's bytes and this platform's log
key in, its position out or :class:`StreamsNotOurs` raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from credit_commons.core.errors import CommonsError, ConfigurationError
from credit_commons.federation.subjects import MESSAGE_TYP, payload_position
from credit_commons.formats.jws import CompactJws, parse_compact
from credit_commons.keys import PublicKey

__all__ = ["OurLog", "Refusal", "StreamsNotOurs", "own_position"]

_SHOWN = 120  # characters of another platform's iss shown in a log line


@dataclass(frozen=True)
class OurLog:
    """This platform's log as its messages name it: its origins and its key."""

    origins: frozenset[str]
    key: PublicKey


@dataclass(frozen=True)
class Refusal:
    """A stream whose last message is not this platform's: the stream, who the message
    says published it (``other``: an origin as the message names it, quoted, or what the
    message is when it names none) and the position it names (``None`` when it names none)."""

    stream: str
    other: str
    position: int | None


class StreamsNotOurs(ConfigurationError):
    """Streams on the NATS server this platform publishes to hold another platform's
    messages (or messages that are no platform's): one NATS account is shared.  ``refusals``
    names each stream and what it holds."""

    code = "federation.streams_not_ours"
    title = "The federation streams hold another platform's messages"

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        self.refusals = tuple(refusals)
        held = "; ".join(f"{r.stream} holds {r.other}" for r in self.refusals)
        super().__init__(
            f"not publishing: {held}",
            hint="give this platform a NATS account (or server) of its own "
            '(docs/federation.md, "One NATS account per platform"); its cursors did not move, '
            "so it publishes everything from the start once pointed there",
            extra={"streams": [r.stream for r in self.refusals]},
        )


def own_position(stream: str, body: bytes, ours: OurLog) -> int:
    """The position (leaf index or checkpoint size) of ``stream``'s last message ``body``
    when it is this platform's.

    1. A compact JWS, EdDSA, ``typ`` ``commons-federation+jws``, its payload an object.
    2. ``iss`` one of ``ours.origins``, a position named.
    3. The signature verifies under ``ours.key``.

    Raises :class:`StreamsNotOurs` naming ``stream`` at the first step that fails.
    """
    # 1. A federation message at all.
    jws = _federation_message(body)
    if jws is None:
        raise StreamsNotOurs([Refusal(stream, "a message that is no federation message", None)])
    # 2. Named as this log's.
    iss, position = jws.payload.get("iss"), payload_position(jws.payload)
    if not isinstance(iss, str):
        raise StreamsNotOurs([Refusal(stream, "a federation message with no iss", position)])
    shown = repr(iss[:_SHOWN])
    if iss not in ours.origins:
        raise StreamsNotOurs([Refusal(stream, f"messages of log {shown}", position)])
    if position is None:
        raise StreamsNotOurs([Refusal(stream, f"a message of {shown} with no position", None)])
    # 3. Signed by this log's key: another platform can have the same origin.
    try:
        jws.verify(ours.key)
    except CommonsError:
        raise StreamsNotOurs(
            [Refusal(stream, f"messages of log {shown} signed by another key", position)]
        ) from None
    return position


def _federation_message(body: bytes) -> CompactJws | None:
    try:
        jws = parse_compact(body.decode("ascii"), algs=("EdDSA",))
        _ = jws.payload  # decoded here, so a malformed one is refused here
    except (CommonsError, UnicodeDecodeError):
        return None
    return jws if jws.header.get("typ") == MESSAGE_TYP else None
