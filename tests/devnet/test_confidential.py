"""Confidential chat: `og.ConfidentialLLM` sealed to an enclave's registered OHTTP key, through the
devnet's relay, which pays and forwards ciphertext only.

Checked: answers verify against the registered signing key (sync, async, streams, tools); the
relay saw no byte of any prompt or answer and paid from its own account while the caller holds no
key; a sealed answer changed on the way, or a sealed stream cut short, is refused; the registry
entry's `ohttpConfig` is the RFC 9458 key configuration of the enclave's key; over HTTP the
enclaves are the HTTPS ones (the official 1.1.4 client runs the same path in `make interop`).
"""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from eth_abi import decode

import opengradient as og
from opengradient.client.registry import TEE_INFO, active_tees_call
from opengradient.devnet.node import RELAY_ACCOUNT, Devnet
from tests.payers import balance

SECRET = "my account number is 4417-secret-9921"


def _plaintext_in(net: Devnet, *texts: str) -> list[str]:
    found = []
    for direction, data in net.relay.seen:
        for text in texts:
            for fragment in {text, text[:12], text[-12:]}:
                if fragment.encode() in data:
                    found.append(f"{direction}: {fragment!r}")
    return found


def test_a_sealed_chat_verifies_and_the_relay_sees_ciphertext_only(devnet: Devnet) -> None:
    llm = devnet.confidential_llm()
    relay_payer = devnet.accounts[RELAY_ACCOUNT].address
    before = balance(devnet, relay_payer)
    devnet.relay.seen.clear()
    out = llm.chat(og.TEE_LLM.GPT_4O, [{"role": "user", "content": SECRET}], max_tokens=40)
    assert isinstance(out, og.TextGenerationOutput) and out.tee_verified
    assert out.chat_output is not None and "4417" in out.chat_output["content"]
    assert out.proof is not None and out.proof.verify(devnet.client)
    assert out.tee_id in {e["tee_id"] for e in devnet.gateway.registered}
    assert devnet.relay.seen and not _plaintext_in(devnet, SECRET, out.chat_output["content"])
    devnet.gateway.settlements.wait_idle()
    assert balance(devnet, relay_payer) < before  # the relay paid; the caller has no key at all


async def test_async_and_streamed_sealed_chats(devnet: Devnet) -> None:
    llm = devnet.confidential_llm()
    devnet.relay.seen.clear()
    out = await llm.achat("gpt-4o", [{"role": "user", "content": SECRET}], max_tokens=30)
    assert isinstance(out, og.TextGenerationOutput) and out.tee_verified
    stream = await llm.achat("gpt-4o", [{"role": "user", "content": SECRET + " (streamed)"}], max_tokens=30,
                             stream=True)
    assert isinstance(stream, og.client.confidential.AsyncConfidentialStream)
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert stream.result is not None and stream.result.tee_verified
    assert stream.result.chat_output is not None and stream.result.chat_output["content"] == text
    sync_stream = llm.chat("gpt-4o", [{"role": "user", "content": SECRET}], max_tokens=30, stream=True)
    assert isinstance(sync_stream, og.client.confidential.ConfidentialStream)
    assert "".join(c.choices[0].delta.content or "" for c in sync_stream)
    assert sync_stream.result is not None and sync_stream.result.tee_verified
    assert not _plaintext_in(devnet, SECRET, text)
    await llm.aclose()


def test_tool_calls_come_back_verified(devnet: Devnet) -> None:
    tools = [{"type": "function", "function": {"name": "get_balance", "description": "An account's balance",
                                               "parameters": {"type": "object", "required": ["account"],
                                                              "properties": {"account": {"type": "string"}}}}}]
    out = devnet.confidential_llm().chat("gpt-4o", [{"role": "user", "content": "What is the balance of 4417?"}],
                                         tools=tools, tool_choice="required", max_tokens=50)
    assert isinstance(out, og.TextGenerationOutput) and out.tee_verified and out.finish_reason == "tool_calls"
    assert out.chat_output is not None and out.chat_output["tool_calls"][0]["function"]["name"] == "get_balance"


class _Tamper(httpx.BaseTransport):
    """Relays to the devnet and changes the relay's sealed answers: one byte, or the end cut off."""

    def __init__(self, inner: httpx.BaseTransport, how: str) -> None:
        self.inner, self.how = inner, how

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/chat/ohttp"):
            return response
        body = response.read()
        body = body[:-1] + bytes([body[-1] ^ 1]) if self.how == "flip" else body[:-20]
        return httpx.Response(response.status_code, headers=response.headers, content=body)


@pytest.mark.parametrize("stream", [False, True])
def test_a_sealed_answer_changed_or_cut_on_the_way_is_refused(devnet: Devnet, stream: bool) -> None:
    llm = devnet.confidential_llm(transport=_Tamper(devnet._bridge.transport, "flip"))
    with pytest.raises(og.VerificationError):
        answer = llm.chat("gpt-4o", [{"role": "user", "content": SECRET}], max_tokens=20, stream=stream)
        if stream:
            list(answer)  # type: ignore[arg-type]
    cut = devnet.confidential_llm(transport=_Tamper(devnet._bridge.transport, "cut"))
    with pytest.raises(og.VerificationError):
        answer = cut.chat("gpt-4o", [{"role": "user", "content": SECRET}], max_tokens=20, stream=stream)
        if stream:
            list(answer)  # type: ignore[arg-type]


def test_the_relay_wants_its_key_and_a_registered_enclave(devnet: Devnet) -> None:
    with pytest.raises(og.AuthenticationError):
        devnet.confidential_llm(headers={"Authorization": "Bearer wrong"}).chat(
            "gpt-4o", [{"role": "user", "content": "hi"}])
    with pytest.raises(og.NetworkError, match="no Oblivious HTTP key"):
        devnet.confidential_llm(tee_id="0x" + "00" * 32).chat("gpt-4o", [{"role": "user", "content": "hi"}])


def test_the_registry_publishes_each_enclaves_ohttp_key_config(devnet: Devnet) -> None:
    step = active_tees_call(devnet.gateway.tee_registry)
    reply = devnet.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": step.method, "params": list(step.params)})
    assert isinstance(reply, dict)
    (entries,) = decode([f"{TEE_INFO}[]"], bytes.fromhex(reply["result"][2:]))
    assert entries
    for entry in entries:
        key_id, kem, kdf, aead, public_key, key_config, registered_at = entry[10]
        assert (kem, kdf, aead) == (0x0020, 0x0001, 0x0003) and len(public_key) == 32 and registered_at > 0
        # RFC 9458 §3.1: keyId, kemId, public key, length of the suites, (kdfId, aeadId)
        assert key_config == (bytes([key_id]) + kem.to_bytes(2, "big") + public_key + (4).to_bytes(2, "big")
                              + kdf.to_bytes(2, "big") + aead.to_bytes(2, "big"))


def test_over_http_the_sealed_chat_reaches_an_https_enclave(devnet_http: Devnet) -> None:
    llm = devnet_http.confidential_llm()
    out = llm.chat("gpt-4o", [{"role": "user", "content": SECRET}], max_tokens=20)
    assert isinstance(out, og.TextGenerationOutput) and out.tee_verified
    assert str(out.tee_endpoint).startswith("https://")


def test_a_wrong_key_or_a_relay_that_swaps_enclaves_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with og.devnet.start(enclaves=2) as net:
        first, second = (e["tee_id"] for e in net.gateway.registered)
        llm = net.confidential_llm(tee_id=first)
        assert llm.chat("gpt-4o", [{"role": "user", "content": "hi"}], max_tokens=5).tee_id == first  # type: ignore[union-attr]
        # the relay sends the sealed request to the other enclave: it cannot open it
        swap = net.gateway.authority_of(second)
        monkeypatch.setattr(net.relay, "_authority_of", lambda tee_id: swap)
        with pytest.raises(og.HTTPStatusError, match="does not open"):
            llm.chat("gpt-4o", [{"role": "user", "content": SECRET}], max_tokens=5)
        monkeypatch.undo()
        # sealed to a key the enclave does not hold (the registry's entry replaced on the way)
        original = net.gateway.enclave.ohttp
        wrong, _ = og.client.ohttp.generate_key(original.key_id)
        entry = next(e for e in llm.enclaves.active if e.tee_id == first) if llm.enclaves.active else None
        assert entry is not None and entry.ohttp is not None
        forged = replace(entry, ohttp=replace(entry.ohttp, public_key=wrong.public_key))
        llm.enclaves._active = tuple(forged if e.tee_id == first else e for e in llm.enclaves.active)
        with pytest.raises(og.HTTPStatusError, match="does not open"):
            llm.chat("gpt-4o", [{"role": "user", "content": SECRET}], max_tokens=5)
        assert not _plaintext_in(net, SECRET)
