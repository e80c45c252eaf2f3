"""Digital twins with `client.twins.chat`, on an in-process devnet.

The devnet serves two twins, `satoshi` and `ada`, whose persona prompts are put in front of the
conversation before the devnet's reference model answers. Calls need a twins API key: clients
made by the devnet carry its development key (`DEVNET_TWINS_API_KEY`); a client without one gets
a clear `ConfigurationError`, and a wrong key is refused by the service.

Run: python examples/twins_chat.py
"""

from __future__ import annotations

import opengradient as og


def main() -> None:
    with og.devnet.start() as net:
        client = net.client  # carries the devnet's twins API key

        for twin in ("satoshi", "ada"):
            reply = client.twins.chat(twin_id=twin, model=og.TEE_LLM.GPT_4O,
                                      messages=[{"role": "user", "content": "Who are you?"}])
            assert reply.chat_output is not None
            print(f"{twin}: {reply.chat_output['content']}")

        reply = client.twins.chat("ada", og.TEE_LLM.CLAUDE_3_5_HAIKU,
                                  [{"role": "user", "content": "What is 3 * 14?"}], temperature=0.2, max_tokens=50)
        assert reply.chat_output is not None
        print(f"ada: {reply.chat_output['content']}")

        try:
            net.new_client(twins_api_key="wrong-key").twins.chat("ada", og.TEE_LLM.GPT_4O,
                                                                 [{"role": "user", "content": "Hi"}])
        except og.AuthenticationError as exc:
            print(f"wrong key refused: HTTP {exc.status_code}")
        try:
            og.Client(net.accounts[0].private_key, network=net.network).twins.chat(
                "ada", og.TEE_LLM.GPT_4O, [{"role": "user", "content": "Hi"}])
        except og.ConfigurationError as exc:
            print(f"no key: {exc}")


if __name__ == "__main__":
    main()
