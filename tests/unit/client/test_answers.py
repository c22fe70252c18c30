"""The lender SDK reads the platform's answers as the models its routes name, tolerating
members a newer platform adds and refusing answers that lack what it needs (502)."""

from __future__ import annotations

import pytest

from credit_commons.client.errors import ApiUnavailable
from credit_commons.client.lender import _validated
from credit_commons.ledger import LogKey


def test_a_member_a_newer_platform_adds_is_ignored() -> None:
    key = _validated(LogKey, {"origin": "o", "vkey": "k", "added_later": 1}, "its key")
    assert key == LogKey(origin="o", vkey="k")


def test_an_answer_without_a_needed_member_is_a_bad_gateway() -> None:
    with pytest.raises(ApiUnavailable) as refused:
        _validated(LogKey, {"origin": "o"}, "its key")
    assert refused.value.status == 502
