"""Default formatters: model outputs as compact, readable text for an agent.

An agent reads a tool's answer as text, so the default is short and stable: one `name = value`
part per output tensor, numbers with six significant digits, one-element tensors as plain scalars,
long tensors cut after `MAX_VALUES` values with their shape and size. For example the devnet's
risk classifier gives::

    label = 'high'; probabilities = [0.0418405, 0.234831, 0.723329]

`to_text` is applied to whatever a formatter returns, so a formatter may return a string, a
number, an `InferenceResult`, a `ModelOutput`, or a dict of arrays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

#: At most this many values of one tensor are written out.
MAX_VALUES = 16
#: Significant digits of a number.
DIGITS = 6


def format_number(value: Any) -> str:
    """A number in at most `DIGITS` significant digits (`0.00996034`, `11.125`, `-3`, `nan`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return repr(value)
    if math.isnan(number) or math.isinf(number):
        return str(number)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.{DIGITS}g}"


def _scalar(value: Any) -> str:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return repr(value)
    return format_number(value)


def format_tensor(value: Any) -> str:
    """One tensor: a scalar when it holds one value, else its values (flattened when only one axis
    is longer than 1), cut after `MAX_VALUES` with the shape and size."""
    import numpy as np

    array = np.asarray(value)
    if array.size == 1:
        return _scalar(array.reshape(()))
    if array.size == 0:
        return f"[] (shape {'x'.join(str(d) for d in array.shape)})"
    squeezed = [d for d in array.shape if d != 1]
    flat = array.reshape(-1)
    shown = ", ".join(_scalar(v) for v in flat[:MAX_VALUES])
    shape = "x".join(str(d) for d in array.shape)
    if flat.size > MAX_VALUES:
        return f"[{shown}, …] ({flat.size} values, shape {shape})"
    if len(squeezed) > 1:
        return f"[{shown}] (shape {shape})"
    return f"[{shown}]"


def format_tensors(tensors: Mapping[str, Any]) -> str:
    """Named tensors as `name = value` parts joined by `; `, in name order."""
    if not tensors:
        return "(no output)"
    return "; ".join(f"{name} = {format_tensor(tensors[name])}" for name in sorted(tensors))


def format_model_output(output: Any) -> str:
    """A `ModelOutput` (numbers, strings and JSON values) or a dict of tensors as text."""
    numbers = getattr(output, "numbers", None)
    if isinstance(numbers, Mapping):
        parts = {**dict(numbers), **dict(getattr(output, "strings", {}) or {})}
        text = format_tensors(parts) if parts else ""
        jsons = getattr(output, "jsons", {}) or {}
        extra = "; ".join(f"{name} = {json.dumps(jsons[name], sort_keys=True, default=str)}"
                          for name in sorted(jsons))
        joined = "; ".join(t for t in (text, extra) if t)
        return joined or "(no output)"
    if isinstance(output, Mapping):
        return format_tensors(output)
    return to_text(output)


def format_inference_result(result: Any) -> str:
    """The default `model_output_formatter`: the output tensors of an `InferenceResult`."""
    return format_model_output(getattr(result, "model_output", result))


def to_text(value: Any) -> str:
    """What a tool answers for a formatter's return value."""
    if isinstance(value, str):
        return value
    if hasattr(value, "model_output") and hasattr(value, "transaction_hash"):
        return format_inference_result(value)
    if hasattr(value, "numbers") or isinstance(value, Mapping):
        return format_model_output(value)
    if isinstance(value, (int, float)) or type(value).__module__ == "numpy":
        if hasattr(value, "shape") and getattr(value, "shape", ()) != ():
            return format_tensor(value)
        return format_number(value.item() if hasattr(value, "item") else value)
    if isinstance(value, (list, tuple)):
        try:
            return json.dumps(value, default=str)
        except (TypeError, ValueError):
            return str(value)
    return str(value)
