"""`client.alpha.infer` against the devnet: real transactions, real onnxruntime, real reverts."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import opengradient as og
from opengradient.devnet.node import Devnet


def _block_number(net: Devnet) -> int:
    return int(net.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber",
                                    "params": []})["result"], 16)  # type: ignore[call-overload]


def _build_mlp(path: Path) -> None:
    """A small MLP built at test time: float32 x [1,3] -> relu(x·W1+b1)·W2+b2 -> y [1,2]."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(size=(3, 5)).astype(np.float32)
    b1 = rng.normal(size=(5,)).astype(np.float32)
    w2 = rng.normal(size=(5, 2)).astype(np.float32)
    b2 = rng.normal(size=(2,)).astype(np.float32)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, a.shape, a.flatten().tolist())
             for n, a in (("W1", w1), ("B1", b1), ("W2", w2), ("B2", b2))]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "B1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["h3"]),
        helper.make_node("Add", ["h3", "B2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "test-mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_model_built_at_test_time_runs_over_http_like_onnxruntime(devnet_http: Devnet,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "mlp.onnx"
    _build_mlp(path)
    client = devnet_http.client
    repo = client.model_hub.create_model("test-mlp-http", "MLP built by the test")
    upload = client.model_hub.upload(path, repo.name, repo.initialVersion)
    x = np.array([[0.25, -1.5, 3.0]], dtype=np.float32)

    result = client.alpha.infer(upload.modelCid, og.InferenceMode.VANILLA, {"x": x})

    expected = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    assert result.model_output["y"].shape == (1, 2)
    np.testing.assert_array_equal(result.model_output["y"].astype(np.float32), expected)
    assert result.transaction_hash.startswith("0x") and len(result.transaction_hash) == 66
    assert devnet_http.url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("mode", list(og.InferenceMode))
def test_every_shipped_model_runs_in_every_mode(devnet: Devnet, mode: og.InferenceMode) -> None:
    for model in devnet.models:
        if mode is og.InferenceMode.ZKML and model.name in ("risk-classifier", "text-normalizer"):
            # String tensors have no ZKML circuit: refused with the reason (tests/devnet/test_zkml.py).
            with pytest.raises(og.ContractRevertError, match="cannot be proven in ZKML mode"):
                devnet.client.alpha.infer(model.cid, mode, model.example_input)
            continue
        session = ort.InferenceSession(str(devnet.store.path(model.cid)))
        result = devnet.client.alpha.infer(model.cid, mode, model.example_input)
        assert set(result.model_output) == {o.name for o in session.get_outputs()}
        assert result.proof is not None and result.proof.inference_mode == mode.name


def test_string_and_multi_output_models(devnet: Devnet) -> None:
    normalizer = devnet.model("text-normalizer")
    out = devnet.client.alpha.infer(normalizer.cid, "VANILLA", {"text": ["Hello World", "ABC"]})
    assert out.model_output["normalized"].tolist() == ["hello world", "abc"]

    classifier = devnet.model("risk-classifier")
    out = devnet.client.alpha.infer(classifier.cid, 0, classifier.example_input)
    assert out.model_output["label"].tolist() == ["high"]
    assert out.model_output["probabilities"].sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("model_input", "reason"),
    [
        ({"X": [1.0, 2.0]}, "input 'X' has shape [2] but the model expects [1, 4]"),
        ({"Y": [[1.0, 2.0, 3.0, 4.0]]}, "unknown input 'Y'"),
        ({"X": [["a", "b", "c", "d"]]}, "input 'X' must be numbers"),
    ],
)
def test_bad_input_reverts_with_reason_and_mines_nothing(devnet: Devnet, model_input: dict[str, object],
                                                         reason: str) -> None:
    cid = devnet.model("price-regression").cid
    before = _block_number(devnet)
    with pytest.raises(og.ContractRevertError) as caught:
        devnet.client.alpha.infer(cid, og.InferenceMode.VANILLA, model_input)
    assert reason in caught.value.reason
    assert caught.value.transaction_hash is None
    assert _block_number(devnet) == before


def test_unknown_model_is_a_typed_error_and_mines_nothing(devnet: Devnet) -> None:
    before = _block_number(devnet)
    with pytest.raises(og.ModelNotFoundError, match="model not found: bafkreinotamodel"):
        devnet.client.alpha.infer("bafkreinotamodel", og.InferenceMode.VANILLA, {"X": [[1, 2, 3, 4]]})
    assert _block_number(devnet) == before


@pytest.mark.parametrize(
    ("cid", "mode", "model_input", "match"),
    [
        ("", 0, {"X": [1.0]}, "model_cid must be a non-empty string"),
        ("cid", 7, {"X": [1.0]}, "unknown inference mode 7"),
        ("cid", "FAST", {"X": [1.0]}, "unknown inference mode 'FAST'"),
        ("cid", 0, {"X": [[1.0], [1.0, 2.0]]}, "X"),
        ("cid", 0, {"X": [float("nan")]}, "X"),
        ("cid", 0, ["not", "a", "dict"], "mapping"),
    ],
)
def test_invalid_input_fails_before_any_request(devnet: Devnet, cid: str, mode: object,
                                                model_input: object, match: str) -> None:
    before = _block_number(devnet)
    with pytest.raises(og.InvalidInputError, match=match):
        devnet.client.alpha.infer(cid, mode, model_input)  # type: ignore[arg-type]
    assert _block_number(devnet) == before


def test_concurrent_threads_from_one_key_never_collide(devnet: Devnet) -> None:
    model = devnet.model("price-regression")
    hashes: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            hashes.append(devnet.client.alpha.infer(model.cid, 0, model.example_input).transaction_hash)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(hashes)) == 8


async def test_async_twin_runs_concurrently_without_nonce_collisions(devnet: Devnet) -> None:
    model = devnet.model("multi-io")
    results = await asyncio.gather(
        *[devnet.client.alpha.ainfer(model.cid, og.InferenceMode.TEE, model.example_input)
          for _ in range(8)])
    assert len({r.transaction_hash for r in results}) == 8
    for r in results:
        np.testing.assert_array_equal(r.model_output["sum"], [-1.0, 7.0])


def test_nonce_resyncs_after_another_client_uses_the_key(devnet: Devnet) -> None:
    model = devnet.model("price-regression")
    first = devnet.new_client(devnet.accounts[3].private_key)
    second = devnet.new_client(devnet.accounts[3].private_key)
    first.alpha.infer(model.cid, 0, model.example_input)
    second.alpha.infer(model.cid, 0, model.example_input)
    # `first` still holds the nonce it used before `second` sent; it must recover by itself.
    first.alpha.infer(model.cid, 0, model.example_input)


def test_proof_verifies_and_tampering_fails(devnet: Devnet) -> None:
    model = devnet.model("price-regression")
    proof = devnet.client.alpha.infer(model.cid, 0, model.example_input).proof
    assert proof is not None and proof.kind == "onchain"
    assert proof.verify(devnet.client) is True
    assert og.Proof.from_dict(proof.to_dict()) == proof

    from dataclasses import replace

    for tampered, reason in [
        (replace(proof, output_hash="0x" + "00" * 32), "output hash"),
        (replace(proof, input_hash="0x" + "11" * 32), "input hash"),
        (replace(proof, model_cid="bafkreiother"), "ran model"),
        (replace(proof, inference_mode="ZKML"), "mode VANILLA"),
        (replace(proof, transaction_hash="0x" + "22" * 32), "not on this chain"),
        (replace(proof, chain_id=1), "chain 1"),
    ]:
        with pytest.raises(og.VerificationError, match=reason):
            tampered.verify(devnet.client)


def test_deferred_results_come_from_the_inference_api() -> None:
    with og.devnet.start(deferred_results=True) as net:
        model = net.model("price-regression")
        result = net.client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)
        np.testing.assert_array_equal(result.model_output["Y"], [[11.125]])
        assert result.proof is not None and result.proof.verify(net.client)
