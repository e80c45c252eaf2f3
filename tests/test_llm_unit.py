"""LLM client pieces that need no server: request validation, SSE parsing, TEE checks, payment choice."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import strategies as st

import opengradient as og
from opengradient.client.llm import chat_body, completion_body, model_name, opg_to_base_units
from opengradient.client.payments import Payer
from opengradient.client.sse import SSEDecoder, StreamAssembler
from opengradient.client.tee import (
    TeeAttestation,
    TeeKey,
    canonical_chat_request,
    output_hash,
    output_text,
    request_hash,
    signed_message,
    verify_tee_signature,
)
from opengradient.client.wallet import Wallet
from opengradient.networks import PaymentNetwork

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_DER = _RSA.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
KEY = TeeKey(_DER)


def _sign(req: bytes, out: bytes, ts: int) -> dict[str, Any]:
    signature = _RSA.sign(signed_message(req, out, ts),
                          padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    return {"tee_signature": base64.b64encode(signature).decode(), "tee_request_hash": req.hex(),
            "tee_output_hash": out.hex(), "tee_timestamp": ts, "tee_id": KEY.tee_id}


# -- request validation -------------------------------------------------------------------------


def test_model_names() -> None:
    assert model_name(og.TEE_LLM.GPT_4O) == "openai/gpt-4o"
    assert model_name("gpt-4o") == "gpt-4o"
    assert model_name("my-provider/some-model") == "my-provider/some-model"
    for bad in ["", "  ", "/gpt", "openai/", None, 3]:
        with pytest.raises(og.InvalidInputError):
            model_name(bad)  # type: ignore[arg-type]


def test_chat_body() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = chat_body(og.TEE_LLM.GPT_4O, [{"role": "user", "content": "hi"}], stop_sequence="END", tools=tools,
                     tool_choice="f", stream=True, response_format={"type": "json_object"})
    assert body["model"] == "openai/gpt-4o" and body["stop"] == ["END"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "tools" not in chat_body("m", [{"role": "user", "content": "x"}], tools=[])
    named = {"type": "function", "function": {"name": "f"}}
    assert chat_body("m", [{"role": "user", "content": "x"}], tools=tools, tool_choice=named)["tool_choice"] == named


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"messages": []}, "non-empty list"),
        ({"messages": "hello"}, "non-empty list"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "role 'wizard'"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"stop_sequence": [""]}, "stop_sequence"),
        ({"tools": [{"name": "f"}]}, "tools\\[0\\]"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": 5}, "tool_choice"),
        ({"response_format": "json"}, "response_format"),
    ],
)
def test_chat_body_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], **kwargs}
    with pytest.raises(og.InvalidInputError, match=match):
        chat_body("openai/gpt-4o", **args)


def test_completion_body_and_opg_units() -> None:
    assert completion_body("m", "p", stop_sequence=["a"])["stop"] == ["a"]
    with pytest.raises(og.InvalidInputError):
        completion_body("m", "")
    assert opg_to_base_units(5) == 5 * 10**18
    assert opg_to_base_units("0.000000000000000001") == 1
    for bad in [-1, "abc", "1e-19", float("nan")]:
        with pytest.raises(og.InvalidInputError):
            opg_to_base_units(bad)


# -- SSE ----------------------------------------------------------------------------------------


def _events(lines: list[str]) -> list[str]:
    decoder = SSEDecoder()
    out = [e for line in lines if (e := decoder.feed(line)) is not None]
    last = decoder.flush()
    return out + ([last] if last is not None else [])


def test_sse_decoder_rules() -> None:
    assert _events(["data: a", "", ": comment", "data: b\r", "data: c", "", "data:d"]) == ["a", "b\nc", "d"]
    assert _events(["event: x", "id: 1", "", ""]) == []


def test_assembler_separate_finish_and_usage_chunks_and_tool_deltas() -> None:
    asm = StreamAssembler()
    frames = [
        {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "He"}}]},
        {"choices": [{"index": 0, "delta": {"content": "llo"}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                            "function": {"name": "get", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    ]
    chunks = [asm.chunk(json.dumps(f)) for f in frames]
    assert asm.chunk("[DONE]") is None and asm.done
    assert all(c is not None and c.choices for c in chunks)
    assert chunks[5] is not None and chunks[5].is_final and chunks[5].choices[0].finish_reason == "tool_calls"
    assert chunks[6] is not None and chunks[6].usage == og.types.Usage(3, 4, 7)
    assert chunks[6].choices[0].delta.content is None
    assert asm.text == "Hello" and asm.finish_reason == "tool_calls"
    assert asm.message_tool_calls() == [{"id": "call_1", "type": "function",
                                         "function": {"name": "get", "arguments": '{"a":1}'}}]


def test_assembler_errors_are_typed() -> None:
    with pytest.raises(og.InferenceError, match="not JSON"):
        StreamAssembler().chunk("{nope")
    with pytest.raises(og.InferenceError, match="boom"):
        StreamAssembler().chunk(json.dumps({"error": {"message": "boom"}}))


@given(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=20))
def test_assembled_text_equals_concatenated_deltas(parts: list[str]) -> None:
    asm = StreamAssembler()
    for part in parts:
        asm.chunk(json.dumps({"choices": [{"index": 0, "delta": {"content": part}}]}))
    assert asm.text == "".join(parts)


# -- TEE ----------------------------------------------------------------------------------------


def test_canonical_request_normalises_messages() -> None:
    body = {"model": "gpt-4o", "temperature": 0, "max_tokens": 5, "tool_choice": "auto", "stream": True,
            "messages": [{"role": "developer", "content": "sys", "name": "HAL"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"index": 0, "id": "c", "type": "function",
                              "function": {"name": "f", "arguments": "{}"}}]},
                         {"role": "tool", "content": "r", "tool_call_id": "c", "name": "f"}]}
    canonical = canonical_chat_request(body)
    assert canonical == {"model": "gpt-4o", "temperature": 0.0, "max_tokens": 5, "messages": [
        {"role": "system", "content": "sys"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "content": "r", "tool_call_id": "c"}]}
    assert request_hash(canonical) == request_hash(json.loads(json.dumps(canonical)))


def test_signature_verifies_and_every_mutation_fails() -> None:
    req, out, ts = request_hash({"model": "m"}), output_hash("hello"), int(time.time())
    fields = _sign(req, out, ts)
    verify_tee_signature(TeeAttestation.from_fields(fields), key=KEY, expected_request_hash=req,
                         expected_output_hash=out)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    bad_sig = bytearray(base64.b64decode(fields["tee_signature"]))
    bad_sig[10] ^= 1
    mutations: list[tuple[dict[str, Any], bytes, bytes, TeeKey]] = [
        ({**fields, "tee_timestamp": ts + 1}, req, out, KEY),
        ({**fields, "tee_signature": base64.b64encode(bytes(bad_sig)).decode()}, req, out, KEY),
        ({**fields, "tee_output_hash": output_hash("hellO").hex()}, req, output_hash("hellO"), KEY),
        (fields, req, output_hash("tampered"), KEY),
        (fields, request_hash({"model": "n"}), out, KEY),
        ({**fields, "tee_id": "0x" + "00" * 32}, req, out, KEY),
        (fields, req, out, TeeKey(other_key)),
    ]
    for mutated, expect_req, expect_out, key in mutations:
        with pytest.raises(og.VerificationError):
            verify_tee_signature(TeeAttestation.from_fields(mutated), key=key, expected_request_hash=expect_req,
                                 expected_output_hash=expect_out)
    for broken in [{**fields, "tee_signature": "!!"}, {k: v for k, v in fields.items() if k != "tee_id"},
                   {**fields, "tee_timestamp": "soon"}]:
        with pytest.raises(og.VerificationError):
            TeeAttestation.from_fields(broken)


def test_output_text_for_tool_calls() -> None:
    calls = [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    assert output_text("ignored", calls, "tool_calls") == json.dumps(
        [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}], sort_keys=True)
    assert output_text(None, None, "stop") == ""
    assert TeeKey.from_pem(_RSA.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)) == KEY


# -- payments -----------------------------------------------------------------------------------

NET = PaymentNetwork("eip155:910020", "http://rpc", "0x" + "ab" * 20, "OPG", "2")


def _offer(**over: Any) -> dict[str, Any]:
    option = {"scheme": "exact", "network": NET.network, "amount": "1000", "asset": NET.token_address,
              "payTo": "0x" + "cd" * 20, "maxTimeoutSeconds": 300, "extra": {"name": "OPG", "version": "2"}}
    return {"x402Version": 2, "accepts": [{**option, **over}], "resource": {"url": "http://x/v1/chat/completions"}}


def test_payer_signs_an_exact_payment_with_the_x402_package() -> None:
    payer = Payer(Wallet("0x" + "11" * 32), NET, max_payment=10_000)
    signed = payer.sign(_offer())
    document = json.loads(base64.b64decode(signed.header))
    assert document["x402Version"] == 2 and document["accepted"]["amount"] == "1000"
    auth = document["payload"]["authorization"]
    assert auth["from"] == "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A" and auth["value"] == "1000"
    assert signed.amount == 1000


def test_payer_refuses_before_signing() -> None:
    payer = Payer(Wallet("0x" + "11" * 32), NET, max_payment=999)
    with pytest.raises(og.SpendCapExceededError) as caught:
        payer.sign(_offer())
    assert caught.value.amount == 1000 and caught.value.cap == 999
    with pytest.raises(og.PaymentRequiredError, match="no payment option"):
        payer.sign(_offer(network="eip155:1"))
    with pytest.raises(og.PaymentRequiredError, match="no private key"):
        Payer(None, NET).sign(_offer())
    assert payer.sign_cached("k") is None
    cached = replace(NET)
    assert cached == NET


def test_cut_paid_stream_is_reopened_with_the_same_payment_and_resumes() -> None:
    """A paid stream cut mid-way is resent with the same PAYMENT-SIGNATURE; chunks are not repeated."""
    import httpx

    from opengradient.client.llm import TextGenerationStream

    with og.devnet.start() as net:
        inner = net._bridge.transport
        cut_at: list[int] = []
        signatures: list[str] = []

        class _Cut(httpx.SyncByteStream):
            def __init__(self, stream: Any, limit: int) -> None:
                self.stream, self.limit = stream, limit

            def __iter__(self) -> Any:
                sent = 0
                for piece in self.stream:
                    if sent + len(piece) > self.limit:
                        yield piece[: self.limit - sent]
                        raise httpx.ReadError("connection cut by the test")
                    sent += len(piece)
                    yield piece

        class _Transport(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                response = inner.handle_request(request)
                signature = request.headers.get("payment-signature")
                if signature and request.url.path.endswith("/chat/completions"):
                    signatures.append(signature)
                    if cut_at and response.status_code == 200:
                        return httpx.Response(200, headers=response.headers,
                                              stream=_Cut(response.stream, cut_at.pop()))
                return response

        client = net.new_client(transport=_Transport())
        messages = [{"role": "user", "content": "resume this answer"}]
        reference = client.llm.chat("gpt-4o", messages, max_tokens=40)
        for limit in (120, 400, 901):
            signatures.clear()
            cut_at.append(limit)
            stream = client.llm.chat("gpt-4o", messages, max_tokens=40, stream=True)
            assert isinstance(stream, TextGenerationStream)
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
            assert reference.chat_output is not None and text == reference.chat_output["content"]
            assert stream.result is not None and stream.result.tee_verified
            assert len(signatures) == 2 and len(set(signatures)) == 1  # reopened once, same payment
