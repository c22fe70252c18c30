"""The ledger: the event spine and the transparency log (docs/log.md).

Other domains record events with :func:`record_event` and a typed :class:`EventDetails`
model; auditors verify receipts offline with :func:`verify_receipt`.
"""

from credit_commons.ledger.audit import AuditFailed, audit_log
from credit_commons.ledger.checkpoint import Checkpoint, verify_checkpoint
from credit_commons.ledger.cosignature import verify_cosigned
from credit_commons.ledger.events import (
    Digest,
    EventDetails,
    ObjectDigests,
    PseudonymField,
    RecordedEvent,
    Token,
    record_event,
)
from credit_commons.ledger.receipts import ReceiptInvalid, VerifiedReceipt, verify_receipt

__all__ = [
    "AuditFailed",
    "Checkpoint",
    "Digest",
    "EventDetails",
    "ObjectDigests",
    "PseudonymField",
    "ReceiptInvalid",
    "RecordedEvent",
    "Token",
    "VerifiedReceipt",
    "audit_log",
    "record_event",
    "verify_checkpoint",
    "verify_cosigned",
    "verify_receipt",
]
