"""The ledger: the transparency log (docs/log.md) -- the RFC 6962 tree, C2SP checkpoints,
witness cosignatures, tiles, receipts and anchors.

Domains record events through :mod:`credit_commons.events` (the event spine); the log
sequences them.  Auditors verify receipts offline with :func:`verify_receipt`.
"""

from credit_commons.ledger.audit import AuditFailed, audit_log
from credit_commons.ledger.checkpoint import Checkpoint, verify_checkpoint
from credit_commons.ledger.committee import CommitteeVerifier
from credit_commons.ledger.committee_lines import CommitteeLines, sort_committee_lines
from credit_commons.ledger.cosignature import verify_cosigned
from credit_commons.ledger.errors import TreeRangeInvalid
from credit_commons.ledger.note import Ed25519Verifier
from credit_commons.ledger.promises import pending_receipt, pending_receipt_of
from credit_commons.ledger.receipts import ReceiptInvalid, VerifiedReceipt, verify_receipt
from credit_commons.ledger.rfc6962 import (
    EMPTY_ROOT,
    Hash,
    NodeId,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_source,
    verify_consistency,
    verify_inclusion,
)
from credit_commons.ledger.schemas import (
    ConsistencyProof,
    InclusionProof,
    LogKey,
    PendingReceipt,
    Receipt,
)

__all__ = [
    "EMPTY_ROOT",
    "AuditFailed",
    "Checkpoint",
    "CommitteeLines",
    "CommitteeVerifier",
    "ConsistencyProof",
    "Ed25519Verifier",
    "Hash",
    "InclusionProof",
    "LogKey",
    "NodeId",
    "PendingReceipt",
    "Receipt",
    "ReceiptInvalid",
    "TreeRangeInvalid",
    "VerifiedReceipt",
    "audit_log",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "pending_receipt",
    "pending_receipt_of",
    "root_from_source",
    "sort_committee_lines",
    "verify_checkpoint",
    "verify_consistency",
    "verify_cosigned",
    "verify_inclusion",
    "verify_receipt",
]
