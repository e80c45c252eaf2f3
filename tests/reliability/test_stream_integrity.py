"""A paid stream is produced, signed and stored whole, whenever and however its client leaves.

Invariant: the gateway signs only the answer the upstream finished. The client's connection is
not the upstream's: a client that leaves — before the first byte or while the upstream is in the
middle of producing a piece — never cuts the upstream short, so the stored answer that a retry with
the same payment replays is the whole answer, and its signature covers the whole text. (The
attack: a stream cut before the first byte was replayed with 5 of its 118 characters,
`finish_reason: "stop"`, verified and charged in full — the client's cancellation had reached the
upstream mid-piece, and the gateway signed what there was as a finished answer.)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from x402.http.utils import encode_payment_signature_header

from opengradient.client.tee import output_hash
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.llm.completions import Completion, Delta, Upstream
from opengradient.devnet.services.llm.reference import ReferenceModel
from opengradient.devnet.services.llm.upstream import UpstreamRouter
from tests.devnet.test_gateway import CHAT, chat_body, header_json, required, sse_events, x402_client


class _GatedUpstream(Upstream):
    """The reference model, stopping inside its second piece until `gate` opens."""

    def __init__(self) -> None:
        self.inner = ReferenceModel()
        self.gate = threading.Event()
        self.blocked = threading.Event()

    def supports(self, model: str) -> bool:
        return self.inner.supports(model)

    async def chat(self, request: dict[str, Any]) -> Completion:
        return await self.inner.chat(request)

    async def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        index = 0
        async for delta in self.inner.stream_chat(request):
            if index == 1:
                self.blocked.set()
                while not self.gate.is_set():  # the upstream is mid-piece: the client leaves now
                    await asyncio.sleep(0.005)
            index += 1
            yield delta

    async def complete(self, request: dict[str, Any]) -> Completion:
        return await self.inner.complete(request)

    def stream_complete(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        return self.inner.stream_complete(request)


@pytest.mark.parametrize("read_first", [False, True])
def test_a_client_leaving_mid_piece_never_truncates_the_signed_answer(
        devnet_http: Devnet, monkeypatch: pytest.MonkeyPatch, read_first: bool) -> None:
    upstream = _GatedUpstream()
    monkeypatch.setattr(devnet_http.gateway, "router", UpstreamRouter(upstream))
    body = chat_body("Tell me a long story about blocks, payments and enclaves.", stream=True, max_tokens=60)
    whole = asyncio.run(ReferenceModel().chat({**body, "model": "gpt-4o", "stream": False})).content or ""
    assert len(whole) > 40
    client = x402_client(devnet_http, 5)
    with httpx.Client(base_url=devnet_http.url, timeout=30) as http:
        signature = encode_payment_signature_header(client.create_payment_payload(required(http.post(CHAT, json=body))))
        with http.stream("POST", CHAT, json=body, headers={"PAYMENT-SIGNATURE": signature}) as first:
            assert first.status_code == 200
            if read_first:
                next(first.iter_lines())
            assert upstream.blocked.wait(30)
        time.sleep(0.3)  # let the server notice its client is gone while the upstream is mid-piece
        upstream.gate.set()
        retried = http.post(CHAT, json=body, headers={"PAYMENT-SIGNATURE": signature})
    assert retried.status_code == 200, retried.text
    events = sse_events(retried)
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e.get("choices"))
    assert text == whole  # the whole answer, not what there was when the client left
    final = next(e for e in events[:-1] if e.get("tee_output_hash"))
    assert final["tee_output_hash"] == output_hash(whole).hex()
    assert header_json(retried, "PAYMENT-RESPONSE")["success"] is True
