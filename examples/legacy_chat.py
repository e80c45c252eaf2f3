"""LLM guide, "Chat Example": `client.llm_chat` in VANILLA mode, on the devnet.

The guide's code with one change: the client talks to a local devnet (`network=net.network`).
The conversation is sent on chain through the inference contract's `runLLMChat`; the devnet's
reference model reads the system message's `name` ("HAL") and the answer comes back in the
transaction's `LLMChatResult` event.

Run: python examples/legacy_chat.py
"""

from __future__ import annotations

from typing import Any

import opengradient as og


def main() -> None:
    with og.devnet.start(http=True) as net:
        client = og.new_client(
            email=None,
            password=None,
            private_key=net.accounts[0].private_key,  # the guide reads os.environ["OG_PRIVATE_KEY"]
            network=net.network,
        )

        messages: list[dict[str, Any]] = [
            {
                "role": "system",
                "content": "You are a helpful AI assistant.",
                "name": "HAL",
            },
            {
                "role": "user",
                "content": "Hello! How are you doing? Can you repeat my name?",
            },
        ]
        result = client.llm_chat(
            model_cid="openai/gpt-4.1",
            messages=messages,
        )
        assert result.chat_output is not None
        print(f"Response: {result.chat_output['content']}")
        print(f"Payment hash: {result.payment_hash}")
        print(f"Finish reason: {result.finish_reason}")


if __name__ == "__main__":
    main()
