"""The node's message checks, pure parts: the canonical payload a covered message is held to
is composed from its members (the event's RFC 8785 bytes computed once, for its digest
too), and must be exactly what ``canonical_json`` makes of the whole payload."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.encoding import canonical_json
from credit_commons.core.errors import ValidationError
from credit_commons.node.messages import _payload_jcs

_SAFE = 2**53 - 1
_SCALARS = st.none() | st.booleans() | st.integers(-_SAFE, _SAFE) | st.text(max_size=8)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@given(st.dictionaries(st.text(max_size=6), _VALUES, max_size=7), _VALUES)
def test_the_composed_payload_is_the_payloads_rfc8785_form(
    members: dict[str, Any], event: Any
) -> None:
    payload = {**members, "event": event}
    assert _payload_jcs(payload, canonical_json(event)) == canonical_json(payload)


def test_names_that_need_escaping_keep_their_order_and_form() -> None:
    payload = {
        'a"b': 1,
        "event": {"z": "é", "a": [1, "\u2028"]},
        "a\\": "x",
        "\u00e9": 2,
        "A": None,
    }
    assert _payload_jcs(payload, canonical_json(payload["event"])) == canonical_json(payload)
    ascii_only = {k: v for k, v in payload.items() if k.isascii()}
    assert _payload_jcs(ascii_only, canonical_json(payload["event"])) == canonical_json(ascii_only)


def test_a_lone_surrogate_has_no_canonical_form_either_way() -> None:
    payload = {"event": {}, "entry": "\ud800"}
    with pytest.raises(ValidationError):
        canonical_json(payload)
    with pytest.raises(ValidationError):
        _payload_jcs(payload, canonical_json({}))
