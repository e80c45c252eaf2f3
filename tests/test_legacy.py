"""The legacy LLM API of the seed's LLM guide and its on-chain entry points.

VANILLA requests are real transactions to the inference contract's `runLLMChat` /
`runLLMCompletion` on the devnet's Alpha chain, answered by the LLM precompile at 0x…F6 with the
reference model; TEE requests go through the gateway and are paid with x402.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import decode, encode
from eth_utils import keccak

import opengradient as og
from opengradient import legacy
from opengradient.devnet.chain.precompiles.llm import LLM_PRECOMPILE_ADDRESS, chat_request, completion_request
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.llm.reference import ReferenceModel

ARTIFACTS = Path(__file__).resolve().parent.parent / "opengradient" / "devnet" / "chain" / "contracts" / "artifacts"

# The public signatures of the inference contract's legacy entry points (field names stripped to canonical types).
PROTOCOL_CHAT = ("runLLMChat((uint8,string,(string,string,string,string,(string,string,string)[])[],"
                 "(string,string,string)[],string,uint32,string[],uint32))")
PROTOCOL_COMPLETION = "runLLMCompletion((uint8,string,string,uint32,string[],uint32))"

WEATHER_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. 'San Francisco'"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}}}
HAL = [{"role": "system", "content": "You are a helpful AI assistant.", "name": "HAL"},
       {"role": "user", "content": "Hello! How are you doing? Can you repeat my name?"}]


def _abi_type(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + kind[len("tuple"):]
    return kind


def _abi(name: str) -> list[dict[str, Any]]:
    abi: list[dict[str, Any]] = json.loads((ARTIFACTS / f"{name}.json").read_text())["abi"]
    return abi


def _signature(abi: list[dict[str, Any]], kind: str, name: str) -> str:
    (entry,) = [e for e in abi if e["type"] == kind and e.get("name") == name]
    return f"{name}({','.join(_abi_type(p) for p in entry['inputs'])})"


def _rpc_reply(net: Devnet, method: str, *params: Any) -> dict[str, Any]:
    reply = net.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert isinstance(reply, dict)
    return reply


def _rpc(net: Devnet, method: str, *params: Any) -> Any:
    return _rpc_reply(net, method, *params)["result"]


# ---- wire constants --------------------------------------------------------------------------------


def test_selectors_match_protocol_and_contract() -> None:
    abi = _abi("OGInference")
    assert legacy.RUN_LLM_CHAT_SIGNATURE == PROTOCOL_CHAT == _signature(abi, "function", "runLLMChat")
    assert legacy.RUN_LLM_COMPLETION_SIGNATURE == PROTOCOL_COMPLETION == _signature(abi, "function",
                                                                                     "runLLMCompletion")
    assert keccak(text=PROTOCOL_CHAT)[:4] == legacy.RUN_LLM_CHAT_SELECTOR == bytes.fromhex("e39aa7e7")
    assert keccak(text=PROTOCOL_COMPLETION)[:4] == legacy.RUN_LLM_COMPLETION_SELECTOR == bytes.fromhex("14800c61")


def test_event_topics_match_contract() -> None:
    abi = _abi("OGInference")
    assert _signature(abi, "event", "LLMChatResult") == legacy.LLM_CHAT_RESULT_EVENT
    assert _signature(abi, "event", "LLMCompletionResult") == legacy.LLM_COMPLETION_RESULT_EVENT
    assert "0x" + keccak(text=legacy.LLM_CHAT_RESULT_EVENT).hex() == legacy.LLM_CHAT_RESULT_TOPIC
    assert "0x" + keccak(text=legacy.LLM_COMPLETION_RESULT_EVENT).hex() == legacy.LLM_COMPLETION_RESULT_TOPIC
    events = [e for e in abi if e["type"] == "event"]
    assert not any(p["indexed"] for e in events for p in e["inputs"])


def test_struct_field_names_follow_the_protocol() -> None:
    abi = _abi("OGInference")
    (chat,) = [e for e in abi if e.get("name") == "runLLMChat"]
    request = chat["inputs"][0]["components"]
    assert [c["name"] for c in request] == ["mode", "modelCID", "messages", "tools", "tool_choice", "max_tokens",
                                            "stop_sequence", "temperature"]
    assert [c["name"] for c in request[2]["components"]] == ["role", "content", "name", "tool_call_id",
                                                             "tool_calls"]
    assert [c["name"] for c in request[2]["components"][4]["components"]] == ["id", "name", "arguments"]
    assert [c["name"] for c in request[3]["components"]] == ["description", "name", "parameters"]
    (completion,) = [e for e in abi if e.get("name") == "runLLMCompletion"]
    assert [c["name"] for c in completion["inputs"][0]["components"]] == [
        "mode", "modelCID", "prompt", "max_tokens", "stop_sequence", "temperature"]


def test_llm_precompile_interface_shares_the_selectors() -> None:
    abi = _abi("ILLMPrecompile")
    assert keccak(text=_signature(abi, "function", "runLLMChat"))[:4] == legacy.RUN_LLM_CHAT_SELECTOR
    assert keccak(text=_signature(abi, "function", "runLLMCompletion"))[:4] == legacy.RUN_LLM_COMPLETION_SELECTOR
    assert LLM_PRECOMPILE_ADDRESS.lower() != og.networks.INFERENCE_PRECOMPILE_ADDRESS.lower()


# ---- encoding, offline -----------------------------------------------------------------------------


def test_chat_request_tuple_encodes_the_openai_shapes() -> None:
    messages = [
        {"role": "system", "content": "Be brief.", "name": "HAL"},
        {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_current_weather",
                                                              "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    request = legacy.chat_request_tuple(og.LLM.MISTRAL_7B_INSTRUCT_V3, messages, max_tokens=64, temperature=0.7,
                                        stop_sequence="END", tools=[WEATHER_TOOL], tool_choice="get_current_weather")
    mode, model, encoded, tools, choice, max_tokens, stops, temperature = request
    assert (mode, model, max_tokens, stops, temperature) == (0, "mistralai/Mistral-7B-Instruct-v0.3", 64, ["END"],
                                                             70)
    assert encoded[0] == ("system", "Be brief.", "HAL", "", [])
    assert encoded[1] == ("user", "Weather in Paris?", "", "", [])
    assert encoded[2] == ("assistant", "", "", "", [("call_1", "get_current_weather", '{"city": "Paris"}')])
    assert encoded[3] == ("tool", "sunny", "", "call_1", [])
    assert tools[0][1] == "get_current_weather" and json.loads(tools[0][2])["required"] == ["city", "unit"]
    assert choice == "get_current_weather"
    # It round-trips through the ABI, and the precompile rebuilds the OpenAI request from it.
    (decoded,) = decode([legacy.LLM_CHAT_REQUEST], encode([legacy.LLM_CHAT_REQUEST], [request]))
    rebuilt = chat_request(decoded)
    assert rebuilt["temperature"] == 0.7 and rebuilt["stop"] == ["END"] and rebuilt["max_tokens"] == 64
    assert rebuilt["tool_choice"] == {"type": "function", "function": {"name": "get_current_weather"}}
    assert rebuilt["messages"][3] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}
    assert rebuilt["tools"][0]["function"]["parameters"] == WEATHER_TOOL["function"]["parameters"]


def test_completion_request_tuple_and_temperature_scaling() -> None:
    request = legacy.completion_request_tuple("gpt-4", "Say hi", max_tokens=5, temperature=1.234)
    assert request == (0, "gpt-4", "Say hi", 5, [], 123)
    assert completion_request(request) == {"model": "gpt-4", "prompt": "Say hi", "max_tokens": 5,
                                           "temperature": 1.23}


@pytest.mark.parametrize(("given", "expected"), [
    (og.LlmInferenceMode.VANILLA, og.LlmInferenceMode.VANILLA), (1, og.LlmInferenceMode.TEE),
    ("tee", og.LlmInferenceMode.TEE), (" VANILLA ", og.LlmInferenceMode.VANILLA),
    (og.InferenceMode.TEE, og.LlmInferenceMode.TEE), (og.InferenceMode.VANILLA, og.LlmInferenceMode.VANILLA),
])
def test_parse_llm_mode(given: Any, expected: og.LlmInferenceMode) -> None:
    assert legacy.parse_llm_mode(given) is expected


@pytest.mark.parametrize("bad", [2, "ZKML", og.InferenceMode.ZKML, None, True, 1.0])
def test_parse_llm_mode_rejects(bad: Any) -> None:
    with pytest.raises(og.InvalidInputError, match="unknown LLM inference mode"):
        legacy.parse_llm_mode(bad)


def test_settlement_alias() -> None:
    assert legacy.resolve_settlement_mode(None, og.x402SettlementMode.SETTLE_BATCH) == "settle-batch"
    assert legacy.resolve_settlement_mode("settle", None) == "settle"
    assert legacy.resolve_settlement_mode("settle", "settle") == "settle"
    with pytest.raises(og.InvalidInputError, match="disagree"):
        legacy.resolve_settlement_mode("settle", "settle-batch")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 2**32}, "max_tokens"),
    ({"temperature": 3}, "temperature"),
    ({"tools": [{"type": "function"}]}, "tools"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "text only"),
    ({"model_cid": "openai/"}, "malformed"),
])
def test_bad_chat_input_is_refused_before_any_io(kwargs: dict[str, Any], match: str) -> None:
    client = og.Client("0x" + "11" * 32, network="public", transport=_NoNetwork())
    args: dict[str, Any] = {"model_cid": "gpt-4", "messages": HAL, **kwargs}
    with pytest.raises(og.InvalidInputError, match=match):
        client.llm_chat(**args)


class _NoNetwork(httpx.BaseTransport):
    """A transport that fails the test if anything is sent."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request to {request.url}")


# ---- og namespace ------------------------------------------------------------------------------------


def test_new_client_builds_a_client_without_touching_the_global_one() -> None:
    before = og.global_client
    client = og.new_client(email=None, password=None, private_key="0x" + "11" * 32)
    assert isinstance(client, og.Client) and og.global_client is before
    assert client.address == "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
    assert client.network.contract_address == "0x8383C9bD7462F12Eb996DD02F78234C0421A6FaE"
    custom = og.new_client("a@b.c", "pw", "0x" + "11" * 32, rpc_url="http://127.0.0.1:1/rpc",
                           contract_address="0x" + "22" * 20)
    assert custom.network.rpc_url == "http://127.0.0.1:1/rpc" and custom.network.contract_address == "0x" + "22" * 20
    assert og.LlmInferenceMode.VANILLA == 0 and og.LlmInferenceMode.TEE == 1
    assert og.LLM.MISTRAL_7B_INSTRUCT_V3 == "mistralai/Mistral-7B-Instruct-v0.3"
    assert "new_client" in og.__all__


def test_new_client_is_lazy() -> None:
    import subprocess
    import sys

    code = ("import sys, opengradient as og; assert 'opengradient.legacy' not in sys.modules; "
            "og.new_client; assert 'opengradient.legacy' in sys.modules; "
            "assert 'opengradient.devnet.node' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---- VANILLA on the devnet's Alpha chain ------------------------------------------------------------


def test_vanilla_completion_is_a_real_transaction(devnet: Devnet) -> None:
    client = devnet.client
    prompt = "Translate the following English text to French: 'Hello, how are you?'"
    result = client.llm_completion(model_cid="openai/gpt-4o", prompt=prompt, max_tokens=50, temperature=0.0)

    expected = ReferenceModel()._complete_answer({"model": "openai/gpt-4o", "prompt": prompt, "max_tokens": 50})
    assert result.completion_output == expected.content
    assert result.payment_hash == result.transaction_hash and result.transaction_hash.startswith("0x")
    receipt = _rpc(devnet, "eth_getTransactionReceipt", result.transaction_hash)
    tx = _rpc(devnet, "eth_getTransactionByHash", result.transaction_hash)
    assert int(receipt["status"], 16) == 1
    assert tx["to"].lower() == client.network.contract_address.lower()
    assert tx["from"].lower() == str(client.alpha_address).lower()
    assert bytes.fromhex(tx["input"][2:10]) == legacy.RUN_LLM_COMPLETION_SELECTOR
    (request,) = decode([legacy.LLM_COMPLETION_REQUEST], bytes.fromhex(tx["input"][10:]))
    assert request == (0, "openai/gpt-4o", prompt, 50, (), 0)
    (log,) = [entry for entry in receipt["logs"] if entry["topics"][0] == legacy.LLM_COMPLETION_RESULT_TOPIC]
    assert log["address"].lower() == client.network.contract_address.lower()
    assert decode([legacy.LLM_COMPLETION_RESPONSE], bytes.fromhex(log["data"][2:])) == ((expected.content,),)


def test_vanilla_chat_matches_the_seed(devnet: Devnet) -> None:
    result = devnet.client.llm_chat(model_cid="openai/gpt-4.1", messages=HAL)
    assert result.chat_output == {"role": "assistant",
                                  "content": "Hello! I'm doing well, thanks for asking. Your name is HAL."}
    assert result.finish_reason == "stop" and result.model == "openai/gpt-4.1"
    receipt = _rpc(devnet, "eth_getTransactionReceipt", result.transaction_hash)
    assert any(entry["topics"][0] == legacy.LLM_CHAT_RESULT_TOPIC for entry in receipt["logs"])


def test_vanilla_chat_is_deterministic(devnet: Devnet) -> None:
    first = devnet.client.llm_chat("gpt-4o", [{"role": "user", "content": "What is 6 * 7?"}])
    second = devnet.client.llm_chat("gpt-4o", [{"role": "user", "content": "What is 6 * 7?"}])
    assert first.chat_output == second.chat_output == {"role": "assistant", "content": "6 * 7 = 42."}
    assert first.transaction_hash != second.transaction_hash


def test_vanilla_tool_call_and_answer_after_the_tool(devnet: Devnet) -> None:
    client = devnet.client
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Can you tell me what the temperature will be in Dallas, in fahrenheit?"}]
    first = client.llm_chat(model_cid=og.LLM.MISTRAL_7B_INSTRUCT_V3, messages=messages, tools=[WEATHER_TOOL])
    assert first.finish_reason == "tool_calls" and first.chat_output is not None
    assert first.chat_output["content"] is None
    (call,) = first.chat_output["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_") and len(call["id"]) == 29
    assert call["function"]["name"] == "get_current_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Dallas", "unit": "fahrenheit"}

    messages += [first.chat_output, {"role": "tool", "tool_call_id": call["id"], "content": "75 and sunny"}]
    second = client.llm_chat(model_cid=og.LLM.MISTRAL_7B_INSTRUCT_V3, messages=messages, tools=[WEATHER_TOOL])
    assert second.finish_reason == "stop" and second.chat_output is not None
    assert second.chat_output["content"] == "The result of get_current_weather is: 75 and sunny"

    none = client.llm_chat(og.LLM.MISTRAL_7B_INSTRUCT_V3, messages[:1], tools=[WEATHER_TOOL], tool_choice="none")
    assert none.finish_reason == "stop" and none.chat_output is not None and "tool_calls" not in none.chat_output


def test_vanilla_honours_stop_and_max_tokens(devnet: Devnet) -> None:
    client = devnet.client
    cut = client.llm_chat("gpt-4o", [{"role": "user", "content": "Say exactly: alpha beta STOP gamma"}],
                          stop_sequence=["STOP"])
    assert cut.chat_output is not None and cut.chat_output["content"] == "alpha beta "
    short = client.llm_chat("gpt-4o", [{"role": "user", "content": "Tell me about the history of Rome"}],
                            max_tokens=3)
    assert short.finish_reason == "length"
    assert short.chat_output is not None and len(str(short.chat_output["content"]).split()) <= 3


def test_tool_call_ids_are_derived_from_the_request(devnet: Devnet) -> None:
    """A re-executed transaction gives the same output: ids come from the request, not randomness."""
    request = legacy.chat_request_tuple("gpt-4o", [{"role": "user", "content": "Weather in Paris in celsius?"}],
                                        tools=[WEATHER_TOOL])
    data = "0x" + (legacy.RUN_LLM_CHAT_SELECTOR + encode([legacy.LLM_CHAT_REQUEST], [request])).hex()
    call = {"from": devnet.accounts[0].address, "to": devnet.client.network.contract_address, "data": data}
    first, second = _rpc(devnet, "eth_call", call, "latest"), _rpc(devnet, "eth_call", call, "latest")
    assert first == second
    ((finish, message),) = decode([legacy.LLM_CHAT_RESPONSE], bytes.fromhex(first[2:]))
    assert finish == "tool_calls" and message[4][0][0].startswith("call_")


def test_unknown_model_fails_before_a_transaction(devnet: Devnet) -> None:
    client = devnet.client
    nonce = _rpc(devnet, "eth_getTransactionCount", client.alpha_address, "pending")
    with pytest.raises(og.ModelNotFoundError, match="model not found"):
        client.llm_completion("no-such-model", "hello")
    with pytest.raises(og.ModelNotFoundError, match="model not found"):
        client.llm_chat("openai/no-such-model", HAL)
    assert _rpc(devnet, "eth_getTransactionCount", client.alpha_address, "pending") == nonce


def test_contract_rejects_an_invalid_mode(devnet: Devnet) -> None:
    request = list(legacy.completion_request_tuple("gpt-4o", "hi"))
    request[0] = 2
    data = "0x" + (legacy.RUN_LLM_COMPLETION_SELECTOR + encode([legacy.LLM_COMPLETION_REQUEST], [request])).hex()
    reply = _rpc_reply(devnet, "eth_call", {"to": devnet.client.network.contract_address, "data": data}, "latest")
    assert "invalid LLM inference mode" in json.dumps(reply["error"])


def test_vanilla_needs_a_key(devnet: Devnet) -> None:
    keyless = og.Client(network=devnet.network, transport=devnet._bridge.transport)
    with pytest.raises(og.ConfigurationError, match="private key"):
        keyless.llm_completion("gpt-4o", "hello")


def test_settlement_mode_is_ignored_with_a_warning_in_vanilla(devnet: Devnet) -> None:
    with pytest.warns(UserWarning, match="settlement mode 'settle-batch' is ignored") as caught:
        result = devnet.client.llm_chat("openai/gpt-4.1", HAL, settlement_mode=og.x402SettlementMode.SETTLE_BATCH)
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert result.payment_hash == result.transaction_hash
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        devnet.client.llm_chat("openai/gpt-4.1", HAL)  # no settlement mode: no warning


# ---- TEE through the gateway --------------------------------------------------------------------------


def test_tee_completion_goes_through_the_gateway(devnet: Devnet) -> None:
    result = devnet.client.llm_completion(model_cid="gpt-4", prompt="Analyze this contract", max_tokens=500,
                                          temperature=0.0, inference_mode=og.LlmInferenceMode.TEE)
    assert result.tee_verified and result.payment_hash and result.proof is not None
    assert result.amount_paid and result.completion_output
    vanilla = devnet.client.llm_completion("gpt-4", "Analyze this contract", max_tokens=500)
    assert vanilla.completion_output == result.completion_output  # one reference model behind both paths
    assert vanilla.tee_signature is None and vanilla.proof is None


def test_tee_chat_with_settlement_alias(devnet: Devnet) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = devnet.client.llm_chat(model_cid="claude-3-opus", messages=HAL, max_tokens=300, temperature=0.1,
                                        inference_mode=og.LlmInferenceMode.TEE,
                                        settlement_mode=og.x402SettlementMode.SETTLE_METADATA)
    assert result.chat_output is not None and "HAL" in str(result.chat_output["content"])
    assert result.tee_verified and result.payment_hash and result.payment_hash == result.transaction_hash
    tools = devnet.client.llm_chat("gpt-4o", [{"role": "user", "content": "Weather in Paris in celsius?"}],
                                   inference_mode="TEE", tools=[WEATHER_TOOL], tool_choice="required")
    assert tools.finish_reason == "tool_calls" and tools.tee_verified


async def test_async_twins(devnet: Devnet) -> None:
    client = devnet.new_client()
    try:
        vanilla = await client.allm_chat("gpt-4o", [{"role": "user", "content": "What is 2 + 2?"}])
        assert vanilla.chat_output == {"role": "assistant", "content": "2 + 2 = 4."}
        completion = await client.allm_completion("gpt-4o", "The sky is", max_tokens=20)
        assert completion.transaction_hash and completion.completion_output
        tee = await client.allm_completion("gpt-4o", "The sky is", max_tokens=20,
                                           inference_mode=og.LlmInferenceMode.TEE)
        assert tee.tee_verified and tee.completion_output == completion.completion_output
        tee_chat = await client.allm_chat("gpt-4o", HAL, inference_mode=og.LlmInferenceMode.TEE)
        assert tee_chat.tee_verified
    finally:
        await client.aclose()


def test_vanilla_over_http(devnet_http: Devnet) -> None:
    client = og.new_client(email=None, password=None, private_key=devnet_http.accounts[3].private_key,
                           network=devnet_http.network)
    result = client.llm_chat(model_cid="openai/gpt-4.1", messages=HAL)
    assert result.chat_output is not None and result.chat_output["content"].endswith("Your name is HAL.")
    assert result.transaction_hash.startswith("0x")
