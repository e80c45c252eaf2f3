"""AlphaSense: on-chain models and workflows as agent tools whose every answer carries a proof.

Two factories, three frameworks::

    import opengradient as og
    from opengradient.alphasense import ToolType, create_read_workflow_tool, create_run_model_tool

    client = og.init(private_key=...)
    volatility = create_read_workflow_tool(
        ToolType.LANGCHAIN, "0xD5629A5b95dde11e4B5772B5Ad8a13B933e33845", "eth_usdt_volatility_1h",
        "Forecast of ETH/USDT volatility over the next hour.")

    class Features(BaseModel):
        volatility: float
        expected_return: float

    risk = create_run_model_tool(
        ToolType.OPENAI_AGENTS, model_cid, "risk_regime",
        model_input_provider=lambda volatility, expected_return: {"features": [[volatility, expected_return, 1.0]]},
        tool_input_schema=Features, tool_description="Classifies the market's risk regime.")

* `ToolType.LANGCHAIN` gives a `StructuredTool` with `response_format="content_and_artifact"`:
  called with a tool call (as `ToolNode` and agents do) it answers a `ToolMessage` whose
  `artifact` is the `Proof`.
* `ToolType.OPENAI_AGENTS` gives an `agents.FunctionTool` (async). The Runner only keeps the
  text, so proofs are kept in `tool.proofs`, a `ProofLog`: `tool.proofs.for_call(call_id)` is the
  proof of the `ToolCallOutputItem` with that call id; iterate it for all. (`proofs_of(tool)`
  returns the same log, typed.)
* `ToolType.SWARM` gives a plain sync function with the tool's name, docstring and annotated
  parameters, as Swarm reads them; proofs in `fn.proofs`.

Pass `proof_log=ProofLog()` to several tools to collect their proofs in one place (every tool
type records there). Run-model tools use `alpha.ainfer` when the framework calls them
asynchronously. Input the tool refuses — arguments that fail the schema, a provider raising
`ValueError`/`InvalidInputError`, a tensor the codec rejects, a model that refuses the input at
gas estimation — comes back to the agent as a message ending "no transaction was sent", and
nothing is sent. A missing client is a `ConfigurationError`.

What each proof proves: a run-model tool's proof is the on-chain inference's own `Proof`; a
workflow-read tool's is a `WorkflowResultProof`, described in `opengradient.alphasense.proofs`.

Importing this package loads neither LangChain nor OpenAI Agents; each is imported when the
first tool of its type is created.
"""

from __future__ import annotations

from opengradient.alphasense.formatting import (
    format_inference_result,
    format_model_output,
    format_tensor,
    format_tensors,
    to_text,
)
from opengradient.alphasense.proofs import ProofLog, ToolProof, WorkflowResultProof, proof_from_dict, proofs_of
from opengradient.alphasense.tools import (
    ToolType,
    aread_workflow_result_with_proof,
    create_read_workflow_tool,
    create_run_model_tool,
    parse_tool_type,
    read_workflow_result_with_proof,
)

__all__ = [
    "ProofLog",
    "ToolProof",
    "ToolType",
    "WorkflowResultProof",
    "create_read_workflow_tool",
    "create_run_model_tool",
    "format_inference_result",
    "format_model_output",
    "format_tensor",
    "format_tensors",
    "aread_workflow_result_with_proof",
    "parse_tool_type",
    "proof_from_dict",
    "proofs_of",
    "read_workflow_result_with_proof",
    "to_text",
]

