"""An OpenAI Agents SDK triage agent that hands off to a specialist with a tool, on OpenGradient.

Run: `python examples/openai_agents_handoff.py` (needs the `agents` and `devnet` extras). No
OpenAI key is used: every model call goes to the devnet's TEE gateway through
`OpenGradientModelProvider`, paid with x402 and verified; each answer's proof is looked up by its
response id.

Tracing is the Agents SDK's and stays under your control; this script turns it off because it runs
offline (its default exporter would try to send traces to OpenAI).
"""

from __future__ import annotations

import asyncio
import sys

from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled

import opengradient as og
from opengradient.agents import OpenGradientModelProvider


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 22 degrees in {city}."


async def run(client: og.Client) -> None:
    provider = OpenGradientModelProvider(client=client, default_model=og.TEE_LLM.GPT_4O)
    weather = Agent(name="Weather agent", instructions="Answer weather questions using the tool.",
                    handoff_description="Answers questions about the weather.", tools=[get_weather])
    triage = Agent(name="Triage agent", instructions="Hand weather questions off to the weather agent.",
                   handoffs=[weather])
    config = RunConfig(model_provider=provider)

    result = await Runner.run(triage, "Transfer me to the weather agent.", run_config=config)
    print(f"handed off to: {result.last_agent.name}")

    streamed = Runner.run_streamed(result.last_agent, "What is the weather in Paris?", run_config=config)
    print("streaming:     ", end="")
    async for event in streamed.stream_events():
        if event.type == "run_item_stream_event" and event.name == "tool_called":
            print(f"[tool call {event.item.raw_item.name}] ", end="")  # type: ignore[union-attr]
        elif event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            print(event.data.delta, end="", flush=True)
    print()
    print(f"answer:        {streamed.final_output}")

    for response in [*result.raw_responses, *streamed.raw_responses]:
        proof = provider.proof_for(response.response_id)
        assert proof is not None
        print(f"proof {response.response_id}: enclave {str(proof.tee_id)[:12]}…, verified {proof.verify(client)}")


def main(http: bool = False) -> None:
    set_tracing_disabled(True)
    with og.devnet.start(http=http) as net:
        asyncio.run(run(net.client))


if __name__ == "__main__":
    main(http="--http" in sys.argv[1:])
