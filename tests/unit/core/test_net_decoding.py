"""core/net.py: the outbound fetcher's size cap holds while a compressed body is decoded.

A gzip bomb (a few hundred KiB that inflate to hundreds of MiB) served to the fetcher must
not be inflated beyond the cap: the peak of Python allocations while fetching it, measured
with tracemalloc, stays within a few times the cap, whatever the bomb's size and however the
network cuts it into chunks.
"""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from credit_commons.core.net import ACCEPT_ENCODING, FetchFailed, OutboundFetcher

URL = "https://issuer.example/resource"
CAP = 512 * 1024  # the fetcher's default max_bytes
MiB = 1024 * 1024


def _bomb(inflated: int) -> bytes:
    # gzip of ``inflated`` zero bytes, written a MiB at a time (never held inflated).
    pack = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MiB)
    parts = [pack.compress(zeros) for _ in range(inflated // MiB)]
    return b"".join([*parts, pack.flush()])


BOMB = _bomb(256 * MiB)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def fetcher(
    body: Callable[[], bytes | Iterator[bytes]],
    coding: str | None = "gzip",
    seen: list[httpx.Request] | None = None,
) -> OutboundFetcher:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        headers = {"Content-Type": "application/json"}
        if coding is not None:
            headers["Content-Encoding"] = coding
        # A stream, as a network transport gives (a response built from bytes arrives
        # already read, and decoded by httpx).
        content = body()
        stream = iter([content]) if isinstance(content, bytes) else content
        return httpx.Response(200, content=stream, headers=headers)

    return OutboundFetcher(
        transport=httpx.MockTransport(handler), resolver=lambda _h: ["93.184.216.34"]
    )


def _peak(call: Callable[[], object]) -> int:
    # The peak of Python allocations while ``call`` runs, in bytes.
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _refused_as_too_large(call: Callable[[], object]) -> Callable[[], None]:
    def refused() -> None:
        with pytest.raises(FetchFailed, match="too large"):
            call()

    return refused


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda: iter([BOMB]), id="one chunk"),
        pytest.param(lambda: _chunks(BOMB, 64 * 1024), id="64 KiB chunks"),
        pytest.param(lambda: _chunks(BOMB, 1024), id="1 KiB chunks"),
    ],
)
def test_a_gzip_bomb_is_refused_without_inflating_past_the_cap(
    cut: Callable[[], bytes | Iterator[bytes]],
) -> None:
    assert len(BOMB) < CAP  # the bomb passes the cap on the bytes received
    peak = _peak(_refused_as_too_large(lambda: fetcher(cut).get_bytes(URL)))
    # The decoded body is held up to the cap (and its join), the bomb itself once: bounded
    # by bytes, not by what the bomb inflates to (256 MiB).
    assert peak < 4 * CAP + 2 * len(BOMB), peak


def test_a_deflate_bomb_is_refused_too() -> None:
    deflated = zlib.compress(bytes(64 * MiB), 9)
    fetch = fetcher(lambda: deflated, coding="deflate")
    peak = _peak(_refused_as_too_large(lambda: fetch.get_bytes(URL)))
    assert peak < 4 * CAP + 2 * len(deflated), peak


def test_the_cap_is_exact_on_the_decoded_body() -> None:
    at_cap = gzip.compress(b"a" * CAP)
    assert fetcher(lambda: at_cap).get_bytes(URL)[0] == b"a" * CAP
    over = gzip.compress(b"a" * (CAP + 1))
    with pytest.raises(FetchFailed, match="too large"):
        fetcher(lambda: over).get_bytes(URL)


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "GZIP", "deflate", "identity", None])
def test_bodies_in_each_coding_asked_for_are_read(coding: str | None) -> None:
    document = b'{"id": "did:web:issuer.example", "n": 1}'
    encoded = {
        "gzip": gzip.compress,
        "x-gzip": gzip.compress,
        "GZIP": gzip.compress,
        "deflate": zlib.compress,
    }.get(coding or "", lambda data: data)
    seen: list[httpx.Request] = []
    parsed = fetcher(lambda: encoded(document), coding=coding, seen=seen).get_json(URL)
    assert parsed == {"id": "did:web:issuer.example", "n": 1}
    assert seen[0].headers["accept-encoding"] == ACCEPT_ENCODING


BAD = {
    "a coding not asked for": (lambda: b"\x00" * 10, "br"),
    "two codings": (lambda: gzip.compress(gzip.compress(b"{}")), "gzip, gzip"),
    "truncated gzip": (lambda: gzip.compress(b"{}" * 1000)[:-12], "gzip"),
    "not gzip at all": (lambda: b"{}", "gzip"),
    "bytes after the gzip stream": (lambda: gzip.compress(b"{}") + b"junk", "gzip"),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_malformed_or_unasked_codings_are_refused(
    case: tuple[Callable[[], bytes], str],
) -> None:
    body, coding = case
    with pytest.raises(FetchFailed):
        fetcher(body, coding=coding).get_bytes(URL)


def test_a_post_never_reads_the_answer_body() -> None:
    statuses: list[int] = []
    answering = fetcher(lambda: _chunks(BOMB, 64 * 1024))
    peak = _peak(
        lambda: statuses.append(answering.post(URL, b"{}", content_type="application/json"))
    )
    assert statuses == [200]
    assert peak < 4 * CAP + 2 * len(BOMB), peak
