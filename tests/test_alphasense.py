"""AlphaSense tools: the shape each framework gets, refused input (nothing sent), default formatting,
proof logs, configuration errors, and that importing the package loads no agent framework.

Shapes and formatting run against a stand-in `alpha` that validates input the way the client does
(`prepare_inference`) and counts calls; refused input is also checked on the in-process devnet,
where "nothing sent" means the block number and the account's nonce did not move.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, Field

import opengradient as og
from opengradient.alphasense import (
    ProofLog,
    ToolType,
    WorkflowResultProof,
    create_read_workflow_tool,
    create_run_model_tool,
    format_inference_result,
    format_model_output,
    format_tensor,
    parse_tool_type,
    proof_from_dict,
    proofs_of,
    to_text,
)
from opengradient.client.alpha import prepare_inference
from opengradient.devnet.node import Devnet
from opengradient.types import InferenceResult, ModelOutput

CID = "bafk-stand-in-model"
WORKFLOW = "0xD5629A5b95dde11e4B5772B5Ad8a13B933e33845"


class Features(BaseModel):
    volatility: float = Field(description="forecast hourly volatility")
    expected_return: float = Field(description="expected hourly return")
    leverage: float = Field(default=1.0, ge=0, description="notional over equity")


def features(volatility: float, expected_return: float, leverage: float) -> dict[str, Any]:
    if leverage > 10:
        raise og.InvalidInputError(f"leverage {leverage} is above the desk's limit of 10")
    return {"features": [[volatility, expected_return, leverage]]}


class StandInAlpha:
    """Validates like the client, then answers a fixed output with a proof; counts calls."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.error = error

    def _answer(self, how: str, model_cid: str, mode: Any, model_input: Any) -> InferenceResult:
        prepared = prepare_inference(model_cid, mode, model_input)
        self.calls.append((how, model_input))
        if self.error is not None:
            raise self.error
        proof = og.Proof(kind="onchain", transaction_hash="0x" + "ab" * 32, model_cid=prepared.model_cid,
                         inference_mode=prepared.mode.name, input_hash=prepared.input_hash)
        return InferenceResult(transaction_hash="0x" + "ab" * 32, proof=proof,
                               model_output={"label": np.array(["high"]),
                                             "probabilities": np.array([[0.1, 0.2, 0.7]], dtype=np.float32)})

    def infer(self, model_cid: str, inference_mode: Any, model_input: Any) -> InferenceResult:
        return self._answer("sync", model_cid, inference_mode, model_input)

    async def ainfer(self, model_cid: str, inference_mode: Any, model_input: Any) -> InferenceResult:
        return self._answer("async", model_cid, inference_mode, model_input)

    def read_workflow_result(self, contract_address: str) -> ModelOutput:
        self.calls.append(("read", contract_address))
        return ModelOutput(numbers={"Y": np.array([[0.0123]])})

    async def aread_workflow_result(self, contract_address: str) -> ModelOutput:
        self.calls.append(("aread", contract_address))
        return ModelOutput(numbers={"Y": np.array([[0.0123]])})


def run_tool(alpha: Any, tool_type: ToolType, **kwargs: Any) -> Any:
    kwargs.setdefault("tool_input_schema", Features)
    kwargs.setdefault("model_input_provider", features)
    return create_run_model_tool(tool_type, CID, "risk_regime", inference=alpha,
                                 tool_description="Classify the market risk regime.", **kwargs)


def tool_call(name: str, args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "args": args}


# -- ToolType -------------------------------------------------------------------------------------


def test_tool_types() -> None:
    assert [t.name for t in ToolType] == ["LANGCHAIN", "OPENAI_AGENTS", "SWARM"]
    assert parse_tool_type("langchain") is ToolType.LANGCHAIN
    assert parse_tool_type("OPENAI_AGENTS") is ToolType.OPENAI_AGENTS
    assert parse_tool_type(ToolType.SWARM) is ToolType.SWARM
    with pytest.raises(og.InvalidInputError, match="unknown tool_type"):
        parse_tool_type("crewai")


# -- LangChain ------------------------------------------------------------------------------------


def test_langchain_run_model_tool_shape() -> None:
    from langchain_core.messages import ToolMessage
    from langchain_core.tools import StructuredTool

    alpha = StandInAlpha()
    tool = run_tool(alpha, ToolType.LANGCHAIN)
    assert isinstance(tool, StructuredTool)
    assert tool.name == "risk_regime" and tool.description == "Classify the market risk regime."
    assert tool.response_format == "content_and_artifact"
    assert tool.args_schema is Features
    assert set(tool.args) == {"volatility", "expected_return", "leverage"}
    message = tool.invoke(tool_call("risk_regime", {"volatility": 0.5, "expected_return": 0.1}))
    assert isinstance(message, ToolMessage) and message.status == "success"
    assert message.content == "label = 'high'; probabilities = [0.1, 0.2, 0.7]"
    assert isinstance(message.artifact, og.Proof) and message.artifact.model_cid == CID
    assert alpha.calls == [("sync", {"features": [[0.5, 0.1, 1.0]]})]  # the schema's default filled in
    # called without a tool call, a content-and-artifact tool gives the content only
    assert tool.invoke({"volatility": 0.5, "expected_return": 0.1}).startswith("label = ")


async def test_langchain_tool_is_async_with_ainfer() -> None:
    alpha = StandInAlpha()
    tool = run_tool(alpha, ToolType.LANGCHAIN)
    message = await tool.ainvoke(tool_call("risk_regime", {"volatility": 0.5, "expected_return": 0.1,
                                                           "leverage": 2}))
    assert message.artifact is not None
    assert alpha.calls == [("async", {"features": [[0.5, 0.1, 2.0]]})]


def test_langchain_tool_without_schema_takes_no_arguments() -> None:
    alpha = StandInAlpha()
    tool = create_run_model_tool(ToolType.LANGCHAIN, CID, "fixed_model", lambda: {"features": [[1.0, 2.0, 3.0]]},
                                 inference=alpha)
    assert tool.args == {} and tool.description == "Executes the given ML model"
    message = tool.invoke(tool_call("fixed_model", {}))
    assert message.artifact is not None and alpha.calls[0][1] == {"features": [[1.0, 2.0, 3.0]]}


def test_langchain_workflow_tool_shape() -> None:
    from langchain_core.tools import StructuredTool

    alpha = StandInAlpha()  # a stand-in without the chain driver: the value, no proof
    tool = create_read_workflow_tool(ToolType.LANGCHAIN, WORKFLOW, "eth_volatility", "ETH volatility.", alpha=alpha)
    assert isinstance(tool, StructuredTool) and tool.response_format == "content_and_artifact"
    assert tool.args == {}
    message = tool.invoke(tool_call("eth_volatility", {}))
    assert message.content == "Y = 0.0123" and message.artifact is None
    assert alpha.calls == [("read", WORKFLOW)]


# -- OpenAI Agents --------------------------------------------------------------------------------


async def test_openai_agents_tool_shape_and_proof_log() -> None:
    from agents import FunctionTool

    alpha = StandInAlpha()
    tool = run_tool(alpha, ToolType.OPENAI_AGENTS)
    assert isinstance(tool, FunctionTool)
    assert tool.name == "risk_regime" and tool.description == "Classify the market risk regime."
    assert tool.strict_json_schema
    schema = tool.params_json_schema
    assert set(schema["properties"]) == {"volatility", "expected_return", "leverage"}
    assert schema["additionalProperties"] is False
    assert inspect.iscoroutinefunction(tool.on_invoke_tool)
    log = proofs_of(tool)
    assert isinstance(log, ProofLog) and log is getattr(tool, "proofs") and len(log) == 0  # noqa: B009
    context: Any = SimpleNamespace(tool_call_id="call_42")
    text = await tool.on_invoke_tool(context, json.dumps({"volatility": 0.5, "expected_return": 0.1,
                                                          "leverage": 1}))
    assert text == "label = 'high'; probabilities = [0.1, 0.2, 0.7]"
    assert alpha.calls[0][0] == "async"
    proof = log.for_call("call_42")
    assert proof is not None and proof is log.latest and list(log) == [proof]
    assert log.records[0].tool_name == "risk_regime" and log.records[0].output == text
    with pytest.raises(TypeError, match="artifact"):
        proofs_of(run_tool(alpha, ToolType.LANGCHAIN))


async def test_openai_agents_tool_without_schema() -> None:
    tool = create_read_workflow_tool(ToolType.OPENAI_AGENTS, WORKFLOW, "eth_volatility", "ETH volatility.",
                                     alpha=StandInAlpha())
    assert tool.params_json_schema == {"type": "object", "properties": {}, "required": [],
                                       "additionalProperties": False}
    assert await tool.on_invoke_tool(SimpleNamespace(tool_call_id="c"), "") == "Y = 0.0123"


async def test_openai_agents_tool_refuses_bad_json() -> None:
    alpha = StandInAlpha()
    tool = run_tool(alpha, ToolType.OPENAI_AGENTS)
    for arguments in ("{not json", "[1, 2]"):
        text = await tool.on_invoke_tool(SimpleNamespace(tool_call_id="c"), arguments)
        assert text.startswith("Invalid input for tool risk_regime") and "no transaction was sent" in text
    assert alpha.calls == [] and len(tool.proofs) == 0


# -- Swarm ----------------------------------------------------------------------------------------


def test_swarm_function_shape() -> None:
    alpha = StandInAlpha()
    tool = run_tool(alpha, ToolType.SWARM)
    assert inspect.isfunction(tool) and not inspect.iscoroutinefunction(tool)
    assert tool.__name__ == "risk_regime" and tool.__doc__ == "Classify the market risk regime."
    signature = inspect.signature(tool)
    assert list(signature.parameters) == ["volatility", "expected_return", "leverage"]
    assert signature.parameters["leverage"].default == 1.0
    assert signature.parameters["volatility"].default is inspect.Parameter.empty
    assert tool.__annotations__ == {"volatility": float, "expected_return": float, "leverage": float,
                                    "return": str}
    assert tool(volatility=0.5, expected_return=0.1) == "label = 'high'; probabilities = [0.1, 0.2, 0.7]"
    assert len(proofs_of(tool)) == 1 and proofs_of(tool)[0].model_cid == CID


def test_swarm_workflow_function_has_no_parameters() -> None:
    tool = create_read_workflow_tool(ToolType.SWARM, WORKFLOW, "eth_volatility", "ETH volatility.",
                                     alpha=StandInAlpha(), output_formatter=lambda out: out.numbers["Y"].item())
    assert list(inspect.signature(tool).parameters) == [] and tool.__doc__ == "ETH volatility."
    assert tool() == "0.0123"


# -- refused input --------------------------------------------------------------------------------


BAD_ARGUMENTS = [
    ({"volatility": "high", "expected_return": 0.1}, "volatility: Input should be a valid number"),
    ({"expected_return": 0.1}, "volatility: Field required"),
    ({"volatility": 0.5, "expected_return": 0.1, "leverage": -1}, "leverage: Input should be greater than"),
    ({"volatility": 0.5, "expected_return": 0.1, "leverage": 50}, "above the desk's limit of 10"),
]


async def _call(tool: Any, tool_type: ToolType, args: dict[str, Any]) -> tuple[str, Any]:
    """Call a tool as its framework would: (text, proof or None)."""
    if tool_type is ToolType.LANGCHAIN:
        message = tool.invoke(tool_call(tool.name, args))
        assert message.status == ("success" if message.artifact is not None else "error")
        return message.content, message.artifact
    before = len(tool.proofs)
    if tool_type is ToolType.OPENAI_AGENTS:
        text = await tool.on_invoke_tool(SimpleNamespace(tool_call_id="c"), json.dumps(args))
    else:
        text = tool(**args)
    return text, tool.proofs.latest if len(tool.proofs) > before else None


@pytest.mark.parametrize("tool_type", list(ToolType))
@pytest.mark.parametrize(("args", "reason"), BAD_ARGUMENTS)
async def test_bad_arguments_are_refused_before_inference(tool_type: ToolType, args: dict[str, Any],
                                                          reason: str) -> None:
    alpha = StandInAlpha()
    text, proof = await _call(run_tool(alpha, tool_type), tool_type, args)
    assert text.startswith("Invalid input for tool risk_regime: ") and reason in text
    assert text.endswith("Nothing was run and no transaction was sent.")
    assert proof is None and alpha.calls == []


@pytest.mark.parametrize("tool_type", list(ToolType))
async def test_a_tensor_the_codec_rejects_is_refused(tool_type: ToolType) -> None:
    alpha = StandInAlpha()
    tool = create_run_model_tool(tool_type, CID, "ragged", lambda: {"features": [[1.0, 2.0], [3.0]]},
                                 inference=alpha)
    text, proof = await _call(tool, tool_type, {})
    assert text.startswith("Invalid input for tool ragged: ") and "no transaction was sent" in text
    assert proof is None and alpha.calls == []


async def test_refusals_by_the_chain_and_other_errors() -> None:
    refused = StandInAlpha(error=og.ModelNotFoundError("model not found: bafk-stand-in-model"))
    tool = run_tool(refused, ToolType.SWARM)
    assert tool(volatility=0.5, expected_return=0.1) == (
        "The model refused the input of tool risk_regime: model not found: bafk-stand-in-model. "
        "No transaction was sent.")
    sent = StandInAlpha(error=og.ContractRevertError("out of gas", transaction_hash="0x" + "cd" * 32))
    with pytest.raises(og.ContractRevertError):  # a transaction was sent and failed: not an input problem
        run_tool(sent, ToolType.SWARM)(volatility=0.5, expected_return=0.1)
    down = StandInAlpha(error=og.NetworkError("connection refused"))
    with pytest.raises(og.NetworkError):
        run_tool(down, ToolType.LANGCHAIN).invoke(tool_call("risk_regime", {"volatility": 0.5,
                                                                            "expected_return": 0.1}))


def test_a_provider_validating_with_pydantic_is_refused_field_by_field() -> None:
    class Strict(BaseModel):
        volatility: float = Field(lt=1)

    def provider(**kwargs: Any) -> dict[str, Any]:
        Strict.model_validate({"volatility": kwargs["volatility"]})
        return features(**kwargs)

    alpha = StandInAlpha()
    tool = run_tool(alpha, ToolType.SWARM, model_input_provider=provider)
    text = tool(volatility=5.0, expected_return=0.1)
    assert text == ("Invalid input for tool risk_regime: volatility: Input should be less than 1. "
                    "Nothing was run and no transaction was sent.")
    assert alpha.calls == []


async def test_async_providers() -> None:
    async def provider(volatility: float, expected_return: float, leverage: float) -> dict[str, Any]:
        return features(volatility, expected_return, leverage)

    alpha = StandInAlpha()
    tool = run_tool(alpha, ToolType.LANGCHAIN, model_input_provider=provider)
    message = await tool.ainvoke(tool_call("risk_regime", {"volatility": 0.5, "expected_return": 0.1}))
    assert message.artifact is not None and alpha.calls == [("async", {"features": [[0.5, 0.1, 1.0]]})]
    with pytest.raises(og.ConfigurationError, match="is async"):
        tool.invoke(tool_call("risk_regime", {"volatility": 0.5, "expected_return": 0.1}))


def _nothing_sent_state(devnet: Devnet) -> tuple[str, str]:
    chain = devnet.alpha_chain

    def rpc(method: str, *params: Any) -> str:
        response = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        assert isinstance(response, dict)
        return str(response["result"])

    return rpc("eth_blockNumber"), rpc("eth_getTransactionCount", devnet.client.alpha_address, "latest")


@pytest.mark.parametrize("tool_type", list(ToolType))
async def test_refused_input_sends_no_transaction_on_the_devnet(devnet: Devnet, tool_type: ToolType) -> None:
    cid = devnet.model("risk-classifier").cid
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (features, {"volatility": "high", "expected_return": 0.1}, "Invalid input"),
        (features, {"volatility": 0.5, "expected_return": 0.1, "leverage": 50}, "above the desk's limit"),
        (lambda **_: {"features": [[1.0, 2.0], [3.0]]}, {"volatility": 0.5, "expected_return": 0.1},
         "Invalid input"),
        (lambda **_: {"features": [[1.0, 2.0]]}, {"volatility": 0.5, "expected_return": 0.1},
         "The model refused the input"),  # a shape the model does not take: refused at gas estimation
    ]
    before = _nothing_sent_state(devnet)
    for provider, args, expected in cases:
        tool = create_run_model_tool(tool_type, cid, "risk_regime", provider, inference=devnet.client.alpha,
                                     tool_input_schema=Features)
        text, proof = await _call(tool, tool_type, args)
        assert expected in text and text.lower().endswith("no transaction was sent."), text
        assert proof is None
    assert _nothing_sent_state(devnet) == before
    # and the same tool with good input does send one, whose proof verifies
    tool = create_run_model_tool(tool_type, cid, "risk_regime", features, inference=devnet.client.alpha,
                                 tool_input_schema=Features)
    text, proof = await _call(tool, tool_type, {"volatility": 0.5, "expected_return": 0.1})
    assert text.startswith("label = ") and proof.verify(devnet.client)
    assert int(_nothing_sent_state(devnet)[1], 16) == int(before[1], 16) + 1


# -- configuration --------------------------------------------------------------------------------


def test_the_global_client_is_used_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(og, "global_client", None)
    tool = run_tool(None, ToolType.SWARM)  # creating needs no client
    with pytest.raises(og.ConfigurationError, match="has no client"):
        tool(volatility=0.5, expected_return=0.1)
    alpha = StandInAlpha()
    monkeypatch.setattr(og, "global_client", SimpleNamespace(alpha=alpha))
    assert tool(volatility=0.5, expected_return=0.1).startswith("label = ")
    assert alpha.calls


def test_a_client_may_be_passed_for_its_alpha() -> None:
    alpha = StandInAlpha()
    tool = create_read_workflow_tool(ToolType.SWARM, WORKFLOW, "vol", "ETH volatility.",
                                     alpha=SimpleNamespace(alpha=alpha))
    assert tool() == "Y = 0.0123"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"tool_name": "has spaces"}, "tool_name"),
    ({"tool_name": "x" * 65}, "tool_name"),
    ({"model_cid": ""}, "model_cid"),
    ({"tool_input_schema": dict}, "tool_input_schema"),
    ({"model_input_provider": "not callable"}, "model_input_provider"),
    ({"tool_description": "  "}, "tool_description"),
    ({"inference_mode": "FAST"}, "inference mode"),
    ({"tool_type": "crewai"}, "tool_type"),
])
def test_bad_tool_definitions_fail_at_creation(kwargs: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {"tool_type": ToolType.SWARM, "model_cid": CID, "tool_name": "ok",
                                 "model_input_provider": features, "inference": StandInAlpha()}
    arguments.update(kwargs)
    with pytest.raises(og.InvalidInputError, match=match):
        create_run_model_tool(**arguments)


def test_bad_workflow_tool_definitions_fail_at_creation() -> None:
    with pytest.raises(og.InvalidInputError, match="workflow_contract_address"):
        create_read_workflow_tool(ToolType.SWARM, "0x1234", "vol", "ETH volatility.")
    with pytest.raises(og.ConfigurationError, match="alpha"):
        create_read_workflow_tool(ToolType.SWARM, WORKFLOW, "vol", "ETH volatility.", alpha=object())


# -- formatting -----------------------------------------------------------------------------------


def test_default_formatting_of_tensors() -> None:
    assert format_tensor(np.array([[11.125]])) == "11.125"
    assert format_tensor(np.array([[0.009960343393835908]])) == "0.00996034"
    assert format_tensor(np.array([3], dtype=np.int64)) == "3"
    assert format_tensor(np.array([[0.1, 0.2, 0.7]], dtype=np.float32)) == "[0.1, 0.2, 0.7]"
    assert format_tensor(np.array([[1.0, -2.0], [3.0, 4.0]])) == "[1, -2, 3, 4] (shape 2x2)"
    assert format_tensor(np.arange(40)) == ("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, …] "
                                            "(40 values, shape 40)")
    assert format_tensor(np.array(["hello world", "x"])) == "['hello world', 'x']"
    assert format_tensor(np.array([float("nan")])) == "nan"
    assert format_tensor(np.zeros((0, 3))) == "[] (shape 0x3)"


def test_default_formatting_of_results() -> None:
    result = InferenceResult("0xab", {"probabilities": np.array([[0.25, 0.75]]), "label": np.array(["low"])})
    assert format_inference_result(result) == "label = 'low'; probabilities = [0.25, 0.75]"
    assert to_text(result) == format_inference_result(result)
    output = ModelOutput(numbers={"Y": np.array([[0.0123]])}, strings={"tag": np.array(["eth"])},
                         jsons={"meta": {"b": 2, "a": 1}})
    assert format_model_output(output) == 'Y = 0.0123; tag = \'eth\'; meta = {"a": 1, "b": 2}'
    assert format_model_output(ModelOutput()) == "(no output)"
    assert to_text({"Y": np.array([1.5])}) == "Y = 1.5"
    assert to_text(0.5) == "0.5" and to_text(np.float64(2.0)) == "2" and to_text("as is") == "as is"
    assert to_text([1, "a"]) == '[1, "a"]'


def test_custom_formatters_receive_the_result() -> None:
    seen: list[Any] = []

    def formatter(result: InferenceResult) -> str:
        seen.append(result)
        return f"risk is {result.model_output['label'][0]}"

    tool = run_tool(StandInAlpha(), ToolType.SWARM, model_output_formatter=formatter)
    assert tool(volatility=0.5, expected_return=0.1) == "risk is high"
    assert isinstance(seen[0], InferenceResult) and seen[0].proof is not None


# -- proof logs and saved proofs --------------------------------------------------------------------


def test_a_shared_proof_log() -> None:
    log = ProofLog()
    first = run_tool(StandInAlpha(), ToolType.SWARM, proof_log=log)
    second = create_read_workflow_tool(ToolType.LANGCHAIN, WORKFLOW, "vol", "ETH volatility.", alpha=StandInAlpha(),
                                       proof_log=log)
    first(volatility=0.5, expected_return=0.1)
    second.invoke(tool_call("vol", {}))  # no proof from a stand-in: nothing recorded
    first(volatility=0.6, expected_return=0.1)
    assert first.proofs is log and len(log) == 2 and bool(log)
    assert [r.tool_name for r in log.records] == ["risk_regime", "risk_regime"]
    assert log.for_tool("risk_regime") == list(log) and log.for_tool("vol") == []
    assert log.for_call("nope") is None
    log.clear()
    assert len(log) == 0 and log.latest is None and not log


def test_saved_proofs_come_back_as_their_type() -> None:
    workflow = WorkflowResultProof(kind="onchain", transaction_hash="0x" + "ab" * 32, contract_address=WORKFLOW,
                                   output_hash="0x" + "cd" * 32, evidence="transaction", read_block=7)
    restored = proof_from_dict(json.loads(workflow.to_json()))
    assert isinstance(restored, WorkflowResultProof) and restored == workflow
    plain = og.Proof(kind="onchain", transaction_hash="0x" + "ab" * 32)
    assert type(proof_from_dict(plain.to_dict())) is og.Proof


# -- lazy imports ---------------------------------------------------------------------------------


def test_importing_alphasense_loads_no_agent_framework() -> None:
    script = textwrap.dedent("""
        import sys

        FRAMEWORKS = ("langchain_core", "langgraph", "agents", "openai", "pydantic")

        def loaded():
            return sorted({m.split(".")[0] for m in sys.modules} & set(FRAMEWORKS))

        import opengradient.alphasense as alphasense
        print("import", loaded())

        class Alpha:
            def infer(self, *a): raise AssertionError
            async def ainfer(self, *a): raise AssertionError
        alphasense.create_run_model_tool("swarm", "bafk-model", "t", lambda: {"x": [1.0]}, inference=Alpha())
        print("swarm", loaded())
        alphasense.create_run_model_tool("langchain", "bafk-model", "t", lambda: {"x": [1.0]}, inference=Alpha())
        print("langchain", "langchain_core" in loaded(), "agents" in loaded())
        alphasense.create_run_model_tool("openai_agents", "bafk-model", "t", lambda: {"x": [1.0]}, inference=Alpha())
        print("openai_agents", "agents" in loaded())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["import []", "swarm []", "langchain True False", "openai_agents True"]
