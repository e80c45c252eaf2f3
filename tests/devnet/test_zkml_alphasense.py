"""An AlphaSense tool in ZKML mode hands the agent a zero-knowledge proof that verifies."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from pydantic import BaseModel

import opengradient as og
from opengradient.alphasense import ToolType, create_run_model_tool
from opengradient.devnet.node import Devnet

pytest.importorskip("ezkl", reason="ZKML needs the zkml extra: pip install 'opengradient[zkml]'")


class PriceFeatures(BaseModel):
    a: float
    b: float
    c: float
    d: float


def _features(a: float, b: float, c: float, d: float) -> dict[str, Any]:
    return {"X": [[a, b, c, d]]}


def test_zkml_tool_artifact_is_a_verifying_zero_knowledge_proof(devnet: Devnet) -> None:
    client = devnet.new_client()
    tool = create_run_model_tool(ToolType.LANGCHAIN, devnet.model("price-regression").cid, "price_model",
                                 _features, inference=client.alpha, tool_input_schema=PriceFeatures,
                                 inference_mode=og.InferenceMode.ZKML)
    # exactly what a LangGraph ToolNode does with the agent's tool call
    message = tool.invoke({"type": "tool_call", "id": "call_zk", "name": "price_model",
                           "args": {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}})
    assert isinstance(message, ToolMessage) and message.status == "success"
    proof = message.artifact
    assert isinstance(proof, og.Proof) and proof.kind == "zkml" and proof.inference_mode == "ZKML"
    assert proof.verify(client)
    with pytest.raises(og.VerificationError):
        dataclasses.replace(proof, output_hash="0x" + "00" * 32).verify(client)
