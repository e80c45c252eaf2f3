"""LLM guide, "Completion Example": `client.llm_completion` in VANILLA mode, on the devnet.

The guide's code with one change: the client talks to a local devnet instead of the public
network (`network=net.network`), paid by a funded development key. VANILLA is the default mode: the
request is one transaction to the inference contract's `runLLMCompletion` on the Alpha chain, and
the answer (from the devnet's deterministic reference model) is read from the transaction's
`LLMCompletionResult` event. There is no x402 payment in this mode: the request is paid as gas,
so the payment hash is the transaction's hash.

Run: python examples/legacy_completion.py
"""

from __future__ import annotations

import opengradient as og


def main() -> None:
    with og.devnet.start(http=True) as net:
        client = og.new_client(
            email=None,
            password=None,
            private_key=net.accounts[0].private_key,  # the guide reads os.environ["OG_PRIVATE_KEY"]
            network=net.network,
        )

        result = client.llm_completion(
            model_cid="openai/gpt-4o",
            prompt="Translate the following English text to French: 'Hello, how are you?'",
            max_tokens=50,
            temperature=0.0,
        )
        print(f"Response: {result.completion_output}")
        print(f"Payment hash: {result.payment_hash}")
        print(f"Answered on chain in transaction {result.transaction_hash}")


if __name__ == "__main__":
    main()
