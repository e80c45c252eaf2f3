"""The shipped ONNX models: they run in onnxruntime on their example inputs, and rebuild identically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opengradient.devnet.services.models import SHIPPED_MODELS, ShippedModel, shipped_model

ort = pytest.importorskip("onnxruntime")
build = pytest.importorskip("opengradient.devnet.services.models.build")

_NUMPY_TYPES: dict[str, Any] = {"tensor(float)": np.float32, "tensor(int64)": np.int64,
                                "tensor(string)": object}

#: Expected (numpy dtype kind, shape) of every output, by model.
EXPECTED: dict[str, dict[str, tuple[str, tuple[int, ...]]]] = {
    "price-regression": {"Y": ("f", (1, 1))},
    "risk-classifier": {"label": ("O", (1,)), "probabilities": ("f", (1, 3))},
    "multi-io": {"sum": ("f", (2,)), "scaled": ("f", (2, 2)), "count": ("i", (1,))},
    "text-normalizer": {"normalized": ("O", (2,))},
}


def run(model: ShippedModel, inputs: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    values = model.example_input if inputs is None else inputs
    feeds = {i.name: np.array(values[i.name], dtype=_NUMPY_TYPES[i.type])
             for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def test_catalogue_is_consistent() -> None:
    names = [m.name for m in SHIPPED_MODELS]
    assert len(set(names)) == len(names) >= 4
    assert set(names) == set(EXPECTED)
    assert {m.filename for m in SHIPPED_MODELS} == set(build.BUILDERS)
    for model in SHIPPED_MODELS:
        assert model.path.is_file(), f"{model.path} missing: run python -m opengradient.devnet.services.models.build"
        assert shipped_model(model.name) is model
    with pytest.raises(KeyError, match="price-regression"):
        shipped_model("nope")


def test_example_inputs_are_plain_python() -> None:
    def plain(value: Any) -> bool:
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)

    for model in SHIPPED_MODELS:
        assert all(plain(v) for v in model.example_input.values()), model.name


@pytest.mark.parametrize("model", SHIPPED_MODELS, ids=lambda m: m.name)
def test_model_runs_on_its_example(model: ShippedModel) -> None:
    outputs = run(model)
    assert set(outputs) == set(EXPECTED[model.name])
    for name, (kind, shape) in EXPECTED[model.name].items():
        assert outputs[name].dtype.kind == kind, (model.name, name, outputs[name].dtype)
        assert outputs[name].shape == shape, (model.name, name, outputs[name].shape)


def test_price_regression_values() -> None:
    y = run(shipped_model("price-regression"))["Y"]
    # 1*0.5 + 2*(-0.25) + 3*1 + 4*2 + 0.125
    np.testing.assert_allclose(y, [[11.125]], rtol=1e-6)
    assert y.dtype == np.float32


def test_risk_classifier_labels_and_probabilities() -> None:
    model = shipped_model("risk-classifier")
    seen = {}
    for features in ([[0.0, 0.0, 0.0]], [[0.5, 1.0, 0.0]], [[0.2, 0.5, 0.9]]):
        out = run(model, {"features": features})
        np.testing.assert_allclose(out["probabilities"].sum(), 1.0, rtol=1e-5)
        assert out["label"][0] == ["low", "medium", "high"][int(out["probabilities"].argmax())]
        seen[out["label"][0]] = features
    assert set(seen) == {"low", "medium", "high"}


def test_multi_io_values() -> None:
    out = run(shipped_model("multi-io"))
    np.testing.assert_array_equal(out["sum"], np.array([-1.0, 7.0], dtype=np.float32))
    np.testing.assert_array_equal(out["scaled"], np.array([[2.0, -6.0], [6.0, 12.0]], np.float32))
    np.testing.assert_array_equal(out["count"], np.array([3], dtype=np.int64))


def test_text_normalizer_lowercases_any_length() -> None:
    model = shipped_model("text-normalizer")
    assert list(run(model)["normalized"]) == ["hello world", "opengradient devnet"]
    assert list(run(model, {"text": ["A", "bC", "DEF", "ghi"]})["normalized"]) == ["a", "bc", "def", "ghi"]


def test_build_is_reproducible_and_matches_committed_files(tmp_path: Path) -> None:
    first = build.build(tmp_path / "a")
    second = build.build(tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    for model in SHIPPED_MODELS:
        assert (tmp_path / "a" / model.filename).read_bytes() == model.read_bytes(), (
            f"{model.filename} is stale: run python -m opengradient.devnet.services.models.build")


def test_models_pass_the_onnx_checker() -> None:
    onnx = pytest.importorskip("onnx")
    for model in SHIPPED_MODELS:
        proto = onnx.load(str(model.path))
        onnx.checker.check_model(proto, full_check=True)
        assert proto.ir_version == build.IR_VERSION
