"""Read the devnet's chains the way an outside observer would: Ethereum JSON-RPC.

Over HTTP for a devnet served on loopback, through the same JSON-RPC handler for an in-process one.
Used to count settlements (OPG `Transfer` logs to the gateway's payTo), read balances and nonces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from eth_abi import decode, encode

from opengradient.devnet.node import Devnet

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def _topic(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


@dataclass(frozen=True)
class Transfer:
    """One ERC-20 `Transfer` log."""

    tx_hash: str
    block: int
    sender: str
    recipient: str
    value: int


class ChainView:
    """JSON-RPC reads of one devnet chain (`"payments"` or `"alpha"`)."""

    def __init__(self, net: Devnet, chain: str = "payments") -> None:
        self.net = net
        self.chain = net.payments_chain if chain == "payments" else net.alpha_chain
        self.url = net.network.payments.rpc_url if chain == "payments" else net.network.rpc_url

    def call(self, method: str, *params: Any) -> Any:
        payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        if self.net.in_process:
            reply: Any = self.chain.rpc(payload)
        else:
            reply = httpx.post(self.url, json=payload, timeout=30).json()
        if reply.get("error"):
            raise AssertionError(f"{method} failed: {reply['error']}")
        return reply["result"]

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block_timestamp(self, number: int | None = None) -> int:
        block = self.call("eth_getBlockByNumber", "latest" if number is None else hex(number), False)
        return int(block["timestamp"], 16)

    def nonce(self, address: str) -> int:
        return int(self.call("eth_getTransactionCount", address, "latest"), 16)

    def token_balance(self, token: str, address: str) -> int:
        data = bytes.fromhex("70a08231") + encode(["address"], [address])
        raw = self.call("eth_call", {"to": token, "data": "0x" + data.hex()}, "latest")
        return int(decode(["uint256"], bytes.fromhex(raw[2:]))[0])

    def transfers(self, token: str, *, from_block: int, sender: str | None = None,
                  recipient: str | None = None) -> list[Transfer]:
        """`Transfer` logs of `token` in blocks `from_block`…latest, filtered by sender/recipient."""
        topics: list[Any] = [TRANSFER_TOPIC, _topic(sender) if sender else None,
                             _topic(recipient) if recipient else None]
        logs = self.call("eth_getLogs", {"fromBlock": hex(from_block), "toBlock": "latest",
                                         "address": token, "topics": topics})
        return [Transfer(log["transactionHash"], int(log["blockNumber"], 16), "0x" + log["topics"][1][-40:],
                         "0x" + log["topics"][2][-40:], int(log["data"], 16)) for log in logs]


class Settlements:
    """OPG paid to the gateway, counted on chain: the ground truth of what was charged."""

    def __init__(self, net: Devnet) -> None:
        self.net = net
        self.view = ChainView(net, "payments")
        self.token = net.network.payments.token_address
        self.pay_to = net.gateway.pay_to
        self.start = self.view.block_number() + 1

    def since_start(self, payer: str | None = None) -> list[Transfer]:
        """OPG transfers to the gateway's payTo since this object was made (from `payer`)."""
        return self.view.transfers(self.token, from_block=self.start, sender=payer, recipient=self.pay_to)

    def balance(self, address: str) -> int:
        return self.view.token_balance(self.token, address)
