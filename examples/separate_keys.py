"""API reference, "Private Keys": one key pays for LLM requests, another pays Alpha-chain gas.

`og.init(private_key=..., alpha_private_key=...)` on a local devnet: the LLM request is paid in OPG
(x402, on the payments chain) by the first key, the on-chain inference's gas by the second. The
example reads balances on both chains before and after to show who paid for what.

Run: python examples/separate_keys.py
"""

from __future__ import annotations

import httpx
from eth_abi import decode, encode
from eth_utils import keccak

import opengradient as og
from opengradient.client.llm import TextGenerationStream
from opengradient.devnet.services.models import PRICE_REGRESSION


def rpc(url: str, method: str, *params: object) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    return str(httpx.post(url, json=body, timeout=30).json()["result"])


def balances(net: og.devnet.Devnet, address: str) -> tuple[int, int]:
    """(OPG on the payments chain, native gas token on the Alpha chain) of `address`, in base units."""
    data = keccak(text="balanceOf(address)")[:4] + encode(["address"], [address])
    call = {"to": net.network.payments.token_address, "data": "0x" + data.hex()}
    opg = decode(["uint256"], bytes.fromhex(rpc(net.network.payments.rpc_url, "eth_call", call, "latest")[2:]))[0]
    gas = int(rpc(net.network.rpc_url, "eth_getBalance", address, "latest"), 16)
    return int(opg), gas


def main() -> None:
    with og.devnet.start(http=True) as net:
        base_key, alpha_key = net.accounts[1].private_key, net.accounts[2].private_key

        # Separate keys for each chain
        client = og.init(private_key=base_key, alpha_private_key=alpha_key, network=net.network)
        assert client.address is not None and client.alpha_address is not None
        before = {who: balances(net, who) for who in (client.address, client.alpha_address)}

        response = client.llm.chat(model=og.TEE_LLM.GPT_4O, messages=[{"role": "user", "content": "Hello!"}])
        assert not isinstance(response, TextGenerationStream)
        client.alpha.infer(model_cid=net.model(PRICE_REGRESSION.name).cid, inference_mode=og.InferenceMode.VANILLA,
                           model_input=PRICE_REGRESSION.example_input)

        for role, who in (("private_key", client.address), ("alpha_private_key", client.alpha_address)):
            (opg0, gas0), (opg1, gas1) = before[who], balances(net, who)
            print(f"{role:<18} {who}: spent {(opg0 - opg1) / 10**18:g} OPG, "
                  f"{(gas0 - gas1) / 10**18:.6f} Alpha gas token")


if __name__ == "__main__":
    main()
