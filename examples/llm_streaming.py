"""Streaming chat: tokens printed as they arrive, then the verified result, on an in-process devnet.

`client.llm.chat(..., stream=True)` returns a stream of chunks (server-sent events). The payment is
settled before the first token; the enclave's signature comes with the final event, and once the
stream is consumed `stream.result` holds the whole answer, verified like a non-streamed one.

Run: python examples/llm_streaming.py
"""

from __future__ import annotations

import time

import opengradient as og
from opengradient.client.llm import TextGenerationStream


def main() -> None:
    with og.devnet.start() as net:
        client = net.client

        started = time.perf_counter()
        first_token: float | None = None
        stream = client.llm.chat(
            model=og.TEE_LLM.GPT_4O,
            messages=[{"role": "user", "content": "Explain TEE in one paragraph."}],
            max_tokens=300,
            stream=True,
        )
        assert isinstance(stream, TextGenerationStream)
        pieces = 0
        for chunk in stream:
            if chunk.choices[0].delta.content:
                first_token = first_token or time.perf_counter()
                pieces += 1
                print(chunk.choices[0].delta.content, end="", flush=True)
        print()

        result = stream.result
        assert result is not None and first_token is not None
        print(f"chunks: {pieces}, first token after {(first_token - started) * 1000:.0f} ms")
        print(f"finish: {result.finish_reason}, paid in {result.payment_hash}, TEE verified: {result.tee_verified}")


if __name__ == "__main__":
    main()
