"""The devnet's TEE LLM gateway: x402 payments on chain, signed responses, settlement records."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from x402 import x402ClientSync
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header
from x402.mechanisms.evm.exact.register import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentRequired, SettleResponse

from opengradient.client.tee import (
    TeeAttestation,
    TeeKey,
    canonical_chat_request,
    canonical_completion_request,
    output_hash,
    output_text,
    request_hash,
    verify_tee_signature,
)
from opengradient.devnet.chain.deploy import Deployer
from opengradient.devnet.node import FACILITATOR_ACCOUNT, OPERATOR_ACCOUNT, Devnet
from opengradient.devnet.services.llm.completions import Completion, Delta, UpstreamError
from opengradient.devnet.services.llm.enclave import PCR_HASH
from opengradient.devnet.services.llm.payments import (
    DEFAULT_MAX_TOKENS,
    PRICES,
    SettlementMode,
    parse_settlement_mode,
    price_of,
)
from opengradient.devnet.services.llm.reference import ReferenceModel
from opengradient.devnet.services.llm.settlement import merkle_leaf, merkle_proof, merkle_root, verify_merkle_proof
from opengradient.devnet.services.llm.upstream import UpstreamRouter

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(devnet: Devnet) -> Iterator[httpx.Client]:
    with httpx.Client(transport=devnet._bridge.transport, base_url=devnet.url, timeout=30) as client:
        yield client


def chat_body(text: str = "What is 2 + 2?", **extra: Any) -> dict[str, Any]:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}],
            "max_tokens": 50, **extra}


def x402_client(net: Devnet, index: int) -> x402ClientSync:
    client = x402ClientSync()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(net.accounts[index].private_key)))
    client.set_spend_controls({"allowed_assets": [{
        "network": net.network.payments.network, "asset": net.network.payments.token_address,
        "max_amount_per_payment": str(10**18)}]})
    return client


def required(response: httpx.Response) -> PaymentRequired:
    assert response.status_code == 402, response.text
    decoded = decode_payment_required_header(response.headers["payment-required"])
    assert isinstance(decoded, PaymentRequired)
    return decoded


def header_json(response: httpx.Response, name: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(response.headers[name]))


def pay(http: httpx.Client, client: x402ClientSync, body: dict[str, Any], path: str = CHAT,
        headers: dict[str, str] | None = None) -> tuple[httpx.Response, str]:
    """Ask, pay with x402's client, resend; returns the paid response and the payment header."""
    offer = required(http.post(path, json=body, headers=headers))
    signature = encode_payment_signature_header(client.create_payment_payload(offer))
    response = http.post(path, json=body, headers={**(headers or {}), "PAYMENT-SIGNATURE": signature})
    return response, signature


def opg_balance(net: Devnet, address: str) -> int:
    return int(Deployer(net.payments_chain, net.accounts[0]).call(
        net.gateway.contracts.opg_token, "OPGToken", "balanceOf", address))


def nonce_used(net: Devnet, payer: str, nonce: str) -> bool:
    return bool(Deployer(net.payments_chain, net.accounts[0]).call(
        net.gateway.contracts.opg_token, "OPGToken", "authorizationState", payer, nonce))


def rpc(chain: Any, method: str, *params: Any) -> Any:
    response = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert "error" not in response, response
    return response["result"]


def registry_key(net: Devnet) -> TeeKey:
    """The enclave key the TEE registry on the Alpha chain lists as the active LLM proxy."""
    tees = Deployer(net.alpha_chain, net.accounts[0]).call(
        net.gateway.tee_registry, "TEERegistry", "getActiveTEEs", 0)
    assert len(tees) == 1
    owner, payment_address, endpoint, public_key, _tls, pcr_hash, tee_type, enabled, *_ = tees[0]
    assert (tee_type, enabled, endpoint) == (0, True, net.url)
    assert to_checksum_address(owner) == to_checksum_address(payment_address) == net.gateway.pay_to
    assert pcr_hash == PCR_HASH
    return TeeKey(bytes(public_key))


def check_tee(net: Devnet, fields: dict[str, Any], canonical: dict[str, Any], output: str) -> None:
    verify_tee_signature(TeeAttestation.from_fields(fields), key=registry_key(net),
                         expected_request_hash=request_hash(canonical),
                         expected_output_hash=output_hash(output))


def sse_events(response: httpx.Response) -> list[Any]:
    events: list[Any] = []
    for block in response.text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = line[len("data: "):]
                events.append(data if data == "[DONE]" else json.loads(data))
    return events


def sign_authorization(key: str, *, token: str, chain_id: int, to: str, value: int,
                       valid_after: int = 0, valid_before: int | None = None,
                       nonce: bytes | None = None, name: str = "OPG", version: str = "2") -> dict[str, Any]:
    """An EIP-3009 `exact` payload signed by hand (to make the payments x402's client would not)."""
    nonce = nonce if nonce is not None else secrets.token_bytes(32)
    valid_before = valid_before if valid_before is not None else int(time.time()) + 300
    account = Account.from_key(key)
    message = {"from": account.address, "to": to, "value": value, "validAfter": valid_after,
               "validBefore": valid_before, "nonce": nonce}
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"}]},
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": name, "version": version, "chainId": chain_id, "verifyingContract": token},
        "message": message,
    }
    signature = Account.sign_typed_data(key, full_message=typed).signature
    return {"signature": "0x" + bytes(signature).hex(), "authorization": {
        "from": account.address, "to": to, "value": str(value), "validAfter": str(valid_after),
        "validBefore": str(valid_before), "nonce": "0x" + nonce.hex()}}


def payment_header(accepted: dict[str, Any], payload: dict[str, Any]) -> str:
    data = {"x402Version": 2, "accepted": accepted, "payload": payload}
    return base64.b64encode(json.dumps(data).encode()).decode()


# ----------------------------------------------------------------------------------------------
# wiring, pricing, 402
# ----------------------------------------------------------------------------------------------


def test_network_preset_has_the_real_opg_token(devnet: Devnet) -> None:
    token = devnet.network.payments.token_address
    assert int(token, 16) != 0
    assert rpc(devnet.payments_chain, "eth_getCode", token, "latest") != "0x"
    assert devnet.network.payments.network == devnet.gateway.network
    assert devnet.gateway.pay_to == devnet.accounts[OPERATOR_ACCOUNT].address
    assert devnet.gateway.facilitator.address == devnet.accounts[FACILITATOR_ACCOUNT].address
    assert opg_balance(devnet, devnet.accounts[1].address) > 0
    info = httpx.Client(transport=devnet._bridge.transport, base_url=devnet.url).get("/").json()
    assert info["llm"]["opg_token"] == token and info["llm"]["tee_simulated"] is True


def test_402_offer(devnet: Devnet, http: httpx.Client) -> None:
    response = http.post(CHAT, json=chat_body())
    assert response.status_code == 402 and response.json() == {}
    offer = required(response)
    assert offer.x402_version == 2 and offer.error == "Payment required"
    assert offer.resource is not None and offer.resource.url == f"{devnet.url}{CHAT}"
    assert [a.scheme for a in offer.accepts] == ["exact", "upto"]  # exact first, as before
    option = offer.accepts[0]
    assert option.scheme == "exact"
    assert option.network == f"eip155:{devnet.payments_chain.chain_id}"
    assert option.asset == devnet.network.payments.token_address
    assert option.pay_to == devnet.accounts[OPERATOR_ACCOUNT].address
    assert option.max_timeout_seconds == 300
    assert option.extra == {"name": "OPG", "version": "2"}
    assert option.amount == str(price_of("gpt-4o", 50))
    raw = json.loads(base64.b64decode(response.headers["PAYMENT-REQUIRED"]))
    assert set(raw["accepts"][0]) == {"scheme", "network", "amount", "asset", "payTo",
                                      "maxTimeoutSeconds", "extra"}
    upto = offer.accepts[1]  # the metered option: a Permit2 cap of many requests (tests/devnet/test_upto.py)
    assert upto.extra["assetTransferMethod"] == "permit2"
    assert upto.extra["facilitatorAddress"] == devnet.gateway.facilitator.address
    assert int(upto.amount) == 20 * int(option.amount) and upto.asset == option.asset


def test_price_depends_only_on_model_and_max_tokens(http: httpx.Client) -> None:
    def amount(body: dict[str, Any]) -> int:
        return int(required(http.post(CHAT, json=body)).accepts[0].amount)

    base = amount(chat_body())
    assert amount(chat_body("something else entirely", temperature=0.7)) == base
    assert amount({**chat_body(), "model": "gpt-4o"}) == base  # the 0.7.4 client's bare name
    assert amount(chat_body(max_tokens=51)) == base + PRICES["gpt-4o"].per_token
    no_budget = {k: v for k, v in chat_body().items() if k != "max_tokens"}
    assert amount(no_budget) == price_of("gpt-4o", DEFAULT_MAX_TOKENS)
    assert amount({**chat_body(), "model": "anthropic/claude-3.5-haiku"}) == price_of("claude-3.5-haiku", 50)


@pytest.mark.parametrize("body, fragment", [
    ({"model": "openai/nope-1", "messages": [{"role": "user", "content": "hi"}]}, "nope-1"),
    ({"model": "", "messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": "gpt-4o"}, "messages"),
    ({"model": "gpt-4o", "messages": "hi"}, "messages"),
    ({"model": "gpt-4o", "messages": [{"content": "no role"}]}, "role"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}, "max_tokens"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "tools": {}}, "tools"),
    (["not", "an", "object"], "object"),
])
def test_bad_requests_are_400_before_any_payment(http: httpx.Client, body: Any, fragment: str) -> None:
    response = http.post(CHAT, json=body)
    assert response.status_code == 400, response.text
    assert "payment-required" not in response.headers
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"] == "invalid_request_error" and error["code"] == 400


def test_malformed_json_and_unknown_settlement_mode_are_400(http: httpx.Client) -> None:
    response = http.post(CHAT, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]
    response = http.post(CHAT, json=chat_body(), headers={"X-SETTLEMENT-TYPE": "sometimes"})
    assert response.status_code == 400 and "X-SETTLEMENT-TYPE" in response.json()["error"]["message"]
    response = http.post(COMPLETIONS, json={"model": "gpt-4o", "prompt": 7})
    assert response.status_code == 400 and "prompt" in response.json()["error"]["message"]


@pytest.mark.parametrize("header, mode", [
    (None, SettlementMode.PRIVATE), ("settle", SettlementMode.PRIVATE), ("PRIVATE", SettlementMode.PRIVATE),
    ("settle-metadata", SettlementMode.INDIVIDUAL), ("Settle_Metadata", SettlementMode.INDIVIDUAL),
    ("individual", SettlementMode.INDIVIDUAL), ("settle-batch", SettlementMode.BATCH),
    ("settle batch", SettlementMode.BATCH), ("batch", SettlementMode.BATCH),
])
def test_settlement_mode_normalisation(header: str | None, mode: str) -> None:
    assert parse_settlement_mode(header) == mode


# ----------------------------------------------------------------------------------------------
# paid requests
# ----------------------------------------------------------------------------------------------


def test_paid_chat_moves_opg_and_is_signed_by_the_registered_enclave(devnet: Devnet,
                                                                     http: httpx.Client) -> None:
    client = x402_client(devnet, 1)
    payer, pay_to = devnet.accounts[1].address, devnet.gateway.pay_to
    before, before_to = opg_balance(devnet, payer), opg_balance(devnet, pay_to)
    body = chat_body()
    response, _ = pay(http, client, body)
    assert response.status_code == 200, response.text
    receipt = header_json(response, "PAYMENT-RESPONSE")
    assert receipt["success"] is True
    assert receipt["network"] == devnet.gateway.network
    assert to_checksum_address(receipt["payer"]) == payer
    amount = int(receipt["amount"])
    assert amount == price_of("gpt-4o", 50)
    assert response.headers["X-PAYMENT-RESPONSE"] == response.headers["PAYMENT-RESPONSE"]
    assert opg_balance(devnet, payer) == before - amount
    assert opg_balance(devnet, pay_to) == before_to + amount

    tx = rpc(devnet.payments_chain, "eth_getTransactionReceipt", receipt["transaction"])
    assert tx["status"] == "0x1"
    assert to_checksum_address(tx["from"]) == devnet.gateway.facilitator.address
    assert to_checksum_address(tx["to"]) == devnet.network.payments.token_address
    transfer = keccak(text="Transfer(address,address,uint256)")
    [log] = [entry for entry in tx["logs"] if entry["topics"][0] == "0x" + transfer.hex()]
    assert to_checksum_address("0x" + log["topics"][1][-40:]) == payer
    assert to_checksum_address("0x" + log["topics"][2][-40:]) == pay_to
    assert int(log["data"], 16) == amount

    data = response.json()
    assert data["object"] == "chat.completion" and data["model"] == "openai/gpt-4o"
    assert data["id"].startswith("chatcmpl-") and isinstance(data["created"], int)
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    check_tee(devnet, data, canonical_chat_request(body), choice["message"]["content"])
    assert data["tee_id"] == registry_key(devnet).tee_id
    assert isinstance(data["tee_timestamp"], int) and abs(data["tee_timestamp"] - time.time()) < 60
    assert not data["tee_request_hash"].startswith("0x")


def test_bare_model_name_placeholder_auth_and_lower_case_headers(devnet: Devnet, http: httpx.Client) -> None:
    """What the 0.7.4 client sends: bare model, a placeholder bearer token, lower-case names."""
    client = x402_client(devnet, 2)
    body = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "hello"}],
            "max_tokens": 40, "temperature": 0.0}
    offer = required(http.post(CHAT, json=body, headers={"Authorization": "Bearer 0x1234"}))
    signature = encode_payment_signature_header(client.create_payment_payload(offer))
    response = http.post(CHAT, json=body, headers=[("authorization", "Bearer 0x1234"),
                                                   ("payment-signature", signature),
                                                   ("x-settlement-type", "settle")])
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model"] == "gpt-4o"
    check_tee(devnet, data, canonical_chat_request(body), data["choices"][0]["message"]["content"])


def test_streamed_chat_settles_before_the_first_byte(devnet: Devnet, http: httpx.Client) -> None:
    client = x402_client(devnet, 3)
    body = chat_body("Tell me about the sea.", stream=True, stream_options={"include_usage": True})
    payer = devnet.accounts[3].address
    before = opg_balance(devnet, payer)
    offer = required(http.post(CHAT, json=body))
    signature = encode_payment_signature_header(client.create_payment_payload(offer))
    with http.stream("POST", CHAT, json=body, headers={"PAYMENT-SIGNATURE": signature}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        receipt = header_json(response, "PAYMENT-RESPONSE")  # before any body byte is read
        assert receipt["success"] is True
        assert opg_balance(devnet, payer) == before - int(receipt["amount"])
        response.read()
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"]
               and c["model"] == "openai/gpt-4o" and isinstance(c["created"], int) for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    # finish chunk (finish_reason, usage, TEE), then OpenAI's separate usage chunk (empty choices)
    finish, usage_chunk = chunks[-2], chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["usage"]["completion_tokens"] > 0
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == finish["usage"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-2])
    assert text
    check_tee(devnet, finish, canonical_chat_request(body), text)
    check_tee(devnet, usage_chunk, canonical_chat_request(body), text)


def test_stream_without_include_usage_ends_with_the_signed_finish_chunk(devnet: Devnet,
                                                                        http: httpx.Client) -> None:
    body = chat_body("Say something short.", stream=True)
    response, _ = pay(http, x402_client(devnet, 3), body)
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    last = events[-2]
    assert last["choices"][0]["finish_reason"] == "stop" and "usage" in last and "tee_signature" in last
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-2])
    check_tee(devnet, last, canonical_chat_request(body), text)


def test_tool_calls_are_signed_over_the_calls(devnet: Devnet, http: httpx.Client) -> None:
    body = chat_body("What's the weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto")
    response, _ = pay(http, x402_client(devnet, 4), body)
    assert response.status_code == 200, response.text
    data = response.json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    check_tee(devnet, data, canonical_chat_request(body),
              output_text(choice["message"]["content"], choice["message"]["tool_calls"], "tool_calls"))


def test_streamed_tool_calls(devnet: Devnet, http: httpx.Client) -> None:
    body = chat_body("What's the weather in Paris?", tools=[WEATHER_TOOL],
                     tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True)
    response, _ = pay(http, x402_client(devnet, 4), body)
    events = sse_events(response)
    last = events[-2]
    assert last["choices"][0]["finish_reason"] == "tool_calls"
    calls: dict[int, dict[str, Any]] = {}
    for event in events[:-2]:
        for piece in event["choices"][0]["delta"].get("tool_calls") or []:
            slot = calls.setdefault(piece["index"], {"id": "", "type": "function",
                                                     "function": {"name": "", "arguments": ""}})
            slot["id"] = piece.get("id") or slot["id"]
            slot["function"]["name"] = piece["function"].get("name") or slot["function"]["name"]
            slot["function"]["arguments"] += piece["function"].get("arguments") or ""
    assembled = [calls[i] for i in sorted(calls)]
    assert json.loads(assembled[0]["function"]["arguments"]) == {"city": "Paris"}
    check_tee(devnet, last, canonical_chat_request(body), output_text(None, assembled, "tool_calls"))


def test_completion_returns_text_and_completion_key(devnet: Devnet, http: httpx.Client) -> None:
    body = {"model": "openai/gpt-4o", "prompt": "Once upon a time", "max_tokens": 30, "stop": ["\n\n"]}
    response, _ = pay(http, x402_client(devnet, 5), body, COMPLETIONS)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["object"] == "text_completion" and data["id"].startswith("cmpl-")
    text = data["choices"][0]["text"]
    assert text and data["completion"] == text
    check_tee(devnet, data, canonical_completion_request(body), text)


def test_streamed_completion(devnet: Devnet, http: httpx.Client) -> None:
    body = {"model": "gpt-4o", "prompt": "The devnet is", "max_tokens": 30, "stream": True}
    response, _ = pay(http, x402_client(devnet, 5), body, COMPLETIONS)
    events = sse_events(response)
    assert events[-1] == "[DONE]" and all(e["object"] == "text_completion" for e in events[:-1])
    text = "".join(e["choices"][0]["text"] for e in events[:-2])
    check_tee(devnet, events[-2], canonical_completion_request(body), text)


# ----------------------------------------------------------------------------------------------
# failures: upstream down, refused payments
# ----------------------------------------------------------------------------------------------


class _DownUpstream:
    def supports(self, model: str) -> bool:
        return True

    async def chat(self, request: dict[str, Any]) -> Completion:
        raise UpstreamError("connection refused", status=None)

    complete = chat

    async def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        raise UpstreamError("connection refused")
        yield Delta()  # pragma: no cover

    stream_complete = stream_chat


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_down_is_503_and_nothing_is_settled(devnet: Devnet, http: httpx.Client,
                                                     monkeypatch: pytest.MonkeyPatch, stream: bool) -> None:
    monkeypatch.setattr(devnet.gateway, "router", UpstreamRouter(_DownUpstream()))
    client = x402_client(devnet, 6)
    payer = devnet.accounts[6].address
    before, before_to = opg_balance(devnet, payer), opg_balance(devnet, devnet.gateway.pay_to)
    devnet.gateway.settlements.wait_idle()  # earlier tests' records are sent in the background
    head = devnet.payments_chain.block_number
    body = chat_body(stream=stream)
    offer = required(http.post(CHAT, json=body))
    payload = client.create_payment_payload(offer)
    response = http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": encode_payment_signature_header(payload)})
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "upstream_unavailable"
    assert "payment-response" not in response.headers
    assert opg_balance(devnet, payer) == before
    assert opg_balance(devnet, devnet.gateway.pay_to) == before_to
    assert not nonce_used(devnet, payer, payload.payload["authorization"]["nonce"])
    assert devnet.payments_chain.block_number == head


def _refusal(devnet: Devnet, http: httpx.Client, header: str, body: dict[str, Any],
             payer: str) -> PaymentRequired:
    """Send a payment that must be refused; check nothing moved."""
    before, before_to = opg_balance(devnet, payer), opg_balance(devnet, devnet.gateway.pay_to)
    response = http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": header})
    offer = required(response)
    assert response.json() == {}
    assert opg_balance(devnet, payer) == before
    assert opg_balance(devnet, devnet.gateway.pay_to) == before_to
    return offer


@pytest.mark.parametrize("case, code", [
    ("expired", "invalid_exact_evm_payload_authorization_valid_before"),
    ("not_yet_valid", "invalid_exact_evm_payload_authorization_valid_after"),
    ("underpaid", "invalid_exact_evm_payload_authorization_value_mismatch"),
    ("misaddressed", "invalid_exact_evm_payload_recipient_mismatch"),
    ("badly_signed", "invalid_exact_evm_payload_signature"),
    ("wrong_domain", "invalid_exact_evm_payload_signature"),
    ("other_network", "network_mismatch"),
    ("insufficient_balance", "invalid_exact_evm_insufficient_balance"),
    ("used_on_chain", "invalid_exact_evm_nonce_already_used"),
])
def test_refused_payments(devnet: Devnet, http: httpx.Client, case: str, code: str) -> None:
    body = chat_body()
    offer = required(http.post(CHAT, json=body))
    option = offer.accepts[0]
    accepted = option.model_dump(by_alias=True)
    key = devnet.accounts[7].private_key
    kwargs: dict[str, Any] = {"token": option.asset, "chain_id": devnet.payments_chain.chain_id,
                              "to": option.pay_to, "value": int(option.amount)}
    now = int(time.time())
    if case == "expired":
        kwargs["valid_before"] = now - 10
    elif case == "not_yet_valid":
        kwargs["valid_after"] = now + 120
    elif case == "underpaid":
        kwargs["value"] -= 1
        accepted["amount"] = str(kwargs["value"])
    elif case == "misaddressed":
        kwargs["to"] = accepted["payTo"] = devnet.accounts[0].address
    elif case == "badly_signed":
        pass
    elif case == "wrong_domain":
        kwargs["name"] = "USDC"
    elif case == "other_network":
        kwargs["chain_id"] = 84532
        accepted["network"] = "eip155:84532"
    elif case == "insufficient_balance":
        key = "0x" + secrets.token_hex(32)
    payload = sign_authorization(key, **kwargs)
    if case == "badly_signed":
        raw = bytearray.fromhex(payload["signature"][2:])
        raw[10] ^= 0xFF
        payload["signature"] = "0x" + raw.hex()
    if case == "used_on_chain":  # someone already submitted this authorization
        auth = payload["authorization"]
        signature = bytes.fromhex(payload["signature"][2:])
        Deployer(devnet.payments_chain, devnet.accounts[0]).transact(
            option.asset, "OPGToken",
            "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)",
            auth["from"], auth["to"], int(auth["value"]), int(auth["validAfter"]), int(auth["validBefore"]),
            auth["nonce"], signature[64], signature[:32], signature[32:64])
    payer = Account.from_key(key).address
    refused = _refusal(devnet, http, payment_header(accepted, payload), body, payer)
    assert refused.error == code
    assert refused.accepts[0] == option  # a fresh offer, the same price
    if case != "used_on_chain":
        assert not nonce_used(devnet, payer, payload["authorization"]["nonce"])


def test_mismatched_accepted_and_malformed_headers_are_refused(devnet: Devnet, http: httpx.Client) -> None:
    body = chat_body()
    option = required(http.post(CHAT, json=body)).accepts[0]
    accepted = option.model_dump(by_alias=True)
    payload = sign_authorization(devnet.accounts[7].private_key, token=option.asset,
                                 chain_id=devnet.payments_chain.chain_id, to=option.pay_to,
                                 value=int(option.amount))
    payer = devnet.accounts[7].address
    refused = _refusal(devnet, http, payment_header({**accepted, "maxTimeoutSeconds": 5}, payload), body, payer)
    assert refused.error == "No matching payment requirements"
    for garbage in ("not base64!", base64.b64encode(b"[1, 2]").decode(),
                    base64.b64encode(b'{"x402Version": 2}').decode()):
        assert _refusal(devnet, http, garbage, body, payer).error == "invalid_payload"


def test_replayed_authorization_with_another_body_is_refused(devnet: Devnet, http: httpx.Client) -> None:
    client = x402_client(devnet, 1)
    body = chat_body("first question")
    response, signature = pay(http, client, body)
    assert response.status_code == 200
    other = chat_body("a different question")
    refused = _refusal(devnet, http, signature, other, devnet.accounts[1].address)
    assert refused.error == "invalid_exact_evm_nonce_already_used"


def test_v1_x_payment_header(devnet: Devnet, http: httpx.Client) -> None:
    """A legacy x402 v1 payload in `X-PAYMENT` is accepted; the receipt comes as X-PAYMENT-RESPONSE."""
    body = chat_body("v1 please")
    option = required(http.post(CHAT, json=body)).accepts[0]
    payload = sign_authorization(devnet.accounts[2].private_key, token=option.asset,
                                 chain_id=devnet.payments_chain.chain_id, to=option.pay_to,
                                 value=int(option.amount))
    v1 = {"x402Version": 1, "scheme": "exact", "network": option.network, "payload": payload}
    header = base64.b64encode(json.dumps(v1).encode()).decode()
    response = http.post(CHAT, json=body, headers={"X-PAYMENT": header})
    assert response.status_code == 200, response.text
    receipt = header_json(response, "X-PAYMENT-RESPONSE")
    assert receipt["success"] is True and receipt["network"] == option.network
    # a refused v1 payment gets the offer in the 402 body (v1 clients read it there)
    response = http.post(CHAT, json=body, headers={"X-PAYMENT": header.replace("A", "B", 1)[:-8]})
    assert response.status_code == 402
    assert response.json()["x402Version"] == 1
    assert response.json()["accepts"][0]["maxAmountRequired"] == option.amount


# ----------------------------------------------------------------------------------------------
# idempotent retries
# ----------------------------------------------------------------------------------------------


def test_retry_with_the_same_authorization_replays_without_paying_again(devnet: Devnet,
                                                                         http: httpx.Client) -> None:
    client = x402_client(devnet, 2)
    payer = devnet.accounts[2].address
    before = opg_balance(devnet, payer)
    body = chat_body("retry me")
    first, signature = pay(http, client, body)
    assert first.status_code == 200
    devnet.gateway.settlements.wait_idle()  # the first answer's OGSettlement record is sent in the background
    head = devnet.payments_chain.block_number
    again = http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": signature})
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["PAYMENT-RESPONSE"] == first.headers["PAYMENT-RESPONSE"]
    assert devnet.payments_chain.block_number == head  # no transaction at all
    assert opg_balance(devnet, payer) == before - int(header_json(first, "PAYMENT-RESPONSE")["amount"])


def test_stream_retry_replays_the_stream(devnet: Devnet, http: httpx.Client) -> None:
    body = chat_body("stream retry", stream=True)
    first, signature = pay(http, x402_client(devnet, 2), body)
    assert first.status_code == 200
    again = http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": signature})
    assert again.text == first.text
    assert again.headers["PAYMENT-RESPONSE"] == first.headers["PAYMENT-RESPONSE"]


async def test_concurrent_duplicates_settle_once(devnet: Devnet) -> None:
    client = x402_client(devnet, 5)
    payer = devnet.accounts[5].address
    before = opg_balance(devnet, payer)
    body = chat_body("concurrent duplicates")
    async with httpx.AsyncClient(transport=devnet._bridge.async_transport, base_url=devnet.url) as http:
        offer = required(await http.post(CHAT, json=body))
        signature = encode_payment_signature_header(client.create_payment_payload(offer))
        responses = await asyncio.gather(*[
            http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": signature}) for _ in range(6)])
    assert [r.status_code for r in responses] == [200] * 6
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["PAYMENT-RESPONSE"] for r in responses}) == 1
    assert opg_balance(devnet, payer) == before - int(header_json(responses[0], "PAYMENT-RESPONSE")["amount"])


async def test_concurrent_distinct_payments_all_settle(devnet: Devnet) -> None:
    """Many payers at once: the facilitator's nonce handling keeps every settlement."""
    clients = [x402_client(devnet, i) for i in range(1, 8)]
    async with httpx.AsyncClient(transport=devnet._bridge.async_transport, base_url=devnet.url,
                                 timeout=60) as http:
        body = chat_body("many at once")
        offer = required(await http.post(CHAT, json=body))
        headers = [encode_payment_signature_header(clients[i % 7].create_payment_payload(offer))
                   for i in range(24)]
        responses = await asyncio.gather(*[
            http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": h}) for h in headers])
    assert [r.status_code for r in responses] == [200] * 24
    transactions = {header_json(r, "PAYMENT-RESPONSE")["transaction"] for r in responses}
    assert len(transactions) == 24
    for tx in transactions:
        assert rpc(devnet.payments_chain, "eth_getTransactionReceipt", tx)["status"] == "0x1"
    devnet.gateway.settlements.flush()
    head = rpc(devnet.payments_chain, "eth_getBlockByNumber", "latest", False)
    assert int(head["timestamp"], 16) <= time.time() + 1  # block time stays on the wall clock


def test_failed_settlement_is_402_with_the_failed_receipt(devnet: Devnet, http: httpx.Client,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(payload: Any, requirements: Any, *, verified: bool = False) -> SettleResponse:
        return SettleResponse(success=False, error_reason="transaction_failed", transaction="",
                              network=devnet.gateway.network, payer=devnet.accounts[3].address)

    monkeypatch.setattr(devnet.gateway.facilitator, "settle", fail)
    client = x402_client(devnet, 3)
    body = chat_body("settlement fails")
    before = opg_balance(devnet, devnet.accounts[3].address)
    devnet.gateway.settlements.flush()
    queued = len(devnet.gateway.settlements.transactions)
    response, signature = pay(http, client, body)
    assert required(response).error == "transaction_failed"
    receipt = header_json(response, "PAYMENT-RESPONSE")
    assert receipt["success"] is False and receipt["errorReason"] == "transaction_failed"
    assert opg_balance(devnet, devnet.accounts[3].address) == before
    devnet.gateway.settlements.flush()
    assert len(devnet.gateway.settlements.transactions) == queued
    monkeypatch.undo()  # the authorization was never used: the same payment now goes through
    retried = http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": signature})
    assert retried.status_code == 200 and header_json(retried, "PAYMENT-RESPONSE")["success"] is True


class _SlowUpstream:
    """The reference model, streaming one piece every 30 ms."""

    def __init__(self) -> None:
        self.inner = ReferenceModel()

    def supports(self, model: str) -> bool:
        return self.inner.supports(model)

    async def chat(self, request: dict[str, Any]) -> Completion:
        return await self.inner.chat(request)

    async def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        async for delta in self.inner.stream_chat(request):
            await asyncio.sleep(0.03)
            yield delta

    async def complete(self, request: dict[str, Any]) -> Completion:
        return await self.inner.complete(request)

    def stream_complete(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        return self.inner.stream_complete(request)


def test_a_client_that_leaves_mid_stream_gets_the_whole_stream_on_retry(
        devnet_http: Devnet, monkeypatch: pytest.MonkeyPatch) -> None:
    net = devnet_http
    monkeypatch.setattr(net.gateway, "router", UpstreamRouter(_SlowUpstream()))
    client = x402_client(net, 4)
    payer = net.accounts[4].address
    before = opg_balance(net, payer)
    body = chat_body("Tell me a long story about the devnet and its many blocks.", stream=True,
                     max_tokens=60)
    with httpx.Client(base_url=net.url, timeout=30) as http:
        offer = required(http.post(CHAT, json=body))
        signature = encode_payment_signature_header(client.create_payment_payload(offer))
        with http.stream("POST", CHAT, json=body, headers={"PAYMENT-SIGNATURE": signature}) as first:
            assert first.status_code == 200
            receipt = first.headers["PAYMENT-RESPONSE"]
            next(first.iter_lines())  # one event, then the client goes away
        deadline = time.monotonic() + 10
        while True:  # the retry waits for the background completion, then replays it
            retried = http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": signature})
            if retried.status_code == 200 or time.monotonic() > deadline:
                break
    assert retried.status_code == 200, retried.text
    assert retried.headers["PAYMENT-RESPONSE"] == receipt
    events = sse_events(retried)
    assert events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert opg_balance(net, payer) == before - int(header_json(retried, "PAYMENT-RESPONSE")["amount"])


# ----------------------------------------------------------------------------------------------
# settlement records on OGSettlement
# ----------------------------------------------------------------------------------------------


def _logs(devnet: Devnet, signature: str) -> list[dict[str, Any]]:
    return rpc(devnet.payments_chain, "eth_getLogs", {
        "address": devnet.gateway.contracts.settlement, "fromBlock": "0x0", "toBlock": "latest",
        "topics": ["0x" + keccak(text=signature).hex()]})


def test_settlement_modes_are_recorded_on_chain(devnet: Devnet, http: httpx.Client) -> None:
    client = x402_client(devnet, 6)
    paid: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {}
    for mode in ("settle", "settle-metadata", "individual", "settle-batch", "batch", "private"):
        body = chat_body(f"record me as {mode}")
        response, _ = pay(http, client, body, headers={"X-SETTLEMENT-TYPE": mode})
        assert response.status_code == 200, response.text
        paid[mode] = (body, response.json(), header_json(response, "PAYMENT-RESPONSE"))
    devnet.gateway.settlements.flush()
    assert devnet.gateway.settlements.pending_batch == 0

    settled = {log["topics"][1]: log for log in _logs(
        devnet, "Settled(bytes32,bytes32,address,bytes32,uint256)")}
    for mode in ("settle", "private"):
        body, data, receipt = paid[mode]
        log = settled[receipt["transaction"]]
        assert log["topics"][2] == "0x" + data["tee_request_hash"]
        assert to_checksum_address("0x" + log["topics"][3][-40:]) == to_checksum_address(receipt["payer"])
        out_hash, amount = abi_decode(["bytes32", "uint256"], bytes.fromhex(log["data"][2:]))
        assert out_hash.hex() == data["tee_output_hash"] and amount == int(receipt["amount"])

    with_metadata = {log["topics"][1]: log for log in _logs(
        devnet, "SettledWithMetadata(bytes32,bytes32,address,bytes32,uint256,string,string,string)")}
    for mode in ("settle-metadata", "individual"):
        body, data, receipt = paid[mode]
        log = with_metadata[receipt["transaction"]]
        out_hash, amount, model, given, output = abi_decode(
            ["bytes32", "uint256", "string", "string", "string"], bytes.fromhex(log["data"][2:]))
        assert model == "openai/gpt-4o" and amount == int(receipt["amount"])
        assert json.loads(given) == canonical_chat_request(body)
        assert output == data["choices"][0]["message"]["content"]
        assert keccak(text=given).hex() == data["tee_request_hash"]
        assert out_hash.hex() == data["tee_output_hash"]

    batch = devnet.gateway.settlements.batches[-1]
    leaves = [merkle_leaf(bytes.fromhex(paid[m][1]["tee_request_hash"]),
                          bytes.fromhex(paid[m][1]["tee_output_hash"])) for m in ("settle-batch", "batch")]
    assert batch.leaves[-2:] == leaves
    [log] = [entry for entry in _logs(devnet, "BatchSettled(uint256,bytes32,uint256)")
             if entry["transactionHash"] == batch.tx_hash]
    root, count = abi_decode(["bytes32", "uint256"], bytes.fromhex(log["data"][2:]))
    assert root == batch.root == merkle_root(batch.leaves) and count == len(batch.leaves)
    batch_id = int(log["topics"][1], 16)
    index = len(batch.leaves) - 1
    proof = merkle_proof(batch.leaves, index)
    assert verify_merkle_proof(batch.leaves[index], proof, root)
    data = paid["batch"][1]
    assert Deployer(devnet.payments_chain, devnet.accounts[0]).call(
        devnet.gateway.contracts.settlement, "OGSettlement", "verifyBatchMember", batch_id,
        bytes.fromhex(data["tee_request_hash"]), bytes.fromhex(data["tee_output_hash"]), proof) is True


def test_a_full_batch_is_recorded_without_flush(devnet: Devnet, http: httpx.Client) -> None:
    recorder = devnet.gateway.settlements
    recorder.flush()
    batches = len(recorder.batches)
    client = x402_client(devnet, 4)
    for i in range(recorder.batch_size):
        response, _ = pay(http, client, chat_body(f"batch item {i}"), headers={"X-SETTLEMENT-TYPE": "batch"})
        assert response.status_code == 200
    assert recorder.wait_idle(30)
    assert len(recorder.batches) == batches + 1 and recorder.pending_batch == 0
    assert len(recorder.batches[-1].leaves) == recorder.batch_size


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 17])
def test_merkle_proofs(n: int) -> None:
    leaves = [hashlib.sha3_256(bytes([i])).digest() for i in range(n)]
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        assert verify_merkle_proof(leaf, merkle_proof(leaves, i), root)
    assert not verify_merkle_proof(b"\x01" * 32, merkle_proof(leaves, 0), root)


# ----------------------------------------------------------------------------------------------
# enclave key and attestation
# ----------------------------------------------------------------------------------------------


def test_signing_key_matches_the_registry(devnet: Devnet, http: httpx.Client) -> None:
    data = http.get("/signing-key").json()
    key = TeeKey.from_pem(data["public_key"])
    assert key == registry_key(devnet)
    assert data["tee_id"] == key.tee_id == devnet.gateway.enclave.tee_id
    assert data["algorithm"] == "RSA-PSS-SHA256"
    assert data["attestation_url"] == f"{devnet.url}/enclave/attestation"


def test_attestation_binds_the_key_and_the_nonce(devnet: Devnet, http: httpx.Client) -> None:
    nonce = secrets.token_bytes(16)
    data = http.get("/enclave/attestation", params={"nonce": "0x" + nonce.hex()}).json()
    document = data["document"]
    der = devnet.gateway.enclave.public_key_der
    assert data["simulated"] is True and document["simulated"] is True
    assert "no hardware attestation" in data["note"].lower()
    assert document["nonce"] == nonce.hex()
    assert document["public_key_sha256"] == hashlib.sha256(der).hexdigest()
    assert document["public_key_keccak256"] == keccak(der).hex()
    assert document["tee_id"] == devnet.gateway.enclave.tee_id
    public = serialization.load_der_public_key(der)
    assert isinstance(public, rsa.RSAPublicKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signed = json.dumps(document, sort_keys=True).encode()
    public.verify(base64.b64decode(data["signature"]), signed, pss, hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(data["signature"]), signed.replace(b"true", b"false"), pss,
                      hashes.SHA256())
    for bad in ({}, {"nonce": ""}, {"nonce": "xyz"}, {"nonce": "abc"}, {"nonce": "00" * 65}):
        response = http.get("/enclave/attestation", params=bad)
        assert response.status_code == 400 and "nonce" in response.json()["error"]["message"]


# ----------------------------------------------------------------------------------------------
# facilitator over HTTP (shapes; x402's server uses it in test_x402_interop)
# ----------------------------------------------------------------------------------------------


def test_facilitator_http_routes(devnet: Devnet, http: httpx.Client) -> None:
    supported = http.get("/facilitator/supported").json()
    assert [k["scheme"] for k in supported["kinds"]] == ["exact", "upto"]
    assert supported["kinds"][0] == {"x402Version": 2, "scheme": "exact", "network": devnet.gateway.network}
    assert supported["kinds"][1]["extra"] == {"facilitatorAddress": devnet.gateway.facilitator.address}
    assert supported["signers"]["eip155:*"] == [devnet.gateway.facilitator.address]
    assert http.post("/facilitator/verify", json={"nope": 1}).status_code == 400

    option = required(http.post(CHAT, json=chat_body())).accepts[0]
    requirements = option.model_dump(by_alias=True)
    payload = sign_authorization(devnet.accounts[7].private_key, token=option.asset,
                                 chain_id=devnet.payments_chain.chain_id, to=option.pay_to,
                                 value=int(option.amount))
    request = {"x402Version": 2, "paymentPayload": {"x402Version": 2, "accepted": requirements,
                                                    "payload": payload},
               "paymentRequirements": requirements}
    verified = http.post("/facilitator/verify", json=request).json()
    assert verified == {"isValid": True, "payer": devnet.accounts[7].address}
    other = {**requirements, "network": "eip155:84532"}
    wrong = http.post("/facilitator/verify", json={**request, "paymentRequirements": other}).json()
    assert wrong["isValid"] is False and wrong["invalidReason"] == "network_mismatch"
    settled = http.post("/facilitator/settle", json=request).json()
    assert settled["success"] is True and settled["network"] == devnet.gateway.network
    again = http.post("/facilitator/settle", json=request).json()
    assert again["success"] is False and again["errorReason"] == "invalid_exact_evm_nonce_already_used"


def test_requests_are_logged_without_the_payment_signature(devnet: Devnet, http: httpx.Client,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="opengradient.devnet.gateway"):
        response, signature = pay(http, x402_client(devnet, 1), chat_body("log me"))
    assert response.status_code == 200
    tx = header_json(response, "PAYMENT-RESPONSE")["transaction"]
    lines = [r.getMessage() for r in caplog.records if r.name == "opengradient.devnet.gateway"]
    assert any("POST /v1/chat/completions model=openai/gpt-4o status=402" in line for line in lines)
    [paid] = [line for line in lines if "status=200" in line]
    assert f"amount={price_of('gpt-4o', 50)}" in paid and f"tx={tx[:10]}" in paid
    payload = json.loads(base64.b64decode(signature))
    secrets_seen = [signature, payload["payload"]["signature"], payload["payload"]["signature"][2:]]
    assert not any(secret in record.getMessage() or secret in str(record.args)
                   for record in caplog.records for secret in secrets_seen)


def test_unpaid_mode_serves_signed_answers_without_payment(devnet: Devnet, http: httpx.Client,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devnet.gateway, "require_payment", False)
    body = chat_body("free?")
    response = http.post(CHAT, json=body)
    assert response.status_code == 200 and "payment-response" not in response.headers
    data = response.json()
    check_tee(devnet, data, canonical_chat_request(body), data["choices"][0]["message"]["content"])


@pytest.mark.skipif(not os.environ.get("OG_GATEWAY_TIMINGS"), reason="set OG_GATEWAY_TIMINGS=1 to print timings")
def test_print_timings(devnet: Devnet, http: httpx.Client) -> None:  # pragma: no cover - a measurement
    import statistics

    client = x402_client(devnet, 1)
    body = chat_body("timing")
    offer = required(http.post(CHAT, json=body))
    paid, settle = [], []
    for _ in range(50):
        header = encode_payment_signature_header(client.create_payment_payload(offer))
        started = time.perf_counter()
        assert http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": header}).status_code == 200
        paid.append(time.perf_counter() - started)
        settle.append(devnet.gateway.last_settle_seconds)
    devnet.gateway.require_payment = False
    try:
        unpaid = []
        for _ in range(50):
            started = time.perf_counter()
            assert http.post(CHAT, json=body).status_code == 200
            unpaid.append(time.perf_counter() - started)
    finally:
        devnet.gateway.require_payment = True
    print(f"\nunpaid {statistics.median(unpaid) * 1e3:.2f} ms, paid {statistics.median(paid) * 1e3:.2f} ms, "
          f"settle {statistics.median(settle) * 1e3:.2f} ms")
