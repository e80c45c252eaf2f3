"""Build the devnet's shipped ONNX models with `onnx.helper`: `python -m opengradient.devnet.services.models.build`.

Weights are fixed constants and the protobuf is serialised deterministically, so a rebuild gives
identical bytes (and so identical CIDs); a test checks the committed files against a fresh build.
IR version 8 with opset 17 (and ai.onnx.ml 3) is old enough for every onnxruntime the devnet
supports and new enough for every operator used here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, checker, helper, numpy_helper

from opengradient.devnet.services.models import (
    MODELS_DIR,
    MULTI_IO,
    PRICE_REGRESSION,
    RISK_CLASSIFIER,
    TEXT_NORMALIZER,
)

IR_VERSION = 8
OPSET = 17
ML_OPSET = 3
PRODUCER = "opengradient-devnet"
#: Bumped by hand when a model changes, never derived from the onnx version (bytes must not drift).
PRODUCER_VERSION = "1"


def _model(graph: onnx.GraphProto, doc: str, *, ml: bool = False) -> ModelProto:
    """Wrap a graph with the fixed IR version, opsets and producer fields."""
    opsets = [helper.make_opsetid("", OPSET)]
    if ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                              producer_version=PRODUCER_VERSION, doc_string=doc)
    model.ir_version = IR_VERSION
    model.model_version = 1
    checker.check_model(model, full_check=True)
    return model


def _const(name: str, values: list[float] | list[list[float]] | list[int], dtype: type) -> TensorProto:
    """A named initializer from a literal (the only source of weights: no randomness)."""
    return numpy_helper.from_array(np.array(values, dtype=dtype), name=name)


def price_regression() -> ModelProto:
    """Y = X·w + b with four features."""
    graph = helper.make_graph(
        nodes=[helper.make_node("Gemm", ["X", "W", "B"], ["Y"], name="linear")],
        name="price_regression",
        inputs=[helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 1])],
        initializer=[_const("W", [[0.5], [-0.25], [1.0], [2.0]], np.float32),
                     _const("B", [0.125], np.float32)],
    )
    return _model(graph, PRICE_REGRESSION.description)


def risk_classifier() -> ModelProto:
    """Logits = features·W + b; softmax for probabilities; ArgMax + LabelEncoder for the label."""
    nodes = [
        helper.make_node("MatMul", ["features", "W"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "B"], ["logits"], name="bias"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
        helper.make_node("ArgMax", ["logits"], ["class_index"], name="argmax", axis=1, keepdims=0),
        helper.make_node("LabelEncoder", ["class_index"], ["label"], name="labels",
                         domain="ai.onnx.ml", keys_int64s=[0, 1, 2],
                         values_strings=["low", "medium", "high"], default_string="unknown"),
    ]
    graph = helper.make_graph(
        nodes=nodes,
        name="risk_classifier",
        inputs=[helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 3])],
        outputs=[helper.make_tensor_value_info("label", TensorProto.STRING, [1]),
                 helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3])],
        initializer=[_const("W", [[-2.0, 0.0, 2.0], [-1.0, 0.5, 1.0], [-1.5, 0.25, 3.0]], np.float32),
                     _const("B", [1.5, 0.5, -1.5], np.float32)],
    )
    return _model(graph, RISK_CLASSIFIER.description, ml=True)


def multi_io() -> ModelProto:
    """Row sums of `a`, `a` scaled column-wise by `b`, and the number of positive entries of `a`."""
    nodes = [
        helper.make_node("ReduceSum", ["a", "row_axes"], ["sum"], name="row_sum", keepdims=0),
        helper.make_node("Cast", ["b"], ["b_float"], name="cast_b", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["a", "b_float"], ["scaled"], name="scale"),
        helper.make_node("Greater", ["a", "zero"], ["positive"], name="is_positive"),
        helper.make_node("Cast", ["positive"], ["positive_int"], name="cast_positive",
                         to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["positive_int", "all_axes"], ["count_scalar"],
                         name="count_positive", keepdims=0),
        # A sum over every axis is a scalar; `count` is a 1-element tensor, easier to encode.
        helper.make_node("Reshape", ["count_scalar", "one_shape"], ["count"], name="count_vector"),
    ]
    graph = helper.make_graph(
        nodes=nodes,
        name="multi_io",
        inputs=[helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 2]),
                helper.make_tensor_value_info("b", TensorProto.INT64, [2])],
        outputs=[helper.make_tensor_value_info("sum", TensorProto.FLOAT, [2]),
                 helper.make_tensor_value_info("scaled", TensorProto.FLOAT, [2, 2]),
                 helper.make_tensor_value_info("count", TensorProto.INT64, [1])],
        initializer=[_const("row_axes", [1], np.int64), _const("all_axes", [0, 1], np.int64),
                     _const("zero", [0.0], np.float32), _const("one_shape", [1], np.int64)],
    )
    return _model(graph, MULTI_IO.description)


def text_normalizer() -> ModelProto:
    """Lower-case every string (locale "C": the only locale guaranteed to exist everywhere)."""
    graph = helper.make_graph(
        nodes=[helper.make_node("StringNormalizer", ["text"], ["normalized"], name="normalize",
                                case_change_action="LOWER", is_case_sensitive=1, locale="C")],
        name="text_normalizer",
        inputs=[helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        outputs=[helper.make_tensor_value_info("normalized", TensorProto.STRING, ["N"])],
    )
    return _model(graph, TEXT_NORMALIZER.description)


#: Builder of each shipped file, by file name.
BUILDERS: dict[str, Callable[[], ModelProto]] = {
    PRICE_REGRESSION.filename: price_regression,
    RISK_CLASSIFIER.filename: risk_classifier,
    MULTI_IO.filename: multi_io,
    TEXT_NORMALIZER.filename: text_normalizer,
}


def model_bytes(filename: str) -> bytes:
    """The serialised model of one shipped file, deterministically (same input, same bytes)."""
    return BUILDERS[filename]().SerializeToString(deterministic=True)


def build(directory: Path = MODELS_DIR) -> list[Path]:
    """Write every shipped model into `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename in BUILDERS:
        target = directory / filename
        target.write_bytes(model_bytes(filename))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: rebuild the committed models (or into `--out`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="output directory")
    args = parser.parse_args(argv)
    for path in build(args.out):
        print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
