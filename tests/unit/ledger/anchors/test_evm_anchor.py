"""Unit tests of the EVM anchor backend against an in-process chain (eth-tester, py-evm).

One chain and one deployment serve the whole module; tests that rewind the chain take a
snapshot first and revert to it, so the others see a consistent history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3
from web3.providers.base import BaseProvider

from credit_commons.core.errors import ConfigurationError
from credit_commons.ledger.anchors import (
    AnchorBackend,
    AnchorInvalid,
    AnchorNotFound,
    AnchorPublishFailed,
    AnchorReceipt,
    AnchorRecord,
    AnchorUnavailable,
    EvmAnchorBackend,
    EvmLocator,
    compile_anchor_contract,
    deploy_anchor_contract,
)
from credit_commons.ledger.anchors.evm import ANCHORED_TOPIC


def record(i: int) -> AnchorRecord:
    return AnchorRecord(f"log.example/{i}", i * 1000, hashlib.sha256(str(i).encode()).digest())


def funded(w3: Web3) -> LocalAccount:
    account: LocalAccount = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account.address, "value": 10**18})
    return account


@pytest.fixture(scope="module")
def w3() -> Web3:
    return Web3(EthereumTesterProvider())


@pytest.fixture(scope="module")
def owner(w3: Web3) -> LocalAccount:
    return funded(w3)


@pytest.fixture(scope="module")
def address(w3: Web3, owner: LocalAccount) -> str:
    return str(deploy_anchor_contract(w3, owner))


@pytest.fixture
def backend(w3: Web3, address: str, owner: LocalAccount) -> EvmAnchorBackend:
    return EvmAnchorBackend(w3, address, owner)


@pytest.fixture
def rewind(w3: Web3) -> Iterator[None]:
    snapshot = w3.testing.snapshot()
    yield
    w3.testing.revert(snapshot)


def with_locator(receipt: AnchorReceipt, **changes: Any) -> AnchorReceipt:
    locator = replace(EvmLocator.parse(receipt.locator), **changes)
    return AnchorReceipt(receipt.backend, locator.format())


def test_publish_and_read_back_several(backend: EvmAnchorBackend, w3: Web3) -> None:
    assert isinstance(backend, AnchorBackend)
    receipts = [backend.publish(record(i)) for i in range(4)]
    assert [backend.read_back(r) for r in receipts] == [record(i) for i in range(4)]
    locators = [EvmLocator.parse(r.locator) for r in receipts]
    assert {loc.chain_id for loc in locators} == {w3.eth.chain_id}
    assert len({loc.tx_hash for loc in locators}) == 4
    assert [loc.block_number for loc in locators] == sorted(loc.block_number for loc in locators)
    for receipt, locator in zip(receipts, locators, strict=True):
        assert receipt.backend == "evm"
        assert receipt.locator == locator.format()
        assert AnchorReceipt.from_json(receipt.to_json()) == receipt


def test_extreme_values_round_trip(backend: EvmAnchorBackend) -> None:
    wide = AnchorRecord("é" * 127 + "x", 2**64 - 1, b"\xff" * 32)
    assert backend.read_back(backend.publish(wide)) == wide


def test_private_key_as_bytes_or_hex(w3: Web3, address: str, owner: LocalAccount) -> None:
    for key in (bytes(owner.key), owner.key.hex(), "0x" + owner.key.hex()):
        backend = EvmAnchorBackend(w3, address, key)
        assert backend.sender_address == owner.address
        assert owner.key.hex() not in repr(backend)
        assert backend.read_back(backend.publish(record(7))) == record(7)


def test_non_owner_cannot_anchor(w3: Web3, address: str) -> None:
    intruder = EvmAnchorBackend(w3, address, funded(w3))
    with pytest.raises(AnchorPublishFailed) as caught:
        intruder.publish(record(1))
    assert caught.value.retryable


def test_contract_abi_and_owner(w3: Web3, address: str, owner: LocalAccount) -> None:
    abi = compile_anchor_contract().abi
    event = next(item for item in abi if item.get("name") == "Anchored")
    assert [(i["name"], i["type"], i["indexed"]) for i in event["inputs"]] == [
        ("origin", "string", False),
        ("size", "uint256", False),
        ("root", "bytes32", True),
    ]
    function = next(item for item in abi if item.get("name") == "anchor")
    assert [i["type"] for i in function["inputs"]] == ["string", "uint256", "bytes32"]
    # keccak256("Anchored(string,uint256,bytes32)"), as the deployed contract emits it.
    assert ANCHORED_TOPIC.hex() == (
        "19edafebe305762166bae0fc398259e009313b544151afb8f4ace189a1127f2f"
    )
    assert bytes(Web3.keccak(text="Anchored(string,uint256,bytes32)")) == ANCHORED_TOPIC
    contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
    assert contract.functions.owner().call() == owner.address


def test_compilation_is_cached() -> None:
    first = compile_anchor_contract()
    hits = compile_anchor_contract.cache_info().hits
    assert compile_anchor_contract() is first
    assert compile_anchor_contract.cache_info().hits == hits + 1
    assert compile_anchor_contract.cache_info().misses == 1
    # Each caller gets its own ABI copy; mutating it leaves the cache intact.
    first.abi.clear()
    assert compile_anchor_contract().abi


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"tx_hash": b"\x11" * 32}, AnchorNotFound),
        ({"log_index": 5}, AnchorInvalid),
        ({"block_number": 1}, AnchorNotFound),
        ({"chain_id": 1}, AnchorInvalid),
    ],
)
def test_tampered_locator_is_rejected(
    backend: EvmAnchorBackend, changes: dict[str, Any], error: type[Exception]
) -> None:
    receipt = backend.publish(record(2))
    with pytest.raises(error):
        backend.read_back(with_locator(receipt, **changes))


@pytest.mark.parametrize(
    "receipt",
    [
        AnchorReceipt("file", "eip155:1:0x" + "00" * 32 + ":1:0"),
        AnchorReceipt("evm", "0:" + "00" * 32),
        AnchorReceipt("evm", "eip155:1:0x" + "00" * 31 + ":1:0"),
        AnchorReceipt("evm", "eip155:1:0x" + "AB" * 32 + ":1:0"),
        AnchorReceipt("evm", "eip155:0:0x" + "00" * 32 + ":1:0"),
        AnchorReceipt("evm", "eip155:1:0x" + "00" * 32 + ":01:0"),
        AnchorReceipt("evm", "eip155:1:0x" + "00" * 32 + ":1:0:9"),
    ],
)
def test_foreign_or_malformed_receipts_are_rejected(
    backend: EvmAnchorBackend, receipt: AnchorReceipt
) -> None:
    with pytest.raises(AnchorInvalid):
        backend.read_back(receipt)


def test_log_of_another_contract_is_refused(
    w3: Web3, owner: LocalAccount, backend: EvmAnchorBackend
) -> None:
    # Another Anchor.vy, deployed and owned by the same key, is still not the configured one.
    other = EvmAnchorBackend(w3, deploy_anchor_contract(w3, owner), owner)
    receipt = other.publish(record(3))
    assert other.read_back(receipt) == record(3)
    with pytest.raises(AnchorInvalid, match="not an Anchored event of this contract"):
        backend.read_back(receipt)


def test_backend_pointed_at_another_contract_refuses_its_logs(
    w3: Web3, owner: LocalAccount, backend: EvmAnchorBackend
) -> None:
    receipt = backend.publish(record(4))
    elsewhere = EvmAnchorBackend(w3, deploy_anchor_contract(w3, owner), owner)
    with pytest.raises(AnchorInvalid):
        elsewhere.read_back(receipt)


def test_transaction_without_anchor_log_is_refused(
    w3: Web3, owner: LocalAccount, backend: EvmAnchorBackend
) -> None:
    tx_hash = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": owner.address, "value": 1})
    block = w3.eth.get_transaction_receipt(tx_hash)["blockNumber"]
    locator = EvmLocator(w3.eth.chain_id, bytes(tx_hash), block, 0)
    with pytest.raises(AnchorInvalid, match="no log"):
        backend.read_back(AnchorReceipt("evm", locator.format()))


def test_failed_transaction_is_refused(w3: Web3, address: str, backend: EvmAnchorBackend) -> None:
    # Sent with fixed gas, so no estimate stops it: the chain records a failed transaction.
    intruder = funded(w3)
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=compile_anchor_contract().abi
    )
    tx = contract.functions.anchor("x", 1, bytes(32)).build_transaction(
        {
            "from": intruder.address,
            "gas": 100_000,
            "nonce": w3.eth.get_transaction_count(intruder.address),
        }
    )
    tx_hash = w3.eth.send_raw_transaction(intruder.sign_transaction(tx).raw_transaction)
    mined = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert mined["status"] == 0
    locator = EvmLocator(w3.eth.chain_id, bytes(tx_hash), mined["blockNumber"], 0)
    with pytest.raises(AnchorInvalid, match="failed"):
        backend.read_back(AnchorReceipt("evm", locator.format()))


@pytest.mark.usefixtures("rewind")
def test_reorganised_away_is_not_found(w3: Web3, backend: EvmAnchorBackend) -> None:
    snapshot = w3.testing.snapshot()
    receipt = backend.publish(record(5))
    w3.testing.revert(snapshot)
    with pytest.raises(AnchorNotFound):
        backend.read_back(receipt)


@pytest.mark.usefixtures("rewind")
def test_moved_to_another_block_is_not_found(
    w3: Web3, owner: LocalAccount, address: str, backend: EvmAnchorBackend
) -> None:
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=compile_anchor_contract().abi
    )
    tx = contract.functions.anchor("log.example/m", 9, bytes(32)).build_transaction(
        {"from": owner.address, "nonce": w3.eth.get_transaction_count(owner.address)}
    )
    raw = owner.sign_transaction(tx).raw_transaction
    snapshot = w3.testing.snapshot()
    first = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))
    locator = EvmLocator(w3.eth.chain_id, bytes(first["transactionHash"]), first["blockNumber"], 0)
    receipt = AnchorReceipt("evm", locator.format())
    assert backend.read_back(receipt) == AnchorRecord("log.example/m", 9, bytes(32))
    # The same signed transaction lands again, one block later, on the rewritten chain.
    w3.testing.revert(snapshot)
    w3.testing.mine(1)
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))
    with pytest.raises(AnchorNotFound, match="no longer in the located block"):
        backend.read_back(receipt)


def test_confirmations_wait_for_blocks(w3: Web3, address: str, owner: LocalAccount) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        w3.testing.mine(1)

    backend = EvmAnchorBackend(w3, address, owner, confirmations=3, poll_interval=0.01, sleep=sleep)
    receipt = backend.publish(record(6))
    assert len(slept) == 3
    assert w3.eth.block_number - EvmLocator.parse(receipt.locator).block_number == 3
    assert backend.read_back(receipt) == record(6)
    deeper = EvmAnchorBackend(w3, address, owner, confirmations=10)
    with pytest.raises(AnchorNotFound, match="not yet confirmed"):
        deeper.read_back(receipt)
    w3.testing.mine(7)
    assert deeper.read_back(receipt) == record(6)


def test_confirmation_timeout_fails_publish(w3: Web3, address: str, owner: LocalAccount) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    backend = EvmAnchorBackend(
        w3,
        address,
        owner,
        confirmations=2,
        timeout=5.0,
        poll_interval=1.0,
        sleep=sleep,
        clock=lambda: now[0],
    )
    with pytest.raises(AnchorPublishFailed, match="not confirmed in time"):
        backend.publish(record(8))
    assert now[0] == 5.0


class DownProvider(BaseProvider):
    """A provider whose transport always fails, quoting a URL with a secret in it."""

    def make_request(self, method: Any, params: Any) -> Any:
        raise ConnectionError("cannot reach https://rpc.example/v3/SECRET-API-KEY")

    def is_connected(self, show_traceback: bool = False) -> bool:
        return False


def test_unreachable_node_is_translated(address: str, owner: LocalAccount) -> None:
    backend = EvmAnchorBackend(Web3(DownProvider()), address, owner)
    with pytest.raises(AnchorPublishFailed) as published:
        backend.publish(record(1))
    locator = EvmLocator(1, b"\x01" * 32, 1, 0)
    with pytest.raises(AnchorUnavailable) as read:
        backend.read_back(AnchorReceipt("evm", locator.format()))
    for caught in (published, read):
        assert "SECRET" not in caught.value.diagnostics()
        assert isinstance(caught.value.__cause__, ConnectionError)
        assert caught.value.retryable


def test_deploy_failure_is_translated(owner: LocalAccount) -> None:
    with pytest.raises(AnchorPublishFailed):
        deploy_anchor_contract(Web3(DownProvider()), owner)


def test_from_rpc_url_contacts_nothing(address: str, owner: LocalAccount) -> None:
    backend = EvmAnchorBackend.from_rpc_url(
        "https://rpc.invalid/v3/key", "0x" + owner.key.hex(), address, confirmations=2
    )
    assert backend.contract_address == Web3.to_checksum_address(address)
    assert backend.sender_address == owner.address
    assert owner.key.hex() not in repr(backend)


@pytest.mark.parametrize("key", ["0x1234", "not hex at all", b"\x00" * 31, "0x" + "00" * 32])
def test_malformed_private_key_is_a_configuration_error(
    w3: Web3, address: str, key: str | bytes
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        EvmAnchorBackend(w3, address, key)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    text = key if isinstance(key, str) else key.hex()
    assert text not in caught.value.diagnostics()


@pytest.mark.parametrize(
    ("contract", "kwargs"),
    [
        ("0x1234", {}),
        ("not an address", {}),
        (None, {"confirmations": -1}),
        (None, {"confirmations": True}),
        (None, {"name": "Not A Name"}),
    ],
)
def test_bad_configuration_is_refused(
    w3: Web3, address: str, owner: LocalAccount, contract: str | None, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        EvmAnchorBackend(w3, contract or address, owner, **kwargs)
