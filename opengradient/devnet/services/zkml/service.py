"""`ZkmlService`: circuits, proofs and keys for ZKML-mode inference on the devnet.

Layout under the service's directory (``<devnet data dir>/zkml``)::

    circuits/<model CID>/   model.onnx, settings.json, calibration.json, model.compiled,
                            pk.key, vk.key, vka.bin, circuit.json (written last: the cache entry)
                            or refused.json (the model cannot be proven; not retried)
    srs/kzg<logrows>.srs    testing SRS, one per circuit size, generated here by ezkl.gen_srs
    proofs/<inference id>.json
    ezkl/                   ezkl's own cache (EZKL_REPO_PATH of the prover process)
    prover.log              what the prover process printed

Set-up happens on a model's first ZKML inference (its gas estimate, in practice) and is calibrated
on that input; later inferences reuse the cached circuit, also across devnet restarts with the same
data directory.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opengradient.client.zkml import (
    TensorSpec,
    dequantize,
    felts_to_signed,
    proof_hash,
)
from opengradient.devnet.chain.evm import PrecompileRevert
from opengradient.devnet.services.zkml import worker
from opengradient.devnet.services.zkml.prover import ProverError, ProverProcess, ProverTimeoutError
from opengradient.devnet.services.zkml.verifier import VERIFIER_ADDRESS, register_vka_calldata

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort

    from opengradient.devnet.chain.deploy import Deployer
    from opengradient.devnet.chain.evm import DevChain
    from opengradient.devnet.chain.precompiles.inference import ModelSource

log = logging.getLogger("opengradient.devnet.services.zkml")

#: Largest circuit the devnet proves, in rows of its layout (ezkl's `num_rows`: the circuit's area
#: before it is folded into columns), which is what proving time follows. Measured here (2 cores):
#: 938 rows (an 8→16→2 MLP) prove in 0.3–0.9 s, 3,748 in ~3 s, ~11,000 in 7–8 s, 22,536 in ~18 s,
#: 65,514 in ~34 s, and a 3×3 convolution over 28×28 (274,376 rows folded into 2^14) in 78 s.
MAX_ROWS = 16_384
#: Largest circuit height (log2 of its rows once folded); keys and SRS grow with it.
MAX_LOGROWS = 14
#: Largest model the devnet tries to prove (weights, biases and constants), checked before
#: anything else: an MLP of ~1,300 parameters needs ~3,700 rows, one of ~9,500 ~11,000.
MAX_PARAMETERS = 10_000
#: Seconds a proof may take before the prover process is stopped and the inference reverts.
PROVE_TIMEOUT = 120.0
#: Seconds a model's set-up (calibration, SRS, keys) may take.
SETUP_TIMEOUT = 600.0
#: What a simulated ZKML inference (eth_call, gas estimation) records instead of a proof hash.
UNPROVEN_HASH = "0x" + "00" * 32
#: What the served SRS is: anyone holding its secret could forge proofs.
SRS_KIND = "testing"
SRS_NOTE = ("testing SRS generated on this devnet by ezkl.gen_srs, not taken from a trusted-setup "
            "ceremony: whoever generated it can forge proofs")
_REGISTRAR_KEY = "0x7ef7cbd136b082d21651ab0e77e275cb946cfc130f09d3b065ed68163f648f79"
_CALIBRATION_FACTORS = (1.0, 0.5, 2.0, 4.0)
_INFERENCE_ID = re.compile(r"^0x[0-9a-f]{64}$")
_FLOAT_DTYPES = ("float16", "float32", "float64")


@dataclass(frozen=True)
class Circuit:
    """A model's proving set-up, as cached on disk."""

    model_cid: str
    directory: Path
    logrows: int
    parameters: int
    srs_path: Path
    settings: dict[str, Any]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    key_id: str
    vka: tuple[bytes, ...]
    vka_digest: str
    setup_seconds: float

    def to_json(self) -> dict[str, Any]:
        """What `circuit.json` holds (everything but the files themselves)."""
        return {"model_cid": self.model_cid, "ezkl_version": _ezkl_version(), "logrows": self.logrows,
                "parameters": self.parameters,
                "srs": self.srs_path.name, "key_id": self.key_id, "vka_digest": self.vka_digest,
                "setup_seconds": self.setup_seconds,
                "inputs": [_spec_json(s) for s in self.inputs],
                "outputs": [_spec_json(s) for s in self.outputs]}


def _spec_json(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "dtype": spec.dtype, "shape": list(spec.shape), "scale": spec.scale}


def _read_vka(path: Path) -> tuple[bytes, ...]:
    raw = path.read_bytes()
    count = int.from_bytes(raw[:8], "little")
    if len(raw) != 8 + 32 * count:
        raise ValueError(f"{path} is not a verifier key artifact")
    return tuple(raw[8 + 32 * i: 40 + 32 * i] for i in range(count))


def _ezkl_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ezkl")
    except PackageNotFoundError:
        return None


def _dtype_name(onnx_type: str) -> str:
    from opengradient.devnet.chain.precompiles.inference import _ONNX_DTYPES

    return _ONNX_DTYPES.get(onnx_type, onnx_type)


class ZkmlService:
    """Proves ZKML-mode inferences and serves proofs and keys. One per devnet; `close()` it."""

    def __init__(self, directory: Path, *, max_rows: int = MAX_ROWS, max_logrows: int = MAX_LOGROWS,
                 max_parameters: int = MAX_PARAMETERS, prove_timeout: float = PROVE_TIMEOUT,
                 setup_timeout: float = SETUP_TIMEOUT) -> None:
        self.directory = Path(directory)
        self.max_rows = max_rows
        self.max_logrows = max_logrows
        self.max_parameters = max_parameters
        self.prove_timeout = prove_timeout
        self.setup_timeout = setup_timeout
        self.verifier_address = VERIFIER_ADDRESS
        self._prover = ProverProcess(self.directory / "prover.log",
                                     env={"EZKL_REPO_PATH": str(self.directory / "ezkl")})
        self._circuits: dict[str, Circuit] = {}
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()
        self._setup_locks: dict[str, threading.Lock] = {}
        self._registered: dict[str, str] = {}  # vka digest -> registration transaction
        self._register_lock = threading.Lock()
        self._chain: DevChain | None = None
        self._deployer: Deployer | None = None

    # ---- wiring --------------------------------------------------------------------------------

    def attach_chain(self, chain: DevChain) -> None:
        """The chain whose verifier contract gets the keys registered (from a funded account of
        its own, so no user's nonce is disturbed)."""
        from eth_account import Account

        from opengradient.devnet.chain.deploy import Deployer
        from opengradient.devnet.chain.keys import DevAccount

        address = Account.from_key(_REGISTRAR_KEY).address
        chain.set_balance(address, 1_000 * 10**18)
        self._chain = chain
        self._deployer = Deployer(chain, DevAccount(address=address, private_key=_REGISTRAR_KEY))

    @staticmethod
    def available() -> bool:
        """Whether ezkl is installed for this Python (the prover process runs the same one)."""
        return importlib.util.find_spec("ezkl") is not None

    def close(self) -> None:
        """Stop the prover process."""
        self._prover.close()

    # ---- circuits ------------------------------------------------------------------------------

    def _circuit_dir(self, model_cid: str) -> Path:
        from opengradient.devnet.services.hub import is_cid

        if not is_cid(model_cid):  # in-memory stores accept any CID; paths need a safe name
            model_cid = "sha256-" + hashlib.sha256(model_cid.encode()).hexdigest()
        return self.directory / "circuits" / model_cid

    def _load(self, model_cid: str) -> Circuit | None:
        directory = self._circuit_dir(model_cid)
        refused = directory / "refused.json"
        if refused.exists():
            record = json.loads(refused.read_text(encoding="utf-8"))
            if record.get("conditions") == self._conditions():  # else: limits or ezkl changed, retry
                self._refused[model_cid] = record["reason"]
                return None
        meta_path = directory / "circuit.json"
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("ezkl_version") != _ezkl_version():
            return None  # set up again with this ezkl
        return Circuit(
            model_cid=model_cid, directory=directory, logrows=int(meta["logrows"]),
            parameters=int(meta["parameters"]), srs_path=self.directory / "srs" / meta["srs"],
            settings=json.loads((directory / worker.SETTINGS_FILE).read_text(encoding="utf-8")),
            inputs=tuple(TensorSpec(s["name"], s["dtype"], tuple(s["shape"]), int(s["scale"]))
                         for s in meta["inputs"]),
            outputs=tuple(TensorSpec(s["name"], s["dtype"], tuple(s["shape"]), int(s["scale"]))
                          for s in meta["outputs"]),
            key_id=meta["key_id"], vka=_read_vka(directory / worker.VKA_FILE),
            vka_digest=meta["vka_digest"], setup_seconds=float(meta["setup_seconds"]))

    def cached_circuit(self, model_cid: str) -> Circuit | None:
        """The model's circuit if it has been set up (in this process or an earlier one)."""
        with self._lock:
            circuit = self._circuits.get(model_cid)
            if circuit is None and model_cid not in self._refused:
                circuit = self._load(model_cid)
                if circuit is not None:
                    self._circuits[model_cid] = circuit
            return circuit

    def _conditions(self) -> dict[str, Any]:
        """What a cached refusal depends on."""
        return {"max_rows": self.max_rows, "max_logrows": self.max_logrows, "max_parameters": self.max_parameters,
                "setup_timeout": self.setup_timeout, "ezkl_version": _ezkl_version()}

    def _refuse(self, model_cid: str, reason: str, *, permanent: bool) -> PrecompileRevert:
        if permanent:
            with self._lock:
                self._refused[model_cid] = reason
            directory = self._circuit_dir(model_cid)
            directory.mkdir(parents=True, exist_ok=True)
            record = {"reason": reason, "conditions": self._conditions()}
            (directory / "refused.json").write_text(json.dumps(record), encoding="utf-8")
        return PrecompileRevert(reason)

    def circuit(self, model_cid: str, store: ModelSource, session: ort.InferenceSession,
                feeds: dict[str, np.ndarray]) -> Circuit:
        """The model's circuit, set up now (calibrated around `feeds`) if it is not cached.

        Raises `PrecompileRevert` with the reason when the model cannot be proven.
        """
        if not self.available():
            raise PrecompileRevert("ZKML mode needs the ezkl package on the devnet node: "
                                   "pip install 'opengradient[zkml]'")
        circuit = self.cached_circuit(model_cid)
        if circuit is not None:
            return circuit
        with self._lock:
            if model_cid in self._refused:
                raise PrecompileRevert(self._refused[model_cid])
            setup_lock = self._setup_locks.setdefault(model_cid, threading.Lock())
        with setup_lock:
            circuit = self.cached_circuit(model_cid)
            if circuit is not None:
                return circuit
            with self._lock:
                if model_cid in self._refused:
                    raise PrecompileRevert(self._refused[model_cid])
            circuit = self._setup(model_cid, store, session, feeds)
            with self._lock:
                self._circuits[model_cid] = circuit
            return circuit

    def _setup(self, model_cid: str, store: ModelSource, session: ort.InferenceSession,
               feeds: dict[str, np.ndarray]) -> Circuit:
        import numpy as np

        cannot = f"model {model_cid} cannot be proven in ZKML mode"
        for kind, specs in (("input", session.get_inputs()), ("output", session.get_outputs())):
            for spec in specs:
                if _dtype_name(spec.type) in ("str", "bool") or "string" in spec.type:
                    raise self._refuse(model_cid, f"{cannot}: its {kind} {spec.name!r} is a {spec.type}; "
                                                  "ZKML circuits take and give numbers only", permanent=True)
        directory = self._circuit_dir(model_cid)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / worker.MODEL_FILE).write_bytes(store.get(model_cid))
        rng = np.random.default_rng(0)
        samples = []
        base = [np.asarray(feeds[i.name], dtype=np.float64).reshape(-1) for i in session.get_inputs()]
        integer = [_dtype_name(i.type) not in _FLOAT_DTYPES for i in session.get_inputs()]
        for factor in (*_CALIBRATION_FACTORS, None):
            sample = []
            for values, is_int in zip(base, integer, strict=True):
                if factor is None:  # jitter: mixed signs around the input
                    spread = max(1.0, float(np.abs(values).max(initial=0.0)))
                    values = values + rng.uniform(-0.5, 0.5, size=values.shape) * spread
                else:
                    values = values * factor
                sample.append((np.round(values) if is_int else values).tolist())
            samples.append(sample)
        try:
            result = self._prover.call("setup", {
                "circuit_dir": str(directory), "srs_dir": str(self.directory / "srs"),
                "calibration": samples, "max_rows": self.max_rows, "max_logrows": self.max_logrows,
                "max_parameters": self.max_parameters}, timeout=self.setup_timeout)
        except ProverTimeoutError:
            raise self._refuse(model_cid, f"model {model_cid} is too large to prove in ZKML mode on the "
                                          f"devnet: setting it up took longer than {self.setup_timeout:g} s",
                               permanent=True) from None
        except ProverError as exc:
            if exc.kind == "too_large":
                raise self._refuse(
                    model_cid, f"model {model_cid} is too large to prove in ZKML mode on the devnet: "
                               f"{exc.message} (limits: {self.max_parameters:,} parameters, circuits of "
                               f"{self.max_rows:,} rows); run it in VANILLA mode",
                    permanent=True) from None
            if exc.kind == "unsupported":
                raise self._refuse(model_cid, f"{cannot}: {exc.message}", permanent=True) from None
            if exc.kind == "input":
                raise PrecompileRevert(f"{cannot} on this input: {exc.message}") from None
            raise PrecompileRevert(f"ZKML set-up of model {model_cid} failed: {exc.message}") from None

        settings = json.loads((directory / worker.SETTINGS_FILE).read_text(encoding="utf-8"))
        shapes = settings["model_instance_shapes"]
        n_in, n_out = len(session.get_inputs()), len(session.get_outputs())
        if len(shapes) != n_in + n_out:
            raise self._refuse(model_cid, f"{cannot}: its circuit exposes {len(shapes)} tensors, the model "
                                          f"has {n_in} inputs and {n_out} outputs", permanent=True)
        inputs = tuple(TensorSpec(i.name, _dtype_name(i.type), tuple(int(d) for d in shape), int(scale))
                       for i, shape, scale in zip(session.get_inputs(), shapes[:n_in],
                                                  settings["model_input_scales"], strict=True))
        outputs = tuple(TensorSpec(o.name, _dtype_name(o.type), tuple(int(d) for d in shape), int(scale))
                        for o, shape, scale in zip(session.get_outputs(), shapes[n_in:],
                                                   settings["model_output_scales"], strict=True))
        from eth_utils import keccak

        vka = _read_vka(directory / worker.VKA_FILE)
        circuit = Circuit(
            model_cid=model_cid, directory=directory, logrows=int(result["logrows"]),
            parameters=int(result["parameters"]), srs_path=self.directory / "srs" / str(result["srs"]),
            settings=settings, inputs=inputs, outputs=outputs,
            key_id=hashlib.sha256((directory / worker.VK_FILE).read_bytes()).hexdigest(),
            vka=vka, vka_digest="0x" + keccak(b"".join(vka)).hex(),
            setup_seconds=float(result["seconds"]))
        meta = directory / "circuit.json"
        tmp = meta.with_name("circuit.json.tmp")
        tmp.write_text(json.dumps(circuit.to_json(), indent=1), encoding="utf-8")
        os.replace(tmp, meta)
        log.info("ZKML circuit for %s: logrows %d, %d parameters, set up in %.2f s", model_cid,
                 circuit.logrows, circuit.parameters, circuit.setup_seconds)
        return circuit

    # ---- inference -----------------------------------------------------------------------------

    def run(self, model_cid: str, store: ModelSource, session: ort.InferenceSession,
            feeds: dict[str, np.ndarray], onnx_outputs: dict[str, np.ndarray], *,
            inference_id: str | None) -> tuple[dict[str, np.ndarray], str]:
        """The circuit's outputs for `feeds` and the hash of their proof.

        With `inference_id` the inference is proven and the proof stored under that id; without
        it (a simulation) only the circuit's outputs are computed and the hash is `UNPROVEN_HASH`.
        The outputs are the circuit's (the proven values), shaped like onnxruntime's.
        """
        import numpy as np

        circuit = self.circuit(model_cid, store, session, feeds)
        values = []
        for spec in circuit.inputs:
            arr = np.asarray(feeds[spec.name])
            if arr.size != spec.size:
                raise PrecompileRevert(f"input {spec.name!r} has shape {list(arr.shape)}; the ZKML circuit of "
                                       f"model {model_cid} was built for {list(spec.shape)}")
            values.append(arr.astype(np.float64).reshape(-1).tolist())
        proof_path = None
        try:
            if inference_id is None:
                result = self._prover.call("witness", {"circuit_dir": str(circuit.directory), "input": values},
                                           timeout=self.prove_timeout)
            else:
                proofs = self.directory / "proofs"
                proofs.mkdir(parents=True, exist_ok=True)
                proof_path = proofs / f".{inference_id}.ezkl.json"
                result = self._prover.call("prove", {
                    "circuit_dir": str(circuit.directory), "input": values,
                    "srs_path": str(circuit.srs_path), "proof_path": str(proof_path)},
                    timeout=self.prove_timeout)
        except ProverTimeoutError:
            raise PrecompileRevert(f"proving model {model_cid} took longer than {self.prove_timeout:g} s; "
                                   "run it in VANILLA mode") from None
        except ProverError as exc:
            raise PrecompileRevert(f"ZKML mode cannot prove model {model_cid} on this input: "
                                   f"{exc.message}") from None
        outputs = self._outputs(circuit, result["outputs"], onnx_outputs)
        if proof_path is None or inference_id is None:
            return outputs, UNPROVEN_HASH
        document = {"inference_id": inference_id, "model_cid": model_cid, "key_id": circuit.key_id,
                    "proof": json.loads(proof_path.read_text(encoding="utf-8"))}
        document["proof_hash"] = proof_hash(document)
        final = proof_path.with_name(f"{inference_id}.json")
        final.write_text(json.dumps(document), encoding="utf-8")
        proof_path.unlink(missing_ok=True)
        log.info("ZKML proof for %s (model %s) in %.3f s", inference_id[:10], model_cid,
                 float(result.get("prove_seconds", 0.0)))
        return outputs, str(document["proof_hash"])

    @staticmethod
    def _outputs(circuit: Circuit, felts: list[list[str]],
                 onnx_outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        columns = felts_to_signed(felts)
        if len(columns) != len(circuit.outputs):
            raise PrecompileRevert(f"the circuit gave {len(columns)} outputs, the model has {len(circuit.outputs)}")
        outputs: dict[str, np.ndarray] = {}
        for spec, column in zip(circuit.outputs, columns, strict=True):
            reference = onnx_outputs[spec.name]
            if len(column) != reference.size:
                raise PrecompileRevert(f"the circuit's output {spec.name!r} has {len(column)} values, "
                                       f"onnxruntime's {reference.size}")
            arr = np.array([dequantize(v, spec.scale) for v in column], dtype=np.float64)
            if spec.dtype not in _FLOAT_DTYPES:
                arr = np.round(arr).astype(np.int64)
            outputs[spec.name] = arr.reshape(reference.shape)
        return outputs

    # ---- serving -------------------------------------------------------------------------------

    def proof_document(self, inference_id: str) -> dict[str, Any] | None:
        """`GET /zkml/proof/{inference_id}`: the stored proof document, or None.

        Serving a proof also makes sure its key is registered with the verifier contract (once
        per chain), so whoever fetched it can check it on chain at once.
        """
        inference_id = inference_id.lower()
        if not _INFERENCE_ID.match(inference_id):
            return None
        path = self.directory / "proofs" / f"{inference_id}.json"
        try:
            document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        circuit = self.cached_circuit(str(document.get("model_cid")))
        if circuit is not None and circuit.key_id == document.get("key_id"):
            try:
                self.register(circuit)
            except Exception:  # the proof is still worth serving; on-chain checks will say why
                log.exception("registering the ZKML key of %s failed", circuit.model_cid)
        return document

    def register(self, circuit: Circuit) -> str | None:
        """Register the circuit's VKA with the verifier contract (once); returns the transaction."""
        if self._deployer is None:
            return None
        with self._register_lock:
            known = self._registered.get(circuit.vka_digest)
            if known is not None:
                return known
            receipt = self._deployer.send(self.verifier_address, register_vka_calldata(list(circuit.vka)),
                                          what="registering a ZKML verifier key")
            tx_hash = str(receipt["transactionHash"])
            self._registered[circuit.vka_digest] = tx_hash
            log.info("ZKML key of %s registered with the verifier in %s", circuit.model_cid, tx_hash)
            return tx_hash

    def key_document(self, model_cid: str) -> dict[str, Any] | None:
        """`GET /zkml/vk/{model_cid}`: key, settings, SRS and verifier of a set-up model, or None.

        The key is registered with the verifier contract first (once per chain), so the answer's
        verifier can check the model's proofs at once.
        """
        circuit = self.cached_circuit(model_cid)
        if circuit is None:
            return None
        registration = self.register(circuit)
        srs = circuit.srs_path.read_bytes()
        return {
            "model_cid": model_cid,
            "key_id": circuit.key_id,
            "ezkl_version": _ezkl_version(),
            "logrows": circuit.logrows,
            "parameters": circuit.parameters,
            "settings": circuit.settings,
            "vk": base64.b64encode((circuit.directory / worker.VK_FILE).read_bytes()).decode(),
            "srs": {"kind": SRS_KIND, "note": SRS_NOTE, "logrows": circuit.logrows,
                    "sha256": hashlib.sha256(srs).hexdigest(), "data": base64.b64encode(srs).decode()},
            "inputs": [_spec_json(s) for s in circuit.inputs],
            "outputs": [_spec_json(s) for s in circuit.outputs],
            "vka": ["0x" + w.hex() for w in circuit.vka],
            "vka_digest": circuit.vka_digest,
            "verifier_address": self.verifier_address if self._chain is not None else None,
            "vka_registration_tx": registration,
        }
