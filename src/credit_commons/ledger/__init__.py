"""The ledger: the transparency log (docs/log.md) -- the RFC 6962 tree, C2SP checkpoints,
witness cosignatures, tiles, receipts and anchors.

Domains record events through :mod:`credit_commons.events` (the event spine); the log
sequences them.  Auditors verify receipts offline with :func:`verify_receipt`.
"""

from credit_commons.ledger.audit import AuditFailed, audit_log
from credit_commons.ledger.checkpoint import Checkpoint, verify_checkpoint
from credit_commons.ledger.cosignature import verify_cosigned
from credit_commons.ledger.note import Ed25519Verifier
from credit_commons.ledger.promises import pending_receipt, pending_receipt_of
from credit_commons.ledger.receipts import ReceiptInvalid, VerifiedReceipt, verify_receipt
from credit_commons.ledger.schemas import LogKey, PendingReceipt, Receipt

__all__ = [
    "AuditFailed",
    "Checkpoint",
    "Ed25519Verifier",
    "LogKey",
    "PendingReceipt",
    "Receipt",
    "ReceiptInvalid",
    "VerifiedReceipt",
    "audit_log",
    "pending_receipt",
    "pending_receipt_of",
    "verify_checkpoint",
    "verify_cosigned",
    "verify_receipt",
]
