"""Anchoring transparency-log checkpoints to external ledgers.

Backends are pure of any database: the file journal (the embedded default) and an EVM
contract.  The EVM backend imports web3 and Vyper only when it is used, so a deployment that
anchors to a file does not pay for importing them.
"""

from __future__ import annotations

from credit_commons.ledger.anchors.base import (
    AnchorBackend,
    AnchorError,
    AnchorInvalid,
    AnchorNotFound,
    AnchorPublishFailed,
    AnchorReceipt,
    AnchorRecord,
    AnchorUnavailable,
    backoff_delay,
)
from credit_commons.ledger.anchors.evm import (
    AnchorContract,
    EvmAnchorBackend,
    EvmLocator,
    compile_anchor_contract,
    deploy_anchor_contract,
)
from credit_commons.ledger.anchors.file import FileAnchorBackend, verify_journal

__all__ = [
    "AnchorBackend",
    "AnchorContract",
    "AnchorError",
    "AnchorInvalid",
    "AnchorNotFound",
    "AnchorPublishFailed",
    "AnchorReceipt",
    "AnchorRecord",
    "AnchorUnavailable",
    "EvmAnchorBackend",
    "EvmLocator",
    "FileAnchorBackend",
    "backoff_delay",
    "compile_anchor_contract",
    "deploy_anchor_contract",
    "verify_journal",
]
