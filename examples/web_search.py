"""Chat with web search (`web_search=True`), on an in-process devnet.

The option asks the provider to search the web and is part of what the enclave signs. The devnet
is offline: it searches a small corpus of documents shipped with the package instead, and its
answer says so and cites them as `devnet-corpus://…`.

Run: python examples/web_search.py
"""

from __future__ import annotations

import opengradient as og


def main() -> None:
    with og.devnet.start() as net:
        response = net.client.llm.chat(
            model=og.TEE_LLM.GPT_5,
            messages=[{"role": "user", "content": "How does x402 pay for an HTTP request?"}],
            max_tokens=None,
            web_search=True,
        )
        assert response.chat_output is not None
        print(f"answer:   {response.chat_output['content']}")
        print(f"verified: {response.tee_verified} (web_search is part of the signed request)")


if __name__ == "__main__":
    main()
