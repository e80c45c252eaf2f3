"""Tests of the tensor codec: exact fixed-point conversion and the ModelInput/ModelOutput tuples."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from eth_abi import decode, encode
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from opengradient.client import codec
from opengradient.client.codec import (
    INT128_MAX,
    INT128_MIN,
    MODEL_INPUT,
    MODEL_OUTPUT,
    NUMBER_TENSOR,
    STRING_TENSOR,
    decode_model_input,
    decode_model_output,
    decode_model_output_exact,
    encode_model_input,
    encode_model_output,
    fixed_point_to_float,
    from_fixed_point,
    to_fixed_point,
)
from opengradient.errors import InferenceError, InvalidInputError, OpenGradientError

FAST = settings(max_examples=60, deadline=None)
# Floats whose decimal text fits int128 (|x| < 2**127, about 1.7e38); exact in float32 and float64.
F32_BOUND = float(np.float32(1e38))


def abi_input_round_trip(model_input: Mapping[str, Any]) -> Any:
    """Encode as the client does, then decode as the chain (eth_abi) does."""
    data = encode([MODEL_INPUT], [encode_model_input(model_input)])
    return decode([MODEL_INPUT], data)[0]


def abi_output_round_trip(tensors: Mapping[str, Any], **kwargs: Any) -> Any:
    data = encode([MODEL_OUTPUT], [encode_model_output(tensors, **kwargs)])
    return decode([MODEL_OUTPUT], data)[0]


# --------------------------------------------------------------------------------------------
# ABI type strings
# --------------------------------------------------------------------------------------------


def test_abi_type_strings() -> None:
    assert NUMBER_TENSOR == "(string,(int128,int128)[],uint32[])"
    assert STRING_TENSOR == "(string,string[])"
    assert MODEL_INPUT == "((string,(int128,int128)[],uint32[])[],(string,string[])[])"
    assert MODEL_OUTPUT == (
        "((string,(int128,int128)[],uint32[])[],(string,string[])[],(string,string)[],bool)"
    )


def test_importing_the_codec_does_not_import_numpy() -> None:
    code = "import sys, opengradient.client.codec; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (1.5, (15, 1)),
        (-0.001, (-1, 3)),
        (120.0, (120, 0)),
        (1e-7, (1, 7)),
        (0.1, (1, 1)),
        (2.5e10, (25000000000, 0)),
        (-0.0, (0, 0)),
        (0.0, (0, 0)),
        (5e-324, (5, 324)),
        (0.30000000000000004, (30000000000000004, 17)),
        (7, (7, 0)),
        (-12000, (-12000, 0)),
        (INT128_MAX, (INT128_MAX, 0)),
        (INT128_MIN, (INT128_MIN, 0)),
        (True, (1, 0)),
        (False, (0, 0)),
        (Decimal("1.500"), (15, 1)),
        (Decimal("-0"), (0, 0)),
        (Decimal("-0.000"), (0, 0)),
        (Decimal("1E+5"), (100000, 0)),
        (Decimal("0.10000000000000000000000000000000000001"), (10**37 + 1, 38)),
        (Fraction(3, 8), (375, 3)),
        (Fraction(-7, 20), (-35, 2)),
        (Fraction(10, 1), (10, 0)),
        (np.float32(0.1), (1, 1)),
        (np.float32(1.1), (11, 1)),
        (np.float16(0.1), (1, 1)),
        (np.float64(0.1), (1, 1)),
        (np.longdouble("0.25"), (25, 2)),
        (np.float32(-0.0), (0, 0)),
        (np.int8(-3), (-3, 0)),
        (np.uint64(2**64 - 1), (2**64 - 1, 0)),
        (np.bool_(True), (1, 0)),
        (np.array(2.5, dtype=np.float32), (25, 1)),
    ],
)
def test_to_fixed_point_examples(x: Any, expected: tuple[int, int]) -> None:
    assert to_fixed_point(x) == expected


def test_float32_uses_its_own_shortest_repr() -> None:
    # float(np.float32(0.1)) is 0.10000000149011612; the user wrote 0.1.
    assert to_fixed_point(float(np.float32(0.1))) == (10000000149011612, 17)
    assert to_fixed_point(np.float32(0.1)) == (1, 1)


@pytest.mark.parametrize(
    ("x", "words"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "infinity"),
        (float("-inf"), "-infinity"),
        (np.float32("nan"), "NaN"),
        (np.float16("inf"), "infinity"),
        (Decimal("NaN"), "NaN"),
        (Decimal("sNaN"), "NaN"),
        (Decimal("-Infinity"), "-infinity"),
        (2**127, "int128"),
        (-(2**127) - 1, "int128"),
        (1e39, "too large"),
        (-1.7976931348623157e308, "too large"),
        (Decimal("1E+39"), "too large"),
        (Decimal("0." + "1" * 45), "significant digits"),
        (Fraction(1, 3), "no finite decimal expansion"),
        (Fraction(2**130, 1), "int128"),
        ("1.5", "'str'"),
        (None, "'NoneType'"),
        (1j, "'complex'"),
        (b"1", "'bytes'"),
        (object(), "'object'"),
        ([1.0], "'list'"),
        (np.str_("1"), "'str_'"),
        (np.complex64(1), "'complex64'"),
    ],
)
def test_to_fixed_point_errors(x: Any, words: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        to_fixed_point(x)
    assert words in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, OpenGradientError)


def test_decimals_out_of_int128_is_rejected() -> None:
    # Unreachable from real inputs (decimal.Decimal caps exponents near 1e18); checked anyway.
    with pytest.raises(codec._BadValueError, match="decimals"):
        codec._from_digits(False, "1", -(2**127), "tiny")


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (15, 1, Decimal("1.5")),
        (-1, 3, Decimal("-0.001")),
        (120, 0, Decimal(120)),
        (5, -2, Decimal(500)),
        (INT128_MAX, 0, Decimal(INT128_MAX)),
        (1, 324, Decimal("1e-324")),
        (0, 7, Decimal(0)),
    ],
)
def test_from_fixed_point_examples(value: int, decimals: int, expected: Decimal) -> None:
    assert from_fixed_point(value, decimals) == expected
    assert fixed_point_to_float(value, decimals) == float(Fraction(expected))


def test_fixed_point_to_float_is_correctly_rounded_and_saturates() -> None:
    assert fixed_point_to_float(1, 1) == 0.1
    assert fixed_point_to_float(3, 400) == 0.0
    assert fixed_point_to_float(-1, -400) == -math.inf
    big = 12345678901234567890123456789
    assert fixed_point_to_float(big, 30) == float(Fraction(big, 10**30))


@pytest.mark.parametrize(("value", "decimals"), [(1.5, 1), (1, 1.0), (True, 0), ("1", 0)])
def test_from_fixed_point_rejects_non_integers(value: Any, decimals: Any) -> None:
    with pytest.raises(InvalidInputError, match="integer"):
        from_fixed_point(value, decimals)


def test_from_fixed_point_rejects_exponents_decimal_cannot_hold() -> None:
    with pytest.raises(InvalidInputError, match="decimal.Decimal"):
        from_fixed_point(1, 2**100)


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float64_round_trip(x: float) -> None:
    text = Decimal(repr(x))
    if abs(text) > INT128_MAX:
        with pytest.raises(InvalidInputError, match="too large"):
            to_fixed_point(x)
        return
    pair = to_fixed_point(x)
    assert from_fixed_point(*pair) == text
    assert float(from_fixed_point(*pair)) == x
    assert fixed_point_to_float(*pair) == x
    value, decimals = pair
    assert decimals >= 0
    assert decimals == 0 or value % 10 != 0  # normalised


@FAST
@given(st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-F32_BOUND,
                 max_value=F32_BOUND))
def test_float32_scalar_round_trip(x: float) -> None:
    f = np.float32(x)
    pair = to_fixed_point(f)
    assert from_fixed_point(*pair) == Decimal(np.format_float_positional(f, unique=True))
    assert np.float32(fixed_point_to_float(*pair)) == f


@FAST
@given(st.integers(min_value=INT128_MIN, max_value=INT128_MAX))
def test_int128_round_trip(n: int) -> None:
    assert to_fixed_point(n) == (n, 0)
    out = decode_model_output_exact(abi_output_round_trip({"n": [n, -n if n > INT128_MIN else 0]}))
    assert out["n"].tolist() == [Decimal(n), Decimal(-n if n > INT128_MIN else 0)]
    assert out["n"].shape == (2,)


@st.composite
def decimals_in_range(draw: st.DrawFn) -> Decimal:
    mantissa = draw(st.integers(min_value=-(10**30) + 1, max_value=10**30 - 1))
    exponent = draw(st.integers(min_value=-60, max_value=8))
    return Decimal(f"{mantissa}E{exponent}")


@FAST
@given(st.lists(decimals_in_range(), min_size=1, max_size=6))
def test_decimal_round_trip(values: list[Decimal]) -> None:
    for d in values:
        assert from_fixed_point(*to_fixed_point(d)) == d
    out = decode_model_output_exact(abi_output_round_trip({"d": values}))
    assert out["d"].tolist() == values
    numbers, _ = encode_model_input({"d": values})
    assert numbers[0][1] == [to_fixed_point(d) for d in values]


# --------------------------------------------------------------------------------------------
# encode_model_input
# --------------------------------------------------------------------------------------------


def test_encode_model_input_shapes_and_kinds() -> None:
    numbers, strings = encode_model_input(
        {
            "scalar": 3.5,
            "matrix": [[1.5, -0.001], [120.0, 1e-7]],
            "ints": np.arange(6, dtype=np.int32).reshape(2, 3),
            "flags": np.array([True, False]),
            "fortran": np.asfortranarray(np.array([[1, 2], [3, 4]], dtype=np.int64)),
            "empty": np.zeros((0, 3), dtype=np.float32),
            "np_scalar": np.float32(0.1),
            "tuple": (1, 2),
            "word": "cat",
            "words": [["a", "b"], ["c", "d"]],
            "np_words": np.array(["x", "y"]),
            "obj_words": np.array(["u", "v"], dtype=object),
            "np_word": np.str_("w"),
            "obj_numbers": np.array([Decimal("1.25"), 2], dtype=object),
            "list_of_arrays": [np.array([0.5, 1.5], dtype=np.float32), np.array([2, 3])],
        }
    )
    by_name = {name: (values, shape) for name, values, shape in numbers}
    assert by_name["scalar"] == ([(35, 1)], [])
    assert by_name["matrix"] == ([(15, 1), (-1, 3), (120, 0), (1, 7)], [2, 2])
    assert by_name["ints"] == ([(i, 0) for i in range(6)], [2, 3])
    assert by_name["flags"] == ([(1, 0), (0, 0)], [2])
    assert by_name["fortran"] == ([(1, 0), (2, 0), (3, 0), (4, 0)], [2, 2])  # row-major
    assert by_name["empty"] == ([], [0, 3])
    assert by_name["np_scalar"] == ([(1, 1)], [])
    assert by_name["tuple"] == ([(1, 0), (2, 0)], [2])
    assert by_name["obj_numbers"] == ([(125, 2), (2, 0)], [2])
    assert by_name["list_of_arrays"] == ([(5, 1), (15, 1), (2, 0), (3, 0)], [2, 2])
    assert dict(strings) == {
        "word": ["cat"],
        "words": ["a", "b", "c", "d"],
        "np_words": ["x", "y"],
        "obj_words": ["u", "v"],
        "np_word": ["w"],
    }
    assert all(type(s) is str for _, values in strings for s in values)


def test_encode_model_input_without_numpy_values_does_not_need_numpy() -> None:
    code = (
        "import sys\nfrom opengradient.client.codec import encode_model_input\n"
        "print(encode_model_input({'x': [[1.5, 2]], 's': ['a']}), 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "([('x', [(15, 1), (2, 0)], [1, 2])], [('s', ['a'])]) False"


def test_encode_model_input_accepts_array_likes() -> None:
    class ArrayLike:
        def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
            return np.array([[0.25]], dtype=np.float32)

    numbers, _ = encode_model_input({"t": ArrayLike()})
    assert numbers == [("t", [(25, 2)], [1, 1])]


def test_encoded_input_goes_through_eth_abi() -> None:
    decoded = decode_model_input(
        abi_input_round_trip({"x": [[1.5, 2.25]], "n": np.array([1, -2]), "s": ["hi", "there"]})
    )
    assert decoded["x"].dtype == np.float64
    assert decoded["x"].tolist() == [[1.5, 2.25]]
    assert decoded["n"].dtype == np.int64
    assert decoded["n"].tolist() == [1, -2]
    assert decoded["s"].tolist() == ["hi", "there"]


def raises_naming(name: str, *words: str) -> Any:
    class Checker:
        def __enter__(self) -> None:
            self.ctx = pytest.raises(InvalidInputError)
            self.info = self.ctx.__enter__()

        def __exit__(self, *exc: Any) -> bool:
            handled = self.ctx.__exit__(*exc)
            message = str(self.info.value)
            assert f"'{name}'" in message, message
            for word in words:
                assert word in message, message
            return bool(handled)

    return Checker()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([[1, 2], [3]], ("ragged", "[1]", "length 1")),
        ([1, [2]], ("ragged", "[1]")),
        ([[1], 2], ("ragged", "[1]")),
        ([[[1, 2], [3, 4]], [[5, 6], [7]]], ("ragged", "[1, 1]")),
        ([], ("cannot infer dtype of empty list for 'x'",)),
        ([[], []], ("cannot infer dtype of empty list",)),
        (np.array([], dtype=object), ("cannot infer dtype",)),
        ([1.0, "a"], ("mixes strings and numbers", "[1]")),
        ([["a", "b"], ["c", 4]], ("mixes strings and numbers", "[1, 1]")),
        (np.array(["a", 1.5], dtype=object), ("mixes strings and numbers",)),
        ([1.0, float("nan")], ("NaN", "[1]")),
        (np.array([[0.0, 1.0, 2.0], [3.0, 4.0, np.inf]]), ("infinity", "[1, 2]")),
        (np.array([1.0, -np.inf], dtype=np.float32), ("-infinity", "[1]")),
        (float("nan"), ("NaN",)),
        ([None, 1], ("'NoneType'", "[0]")),
        ([1, 2**127], ("int128", "[1]")),
        ([Fraction(1, 3)], ("no finite decimal expansion",)),
        (np.array([1e39, 1.0]), ("too large", "[0]")),
        (np.array([1 + 2j]), ("complex",)),
        (np.array([b"a"]), ("bytes",)),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), ("dtype",)),
        (None, ("'NoneType'",)),
        (b"abc", ("'bytes'",)),
        ({"a": 1}, ("'dict'",)),
        (1j, ("'complex'",)),
        (np.complex64(1), ("complex",)),
        (np.broadcast_to(np.float64(1), (2**32,)), ("uint32",)),
    ],
)
def test_encode_model_input_errors_name_the_tensor(value: Any, words: tuple[str, ...]) -> None:
    with raises_naming("x", *words):
        encode_model_input({"x": value})


class PairsMapping(Mapping[Any, Any]):
    """A Mapping that may repeat keys, as only a custom Mapping can."""

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs

    def __getitem__(self, key: Any) -> Any:
        return next(v for k, v in self.pairs if k == key)

    def __iter__(self) -> Iterator[Any]:
        return iter([k for k, _ in self.pairs])

    def __len__(self) -> int:
        return len(self.pairs)


@pytest.mark.parametrize(
    ("model_input", "words"),
    [
        ([("x", 1.0)], "mapping"),
        (None, "mapping"),
        ({"": 1.0}, "empty"),
        ({1: 1.0}, "must be str"),
        ({None: 1.0}, "must be str"),
        (PairsMapping([("x", 1.0), ("x", 2.0)]), "duplicate tensor name 'x'"),
        (PairsMapping([(np.str_("x"), 1.0), ("x", 2.0)]), "duplicate tensor name 'x'"),
    ],
)
def test_encode_model_input_rejects_bad_mappings_and_names(model_input: Any, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        encode_model_input(model_input)


def test_np_str_names_become_plain_str() -> None:
    numbers, strings = encode_model_input({np.str_("x"): 1, "s": np.str_("t")})
    assert type(numbers[0][0]) is str
    assert strings == [("s", ["t"])]


# --------------------------------------------------------------------------------------------
# Arrays: round trips through eth_abi
# --------------------------------------------------------------------------------------------

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def element_strategy(dtype: np.dtype[Any]) -> st.SearchStrategy[Any]:
    if dtype.kind == "f" and dtype.itemsize >= 4:
        return hnp.from_dtype(dtype, allow_nan=False, allow_infinity=False,
                              min_value=-F32_BOUND, max_value=F32_BOUND)
    return hnp.from_dtype(dtype, allow_nan=False, allow_infinity=False)


@FAST
@given(
    hnp.arrays(
        np.float32,
        SHAPES,
        elements=st.floats(width=32, allow_nan=False, allow_infinity=False,
                           min_value=-F32_BOUND, max_value=F32_BOUND),
    )
)
def test_float32_arrays_round_trip_through_model_input(arr: np.ndarray) -> None:
    decoded = decode_model_input(abi_input_round_trip({"x": arr}))["x"]
    assert decoded.shape == arr.shape
    assert np.array_equal(decoded.astype(np.float32), arr)


@FAST
@given(
    st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.uint8, np.bool_])
    .flatmap(lambda dt: hnp.arrays(dt, SHAPES, elements=element_strategy(np.dtype(dt)))),
)
def test_number_tensor_shapes_round_trip_through_model_output(arr: np.ndarray) -> None:
    raw = abi_output_round_trip({"x": arr})
    out = decode_model_output(raw)["x"]
    assert out.dtype == np.float64
    assert out.shape == arr.shape
    exact = decode_model_output_exact(raw)["x"]
    assert exact.shape == arr.shape
    if arr.dtype.kind in "iu":  # exact; float64 would round beyond 2**53
        assert exact.tolist() == np.vectorize(Decimal, otypes=[object])(arr.astype(object)).tolist()
    else:
        assert np.array_equal(out.astype(arr.dtype), arr)


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=5)


@FAST
@given(SHAPES.flatmap(lambda shape: st.tuples(
    st.just(shape), st.lists(TEXT, min_size=math.prod(shape), max_size=math.prod(shape)))))
def test_string_tensor_shapes_round_trip_through_model_output(case: Any) -> None:
    shape, values = case
    arr = np.empty(len(values), dtype=object)  # object arrays keep trailing NULs exactly
    arr[:] = values
    arr = arr.reshape(shape) if values else np.zeros(shape, dtype=str)
    raw = encode_model_output({"s": arr})
    assert raw[1] == [("s", values)]
    assert (len(raw[2]) == 1) == (len(shape) != 1)
    out = decode_model_output(abi_output_round_trip({"s": arr}))
    assert set(out) == {"s"}  # the "s.shape" json is consumed
    assert out["s"].shape == shape
    assert out["s"].tolist() == arr.tolist()


def test_unicode_string_array_keeps_shape() -> None:
    arr = np.array([["α", "b"], ["c", "ddd"]])
    out = decode_model_output(abi_output_round_trip({"s": arr}))
    assert out["s"].shape == (2, 2)
    assert out["s"].tolist() == arr.tolist()


def test_decode_model_input_dtypes() -> None:
    model_input = (
        [
            ("i", [(1, 0), (-2, 0)], [2]),
            ("f", [(15, 1), (2, 0)], [2]),
            ("neg", [(5, -2)], []),
            ("big", [(2**100, 0)], [1]),
            ("empty", [], [0, 3]),
        ],
        [("s", ["a", "b"])],
    )
    out = decode_model_input(model_input)
    assert out["i"].dtype == np.int64
    assert out["i"].tolist() == [1, -2]
    assert out["f"].dtype == np.float64
    assert out["f"].tolist() == [1.5, 2.0]
    assert out["neg"].shape == ()
    assert out["neg"].item() == 500.0
    assert out["big"].dtype == np.float64
    assert out["big"].tolist() == [float(2**100)]
    assert out["empty"].dtype == np.float64
    assert out["empty"].shape == (0, 3)
    assert out["s"].dtype == object
    assert out["s"].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("model_input", "words"),
    [
        (([("x", [(1, 0), (2, 0)], [3])], []), "'x' has 2 values but shape [3]"),
        (([("x", [(1, 0)], [])], [("x", ["a"])]), "duplicate tensor name 'x'"),
        (([("", [(1, 0)], [])], []), "non-empty"),
        (([("x", [(1, 0)], [-1])], []), "negative"),
        (([("x", [(1.5, 0)], [1])], []), "integer"),
        (([("x", [(1,)], [1])], []), "decimals"),
        (("numbers",), "must be a list"),
        ("oops", "tuple or a mapping"),
        (None, "missing"),
    ],
)
def test_decode_model_input_errors(model_input: Any, words: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        decode_model_input(model_input)
    assert words in str(info.value)


# --------------------------------------------------------------------------------------------
# decode_model_output: leniency with network data
# --------------------------------------------------------------------------------------------


def test_decode_model_output_example() -> None:
    output = (
        [("y", [(15, 1), (-1, 3), (120, 0), (1, 7)], [2, 2]), ("s", [(42, 0)], [])],
        [("label", ["cat"])],
        [("meta", '{"a": 1}'), ("probs", "[0.25, 0.75]"), ("bad", "not json")],
        False,
    )
    out = decode_model_output(output)
    assert list(out) == ["y", "s", "label", "meta", "probs", "bad"]
    assert out["y"].tolist() == [[1.5, -0.001], [120.0, 1e-7]]
    assert out["s"].shape == ()
    assert out["s"].item() == 42.0
    assert out["label"].tolist() == ["cat"]
    assert out["meta"].shape == ()
    assert out["meta"].item() == {"a": 1}
    assert out["probs"].tolist() == [0.25, 0.75]
    assert out["bad"].item() == "not json"


@pytest.mark.parametrize(
    ("values", "shape", "expected_shape"),
    [
        ([(1, 0), (2, 0), (3, 0)], [2, 2], (3,)),  # product does not match
        ([(1, 0), (2, 0)], [], (2,)),  # empty shape but several values
        ([], [], (0,)),
        ([(1, 0)], [1, 1, 1], (1, 1, 1)),
        ([(1, 0), (2, 0)], [2, 0], (2,)),
    ],
)
def test_decode_model_output_is_lenient_with_shapes(
    values: list[tuple[int, int]], shape: list[int], expected_shape: tuple[int, ...]
) -> None:
    out = decode_model_output(([("y", values, shape)], [], [], False))
    assert out["y"].shape == expected_shape


def test_decode_model_output_accepts_mappings_and_text_numbers() -> None:
    # Shapes seen in web3 AttributeDicts and in JSON from the inference API.
    output = {
        "numbers": [{"name": "y", "values": [{"value": "15", "decimals": "1"},
                                            {"value": 2, "decimals": 0}], "shape": ["2"]}],
        "strings": [{"name": "s", "values": ["a"]}],
        "jsons": [{"name": "j", "value": "[1, 2]"}],
        "is_simulation_result": True,
    }
    out = decode_model_output(output)
    assert out["y"].tolist() == [1.5, 2.0]
    assert out["s"].tolist() == ["a"]
    assert out["j"].tolist() == [1, 2]


def test_decode_model_output_empty_and_partial() -> None:
    assert decode_model_output(([], [], [], False)) == {}
    assert decode_model_output(([("y", [(1, 0)], [1])],))["y"].tolist() == [1.0]
    assert decode_model_output({}) == {}


def test_decode_model_output_string_shape_json_rules() -> None:
    output: Any = (
        [],
        [("s", ["a", "b", "c", "d"]), ("t", ["a", "b", "c"])],
        [("s.shape", "[2, 2]"), ("t.shape", "[2, 2]"), ("u.shape", "[1]")],
        False,
    )
    out = decode_model_output(output)
    assert out["s"].shape == (2, 2)
    assert "s.shape" not in out
    assert out["t"].shape == (3,)  # shape does not match: kept 1-D and the json is returned
    assert out["t.shape"].tolist() == [2, 2]
    assert out["u.shape"].tolist() == [1]  # no string tensor "u"


def test_decode_model_output_first_occurrence_wins() -> None:
    out = decode_model_output(([("x", [(1, 0)], [])], [("x", ["a"])], [("x", "3")], False))
    assert out["x"].item() == 1.0


def test_decode_model_output_never_raises_index_or_key_error() -> None:
    bad_outputs: list[Any] = [
        "oops",
        ([("y",)], [], [], False),
        ([("y", [(1, 0)], ["a"])], [], [], False),
        ([("y", [(1,)], [1])], [], [], False),
        ([("y", [{"value": 1}], [1])], [], [], False),
        ([5], [], [], False),
        (None, None, None),
        None,
    ]
    for output in bad_outputs:
        try:
            decode_model_output(output)
        except InferenceError:
            pass


def test_decode_model_output_exact_keeps_int128() -> None:
    output: Any = ([("y", [(INT128_MAX, 0), (INT128_MIN, 38), (1, -5)], [3])], [], [], False)
    exact = decode_model_output_exact(output)["y"]
    assert exact.dtype == object
    assert exact.tolist() == [Decimal(INT128_MAX), Decimal(f"{INT128_MIN}E-38"), Decimal(100000)]
    floats = decode_model_output(output)["y"]
    assert floats.tolist() == [float(INT128_MAX), float(Fraction(INT128_MIN, 10**38)), 1e5]


def test_decode_correctly_rounds_on_every_path() -> None:
    rng = np.random.default_rng(7)
    pairs = [(int(v), int(d)) for v, d in zip(rng.integers(-(2**62), 2**62, 300),
                                                rng.integers(-30, 40, 300), strict=True)]
    pairs += [(2**53 + 1, 0), (-(2**53) - 1, 3), (9007199254740993, 22), (1, 23)]
    out = decode_model_output(([("y", pairs, [len(pairs)])], [], [], False))["y"]
    assert out.tolist() == [float(Fraction(v) / Fraction(10) ** d) for v, d in pairs]


# --------------------------------------------------------------------------------------------
# encode_model_output
# --------------------------------------------------------------------------------------------


def test_encode_model_output_example() -> None:
    numbers, strings, jsons, sim = encode_model_output(
        {"y": np.array([[0.5]], dtype=np.float32), "s": np.array([["a", "b"]]), "t": "z"},
        is_simulation_result=True,
        jsons={"meta": {"k": [1, 2]}},
    )
    assert numbers == [("y", [(5, 1)], [1, 1])]
    assert strings == [("s", ["a", "b"]), ("t", ["z"])]
    assert jsons == [("s.shape", "[1,2]"), ("t.shape", "[]"), ("meta", '{"k": [1, 2]}')]
    assert sim is True
    out = decode_model_output(abi_output_round_trip({"t": "z"}, jsons={"meta": 1}))
    assert out["t"].shape == ()
    assert out["t"].item() == "z"
    assert out["meta"].item() == 1


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"tensors": [1]}, "mapping"),
        ({"tensors": {"x": [float("nan")]}}, "'x'"),
        ({"tensors": {"x": np.array([["a"]])}, "jsons": {"x.shape": [1, 1]}},
         "duplicate json name 'x.shape'"),
        ({"tensors": {}, "jsons": {"j": float("nan")}}, "'j'"),
        ({"tensors": {}, "jsons": {"j": object()}}, "'j'"),
        ({"tensors": {}, "jsons": [1]}, "mapping"),
    ],
)
def test_encode_model_output_errors(kwargs: dict[str, Any], words: str) -> None:
    tensors = kwargs.pop("tensors")
    with pytest.raises(InvalidInputError) as info:
        encode_model_output(tensors, **kwargs)
    assert words in str(info.value)


def test_json_shape_entries_are_compact_json() -> None:
    _, _, jsons, _ = encode_model_output({"s": np.zeros((2, 0, 3), dtype=str)})
    assert jsons == [("s.shape", "[2,0,3]")]
    assert json.loads(jsons[0][1]) == [2, 0, 3]


def test_outputs_are_float64_where_0_7_4_gave_float32() -> None:
    """The documented choice: output numbers decode to correctly rounded float64, not 0.7.4's
    float32, so a fixed-point value the chain returns survives to the user's array."""
    from decimal import Decimal

    from opengradient.client.codec import decode_model_output

    btc = (650001234, 4)  # 65000.1234, a price with four decimals
    decoded = decode_model_output(([("price", [btc, (-7, 9)], [2])], [], [], False))["price"]
    assert decoded.dtype == np.float64
    assert decoded.tolist() == [65000.1234, -7e-9]
    assert float(np.float32(Decimal(btc[0]) / 10 ** Decimal(btc[1]))) == 65000.125  # what float32 keeps
