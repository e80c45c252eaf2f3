"""The devnet chain's pool and block builder: batching, interval mining, pending state, drops."""

from __future__ import annotations

import threading

from eth_account import Account

from opengradient.devnet.chain.evm import DevChain
from opengradient.devnet.chain.keys import dev_accounts
from tests.devnet.test_chain import CHAIN_ID, ETHER, SINK, make_chain, rpc, rpc_error, signed_raw


def test_concurrent_submissions_share_one_block() -> None:
    chain = make_chain()
    accounts = dev_accounts(8)
    start = chain.block_number
    raws = [bytes.fromhex(signed_raw(a.private_key, 0, SINK, value=1, gas=21_000)[2:]) for a in accounts]
    with chain._lock:  # as if a block were being built: everything submitted meanwhile waits for the next
        hashes = [chain.submit(raw) for raw in raws]
    assert all(chain.wait_mined(h, 30) is None for h in hashes)
    assert chain.block_number - start == 1
    receipts = [rpc(chain, "eth_getTransactionReceipt", h) for h in hashes]
    assert {r["blockNumber"] for r in receipts} == {hex(start + 1)}
    assert [int(r["transactionIndex"], 16) for r in receipts] == list(range(8))
    assert int(rpc(chain, "eth_getBalance", SINK, "latest"), 16) == 8
    chain.close()


def test_interval_mining_answers_at_once_and_receipts_follow() -> None:
    accounts = dev_accounts(2)
    chain = DevChain(CHAIN_ID, funded={a.address: 10 * ETHER for a in accounts}, block_time=0.05)
    try:
        key = accounts[0].private_key
        first = rpc(chain, "eth_sendRawTransaction", signed_raw(key, 0, SINK, value=5, gas=21_000))
        second = rpc(chain, "eth_sendRawTransaction", signed_raw(key, 1, SINK, value=6, gas=21_000))
        # pending until the next interval block (unless it came already): geth's answers
        assert rpc(chain, "eth_getTransactionCount", accounts[0].address, "pending") == "0x2"
        assert chain.wait_mined(first, 30) is None and chain.wait_mined(second, 30) is None
        one, two = (rpc(chain, "eth_getTransactionReceipt", h) for h in (first, second))
        assert one["status"] == two["status"] == "0x1"
        assert rpc(chain, "eth_getTransactionCount", accounts[0].address, "latest") == "0x2"
        empty_before = chain.block_number
        mined = threading.Event()
        for _ in range(200):  # interval mining mines empty blocks too (bounded wait, no timing assertion)
            if chain.block_number > empty_before or mined.wait(0.05):
                break
        assert chain.block_number > empty_before
    finally:
        chain.close()


def test_a_pending_transaction_has_no_receipt_yet() -> None:
    accounts = dev_accounts(1)
    chain = DevChain(CHAIN_ID, funded={accounts[0].address: 10 * ETHER}, block_time=3600)
    try:
        tx_hash = rpc(chain, "eth_sendRawTransaction", signed_raw(accounts[0].private_key, 0, SINK, gas=21_000))
        assert rpc(chain, "eth_getTransactionReceipt", tx_hash) is None
        pending = rpc(chain, "eth_getTransactionByHash", tx_hash)
        assert pending["hash"] == tx_hash and pending["blockNumber"] is None
        assert rpc_error(chain, "eth_sendRawTransaction",
                         signed_raw(accounts[0].private_key, 0, SINK, gas=21_000))["message"] == "already known"
        rpc(chain, "evm_mine")
        assert rpc(chain, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"
    finally:
        chain.close()


def test_a_transaction_that_cannot_pay_is_dropped_with_the_reason() -> None:
    poor = Account.create()
    chain = make_chain()
    raw = signed_raw("0x" + poor.key.hex().removeprefix("0x"), 0, SINK, value=1, gas=21_000)
    error = rpc_error(chain, "eth_sendRawTransaction", raw)
    assert "insufficient funds" in error["message"]
    assert rpc(chain, "eth_getTransactionCount", poor.address, "pending") == "0x0"  # no gap left behind
    chain.close()
