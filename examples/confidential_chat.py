"""Confidential chat: the prompt and the answer are sealed to an enclave; the relay that pays sees neither.

Run: `python examples/confidential_chat.py` (with the devnet extra installed). On the public network:
`og.ConfidentialLLM(relay_url="https://…", headers={"Authorization": "Bearer <token>"},
network="public-latest")` — no private key is needed: the relay pays.
"""

from __future__ import annotations

import opengradient as og

PROMPT = "My blood test says ferritin 12 ng/mL. Should I worry?"


def main() -> None:
    with og.devnet.start() as net:
        llm = net.confidential_llm()  # the devnet's relay and its development API key
        net.relay.seen.clear()
        answer = llm.chat(og.TEE_LLM.GPT_4O, [{"role": "user", "content": PROMPT}], max_tokens=60)
        assert isinstance(answer, og.TextGenerationOutput) and answer.chat_output is not None
        print("answer:  ", answer.chat_output["content"])
        print("verified:", answer.tee_verified, f"(enclave {answer.tee_id})")
        relay_saw = b"".join(data for _, data in net.relay.seen)
        print("relay saw", len(relay_saw), "bytes; plaintext among them:", PROMPT.encode() in relay_saw)

        stream = llm.chat(og.TEE_LLM.GPT_4O, [{"role": "user", "content": PROMPT}], max_tokens=30, stream=True)
        assert isinstance(stream, og.client.confidential.ConfidentialStream)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
        assert stream.result is not None
        print("streamed:", text[:40] + "…", "verified:", stream.result.tee_verified)


if __name__ == "__main__":
    main()
