"""Tool calling with `client.llm.chat`: the model asks for a tool, the app runs it, the model answers.

On an in-process devnet. The model (the devnet's deterministic reference model behind the TEE
gateway) picks `get_current_weather` from the user's words and fills its arguments from the
schema; the tool's result goes back as a `tool` message and the model answers in text. Every
step is paid and TEE-verified; tool calls are covered by the enclave's signature too.

Run: python examples/llm_tools.py
"""

from __future__ import annotations

import json
from typing import Any

import opengradient as og
from opengradient.client.llm import TextGenerationStream

TOOLS: list[dict[str, Any]] = [{
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. 'San Francisco'"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}]


def get_current_weather(city: str, unit: str = "celsius") -> str:
    """The application's own implementation of the tool."""
    return json.dumps({"city": city, "temperature": 22 if unit == "celsius" else 72, "unit": unit})


def main() -> None:
    with og.devnet.start() as net:
        client = net.client
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": "What's the weather like in Paris today, in celsius?"},
        ]

        first = client.llm.chat(model=og.TEE_LLM.GPT_4O, messages=messages, tools=TOOLS, tool_choice="auto")
        assert not isinstance(first, TextGenerationStream) and first.chat_output is not None
        print(f"finish reason: {first.finish_reason} (verified: {first.tee_verified})")
        messages.append(first.chat_output)
        for call in first.chat_output.get("tool_calls") or []:
            arguments = json.loads(call["function"]["arguments"])
            print(f"tool call:     {call['function']['name']}({arguments})")
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": get_current_weather(**arguments)})

        final = client.llm.chat(model=og.TEE_LLM.GPT_4O, messages=messages, tools=TOOLS)
        assert not isinstance(final, TextGenerationStream) and final.chat_output is not None
        print(f"answer:        {final.chat_output['content']} (verified: {final.tee_verified})")


if __name__ == "__main__":
    main()
