"""The adapters end to end on the in-process devnet: paid, TEE-verified calls driven by the frameworks.

OpenAI Agents: `Runner.run` and `Runner.run_streamed` with a function tool, a handoff between two
agents, and a structured `output_type`, through `Agent(model=…)` and `RunConfig(model_provider=…)`.
LangChain: a LangGraph prebuilt ReAct agent calling a tool, and a chain whose proof verifies.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.items import HandoffOutputItem, ToolCallItem, ToolCallOutputItem
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from pydantic import BaseModel

import opengradient as og
from opengradient.agents import OpenGradientChatModel, OpenGradientModel, OpenGradientModelProvider
from opengradient.devnet.node import Devnet

NO_TRACE = RunConfig(tracing_disabled=True)
calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    calls.append(city)
    return f"It is sunny and 22 degrees in {city}."


class WeatherReport(BaseModel):
    city: str
    degrees: int


@pytest.fixture
def model(devnet: Devnet) -> OpenGradientModel:
    return OpenGradientModel("openai/gpt-4o", client=devnet.new_client())


def _check_proofs(model: OpenGradientModel, result: Any, client: og.Client) -> None:
    assert result.raw_responses
    for response in result.raw_responses:
        proof = model.proof_for(response.response_id)
        assert proof is not None and proof.kind == "tee"
        assert proof.verify(client)


async def test_run_with_a_function_tool(model: OpenGradientModel) -> None:
    calls.clear()
    agent = Agent(name="weather", instructions="Answer weather questions with the tool.", tools=[get_weather],
                  model=model)
    result = await Runner.run(agent, "What is the weather in Paris?", run_config=NO_TRACE)
    assert calls == ["Paris"]
    assert [type(i) for i in result.new_items][:2] == [ToolCallItem, ToolCallOutputItem]
    assert "Paris" in result.final_output
    assert len(result.raw_responses) == 2
    assert result.context_wrapper.usage.requests == 2 and result.context_wrapper.usage.total_tokens > 0
    _check_proofs(model, result, model.client)


async def test_run_streamed_with_a_function_tool(model: OpenGradientModel) -> None:
    calls.clear()
    agent = Agent(name="weather", instructions="Answer weather questions with the tool.", tools=[get_weather],
                  model=model)
    streamed = Runner.run_streamed(agent, "What is the weather in Rome?", run_config=NO_TRACE)
    raw_types: list[str] = []
    async for event in streamed.stream_events():
        if event.type == "raw_response_event":
            raw_types.append(event.data.type)
    assert calls == ["Rome"]
    assert raw_types.count("response.completed") == 2
    assert raw_types[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in raw_types
    assert "response.output_text.delta" in raw_types
    assert isinstance(streamed.final_output, str) and "Rome" in streamed.final_output
    _check_proofs(model, streamed, model.client)


async def test_handoff_between_two_agents(model: OpenGradientModel) -> None:
    spanish = Agent(name="Spanish agent", instructions="You only speak Spanish.",
                    handoff_description="A Spanish speaking agent.", model=model)
    triage = Agent(name="Triage agent", instructions="Hand off to the agent that speaks the user's language.",
                   handoffs=[spanish], model=model)
    result = await Runner.run(triage, "Please transfer me to the Spanish agent.", run_config=NO_TRACE)
    assert result.last_agent is spanish
    assert any(isinstance(item, HandoffOutputItem) for item in result.new_items)
    assert isinstance(result.final_output, str) and result.final_output
    _check_proofs(model, result, model.client)


async def test_handoff_streamed(model: OpenGradientModel) -> None:
    spanish = Agent(name="Spanish agent", instructions="You only speak Spanish.",
                    handoff_description="A Spanish speaking agent.", model=model)
    triage = Agent(name="Triage agent", instructions="Hand off to the agent that speaks the user's language.",
                   handoffs=[spanish], model=model)
    streamed = Runner.run_streamed(triage, "Please transfer me to the Spanish agent.", run_config=NO_TRACE)
    updates = [e.new_agent.name async for e in streamed.stream_events() if e.type == "agent_updated_stream_event"]
    assert updates[-1] == "Spanish agent"
    assert streamed.last_agent is spanish


async def test_structured_output_type_through_a_model_provider(devnet: Devnet) -> None:
    provider = OpenGradientModelProvider(client=devnet.new_client())
    agent = Agent(name="reporter", instructions="Report the weather as data.", output_type=WeatherReport)
    config = RunConfig(model_provider=provider, tracing_disabled=True)
    result = await Runner.run(agent, "Weather report for Oslo: 15 degrees.", run_config=config)
    assert result.final_output == WeatherReport(city="Oslo", degrees=15)
    assert provider.proof_for(result.raw_responses[0].response_id) is not None

    streamed = Runner.run_streamed(agent, "Weather report for Oslo: 15 degrees.", run_config=config)
    async for _ in streamed.stream_events():
        pass
    assert streamed.final_output == WeatherReport(city="Oslo", degrees=15)


async def test_runs_need_no_openai_key(monkeypatch: pytest.MonkeyPatch, model: OpenGradientModel) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    agent = Agent(name="plain", instructions="Be brief.", model=model)
    result = await Runner.run(agent, "Say hello.", run_config=NO_TRACE)
    assert isinstance(result.final_output, str) and result.final_output


# -- LangChain / LangGraph ---------------------------------------------------------------------------


@tool
def lookup_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 22 degrees in {city}."


def test_langgraph_prebuilt_react_agent_calls_a_tool(devnet: Devnet) -> None:
    from langgraph.prebuilt import create_react_agent

    llm = OpenGradientChatModel(client=devnet.new_client(), model="openai/gpt-4o")
    with warnings.catch_warnings():  # LangGraph 1.x points to langchain.agents.create_agent
        warnings.simplefilter("ignore", DeprecationWarning)
        agent = create_react_agent(llm, [lookup_weather])
    state = agent.invoke({"messages": [("user", "What is the weather in Paris?")]})
    messages = state["messages"]
    assert isinstance(messages[1], AIMessage) and messages[1].tool_calls[0]["name"] == "lookup_weather"
    assert isinstance(messages[2], ToolMessage) and "Paris" in messages[2].content
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls and "Paris" in final.text
    for message in (messages[1], final):
        assert message.response_metadata["tee_verified"] is True
        assert og.Proof.from_dict(message.response_metadata["proof"]).verify(llm.get_client())


async def test_langgraph_react_agent_async_streaming(devnet: Devnet) -> None:
    from langgraph.prebuilt import create_react_agent

    llm = OpenGradientChatModel(client=devnet.new_client(), model="openai/gpt-4o", streaming=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        agent = create_react_agent(llm, [lookup_weather])
    state = await agent.ainvoke({"messages": [("user", "What is the weather in Rome?")]})
    assert state["messages"][1].tool_calls[0]["args"] == {"city": "Rome"}
    assert "Rome" in state["messages"][-1].text


def test_langchain_chain_on_the_devnet(devnet: Devnet) -> None:
    llm = OpenGradientChatModel(client=devnet.new_client(), model=og.TEE_LLM.CLAUDE_3_5_HAIKU)
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("human", "Tell me about {topic}.")])
    chain = prompt | llm
    message = chain.invoke({"topic": "verifiable inference"})
    assert isinstance(message, AIMessage) and message.text
    assert message.usage_metadata is not None and message.usage_metadata["total_tokens"] > 0
    assert message.response_metadata["model_name"] == "anthropic/claude-3.5-haiku"
    assert message.response_metadata["payment_hash"].startswith("0x")
    assert (message.response_metadata["tee_endpoint"], message.response_metadata["tee_payment_address"]) == (
        devnet.url, devnet.gateway.pay_to)  # the enclave the registry listed
    assert og.Proof.from_dict(message.response_metadata["proof"]).verify(llm.get_client())
    text = "".join((prompt | llm | StrOutputParser()).stream({"topic": "proofs"}))
    assert text
