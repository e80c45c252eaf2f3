"""ZKML mode against the devnet: real ezkl proofs, checked off chain and by the verifier contract.

One small MLP (8 → 16 → 2, ReLU) is uploaded and set up once for the module (its circuit is cached
by CID in the session devnet's data directory); each inference proves in about half a second.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import opengradient as og
from opengradient.client import zkml
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.zkml import MAX_PARAMETERS, UNPROVEN_HASH, VERIFIER_ADDRESS
from opengradient.proof import Proof

pytest.importorskip("ezkl", reason="ZKML needs the zkml extra: pip install 'opengradient[zkml]'")

X_A = np.array([[0.25, -1.5, 0.75, 0.1, -0.3, 1.2, -0.8, 0.5]], dtype=np.float32)
X_B = np.array([[-0.6, 0.4, 1.1, -0.2, 0.9, -1.0, 0.3, 0.05]], dtype=np.float32)


def _build_mlp(path: Path, sizes: tuple[int, ...], seed: int) -> None:
    """float32 x [1, sizes[0]] -> Dense/ReLU layers -> y [1, sizes[-1]]."""
    rng = np.random.default_rng(seed)
    inits, nodes, prev = [], [], "x"
    layers = list(zip(sizes[:-1], sizes[1:], strict=True))
    for i, (n_in, n_out) in enumerate(layers):
        w = (rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        b = (rng.normal(size=(n_out,)) * 0.1).astype(np.float32)
        inits += [helper.make_tensor(f"W{i}", TensorProto.FLOAT, w.shape, w.flatten().tolist()),
                  helper.make_tensor(f"B{i}", TensorProto.FLOAT, b.shape, b.tolist())]
        out = "y" if i == len(layers) - 1 else f"a{i}"
        nodes += [helper.make_node("MatMul", [prev, f"W{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"B{i}"], [out])]
        prev = out
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    graph = helper.make_graph(nodes, "zkml-mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, sizes[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _upload(net: Devnet, path: Path, name: str) -> str:
    client = net.client
    repo = client.model_hub.create_model(name, "built by test_zkml")
    return client.model_hub.upload(path, repo.name, repo.initialVersion).modelCid


def _block_number(net: Devnet) -> int:
    return int(net.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber",
                                    "params": []})["result"], 16)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Mlp:
    cid: str
    path: Path
    a: og.InferenceResult
    b: og.InferenceResult


@pytest.fixture(scope="module")
def mlp(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mlp]:
    path = tmp_path_factory.mktemp("zkml") / "mlp.onnx"
    _build_mlp(path, (8, 16, 2), seed=11)
    cid = _upload(devnet, path, "zkml-test-mlp")
    a = devnet.client.alpha.infer(cid, og.InferenceMode.ZKML, {"x": X_A})
    b = devnet.client.alpha.infer(cid, og.InferenceMode.ZKML, {"x": X_B})
    yield Mlp(cid, path, a, b)


@pytest.fixture(scope="module")
def key(devnet: Devnet, mlp: Mlp) -> zkml.ZkmlKey:
    return zkml.fetch_key(devnet.client, mlp.cid)


def _document(devnet: Devnet, result: og.InferenceResult) -> dict[str, Any]:
    assert result.proof is not None and result.proof.inference_id is not None
    return zkml.fetch_proof(devnet.client, result.proof.inference_id)


def test_zkml_output_is_within_the_circuits_precision_of_onnxruntime(mlp: Mlp, key: zkml.ZkmlKey) -> None:
    session = ort.InferenceSession(str(mlp.path))
    for x, result in ((X_A, mlp.a), (X_B, mlp.b)):
        expected = session.run(None, {"x": x})[0]
        assert set(result.model_output) == {"y"}  # the proof hash is in an event, not the output
        assert result.model_output["y"].shape == (1, 2)
        (out,) = key.outputs
        # Fixed-point arithmetic: each of the three layers rounds to 2^-scale.
        np.testing.assert_allclose(result.model_output["y"], expected, rtol=0, atol=2.0 ** -(out.scale - 4))
        proof = result.proof
        assert proof is not None and proof.kind == "zkml" and proof.inference_mode == "ZKML"
        assert proof.zkml_proof_hash is not None and proof.zkml_proof_hash != UNPROVEN_HASH
    assert key.srs_kind == "testing" and key.verifier_address == VERIFIER_ADDRESS
    assert key.settings["run_args"]["decomp_base"] == 128 and key.settings["run_args"]["decomp_legs"] == 4
    assert key.settings["run_args"]["param_visibility"] == "Fixed"


def test_proof_verifies_off_chain_and_on_chain(devnet: Devnet, mlp: Mlp) -> None:
    assert mlp.a.proof is not None and mlp.b.proof is not None
    assert mlp.a.proof.verify(devnet.client) is True
    assert mlp.b.proof.verify(devnet.client, onchain=True) is True
    # A proof is plain data: rebuilt from JSON it still verifies.
    restored = Proof.from_dict(mlp.a.proof.to_dict())
    assert restored.verify(devnet.client) is True


def test_proof_of_another_input_does_not_verify(devnet: Devnet, mlp: Mlp, key: zkml.ZkmlKey) -> None:
    proof_a, proof_b = mlp.a.proof, mlp.b.proof
    assert proof_a is not None and proof_b is not None
    # A's transaction with B's proof: the chain recorded A's proof hash and inference.
    swapped = replace(proof_a, inference_id=proof_b.inference_id, zkml_proof_hash=proof_b.zkml_proof_hash)
    with pytest.raises(og.VerificationError, match="inference"):
        swapped.verify(devnet.client)
    # B's proof checked against A's request and output: its public inputs are B's.
    doc_b = _document(devnet, mlp.b)
    with pytest.raises(og.VerificationError, match="the proof's input 'x'"):
        zkml.check_public_values(doc_b, key, {"x": X_A}, mlp.a.model_output)
    # B's proof with A's input written into its public values: the proof itself breaks,
    # off chain and in the verifier contract.
    doc_a = _document(devnet, mlp.a)
    forged = copy.deepcopy(doc_b)
    forged["proof"]["instances"][0][:8] = doc_a["proof"]["instances"][0][:8]
    with pytest.raises(og.VerificationError, match="does not verify"):
        zkml.verify_offchain(forged, key)
    with pytest.raises(og.VerificationError, match="rejected the proof"):
        zkml.verify_onchain(devnet.client, forged, key)


def test_changed_output_does_not_verify(devnet: Devnet, mlp: Mlp, key: zkml.ZkmlKey) -> None:
    doc = _document(devnet, mlp.a)
    (out,) = key.outputs
    changed = {"y": mlp.a.model_output["y"] + 4 * out.precision}
    zkml.check_public_values(doc, key, {"x": X_A}, mlp.a.model_output)
    with pytest.raises(og.VerificationError, match="the proof's output 'y'"):
        zkml.check_public_values(doc, key, {"x": X_A}, changed)
    # The proof's own output value changed by one step: ezkl and the verifier contract reject it,
    # and it is no longer the proof whose hash the chain recorded.
    tampered = copy.deepcopy(doc)
    last = tampered["proof"]["instances"][0][-1]
    value = (int.from_bytes(bytes.fromhex(last), "little") + 1) % zkml.FIELD_MODULUS
    tampered["proof"]["instances"][0][-1] = value.to_bytes(32, "little").hex()
    assert zkml.proof_hash(tampered) != mlp.a.proof.zkml_proof_hash  # type: ignore[union-attr]
    with pytest.raises(og.VerificationError, match="does not verify"):
        zkml.verify_offchain(tampered, key)
    with pytest.raises(og.VerificationError, match="rejected the proof"):
        zkml.verify_onchain(devnet.client, tampered, key)


def test_model_too_large_to_prove_is_refused(devnet: Devnet, tmp_path: Path) -> None:
    path = tmp_path / "big.onnx"
    _build_mlp(path, (64, 128, 64, 4), seed=3)  # 16,836 parameters
    cid = _upload(devnet, path, "zkml-test-too-large")
    x = {"x": np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 64)}
    before = _block_number(devnet)
    with pytest.raises(og.ContractRevertError, match="too large to prove in ZKML mode") as caught:
        devnet.client.alpha.infer(cid, og.InferenceMode.ZKML, x)
    assert f"{MAX_PARAMETERS:,} parameters" in caught.value.reason and "VANILLA" in caught.value.reason
    assert _block_number(devnet) == before  # refused at gas estimation: nothing was sent
    assert devnet.client.alpha.infer(cid, og.InferenceMode.VANILLA, x).model_output["y"].shape == (1, 4)


def test_model_with_few_parameters_but_a_large_circuit_is_refused(devnet: Devnet, tmp_path: Path) -> None:
    # 72 weights, but a 3×3 convolution over 28×28 is a circuit of ~274,000 rows (~80 s to prove).
    weights = np.random.default_rng(0).normal(size=72).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W"], ["c"], strides=[1, 1], pads=[0, 0, 0, 0], kernel_shape=[3, 3],
                          dilations=[1, 1], group=1),
         helper.make_node("Relu", ["c"], ["r"]), helper.make_node("ReduceSum", ["r"], ["y"], keepdims=0)],
        "zkml-conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        [helper.make_tensor("W", TensorProto.FLOAT, [8, 1, 3, 3], weights.tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "conv.onnx"))
    cid = _upload(devnet, tmp_path / "conv.onnx", "zkml-test-conv")
    x = {"x": np.linspace(-1, 1, 784, dtype=np.float32).reshape(1, 1, 28, 28)}
    with pytest.raises(og.ContractRevertError, match=r"too large to prove in ZKML mode.* rows"):
        devnet.client.alpha.infer(cid, og.InferenceMode.ZKML, x)


def test_model_with_strings_cannot_be_proven(devnet: Devnet) -> None:
    model = devnet.model("text-normalizer")
    with pytest.raises(og.ContractRevertError, match="cannot be proven in ZKML mode: its input 'text'"):
        devnet.client.alpha.infer(model.cid, og.InferenceMode.ZKML, model.example_input)


def test_simulation_computes_the_circuit_output_without_a_proof(devnet: Devnet, mlp: Mlp) -> None:
    from eth_abi import decode

    from opengradient.client.alpha import prepare_inference
    from opengradient.client.codec import MODEL_OUTPUT, decode_model_output

    prepared = prepare_inference(mlp.cid, og.InferenceMode.ZKML, {"x": X_A})
    raw = devnet.client.alpha._sync.rpc.call(
        "eth_call", {"to": devnet.network.contract_address, "data": "0x" + prepared.calldata.hex()}, "latest")
    (output,) = decode([MODEL_OUTPUT], bytes.fromhex(raw[2:]))
    assert output[3] is True  # is_simulation_result
    decoded = decode_model_output(output)
    assert set(decoded) == {"y"}  # the output is what the model produced, nothing else
    np.testing.assert_array_equal(decoded["y"], mlp.a.model_output["y"])


def test_verifying_without_ezkl_says_how_to_install_it(devnet: Devnet, mlp: Mlp,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ezkl", None)  # import ezkl -> ImportError
    assert mlp.a.proof is not None
    with pytest.raises(og.MissingExtraError, match=r"pip install 'opengradient\[zkml\]'"):
        mlp.a.proof.verify(devnet.client)


def test_node_without_ezkl_refuses_zkml_with_the_install_command(devnet: Devnet,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devnet.zkml, "available", lambda: False)
    model = devnet.model("price-regression")
    with pytest.raises(og.ContractRevertError, match=r"needs the ezkl package .*pip install 'opengradient\[zkml\]'"):
        devnet.client.alpha.infer(model.cid, og.InferenceMode.ZKML, model.example_input)


def test_shipped_model_proven_and_verified_over_http(devnet_http: Devnet) -> None:
    model = devnet_http.model("price-regression")
    result = devnet_http.client.alpha.infer(model.cid, og.InferenceMode.ZKML, model.example_input)
    assert result.model_output["Y"].tolist() == [[11.125]]  # 1·0.5 − 2·0.25 + 3·1 + 4·2 + 0.125, exact in fixed point
    assert result.proof is not None and result.proof.kind == "zkml"
    assert result.proof.verify(devnet_http.client) is True


def test_verifier_artifact_was_compiled_from_the_committed_source() -> None:
    import hashlib
    import json

    from opengradient.devnet.services.zkml.verifier import ARTIFACT_PATH, SOURCE_PATH

    artifact = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))
    assert artifact["sourceHash"] == hashlib.sha256(SOURCE_PATH.read_bytes()).hexdigest(), (
        "stale verifier artifact: run `python -m opengradient.devnet.services.zkml.build`")
    assert artifact["compiler"] == "solc-js 0.8.20"


def test_verifier_build_check_passes() -> None:
    """ezkl still renders the committed verifier (for any circuit) and solc-js 0.8.20 still
    compiles it to the committed artifact. Needs node and `npm install`; skipped otherwise."""
    import shutil
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    if shutil.which("node") is None:
        pytest.skip("node is not installed; solc-js cannot run")
    if not (repo / "node_modules" / "solc-0820" / "package.json").exists():
        pytest.skip("node_modules/solc-0820 is missing; run `npm install` at the repo root")
    proc = subprocess.run([sys.executable, "-m", "opengradient.devnet.services.zkml.build", "--check"], cwd=repo,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
