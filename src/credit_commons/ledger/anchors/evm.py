"""Anchoring to an EVM chain: ``Anchor.vy`` emits one ``Anchored`` event per checkpoint.

The contract stores nothing; the event log is the record, and a receipt locates one event
by chain, transaction, block and log index::

    eip155:<chain id>:0x<transaction hash>:<block number>:<log index>

(the chain is named as in CAIP-2).  Reading back re-fetches the transaction receipt from the
node and accepts only an ``Anchored`` event emitted by the configured contract, which only
its deployer can call.  Transactions are signed locally; the node never sees the key, and no
error message or ``repr`` contains it.

web3, eth-account and Vyper (about a second to import) are imported where they are used, so
loading this module costs nothing to a deployment that anchors to a file only.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeAlias

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, ConfigurationError
from credit_commons.ledger.anchors.base import (
    AnchorError,
    AnchorInvalid,
    AnchorNotFound,
    AnchorPublishFailed,
    AnchorReceipt,
    AnchorRecord,
    AnchorUnavailable,
    check_backend_name,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress, Hash32
    from web3 import Web3
    from web3.types import LogReceipt, TxReceipt

__all__ = [
    "ANCHORED_TOPIC",
    "AnchorContract",
    "EvmAnchorBackend",
    "EvmLocator",
    "Sender",
    "compile_anchor_contract",
    "deploy_anchor_contract",
]

#: A local account, or its private key (32 bytes, or hex with or without ``0x``).
Sender: TypeAlias = "LocalAccount | str | bytes"

# topic0 of a non-anonymous event is the keccak-256 of its canonical signature (Solidity ABI
# specification, "Events"; Vyper follows it): keccak256("Anchored(string,uint256,bytes32)").
ANCHORED_TOPIC = bytes.fromhex("19edafebe305762166bae0fc398259e009313b544151afb8f4ace189a1127f2f")

_CONTRACT_FILE = "Anchor.vy"
_LOCATOR = re.compile(
    "eip155:([1-9][0-9]{0,19}):0x([0-9a-f]{64}):(0|[1-9][0-9]{0,19}):(0|[1-9][0-9]{0,9})"
)


@dataclass(frozen=True)
class AnchorContract:
    """The compiled ``Anchor.vy``: its ABI (as canonical JSON text) and deployment bytecode."""

    abi_json: str
    bytecode: bytes

    @property
    def abi(self) -> list[JsonObject]:
        """A fresh copy of the ABI, so no caller can alter the cached one."""
        abi: list[JsonObject] = json.loads(self.abi_json)
        return abi


@functools.cache
def compile_anchor_contract() -> AnchorContract:
    """Compile the ``Anchor.vy`` shipped in this package, once per process.

    The source pins its compiler (``# pragma version ==0.4.3``) and EVM version (Cancun,
    which current main networks and rollups run), so the bytecode is reproducible from the
    source for anyone verifying a deployment.  Raises :class:`ConfigurationError` if the
    installed Vyper refuses the source (a different compiler version, for instance).
    """
    import vyper  # noqa: PLC0415  # deferred: Vyper, only when anchoring to a chain

    source = resources.files(__package__).joinpath(_CONTRACT_FILE).read_text(encoding="utf-8")
    try:
        output = vyper.compile_code(
            source, contract_path=_CONTRACT_FILE, output_formats=["abi", "bytecode"]
        )
    except Exception as e:
        # Vyper's exceptions share no public base class worth naming here.
        raise ConfigurationError(f"{_CONTRACT_FILE} does not compile: {e}") from e
    abi_json = json.dumps(output["abi"], sort_keys=True, separators=(",", ":"))
    return AnchorContract(abi_json=abi_json, bytecode=bytes.fromhex(output["bytecode"][2:]))


@dataclass(frozen=True)
class EvmLocator:
    """Where an ``Anchored`` event is: chain id, transaction hash, block number, log index.

    Valid once built: raises :class:`AnchorInvalid` for a non-positive chain id, a
    transaction hash that is not 32 bytes, or a negative block number or log index.
    """

    chain_id: int
    tx_hash: bytes
    block_number: int
    log_index: int

    def __post_init__(self) -> None:
        for field, low in (("chain_id", 1), ("block_number", 0), ("log_index", 0)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise AnchorInvalid(f"EVM locator {field} must be an integer >= {low}")
        if not isinstance(self.tx_hash, bytes) or len(self.tx_hash) != 32:
            raise AnchorInvalid("EVM locator transaction hash must be 32 bytes")
        object.__setattr__(self, "tx_hash", bytes(self.tx_hash))

    def format(self) -> str:
        """``eip155:<chain id>:0x<tx hash>:<block number>:<log index>``."""
        return f"eip155:{self.chain_id}:0x{self.tx_hash.hex()}:{self.block_number}:{self.log_index}"

    @classmethod
    def parse(cls, text: str) -> EvmLocator:
        """Parse :meth:`format` output; raises :class:`AnchorInvalid` unless canonical."""
        match = _LOCATOR.fullmatch(text)
        if match is None:
            raise AnchorInvalid(
                "EVM locator must be eip155:<chain id>:0x<tx hash>:<block>:<log index>"
            )
        return cls(int(match[1]), bytes.fromhex(match[2]), int(match[3]), int(match[4]))


@contextmanager
def _translated(error: type[AnchorError], what: str) -> Iterator[None]:
    """Translate whatever the provider raises into ``error``, keeping the original as cause.

    Providers raise disjoint families — ``web3.exceptions`` for RPC errors and timeouts,
    ``requests``/``OSError`` for transport, ``eth_tester`` for the in-process chain, ``eth_abi``
    for decoding — so the boundary catches them all.  The detail carries only the exception
    type: messages of transport errors contain the RPC URL, which often embeds an API key.
    """
    try:
        yield
    except CommonsError:
        raise
    except Exception as e:
        raise error(f"{what} failed ({type(e).__name__})") from e


def _as_account(sender: Sender) -> LocalAccount:
    from eth_account import Account  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain
    from eth_account.signers.local import LocalAccount  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain

    if isinstance(sender, LocalAccount):
        return sender
    try:
        account: LocalAccount = Account.from_key(sender)
    except Exception:
        # "from None": the original exception may quote the malformed key.
        raise ConfigurationError("the anchor sender's private key is malformed") from None
    return account


def _sign_and_send(web3: Web3, account: LocalAccount, tx: Any) -> Hash32:
    from eth_typing import Hash32  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain

    signed = account.sign_transaction(tx)
    return Hash32(bytes(web3.eth.send_raw_transaction(signed.raw_transaction)))


def deploy_anchor_contract(
    web3: Web3, sender: Sender, *, timeout: float = 120.0
) -> ChecksumAddress:
    """Deploy ``Anchor.vy`` from ``sender`` (who becomes its owner); return its address.

    Waits up to ``timeout`` seconds for the deployment to be mined.  Raises
    :class:`ConfigurationError` for a malformed private key and :class:`AnchorPublishFailed`
    if the transaction cannot be sent, is not mined in time or fails.
    """
    from web3 import Web3  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain

    account = _as_account(sender)
    compiled = compile_anchor_contract()
    factory = web3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    with _translated(AnchorPublishFailed, "deploying the anchor contract"):
        nonce = web3.eth.get_transaction_count(account.address, "pending")
        tx = factory.constructor().build_transaction({"from": account.address, "nonce": nonce})
        tx_hash = _sign_and_send(web3, account, tx)
        receipt = web3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    address = receipt.get("contractAddress")
    if receipt["status"] != 1 or not address:
        raise AnchorPublishFailed("anchor contract deployment failed")
    return Web3.to_checksum_address(address)


class EvmAnchorBackend:
    """Anchors records by calling ``anchor`` on a deployed ``Anchor.vy``.

    ``sender`` must be the contract's owner (its deployer).  ``publish`` returns once the
    transaction is mined with at least ``confirmations`` blocks on top of it; ``read_back``
    counts an anchor only at that depth too.  ``timeout`` bounds each wait; ``sleep`` and
    ``clock`` are injectable so tests need not wait.  No network I/O happens here.

    Raises :class:`ConfigurationError` for a malformed contract address, private key,
    confirmation count or name.
    """

    def __init__(
        self,
        web3: Web3,
        contract_address: str,
        sender: Sender,
        *,
        confirmations: int = 0,
        name: str = "evm",
        timeout: float = 120.0,
        poll_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from web3 import Web3  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain

        if (
            isinstance(confirmations, bool)
            or not isinstance(confirmations, int)
            or confirmations < 0
        ):
            raise ConfigurationError("confirmations must be a non-negative integer")
        if not Web3.is_address(contract_address):
            raise ConfigurationError("the anchor contract address is malformed")
        self.name = check_backend_name(name)
        self._web3 = web3
        self._account = _as_account(sender)
        self._address = Web3.to_checksum_address(contract_address)
        self._contract = web3.eth.contract(address=self._address, abi=compile_anchor_contract().abi)
        self._confirmations = confirmations
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock
        self._chain_id: int | None = None
        # Nonces are taken from the node's pending count; one send at a time per backend
        # keeps two threads from signing two transactions with the same nonce.
        self._send_lock = threading.Lock()

    @classmethod
    def from_rpc_url(
        cls,
        url: str,
        private_key: str | bytes,
        contract_address: str,
        *,
        confirmations: int = 0,
        request_timeout: float = 30.0,
        name: str = "evm",
    ) -> EvmAnchorBackend:
        """A backend speaking JSON-RPC over HTTP(S) to ``url``; nothing is contacted yet.

        Raises :class:`ConfigurationError` for a malformed key, address or count.
        """
        from web3 import Web3  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain

        provider = Web3.HTTPProvider(url, request_kwargs={"timeout": request_timeout})
        return cls(
            Web3(provider),
            contract_address,
            private_key,
            confirmations=confirmations,
            name=name,
        )

    @property
    def contract_address(self) -> ChecksumAddress:
        """The anchor contract this backend writes to and reads from."""
        return self._address

    @property
    def sender_address(self) -> ChecksumAddress:
        """The address transactions are sent from (never the key)."""
        from eth_typing import ChecksumAddress  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain

        return ChecksumAddress(self._account.address)

    def __repr__(self) -> str:
        return (
            f"EvmAnchorBackend(contract={self._address}, sender={self._account.address}, "
            f"confirmations={self._confirmations}, name={self.name!r})"
        )

    def _chain(self, error: type[AnchorError]) -> int:
        if self._chain_id is None:
            with _translated(error, "reading the chain id"):
                self._chain_id = int(self._web3.eth.chain_id)
        return self._chain_id

    def publish(self, record: AnchorRecord, /) -> AnchorReceipt:
        """Send ``anchor(origin, size, root)``, wait for it, and return its receipt.

        Steps: 1. sign and send the transaction; 2. wait for it to be mined; 3. require
        success; 4. find the one ``Anchored`` event of this contract and check that it states
        ``record``; 5. wait for ``confirmations`` blocks and check it is still there.

        Raises :class:`AnchorPublishFailed` if any RPC fails, the transaction reverts (a
        sender that is not the owner, for instance), or it is not mined and confirmed within
        ``timeout``; :class:`AnchorInvalid` if a successful transaction did not emit the
        expected event (the address is not an ``Anchor.vy``).
        """
        web3 = self._web3
        chain_id = self._chain(AnchorPublishFailed)
        call = self._contract.functions.anchor(record.origin, record.size, record.root)
        # 1. Gas estimation inside build_transaction also surfaces reverts before sending.
        with self._send_lock, _translated(AnchorPublishFailed, "sending the anchor transaction"):
            nonce = web3.eth.get_transaction_count(self._account.address, "pending")
            tx = call.build_transaction(
                {"from": self._account.address, "nonce": nonce, "chainId": chain_id}
            )
            tx_hash = _sign_and_send(web3, self._account, tx)
        # 2.
        with _translated(AnchorPublishFailed, "waiting for the anchor transaction"):
            receipt = web3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self._timeout, poll_latency=self._poll_interval
            )
        # 3.
        if receipt["status"] != 1:
            raise AnchorPublishFailed("the anchor transaction reverted")
        # 4.
        logs = [log for log in receipt["logs"] if self._is_ours(log)]
        if len(logs) != 1:
            raise AnchorInvalid("the anchor transaction did not emit exactly one Anchored event")
        if self._decode(logs[0]) != record:
            raise AnchorInvalid("the Anchored event does not state the record sent")
        locator = EvmLocator(chain_id, tx_hash, receipt["blockNumber"], logs[0]["logIndex"])
        anchor_receipt = AnchorReceipt(self.name, locator.format())
        # 5.
        if self._confirmations:
            self._await_confirmations(locator.block_number)
            try:
                self.read_back(anchor_receipt)
            except (AnchorNotFound, AnchorUnavailable) as e:
                raise AnchorPublishFailed("the anchor was not confirmed") from e
        return anchor_receipt

    def _await_confirmations(self, block_number: int) -> None:
        deadline = self._clock() + self._timeout
        while True:
            with _translated(AnchorPublishFailed, "reading the block number"):
                latest = self._web3.eth.block_number
            if latest - block_number >= self._confirmations:
                return
            if self._clock() >= deadline:
                raise AnchorPublishFailed("the anchor was not confirmed in time")
            self._sleep(self._poll_interval)

    def read_back(self, receipt: AnchorReceipt, /) -> AnchorRecord:
        """Fetch the transaction receipt again and decode the ``Anchored`` event it locates.

        Steps: 1. parse the locator and check the chain id; 2. fetch the transaction
        receipt; 3. require it to be successful and still in the located block; 4. take the
        log at the located index, which must come from this contract and be ``Anchored``;
        5. require ``confirmations`` blocks on top.

        Raises :class:`AnchorInvalid` for a receipt of another backend, a malformed
        locator, another chain, a failed transaction, a log index the transaction does not
        have, or a log of another contract or event; :class:`AnchorNotFound` if the
        transaction is unknown, now in another block or removed (a reorganisation), or not
        yet deep enough; :class:`AnchorUnavailable` if the node cannot be asked.
        """
        # 1.
        if receipt.backend != self.name:
            raise AnchorInvalid(f"receipt is for backend {receipt.backend!r}, not {self.name!r}")
        locator = EvmLocator.parse(receipt.locator)
        if locator.chain_id != self._chain(AnchorUnavailable):
            raise AnchorInvalid("receipt is for another chain")
        # 2.
        tx_receipt = self._fetch_receipt(locator.tx_hash)
        # 3.
        if tx_receipt["status"] != 1:
            raise AnchorInvalid("the located transaction failed")
        if tx_receipt["blockNumber"] != locator.block_number:
            raise AnchorNotFound("the anchor transaction is no longer in the located block")
        # 4.
        logs = [log for log in tx_receipt["logs"] if log["logIndex"] == locator.log_index]
        if len(logs) != 1:
            raise AnchorInvalid("the located transaction has no log at that index")
        log = logs[0]
        if log.get("removed"):
            raise AnchorNotFound("the anchor log was removed by a reorganisation")
        if not self._is_ours(log):
            raise AnchorInvalid("the located log is not an Anchored event of this contract")
        record = self._decode(log)
        # 5.
        if self._confirmations:
            with _translated(AnchorUnavailable, "reading the block number"):
                latest = self._web3.eth.block_number
            if latest - locator.block_number < self._confirmations:
                raise AnchorNotFound("the anchor is not yet confirmed")
        return record

    def _fetch_receipt(self, tx_hash: bytes) -> TxReceipt:
        from eth_typing import Hash32  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain
        from web3.exceptions import TransactionNotFound  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain

        with _translated(AnchorUnavailable, "fetching the transaction receipt"):
            try:
                tx_receipt: TxReceipt | None = self._web3.eth.get_transaction_receipt(
                    Hash32(tx_hash)
                )
            except TransactionNotFound as e:
                raise AnchorNotFound("the anchor transaction is unknown to the node") from e
        # Some providers answer null for an unknown (or pending) transaction.
        if tx_receipt is None:
            raise AnchorNotFound("the anchor transaction is unknown to the node")
        return tx_receipt

    def _is_ours(self, log: LogReceipt) -> bool:
        from web3 import Web3  # noqa: PLC0415  # deferred: web3, only when anchoring to a chain

        topics = log["topics"]
        return (
            Web3.to_checksum_address(log["address"]) == self._address
            and len(topics) == 2
            and bytes(topics[0]) == ANCHORED_TOPIC
        )

    def _decode(self, log: LogReceipt) -> AnchorRecord:
        with _translated(AnchorInvalid, "decoding the Anchored event"):
            args = self._contract.events.Anchored().process_log(log)["args"]
            return AnchorRecord(args["origin"], args["size"], args["root"])
