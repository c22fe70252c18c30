"""Anchoring transparency-log checkpoints to external ledgers.

Backends are pure of any database: the file journal (the embedded default) and an EVM
contract.  The EVM names load web3 and Vyper on first access only, so a deployment that
anchors to a file does not pay for importing them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from credit_commons.ledger.anchors.file import FileAnchorBackend, verify_journal

if TYPE_CHECKING:
    from credit_commons.ledger.anchors.evm import (
        AnchorContract,
        EvmAnchorBackend,
        EvmLocator,
        compile_anchor_contract,
        deploy_anchor_contract,
    )

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

_LAZY = frozenset(
    {
        "AnchorContract",
        "EvmAnchorBackend",
        "EvmLocator",
        "compile_anchor_contract",
        "deploy_anchor_contract",
    }
)


def __getattr__(name: str) -> Any:
    # PEP 562: import the EVM module (web3, Vyper: about a second) only when it is used.
    if name in _LAZY:
        module = importlib.import_module("credit_commons.ledger.anchors.evm")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
