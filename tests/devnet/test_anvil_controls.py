"""anvil's controls on a devnet chain: snapshots, the clock, balances, impersonation, reset and
state images. Driven through JSON-RPC on a bare `DevChain` (no sockets, no sleeping)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account

from opengradient.devnet.chain.evm import DevChain
from opengradient.devnet.chain.keys import dev_accounts
from opengradient.devnet.chain.snapshots import ChainImageError

ACCOUNTS = dev_accounts(2)
ALICE, BOB = ACCOUNTS[0].address, ACCOUNTS[1].address
STRANGER = "0x" + "5a" * 20
ETH = 10**18


def call(chain: DevChain, method: str, *params: Any) -> Any:
    response = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert isinstance(response, dict)
    if "error" in response:
        raise AssertionError(f"{method}: {response['error']}")
    return response["result"]


def error(chain: DevChain, method: str, *params: Any) -> dict[str, Any]:
    response = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert isinstance(response, dict) and "error" in response, response
    return response["error"]


def balance(chain: DevChain, address: str) -> int:
    return int(call(chain, "eth_getBalance", address, "latest"), 16)


def head(chain: DevChain) -> dict[str, Any]:
    return call(chain, "eth_getBlockByNumber", "latest", False)


@pytest.fixture
def chain() -> Iterator[DevChain]:
    c = DevChain(31337, funded={ALICE: 100 * ETH, BOB: 100 * ETH})
    yield c
    c.close()


def send(chain: DevChain, sender: str, to: str, value: int) -> str:
    return call(chain, "eth_sendTransaction", {"from": sender, "to": to, "value": hex(value)})


def test_impersonated_unsigned_send_moves_value_and_records_the_sender(chain: DevChain) -> None:
    chain.set_balance(STRANGER, 5 * ETH)
    refused = error(chain, "eth_sendTransaction", {"from": STRANGER, "to": BOB, "value": "0x1"})
    assert "impersonate" in refused["message"]
    assert call(chain, "anvil_impersonateAccount", STRANGER) is None
    assert STRANGER.lower() in [a.lower() for a in call(chain, "eth_accounts")]
    tx_hash = send(chain, STRANGER, BOB, ETH)
    receipt = call(chain, "eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1" and receipt["from"].lower() == STRANGER
    assert balance(chain, BOB) == 101 * ETH
    assert call(chain, "eth_getTransactionByHash", tx_hash)["from"].lower() == STRANGER
    call(chain, "anvil_stopImpersonatingAccount", STRANGER)
    assert "impersonate" in error(chain, "eth_sendTransaction", {"from": STRANGER, "to": BOB})["message"]


def test_an_unlocked_account_signs_for_real(chain: DevChain) -> None:
    chain.unlock(ACCOUNTS[0].private_key)
    tx_hash = send(chain, ALICE, BOB, 3)
    raw_tx = call(chain, "eth_getTransactionByHash", tx_hash)
    assert raw_tx["from"].lower() == ALICE.lower()
    assert balance(chain, BOB) == 100 * ETH + 3


def test_revert_returns_blocks_balances_and_receipts_and_drops_later_snapshots(chain: DevChain) -> None:
    chain.impersonate(ALICE)
    first = call(chain, "evm_snapshot")
    number = head(chain)["number"]
    tx_hash = send(chain, ALICE, BOB, ETH)
    second = call(chain, "evm_snapshot")
    send(chain, ALICE, BOB, ETH)
    assert balance(chain, BOB) == 102 * ETH
    assert call(chain, "evm_revert", first) is True
    assert balance(chain, BOB) == 100 * ETH
    assert head(chain)["number"] == number
    assert call(chain, "eth_getTransactionReceipt", tx_hash) is None
    assert call(chain, "evm_revert", second) is False  # later snapshots are gone, as anvil's
    assert call(chain, "evm_revert", first) is False  # and so is the one reverted to
    again = send(chain, ALICE, BOB, 2 * ETH)  # the chain goes on from the reverted state
    assert call(chain, "eth_getTransactionReceipt", again)["status"] == "0x1"
    assert balance(chain, BOB) == 102 * ETH


def test_increase_time_and_next_timestamp_drive_block_times(chain: DevChain) -> None:
    before = int(head(chain)["timestamp"], 16)
    assert int(call(chain, "evm_increaseTime", 86_400), 16) == 86_400
    call(chain, "evm_mine")
    assert int(head(chain)["timestamp"], 16) >= before + 86_400
    target = int(head(chain)["timestamp"], 16) + 1_000
    call(chain, "evm_setNextBlockTimestamp", hex(target))
    call(chain, "evm_mine")
    assert int(head(chain)["timestamp"], 16) == target
    call(chain, "evm_mine")
    assert int(head(chain)["timestamp"], 16) >= target  # later blocks continue from there
    call(chain, "evm_mine", target + 5_000)
    assert int(head(chain)["timestamp"], 16) == target + 5_000
    assert chain.now() >= target + 5_000
    assert "before the latest block" in error(chain, "evm_setNextBlockTimestamp", hex(target))["message"]
    assert error(chain, "evm_increaseTime", -5)["code"] == -32602


def test_mine_many_and_set_balance_code_storage_nonce(chain: DevChain) -> None:
    start = int(head(chain)["number"], 16)
    call(chain, "anvil_mine", "0x3")
    assert int(head(chain)["number"], 16) == start + 3
    call(chain, "anvil_setBalance", STRANGER, hex(7 * ETH))
    call(chain, "hardhat_setBalance", BOB, hex(9))
    assert balance(chain, STRANGER) == 7 * ETH and balance(chain, BOB) == 9
    call(chain, "anvil_setCode", STRANGER, "0x6001600055")
    assert call(chain, "eth_getCode", STRANGER, "latest") == "0x6001600055"
    call(chain, "anvil_setStorageAt", STRANGER, "0x" + "00" * 31 + "02", "0x" + "00" * 31 + "2a")
    assert int(call(chain, "eth_getStorageAt", STRANGER, "0x2", "latest"), 16) == 42
    call(chain, "anvil_setNonce", BOB, "0x7")
    assert call(chain, "eth_getTransactionCount", BOB, "latest") == "0x7"


def test_reset_returns_to_the_base_state(chain: DevChain) -> None:
    chain.impersonate(STRANGER)
    chain.set_balance(STRANGER, ETH)
    chain.mark_base()
    send(chain, STRANGER, BOB, 1)
    call(chain, "evm_increaseTime", 3_600)
    call(chain, "evm_snapshot")
    call(chain, "anvil_reset")
    assert balance(chain, BOB) == 100 * ETH and balance(chain, STRANGER) == ETH
    assert chain.now() < int(head(chain)["timestamp"], 16) + 3_600
    assert "impersonate" in error(chain, "eth_sendTransaction", {"from": STRANGER, "to": BOB})["message"]
    assert call(chain, "evm_revert", "0x1") is False


def test_a_state_image_continues_on_a_new_chain(chain: DevChain) -> None:
    signed = Account.sign_transaction(
        {"to": BOB, "value": 12_345, "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1,
         "nonce": 0, "chainId": 31337, "type": 2}, ACCOUNTS[0].private_key)
    tx_hash = call(chain, "eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
    call(chain, "evm_increaseTime", 600)
    call(chain, "evm_mine")
    doc = chain.export_state()
    latest = head(chain)
    again = DevChain.from_state(doc, 31337)
    try:
        assert head(again) == latest
        assert call(again, "eth_getTransactionReceipt", tx_hash) == call(chain, "eth_getTransactionReceipt", tx_hash)
        assert balance(again, BOB) == 100 * ETH + 12_345
        assert again.now() >= chain.now() - 1
        nxt = Account.sign_transaction(
            {"to": BOB, "value": 1, "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1,
             "nonce": 1, "chainId": 31337, "type": 2}, ACCOUNTS[0].private_key)
        call(again, "eth_sendRawTransaction", "0x" + nxt.raw_transaction.hex())
        assert balance(again, BOB) == 100 * ETH + 12_346
    finally:
        again.close()
    with pytest.raises(ChainImageError, match="chain 31337, not 1"):
        DevChain.from_state(doc, 1)
    with pytest.raises(ChainImageError, match="format 99"):
        DevChain.from_state({**doc, "format": 99}, 31337)
    with pytest.raises(ChainImageError, match="damaged"):
        DevChain.from_state({**doc, "kv": [["zz", "00"]]}, 31337)
