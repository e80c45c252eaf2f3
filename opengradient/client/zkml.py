"""ZKML proofs of on-chain inference: fetch them, check them off chain with ezkl and on chain.

An inference run in `InferenceMode.ZKML` comes back with `InferenceResult.proof` of kind
``"zkml"``: the transaction fields of an on-chain proof plus the inference id and
``zkml_proof_hash``, the hash the node recorded for the inference in a ``ZkmlProof(string
inferenceID, bytes32 proofHash)`` event of the transaction (the output holds only what the model
produced). The node serves the proof (``GET {api_url}/zkml/proof/{inference_id}``) and the verification key of the
model's circuit (``GET {api_url}/zkml/vk/{model_cid}``). `Proof.verify()` then checks:

1. the transaction: model, mode, input and output hashes (as for any on-chain proof);
2. that the served proof is the one whose hash the chain recorded;
3. that the proof's public inputs are the transaction's input and its public outputs the output
   the chain returned, both within the circuit's precision (half a fixed-point step,
   ``2**-scale / 2``, per value);
4. the proof itself, with ezkl, against the verification key and SRS the node serves;
5. with ``onchain=True``, the proof once more through the verifier contract on the Alpha chain
   (an ``eth_call`` of ``verifyProof(proof, instances, vka)``; the key's EVM artifact is recomputed
   from the verification key and must be the one the contract has registered).

Checking needs the optional ``ezkl`` package: ``pip install 'opengradient[zkml]'``; checks 1–4
take ~10–20 ms for small models once the key is fetched (keys are cached per key id), the
on-chain check adds the contract call (1–2 s on the devnet, whose EVM runs in Python). What a devnet
proof proves, and what it does not (its SRS is a testing SRS), is in `opengradient.devnet.services.zkml`.

Wire formats: a proof document is ``{"inference_id", "model_cid", "key_id", "proof_hash",
"proof": <ezkl proof JSON>}``; ``proof_hash`` is keccak-256 of ``abi.encode(bytes proof,
uint256[] instances)`` — exactly the proof and public values the verifier contract is given.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opengradient.client.abi import INFERENCE_RESULT_TOPIC, MODEL_INFERENCE_ARGS, MODEL_INFERENCE_TOPIC, RUN_ARGS
from opengradient.client.chain import Flow, HttpGetJson, Rpc
from opengradient.errors import NotFoundError, OpenGradientError, VerificationError, missing_extra

if TYPE_CHECKING:
    import numpy as np

    from opengradient.client.client import Client
    from opengradient.networks import Network
    from opengradient.proof import Proof

__all__ = [
    "FIELD_MODULUS",
    "VERIFY_PROOF_SELECTOR",
    "TensorSpec",
    "ZkmlKey",
    "check_public_values",
    "dequantize",
    "evm_key_artifact",
    "felts_to_signed",
    "fetch_key",
    "fetch_proof",
    "flat_instances",
    "proof_bytes",
    "proof_hash",
    "require_ezkl",
    "signed_instances",
    "verifier_calldata",
    "verify_offchain",
    "verify_onchain",
    "verify_zkml_proof",
]

#: The BN254 scalar field: public values are its elements; the upper half encodes negatives.
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: `verifyProof(bytes proof, uint256[] instances, bytes32[] vka)` of ezkl's reusable verifier.
VERIFY_PROOF_SELECTOR = bytes.fromhex("3409fc9f")
_ZKML_MODE = 1
_KEY_CACHE_SIZE = 16
_key_cache: OrderedDict[tuple[str, str, str], ZkmlKey] = OrderedDict()
_key_cache_lock = threading.Lock()


def require_ezkl() -> Any:
    """The `ezkl` module, or a `MissingExtraError` that names the pip command."""
    try:
        import ezkl
    except ImportError as exc:
        raise missing_extra(exc, "checking a ZKML proof", "zkml") from exc
    return ezkl


# ---------------------------------------------------------------------------------------------
# Proof documents: public values and hashes, without ezkl
# ---------------------------------------------------------------------------------------------


def _felt(text: str) -> int:
    """ezkl writes field elements as 32 little-endian bytes in hex."""
    raw = bytes.fromhex(text.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"a field element is 32 bytes, got {len(raw)}")
    value = int.from_bytes(raw, "little")
    if value >= FIELD_MODULUS:
        raise ValueError("a field element is not reduced")
    return value


def _ezkl_proof(document: Mapping[str, Any]) -> Mapping[str, Any]:
    proof = document.get("proof") if "instances" not in document else document
    if not isinstance(proof, Mapping):
        raise VerificationError("the proof document holds no ezkl proof")
    return proof


def flat_instances(document: Mapping[str, Any]) -> list[int]:
    """The proof's public values as field elements, in the order the circuit exposes them
    (inputs, then outputs), from a proof document or an ezkl proof JSON."""
    proof = _ezkl_proof(document)
    try:
        return [_felt(v) for column in proof["instances"] for v in column]
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"the proof's public values cannot be read: {exc}") from None


def signed_instances(document: Mapping[str, Any]) -> list[int]:
    """The public values as signed integers (fixed-point numbers before scaling)."""
    return [v - FIELD_MODULUS if v > FIELD_MODULUS // 2 else v for v in flat_instances(document)]


def felts_to_signed(felts: list[list[str]]) -> list[list[int]]:
    """Signed integers of nested lists of ezkl field elements (e.g. a witness's outputs)."""
    return [[(v - FIELD_MODULUS if v > FIELD_MODULUS // 2 else v) for v in map(_felt, column)]
            for column in felts]


def dequantize(value: int, scale: int) -> float:
    """A fixed-point public value as the number it stands for: ``value / 2**scale``."""
    return math.ldexp(float(value), -scale)


def proof_bytes(document: Mapping[str, Any]) -> bytes:
    """The SNARK proof itself (what the verifier contract receives as `proof`)."""
    proof = _ezkl_proof(document)
    try:
        data = proof["proof"]
        if isinstance(data, str):
            return bytes.fromhex(data.removeprefix("0x"))
        return bytes(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"the proof bytes cannot be read: {exc}") from None


def proof_hash(document: Mapping[str, Any]) -> str:
    """keccak-256 of ``abi.encode(bytes proof, uint256[] instances)``, hex with ``0x``."""
    from eth_abi import encode
    from eth_utils import keccak

    return "0x" + keccak(encode(["bytes", "uint256[]"], [proof_bytes(document), flat_instances(document)])).hex()


def verifier_calldata(document: Mapping[str, Any], vka: list[bytes]) -> bytes:
    """Call data of the reusable verifier's ``verifyProof(proof, instances, vka)``."""
    from eth_abi import encode

    return VERIFY_PROOF_SELECTOR + encode(["bytes", "uint256[]", "bytes32[]"],
                                          [proof_bytes(document), flat_instances(document), vka])


# ---------------------------------------------------------------------------------------------
# Verification keys
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a circuit: its ONNX name, numpy dtype, shape and fixed-point scale."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: int

    @property
    def size(self) -> int:
        """Number of values."""
        return math.prod(self.shape)

    @property
    def precision(self) -> float:
        """Largest difference between a value and its fixed-point form: half a step."""
        return math.ldexp(0.5, -self.scale)


@dataclass(frozen=True)
class ZkmlKey:
    """What checking a model's proofs takes, as the node serves it (`GET /zkml/vk/{cid}`)."""

    model_cid: str
    key_id: str
    settings: dict[str, Any]
    vk: bytes
    srs: bytes
    srs_logrows: int
    srs_kind: str
    vka: tuple[bytes, ...]
    vka_digest: str
    verifier_address: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    ezkl_version: str | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ZkmlKey:
        """Parse and check a key document (hashes of the key and SRS must match their ids)."""
        try:
            vk = base64.b64decode(document["vk"])
            srs_doc = document["srs"]
            srs = base64.b64decode(srs_doc["data"])
            key = cls(
                model_cid=str(document["model_cid"]),
                key_id=str(document["key_id"]),
                settings=dict(document["settings"]),
                vk=vk,
                srs=srs,
                srs_logrows=int(srs_doc["logrows"]),
                srs_kind=str(srs_doc.get("kind", "unknown")),
                vka=tuple(bytes.fromhex(w.removeprefix("0x")) for w in document["vka"]),
                vka_digest=str(document["vka_digest"]),
                verifier_address=document.get("verifier_address"),
                inputs=tuple(_spec(s) for s in document["inputs"]),
                outputs=tuple(_spec(s) for s in document["outputs"]),
                ezkl_version=document.get("ezkl_version"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise VerificationError(f"the node served a verification key this SDK cannot read: {exc!r}") from None
        if hashlib.sha256(vk).hexdigest() != key.key_id:
            raise VerificationError("the verification key does not match its key id")
        if "sha256" in srs_doc and hashlib.sha256(srs).hexdigest() != srs_doc["sha256"]:
            raise VerificationError("the SRS does not match its hash")
        if any(len(w) != 32 for w in key.vka):
            raise VerificationError("the verifier key artifact is not a list of 32-byte words")
        return key


def _spec(data: Mapping[str, Any]) -> TensorSpec:
    return TensorSpec(name=str(data["name"]), dtype=str(data["dtype"]),
                      shape=tuple(int(d) for d in data["shape"]), scale=int(data["scale"]))


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def _flat(value: Any, spec: TensorSpec, what: str) -> np.ndarray:
    import numpy as np

    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise VerificationError(f"{what} {spec.name!r} is not numeric")
    if spec.dtype not in ("float64", "float32", "float16"):
        arr = arr.astype(np.float64)
    else:
        arr = arr.astype(spec.dtype).astype(np.float64)  # as the node fed the model
    if arr.size != spec.size:
        raise VerificationError(f"{what} {spec.name!r} has {arr.size} values; the proof has {spec.size}")
    return arr.reshape(-1)


def check_public_values(document: Mapping[str, Any], key: ZkmlKey, model_input: Mapping[str, Any],
                        model_output: Mapping[str, Any]) -> None:
    """Raise `VerificationError` unless the proof's public inputs are `model_input` and its public
    outputs `model_output`, each value within its circuit's precision (half a fixed-point step)."""
    values = signed_instances(document)
    expected = sum(s.size for s in key.inputs) + sum(s.size for s in key.outputs)
    if len(values) != expected:
        raise VerificationError(f"the proof has {len(values)} public values; the model's circuit has {expected}")
    position = 0
    for kind, specs, tensors in (("input", key.inputs, model_input), ("output", key.outputs, model_output)):
        what = "the request's input" if kind == "input" else "the returned output"
        for spec in specs:
            if spec.name not in tensors:
                raise VerificationError(f"{what} has no tensor {spec.name!r}, which the proof covers")
            flat = _flat(tensors[spec.name], spec, what)
            tolerance = spec.precision * (1 + 1e-9) + 1e-12 * float(abs(flat).max(initial=0.0))
            for i, x in enumerate(flat.tolist()):
                proven = dequantize(values[position + i], spec.scale)
                if not abs(x - proven) <= tolerance:
                    raise VerificationError(
                        f"the proof's {kind} {spec.name!r}[{i}] is {proven!r} but {what} has {x!r} "
                        f"(the circuit's precision is ±{spec.precision:g})")
            position += spec.size


def _write_files(directory: Path, document: Mapping[str, Any], key: ZkmlKey) -> dict[str, Path]:
    paths = {name: directory / name for name in ("proof.json", "settings.json", "vk.key", "kzg.srs")}
    paths["proof.json"].write_text(json.dumps(_ezkl_proof(document)), encoding="utf-8")
    paths["settings.json"].write_text(json.dumps(key.settings), encoding="utf-8")
    paths["vk.key"].write_bytes(key.vk)
    paths["kzg.srs"].write_bytes(key.srs)
    return paths


def verify_offchain(document: Mapping[str, Any], key: ZkmlKey) -> bool:
    """Check the proof with ezkl against the key and SRS; True, or `VerificationError`."""
    ezkl = require_ezkl()
    with tempfile.TemporaryDirectory(prefix="og-zkml-verify-") as tmp:
        paths = _write_files(Path(tmp), document, key)
        try:
            ok = ezkl.verify(str(paths["proof.json"]), str(paths["settings.json"]), str(paths["vk.key"]),
                             str(paths["kzg.srs"]), False)
        except Exception as exc:
            raise VerificationError(f"the ZKML proof does not verify against model {key.model_cid}'s "
                                    f"verification key: {' '.join(str(exc).split())}") from None
    if not ok:
        raise VerificationError(f"the ZKML proof does not verify against model {key.model_cid}'s key")
    return True


# ezkl's async functions (here `create_evm_vka`) leave a runtime behind that sometimes crashes the
# interpreter at exit (SIGSEGV or SIGABRT in 1–4 runs out of 30, measured): they run in a
# short-lived child process (~0.05 s) that leaves with os._exit, never in the caller's process.
_VKA_SCRIPT = """
import asyncio, os, sys
import ezkl

async def main():
    await ezkl.create_evm_vka(*sys.argv[1:5])

try:
    asyncio.run(main())
except Exception as exc:
    sys.stderr.write(" ".join(str(exc).split()))
    sys.stderr.flush()
    os._exit(1)
os._exit(0)
"""
_vka_cache: dict[tuple[str, str, str], tuple[bytes, ...]] = {}


def evm_key_artifact(key: ZkmlKey) -> list[bytes]:
    """Recompute the verifier key artifact (VKA) of `key` with ezkl: the words the reusable
    verifier contract is given, whose keccak-256 it has registered. Memoised per key."""
    import subprocess
    import sys

    require_ezkl()
    cache_key = (key.key_id, hashlib.sha256(key.srs).hexdigest(),
                 hashlib.sha256(json.dumps(key.settings, sort_keys=True).encode()).hexdigest())
    cached = _vka_cache.get(cache_key)
    if cached is not None:
        return list(cached)
    with tempfile.TemporaryDirectory(prefix="og-zkml-vka-") as tmp:
        paths = _write_files(Path(tmp), {"proof": {"instances": [], "proof": []}}, key)
        out = Path(tmp) / "vka.bin"
        proc = subprocess.run([sys.executable, "-c", _VKA_SCRIPT, str(paths["vk.key"]), str(paths["settings.json"]),
                               str(out), str(paths["kzg.srs"])], capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.exists():
            raise VerificationError(f"ezkl could not derive the verifier key artifact: {proc.stderr.strip()[-400:]}")
        raw = out.read_bytes()
    count = int.from_bytes(raw[:8], "little")
    if len(raw) != 8 + 32 * count:
        raise VerificationError("ezkl wrote a verifier key artifact of an unexpected size")
    words = tuple(raw[8 + 32 * i: 40 + 32 * i] for i in range(count))
    _vka_cache[cache_key] = words
    return list(words)


def _onchain_flow(document: Mapping[str, Any], key: ZkmlKey) -> Flow[bool]:
    from eth_utils import keccak

    if not key.verifier_address:
        raise VerificationError("the node names no verifier contract for this model")
    words = evm_key_artifact(key)
    if tuple(words) != key.vka:
        raise VerificationError("the node's verifier key artifact is not the one of the verification key")
    digest = "0x" + keccak(b"".join(words)).hex()
    if digest != key.vka_digest.lower():
        raise VerificationError("the verifier key artifact does not match its digest")
    call = {"to": key.verifier_address, "data": "0x" + verifier_calldata(document, words).hex()}
    try:
        raw = yield Rpc("eth_call", (call, "latest"))
    except OpenGradientError as exc:
        raise VerificationError(f"the verifier contract at {key.verifier_address} rejected the proof "
                                f"({exc.message})") from None
    data = bytes.fromhex(str(raw).removeprefix("0x"))
    if len(data) < 64 or int.from_bytes(data[:32], "big") != 1:
        raise VerificationError(f"the verifier contract at {key.verifier_address} did not accept the proof")
    if "0x" + data[32:64].hex() != digest:
        raise VerificationError("the verifier contract checked the proof against another key")
    return True


def verify_onchain(client: Client, document: Mapping[str, Any], key: ZkmlKey) -> bool:
    """Check the proof through the verifier contract (an ``eth_call``); True, or `VerificationError`."""
    require_ezkl()
    return client.alpha._sync.run(_onchain_flow(document, key))


# ---------------------------------------------------------------------------------------------
# Fetching
# ---------------------------------------------------------------------------------------------


def _fetch_proof_flow(api_url: str, inference_id: str) -> Flow[dict[str, Any]]:
    try:
        document = yield HttpGetJson(f"{api_url}/zkml/proof/{inference_id}")
    except NotFoundError:
        raise VerificationError(f"the node serves no ZKML proof for inference {inference_id}") from None
    if not isinstance(document, dict):
        raise VerificationError("the node served a proof document this SDK cannot read")
    return document


def _fetch_key_flow(api_url: str, model_cid: str, key_id: str | None) -> Flow[ZkmlKey]:
    if key_id is not None:
        with _key_cache_lock:
            cached = _key_cache.get((api_url, model_cid, key_id))
        if cached is not None:
            return cached
    try:
        document = yield HttpGetJson(f"{api_url}/zkml/vk/{model_cid}")
    except NotFoundError:
        raise VerificationError(f"the node serves no ZKML verification key for model {model_cid}") from None
    key = ZkmlKey.from_document(document)
    if key.model_cid != model_cid:
        raise VerificationError(f"the node served the key of model {key.model_cid}, not {model_cid}")
    with _key_cache_lock:
        _key_cache[(api_url, model_cid, key.key_id)] = key
        while len(_key_cache) > _KEY_CACHE_SIZE:
            _key_cache.popitem(last=False)
    return key


def fetch_proof(client: Client, inference_id: str) -> dict[str, Any]:
    """The proof document the node serves for an inference id."""
    return client.alpha._sync.run(_fetch_proof_flow(client.network.api_url, inference_id))


def fetch_key(client: Client, model_cid: str) -> ZkmlKey:
    """The verification key (with settings, SRS and verifier) the node serves for a model."""
    return client.alpha._sync.run(_fetch_key_flow(client.network.api_url, model_cid, None))


# ---------------------------------------------------------------------------------------------
# Proof.verify() for kind "zkml"
# ---------------------------------------------------------------------------------------------


def _hex_bytes(data: str) -> bytes:
    return bytes.fromhex(data[2:] if data.startswith("0x") else data)


def _zkml_flow(proof: Proof, network: Network, onchain: bool) -> Flow[bool]:
    from eth_abi import decode

    from opengradient.client.alpha import _is_empty, _logs, _verify_flow, parse_api_result, zkml_reference
    from opengradient.client.codec import MODEL_OUTPUT, decode_model_input, decode_model_output
    from opengradient.types import InferenceMode

    def fail(reason: str) -> VerificationError:
        return VerificationError(f"ZKML proof of {proof.transaction_hash} does not verify: {reason}")

    yield from _verify_flow(proof, network)  # the transaction, its model, mode, input and output
    tx = yield Rpc("eth_getTransactionByHash", (proof.transaction_hash,))
    receipt = yield Rpc("eth_getTransactionReceipt", (proof.transaction_hash,))
    _cid, mode, input_tuple = decode(RUN_ARGS, _hex_bytes(tx["input"])[4:])
    if mode != _ZKML_MODE:
        raise fail("the transaction did not run in ZKML mode")
    events = _logs(receipt, None, MODEL_INFERENCE_TOPIC)
    if not events:
        raise fail("the transaction has no ModelInferenceEvent")
    inference_id = str(decode(MODEL_INFERENCE_ARGS, _hex_bytes(events[0]["data"]))[0])
    if proof.inference_id is not None and proof.inference_id != inference_id:
        raise fail(f"the transaction's inference is {inference_id}, not {proof.inference_id}")
    results = _logs(receipt, proof.contract_address, INFERENCE_RESULT_TOPIC)
    (output,) = decode([MODEL_OUTPUT], _hex_bytes(results[0]["data"]))
    if _is_empty(output):
        body = yield HttpGetJson(f"{network.api_url}/artela-network/artela-rollkit/inference/tx/{inference_id}")
        output = parse_api_result(body, InferenceMode.ZKML)
    model_output = decode_model_output(output)
    recorded = zkml_reference(receipt)
    if not recorded:
        raise fail("the transaction records no ZKML proof hash")
    if recorded["inference_id"] != inference_id:
        raise fail("the recorded ZKML proof is for another inference")
    recorded_hash = str(recorded["zkml_proof_hash"])
    if proof.zkml_proof_hash is not None and proof.zkml_proof_hash != recorded_hash:
        raise fail("the proof names another ZKML proof than the one the chain recorded")

    document = yield from _fetch_proof_flow(network.api_url, inference_id)
    if proof_hash(document) != recorded_hash:
        raise fail("the served proof is not the one whose hash the chain recorded")
    key = yield from _fetch_key_flow(network.api_url, str(proof.model_cid), document.get("key_id"))
    if document.get("key_id") not in (None, key.key_id):
        raise fail("the proof was made with another key than the one the node serves for the model")
    model_input = decode_model_input(input_tuple)
    try:
        check_public_values(document, key, model_input, model_output)
        verify_offchain(document, key)
    except VerificationError as exc:
        raise fail(exc.message) from None
    if onchain:
        try:
            yield from _onchain_flow(document, key)
        except VerificationError as exc:
            raise fail(exc.message) from None
    return True


def verify_zkml_proof(proof: Proof, client: Client, *, onchain: bool = False) -> bool:
    """`Proof.verify()` for kind ``"zkml"``: see this module's docstring for what is checked."""
    require_ezkl()
    if not proof.transaction_hash or not proof.model_cid:
        raise VerificationError("a ZKML proof names a transaction and a model")
    return client.alpha._sync.run(_zkml_flow(proof, client.network, onchain))
