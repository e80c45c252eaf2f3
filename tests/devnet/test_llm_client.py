"""`client.llm` against the devnet gateway: real x402 payments, real TEE signatures.

Every test runs in each payments-chain mode: the devnet's own chain, and Base Sepolia and Base in
form (their chain ids, OPG addresses and EIP-712 domains).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi import decode, encode

import opengradient as og
from opengradient.client.llm import AsyncTextGenerationStream, TextGenerationStream
from opengradient.devnet.node import Devnet

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. 'San Francisco'"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
WEATHER_MESSAGES = [{"role": "user", "content": "What is the weather in Dallas, in fahrenheit?"}]


@pytest.fixture(scope="module", params=["devnet", "base-sepolia", "base"])
def devnet(request: pytest.FixtureRequest, devnet: Devnet) -> Iterator[Devnet]:
    """The session devnet for its own payments chain, a devnet of its own for each other mode."""
    if request.param == "devnet":
        yield devnet
        return
    with og.devnet.start(payments_chain=request.param) as net:
        assert net.network.payments.network == f"eip155:{net.payments_mode.chain_id}"
        yield net


def _opg_balance(net: Devnet, address: str) -> int:
    data = bytes.fromhex("70a08231") + encode(["address"], [address])
    reply: Any = net.payments_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [
        {"to": net.network.payments.token_address, "data": "0x" + data.hex()}, "latest"]})
    return int(decode(["uint256"], bytes.fromhex(reply["result"][2:]))[0])


def _receipt(net: Devnet, tx_hash: str) -> dict[str, Any]:
    reply: Any = net.payments_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt",
                                         "params": [tx_hash]})
    return dict(reply["result"])


def test_paid_chat_moves_exactly_the_settled_amount(devnet: Devnet) -> None:
    client = devnet.new_client(devnet.accounts[1].private_key)
    before = _opg_balance(devnet, client.address or "")
    result = client.llm.chat(og.TEE_LLM.GPT_4O, [{"role": "user", "content": "Hello! My name is Ada."}],
                             max_tokens=50)
    assert isinstance(result, og.TextGenerationOutput)
    assert result.chat_output is not None and result.chat_output["content"]
    assert result.tee_verified and result.payment_hash and result.amount_paid
    assert before - _opg_balance(devnet, client.address or "") == result.amount_paid
    transfer_topic = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    logs = [log for log in _receipt(devnet, result.payment_hash)["logs"] if log["topics"][0] == transfer_topic]
    assert len(logs) == 1 and int(logs[0]["data"], 16) == result.amount_paid
    assert result.usage is not None and result.usage.total_tokens > 0
    assert result.proof is not None and result.proof.kind == "tee" and result.proof.verify(client)


def test_warm_client_pays_in_one_round_trip(devnet: Devnet) -> None:
    client = devnet.new_client(devnet.accounts[2].private_key)
    requests: list[str] = []
    transport = client._http.sync._transport  # count the requests the warm call makes
    original = transport.handle_request

    def counting(request: Any) -> Any:
        requests.append(str(request.url.path))
        return original(request)

    transport.handle_request = counting  # type: ignore[method-assign]
    try:
        client.llm.chat("gpt-4o", [{"role": "user", "content": "one"}], max_tokens=20)
        requests.clear()
        client.llm.chat("gpt-4o", [{"role": "user", "content": "two"}], max_tokens=20)
    finally:
        transport.handle_request = original  # type: ignore[method-assign]
    assert requests == ["/v1/chat/completions"]


def test_tools_stream_assembles_the_same_call_and_verifies(devnet: Devnet) -> None:
    client = devnet.client
    whole = client.llm.chat(og.TEE_LLM.GPT_4O, WEATHER_MESSAGES, tools=[WEATHER_TOOL], max_tokens=100)
    assert isinstance(whole, og.TextGenerationOutput) and whole.finish_reason == "tool_calls"
    assert whole.chat_output is not None
    call = whole.chat_output["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"city": "Dallas", "unit": "fahrenheit"}

    stream = client.llm.chat(og.TEE_LLM.GPT_4O, WEATHER_MESSAGES, tools=[WEATHER_TOOL], max_tokens=100,
                             stream=True)
    assert isinstance(stream, TextGenerationStream)
    chunks = list(stream)
    assert any(c.choices[0].delta.tool_calls for c in chunks)
    assert sum(1 for c in chunks if c.usage is not None) >= 1
    assert stream.result is not None and stream.result.tee_verified
    assert stream.result.finish_reason == "tool_calls"
    assert stream.result.chat_output is not None
    streamed = stream.result.chat_output["tool_calls"][0]["function"]
    assert streamed == {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}


def test_stream_text_matches_and_seed_loop_works(devnet: Devnet) -> None:
    messages = [{"role": "user", "content": "Explain TEE in one paragraph."}]
    whole = devnet.client.llm.chat(og.TEE_LLM.GPT_4O, messages, max_tokens=60)
    pieces = []
    stream = devnet.client.llm.chat(og.TEE_LLM.GPT_4O, messages, max_tokens=60, stream=True)
    for chunk in stream:  # the seed's loop: chunk.choices[0] is always there
        if chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    assert isinstance(whole, og.TextGenerationOutput) and whole.chat_output is not None
    assert "".join(pieces) == whole.chat_output["content"]
    assert isinstance(stream, TextGenerationStream) and stream.result is not None
    assert stream.result.usage == whole.usage


async def test_async_chat_stream_and_completion(devnet: Devnet) -> None:
    client = devnet.client
    result = await client.llm.achat("anthropic/claude-3.5-haiku", [{"role": "user", "content": "hi"}])
    assert isinstance(result, og.TextGenerationOutput) and result.tee_verified
    stream = await client.llm.achat("gpt-4o", [{"role": "user", "content": "count"}], stream=True, max_tokens=20)
    assert isinstance(stream, AsyncTextGenerationStream)
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert stream.result is not None and stream.result.tee_verified
    assert stream.result.chat_output is not None and text == stream.result.chat_output["content"]
    completion = await client.llm.acompletion("gpt-4o", "Translate 'hello' to French:", max_tokens=20)
    assert completion.completion_output and completion.tee_verified and completion.payment_hash


def test_completion_and_settlement_modes(devnet: Devnet) -> None:
    for mode in og.x402SettlementMode:
        result = devnet.client.llm.completion("openai/gpt-4o", "Say something", max_tokens=10,
                                              x402_settlement_mode=mode)
        assert result.completion_output and result.tee_verified and result.payment_hash


def test_spend_cap_refuses_before_signing(devnet: Devnet) -> None:
    client = devnet.new_client(devnet.accounts[4].private_key, max_payment_per_request=1)
    before = _opg_balance(devnet, client.address or "")
    with pytest.raises(og.SpendCapExceededError) as caught:
        client.llm.chat("gpt-4o", [{"role": "user", "content": "hi"}])
    assert caught.value.cap == 1 and caught.value.amount > 1
    assert _opg_balance(devnet, client.address or "") == before


def test_unknown_model_is_a_400_with_the_servers_message(devnet: Devnet) -> None:
    with pytest.raises(og.HTTPStatusError) as caught:
        devnet.client.llm.chat("acme/not-a-model", [{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 400 and "not-a-model" in str(caught.value)


def test_verification_fails_with_a_wrong_pinned_key(devnet: Devnet) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    client = devnet.new_client(devnet.accounts[5].private_key, tee_public_key=pem)
    with pytest.raises(og.VerificationError):
        client.llm.chat("gpt-4o", [{"role": "user", "content": "hi"}])


def test_gateway_trust_and_approval(devnet: Devnet) -> None:
    client = devnet.new_client(devnet.accounts[6].private_key, tee_trust="gateway")
    result = client.llm.chat("gpt-4o", [{"role": "user", "content": "hi"}])
    assert isinstance(result, og.TextGenerationOutput) and result.tee_verified
    first = client.llm.ensure_opg_approval(opg_amount=5)
    assert first.allowance_after >= 5 * 10**18 and first.transaction_hash is not None
    again = client.llm.ensure_opg_approval(opg_amount=5)
    assert again.transaction_hash is None and again.allowance_before == first.allowance_after
