"""Workflows: `PriceHistoryInference` contracts that feed an ONNX model the latest price candles.

A workflow is deployed from the compiled contract shipped in `opengradient/client/artifacts/`
(the client never imports the devnet), optionally registered with the chain's scheduler, run by
anyone with `run()`, and read with views. This module holds the validation, the ABI constants and
the flows; `Alpha` exposes them as sync methods with `a`-prefixed async twins.

Input is validated before anything touches the network, and every transaction is estimated
first, so a bad model, input name or query fails with the chain's revert reason and nothing is
sent (the devnet's workflow contract runs its model once while it is set up).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from opengradient import bounded_json
from opengradient.client.chain import Flow, Rpc, SendTx, wait_for_receipt
from opengradient.client.codec import MODEL_OUTPUT, decode_model_output
from opengradient.client.rpc import revert_error
from opengradient.errors import (
    ContractRevertError,
    InferenceError,
    InvalidInputError,
    OpenGradientError,
    WorkflowSchedulingError,
)
from opengradient.types import CandleOrder, CandleType, HistoricalInputQuery, ModelOutput, SchedulerParams

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"

#: `(string base, string quote, uint32 total_candles, uint32 candle_duration_in_mins, uint8 order,
#: uint8[] candle_types)`
HISTORICAL_INPUT_QUERY = "(string,string,uint32,uint32,uint8,uint8[])"
CONSTRUCTOR_ARGS = ["string", "string", HISTORICAL_INPUT_QUERY]

# Selectors and topics are written out (a test recomputes each from its signature).
RUN_SELECTOR = bytes.fromhex("c0406226")  # run()
GET_INFERENCE_RESULT_SELECTOR = bytes.fromhex("1b9fc701")  # getInferenceResult()
GET_LAST_INFERENCE_RESULTS_SELECTOR = bytes.fromhex("9e30396c")  # getLastInferenceResults(uint256)
REGISTER_TASK_SELECTOR = bytes.fromhex("31a7e88c")  # registerTask(address,uint256,uint256)
#: InferenceResultEmitted(address indexed caller, ModelOutput result)
INFERENCE_RESULT_EMITTED_TOPIC = "0x5a1ed425a160d1bc929890b991acc0e3d25a6f5db1ac65c07ee4c917708f76d4"
#: TaskRegistered(uint256 indexed taskId, address indexed contractAddress, address indexed owner,
#: uint256 endTime, uint256 frequency), emitted by the scheduler.
TASK_REGISTERED_TOPIC = "0xa8afeaa365d39228d5cdd4cd8bb31c7c9aa5b5afcec74a805c8ca0cc35093dfa"

_UINT32_MAX = 2**32 - 1
_MAX_NAME_LENGTH = 256
_MAX_HISTORY = 1_000
_MAX_SCHEDULE_SECONDS = 10 * 365 * 24 * 3600
_GAS_MARGIN = 10  # send with the estimate plus 1/10


@cache
def creation_code() -> bytes:
    """Creation bytecode of `PriceHistoryInference` from the shipped artifact."""
    artifact = json.loads((ARTIFACTS_DIR / "PriceHistoryInference.json").read_text(encoding="utf-8"))
    return bytes.fromhex(str(artifact["bytecode"]).removeprefix("0x"))


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def parse_address(address: Any, what: str = "contract_address") -> str:
    """A 20-byte hex address, checksummed; a mixed-case address must have a valid checksum."""
    from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

    if not isinstance(address, str) or not is_hex_address(address.strip()):
        raise InvalidInputError(f"{what} must be a 0x-prefixed 20-byte hex address, got {address!r}")
    text = address.strip()
    body = text[2:] if text[:2].lower() == "0x" else text
    if body != body.lower() and body != body.upper() and not is_checksum_address(text):
        raise InvalidInputError(f"{what} {text} has an invalid checksum",
                                hint="copy the address again, or pass it in lower case")
    return str(to_checksum_address(text))


def _name(value: Any, what: str, hint: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty string, got {value!r}", hint=hint)
    text = value.strip()
    if len(text) > _MAX_NAME_LENGTH:
        raise InvalidInputError(f"{what} is {len(text)} characters long; at most {_MAX_NAME_LENGTH}")
    return text


def _count(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidInputError(f"{what} must be between {low} and {high}, got {value}")
    return value


def _enum(value: Any, enum: type[CandleOrder] | type[CandleType], what: str) -> int:
    if isinstance(value, enum):
        return int(value)
    if isinstance(value, str) and value.strip().upper() in enum.__members__:
        return int(enum[value.strip().upper()])
    if isinstance(value, int) and not isinstance(value, bool) and value in {m.value for m in enum}:
        return int(value)
    names = ", ".join(f"{m.name} {m.value}" for m in enum)
    raise InvalidInputError(f"unknown {what} {value!r}", hint=f"use og.{enum.__name__}: {names}")


def parse_query(query: Any) -> HistoricalInputQuery:
    """A validated `HistoricalInputQuery` (dicts with the same fields are accepted)."""
    if isinstance(query, dict):
        fields = ("base", "quote", "total_candles", "candle_duration_in_mins", "order", "candle_types")
        unknown = sorted(set(query) - set(fields))
        missing = [f for f in fields if f not in query]
        if unknown or missing:
            raise InvalidInputError(f"input_query has {'unknown fields ' + str(unknown) if unknown else ''}"
                                    f"{'; ' if unknown and missing else ''}"
                                    f"{'missing fields ' + str(missing) if missing else ''}",
                                    hint=f"give exactly {', '.join(fields)}")
        query = HistoricalInputQuery(**query)
    if not isinstance(query, HistoricalInputQuery):
        raise InvalidInputError(f"input_query must be an og.HistoricalInputQuery, got {type(query).__name__}")
    base = _name(query.base, "input_query.base", 'a symbol such as "ETH"')
    quote = _name(query.quote, "input_query.quote", 'a symbol such as "USDT"')
    total = _count(query.total_candles, "input_query.total_candles", 1, _UINT32_MAX)
    duration = _count(query.candle_duration_in_mins, "input_query.candle_duration_in_mins", 1, _UINT32_MAX)
    order = _enum(query.order, CandleOrder, "candle order")
    if isinstance(query.candle_types, (str, bytes)) or not hasattr(query.candle_types, "__iter__"):
        raise InvalidInputError("input_query.candle_types must be a list of og.CandleType")
    types = [_enum(t, CandleType, "candle type") for t in query.candle_types]
    if not types:
        raise InvalidInputError("input_query.candle_types is empty", hint="for example [og.CandleType.CLOSE]")
    if total * len(types) > _UINT32_MAX:
        raise InvalidInputError("input_query asks for more values than a tensor can hold")
    return HistoricalInputQuery(base, quote, total, duration, CandleOrder(order), [CandleType(t) for t in types])


def parse_scheduler_params(params: Any) -> SchedulerParams | None:
    """A validated `SchedulerParams`, None, or a `{"frequency", "duration_hours"}` dict."""
    if params is None:
        return None
    if isinstance(params, dict):
        params = SchedulerParams.from_dict(params)
    if not isinstance(params, SchedulerParams):
        raise InvalidInputError(f"scheduler_params must be an og.SchedulerParams, got {type(params).__name__}")
    _count(params.frequency, "scheduler_params.frequency (seconds)", 1, _MAX_SCHEDULE_SECONDS)
    hours = params.duration_hours
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not math.isfinite(hours) or hours <= 0:
        raise InvalidInputError(f"scheduler_params.duration_hours must be a positive number, got {hours!r}")
    if hours * 3600 > _MAX_SCHEDULE_SECONDS:
        raise InvalidInputError(f"scheduler_params.duration_hours {hours} is longer than ten years")
    return params


def parse_num_results(num_results: Any) -> int:
    """How many past results to read: 1 … 1000."""
    return _count(num_results, "num_results", 1, _MAX_HISTORY)


@dataclass(frozen=True)
class PreparedWorkflow:
    """A validated, encoded deployment: everything needed before touching the chain."""

    model_cid: str
    input_name: str
    query: HistoricalInputQuery
    schedule: SchedulerParams | None
    calldata: bytes


def prepare_workflow(model_cid: Any, input_query: Any, input_tensor_name: Any,
                     scheduler_params: Any = None) -> PreparedWorkflow:
    """Validate and encode a deployment; raises `InvalidInputError` before any network I/O."""
    from eth_abi import encode

    from opengradient.client.alpha import parse_model_cid

    cid = parse_model_cid(model_cid)
    query = parse_query(input_query)
    name = _name(input_tensor_name, "input_tensor_name", "the name of the model's input tensor")
    schedule = parse_scheduler_params(scheduler_params)
    calldata = creation_code() + encode(CONSTRUCTOR_ARGS, [cid, name, query.to_abi()])
    return PreparedWorkflow(cid, name, query, schedule, calldata)


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def model_output_from_abi(output: Any) -> ModelOutput:
    """Split a decoded `ModelOutput` tuple into the typed `ModelOutput` (numbers, strings, jsons)."""
    numbers, strings, jsons, simulated = output
    decoded = decode_model_output(output)
    number_names = {str(t[0]) for t in numbers}
    string_names = {str(t[0]) for t in strings}
    json_values: dict[str, Any] = {}
    for name, text in jsons:
        if name in decoded and name not in number_names and name not in string_names \
                and name not in json_values:
            try:
                json_values[name] = bounded_json.loads(text)
            except ValueError:
                json_values[name] = text
    return ModelOutput(
        numbers={n: v for n, v in decoded.items() if n in number_names},
        strings={n: v for n, v in decoded.items() if n in string_names and n not in number_names},
        jsons=json_values,
        is_simulation_result=bool(simulated),
    )


def is_empty(output: ModelOutput) -> bool:
    """True for an output with no tensors at all (a workflow that has not run yet)."""
    return not output.numbers and not output.strings and not output.jsons


def _hex(data: str) -> bytes:
    return bytes.fromhex(data[2:] if data.startswith("0x") else data)


# ---------------------------------------------------------------------------------------------
# Flows
# ---------------------------------------------------------------------------------------------


def _failed_transaction(call: dict[str, Any], receipt: dict[str, Any], tx_hash: str) -> Flow[ContractRevertError]:
    """Replay a reverted transaction as a call on its block to recover the reason."""
    try:
        yield Rpc("eth_call", (call, receipt.get("blockNumber", "latest")))
    except ContractRevertError as exc:
        return revert_error(str(exc.reason), exc.data, transaction_hash=tx_hash)
    return revert_error("execution reverted", None, transaction_hash=tx_hash)


def transact(sender: str, to: str | None, data: bytes) -> Flow[dict[str, Any]]:
    """Estimate (a revert raises before anything is sent), send, wait; the successful receipt."""
    call: dict[str, Any] = {"from": sender, "data": "0x" + data.hex()}
    if to is not None:
        call["to"] = to
    gas = int((yield Rpc("eth_estimateGas", (call,))), 16)
    tx_hash = yield SendTx(to, data, gas + gas // _GAS_MARGIN)
    receipt = yield from wait_for_receipt(tx_hash)
    if int(str(receipt.get("status", "0x1")), 16) == 0:
        raise (yield from _failed_transaction(call, receipt, tx_hash))
    return receipt


def deploy_flow(sender: str, scheduler: str, prepared: PreparedWorkflow) -> Flow[str]:
    """Deploy the workflow and, with a schedule, register it; returns the contract address."""
    from eth_utils import to_checksum_address

    receipt = yield from transact(sender, None, prepared.calldata)
    address = receipt.get("contractAddress")
    if not address:
        raise InferenceError(f"deployment {receipt.get('transactionHash')} created no contract")
    address = str(to_checksum_address(address))
    if prepared.schedule is not None:
        yield from schedule_flow(sender, scheduler, address, prepared.schedule)
    return address


def schedule_flow(sender: str, scheduler: str, address: str, params: SchedulerParams) -> Flow[str]:
    """`registerTask(address, endTime, frequency)`; any failure raises `WorkflowSchedulingError`."""
    from eth_abi import encode

    data = REGISTER_TASK_SELECTOR + encode(["address", "uint256", "uint256"],
                                           [address, int(time.time() + params.duration_hours * 3600),
                                            params.frequency])
    try:
        receipt = yield from transact(sender, scheduler, data)
    except ContractRevertError as exc:
        raise WorkflowSchedulingError(exc.reason, contract_address=address,
                                      transaction_hash=exc.transaction_hash) from exc
    except OpenGradientError as exc:
        raise WorkflowSchedulingError(exc.message, contract_address=address) from exc
    return str(receipt["transactionHash"])


def run_flow(sender: str, address: str) -> Flow[ModelOutput]:
    """Send `run()` and return the output from its `InferenceResultEmitted` event."""
    from eth_abi import decode

    receipt = yield from transact(sender, address, RUN_SELECTOR)
    for log in receipt.get("logs") or []:
        topics = log.get("topics") or []
        if (topics and str(topics[0]).lower() == INFERENCE_RESULT_EMITTED_TOPIC
                and str(log.get("address", "")).lower() == address.lower()):
            (output,) = decode([MODEL_OUTPUT], _hex(log["data"]))
            return model_output_from_abi(output)
    raise InferenceError(f"transaction {receipt.get('transactionHash')} emitted no InferenceResultEmitted",
                         hint=f"check that {address} is a PriceHistoryInference workflow")


def _view(address: str, data: bytes) -> Flow[bytes]:
    raw = yield Rpc("eth_call", ({"to": address, "data": "0x" + data.hex()}, "latest"))
    result = _hex(str(raw))
    if not result:
        code = yield Rpc("eth_getCode", (address, "latest"))
        if code in (None, "0x", "0x0", ""):
            raise InferenceError(f"there is no contract at {address}",
                                 hint="check the workflow address and that the client is on the right network")
        raise InferenceError(f"{address} returned nothing; it is not a PriceHistoryInference workflow")
    return result


def read_result_flow(address: str) -> Flow[ModelOutput]:
    """`getInferenceResult()`; a workflow that has no result yet raises `InferenceError`."""
    from eth_abi import decode

    raw = yield from _view(address, GET_INFERENCE_RESULT_SELECTOR)
    try:
        (output,) = decode([MODEL_OUTPUT], raw)
    except Exception as exc:
        raise InferenceError(f"{address} answered getInferenceResult with data this SDK cannot decode",
                             hint="check that it is a PriceHistoryInference workflow") from exc
    result = model_output_from_abi(output)
    if is_empty(result):
        raise InferenceError(f"workflow {address} has no result yet",
                             hint="run it with alpha.run_workflow, or wait for the scheduler")
    return result


def read_history_flow(address: str, num_results: int) -> Flow[list[ModelOutput]]:
    """`getLastInferenceResults(n)`, newest first (fewer when the workflow ran fewer times)."""
    from eth_abi import decode, encode

    raw = yield from _view(address, GET_LAST_INFERENCE_RESULTS_SELECTOR + encode(["uint256"], [num_results]))
    try:
        (outputs,) = decode([f"{MODEL_OUTPUT}[]"], raw)
    except Exception as exc:
        raise InferenceError(f"{address} answered getLastInferenceResults with data this SDK cannot decode",
                             hint="check that it is a PriceHistoryInference workflow") from exc
    return [model_output_from_abi(o) for o in outputs]
