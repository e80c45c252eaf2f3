"""LLM guide, "Settlement Modes": the three `og.x402SettlementMode`s, and what each leaves on chain.

The guide's calls `client.llm_chat(model_cid=..., messages=..., settlement_mode=...)`, made
against a local devnet. Settlement modes belong to x402 payments, which are made in TEE mode, so
the calls here pass `inference_mode=og.LlmInferenceMode.TEE` (in the default VANILLA mode a request
is paid as the gas of its own Alpha-chain transaction, and a settlement mode is ignored with a
warning).

After the calls the example asks the devnet's settlement contract what it recorded:

- SETTLE: the request and output hashes (`settledAt` gives the block);
- SETTLE_METADATA: the same, plus model, input and output in full in the event;
- SETTLE_BATCH: a Merkle root over many requests (a partial batch is flushed here).

Run: python examples/settlement_modes.py
"""

from __future__ import annotations

from typing import Any

import httpx
from eth_abi import decode, encode
from eth_utils import keccak

import opengradient as og


def contract_call(rpc_url: str, to: str, signature: str, types: list[str], args: list[Any], returns: str) -> Any:
    """A read-only call to a contract through plain JSON-RPC."""
    data = keccak(text=signature)[:4] + encode(types, args)
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_call",
            "params": [{"to": to, "data": "0x" + data.hex()}, "latest"]}
    result = httpx.post(rpc_url, json=body, timeout=30).json()["result"]
    return decode([returns], bytes.fromhex(result[2:]))[0]


def main() -> None:
    with og.devnet.start(http=True) as net:
        client = og.new_client(email=None, password=None, private_key=net.accounts[0].private_key,
                               network=net.network)
        results = {}
        for mode in (og.x402SettlementMode.SETTLE, og.x402SettlementMode.SETTLE_METADATA,
                     og.x402SettlementMode.SETTLE_BATCH):
            # One question per mode: identical requests share their (request, output) hash pair.
            messages = [{"role": "user", "content": f"Which data does the {mode.value} settlement put on chain?"}]
            result = client.llm_chat(
                model_cid="openai/gpt-4.1",
                messages=messages,
                inference_mode=og.LlmInferenceMode.TEE,
                settlement_mode=mode,
            )
            results[mode.name] = result
            print(f"{mode.name:<16} paid in {result.payment_hash} (TEE verified: {result.tee_verified})")

        net.gateway.settlements.flush()  # the devnet records settlements in the background
        rpc, settlement = net.network.payments.rpc_url, net.gateway.contracts.settlement
        for name in ("SETTLE", "SETTLE_METADATA"):
            result = results[name]
            assert result.tee_request_hash and result.tee_output_hash
            block = contract_call(rpc, settlement, "settledAt(bytes32,bytes32)", ["bytes32", "bytes32"],
                                  [bytes.fromhex(result.tee_request_hash), bytes.fromhex(result.tee_output_hash)],
                                  "uint256")
            print(f"{name:<16} recorded on chain in block {block}")
        batch = results["SETTLE_BATCH"]
        assert batch.tee_request_hash and batch.tee_output_hash
        batch_id = contract_call(rpc, settlement, "batchCount()", [], [], "uint256")
        member = contract_call(rpc, settlement, "verifyBatchMember(uint256,bytes32,bytes32,bytes32[])",
                               ["uint256", "bytes32", "bytes32", "bytes32[]"],
                               [batch_id, bytes.fromhex(batch.tee_request_hash),
                                bytes.fromhex(batch.tee_output_hash), []], "bool")
        print(f"{'SETTLE_BATCH':<16} recorded in Merkle batch #{batch_id}: member {member}")


if __name__ == "__main__":
    main()
