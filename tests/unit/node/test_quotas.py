"""The node's ingest quotas (issue 20 item 4): token buckets of messages and bytes per
stream and per peer, and the exponential back-off of a stream over quota, on a clock the
test drives."""

from __future__ import annotations

import pytest

from credit_commons.core.node_quota_settings import NodeQuotaSettings
from credit_commons.core.settings import Settings
from credit_commons.federation import MAX_MESSAGE_BYTES
from credit_commons.node import Quotas


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _quotas(clock: _Clock, **kwargs: float) -> Quotas:
    values = {
        "stream_messages": 10.0,
        "stream_bytes": 1e9,
        "peer_messages": 1e6,
        "peer_bytes": 1e9,
        "burst": 2.0,
        "backoff_base": 0.5,
        "backoff_max": 3.0,
    }
    values.update(kwargs)
    return Quotas(clock=clock, **values)


def test_a_stream_gets_its_burst_then_its_rate() -> None:
    clock = _Clock()
    quotas = _quotas(clock)
    assert quotas.admit("S", [100] * 50) == 20  # 10 a second, 2 seconds held
    assert quotas.admit("S", [100]) == 0
    clock.now = 0.5
    assert quotas.admit("S", [100] * 50) == 5
    clock.now = 1_000.0  # never more than the burst
    assert quotas.admit("S", [100] * 50) == 20


def test_streams_have_their_own_buckets_and_share_the_peers() -> None:
    clock = _Clock()
    quotas = _quotas(clock, peer_messages=15.0)  # the peer holds 30
    assert quotas.admit("A", [1] * 50) == 20
    assert quotas.admit("B", [1] * 50) == 10  # its own 20, but the peer's last 10
    assert quotas.admit("C", [1]) == 0


def test_bytes_are_charged_and_a_largest_message_always_fits_eventually() -> None:
    clock = _Clock()
    quotas = _quotas(clock, stream_bytes=1_000.0)
    # At least one largest message is held, although 2 s of 1,000 bytes is less.
    assert quotas.admit("S", [MAX_MESSAGE_BYTES, 1]) == 1
    assert quotas.admit("S", [1]) == 0
    clock.now = 2.0
    assert quotas.admit("S", [600, 600, 600, 600]) == 3


def test_back_off_doubles_to_its_cap_and_clears() -> None:
    quotas = _quotas(_Clock())
    assert [quotas.backoff("S") for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert quotas.backoff("T") == 0.5  # per stream
    quotas.clear("S")
    assert quotas.backoff("S") == 0.5


@pytest.mark.parametrize(
    "kwargs",
    [{"stream_messages": 0.0}, {"peer_bytes": -1.0}, {"burst": 0.0}, {"backoff_base": 5.0}],
)
def test_nonsense_quotas_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        _quotas(_Clock(), **kwargs)


def test_quotas_from_settings_defaults() -> None:
    settings = Settings(
        env="test", node_quotas=NodeQuotaSettings(stream_messages=7.0, backoff_max=4.0)
    )
    quotas = Quotas.from_settings(settings)
    assert (quotas.stream_messages, quotas.peer_messages) == (7.0, 50_000.0)
    assert (quotas.burst, quotas.backoff_base, quotas.backoff_max) == (2.0, 0.25, 4.0)


def test_quotas_come_from_one_json_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMONS_NODE_QUOTAS", '{"peer_bytes": 1000, "backoff_base": 0.5}')
    quotas = Quotas.from_settings(Settings(env="test"))
    assert (quotas.peer_bytes, quotas.backoff_base, quotas.stream_bytes) == (1000.0, 0.5, 32e6)
    monkeypatch.setenv("COMMONS_NODE_QUOTAS", '{"backoff_base": 20, "backoff_max": 10}')
    with pytest.raises(ValueError, match="backoff_base"):
        Settings(env="test")
    monkeypatch.setenv("COMMONS_NODE_QUOTAS", '{"stream_messages": 0}')
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(env="test")
