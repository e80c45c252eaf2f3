"""Settlement off the request's critical path: served before its block, paid when the block is built.

The gateway answers an `exact` request once the settlement transfer is in the payments chain's
pool under its final hash (`payment_hash`, `PAYMENT-RESPONSE`), not once it is mined. These tests
turn automine off (anvil's `evm_setAutomine`) so that nothing is mined until they say so, which
makes "served before the block" and "how many blocks" exact rather than a matter of timing:

1. 256 concurrent paid chats are all answered while their 256 settlements sit in the pool
   (receipts `null`); mining then settles them in as few blocks as the gas limit allows, and every
   payer has paid exactly what it was served, to the wei.
2. A payer who moves its balance away before the block is built is served once and its
   settlement fails on chain: from then on it is refused (`unpaid_settlement`), even with funds
   again — never served twice for free.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak

import opengradient as og
from opengradient.devnet.chain.deploy import Deployer
from opengradient.devnet.chain.evm import DevChain
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.llm.facilitator import SETTLE_GAS_LIMIT
from tests.payers import PRICE, Payer, balance, messages, new_payer, transfers

OPG = 10**18


def _rpc(chain: DevChain, method: str, *params: Any) -> Any:
    response = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert isinstance(response, dict) and "error" not in response, response
    return response["result"]


@contextmanager
def _paused(devnet: Devnet) -> Iterator[DevChain]:
    """The payments chain with automine off (on again afterwards, mining what is left)."""
    chain = devnet.payments_chain
    assert _rpc(chain, "evm_setAutomine", False) is True
    try:
        yield chain
    finally:
        chain.set_automine(True)
        devnet.gateway.settlements.wait_idle()


def _exact_client(devnet: Devnet, payer: Payer) -> og.Client:
    return devnet.new_client(payer.account.private_key, payment_scheme="exact")


def _mine_all(chain: DevChain) -> int:
    """Mine until the pool is empty; how many blocks that took."""
    blocks = 0
    while chain.pending_transactions:
        _rpc(chain, "evm_mine")
        blocks += 1
    return blocks


def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.01)


def test_concurrent_paid_requests_are_served_before_their_block_and_settle_in_a_handful(devnet: Devnet) -> None:
    payers = [new_payer(devnet, opg=10 * OPG) for _ in range(4)]
    clients = [_exact_client(devnet, p) for p in payers]
    before = {p.address: balance(devnet, p.address) for p in payers}
    pay_to_before = balance(devnet, devnet.gateway.pay_to)
    requests = 256

    async def burst() -> list[og.TextGenerationOutput]:
        return await asyncio.gather(*[clients[i % 4].llm.achat(og.TEE_LLM.GPT_4O, messages(i), max_tokens=20)
                                      for i in range(requests)])

    with _paused(devnet) as paused:
        head = paused.block_number
        answers = asyncio.run(burst())
        # Every request was answered, and nothing was mined: each settlement waits in the pool.
        assert paused.block_number == head
        hashes = [a.payment_hash for a in answers if isinstance(a.payment_hash, str)]
        assert all(h.startswith("0x") for h in hashes) and len(set(hashes)) == requests
        assert all(_rpc(paused, "eth_getTransactionReceipt", h) is None for h in hashes)
        assert paused.pending_transactions >= requests  # (and whatever else the devnet sent meanwhile)

        blocks = _mine_all(paused)
        gas_limit = int(_rpc(paused, "eth_getBlockByNumber", "latest", False)["gasLimit"], 16)
        assert blocks <= math.ceil((requests + 1) / (gas_limit // SETTLE_GAS_LIMIT)) <= 4  # a handful, not 256

        for h in hashes:  # the hash the answer named is the settlement, and it paid the price
            receipt = _rpc(paused, "eth_getTransactionReceipt", h)
            assert receipt is not None and receipt["status"] == "0x1"
            [(payer, to, value)] = transfers(devnet, h)
            assert to == devnet.gateway.pay_to and value == PRICE and payer in before
        for i, p in enumerate(payers):
            served = len(range(i, requests, 4))
            assert balance(devnet, p.address) == before[p.address] - served * PRICE
        assert balance(devnet, devnet.gateway.pay_to) == pay_to_before + requests * PRICE
        for p in payers:  # every reservation ended with its block
            _wait_for(lambda p=p: devnet.gateway.exposure.exposure(p.address).total == 0, "release")


def _drain_tx(devnet: Devnet, payer: Payer, to: str, amount: int) -> bytes:
    """A signed OPG transfer of `amount` from `payer` to `to` (sent straight to the pool)."""
    chain = devnet.payments_chain
    nonce = int(_rpc(chain, "eth_getTransactionCount", payer.address, "pending"), 16)
    data = keccak(text="transfer(address,uint256)")[:4] + abi_encode(["address", "uint256"], [to, amount])
    fee = 4 * int(_rpc(chain, "eth_gasPrice"), 16) + 10**9
    tx = {"type": 2, "chainId": chain.chain_id, "nonce": nonce, "to": devnet.gateway.contracts.opg_token,
          "value": 0, "data": data, "gas": 100_000, "maxFeePerGas": fee, "maxPriorityFeePerGas": 10**9}
    return bytes(Account.from_key(payer.account.private_key).sign_transaction(tx).raw_transaction)


def test_a_settlement_that_fails_on_chain_bars_the_payer_who_is_never_served_twice_for_free(devnet: Devnet) -> None:
    payer = new_payer(devnet, opg=3 * PRICE)
    client = _exact_client(devnet, payer)
    paid_before = balance(devnet, devnet.gateway.pay_to)
    with _paused(devnet) as paused:
        elsewhere = Account.create().address
        # The payer's own transfer of everything it holds reaches the pool first …
        drain = _rpc(paused, "eth_sendRawTransaction", "0x" + _drain_tx(devnet, payer, elsewhere, 3 * PRICE).hex())
        # … then its paid request: verified against the mined state (it still holds 3 × the price) and served.
        answer = client.llm.chat(og.TEE_LLM.GPT_4O, messages(1), max_tokens=20)
        assert answer.chat_output is not None and answer.payment_hash

        _mine_all(paused)  # the drain goes first; the settlement then cannot pay
        assert _rpc(paused, "eth_getTransactionReceipt", drain)["status"] == "0x1"
        failed = _rpc(paused, "eth_getTransactionReceipt", answer.payment_hash)
        assert failed is not None and failed["status"] == "0x0"
        _wait_for(lambda: devnet.gateway.exposure.barred(payer.address) is not None, "the bar")
        assert answer.payment_hash in str(devnet.gateway.exposure.barred(payer.address))
    Deployer(devnet.payments_chain, devnet.accounts[0], estimate_gas=False).transact(
        devnet.gateway.contracts.opg_token, "OPGToken", "transfer", payer.address, 3 * PRICE)  # funded again
    assert balance(devnet, payer.address) == 3 * PRICE
    with pytest.raises(og.PaymentError, match="unpaid_settlement"):
        client.llm.chat(og.TEE_LLM.GPT_4O, messages(2), max_tokens=20)
    assert balance(devnet, payer.address) == 3 * PRICE  # nothing taken
    assert balance(devnet, devnet.gateway.pay_to) == paid_before  # served once, paid nothing: the bar's reason
