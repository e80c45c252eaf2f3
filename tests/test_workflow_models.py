"""`opengradient.workflow_models` and the workflow ABI the client ships (no devnet needed).

The readers are exercised against a stub `alpha` namespace here; tests/devnet/test_workflows.py
runs them against the devnet's real workflow contracts.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_utils import is_checksum_address, keccak

import opengradient as og
from opengradient.client import workflows as wf
from opengradient.client.codec import MODEL_OUTPUT
from opengradient.networks import PUBLIC
from opengradient.types import ModelOutput
from opengradient.workflow_models import (
    WORKFLOW_MODELS,
    WorkflowModelOutput,
    format_percentage,
    read_eth_usdt_one_hour_volatility_forecast,
    read_workflow_scalar,
    workflow_model,
)

REPO = Path(__file__).resolve().parent.parent

#: The public hard-coded workflow models: reader, contract, output tensor.
PROTOCOL_TABLE = [
    ("read_eth_usdt_one_hour_volatility_forecast", "0xD5629A5b95dde11e4B5772B5Ad8a13B933e33845", "Y"),
    ("read_btc_1_hour_price_forecast", "0xb4146E095c2CD2a7aA497EdfB513F1cB868Dcc3D", "regression_output"),
    ("read_eth_1_hour_price_forecast", "0x58826c6dc9A608238d9d57a65bDd50EcaE27FE99", "regression_output"),
    ("read_sol_1_hour_price_forecast", "0xaE12EC7314e91A612CF4Fa4DC07dC02cfCc4dF95", "regression_output"),
    ("read_sui_1_hour_price_forecast", "0x90FE6434C46838c96E9ACb8d394C0fdfe38C6182", "regression_output"),
    ("read_sui_usdt_30_min_price_forecast", "0xD85BA71f5701dc4C5BDf9780189Db49C6F3708D2",
     "destandardized_prediction"),
    ("read_sui_usdt_6_hour_price_forecast", "0x3C2E4DbD653Bd30F1333d456480c1b7aB122e946",
     "destandardized_prediction"),
]


class StubAlpha:
    """Stands in for `client.alpha`: serves one canned output and records what was read."""

    def __init__(self, output: ModelOutput | Exception) -> None:
        self.output = output
        self.network = PUBLIC
        self.reads: list[str] = []

    def read_workflow_result(self, contract_address: str) -> ModelOutput:
        self.reads.append(contract_address)
        if isinstance(self.output, Exception):
            raise self.output
        return self.output

    async def aread_workflow_result(self, contract_address: str) -> ModelOutput:
        return self.read_workflow_result(contract_address)


def _output(name: str, value: Any) -> ModelOutput:
    return ModelOutput(numbers={name: np.array(value, dtype=np.float64)})


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (0.0123, "1.2300000000%"),
    (-0.0123, "-1.2300000000%"),
    (0.012345678901234, "1.2345678901%"),
    (1e-05, "0.0010000000%"),
    (0.0, "0.0000000000%"),
    (0, "0.0000000000%"),
    (1, "100.0000000000%"),
    (Decimal("0.00000000001"), "0.0000000010%"),
    (np.float64(0.1), "10.0000000000%"),
    (0.1 + 0.2, "30.0000000000%"),
])
def test_format_percentage(value: Any, text: str) -> None:
    assert format_percentage(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "abc", None])
def test_format_percentage_refuses_non_numbers(value: Any) -> None:
    with pytest.raises(og.InferenceError):
        format_percentage(value)


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------


def test_the_seven_readers_match_the_protocol_table() -> None:
    import opengradient.workflow_models as wm

    assert [(f"read_{m.name}", m.contract_address, m.output_tensor) for m in WORKFLOW_MODELS] == PROTOCOL_TABLE
    for model in WORKFLOW_MODELS:
        assert is_checksum_address(model.contract_address)
        assert getattr(wm, f"read_{model.name}") is model.reader
        assert getattr(wm, f"aread_{model.name}") is model.async_reader
        assert model.reader.__name__ == f"read_{model.name}"
        assert model.description and model.reader.__doc__
        assert workflow_model(model.name) is model is workflow_model(f"read_{model.name}")
    with pytest.raises(KeyError, match="known"):
        workflow_model("doge_forecast")


@pytest.mark.parametrize(("name", "address", "tensor"), PROTOCOL_TABLE)
def test_each_reader_formats_its_tensor_and_links_the_contract(name: str, address: str, tensor: str) -> None:
    alpha = StubAlpha(_output(tensor, [[0.0123]]))
    result = workflow_model(name).reader(alpha)
    assert result == WorkflowModelOutput("1.2300000000%", f"{PUBLIC.explorer_url}/address/{address}")
    assert alpha.reads == [address]


async def test_async_readers() -> None:
    for model in WORKFLOW_MODELS:
        alpha = StubAlpha(_output(model.output_tensor, -0.004))
        assert (await model.async_reader(alpha)).result == "-0.4000000000%"
        assert (await model.aread(alpha)) == model.read(alpha)


def test_readers_take_a_client_or_the_global_client(monkeypatch: pytest.MonkeyPatch) -> None:
    alpha = StubAlpha(_output("Y", 0.02))

    class StubClient:
        def __init__(self) -> None:
            self.alpha = alpha

    assert read_eth_usdt_one_hour_volatility_forecast(StubClient()).result == "2.0000000000%"
    monkeypatch.setattr(og, "global_client", StubClient())
    assert read_eth_usdt_one_hour_volatility_forecast().result == "2.0000000000%"
    assert len(alpha.reads) == 2


def test_without_a_client_the_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(og, "global_client", None)
    with pytest.raises(og.ConfigurationError, match="og.init"):
        read_eth_usdt_one_hour_volatility_forecast()
    with pytest.raises(og.ConfigurationError, match="alpha"):
        read_eth_usdt_one_hour_volatility_forecast(object())


def test_empty_or_unexpected_results_are_inference_errors() -> None:
    address = WORKFLOW_MODELS[0].contract_address
    with pytest.raises(og.InferenceError, match="no output tensor 'Y'"):
        read_workflow_scalar(address, "Y", StubAlpha(ModelOutput()))
    with pytest.raises(og.InferenceError, match="no output tensor 'Y'.*regression_output"):
        read_workflow_scalar(address, "Y", StubAlpha(_output("regression_output", 0.1)))
    with pytest.raises(og.InferenceError, match="2 values"):
        read_workflow_scalar(address, "Y", StubAlpha(_output("Y", [0.1, 0.2])))
    with pytest.raises(og.InferenceError, match="not a finite number"):
        read_workflow_scalar(address, "Y", StubAlpha(_output("Y", float("nan"))))
    no_result = og.InferenceError("workflow has no result yet")
    with pytest.raises(og.InferenceError, match="no result yet"):
        read_workflow_scalar(address, "Y", StubAlpha(no_result))


@pytest.mark.parametrize(("address", "tensor"), [
    ("", "Y"), ("0x12", "Y"), (None, "Y"), ("0xd5629a5b95dde11e4b5772b5ad8a13b933e33845", ""),
    ("0xd5629a5b95dde11e4b5772b5ad8a13b933e33845", None),
    ("0xD5629A5b95dde11e4B5772B5Ad8a13B933e33846", "Y"),  # bad checksum
])
def test_bad_input_is_refused_before_any_request(address: Any, tensor: Any) -> None:
    alpha = StubAlpha(_output("Y", 0.01))
    with pytest.raises(og.InvalidInputError):
        read_workflow_scalar(address, tensor, alpha)
    assert alpha.reads == []


# ---------------------------------------------------------------------------------------------
# The workflow ABI the client ships
# ---------------------------------------------------------------------------------------------


def _abi() -> list[dict[str, Any]]:
    artifact = json.loads((wf.ARTIFACTS_DIR / "PriceHistoryInference.json").read_text())
    abi: list[dict[str, Any]] = artifact["abi"]
    return abi


def _type(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in param["components"]) + ")" + kind[len("tuple"):]
    return kind


def _entry(kind: str, name: str | None = None) -> dict[str, Any]:
    [entry] = [e for e in _abi() if e["type"] == kind and e.get("name") == name]
    return entry


def test_the_client_artifact_is_the_compiled_contract() -> None:
    devnet = REPO / "opengradient" / "devnet" / "chain" / "contracts" / "artifacts" / "PriceHistoryInference.json"
    assert (wf.ARTIFACTS_DIR / "PriceHistoryInference.json").read_text() == devnet.read_text()
    artifact = json.loads(devnet.read_text())
    assert wf.creation_code() == bytes.fromhex(artifact["bytecode"][2:]) != bytes.fromhex(
        artifact["deployedBytecode"][2:])


def test_the_abi_is_protocol_section_5() -> None:
    constructor = _entry("constructor")
    assert [_type(p) for p in constructor["inputs"]] == wf.CONSTRUCTOR_ARGS
    assert [p["name"] for p in constructor["inputs"]] == ["modelId_", "inputName_", "query_"]
    assert [c["name"] for c in constructor["inputs"][2]["components"]] == [
        "base", "quote", "total_candles", "candle_duration_in_mins", "order", "candle_types"]
    functions = {e["name"]: e for e in _abi() if e["type"] == "function"}
    assert {"run", "getInferenceResult", "getLastInferenceResults", "inputQuery", "modelId", "inputName",
            "historicalContract"} <= set(functions)
    assert [_type(p) for p in functions["getInferenceResult"]["outputs"]] == [MODEL_OUTPUT]
    assert [_type(p) for p in functions["getLastInferenceResults"]["outputs"]] == [f"{MODEL_OUTPUT}[]"]
    # The public contract's getter: the query without candle_types (a public struct getter).
    assert [(p["name"], _type(p)) for p in functions["inputQuery"]["outputs"]] == [
        ("base", "string"), ("quote", "string"), ("total_candles", "uint32"),
        ("candle_duration_in_mins", "uint32"), ("order", "uint8")]
    assert [_type(p) for p in functions["candleTypes"]["outputs"]] == ["uint8[]"]
    assert [_type(p) for p in functions["historicalContract"]["outputs"]] == ["address"]
    assert functions["run"]["outputs"] == []
    event = _entry("event", "InferenceResultEmitted")
    assert [(p["name"], p["indexed"], _type(p)) for p in event["inputs"]] == [
        ("caller", True, "address"), ("result", False, MODEL_OUTPUT)]


@pytest.mark.parametrize(("constant", "signature"), [
    (wf.RUN_SELECTOR, "run()"),
    (wf.GET_INFERENCE_RESULT_SELECTOR, "getInferenceResult()"),
    (wf.GET_LAST_INFERENCE_RESULTS_SELECTOR, "getLastInferenceResults(uint256)"),
    (wf.REGISTER_TASK_SELECTOR, "registerTask(address,uint256,uint256)"),
])
def test_selectors(constant: bytes, signature: str) -> None:
    assert keccak(text=signature)[:4] == constant


def test_topics() -> None:
    event = _entry("event", "InferenceResultEmitted")
    signature = f"InferenceResultEmitted({','.join(_type(p) for p in event['inputs'])})"
    assert "0x" + keccak(text=signature).hex() == wf.INFERENCE_RESULT_EMITTED_TOPIC
    assert "0x" + keccak(text="TaskRegistered(uint256,address,address,uint256,uint256)").hex() == \
        wf.TASK_REGISTERED_TOPIC


def test_model_output_from_abi_splits_numbers_strings_and_jsons() -> None:
    output = wf.model_output_from_abi((
        [("Y", [(15, 3)], [1, 1])],
        [("labels", ["a", "b", "c", "d"])],
        [("labels.shape", "[2,2]"), ("meta", '{"ok": true}'), ("raw", "not json")],
        True,
    ))
    assert output.numbers["Y"].tolist() == [[0.015]]
    assert output.strings["labels"].tolist() == [["a", "b"], ["c", "d"]]
    assert output.jsons == {"meta": {"ok": True}, "raw": "not json"}
    assert output.is_simulation_result is True
    assert wf.is_empty(wf.model_output_from_abi(([], [], [], False)))


def test_query_and_schedule_validation() -> None:
    query = wf.parse_query({"base": "ETH", "quote": "USDT", "total_candles": 10, "candle_duration_in_mins": 60,
                            "order": "descending", "candle_types": ["close", 0]})
    assert query.to_abi() == ("ETH", "USDT", 10, 60, 1, [3, 0])
    assert wf.parse_scheduler_params(None) is None
    assert wf.parse_scheduler_params({"frequency": 60, "duration_hours": 2}) == og.SchedulerParams(60, 2)
    for bad in (og.SchedulerParams(0, 1), og.SchedulerParams(60, 0), og.SchedulerParams(60, 10**6), "hourly"):
        with pytest.raises(og.InvalidInputError):
            wf.parse_scheduler_params(bad)
    with pytest.raises(og.InvalidInputError, match="order"):
        wf.parse_query(og.HistoricalInputQuery("ETH", "USDT", 10, 60, 7, [og.CandleType.CLOSE]))  # type: ignore[arg-type]
    with pytest.raises(og.InvalidInputError, match="candle_types"):
        wf.parse_query(og.HistoricalInputQuery("ETH", "USDT", 10, 60, og.CandleOrder.ASCENDING, "close"))  # type: ignore[arg-type]
    with pytest.raises(og.InvalidInputError, match="total_candles"):
        wf.parse_query(og.HistoricalInputQuery("ETH", "USDT", True, 60, og.CandleOrder.ASCENDING,
                                               [og.CandleType.CLOSE]))


def test_prepare_workflow_encodes_the_constructor() -> None:
    from eth_abi import decode

    query = og.HistoricalInputQuery("SUI", "USDT", 8, 360, og.CandleOrder.ASCENDING, [og.CandleType.OPEN])
    prepared = wf.prepare_workflow(" QmModel ", query, " price_data ", og.SchedulerParams(3600, 24))
    code = wf.creation_code()
    assert prepared.calldata.startswith(code)
    assert decode(wf.CONSTRUCTOR_ARGS, prepared.calldata[len(code):]) == (
        "QmModel", "price_data", ("SUI", "USDT", 8, 360, 0, (2,)))
    assert prepared.schedule == og.SchedulerParams(3600, 24)
