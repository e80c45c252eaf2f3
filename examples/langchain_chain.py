"""A LangChain chain on OpenGradient: prompt → TEE-verified chat model → parser, with the proof.

Run: `python examples/langchain_chain.py` (needs the `langchain` and `devnet` extras). It starts
the devnet in this process; every model call is paid with x402 on the devnet's payments chain and
its enclave signature is checked before LangChain sees the answer. Pass `--http` to serve the
devnet on loopback and go through real sockets.

On the public network, swap the devnet client for `og.init(private_key=…)` (or give the model
`private_key=`); nothing else changes.
"""

from __future__ import annotations

import sys

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

import opengradient as og
from opengradient.agents import OpenGradientChatModel


def main(http: bool = False) -> None:
    with og.devnet.start(http=http) as net:
        llm = OpenGradientChatModel(client=net.client, model=og.TEE_LLM.GPT_4O, max_tokens=200)
        prompt = ChatPromptTemplate.from_messages([
            ("system", "You explain things in one short paragraph."),
            ("human", "What does {topic} give an application?"),
        ])

        # 1. invoke: the message carries usage, the payment and the TEE proof.
        message = (prompt | llm).invoke({"topic": "verifiable inference"})
        print(f"answer:   {message.text}")
        meta = message.response_metadata
        print(f"model:    {meta['model_name']}  tokens: {message.usage_metadata}")
        print(f"paid in:  {meta['payment_hash']}")
        proof = og.Proof.from_dict(meta["proof"])
        print(f"verified: {meta['tee_verified']} (enclave {proof.tee_id}); re-check: {proof.verify(net.client)}")

        # 2. stream through a parser: tokens arrive as the gateway sends them.
        print("stream:   ", end="")
        for token in (prompt | llm | StrOutputParser()).stream({"topic": "an x402 payment"}):
            print(token, end="", flush=True)
        print()


if __name__ == "__main__":
    main(http="--http" in sys.argv[1:])
