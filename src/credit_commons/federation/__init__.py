"""Federation: this platform's events, revocations, rules and checkpoints on NATS JetStream
(docs/federation.md).

Where it sits: just above ``ledger`` and below every domain that records events
(``identity`` and up).  It publishes what the other domains have already recorded on the
event spine, in the order the log fixed, so it reads the log (through ``ledger``'s service)
and the spine (``events``) and signs with a key from ``keys``; nothing below the edges needs
it, and it needs nothing above the log.  Putting it in ``jobs`` would hide a domain with its
own table (the publisher's cursor) and its own subjects in an edge file; putting it inside
``ledger`` would make the log depend on a message broker.  The worker runs it as a jobs step
(:func:`credit_commons.jobs.default_steps`) when ``COMMONS_NATS_URL`` is set.
"""

from credit_commons.federation.feed import (
    FeedBatch,
    Topic,
    TopicInvalid,
    leaf_messages,
    parse_topic,
    read_messages,
)
from credit_commons.federation.feed import log_size as feed_log_size
from credit_commons.federation.ownership import Refusal, StreamsNotOurs
from credit_commons.federation.publisher import Publisher, PublisherState
from credit_commons.federation.refusals import refusals as publisher_refusals
from credit_commons.federation.subjects import (
    MAX_MESSAGE_BYTES,
    MESSAGE_TYP,
    STREAMS,
    Message,
    StreamSpec,
    bus_subject,
    checkpoint_message,
    event_messages,
    event_subjects,
    stream_of,
    subject_token,
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MESSAGE_TYP",
    "STREAMS",
    "FeedBatch",
    "Message",
    "Publisher",
    "PublisherState",
    "Refusal",
    "StreamSpec",
    "StreamsNotOurs",
    "Topic",
    "TopicInvalid",
    "bus_subject",
    "checkpoint_message",
    "event_messages",
    "event_subjects",
    "feed_log_size",
    "leaf_messages",
    "parse_topic",
    "publisher_refusals",
    "read_messages",
    "stream_of",
    "subject_token",
]
