"""The log entry composed from members equals the one built from whole documents.

``record_events`` writes each event's log entry by composing the RFC 8785 forms of its
members (``events.spine._log_entry``); ``log_entry_reference`` encodes whole documents with
``canonical_json``.  They must give the same bytes for every event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.encoding import canonical_json
from credit_commons.events import (
    EventDetails,
    RecordedEvent,
    Token,
    event_digest,
    event_document,
    log_entry,
    log_entry_reference,
    spine,
)


class _Composed(EventDetails, event_type="test.composed"):
    name: Token
    count: int
    flag: bool
    when: datetime | None = None


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_PSEUDONYM = st.builds(
    lambda n, body: f"p{n}:{body}",
    st.integers(min_value=1, max_value=99),
    st.text(alphabet=_B64, min_size=43, max_size=43),
)
_TOKEN = st.text(alphabet=_B64 + ".:#/+=", min_size=1, max_size=128)
_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(9998, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)


@given(
    _TOKEN,
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.booleans(),
    st.none() | _TIMES,
    _TIMES,
    _PSEUDONYM,
    st.none() | _PSEUDONYM,
    st.none() | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    st.sampled_from(["evt_01JABCDEFGHJKMNPQRSTVWXYZ0", "01J0000000000000000000000Z"]),
)
def test_composed_log_entry_is_the_canonical_one(
    name: str,
    count: int,
    flag: bool,
    when: datetime | None,
    at: datetime,
    actor: str,
    subject: str | None,
    object_: str | None,
    event_id: str,
) -> None:
    details = _Composed(name=name, count=count, flag=flag, when=when).model_dump(mode="json")
    event = RecordedEvent.model_construct(
        id=event_id,
        type="test.composed",
        at=at,
        actor=actor,
        subject=subject,
        object=object_,
        details=details,
    )
    entry = log_entry(event)
    assert entry == log_entry_reference(event)
    # And the digest inside is the digest of the whole event document.
    assert event_digest(event_document(event)) in entry.decode()
    assert canonical_json(details) in canonical_json(event_document(event))


class _Either(EventDetails, event_type="test.either"):
    value: int | bool


def test_a_batch_dumps_identical_details_once_and_tells_true_from_one() -> None:
    seen: dict[tuple[object, ...], tuple[dict[str, object], str]] = {}
    one, same, true = (
        spine._dump(_Either(value=1), seen),
        spine._dump(_Either(value=1), seen),
        spine._dump(_Either(value=True), seen),
    )
    assert one[1] == same[1] == '{"value":1}'
    assert one[0] is not same[0]  # each event gets its own dict
    assert true[1] == '{"value":true}'
    assert true[0] == {"value": True}
    assert len(seen) == 2
