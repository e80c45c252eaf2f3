"""Request size and JSON nesting are bounded on every route of the devnet and in the SDK.

Invariants:
- every route that reads a body holds it to a published limit (`GET /` → `limits`): a larger body
  is answered 413 with the limit in the message, before the gateway prices, verifies or settles
  anything (declared length or chunked alike); file uploads stay streamed;
- no JSON the devnet or the SDK parses may be nested deeper than `bounded_json.MAX_DEPTH`: the
  attack (a ~200 KB body nested 99,000 deep) segfaulted the process, because a dependency raises
  Python's recursion limit to 100,000. Now it is a 400 (devnet), a revert (chain), or a typed
  error (SDK), and the process lives.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_abi import encode

import opengradient as og
from opengradient import bounded_json
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.limits import DEFAULT_LIMITS, MIB
from opengradient.legacy import LLM_CHAT_REQUEST, RUN_LLM_CHAT_SELECTOR
from opengradient.networks import INFERENCE_CONTRACT_ADDRESS
from tests.reliability.chainview import ChainView

DEEP = b"[" * 99_000 + b"]" * 99_000  # ~200 KB: what crashed the devnet


@pytest.fixture(scope="module")
def http(devnet_http: Devnet) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=devnet_http.url, timeout=60) as client:
        yield client


def _alive(http: httpx.Client) -> None:
    assert http.get("/").status_code == 200


def _chat(text: str) -> dict[str, Any]:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}], "max_tokens": 5}


def test_the_limits_are_published(http: httpx.Client) -> None:
    limits = http.get("/").json()["limits"]["request_body_bytes"]
    assert limits == {limit.route: limit.max_bytes for limit in DEFAULT_LIMITS}


def test_a_20_mb_chat_is_refused_before_any_payment(devnet_http: Devnet, http: httpx.Client) -> None:
    view = ChainView(devnet_http)
    height = view.block_number()
    body = json.dumps(_chat("x" * (20 * MIB))).encode()
    response = http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text[:300]
    message = response.json()["error"]["message"]
    assert "8 MiB" in message and "POST /v1/chat/completions" in message and "nothing was charged" in message
    assert "payment-required" not in response.headers  # never priced
    assert view.block_number() == height  # nothing settled
    _alive(http)


def test_a_chunked_body_without_length_is_cut_at_the_limit(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"email": "a@b.c", "password": "'
        for _ in range(64):
            yield b"p" * 1024
        yield b'"}'

    response = http.post("/auth/v1/accounts:signInWithPassword", content=chunks(),
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert "16 KiB" in response.json()["error"]["message"]
    _alive(http)


@pytest.mark.parametrize("path", ["/facilitator/verify", "/facilitator/settle", "/twins/api/v1/twins/x/chat",
                                  "/api/v0/models/"])
def test_small_routes_refuse_large_bodies(http: httpx.Client, path: str) -> None:
    response = http.post(path, content=b"{" + b" " * (2 * MIB) + b"}", headers={"Content-Type": "application/json"})
    assert response.status_code == 413, (path, response.text[:200])


def test_uploads_stream_past_the_small_limits(devnet_http: Devnet) -> None:
    client = devnet_http.new_client()
    repo = client.model_hub.create_model("limits-upload", "a 3 MiB file")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.bin"
        path.write_bytes(b"\x01" * (3 * MIB))
        uploaded = client.model_hub.upload(str(path), repo.name, repo.initialVersion)
    assert uploaded.size == 3 * MIB


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/twins/api/v1/twins/t/chat",
                                  "/rpc/alpha", "/rpc/payments", "/api/v0/models/",
                                  "/auth/v1/accounts:signInWithPassword", "/facilitator/settle"])
def test_a_body_nested_99000_deep_is_a_client_error_not_a_crash(http: httpx.Client, path: str) -> None:
    response = http.post(path, content=DEEP, headers={"Content-Type": "application/json",
                                                       "Authorization": "Bearer x", "X-API-Key": "x"})
    assert 400 <= response.status_code < 500 or "parse error" in response.text, (path, response.text[:200])
    _alive(http)


def test_deep_json_on_chain_reverts(devnet: Devnet) -> None:
    """The legacy LLM entry point parses tool parameters from a string in call data."""
    tools = [("a tool", "t", (b"[" * 99_000 + b"]" * 99_000).decode())]
    request: tuple[Any, ...] = (0, "meta-llama/Meta-Llama-3-8B-Instruct",
               [("user", "hi", "", "", [])], tools, "auto", 10, [], 0)
    data = RUN_LLM_CHAT_SELECTOR + encode([LLM_CHAT_REQUEST], [request])
    reply = devnet.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [
        {"to": INFERENCE_CONTRACT_ADDRESS, "data": "0x" + data.hex()}, "latest"]})
    assert isinstance(reply, dict) and "error" in reply
    assert "nested deeper" in reply["error"]["message"]


# ---- the SDK against a gateway that answers with deep JSON ----------------------------------------


def _deep_gateway(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.startswith("/v1/") and "payment-signature" not in request.headers:
        offer = {"x402Version": 2, "accepts": [{"scheme": "exact"}], "deep": json.loads("[" * 100 + "]" * 100)}
        header = base64.b64encode(json.dumps(offer).encode()[:-1] + b"," + b'"x":' + DEEP + b"}").decode()
        return httpx.Response(402, headers={"PAYMENT-REQUIRED": header}, content=b"{}")
    return httpx.Response(200, content=DEEP, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("call", ["chat", "completion", "rpc", "hub", "twins"])
def test_the_sdk_refuses_deep_json_with_a_typed_error(devnet: Devnet, call: str) -> None:
    client = og.Client(devnet.accounts[0].private_key, network=devnet.network,
                       transport=httpx.MockTransport(_deep_gateway), email="a@b.c", password="pw",
                       twins_api_key="k")
    with pytest.raises(og.OpenGradientError):
        if call == "chat":
            client.llm.chat(og.TEE_LLM.GPT_4O, [{"role": "user", "content": "hi"}])
        elif call == "completion":
            client.llm.completion(og.TEE_LLM.GPT_4O, "hi")
        elif call == "rpc":
            client.alpha.infer(devnet.model("price-regression").cid, og.InferenceMode.VANILLA,
                               devnet.model("price-regression").example_input)
        elif call == "hub":
            client.model_hub.list_files("m", "1.00")
        else:
            client.twins.chat("twin", og.TEE_LLM.GPT_4O, [{"role": "user", "content": "hi"}])


def test_bounded_loads_keeps_brackets_in_strings_and_refuses_depth() -> None:
    assert bounded_json.loads('{"a": "' + "[" * 10_000 + '"}') == {"a": "[" * 10_000}
    assert bounded_json.loads("[" * 128 + "]" * 128) is not None
    with pytest.raises(bounded_json.JSONNestingError):
        bounded_json.loads("[" * 129 + "]" * 129)
    with pytest.raises(json.JSONDecodeError):  # a nesting error is a decode error to handlers
        bounded_json.loads(DEEP)


# ---- the reference model's work is bounded ----------------------------------------------------------

HUGE_SCHEMA = {"type": "object", "required": ["xs"], "properties": {
    "xs": {"type": "array", "minItems": 10**9, "items": {"type": "string", "minLength": 10**9}}}}


def test_a_tool_schema_asking_for_1e9_items_is_answered_boundedly(devnet: Devnet) -> None:
    """The attack froze every route of the devnet; now the answer is as big as max_tokens allows."""
    tools = [{"type": "function", "function": {"name": "fill", "parameters": HUGE_SCHEMA}}]
    output = devnet.client.llm.chat(og.TEE_LLM.GPT_4O, [{"role": "user", "content": "fill it"}], max_tokens=50,
                                    tools=tools, tool_choice="required")
    assert output.tee_verified and output.chat_output is not None
    arguments = output.chat_output["tool_calls"][0]["function"]["arguments"]
    assert len(arguments) < 20_000 and json.loads(arguments)["xs"]


def test_a_json_schema_asking_for_1e9_items_is_cut_at_max_tokens(devnet: Devnet) -> None:
    output = devnet.client.llm.chat(og.TEE_LLM.GPT_4O, [{"role": "user", "content": "fill it"}], max_tokens=50,
                                    response_format={"type": "json_schema",
                                                     "json_schema": {"name": "huge", "schema": HUGE_SCHEMA}})
    assert output.tee_verified and output.finish_reason == "length"


def test_the_same_schema_through_a_free_eth_call_is_bounded(devnet: Devnet) -> None:
    tools = [("fill", "fill", json.dumps(HUGE_SCHEMA))]
    request: tuple[Any, ...] = (0, "meta-llama/Meta-Llama-3-8B-Instruct", [("user", "fill it", "", "", [])], tools,
                                "required", 0, [], 0)
    data = RUN_LLM_CHAT_SELECTOR + encode([LLM_CHAT_REQUEST], [request])
    reply = devnet.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [
        {"to": INFERENCE_CONTRACT_ADDRESS, "data": "0x" + data.hex()}, "latest"]})
    assert isinstance(reply, dict) and "result" in reply, reply
    assert len(reply["result"]) < 100_000
