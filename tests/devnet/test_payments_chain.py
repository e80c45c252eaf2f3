"""The payments chain in each mode, seen from outside: chain id, OPG at its address with its
EIP-712 domain, the x402 offer, and the funded development accounts."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_abi import decode, encode
from eth_utils import keccak

import opengradient as og
from opengradient.devnet.chain.payments_chain import PAYMENTS_CHAINS, payments_chain
from opengradient.devnet.node import OPG_PER_USER, Devnet

#: chain id, OPG address, EIP-712 name and version of the public payment networks.
PUBLIC = {
    "base-sepolia": (84532, "0x240b09731D96979f50B2C649C9CE10FcF9C7987F", "OPG", "2"),
    "base": (8453, "0xFbC2051AE2265686a469421b2C5A2D5462FbF5eB", "OpenGradient", "1"),
}


@pytest.fixture(scope="module", params=sorted(PUBLIC))
def net(request: pytest.FixtureRequest) -> Iterator[Devnet]:
    with og.devnet.start(payments_chain=request.param) as devnet:
        yield devnet


def _rpc(http: httpx.Client, method: str, *params: Any) -> Any:
    body = http.post("/rpc/payments", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    return body.json()["result"]


def test_the_payments_chain_speaks_as_the_public_one(net: Devnet) -> None:
    chain_id, token, name, version = PUBLIC[net.payments_mode.name]
    with httpx.Client(transport=net._bridge.transport, base_url=net.url) as http:
        assert int(_rpc(http, "eth_chainId"), 16) == chain_id
        assert _rpc(http, "net_version") == str(chain_id)
        raw = _rpc(http, "eth_call", {"to": token, "data": "0x" + keccak(text="eip712Domain()")[:4].hex()}, "latest")
        fields, domain_name, domain_version, domain_chain, contract, _, _ = decode(
            ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"], bytes.fromhex(raw[2:]))
        assert (fields, domain_name, domain_version, domain_chain, contract.lower()) == (
            b"\x0f", name, version, chain_id, token.lower())
        balance = _rpc(http, "eth_call", {"to": token, "data": "0x70a08231" + encode(
            ["address"], [net.accounts[0].address]).hex()}, "latest")
        assert int(balance, 16) == OPG_PER_USER
        # The 402 offer names the public network, token and domain.
        offer = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [
            {"role": "user", "content": "hi"}], "max_tokens": 5})
        assert offer.status_code == 402
        accepts = json.loads(base64.b64decode(offer.headers["PAYMENT-REQUIRED"]))["accepts"]
        exact = next(a for a in accepts if a["scheme"] == "exact")
        assert (exact["network"], exact["asset"], exact["extra"]["name"], exact["extra"]["version"]) == (
            f"eip155:{chain_id}", token, name, version)
        info = http.get("/").json()["payments"]
        assert (info["chain_id"], info["opg_token"], info["mode"]) == (chain_id, token, net.payments_mode.name)
        assert "valid in form" in info["warning"]


def test_a_paid_chat_settles_on_the_public_token_address(net: Devnet) -> None:
    _, token, _, _ = PUBLIC[net.payments_mode.name]
    result = net.new_client(net.accounts[2].private_key).llm.chat(
        "openai/gpt-4o", [{"role": "user", "content": "Hello"}], max_tokens=20)
    receipt: Any = net.payments_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt",
                                           "params": [result.payment_hash]})
    transfers = [log for log in receipt["result"]["logs"] if log["topics"][0] == "0x" + keccak(
        text="Transfer(address,address,uint256)").hex()]
    assert [log["address"].lower() for log in transfers] == [token.lower()]
    assert int(transfers[0]["data"], 16) == result.amount_paid


def test_the_default_mode_is_the_devnets_own_chain(devnet: Devnet) -> None:
    assert devnet.payments_mode == PAYMENTS_CHAINS["devnet"] and not devnet.payments_mode.compatible
    assert devnet.network.payments.network == "eip155:910020"
    assert devnet.network.payments.token_address not in {t for _, t, _, _ in PUBLIC.values()}
    assert "warning" not in devnet.info()["payments"]


@pytest.mark.parametrize("name", ["base-mainnet", "", "BASE", None, 8453])
def test_an_unknown_mode_is_a_typed_error(name: Any) -> None:
    with pytest.raises(og.InvalidInputError, match="unknown payments chain") as info:
        payments_chain(name)
    assert "devnet, base-sepolia, base" in str(info.value)
