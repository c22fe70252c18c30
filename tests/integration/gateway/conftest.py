"""Fixtures of the lender gateway tests: a pinned clock, and a real Redis.

Redis is found at ``COMMONS_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``).  When it
is unreachable the tests that need it fail — unless ``COMMONS_TEST_SKIP_REDIS=1`` says,
explicitly, to skip them (as ``COMMONS_TEST_SKIP_POSTGRES`` does for PostgreSQL).
"""

from __future__ import annotations

import os
import secrets

import pytest
import redis

from credit_commons.core.clock import FixedClock
from credit_commons.runtime import Runtime

REDIS_URL = os.environ.get("COMMONS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SKIP_REDIS = os.environ.get("COMMONS_TEST_SKIP_REDIS") == "1"


@pytest.fixture(autouse=True)
def clock(runtime: Runtime) -> FixedClock:
    """The runtime's clock, pinned (and moved by the tests that need time to pass)."""
    fixed = FixedClock(runtime.clock.now())
    runtime.clock = fixed
    return fixed


@pytest.fixture
def redis_url() -> str:
    """A reachable Redis URL; rate-limit keys of a test live under their own prefix."""
    if SKIP_REDIS:
        pytest.skip("COMMONS_TEST_SKIP_REDIS=1")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:  # pragma: no cover - environment problem
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({e.__class__.__name__}); start it "
            "or set COMMONS_TEST_SKIP_REDIS=1"
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def key_prefix() -> str:
    """A fresh key prefix, so that runs never share counters."""
    return f"test-{secrets.token_hex(6)}"
