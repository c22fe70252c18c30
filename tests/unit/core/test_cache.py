"""The bounded cache (issue 12 item 11): a property test against a naive reference model,
TTL, thread safety, and — for every in-process cache of the platform — that filling it past
its bounds keeps its entries and bytes within them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import make_settings

from credit_commons.core.cache import ENTRY_OVERHEAD, BoundedCache
from credit_commons.core.errors import ConfigurationError
from credit_commons.formats.tlog_tiles import TILE_WIDTH, Tile
from credit_commons.runtime import Runtime

OPS = st.lists(
    st.tuples(st.sampled_from(["put", "get", "pop"]), st.integers(0, 12), st.integers(0, 300)),
    max_size=200,
)


@settings(deadline=None)  # a shared, loaded machine is slow, not wrong
@given(OPS, st.integers(1, 6), st.integers(1, 900))
def test_matches_a_naive_lru_model(
    ops: list[tuple[str, int, int]], entries: int, budget: int
) -> None:
    cache: BoundedCache[int, int] = BoundedCache(
        max_entries=entries, max_bytes=budget, size=lambda _k, v: v
    )
    model: list[tuple[int, int]] = []  # least recently used first

    for op, key, value in ops:
        found = next((v for k, v in model if k == key), None)
        if op == "put":
            model = [(k, v) for k, v in model if k != key]
            if value + ENTRY_OVERHEAD <= budget:
                model.append((key, value))
            while len(model) > entries or sum(v + ENTRY_OVERHEAD for _, v in model) > budget:
                model.pop(0)
            cache.put(key, value)
        elif op == "get":
            assert cache.get(key) == found
            if found is not None:
                model = [(k, v) for k, v in model if k != key] + [(key, found)]
        else:
            assert cache.pop(key) == found
            model = [(k, v) for k, v in model if k != key]
        assert len(cache) == len(model) <= entries
        assert cache.bytes == sum(v + ENTRY_OVERHEAD for _, v in model) <= budget


def test_time_to_live() -> None:
    now = [0.0]
    cache: BoundedCache[str, str] = BoundedCache(
        max_entries=4, max_bytes=10_000, size=lambda k, v: len(v), ttl=10, now=lambda: now[0]
    )
    cache.put("a", "x")
    now[0] = 9.9
    assert cache.get("a") == "x"
    now[0] = 10.0
    assert cache.get("a") is None
    assert len(cache) == 0
    assert cache.bytes == 0
    off: BoundedCache[str, str] = BoundedCache(
        max_entries=4, max_bytes=10_000, size=lambda k, v: 1, ttl=0
    )
    off.put("a", "x")
    assert off.get("a") is None


def test_refuses_meaningless_bounds() -> None:
    for bounds in ({"max_entries": 0, "max_bytes": 1}, {"max_entries": 1, "max_bytes": 0}):
        with pytest.raises(ConfigurationError):
            BoundedCache(size=lambda k, v: 1, **bounds)


def test_is_safe_across_threads() -> None:
    cache: BoundedCache[int, bytes] = BoundedCache(
        max_entries=50, max_bytes=20_000, size=lambda k, v: len(v)
    )

    def hammer(seed: int) -> None:
        for i in range(3000):
            key = (i * 7 + seed) % 200
            cache.put(key, b"x" * (key % 300))
            cache.get((key + 1) % 200)
            if i % 5 == 0:
                cache.pop((key + 3) % 200)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 50
    assert cache.bytes <= 20_000
    present = [v for k in range(200) if (v := cache.get(k)) is not None]
    assert len(present) == len(cache)
    assert cache.bytes == sum(len(v) + ENTRY_OVERHEAD for v in present)


# -- every cache of the platform ---------------------------------------------------------


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    path: Path = tmp_path_factory.mktemp("caches")
    runtime = Runtime.build(make_settings(path, database_url=f"sqlite:///{path / 'c.db'}"))
    try:
        yield runtime
    finally:
        runtime.close()


Fill = Callable[[int, int], tuple[Any, Any]]  # (i, value bytes) -> (key, value)


def _status_lists(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    from credit_commons.issuer.status import RenderedList, render_cache  # noqa: PLC0415

    return render_cache(rt), lambda i, n: (f"sl_{i}", RenderedList("t" * n, "x", 1, 0))


def _credential_types(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    from credit_commons.issuer.service import BUILT_IN, _types_cache  # noqa: PLC0415

    return _types_cache(rt), lambda i, n: (f"Type{i}", ("t", BUILT_IN[0], n))


def _verified_tokens(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    from credit_commons.gateway.access_token import _verified_tokens  # noqa: PLC0415

    return _verified_tokens(rt), lambda i, n: (f"{i}." + "t" * n, ({}, {}))


def _oauth_key_versions(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    from credit_commons.gateway.access_token import _key_versions  # noqa: PLC0415

    return _key_versions(rt), lambda i, n: (f"{i}" + "k" * n, object())


def _tiles(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    # Only full tiles are cached: the stored upper levels carry the size.
    return rt.tile_cache, lambda i, n: ((0, i), Tile(_FULL_TILE, b"u" * n))


_CIPHER = AESGCM(bytes(32))
_FULL_TILE = b"h" * (TILE_WIDTH * 32)


def _vault_keys(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    return rt.vault._keys, lambda i, n: (b"sk_" + str(i).encode() + b"k" * n, _CIPHER)


def _vault_current(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    return rt.vault._current, lambda i, n: ((f"s{i}" + "s" * n, "credentials"), ("sk_1", 1))


def _foreign_keys(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    from credit_commons.verifier.foreign import foreign_issuers  # noqa: PLC0415

    return foreign_issuers(rt)._keys, lambda i, n: (f"https://i{i}" + "x" * n, (0.0, {}))


def _foreign_fetchers(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    from credit_commons.verifier.foreign import foreign_issuers  # noqa: PLC0415

    return foreign_issuers(rt)._status, lambda i, n: (f"https://i{i}" + "x" * n, object())


def _foreign_lists(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    from credit_commons.formats.status_list import StatusList  # noqa: PLC0415
    from credit_commons.verifier.foreign import foreign_issuers  # noqa: PLC0415

    return foreign_issuers(rt)._lists, lambda i, n: (
        ("https://i", f"https://l/{i}"),
        (0.0, StatusList(1, bytes(n))),
    )


def _jwks(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    from credit_commons.keys.jwk import _PARSED  # noqa: PLC0415

    return _PARSED, lambda i, n: ((("kty", "OKP"), ("x", f"{i}" + "x" * n)), object())


def _disclosure_paths(rt: Runtime) -> tuple[BoundedCache[Any, Any], Fill]:
    from credit_commons.issuer.sd_jwt import _PATHS  # noqa: PLC0415

    return _PATHS, lambda i, n: (f"/p{i}" + "x" * n, ("p",))


SITES = [
    _status_lists,
    _credential_types,
    _verified_tokens,
    _oauth_key_versions,
    _tiles,
    _vault_keys,
    _vault_current,
    _foreign_keys,
    _foreign_fetchers,
    _foreign_lists,
    _jwks,
    _disclosure_paths,
]


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.__name__.strip("_"))
def test_every_cache_stays_within_its_bounds(
    rt: Runtime, site: Callable[[Runtime], tuple[BoundedCache[Any, Any], Fill]]
) -> None:
    cache, fill = site(rt)
    assert isinstance(cache, BoundedCache)
    try:
        # Many small entries: the entry bound holds.
        for i in range(cache.max_entries + 50):
            cache.put(*fill(i, 8))
        assert len(cache) <= cache.max_entries
        assert cache.bytes <= cache.max_bytes
        # Few big ones: the byte bound holds (each a tenth of the budget).
        big = max(1, cache.max_bytes // 10)
        for i in range(30):
            cache.put(*fill(10**7 + i, big))
            assert len(cache) <= cache.max_entries
            assert cache.bytes <= cache.max_bytes
        assert 1 <= len(cache) <= 10
    finally:
        cache.clear()
