"""The inference precompile at `0x…F4`: real ONNX inference inside the devnet's EVM.

It decodes `runModelInference((mode, modelCID, input))`, loads the model by CID from the devnet's
Model Hub store, runs it with onnxruntime (one cached session per model), encodes the output and
emits `ModelInferenceEvent`. Anything wrong with the request — an unknown model, a missing or
extra input, a shape or type that does not fit — reverts with a readable reason, which the
inference contract passes on to the caller unchanged.

What a run may cost: the model runs outside the chain's lock (the chain answers other requests
meanwhile; `PrecompileDeferred`), for at most the time the call's gas buys — `GAS_PER_MS` per
millisecond, never more than `MAX_RUN_SECONDS` — and within `MAX_MODEL_MEMORY` of onnxruntime
memory shared by all runs. Gas is charged for the run's time (whole milliseconds, memoised per
model and input so estimation and execution agree), for the call data, and for the output, whose
size is checked against the gas left *before* it is encoded. A run past its budget, a model that
asks for more memory, or an output the gas cannot pay for reverts with the reason.

What each mode proves on the devnet:

- VANILLA: the devnet node ran the model; the transaction, its input and the `InferenceResult`
  event are on chain and re-checkable (`Proof.verify()`), but trust rests on the node, as on any
  single-validator chain.
- TEE: runs exactly like VANILLA. There is no enclave on a developer machine, so the devnet
  attaches no attestation to on-chain inference; this mode is accepted for compatibility only.
- ZKML: the model runs in onnxruntime (which checks the input as in VANILLA) and in its ezkl
  circuit, in a separate prover process; the output returned is the circuit's (the proven values,
  within the circuit's fixed-point precision of onnxruntime's) and nothing else, the proof's hash
  is recorded by a `ZkmlProof(string inferenceID, bytes32 proofHash)` event emitted next to
  `ModelInferenceEvent`, and the proof and verification key are served by the devnet API (`GET
  /zkml/proof/{inference_id}`, `GET /zkml/vk/{model_cid}`). Simulations (eth_call, gas estimation)
  compute the circuit's output without proving it. Models that cannot be proven (string tensors,
  operators ezkl lacks, too large: see `opengradient.devnet.services.zkml` for the limits) revert with the
  reason. Without a ZKML service (a precompile built on its own) ZKML runs like VANILLA.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opengradient.client.abi import (
    INFERENCE_REQUEST,
    MODEL_INFERENCE_ARGS,
    MODEL_INFERENCE_TOPIC,
    RUN_MODEL_INFERENCE_SELECTOR,
    ZKML_PROOF_ARGS,
    ZKML_PROOF_TOPIC,
)
from opengradient.client.codec import MODEL_INPUT, MODEL_OUTPUT, decode_model_input, encode_model_output
from opengradient.devnet.chain.evm import (
    MAX_DEFERRED_WORK,
    PrecompileCall,
    PrecompileDeferred,
    PrecompileResult,
    PrecompileRevert,
)
from opengradient.errors import OpenGradientError

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort


log = logging.getLogger("opengradient.devnet.chain.precompiles.inference")

_MODE_RESULT_KEYS = {0: "VanillaResult", 1: "ZkmlResult", 2: "TeeNodeResult"}
_ONNX_DTYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
    "tensor(string)": "str",
}
_BASE_GAS = 30_000
_GAS_PER_BYTE = 16
_NUMBER_BYTES = 64  # an encoded Number (int128 value, int128 decimals)
_SESSION_CACHE_SIZE = 32
#: Gas per millisecond of model run time on the devnet node.
GAS_PER_MS = 10_000
#: The longest one model run may take, whatever gas the call brings.
MAX_RUN_SECONDS = 2.0
#: onnxruntime memory all model runs may hold at once; an allocation beyond it fails the run.
MAX_MODEL_MEMORY = 256 * 1024 * 1024
_MEMO_SIZE = 256
_MEMO_MAX_BYTES = 1024 * 1024  # outputs larger than this are not memoised (a rerun measures again)


class ModelSource(Protocol):
    """Where model bytes come from, by CID (the devnet's Model Hub store)."""

    def get(self, cid: str) -> bytes:
        """The bytes of the model with this CID; `KeyError` when unknown."""
        ...


class ZkmlRunner(Protocol):
    """What runs a model in its circuit and proves it (the devnet's ZKML service)."""

    def run(self, model_cid: str, store: ModelSource, session: ort.InferenceSession,
            feeds: dict[str, np.ndarray], onnx_outputs: dict[str, np.ndarray], *,
            inference_id: str | None) -> tuple[dict[str, np.ndarray], str]:
        """The circuit's outputs for `feeds` and the hash of their proof (none when simulating)."""
        ...


@dataclass(frozen=True)
class ModelRun:
    """One model run: its outputs or the reason it failed, and the whole milliseconds it took."""

    outputs: dict[str, np.ndarray] | None
    reason: str | None
    milliseconds: int


@functools.cache
def _bounded_session_options() -> ort.SessionOptions:
    """Session options whose allocations come from one arena capped at `MAX_MODEL_MEMORY`."""
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # failures reach the caller as revert reasons instead
    arena = ort.OrtArenaCfg({"max_mem": MAX_MODEL_MEMORY, "arena_extend_strategy": 1})
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, arena)
    options = ort.SessionOptions()
    options.add_session_config_entry("session.use_env_allocators", "1")
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    return options


def output_gas(tensors: dict[str, np.ndarray]) -> int:
    """Gas for returning and logging these outputs, from their sizes, before any encoding."""
    size = 0
    for name, value in tensors.items():
        size += 96 + len(name.encode()) + 32 * value.ndim
        if value.dtype.kind in "OUS":
            size += sum(64 + len(str(v).encode()) for v in value.reshape(-1))
        else:
            size += _NUMBER_BYTES * value.size
    return 2 * _GAS_PER_BYTE * size  # the return data and the event


def _describe(shape: list[Any]) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + "]"


def _fit_shape(name: str, arr: np.ndarray, declared: list[Any]) -> np.ndarray:
    """Return `arr` in the model's declared shape, reshaping only when the count is unambiguous."""
    if len(declared) == arr.ndim and all(not isinstance(d, int) or d == s
                                         for d, s in zip(declared, arr.shape, strict=True)):
        return arr
    fixed = [d for d in declared if isinstance(d, int)]
    free = len(declared) - len(fixed)
    known = 1
    for d in fixed:
        known *= d
    if free == 0 and known == arr.size:
        return arr.reshape(fixed)
    if free == 1 and known > 0 and arr.size % known == 0:
        return arr.reshape([d if isinstance(d, int) else -1 for d in declared])
    raise PrecompileRevert(f"input '{name}' has shape {list(arr.shape)} but the model expects "
                           f"{_describe(declared)}")


def _cast(name: str, arr: np.ndarray, dtype: str) -> np.ndarray:
    import numpy as np

    is_text = arr.dtype.kind in "OUS"
    if dtype == "str":
        if not is_text:
            raise PrecompileRevert(f"input '{name}' must be strings, got numbers")
        return arr.astype(object)
    if is_text:
        raise PrecompileRevert(f"input '{name}' must be numbers ({dtype}), got strings")
    if dtype == "bool":
        return arr != 0
    target = np.dtype(dtype)
    if target.kind in "iu":
        if arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
            raise PrecompileRevert(f"input '{name}' must be whole numbers ({dtype})")
        info = np.iinfo(target)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise PrecompileRevert(f"input '{name}' has values outside the range of {dtype}")
    return arr.astype(target)


def model_output_json(output: tuple[Any, ...]) -> dict[str, Any]:
    """The JSON form of an encoded `ModelOutput`, as the inference API serves it."""
    numbers, strings, jsons, simulated = output
    return {
        "numbers": [{"name": n, "values": [{"value": str(v), "decimals": str(d)} for v, d in vals],
                     "shape": list(shape)} for n, vals, shape in numbers],
        "strings": [{"name": n, "values": list(vals)} for n, vals in strings],
        "jsons": [{"name": n, "value": v} for n, v in jsons],
        "is_simulation_result": bool(simulated),
    }


def api_result_document(mode: int, output: tuple[Any, ...]) -> dict[str, Any]:
    """What the inference API serves for an asynchronous result, in each mode's shape:
    `VanillaResult.model_output`, `ZkmlResult.model_output`, and
    `TeeNodeResult.Response.VanillaResponse.model_output`."""
    result: dict[str, Any] = {"model_output": model_output_json(output)}
    if mode == 2:
        result = {"Response": {"VanillaResponse": result}}
    return {"InferenceResult": {_MODE_RESULT_KEYS[mode]: result}}


class InferencePrecompile:
    """Callable precompile; keep one per devnet (it caches sessions and results)."""

    def __init__(self, store: ModelSource, *, deferred_results: bool = False,
                 zkml: ZkmlRunner | None = None) -> None:
        self.store = store
        self.deferred_results = deferred_results
        self.zkml = zkml
        self._sessions: OrderedDict[str, ort.InferenceSession] = OrderedDict()
        self._lock = threading.Lock()
        self._results: dict[str, dict[str, Any]] = {}
        self._memo: OrderedDict[bytes, ModelRun] = OrderedDict()

    def result(self, inference_id: str) -> dict[str, Any] | None:
        """The API document of a finished inference (`GET …/inference/tx/{id}`)."""
        return self._results.get(inference_id)

    def session(self, model_cid: str) -> ort.InferenceSession:
        """A cached onnxruntime session for the model with this CID."""
        with self._lock:
            cached = self._sessions.get(model_cid)
            if cached is not None:
                self._sessions.move_to_end(model_cid)
                return cached
        try:
            data = self.store.get(model_cid)
        except KeyError:
            raise PrecompileRevert(f"model not found: {model_cid}") from None
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(data, sess_options=_bounded_session_options(),
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise PrecompileRevert(f"model {model_cid} is not a loadable ONNX model: {exc}") from exc
        with self._lock:
            self._sessions[model_cid] = session
            while len(self._sessions) > _SESSION_CACHE_SIZE:
                self._sessions.popitem(last=False)
        return session

    def feeds(self, model_cid: str,
              inputs: dict[str, np.ndarray]) -> tuple[ort.InferenceSession, dict[str, np.ndarray]]:
        """The model's session and the inputs fitted to its signature (names, types, shapes)."""
        import numpy as np

        session = self.session(model_cid)
        declared = {i.name: i for i in session.get_inputs()}
        unknown = sorted(set(inputs) - set(declared))
        if unknown:
            raise PrecompileRevert(f"unknown input {unknown[0]!r}; the model's inputs are "
                                   f"{', '.join(sorted(declared))}")
        feeds = {}
        for name, spec in declared.items():
            if name not in inputs:
                raise PrecompileRevert(f"missing input {name!r} ({_ONNX_DTYPES.get(spec.type, spec.type)}"
                                       f"{_describe(list(spec.shape))})")
            dtype = _ONNX_DTYPES.get(spec.type)
            if dtype is None:
                raise PrecompileRevert(f"input {name!r} has unsupported type {spec.type}")
            feeds[name] = _fit_shape(name, _cast(name, np.asarray(inputs[name]), dtype), list(spec.shape))
        return session, feeds

    @staticmethod
    def _execute(model_cid: str, session: ort.InferenceSession, feeds: dict[str, np.ndarray],
                 budget: float = MAX_RUN_SECONDS) -> dict[str, np.ndarray]:
        """Run the session for at most `budget` seconds; a failure reverts with its reason."""
        import numpy as np
        import onnxruntime as ort

        options = ort.RunOptions()
        options.log_severity_level = 4
        timer = threading.Timer(budget, lambda: setattr(options, "terminate", True))
        timer.daemon = True
        timer.start()
        try:
            values = session.run(None, feeds, options)
        except Exception as exc:
            if options.terminate:
                raise PrecompileRevert(f"model {model_cid} ran out of its time budget of {budget * 1000:.0f} ms "
                                       f"({GAS_PER_MS} gas per ms, at most {MAX_RUN_SECONDS:g} s)") from None
            if "Available memory" in str(exc) or "bfc_arena" in str(exc):
                raise PrecompileRevert(f"model {model_cid} needs more memory than the devnet allows a model run "
                                       f"({MAX_MODEL_MEMORY // 2**20} MiB)") from None
            raise PrecompileRevert(f"model {model_cid} failed on this input: {exc}") from exc
        finally:
            timer.cancel()
        return {out.name: np.asarray(v) for out, v in zip(session.get_outputs(), values, strict=True)}

    def _timed_run(self, model_cid: str, inputs: dict[str, np.ndarray], budget: float, memo: bytes) -> ModelRun:
        """Fit the inputs and run the model (outside the chain's lock); never raises."""
        started = time.perf_counter()
        try:
            session, feeds = self.feeds(model_cid, inputs)
            started = time.perf_counter()  # loading and checking are not charged as run time
            outputs = self._execute(model_cid, session, feeds, budget)
        except PrecompileRevert as exc:
            return ModelRun(None, exc.reason, math.ceil((time.perf_counter() - started) * 1000))
        except Exception as exc:  # a bug here must become a revert, not a lost request
            log.exception("running model %s failed", model_cid)
            return ModelRun(None, f"model {model_cid} failed: {type(exc).__name__}: {exc}", 0)
        run = ModelRun(outputs, None, max(1, math.ceil((time.perf_counter() - started) * 1000)))
        if sum(v.nbytes for v in outputs.values()) <= _MEMO_MAX_BYTES:
            with self._lock:
                self._memo[memo] = run
                while len(self._memo) > _MEMO_SIZE:
                    self._memo.popitem(last=False)
        return run

    def bounded_run(self, call: PrecompileCall, model_cid: str,
                    model_input: tuple[Any, ...]) -> tuple[dict[str, np.ndarray], int]:
        """Run a model for `call` within its bounds: (outputs, compute gas), or a revert with the
        reason (time budget, memory, an output the gas left cannot pay for)."""
        inputs = decode_model_input(model_input)
        run = self._model_run(call, model_cid, model_input, inputs)
        compute_gas = GAS_PER_MS * run.milliseconds
        if run.outputs is None:
            raise PrecompileRevert(run.reason or "the model failed", gas=compute_gas)
        needed = _BASE_GAS + _GAS_PER_BYTE * len(call.data) + compute_gas + output_gas(run.outputs)
        if needed > call.gas_available:
            size = sum(v.size for v in run.outputs.values())
            raise PrecompileRevert(f"out of gas: the model's output ({size} values) and its run "
                                   f"({run.milliseconds} ms) need {needed} gas; the call has "
                                   f"{call.gas_available}", gas=compute_gas)
        return run.outputs, compute_gas

    def _model_run(self, call: PrecompileCall, model_cid: str, model_input: tuple[Any, ...],
                   inputs: dict[str, np.ndarray]) -> ModelRun:
        """The run this call asks for: memoised, prepared by a deferred run, or deferred now."""
        from eth_abi import encode
        from eth_utils import keccak

        memo = keccak(encode(["string", MODEL_INPUT], [model_cid, model_input]))
        key = ("onnx-run", memo)
        run = call.prepared.get(key)
        if run is None:
            with self._lock:
                run = self._memo.get(memo)
        if run is not None:
            return run
        if len(call.prepared) >= MAX_DEFERRED_WORK:
            raise PrecompileRevert(f"one transaction may run at most {MAX_DEFERRED_WORK} models")
        spare = call.gas_available - _BASE_GAS - _GAS_PER_BYTE * len(call.data)
        budget = min(MAX_RUN_SECONDS, spare / GAS_PER_MS / 1000)
        if budget < 0.001:
            raise PrecompileRevert(f"out of gas: running a model needs at least {GAS_PER_MS} gas "
                                   f"(one millisecond) beyond the call's base cost")
        raise PrecompileDeferred(key, lambda: self._timed_run(model_cid, inputs, budget, memo))

    def _run_zkml(self, model_cid: str, inputs: dict[str, np.ndarray], call: PrecompileCall,
                  inference_id: str) -> tuple[tuple[Any, ...], str]:
        """ZKML mode: the circuit's output and the proof's hash, proven (and the proof stored)
        unless simulating."""
        assert self.zkml is not None
        session, feeds = self.feeds(model_cid, inputs)
        reference = self._execute(model_cid, session, feeds)
        tensors, proof_hash = self.zkml.run(model_cid, self.store, session, feeds, reference,
                                            inference_id=None if call.is_static else inference_id)
        return encode_model_output(tensors, is_simulation_result=call.is_static), proof_hash

    def __call__(self, call: PrecompileCall) -> PrecompileResult:
        from eth_abi import decode, encode
        from eth_utils import keccak

        if call.data[:4] != RUN_MODEL_INFERENCE_SELECTOR:
            raise PrecompileRevert(
                "unknown function: the inference precompile only has runModelInference")
        try:
            (request,) = decode([INFERENCE_REQUEST], call.data[4:])
        except Exception as exc:
            raise PrecompileRevert(f"malformed inference request: {exc}") from exc
        mode, model_cid, model_input = request
        if mode not in _MODE_RESULT_KEYS:
            raise PrecompileRevert(
                f"invalid inference mode {mode}: expected 0 (VANILLA), 1 (ZKML) or 2 (TEE)")
        inference_id = "0x" + keccak(call.origin.encode() + call.block_number.to_bytes(8, "big")
                                     + call.data).hex()
        compute_gas = 0
        proof_hash: str | None = None
        try:
            if mode == 1 and self.zkml is not None:
                output, proof_hash = self._run_zkml(model_cid, decode_model_input(model_input), call, inference_id)
            else:
                outputs, compute_gas = self.bounded_run(call, model_cid, model_input)
                output = encode_model_output(outputs, is_simulation_result=call.is_static)
        except OpenGradientError as exc:
            raise PrecompileRevert(exc.message, gas=compute_gas) from exc

        if not call.is_static:
            document = api_result_document(mode, output)
            encoded = base64.b64encode(json.dumps(document).encode()).decode()
            self._results[inference_id] = {"inference_results": [encoded]}
            log.info("inference %s model=%s mode=%d", inference_id[:10], model_cid, mode)
        returned = ([], [], [], output[3]) if self.deferred_results else output
        event = encode(MODEL_INFERENCE_ARGS, [inference_id, request, returned])
        gas = _BASE_GAS + _GAS_PER_BYTE * len(call.data) + _GAS_PER_BYTE * len(event) + compute_gas
        logs = [([bytes.fromhex(MODEL_INFERENCE_TOPIC[2:])], event)]
        if proof_hash is not None and not call.is_static:
            logs.append(([bytes.fromhex(ZKML_PROOF_TOPIC[2:])],
                         encode(ZKML_PROOF_ARGS, [inference_id, bytes.fromhex(proof_hash[2:])])))
        return PrecompileResult(output=encode([MODEL_OUTPUT], [returned]), logs=logs, gas=gas)
