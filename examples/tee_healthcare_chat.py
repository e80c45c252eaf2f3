"""LLM guide, TEE example "Privacy-Sensitive Healthcare Chat": a TEE-verified chat, on the devnet.

The guide's code with one change: the client talks to a local devnet (`network=net.network`).
The conversation goes through the devnet's TEE gateway (x402-paid, enclave-signed); the client
verifies the signature over the hashes of what it sent and what it received, and `proof` carries
that evidence for later re-checking.

Run: python examples/tee_healthcare_chat.py
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

        # Chat with patient data - TEE ensures privacy and code verification
        messages: list[dict[str, Any]] = [
            {
                "role": "system",
                "content": "You are a medical assistant. Analyze patient symptoms and provide preliminary guidance.",
            },
            {
                "role": "user",
                "content": ("Patient: 45-year-old male, presenting with chest pain and shortness of breath. "
                            "Blood pressure: 140/90. What are the potential causes?"),
            },
        ]
        result = client.llm_chat(
            model_cid="claude-3-opus",
            messages=messages,
            max_tokens=300,
            temperature=0.1,
            inference_mode=og.LlmInferenceMode.TEE,  # Patient data remains private
        )
        assert result.chat_output is not None and result.proof is not None
        print(f"Response: {result.chat_output['content']}")
        print(f"Payment hash: {result.payment_hash}")
        print(f"TEE verified: {result.tee_verified}; proof re-checked: {result.proof.verify(client)}")


if __name__ == "__main__":
    main()
