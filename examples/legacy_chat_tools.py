"""LLM guide, "Chat Example with Tools": `client.llm_chat` with tools, in VANILLA mode, on the devnet.

The guide's code with one change: the client talks to a local devnet (`network=net.network`).
The model (`og.LLM.MISTRAL_7B_INSTRUCT_V3`, answered on chain by the devnet's reference model)
decides to call `get_current_weather`; a tool call has no text, so the guide's
`chat_output['content']` prints `None` and the call itself is in `chat_output['tool_calls']`.
The example then runs the tool and sends its result back, as an application would.

Run: python examples/legacy_chat_tools.py
"""

from __future__ import annotations

import json
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

        # Define your tools
        tools: list[dict[str, Any]] = [{
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {
                            "type": "string",
                            "description": "The city to find the weather for, e.g. 'San Francisco'",
                        },
                        "state": {
                            "type": "string",
                            "description": ("the two-letter abbreviation for the state that the city is in, "
                                            "e.g. 'CA' which would mean 'California'"),
                        },
                        "unit": {
                            "type": "string",
                            "description": "The unit to fetch the temperature in",
                            "enum": ["celsius", "fahrenheit"],
                        },
                    },
                    "required": ["city", "state", "unit"],
                },
            },
        }]

        # Message conversation
        messages: list[dict[str, Any]] = [
            {
                "role": "system",
                "content": "You are a AI assistant that helps the user with tasks. Use tools if necessary.",
            },
            {
                "role": "user",
                "content": "Hi! How are you doing today?",
            },
            {
                "role": "assistant",
                "content": "I'm doing well! How can I help you?",
            },
            {
                "role": "user",
                "content": "Can you tell me what the temperate will be in Dallas, in fahrenheit?",
            },
        ]

        result = client.llm_chat(
            model_cid=og.LLM.MISTRAL_7B_INSTRUCT_V3,
            messages=messages,
            tools=tools,
        )
        assert result.chat_output is not None
        print(f"Response: {result.chat_output['content']}")
        print(f"Payment hash: {result.payment_hash}")

        # Beyond the guide: run the requested tool and give the model its result.
        call = result.chat_output["tool_calls"][0]
        arguments = json.loads(call["function"]["arguments"])
        print(f"Tool call: {call['function']['name']}({arguments})")
        weather = f"72 degrees {arguments.get('unit', 'fahrenheit')} and sunny in {arguments.get('city')}"
        messages += [result.chat_output, {"role": "tool", "tool_call_id": call["id"], "content": weather}]
        final = client.llm_chat(model_cid=og.LLM.MISTRAL_7B_INSTRUCT_V3, messages=messages, tools=tools)
        assert final.chat_output is not None
        print(f"Final answer: {final.chat_output['content']}")


if __name__ == "__main__":
    main()
