"""Exact conversion between user tensors and the ABI values of on-chain ONNX inference.

The chain stores every number as a fixed-point pair ``(int128 value, int128 decimals)`` meaning
``value / 10**decimals``. A model's input must reach the chain as the exact decimal the user wrote,
so numbers are converted from their shortest round-trip decimal text (``repr`` for Python floats,
numpy's shortest repr *for the dtype's own precision* for numpy floats), never through binary
arithmetic. Decoding goes the other way exactly (``decimal.Decimal``) or correctly rounded
(``float``).

Tensor shapes (Solidity structs, as eth_abi encodes and decodes them):

* Number            ``(int128 value, int128 decimals)``
* number tensor     ``(string name, Number[] values, uint32[] shape)``, values flattened row-major
* string tensor     ``(string name, string[] values)`` (the ABI has no shape for strings)
* ModelInput        ``(number_tensor[] numbers, string_tensor[] strings)``
* ModelOutput       ``(number_tensor[] numbers, string_tensor[] strings,
  (string name, string value)[] jsons, bool is_simulation_result)``

Since string tensors carry no shape, `encode_model_output` adds a json entry ``"<name>.shape"``
holding the JSON list of the shape of every string tensor that is not 1-D (a devnet convention);
`decode_model_output` reshapes by it and drops the entry.

numpy is imported lazily inside the functions that need it, so importing this module (and hence
``import opengradient``) stays cheap.
"""

from __future__ import annotations

import json
import math
import operator
import sys
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Any, NoReturn

from opengradient import bounded_json
from opengradient.errors import InferenceError, InvalidInputError, OpenGradientError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "INT128_MAX",
    "INT128_MIN",
    "MODEL_INPUT",
    "MODEL_OUTPUT",
    "NUMBER_TENSOR",
    "STRING_TENSOR",
    "UINT32_MAX",
    "decode_model_input",
    "decode_model_output",
    "decode_model_output_exact",
    "encode_model_input",
    "encode_model_output",
    "fixed_point_to_float",
    "from_fixed_point",
    "to_fixed_point",
]

NUMBER_TENSOR = "(string,(int128,int128)[],uint32[])"
STRING_TENSOR = "(string,string[])"
MODEL_INPUT = f"({NUMBER_TENSOR}[],{STRING_TENSOR}[])"
MODEL_OUTPUT = f"({NUMBER_TENSOR}[],{STRING_TENSOR}[],(string,string)[],bool)"

INT128_MIN = -(2**127)
INT128_MAX = 2**127 - 1
UINT32_MAX = 2**32 - 1

# int128 has at most 39 decimal digits (2**127 = 170141183460469231731687303715884105728).
_INT128_DIGITS = 39
# Every integer of magnitude <= 2**53 and every 10**k with k <= 22 is exact in float64, so one
# IEEE division or multiplication of the two is the correctly rounded result.
_EXACT_INT_BOUND = 2**53
_EXACT_POW10_MAX = 22

Number = tuple[int, int]
NumberTensor = tuple[str, list[Number], list[int]]
StringTensor = tuple[str, list[str]]
JsonScalar = tuple[str, str]

_NUMBER_HINT = "use int, float, bool, decimal.Decimal, fractions.Fraction or a numpy number"


class _BadValueError(Exception):
    """A value cannot become a fixed-point number; the caller adds where it was found."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------


def _from_digits(negative: bool, digits: str, exponent: int, text: str) -> Number:
    """Normalise ``±digits * 10**exponent`` to ``(value, decimals)`` with decimals >= 0.

    Trailing zeros move into the exponent first, so ``120.0`` is ``(120, 0)`` and ``1.50`` is
    ``(15, 1)``. Negative decimals are never produced: the chain's readers expect decimals >= 0.
    """
    stripped = digits.rstrip("0")
    if not stripped:
        return (0, 0)  # also turns negative zero into plain 0
    exponent += len(digits) - len(stripped)
    stripped = stripped.lstrip("0")
    if exponent >= 0:
        if len(stripped) + exponent > _INT128_DIGITS:
            raise _too_large(text)
        value = int(stripped) * 10**exponent if exponent else int(stripped)
        decimals = 0
    else:
        value = int(stripped) if len(stripped) <= _INT128_DIGITS else INT128_MAX + 1
        decimals = -exponent
        if decimals > INT128_MAX:
            raise _BadValueError(
                f"{text} needs {decimals} decimals, beyond the int128 range of the chain",
                "round it to fewer decimal places",
            )
    if negative:
        value = -value
    if not INT128_MIN <= value <= INT128_MAX:
        if decimals == 0:
            raise _too_large(text)
        raise _BadValueError(
            f"{text} has {len(stripped)} significant digits, more than the chain's int128 "
            "fixed-point numbers can hold (at most 38)",
            "round it to fewer digits, e.g. with decimal.Decimal.quantize or float",
        )
    return (value, decimals)


def _too_large(text: str) -> _BadValueError:
    return _BadValueError(
        f"{text} is too large for the chain's int128 fixed-point numbers "
        "(the magnitude must stay below 2**127, about 1.7e38)",
        "rescale the values, for example divide them by a power of ten",
    )


def _from_text(text: str) -> Number:
    """Parse finite decimal text such as ``-1.25e-07``, ``120.0`` or ``1.e+10`` exactly."""
    body = text
    negative = body.startswith("-")
    if negative or body.startswith("+"):
        body = body[1:]
    mantissa, _, exp = body.partition("e")
    whole, _, frac = mantissa.partition(".")
    return _from_digits(negative, whole + frac, (int(exp) if exp else 0) - len(frac), text)


def _check_int(x: int) -> Number:
    if not INT128_MIN <= x <= INT128_MAX:
        raise _BadValueError(
            f"integer {x} is outside the chain's int128 range [-2**127, 2**127 - 1]",
            "rescale the values before sending",
        )
    return (x, 0)


def _non_finite(x: float) -> NoReturn:
    if math.isnan(x):
        raise _BadValueError(
            "NaN cannot be stored on chain",
            "replace or drop NaN values before sending, e.g. with numpy.nan_to_num",
        )
    raise _BadValueError(
        f"{'-' if x < 0 else ''}infinity cannot be stored on chain",
        "clip the values to a finite range before sending",
    )


def _from_float(x: float) -> Number:
    if not math.isfinite(x):
        _non_finite(x)
    return _from_text(float.__repr__(x))


def _from_decimal(x: Decimal) -> Number:
    if not x.is_finite():
        _non_finite(float("nan") if x.is_nan() else float(x))
    sign, digits, exponent = x.as_tuple()
    assert isinstance(exponent, int)
    return _from_digits(bool(sign), "".join(map(str, digits)), exponent, str(x))


def _from_fraction(x: Fraction) -> Number:
    den = x.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        raise _BadValueError(
            f"Fraction {x} has no finite decimal expansion",
            "convert it with float() or round it to a decimal.Decimal first",
        )
    decimals = max(twos, fives)
    value = x.numerator * 10**decimals // x.denominator
    while decimals and value % 10 == 0:
        value //= 10
        decimals -= 1
    _check_int(value)
    if decimals > INT128_MAX:  # pragma: no cover - would need a denominator of 2**(2**127)
        raise _BadValueError(f"Fraction {x} needs too many decimals for the chain")
    return (value, decimals)


def _from_numpy(x: Any, np: Any) -> Number:
    if isinstance(x, np.bool_):
        return (1 if x else 0, 0)
    if isinstance(x, np.integer):
        return _check_int(int(x))
    if isinstance(x, np.floating):
        if not np.isfinite(x):
            _non_finite(float(x))
        if x.dtype == np.float64:
            return _from_text(float.__repr__(float(x)))
        # Shortest text that round-trips in the value's OWN precision: np.float32(0.1) -> "0.1".
        return _from_text(np.format_float_scientific(x, unique=True))
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return _number(x[()])
    raise _BadValueError(f"unsupported value of type {type(x).__name__!r}", _NUMBER_HINT)


def _number(x: Any) -> Number:
    """Convert one scalar to ``(value, decimals)``, raising `_BadValueError` for anything unusable."""
    t = type(x)
    if t is float:
        return _from_float(x)
    if t is int:
        return _check_int(x)
    if t is bool:
        return (1 if x else 0, 0)
    np = sys.modules.get("numpy")  # a numpy value implies numpy is already imported
    if np is not None and isinstance(x, (np.generic, np.ndarray)):
        return _from_numpy(x, np)
    if isinstance(x, bool):  # pragma: no cover - bool cannot be subclassed
        return (1 if x else 0, 0)
    if isinstance(x, int):
        return _check_int(int(x))
    if isinstance(x, float):
        return _from_float(float(x))
    if isinstance(x, Decimal):
        return _from_decimal(x)
    if isinstance(x, Fraction):
        return _from_fraction(x)
    raise _BadValueError(f"unsupported value of type {type(x).__name__!r}", _NUMBER_HINT)


def to_fixed_point(x: Any) -> tuple[int, int]:
    """Return the chain's ``(value, decimals)`` for a number, from its exact decimal text.

    The decimal text is the one the user sees: ``repr`` for ``float``, numpy's shortest repr for
    the scalar's own precision (``np.float32(0.1) -> (1, 1)``), exact for ``int``, ``Decimal`` and
    decimal ``Fraction``s; bools become 0/1. The result is normalised (``120.0 -> (120, 0)``,
    ``-0.001 -> (-1, 3)``, ``2.5e10 -> (25000000000, 0)``). Raises `InvalidInputError` for NaN,
    infinities, values outside int128 and unsupported types.
    """
    try:
        return _number(x)
    except _BadValueError as exc:
        raise InvalidInputError(f"cannot convert {_short_repr(x)}: {exc.message}",
                                hint=exc.hint) from None


def from_fixed_point(value: int, decimals: int) -> Decimal:
    """Return ``value / 10**decimals`` exactly, as a `decimal.Decimal` (any precision).

    Negative ``decimals`` (possible in data read from the chain) mean ``value * 10**-decimals``.
    """
    v, d = _as_int(value, "value"), _as_int(decimals, "decimals")
    try:
        # Decimal's string constructor is exact whatever the context precision.
        return Decimal(f"{v}E{-d}")
    except (InvalidOperation, OverflowError, ValueError):
        raise InvalidInputError(
            f"fixed-point number ({v}, {d}) has an exponent beyond what decimal.Decimal supports"
        ) from None


def fixed_point_to_float(value: int, decimals: int) -> float:
    """Return ``value / 10**decimals`` as the correctly rounded float (±inf on overflow)."""
    v, d = _as_int(value, "value"), _as_int(decimals, "decimals")
    return _pair_to_float(v, d)


def _pair_to_float(v: int, d: int) -> float:
    if -_EXACT_INT_BOUND <= v <= _EXACT_INT_BOUND and -_EXACT_POW10_MAX <= d <= _EXACT_POW10_MAX:
        return v / _POW10[d] if d >= 0 else v * _POW10[-d]
    # float() of decimal text is correctly rounded (and gives 0.0 / ±inf out of range).
    return float(f"{v}e{-d}")


_POW10 = [float(10**k) for k in range(_EXACT_POW10_MAX + 1)]


def _as_int(x: Any, what: str) -> int:
    if type(x) is int:
        return x
    if isinstance(x, bool):
        raise InvalidInputError(f"fixed-point {what} must be an integer, got bool")
    try:
        return operator.index(x)
    except TypeError:
        raise InvalidInputError(
            f"fixed-point {what} must be an integer, got {type(x).__name__}"
        ) from None


def _short_repr(x: Any, limit: int = 60) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Encoding tensors
# ---------------------------------------------------------------------------------------------


def _position(flat_index: int, shape: Sequence[int]) -> str:
    """Row-major multi-index of a flat position, as ``" at [i, j]"`` ("" for scalars)."""
    if not shape:
        return ""
    index = []
    for dim in reversed(shape):
        flat_index, rem = divmod(flat_index, dim) if dim else (flat_index, 0)
        index.append(rem)
    return " at [" + ", ".join(str(i) for i in reversed(index)) + "]"


def _fail_at(name: str, flat_index: int, shape: Sequence[int], exc: _BadValueError) -> NoReturn:
    raise InvalidInputError(
        f"tensor {name!r}{_position(flat_index, shape)}: {exc.message}", hint=exc.hint
    ) from None


def _convert_all(name: str, items: list[Any], shape: Sequence[int], convert: Any) -> list[Number]:
    """Convert every item; on failure, report the first bad item with its position."""
    try:
        return [convert(x) for x in items]
    except _BadValueError:
        for i, x in enumerate(items):
            try:
                convert(x)
            except _BadValueError as exc:
                _fail_at(name, i, shape, exc)
        raise  # pragma: no cover - a converter that fails only once


def _check_shape(name: str, shape: Sequence[int]) -> list[int]:
    for dim in shape:
        if dim > UINT32_MAX:
            raise InvalidInputError(
                f"tensor {name!r}: dimension {dim} of shape {tuple(shape)} does not fit uint32"
            )
    return [int(d) for d in shape]


def _numeric_array(name: str, arr: Any, np: Any) -> list[Number]:
    """Fixed-point pairs of a numeric or bool array, flattened row-major."""
    flat = arr.ravel(order="C")
    kind = arr.dtype.kind
    if kind == "b":
        return [(1, 0) if v else (0, 0) for v in flat.tolist()]
    if kind in "iu":
        return [(v, 0) for v in flat.tolist()]  # (u)int64 always fits int128
    bad = ~np.isfinite(flat)
    if bad.any():
        i = int(np.argmax(bad))
        try:
            _non_finite(float(flat[i]))
        except _BadValueError as exc:
            _fail_at(name, i, arr.shape, exc)
    if arr.dtype == np.float64:
        texts = [float.__repr__(v) for v in flat.tolist()]
    else:
        # float16/float32/longdouble: numpy's shortest repr for the dtype's own precision.
        fmt = np.format_float_scientific
        texts = [fmt(v, unique=True) for v in flat]
    return _convert_all(name, texts, arr.shape, _from_text)


def _from_leaves(name: str, leaves: list[Any], shape: Sequence[int]) -> tuple[str, list[Any]]:
    """Classify flat leaves as a string tensor or a number tensor."""
    is_str = [isinstance(x, str) for x in leaves]
    if all(is_str):
        return "s", [str(x) for x in leaves]
    if any(is_str):
        first_str = is_str.index(True)
        first_num = is_str.index(False)
        raise InvalidInputError(
            f"tensor {name!r} mixes strings and numbers (a string{_position(first_str, shape)}, "
            f"a {type(leaves[first_num]).__name__}{_position(first_num, shape)})",
            hint="a tensor holds either only numbers or only strings; split it in two",
        )
    return "n", _convert_all(name, leaves, shape, _number)


def _from_array(name: str, arr: Any, np: Any) -> tuple[str, list[int], list[Any]]:
    shape = _check_shape(name, arr.shape)
    kind = arr.dtype.kind
    if kind in "biuf":
        return "n", shape, _numeric_array(name, arr, np)
    if kind == "U":
        return "s", shape, [str(x) for x in arr.ravel(order="C").tolist()]
    if kind == "O":
        leaves = arr.ravel(order="C").tolist()
        if not leaves:
            raise InvalidInputError(
                f"cannot infer dtype of empty object array for {name!r}",
                hint="give empty tensors a numeric or str dtype, e.g. numpy.zeros((0, 3))",
            )
        kind_, values = _from_leaves(name, leaves, shape)
        return kind_, shape, values
    if kind == "S":
        raise InvalidInputError(
            f"tensor {name!r} holds bytes (dtype {arr.dtype}); only str and numbers are supported",
            hint="decode it first, e.g. arr.astype(str)",
        )
    if kind == "c":
        raise InvalidInputError(
            f"tensor {name!r} is complex (dtype {arr.dtype}); the chain stores real numbers only",
            hint="send the real and imaginary parts as two tensors",
        )
    raise InvalidInputError(
        f"tensor {name!r} has unsupported dtype {arr.dtype}",
        hint="use a numeric, bool or str dtype",
    )


_MAX_DEPTH = 64  # deeper nesting is a mistake (or a list that contains itself), not a tensor


def _is_nested(x: Any, np: Any) -> bool:
    if isinstance(x, (list, tuple)):
        return True
    return np is not None and isinstance(x, np.ndarray) and x.ndim > 0


def _from_nested(name: str, value: Any, np: Any) -> tuple[list[int], list[Any]]:
    """Infer the shape of nested lists/tuples level by level and return the flat leaves."""
    shape: list[int] = []
    level: list[Any] = [value]
    while True:
        if len(shape) > _MAX_DEPTH:
            raise InvalidInputError(f"tensor {name!r} is nested more than {_MAX_DEPTH} levels deep",
                                    hint="is it a list that contains itself?")
        if not _is_nested(level[0], np):
            for i, node in enumerate(level):
                if _is_nested(node, np):
                    raise InvalidInputError(
                        f"ragged nested list for {name!r}: the element{_position(i, shape)} is a "
                        f"list but the element{_position(0, shape)} is a scalar",
                        hint="every row must have the same length; pad the rows or use separate tensors",
                    )
            return shape, level
        n = len(level[0])
        for i, node in enumerate(level):
            if not _is_nested(node, np):
                raise InvalidInputError(
                    f"ragged nested list for {name!r}: the element{_position(i, shape)} is a "
                    f"scalar but the element{_position(0, shape)} is a list",
                    hint="every row must have the same length; pad the rows or use separate tensors",
                )
            if len(node) != n:
                raise InvalidInputError(
                    f"ragged nested list for {name!r}: the element{_position(i, shape)} has "
                    f"length {len(node)} but the element{_position(0, shape)} has length {n}",
                    hint="every row must have the same length; pad the rows or use separate tensors",
                )
        if n == 0:
            raise InvalidInputError(
                f"cannot infer dtype of empty list for {name!r}",
                hint="pass empty tensors as numpy arrays with a dtype, e.g. numpy.zeros((0, 3))",
            )
        shape.append(n)
        level = [child for node in level for child in node]


def _encode_tensor(name: str, value: Any) -> tuple[str, list[int], list[Any]]:
    """Return ("n", shape, pairs) for a number tensor or ("s", shape, strs) for a string one."""
    if isinstance(value, str):
        return "s", [], [str(value)]
    np = sys.modules.get("numpy")
    if isinstance(value, (list, tuple)):
        shape, leaves = _from_nested(name, value, np)
        _check_shape(name, shape)
        kind, values = _from_leaves(name, leaves, shape)
        return kind, shape, values
    if np is not None and isinstance(value, np.ndarray):
        return _from_array(name, value, np)
    if np is not None and isinstance(value, np.generic):
        if isinstance(value, np.str_):
            return "s", [], [str(value)]
        return _from_array(name, np.asarray(value), np)
    if hasattr(value, "__array__") and not isinstance(value, (int, float, Decimal, Fraction)):
        import numpy

        return _from_array(name, numpy.asarray(value), numpy)
    try:
        return "n", [], [_number(value)]
    except _BadValueError as exc:
        _fail_at(name, 0, [], exc)


def _check_names(names: Iterable[Any], what: str) -> list[str]:
    result: list[str] = []
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise InvalidInputError(
                f"{what} names must be str, got {type(name).__name__} {_short_repr(name)}"
            )
        text = str(name)
        if not text:
            raise InvalidInputError(f"{what} names must not be empty")
        if text in seen:
            raise InvalidInputError(f"duplicate {what} name {text!r}")
        seen.add(text)
        result.append(text)
    return result


def _require_mapping(x: Any, what: str) -> None:
    if not isinstance(x, Mapping):
        raise InvalidInputError(
            f"{what} must be a mapping of tensor name to value, got {type(x).__name__}",
            hint='for example {"x": [[1.0, 2.0]], "label": "cat"}',
        )


def encode_model_input(model_input: Mapping[str, Any]) -> tuple[list[NumberTensor], list[StringTensor]]:
    """Turn ``{name: tensor}`` into the ``ModelInput`` tuple ``(numbers, strings)`` for eth_abi.

    Values may be Python numbers (shape ``[]``), nested lists/tuples (shape inferred), numpy
    arrays or scalars of any numeric, bool or str dtype, ``str`` or (nested) lists of ``str``.
    Numbers keep their exact decimal text (see `to_fixed_point`). String tensors are flattened
    row-major; the ABI cannot carry their shape. Raises `InvalidInputError` naming the tensor.
    """
    _require_mapping(model_input, "model_input")
    names = _check_names(model_input.keys(), "tensor")
    numbers: list[NumberTensor] = []
    strings: list[StringTensor] = []
    for name, value in zip(names, model_input.values(), strict=True):
        kind, shape, values = _encode_tensor(name, value)
        if kind == "n":
            numbers.append((name, values, shape))
        else:
            strings.append((name, values))
    return numbers, strings


def encode_model_output(
    tensors: Mapping[str, Any],
    *,
    is_simulation_result: bool = False,
    jsons: Mapping[str, Any] | None = None,
) -> tuple[list[NumberTensor], list[StringTensor], list[JsonScalar], bool]:
    """Build the ``ModelOutput`` tuple for eth_abi from ``{name: array}`` (used by the devnet).

    Numeric arrays become number tensors (floats by their dtype's shortest repr, ints exact,
    bools 0/1); string arrays become flattened string tensors plus a ``"<name>.shape"`` json entry
    when they are not 1-D. ``jsons`` values are serialised with `json.dumps`.
    """
    _require_mapping(tensors, "tensors")
    names = _check_names(tensors.keys(), "tensor")
    numbers: list[NumberTensor] = []
    strings: list[StringTensor] = []
    json_entries: list[JsonScalar] = []
    for name, value in zip(names, tensors.values(), strict=True):
        kind, shape, values = _encode_tensor(name, value)
        if kind == "n":
            numbers.append((name, values, shape))
        else:
            strings.append((name, values))
            if len(shape) != 1:
                json_entries.append((f"{name}.shape", json.dumps(shape, separators=(",", ":"))))
    if jsons is not None:
        _require_mapping(jsons, "jsons")
        for name, value in zip(_check_names(jsons.keys(), "json"), jsons.values(), strict=True):
            try:
                text = json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"json {name!r} is not JSON-serialisable: {exc}") from None
            json_entries.append((name, text))
    _check_names((n for n, _ in json_entries), "json")  # e.g. "x.shape" given twice
    return numbers, strings, json_entries, bool(is_simulation_result)


# ---------------------------------------------------------------------------------------------
# Decoding tensors
# ---------------------------------------------------------------------------------------------


def _field(obj: Any, index: int, key: str, what: str, err: type[OpenGradientError],
           default: Any = ...) -> Any:
    """Field of an ABI tuple, or of a mapping with named fields (web3 AttributeDict, JSON)."""
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
    elif isinstance(obj, (list, tuple)):
        if len(obj) > index:
            return obj[index]
    else:
        raise err(f"{what} must be a tuple or a mapping, got {type(obj).__name__}")
    if default is not ...:
        return default
    raise err(f"{what} has no field {key!r}")


def _list(obj: Any, what: str, err: type[OpenGradientError]) -> list[Any] | tuple[Any, ...]:
    if obj is None:
        return []
    if not isinstance(obj, (list, tuple)):
        raise err(f"{what} must be a list, got {type(obj).__name__}")
    return obj


def _int_field(x: Any, what: str, err: type[OpenGradientError]) -> int:
    if type(x) is int:
        return x
    if isinstance(x, bool):
        raise err(f"{what} must be an integer, got bool")
    if isinstance(x, str):
        try:
            return int(x.strip())
        except ValueError:
            raise err(f"{what} must be an integer, got {_short_repr(x)}") from None
    if isinstance(x, float) and x.is_integer():
        return int(x)
    try:
        return operator.index(x)
    except TypeError:
        raise err(f"{what} must be an integer, got {type(x).__name__}") from None


def _pairs(values: Any, name: str, err: type[OpenGradientError]) -> tuple[list[int], list[int]]:
    """Split Number entries into value and decimals lists of ints."""
    values = _list(values, f"values of tensor {name!r}", err)
    vs: list[Any]
    ds: list[Any]
    try:
        vs = [v for v, _ in values]
        ds = [d for _, d in values]
    except (TypeError, ValueError):
        vs, ds = [], []
        for i, item in enumerate(values):
            what = f"value {i} of tensor {name!r}"
            vs.append(_field(item, 0, "value", what, err))
            ds.append(_field(item, 1, "decimals", what, err))
    else:
        if values and isinstance(values[0], Mapping):  # unpacking a dict gave its keys
            vs = [_field(item, 0, "value", f"value of tensor {name!r}", err) for item in values]
            ds = [_field(item, 1, "decimals", f"value of tensor {name!r}", err) for item in values]
    if not all(type(v) is int for v in vs):
        vs = [_int_field(v, f"value of tensor {name!r}", err) for v in vs]
    if not all(type(d) is int for d in ds):
        ds = [_int_field(d, f"decimals of tensor {name!r}", err) for d in ds]
    return vs, ds


def _floats(vs: list[int], ds: list[int], np: Any) -> Any:
    """Correctly rounded float64 array of ``vs[i] / 10**ds[i]`` (vectorised when exact)."""
    n = len(vs)
    try:
        v = np.array(vs, dtype=np.int64)
        d = np.array(ds, dtype=np.int64)
    except OverflowError:
        return np.array([_pair_to_float(a, b) for a, b in zip(vs, ds, strict=True)], dtype=np.float64)
    v = v.reshape(n)
    d = d.reshape(n)
    fast = ((v >= -_EXACT_INT_BOUND) & (v <= _EXACT_INT_BOUND)
            & (d >= -_EXACT_POW10_MAX) & (d <= _EXACT_POW10_MAX))
    pow10 = np.array(_POW10)[np.abs(np.where(fast, d, 0))]
    vf = v.astype(np.float64)
    out = np.where(d >= 0, vf / pow10, vf * pow10)
    if not fast.all():
        for i in np.flatnonzero(~fast).tolist():
            out[i] = _pair_to_float(vs[i], ds[i])
    return out


def _decimals_array(vs: list[int], ds: list[int], name: str, err: type[OpenGradientError],
                    np: Any) -> Any:
    out = np.empty(len(vs), dtype=object)
    try:
        out[:] = [Decimal(f"{v}E{-d}") for v, d in zip(vs, ds, strict=True)]
    except (InvalidOperation, OverflowError, ValueError):
        raise err(f"tensor {name!r} has a decimals value beyond what decimal.Decimal supports") \
            from None
    return out


def _shape_of(x: Any, what: str, err: type[OpenGradientError]) -> list[int]:
    dims = [_int_field(d, what, err) for d in _list(x, what, err)]
    if any(d < 0 for d in dims):
        raise err(f"{what} has a negative dimension: {dims}")
    return dims


def _reshape(arr: Any, shape: list[int]) -> Any:
    """Reshape when the shape accounts for every value exactly; otherwise keep 1-D."""
    if math.prod(shape) == arr.size:
        return arr.reshape(shape)
    return arr


def _str_array(values: Sequence[Any], np: Any) -> Any:
    out = np.empty(len(values), dtype=object)
    out[:] = [
        v if type(v) is str
        else v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray))
        else str(v)
        for v in values
    ]
    return out


def _json_value(text: Any, np: Any) -> Any:
    """JSON lists of numbers become numeric arrays; anything else a 0-d object array."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8", "replace")
    try:
        parsed = bounded_json.loads(text)
    except (TypeError, ValueError):
        parsed = text
    if isinstance(parsed, list):
        try:
            arr = np.array(parsed)
        except (ValueError, TypeError, OverflowError):
            arr = None
        if arr is not None and arr.dtype.kind in "biuf":
            return arr
    out = np.empty((), dtype=object)
    out[()] = parsed
    return out


def _decode_output(output: Any, exact: bool) -> dict[str, Any]:
    import numpy as np

    err = InferenceError
    if output is None:
        raise err("model output is missing")
    numbers = _list(_field(output, 0, "numbers", "model output", err, []), "numbers", err)
    strings = _list(_field(output, 1, "strings", "model output", err, []), "strings", err)
    jsons = _list(_field(output, 2, "jsons", "model output", err, []), "jsons", err)

    result: dict[str, Any] = {}
    for i, tensor in enumerate(numbers):
        what = f"number tensor {i} of the model output"
        name = str(_field(tensor, 0, "name", what, err))
        vs, ds = _pairs(_field(tensor, 1, "values", what, err, []), name, err)
        shape = _shape_of(_field(tensor, 2, "shape", what, err, []), f"shape of {name!r}", err)
        arr = _decimals_array(vs, ds, name, err, np) if exact else _floats(vs, ds, np)
        result.setdefault(name, _reshape(arr, shape))

    json_texts: dict[str, Any] = {}
    json_order: list[str] = []
    for i, entry in enumerate(jsons):
        what = f"json entry {i} of the model output"
        name = str(_field(entry, 0, "name", what, err))
        if name not in json_texts:
            json_texts[name] = _field(entry, 1, "value", what, err, "")
            json_order.append(name)

    consumed: set[str] = set()
    for i, tensor in enumerate(strings):
        what = f"string tensor {i} of the model output"
        name = str(_field(tensor, 0, "name", what, err))
        arr = _str_array(_list(_field(tensor, 1, "values", what, err, []), what, err), np)
        shape_key = f"{name}.shape"
        if shape_key in json_texts:
            str_shape = _json_shape(json_texts[shape_key])
            if str_shape is not None and math.prod(str_shape) == arr.size:
                arr = arr.reshape(str_shape)
                consumed.add(shape_key)
        result.setdefault(name, arr)

    for name in json_order:
        if name not in consumed:
            result.setdefault(name, _json_value(json_texts[name], np))
    return result


def _json_shape(text: Any) -> list[int] | None:
    try:
        shape = bounded_json.loads(text)
    except (TypeError, ValueError):
        return None
    if isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape):
        return shape
    return None


def decode_model_output(output: Any) -> dict[str, np.ndarray]:
    """Decode a ``ModelOutput`` (eth_abi tuple, or a mapping with the struct's field names).

    * number tensors -> float64 arrays (correctly rounded) of their shape; ``[]`` gives a 0-d
      array. If the shape does not account for the values exactly, the array stays 1-D.
    * string tensors -> object arrays of ``str``, 1-D unless a json entry ``"<name>.shape"``
      holds a matching JSON shape list (that entry is then consumed).
    * other json entries -> a numeric array if the JSON is a list of numbers, otherwise a 0-d
      object array holding the parsed value (``.item()`` returns it); invalid JSON is kept as text.

    When a name occurs more than once, the first occurrence wins (numbers, strings, then jsons).
    ``is_simulation_result`` is not part of the dict. Malformed data raises `InferenceError`.
    """
    return _decode_output(output, exact=False)


def decode_model_output_exact(output: Any) -> dict[str, np.ndarray]:
    """Like `decode_model_output`, but number tensors are object arrays of exact `Decimal`s.

    For callers that need more than float64 gives, e.g. int128 values or many digits.
    """
    return _decode_output(output, exact=True)


def decode_model_input(model_input: Any) -> dict[str, np.ndarray]:
    """Decode a ``ModelInput`` tuple into ``{name: array}`` (used by the devnet precompile).

    Number tensors become int64 arrays when every decimals is 0 and the values fit int64,
    otherwise correctly rounded float64 arrays (empty tensors are float64); string tensors become
    1-D object arrays of ``str``. Unlike outputs this is strict: a shape that does not match the
    number of values or a duplicate name raises `InvalidInputError`.
    """
    import numpy as np

    err = InvalidInputError
    if model_input is None:
        raise err("model input is missing")
    numbers = _list(_field(model_input, 0, "numbers", "model input", err), "numbers", err)
    strings = _list(_field(model_input, 1, "strings", "model input", err, []), "strings", err)
    result: dict[str, Any] = {}

    def add(name: Any, arr: Any) -> None:
        if not isinstance(name, str) or not name:
            raise err(f"tensor names must be non-empty str, got {_short_repr(name)}")
        if name in result:
            raise err(f"duplicate tensor name {name!r} in the model input")
        result[name] = arr

    for i, tensor in enumerate(numbers):
        what = f"number tensor {i} of the model input"
        name = _field(tensor, 0, "name", what, err)
        vs, ds = _pairs(_field(tensor, 1, "values", what, err), str(name), err)
        shape = _shape_of(_field(tensor, 2, "shape", what, err), f"shape of {name!r}", err)
        if math.prod(shape) != len(vs):
            raise err(f"tensor {name!r} has {len(vs)} values but shape {shape}")
        arr: Any = None
        if vs and not any(ds):
            try:
                arr = np.array(vs, dtype=np.int64)
            except OverflowError:
                arr = None
        if arr is None:
            arr = _floats(vs, ds, np)
        add(name, arr.reshape(shape))
    for i, tensor in enumerate(strings):
        what = f"string tensor {i} of the model input"
        name = _field(tensor, 0, "name", what, err)
        add(name, _str_array(list(_list(_field(tensor, 1, "values", what, err), what, err)), np))
    return result
