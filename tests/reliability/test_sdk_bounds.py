"""What the SDK signs and what it accepts, against a gateway that lies (pinned with `og_llm_server_url`,
so every request goes to it).

Invariants:
- one call signs at most `max_payment_per_request` in total: a gateway that answers a pre-signed
  payment with another 402 (and could settle both) gets no second signature beyond the cap;
- no signature is valid for more than `MAX_PAYMENT_VALIDITY_SECONDS`, whatever the offer asks
  (the attack: an offer of ten years was signed as asked), while `accepted` stays the offer
  verbatim, as x402 requires;
- tool calls are accepted only where the request allowed them: the enclave's signature does not
  say whether its output was text or tool calls, nor covers `tool_choice`, so a signed text that
  is the JSON of tool calls, relabelled on the way, is refused when the request offered no tools,
  said `tool_choice: "none"`, forced another function, or did not offer the one called.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

import opengradient as og
from opengradient.client.payments import MAX_PAYMENT_VALIDITY_SECONDS
from opengradient.client.tee import canonical_chat_request, output_hash, request_hash
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.llm.enclave import Enclave

CAP = 10**16


def _offer(net: Devnet, amount: int, *, timeout: int = 300, scheme: str = "exact") -> dict[str, Any]:
    extra: dict[str, Any] = {"name": "OPG", "version": "2"}
    if scheme == "upto":
        extra = {**extra, "assetTransferMethod": "permit2", "facilitatorAddress": net.accounts[9].address}
    return {"x402Version": 2, "error": "Payment required", "resource": {"url": "http://gw/v1/chat/completions"},
            "accepts": [{"scheme": scheme, "network": net.network.payments.network, "amount": str(amount),
                         "asset": net.network.payments.token_address, "payTo": net.accounts[8].address,
                         "maxTimeoutSeconds": timeout, "extra": extra}]}


def _402(offer: dict[str, Any]) -> httpx.Response:
    return httpx.Response(402, headers={"PAYMENT-REQUIRED": base64.b64encode(json.dumps(offer).encode()).decode()},
                          content=b"{}")


def _answer(body: dict[str, Any], message: dict[str, Any], finish: str, enclave: Enclave | None = None,
            signed_text: str | None = None) -> httpx.Response:
    data: dict[str, Any] = {"id": "chatcmpl-x", "object": "chat.completion", "model": body["model"],
                            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    if enclave is not None:
        text = signed_text if signed_text is not None else (message.get("content") or "")
        data.update(enclave.tee_fields(request_hash(canonical_chat_request(body)), output_hash(text)))
    return httpx.Response(200, json=data)


class LyingGateway:
    """Answers the first paid request, then 402s every payment it is sent (keeping the signatures)."""

    def __init__(self, net: Devnet, amount: int, timeout: int = 300) -> None:
        self.net, self.amount, self.timeout = net, amount, timeout
        self.signatures: list[str] = []
        self.served = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        signature = request.headers.get("payment-signature")
        if signature is None:
            return _402(_offer(self.net, self.amount, timeout=self.timeout))
        self.signatures.append(signature)
        if self.served == 0:
            self.served += 1
            return _answer(json.loads(request.content), {"role": "assistant", "content": "hi"}, "stop")
        return _402(_offer(self.net, self.amount, timeout=self.timeout))  # "pay again"

    def paid(self, since: int = 0) -> int:
        return sum(int(json.loads(base64.b64decode(s))["payload"]["authorization"]["value"])
                   for s in self.signatures[since:])


def _client(net: Devnet, transport: httpx.MockTransport, **kwargs: Any) -> og.Client:
    return og.Client(net.accounts[2].private_key, network=net.network, og_llm_server_url=net.url, transport=transport,
                     tee_trust="off", max_payment_per_request=CAP, **kwargs)


@pytest.mark.parametrize("fraction", [0.6, 0.3, 0.1])
def test_one_call_never_signs_more_than_the_cap(devnet: Devnet, fraction: float) -> None:
    gateway = LyingGateway(devnet, int(CAP * fraction))
    client = _client(devnet, httpx.MockTransport(gateway))
    client.llm.chat("gpt-4o", [{"role": "user", "content": "warm"}], max_tokens=10)  # caches the offer
    before = len(gateway.signatures)
    with pytest.raises(og.PaymentError) as refused:
        client.llm.chat("gpt-4o", [{"role": "user", "content": "again"}], max_tokens=10)
    assert gateway.paid(before) <= CAP  # everything this call signed
    if 2 * int(CAP * fraction) > CAP:
        assert len(gateway.signatures) - before == 1
        assert isinstance(refused.value, og.SpendCapExceededError)
        assert "per call" in str(refused.value)


@pytest.mark.parametrize("scheme", ["exact", "upto"])
def test_a_ten_year_offer_is_signed_for_an_hour_at_most(devnet: Devnet, scheme: str) -> None:
    ten_years = 10 * 365 * 24 * 3600
    seen: list[dict[str, Any]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/rpc"):  # the upto allowance check reads the chain
            reply = devnet.payments_chain.rpc(json.loads(request.content))
            return httpx.Response(200, json=reply)
        signature = request.headers.get("payment-signature")
        if signature is None:
            return _402(_offer(devnet, 1000, timeout=ten_years, scheme=scheme))
        seen.append(json.loads(base64.b64decode(signature)))
        return httpx.Response(400, json={"error": {"message": "stop here"}})

    client = _client(devnet, httpx.MockTransport(gateway), payment_scheme=scheme)
    if scheme == "upto":
        client.llm.ensure_opg_approval(1)
    with pytest.raises(og.OpenGradientError):
        client.llm.chat("gpt-4o", [{"role": "user", "content": "hi"}], max_tokens=10)
    [payment] = seen
    body = payment["payload"]
    until = int(body["permit2Authorization"]["deadline"] if scheme == "upto" else body["authorization"]["validBefore"])
    assert until <= time.time() + MAX_PAYMENT_VALIDITY_SECONDS + 5
    assert payment["accepted"]["maxTimeoutSeconds"] == ten_years  # the offer, verbatim


# ---- tool calls the request did not allow -----------------------------------------------------------


CALLS = [{"id": "call_1", "type": "function", "function": {"name": "transfer_funds", "arguments": '{"to": "me"}'}}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}},
         {"type": "function", "function": {"name": "transfer_funds",
                                           "parameters": {"type": "object", "properties": {}}}}]


def _relabelling_proxy(enclave: Enclave) -> httpx.MockTransport:
    """The enclave signed a *text* answer equal to the JSON of tool calls; the proxy relabels it."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        signed_text = json.dumps(CALLS, sort_keys=True)  # what the enclave signed, as text
        message = {"role": "assistant", "content": None, "tool_calls": CALLS}
        return _answer(body, message, "tool_calls", enclave, signed_text=signed_text)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(("tools", "tool_choice", "why"), [
    (None, None, "offered no tools"),
    (TOOLS, "none", "tool_choice is 'none'"),
    (TOOLS, {"type": "function", "function": {"name": "lookup"}}, "forced 'lookup'"),
    (TOOLS[:1], None, "did not offer"),
])
def test_relabelled_tool_calls_are_refused(devnet: Devnet, tools: Any, tool_choice: Any, why: str) -> None:
    enclave = Enclave()
    client = og.Client(devnet.accounts[2].private_key, network=devnet.network, og_llm_server_url=devnet.url,
                       transport=_relabelling_proxy(enclave), tee_public_key=enclave.public_key_pem)
    with pytest.raises(og.VerificationError, match=why):
        client.llm.chat("gpt-4o", [{"role": "user", "content": "hi"}], max_tokens=10, tools=tools,
                        tool_choice=tool_choice)


def test_tool_calls_the_request_allowed_still_verify(devnet: Devnet) -> None:
    enclave = Enclave()
    client = og.Client(devnet.accounts[2].private_key, network=devnet.network, og_llm_server_url=devnet.url,
                       transport=_relabelling_proxy(enclave), tee_public_key=enclave.public_key_pem)
    output = client.llm.chat("gpt-4o", [{"role": "user", "content": "hi"}], max_tokens=10, tools=TOOLS)
    assert output.tee_verified and output.chat_output is not None
    assert output.chat_output["tool_calls"][0]["function"]["name"] == "transfer_funds"


# ---- malformed answers are typed errors -----------------------------------------------------------


MALFORMED: list[tuple[str, bytes, str]] = [
    ("list body", b"[1, 2]", "application/json"),
    ("choices is a string", b'{"choices": "abc"}', "application/json"),
    ("choices empty", b'{"choices": []}', "application/json"),
    ("choice is a number", b'{"choices": [5]}', "application/json"),
    ("message is a string", b'{"choices": [{"message": "hi", "finish_reason": "stop"}]}', "application/json"),
    ("content is a number", b'{"choices": [{"message": {"content": 5}, "finish_reason": "stop"}]}',
     "application/json"),
    ("usage is a string", b'{"choices": [{"message": {"content": "x"}}], "usage": "lots"}', "application/json"),
    ("not json", b"<html>oops</html>", "text/html"),
    ("deep", b"[" * 50_000 + b"]" * 50_000, "application/json"),
    ("stream event not an object", b"data: 7\n\ndata: [DONE]\n\n", "text/event-stream"),
    ("stream choices wrong", b'data: {"choices": "x"}\n\ndata: [DONE]\n\n', "text/event-stream"),
    ("stream deep", b"data: " + b"[" * 50_000 + b"]" * 50_000 + b"\n\n", "text/event-stream"),
]


@pytest.mark.parametrize(("what", "content", "media"), MALFORMED, ids=[m[0] for m in MALFORMED])
@pytest.mark.parametrize("call", ["chat", "stream", "completion", "twins"])
def test_malformed_answers_are_typed_errors(devnet: Devnet, what: str, content: bytes, media: str,
                                            call: str) -> None:
    """Nothing but an `OpenGradientError` escapes; what is returned instead is well typed."""
    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=content, headers={"Content-Type": media})

    client = og.Client(devnet.accounts[2].private_key, network=devnet.network, og_llm_server_url=devnet.url,
                       transport=httpx.MockTransport(gateway),
                       tee_trust="off", twins_api_key="k")
    messages = [{"role": "user", "content": "hi"}]
    try:
        if call == "chat":
            output = client.llm.chat("gpt-4o", messages, max_tokens=10)
        elif call == "stream":
            stream = client.llm.chat("gpt-4o", messages, max_tokens=10, stream=True)
            for _ in stream:
                pass
            assert stream.result is not None
            output = stream.result
        elif call == "completion":
            output = client.llm.completion("gpt-4o", "hi", max_tokens=10)
        else:
            output = client.twins.chat("twin", "openai/gpt-4o", messages)
    except og.OpenGradientError:
        return
    assert isinstance(output, og.TextGenerationOutput)
    if output.chat_output is not None:
        assert isinstance(output.chat_output.get("content"), (str, type(None)))
    assert isinstance(output.completion_output, (str, type(None)))
    assert output.usage is None or isinstance(output.usage, og.Usage)
