"""TEE-verified chat with `client.llm.chat`, on an in-process devnet.

The request is paid with x402 (OPG on the devnet's payments chain) and the answer is signed by
the gateway's enclave key, which the client checks against the TEE registry on the Alpha chain
before returning. The result carries token usage, the payment transaction and a `proof` that can
be re-checked later (here, after a round trip through JSON).

Run: python examples/llm_chat.py
"""

from __future__ import annotations

import json

import opengradient as og
from opengradient.client.llm import TextGenerationStream


def main() -> None:
    with og.devnet.start() as net:
        client = net.client  # dev account 0, reached in-process (no sockets)

        response = client.llm.chat(
            model=og.TEE_LLM.CLAUDE_3_5_HAIKU,
            messages=[
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": "What is 12 * 7?"},
            ],
            max_tokens=200,
            x402_settlement_mode=og.x402SettlementMode.SETTLE,
        )
        assert not isinstance(response, TextGenerationStream)
        assert response.chat_output is not None and response.proof is not None and response.usage is not None
        print(f"answer:   {response.chat_output['content']}")
        print(f"usage:    {response.usage.prompt_tokens} prompt + {response.usage.completion_tokens} completion tokens")
        print(f"paid:     {response.amount_paid} OPG base units in {response.payment_hash}")
        print(f"verified: {response.tee_verified} (enclave {response.tee_id})")

        saved = response.proof.to_json()
        print(f"proof re-checked from JSON: {og.Proof.from_dict(json.loads(saved)).verify(client)}")


if __name__ == "__main__":
    main()
