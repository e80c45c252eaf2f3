"""An on-chain inference's cost is bounded before and while it runs, and never stalls the chain.

Invariants:
- a model runs outside the chain's lock: while one runs, the chain answers other requests and
  mines other transactions;
- a run lasts at most what the call's gas buys (`GAS_PER_MS` per ms, at most `MAX_RUN_SECONDS`);
  past it the run is stopped and the call reverts with the reason;
- a run holds at most `MAX_MODEL_MEMORY` of onnxruntime memory; a model that asks for more fails
  cleanly with the reason;
- an output is checked against the gas left before it is encoded: a huge output reverts at once
  instead of being ABI-encoded for minutes;
- gas is charged for the run's time, so a slow model is not priced as a fast one.

The attacks reproduced: a model that `Expand`s to 10^8 elements (took the Alpha chain down for
over ten minutes at 7.7 GB), a 118-byte model producing 4000×4000, a `Loop` model holding the
chain for 18 s at constant gas.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from eth_abi import encode
from onnx import TensorProto, helper

import opengradient as og
from opengradient.client.abi import RUN_ARGS, RUN_SELECTOR
from opengradient.client.codec import encode_model_input
from opengradient.devnet.chain.precompiles.inference import GAS_PER_MS, MAX_MODEL_MEMORY, InferencePrecompile
from opengradient.devnet.node import Devnet
from opengradient.networks import INFERENCE_CONTRACT_ADDRESS


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any] | None = None) -> bytes:
    graph = helper.make_graph(nodes, "attack", inputs, outputs, inits or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def expand_model(rows: int, cols: int) -> bytes:
    """x [1,1] broadcast to [rows, cols]: a few bytes of model, as much output as asked."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [rows, cols])
    return _model([helper.make_node("Expand", ["X", "shape"], ["Y"])],
                  [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1])],
                  [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], [shape])


def loop_model(trips: int) -> bytes:
    """Adds 1 to x `trips` times in an ONNX Loop: constant size, unbounded time."""
    one = helper.make_node("Constant", [], ["one"], value=helper.make_tensor("o", TensorProto.FLOAT, [], [1.0]))
    body = helper.make_graph(
        [one, helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [])])
    trips_t = helper.make_tensor("M", TensorProto.INT64, [], [trips])
    cond_t = helper.make_tensor("C", TensorProto.BOOL, [], [True])
    return _model([helper.make_node("Loop", ["M", "C", "X"], ["Y"], body=body)],
                  [helper.make_tensor_value_info("X", TensorProto.FLOAT, [])],
                  [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [])], [trips_t, cond_t])


def _rpc(net: Devnet, method: str, *params: Any) -> dict[str, Any]:
    reply = net.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert isinstance(reply, dict)
    return reply


def _call(net: Devnet, cid: str, model_input: dict[str, Any], gas: int | None = None) -> dict[str, Any]:
    data = RUN_SELECTOR + encode(RUN_ARGS, [cid, 0, encode_model_input(model_input)])
    call: dict[str, Any] = {"to": INFERENCE_CONTRACT_ADDRESS, "data": "0x" + data.hex(),
                            "from": net.accounts[0].address}
    if gas is not None:
        call["gas"] = hex(gas)
    return _rpc(net, "eth_call", call, "latest")


def _revert_reason(reply: dict[str, Any]) -> str:
    assert "error" in reply, reply
    return str(reply["error"]["message"])


def test_a_model_expanding_to_1e8_values_fails_on_memory_not_the_chain(devnet: Devnet) -> None:
    cid = devnet.hub.publish("attack-expand-1e8", expand_model(100_000, 1_000))
    reason = _revert_reason(_call(devnet, cid, {"X": [[1.0]]}))
    assert "needs more memory than the devnet allows" in reason
    assert f"{MAX_MODEL_MEMORY // 2**20} MiB" in reason
    assert int(_rpc(devnet, "eth_blockNumber")["result"], 16) > 0  # still answering


def test_a_4000_by_4000_output_is_refused_before_it_is_encoded(devnet: Devnet) -> None:
    cid = devnet.hub.publish("attack-expand-4000", expand_model(4_000, 4_000))
    reason = _revert_reason(_call(devnet, cid, {"X": [[1.0]]}))
    assert "out of gas" in reason and "16000000 values" in reason
    # the SDK refuses it before sending anything, with the chain's reason
    with pytest.raises(og.ContractRevertError, match="out of gas"):
        devnet.client.alpha.infer(cid, og.InferenceMode.VANILLA, {"X": [[1.0]]})


def test_a_looping_model_is_stopped_at_the_time_its_gas_buys(devnet: Devnet) -> None:
    cid = devnet.hub.publish("attack-loop", loop_model(10**12))
    gas = 1_000_000
    reason = _revert_reason(_call(devnet, cid, {"X": 0.0}, gas=gas))
    assert "ran out of its time budget" in reason
    budget_ms = int(reason.split("time budget of ")[1].split(" ms")[0])
    assert budget_ms <= gas // GAS_PER_MS  # bounded by the gas, not by the model


def test_run_time_is_charged_as_gas(devnet: Devnet) -> None:
    cid = devnet.hub.publish("loop-short", loop_model(200_000))
    small = devnet.model("price-regression")
    data = {"to": INFERENCE_CONTRACT_ADDRESS, "from": devnet.accounts[0].address}

    def estimate(model_cid: str, model_input: dict[str, Any]) -> int:
        calldata = RUN_SELECTOR + encode(RUN_ARGS, [model_cid, 0, encode_model_input(model_input)])
        reply = _rpc(devnet, "eth_estimateGas", {**data, "data": "0x" + calldata.hex()})
        return int(reply["result"], 16)

    slow, fast = estimate(cid, {"X": 0.0}), estimate(small.cid, small.example_input)
    assert fast >= GAS_PER_MS  # even a fast run pays for one millisecond
    assert slow > fast + GAS_PER_MS  # 200,000 loop steps take more than a millisecond more
    result = devnet.client.alpha.infer(cid, og.InferenceMode.VANILLA, {"X": 0.0})
    assert float(np.asarray(result.model_output["Y"])) == 200_000.0


def test_the_chain_keeps_serving_while_a_model_runs(devnet: Devnet, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = devnet.hub.publish("held-model", expand_model(2, 2))
    entered, release = threading.Event(), threading.Event()
    original: Callable[..., Any] = InferencePrecompile._execute

    def held(model_cid: str, session: Any, feeds: Any, budget: float = 2.0) -> Any:
        if model_cid == cid:
            entered.set()
            assert release.wait(60)
        return original(model_cid, session, feeds, budget)

    monkeypatch.setattr(InferencePrecompile, "_execute", staticmethod(held))
    outcome: list[dict[str, Any]] = []
    runner = threading.Thread(target=lambda: outcome.append(_call(devnet, cid, {"X": [[2.0]]})))
    runner.start()
    try:
        assert entered.wait(60)
        # while the model runs: reads are answered and another transaction is mined
        before = int(_rpc(devnet, "eth_blockNumber")["result"], 16)
        devnet.client.alpha.infer(devnet.model("price-regression").cid, og.InferenceMode.VANILLA,
                                  devnet.model("price-regression").example_input)
        assert int(_rpc(devnet, "eth_blockNumber")["result"], 16) > before
    finally:
        release.set()
        runner.join(60)
    assert outcome and "result" in outcome[0], outcome
