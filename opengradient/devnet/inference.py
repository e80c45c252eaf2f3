"""The inference precompile at `0x…F4`: real ONNX inference inside the devnet's EVM.

It decodes `runModelInference((mode, modelCID, input))`, loads the model by CID from the devnet's
Model Hub store, runs it with onnxruntime (one cached session per model), encodes the output and
emits `ModelInferenceEvent`. Anything wrong with the request — an unknown model, a missing or
extra input, a shape or type that does not fit — reverts with a readable reason, which the
inference contract passes on to the caller unchanged.

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
  operators ezkl lacks, too large: see `opengradient.devnet.zkml` for the limits) revert with the
  reason. Without a ZKML service (a precompile built on its own) ZKML runs like VANILLA.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from opengradient.client.abi import (
    INFERENCE_REQUEST,
    MODEL_INFERENCE_ARGS,
    MODEL_INFERENCE_TOPIC,
    RUN_MODEL_INFERENCE_SELECTOR,
    ZKML_PROOF_ARGS,
    ZKML_PROOF_TOPIC,
)
from opengradient.client.codec import MODEL_OUTPUT, decode_model_input, encode_model_output
from opengradient.devnet.chain import PrecompileCall, PrecompileResult, PrecompileRevert
from opengradient.errors import OpenGradientError

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort

    from opengradient.devnet.hub import ModelStore
    from opengradient.devnet.zkml.service import ZkmlService

log = logging.getLogger("opengradient.devnet.inference")

_MODE_RESULT_KEYS = {0: "VanillaResult", 1: "ZkmlResult", 2: "TeeNodeResult"}
_ONNX_DTYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
    "tensor(string)": "str",
}
_BASE_GAS = 30_000
_SESSION_CACHE_SIZE = 32


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

    def __init__(self, store: ModelStore, *, deferred_results: bool = False,
                 zkml: ZkmlService | None = None) -> None:
        self.store = store
        self.deferred_results = deferred_results
        self.zkml = zkml
        self._sessions: OrderedDict[str, ort.InferenceSession] = OrderedDict()
        self._lock = threading.Lock()
        self._results: dict[str, dict[str, Any]] = {}

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

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(data, sess_options=options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise PrecompileRevert(f"model {model_cid} is not a loadable ONNX model: {exc}") from exc
        with self._lock:
            self._sessions[model_cid] = session
            while len(self._sessions) > _SESSION_CACHE_SIZE:
                self._sessions.popitem(last=False)
        return session

    def run(self, model_cid: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a model on decoded inputs, fitting them to its signature."""
        session, feeds = self.feeds(model_cid, inputs)
        return self._execute(model_cid, session, feeds)

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
    def _execute(model_cid: str, session: ort.InferenceSession,
                 feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        try:
            values = session.run(None, feeds)
        except Exception as exc:
            raise PrecompileRevert(f"model {model_cid} failed on this input: {exc}") from exc
        return {out.name: np.asarray(v) for out, v in zip(session.get_outputs(), values, strict=True)}

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
        proof_hash: str | None = None
        try:
            inputs = decode_model_input(model_input)
            if mode == 1 and self.zkml is not None:
                output, proof_hash = self._run_zkml(model_cid, inputs, call, inference_id)
            else:
                output = encode_model_output(self.run(model_cid, inputs),
                                             is_simulation_result=call.is_static)
        except OpenGradientError as exc:
            raise PrecompileRevert(exc.message) from exc

        if not call.is_static:
            document = api_result_document(mode, output)
            encoded = base64.b64encode(json.dumps(document).encode()).decode()
            self._results[inference_id] = {"inference_results": [encoded]}
            log.info("inference %s model=%s mode=%d", inference_id[:10], model_cid, mode)
        returned = ([], [], [], output[3]) if self.deferred_results else output
        event = encode(MODEL_INFERENCE_ARGS, [inference_id, request, returned])
        gas = _BASE_GAS + 16 * len(call.data) + 16 * len(event)
        logs = [([bytes.fromhex(MODEL_INFERENCE_TOPIC[2:])], event)]
        if proof_hash is not None and not call.is_static:
            logs.append(([bytes.fromhex(ZKML_PROOF_TOPIC[2:])],
                         encode(ZKML_PROOF_ARGS, [inference_id, bytes.fromhex(proof_hash[2:])])))
        return PrecompileResult(output=encode([MODEL_OUTPUT], [returned]), logs=logs, gas=gas)
