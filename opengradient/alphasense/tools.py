"""`create_run_model_tool` and `create_read_workflow_tool`: on-chain models and workflows as agent tools."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from opengradient.alphasense._core import (
    ReadWorkflowCore,
    RunModelCore,
    _namespace,
    _ToolCore,
    check_callable,
    check_description,
    check_namespace,
    check_schema,
    check_tool_name,
)
from opengradient.alphasense.formatting import format_inference_result
from opengradient.errors import InvalidInputError
from opengradient.types import InferenceMode

if TYPE_CHECKING:
    from pydantic import BaseModel

    from opengradient.alphasense.proofs import ProofLog, WorkflowResultProof
    from opengradient.client.alpha import Alpha
    from opengradient.client.client import Client
    from opengradient.types import ModelOutput


class ToolType(StrEnum):
    """The agent framework a tool is made for."""

    #: A LangChain `StructuredTool` (`response_format="content_and_artifact"`, the artifact is the proof).
    LANGCHAIN = "langchain"
    #: An OpenAI Agents `FunctionTool` (async); proofs in `tool.proofs`.
    OPENAI_AGENTS = "openai_agents"
    #: A plain function for OpenAI Swarm (sync, annotated); proofs in `fn.proofs`.
    SWARM = "swarm"


def parse_tool_type(tool_type: Any) -> ToolType:
    """The enum, its value or its name; anything else is an `InvalidInputError`."""
    if isinstance(tool_type, ToolType):
        return tool_type
    if isinstance(tool_type, str):
        text = tool_type.strip()
        for member in ToolType:
            if text.upper() == member.name or text.lower() == member.value:
                return member
    names = ", ".join(f"ToolType.{m.name}" for m in ToolType)
    raise InvalidInputError(f"unknown tool_type {tool_type!r}", hint=f"use one of {names}")


def _build(tool_type: ToolType, core: _ToolCore) -> Any:
    from opengradient.alphasense import _frameworks

    if tool_type is ToolType.LANGCHAIN:
        return _frameworks.langchain_tool(core)
    if tool_type is ToolType.OPENAI_AGENTS:
        return _frameworks.openai_agents_tool(core)
    return _frameworks.swarm_function(core)


def create_run_model_tool(
    tool_type: ToolType | str,
    model_cid: str,
    tool_name: str,
    model_input_provider: Callable[..., Any],
    model_output_formatter: Callable[[Any], Any] | None = None,
    inference: Any = None,
    tool_input_schema: type[BaseModel] | None = None,
    tool_description: str = "Executes the given ML model",
    inference_mode: InferenceMode | int | str = InferenceMode.VANILLA,
    *,
    proof_log: ProofLog | None = None,
) -> Any:
    """A tool that runs ONNX model `model_cid` on chain (`alpha.infer`) and answers with its output.

    `tool_input_schema` is a pydantic model whose fields are the tool's arguments; the agent's
    arguments are validated against it and passed to `model_input_provider(**arguments)`, which
    returns the model input (tensors by name, as `alpha.infer` takes them). Without a schema the
    tool takes no arguments and the provider is called with none. `model_output_formatter`
    receives the `InferenceResult` and returns the answer (a string, or anything `to_text`
    renders); the default lists the output tensors compactly.

    `inference` is a client's `alpha` namespace (or a client); by default `og.global_client.alpha`
    when the tool runs (`ConfigurationError` if there is none).

    What comes back depends on `tool_type`: a LangChain `StructuredTool` answering
    `(text, Proof)` as content and artifact; an OpenAI Agents `FunctionTool` keeping proofs in
    `tool.proofs`; or a plain function for Swarm, also with `fn.proofs`. Invalid arguments, a
    provider raising `ValueError`/`InvalidInputError`, a tensor the codec rejects, or a model that
    refuses the input make the tool answer a message saying so; nothing is sent in those cases.
    """
    from opengradient.client.alpha import parse_inference_mode, parse_model_cid

    kind = parse_tool_type(tool_type)
    core = RunModelCore(
        name=check_tool_name(tool_name),
        description=check_description(tool_description),
        schema=check_schema(tool_input_schema),
        proof_log=proof_log,
        model_cid=parse_model_cid(model_cid),
        mode=parse_inference_mode(inference_mode),
        provider=check_callable(model_input_provider, "model_input_provider"),
        formatter=check_callable(model_output_formatter or format_inference_result, "model_output_formatter"),
        inference=check_namespace(inference, "infer", "inference"),
    )
    return _build(kind, core)


def _identity(output: Any) -> Any:
    return output


def create_read_workflow_tool(
    tool_type: ToolType | str,
    workflow_contract_address: str,
    tool_name: str,
    tool_description: str,
    alpha: Any = None,
    output_formatter: Callable[[Any], Any] = _identity,
    *,
    proof_log: ProofLog | None = None,
) -> Any:
    """A tool without arguments that reads a workflow's latest result (no transaction).

    `output_formatter` receives the `ModelOutput`; whatever it returns is rendered with `to_text`,
    so the default (the identity) answers the output tensors compactly (`Y = 0.00996034`).
    `alpha` is a client's `alpha` namespace (or a client); by default `og.global_client.alpha`
    when the tool runs.

    The proof is a `WorkflowResultProof` (see `opengradient.alphasense.proofs` for what it
    proves): normally the transaction that produced the result, found through the contract's
    `InferenceResultEmitted` logs. A workflow that has no result yet makes the tool answer so.
    """
    from opengradient.client.workflows import parse_address

    kind = parse_tool_type(tool_type)
    core = ReadWorkflowCore(
        name=check_tool_name(tool_name),
        description=check_description(tool_description),
        proof_log=proof_log,
        address=parse_address(workflow_contract_address, "workflow_contract_address"),
        formatter=check_callable(output_formatter, "output_formatter"),
        alpha=check_namespace(alpha, "read_workflow_result", "alpha"),
    )
    return _build(kind, core)


def read_workflow_result_with_proof(contract_address: str, alpha: Alpha | Client | None = None,
                                    ) -> tuple[ModelOutput, WorkflowResultProof]:
    """A workflow's latest `ModelOutput` and the `WorkflowResultProof` of it (reads only, no transaction).

    `alpha` is a client's `alpha` namespace or a client; by default `og.global_client.alpha`.
    Raises `InferenceError` when the workflow has no result yet.
    """
    from opengradient.alphasense.proofs import read_with_proof_flow
    from opengradient.client.workflows import parse_address

    address = parse_address(contract_address)
    namespace = _namespace(alpha, "read_workflow_result", "alpha", "read_workflow_result_with_proof")
    return namespace._sync.run(read_with_proof_flow(address, namespace.network))


async def aread_workflow_result_with_proof(contract_address: str, alpha: Alpha | Client | None = None,
                                           ) -> tuple[ModelOutput, WorkflowResultProof]:
    """Async twin of `read_workflow_result_with_proof`."""
    from opengradient.alphasense.proofs import read_with_proof_flow
    from opengradient.client.workflows import parse_address

    address = parse_address(contract_address)
    namespace = _namespace(alpha, "aread_workflow_result", "alpha", "aread_workflow_result_with_proof")
    return await namespace._async.run(
        read_with_proof_flow(address, namespace.network))
