"""The small ONNX models the devnet ships, so on-chain inference works offline from the first run.

The `.onnx` files next to this module are built by `python -m opengradient.devnet.services.models.build`
(fixed weights, byte-for-byte reproducible) and committed. Importing this module is cheap: it only
describes the files and never imports onnx or onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model: its hub name, what it does, its file, and an input it runs on."""

    name: str
    description: str
    filename: str
    #: Input tensors by name as plain (nested) Python lists; cast them to the model's input types.
    example_input: dict[str, Any]

    @property
    def path(self) -> Path:
        """The committed `.onnx` file."""
        return MODELS_DIR / self.filename

    def read_bytes(self) -> bytes:
        """The model's bytes (small files; the store and the CID are computed from these)."""
        return self.path.read_bytes()


PRICE_REGRESSION = ShippedModel(
    name="price-regression",
    description="Linear regression: float32 X [1,4] -> float32 Y [1,1] (Y = X·w + b).",
    filename="price-regression.onnx",
    example_input={"X": [[1.0, 2.0, 3.0, 4.0]]},
)

RISK_CLASSIFIER = ShippedModel(
    name="risk-classifier",
    description=("Three-class classifier: float32 features [1,3] -> string label [1] "
                 "('low', 'medium' or 'high') and float32 probabilities [1,3] (softmax)."),
    filename="risk-classifier.onnx",
    example_input={"features": [[0.2, 0.5, 0.9]]},
)

MULTI_IO = ShippedModel(
    name="multi-io",
    description=("Two inputs, three outputs: float32 a [2,2] and int64 b [2] -> float32 sum [2] "
                 "(row sums of a), float32 scaled [2,2] (a * b per column), int64 count [1] "
                 "(positive entries of a)."),
    filename="multi-io.onnx",
    example_input={"a": [[1.0, -2.0], [3.0, 4.0]], "b": [2, 3]},
)

TEXT_NORMALIZER = ShippedModel(
    name="text-normalizer",
    description="String model: string text [N] -> string normalized [N] (lower-cased).",
    filename="text-normalizer.onnx",
    example_input={"text": ["Hello World", "OpenGradient DEVNET"]},
)

#: Every model the devnet publishes to its Model Hub at start.
SHIPPED_MODELS: tuple[ShippedModel, ...] = (PRICE_REGRESSION, RISK_CLASSIFIER, MULTI_IO,
                                            TEXT_NORMALIZER)


def shipped_model(name: str) -> ShippedModel:
    """The shipped model called `name`; KeyError names the ones that exist."""
    for model in SHIPPED_MODELS:
        if model.name == name:
            return model
    raise KeyError(f"no shipped model {name!r}; shipped: {', '.join(m.name for m in SHIPPED_MODELS)}")


__all__ = ["MODELS_DIR", "MULTI_IO", "PRICE_REGRESSION", "RISK_CLASSIFIER", "SHIPPED_MODELS",
           "TEXT_NORMALIZER", "ShippedModel", "shipped_model"]
