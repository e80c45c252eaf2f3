"""AlphaSense tools driven by agents on the in-process devnet, and the proofs they hand back.

A LangGraph agent and an OpenAI Agents agent, each on `OpenGradientChatModel`/`OpenGradientModel`
and the devnet's reference model, answer by calling an AlphaSense tool; the tool's proof verifies
against the chain. Workflow-read tools return the workflow's current value with a proof of the
transaction that produced it, and follow the scheduler (driven by `tick()` and a fake clock: nothing
here sleeps).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner
from agents.items import ToolCallItem, ToolCallOutputItem
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import BaseModel, Field

import opengradient as og
import opengradient.alphasense.proofs as proofs_module
from opengradient.agents import OpenGradientChatModel, OpenGradientModel
from opengradient.alphasense import (
    ProofLog,
    ToolType,
    WorkflowResultProof,
    create_read_workflow_tool,
    create_run_model_tool,
    proof_from_dict,
    read_workflow_result_with_proof,
)
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.models.forecasts import ETH_VOLATILITY
from opengradient.devnet.services.workflows import WorkflowsHandle
from opengradient.workflow_models import ETH_1_HOUR_PRICE_FORECAST, ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST

NO_TRACE = RunConfig(tracing_disabled=True)
VOLATILITY = ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST
QUESTION = "What is the risk regime for volatility 0.5, expected return 0.1 and leverage 2?"


class RiskFeatures(BaseModel):
    volatility: float = Field(description="forecast hourly volatility, scaled so 1.0 is 2%")
    expected_return: float = Field(description="absolute expected hourly return, scaled so 1.0 is 1%")
    leverage: float = Field(description="position notional divided by equity")


def risk_input(volatility: float, expected_return: float, leverage: float) -> dict[str, Any]:
    return {"features": [[volatility, expected_return, leverage]]}


def risk_tool(tool_type: ToolType, net: Devnet, client: og.Client, **kwargs: Any) -> Any:
    return create_run_model_tool(
        tool_type, net.model("risk-classifier").cid, "risk_regime", risk_input, inference=client.alpha,
        tool_input_schema=RiskFeatures,
        tool_description="Classify the market risk regime (low, medium or high) from volatility, "
                         "expected return and leverage.", **kwargs)


def volatility_tool(tool_type: ToolType, client: og.Client, **kwargs: Any) -> Any:
    return create_read_workflow_tool(
        tool_type, VOLATILITY.contract_address, "eth_volatility_forecast",
        "Forecast of ETH/USDT volatility over the next hour.", alpha=client.alpha, **kwargs)


def _block(client: og.Client) -> int:
    return int(client.alpha._sync.run(_rpc("eth_blockNumber")), 16)


def _rpc(method: str, *params: Any) -> Any:
    from opengradient.client.chain import Rpc

    return (yield Rpc(method, params))


def _graph(llm: OpenGradientChatModel, tools: list[Any]) -> Any:
    model = llm.bind_tools(tools)

    def call_model(state: MessagesState) -> dict[str, list[Any]]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph.compile()


# -- LangGraph ------------------------------------------------------------------------------------


def test_langgraph_agent_answers_with_a_run_model_tool(devnet: Devnet) -> None:
    client = devnet.new_client()
    llm = OpenGradientChatModel(client=client, model="openai/gpt-4o")
    tools = [risk_tool(ToolType.LANGCHAIN, devnet, client), volatility_tool(ToolType.LANGCHAIN, client)]
    state = _graph(llm, tools).invoke({"messages": [HumanMessage(QUESTION)]})
    messages = state["messages"]
    call = messages[1].tool_calls[0]
    assert call["name"] == "risk_regime"
    assert call["args"] == {"volatility": 0.5, "expected_return": 0.1, "leverage": 2}
    tool_message = messages[2]
    assert isinstance(tool_message, ToolMessage) and tool_message.status == "success"
    assert str(tool_message.content).startswith("label = 'high'; probabilities = [")
    proof = tool_message.artifact
    assert isinstance(proof, og.Proof) and proof.kind == "onchain"
    assert proof.model_cid == devnet.model("risk-classifier").cid and proof.inference_mode == "VANILLA"
    assert proof.verify(client)
    with pytest.raises(og.VerificationError, match="output hash"):
        dataclasses.replace(proof, output_hash="0x" + "00" * 32).verify(client)
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert str(tool_message.content) in str(final.text)
    # the answer is also an independent, TEE-verified LLM response
    assert og.Proof.from_dict(final.response_metadata["proof"]).verify(client)


def test_langgraph_prebuilt_agent_reads_a_workflow(devnet: Devnet) -> None:
    from langgraph.prebuilt import create_react_agent

    client = devnet.new_client()
    llm = OpenGradientChatModel(client=client, model="openai/gpt-4o")
    tools = [risk_tool(ToolType.LANGCHAIN, devnet, client), volatility_tool(ToolType.LANGCHAIN, client)]
    with warnings.catch_warnings():  # LangGraph 1.x points to langchain.agents.create_agent
        warnings.simplefilter("ignore", DeprecationWarning)
        agent = create_react_agent(llm, tools)
    state = agent.invoke({"messages": [("user", "What is the ETH volatility forecast for the next hour?")]})
    messages = state["messages"]
    assert messages[1].tool_calls[0]["name"] == "eth_volatility_forecast"
    tool_message = messages[2]
    current = client.alpha.read_workflow_result(VOLATILITY.contract_address).numbers["Y"].item()
    assert tool_message.content == f"Y = {current:.6g}"
    proof = tool_message.artifact
    assert isinstance(proof, WorkflowResultProof) and proof.evidence == "transaction"
    assert proof.contract_address == VOLATILITY.contract_address
    assert proof.model_cid == devnet.workflows.models[ETH_VOLATILITY.name]
    assert proof.verify(client)
    assert tool_message.content in messages[-1].text


async def test_langgraph_agent_async_uses_ainfer(devnet: Devnet) -> None:
    client = devnet.new_client()
    llm = OpenGradientChatModel(client=client, model="openai/gpt-4o")
    tool = risk_tool(ToolType.LANGCHAIN, devnet, client)
    state = await _graph(llm, [tool]).ainvoke({"messages": [HumanMessage(QUESTION)]})
    tool_message = state["messages"][2]
    assert isinstance(tool_message, ToolMessage) and tool_message.artifact.verify(client)


# -- OpenAI Agents --------------------------------------------------------------------------------


async def test_openai_agent_answers_with_a_run_model_tool(devnet: Devnet) -> None:
    client = devnet.new_client()
    tool = risk_tool(ToolType.OPENAI_AGENTS, devnet, client)
    agent = Agent(name="risk desk", instructions="Answer risk questions with the tool.", tools=[tool],
                  model=OpenGradientModel("openai/gpt-4o", client=client))
    result = await Runner.run(agent, QUESTION, run_config=NO_TRACE)
    [call] = [item for item in result.new_items if isinstance(item, ToolCallItem)]
    [output] = [item for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    assert call.raw_item.name == "risk_regime"  # type: ignore[union-attr]
    assert str(output.output).startswith("label = 'high'")
    assert output.output in result.final_output
    assert len(tool.proofs) == 1
    proof = tool.proofs.for_call(call.raw_item.call_id)  # type: ignore[union-attr]
    assert proof is not None and proof.kind == "onchain" and proof.verify(client)
    assert tool.proofs.records[0].output == output.output


async def test_openai_agent_reads_a_workflow_into_a_shared_log(devnet: Devnet) -> None:
    client = devnet.new_client()
    log = ProofLog()
    tools = [risk_tool(ToolType.OPENAI_AGENTS, devnet, client, proof_log=log),
             volatility_tool(ToolType.OPENAI_AGENTS, client, proof_log=log)]
    agent = Agent(name="analyst", instructions="Answer with the tools.", tools=tools,
                  model=OpenGradientModel("openai/gpt-4o", client=client))
    result = await Runner.run(agent, "What is the ETH volatility forecast for the next hour?", run_config=NO_TRACE)
    [output] = [item for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    current = client.alpha.read_workflow_result(VOLATILITY.contract_address).numbers["Y"].item()
    assert output.output == f"Y = {current:.6g}"
    assert [r.tool_name for r in log.records] == ["eth_volatility_forecast"]
    assert tools[1].proofs is log and log.verify_all(client)


# -- workflow reads -------------------------------------------------------------------------------


def test_read_tool_returns_the_current_value_and_proves_it(devnet: Devnet) -> None:
    client = devnet.new_client()
    tool = create_read_workflow_tool(ToolType.SWARM, ETH_1_HOUR_PRICE_FORECAST.contract_address,
                                     "eth_return_forecast", "ETH/USDT return over the next hour.",
                                     alpha=client, output_formatter=lambda out: out.numbers["regression_output"])
    current = client.alpha.read_workflow_result(ETH_1_HOUR_PRICE_FORECAST.contract_address)
    assert tool() == f"{current.numbers['regression_output'].item():.6g}"
    proof = tool.proofs.latest
    assert isinstance(proof, WorkflowResultProof) and proof.verify(client)
    assert proof.read_block is not None and proof.block_number is not None
    assert proof.block_number <= proof.read_block <= _block(client)
    # the proof names the transaction that stored the result, and survives JSON
    receipt = client.alpha._sync.run(_rpc("eth_getTransactionReceipt", proof.transaction_hash))
    assert receipt["status"] == "0x1"
    restored = proof_from_dict(proof.to_dict())
    assert restored == proof and restored.verify(client)


@pytest.mark.parametrize("change", [
    {"output_hash": "0x" + "00" * 32},
    {"input_hash": "0x" + "11" * 32},
    {"model_cid": "bafk-another-model"},
    {"inference_mode": "TEE"},
    {"block_number": 1},
    {"transaction_hash": "0x" + "22" * 32},
    {"contract_address": ETH_1_HOUR_PRICE_FORECAST.contract_address},
    {"chain_id": 1},
    {"read_block": 0},
])
def test_a_tampered_workflow_proof_fails(devnet: Devnet, change: dict[str, Any]) -> None:
    _, proof = read_workflow_result_with_proof(VOLATILITY.contract_address, devnet.client)
    assert proof.verify(devnet.client)
    with pytest.raises(og.VerificationError, match="does not verify"):
        dataclasses.replace(proof, **change).verify(devnet.client)


def test_proof_from_dict_rebuilds_a_workflow_proof_and_a_plain_one_does_not_pass(devnet: Devnet) -> None:
    _, proof = read_workflow_result_with_proof(VOLATILITY.contract_address, devnet.client)
    restored = og.Proof.from_dict(proof.to_dict())
    assert type(restored) is WorkflowResultProof and restored == proof and restored.verify(devnet.client)
    # stripped of what makes it a workflow proof, it is checked as on-chain inference, and fails
    plain = og.Proof.from_dict({k: v for k, v in proof.to_dict().items() if k not in ("evidence", "read_block")})
    assert type(plain) is og.Proof
    with pytest.raises(og.VerificationError):
        plain.verify(devnet.client)


def test_read_proof_when_no_transaction_is_found(devnet: Devnet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proofs_module, "MAX_LOOKBACK", 0)
    output, proof = read_workflow_result_with_proof(VOLATILITY.contract_address, devnet.client)
    assert proof.evidence == "read" and proof.transaction_hash is None
    assert proof.block_number == proof.read_block
    assert proof.verify(devnet.client)
    with pytest.raises(og.VerificationError, match="another hash"):
        dataclasses.replace(proof, output_hash="0x" + "00" * 32).verify(devnet.client)


async def test_async_read_tool(devnet: Devnet) -> None:
    client = devnet.new_client()
    tool = volatility_tool(ToolType.LANGCHAIN, client)
    message = await tool.ainvoke({"type": "tool_call", "id": "call_1", "name": tool.name, "args": {}})
    assert message.content.startswith("Y = ") and message.artifact.verify(client)


# -- the scheduler --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def scheduled() -> Iterator[tuple[Devnet, WorkflowsHandle, FakeClock]]:
    """A devnet of its own whose scheduler runs only on `tick()`, on a fake clock."""
    clock = FakeClock()
    with og.devnet.start() as net:
        net.workflows.close()  # stop the background loop
        net.workflows.scheduler.clock = clock
        yield net, net.workflows, clock


def test_a_registered_workflow_produces_a_new_result_without_anyone_calling_run(
        scheduled: tuple[Devnet, WorkflowsHandle, FakeClock]) -> None:
    net, handle, clock = scheduled
    client = net.client
    clock.now = time.time()
    query = og.HistoricalInputQuery(ETH_VOLATILITY.base, ETH_VOLATILITY.quote, ETH_VOLATILITY.total_candles,
                                    ETH_VOLATILITY.duration_mins, ETH_VOLATILITY.order,
                                    list(ETH_VOLATILITY.candle_types))
    address = client.alpha.new_workflow(handle.models[ETH_VOLATILITY.name], query, ETH_VOLATILITY.input_name,
                                        og.SchedulerParams(frequency=3600, duration_hours=48))
    tool = create_read_workflow_tool(ToolType.LANGCHAIN, address, "my_eth_volatility",
                                     "My ETH/USDT volatility forecast.", alpha=client.alpha)

    def read() -> tuple[str, WorkflowResultProof]:
        message = tool.invoke({"type": "tool_call", "id": "call_1", "name": tool.name, "args": {}})
        return message.content, message.artifact

    first_value, first_proof = read()
    assert first_proof.verify(client)  # the deployment's set-up ran the model once
    assert address not in {r.contract_address for r in handle.scheduler.tick().runs}  # not due yet

    clock.now += 3600 + 60  # an hour on (and the chain's registration time): a new candle closed, the task is due
    report = handle.scheduler.tick()
    [run] = [r for r in report.runs if r.contract_address == address]
    assert run.transaction_hash is not None and not report.failures
    value, proof = read()
    assert value != first_value
    current = client.alpha.read_workflow_result(address).numbers["Y"].item()
    assert value == f"Y = {current:.6g}"
    assert proof.transaction_hash == run.transaction_hash  # the scheduler's transaction, not ours
    assert proof.verify(client)
    # the earlier proof still proves what it said: the latest result as of its read block...
    assert first_proof.verify(client)
    # ...but not as of a block after the scheduled run
    with pytest.raises(og.VerificationError, match="ran again"):
        dataclasses.replace(first_proof, read_block=proof.read_block).verify(client)
