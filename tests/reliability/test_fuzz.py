"""Property-based fuzzing of the SDK's parsers and encoders (no network).

- Tensor codec: adversarial nested structures (ragged, mixed kinds, odd leaves, odd containers, odd
  names, odd numpy dtypes) either encode to something the chain's ABI round-trips with the inferred
  shape, or fail with `InvalidInputError` — never another exception, never a hang.
- Message conversion: `chat_body` → `canonical_chat_request` → `request_hash`, the pipeline a chat
  call runs before any I/O. Whatever `chat_body` accepts is sendable JSON, hashes the same after the
  JSON round trip the gateway sees, and passes the devnet gateway's own validation.
- SSE: `SSEDecoder` recovers every event from any line framing (LF/CRLF, comments, other fields,
  arbitrary network chunking); `StreamAssembler` rebuilds text and tool calls from any split of the
  deltas, and a malformed event is an `OpenGradientError`.

Examples are derandomised (stable in CI); set OG_FUZZ_EXPLORE=1 to explore with fresh seeds and
OG_FUZZ_EXAMPLES=N for more examples per test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from typing import Any

import httpx
import numpy as np
import pytest
from eth_abi import decode, encode
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from opengradient.client.codec import (
    MODEL_INPUT,
    MODEL_OUTPUT,
    decode_model_input,
    decode_model_output,
    encode_model_input,
)
from opengradient.client.llm import chat_body
from opengradient.client.sse import SSEDecoder, StreamAssembler
from opengradient.client.tee import canonical_chat_request, request_hash
from opengradient.devnet.services.llm.gateway import _BadRequestError, _validate_chat
from opengradient.errors import InvalidInputError, OpenGradientError

FUZZ = settings(max_examples=int(os.environ.get("OG_FUZZ_EXAMPLES", "200")), deadline=None,
                derandomize=not os.environ.get("OG_FUZZ_EXPLORE"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------------------------------
# Tensor codec
# --------------------------------------------------------------------------------------------------

NP_SCALARS = st.sampled_from([np.int8(-3), np.uint64(2**64 - 1), np.float16(1.5), np.float32(np.nan),
                              np.float64(-0.0), np.bool_(True), np.str_("s"), np.bytes_(b"b"),
                              np.complex64(1j), np.datetime64("2020-01-01"), np.int64(-(2**63))])
LEAVES = st.one_of(
    st.integers(), st.integers(min_value=-(2**130), max_value=2**130),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(width=32),
    st.text(max_size=6), st.none(), st.booleans(),
    st.decimals(allow_nan=True, allow_infinity=True), st.fractions(max_denominator=10**6),
    st.binary(max_size=3), st.complex_numbers(max_magnitude=10), NP_SCALARS,
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), st.frozensets(st.integers(), max_size=2),
)
NESTED = st.recursive(
    LEAVES,
    lambda children: st.one_of(st.lists(children, max_size=4), st.lists(children, max_size=3).map(tuple),
                               st.lists(children, min_size=1, max_size=3).map(lambda xs: [xs] * 2)),
    max_leaves=40)
ARRAYS = hnp.arrays(
    dtype=st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(),
                    hnp.boolean_dtypes(), hnp.unicode_string_dtypes(max_len=3), hnp.byte_string_dtypes(max_len=2),
                    hnp.complex_number_dtypes(), hnp.datetime64_dtypes()),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3))
NAMES = st.one_of(st.text(max_size=8), st.integers(), st.none(), st.binary(max_size=2), st.just(""))


def _check_encoded(encoded: Any) -> None:
    """The ABI carries it, the chain side decodes it, and every number tensor fits its shape."""
    numbers, strings = encoded
    data = encode([MODEL_INPUT], [encoded])
    decoded = decode_model_input(decode([MODEL_INPUT], data)[0])
    for name, values, shape in numbers:
        assert math.prod(shape) == len(values)
        assert decoded[name].shape == tuple(shape)
    for name, values in strings:
        assert all(isinstance(v, str) for v in values)
        assert list(decoded[name]) == list(values)


@FUZZ
@given(st.dictionaries(st.text(min_size=1, max_size=5), st.one_of(NESTED, ARRAYS), max_size=3))
def test_codec_encodes_or_refuses_adversarial_structures(model_input: dict[str, Any]) -> None:
    try:
        encoded = encode_model_input(model_input)
    except InvalidInputError:
        return
    _check_encoded(encoded)


@FUZZ
@given(st.dictionaries(NAMES, st.integers(min_value=-5, max_value=5), max_size=3)
       | st.one_of(st.none(), st.lists(st.integers()), st.text(), st.integers()))
def test_codec_refuses_bad_mappings_and_names_with_a_typed_error(model_input: Any) -> None:
    try:
        encoded = encode_model_input(model_input)
    except InvalidInputError:
        return
    assert isinstance(model_input, dict) and all(isinstance(k, str) and k for k in model_input)
    _check_encoded(encoded)


OUTPUT_JUNK = st.recursive(
    st.one_of(st.integers(min_value=-(2**130), max_value=2**130), st.text(max_size=5), st.none(), st.booleans(),
              st.floats()),
    lambda children: st.one_of(st.lists(children, max_size=4), st.lists(children, max_size=4).map(tuple),
                               st.dictionaries(st.sampled_from(["name", "values", "shape", "value", "decimals",
                                                                "numbers", "strings", "jsons"]), children,
                                               max_size=4)),
    max_leaves=30)


@FUZZ
@given(OUTPUT_JUNK)
@example(([("x", [(1, 10**30)], [1])], [], [], False))
@example(([("x", [(1, 0)], [2**31, 2**31])], [], [], False))
@example(([], [], [("j", "{bad json")], False))
def test_decode_model_output_returns_arrays_or_a_typed_error(output: Any) -> None:
    try:
        decoded = decode_model_output(output)
    except OpenGradientError:
        return
    assert isinstance(decoded, dict)
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in decoded.items())


@FUZZ
@given(st.lists(st.tuples(st.text(min_size=1, max_size=4),
                          st.lists(st.tuples(st.integers(-(2**127), 2**127 - 1), st.integers(0, 40)), max_size=6)),
                max_size=3, unique_by=lambda t: t[0]))
def test_abi_output_round_trip_of_arbitrary_fixed_point_tensors(tensors: list[tuple[str, list[Any]]]) -> None:
    output: tuple[Any, ...] = ([(name, values, [len(values)]) for name, values in tensors], [], [], False)
    decoded = decode_model_output(decode([MODEL_OUTPUT], encode([MODEL_OUTPUT], [output]))[0])
    for name, values in tensors:
        expected = [float(Fraction(v, 10**d)) for v, d in values]
        assert decoded[name].shape == (len(values),)
        assert list(decoded[name]) == pytest.approx(expected, rel=1e-15, abs=0)


def test_codec_refuses_a_self_referential_list_without_hanging() -> None:
    program = ("from opengradient.client.codec import encode_model_input\n"
               "from opengradient.errors import InvalidInputError\n"
               "x = []\nx.append(x)\n"
               "try:\n    encode_model_input({'x': x})\nexcept InvalidInputError:\n    print('refused')\n")
    try:
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail("encode_model_input did not return within 8 s on a self-referential list")
    assert done.stdout.strip() == "refused", done.stderr


# --------------------------------------------------------------------------------------------------
# Message conversion
# --------------------------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda c: st.one_of(st.lists(c, max_size=3),
                                                             st.dictionaries(st.text(max_size=5), c, max_size=3)),
                           max_leaves=12)
TEXT = st.text(max_size=40)  # any unicode, including surrogates-free control characters
TOOL_CALL = st.fixed_dictionaries({
    "id": st.text(min_size=1, max_size=8), "type": st.just("function"),
    "function": st.fixed_dictionaries({"name": st.text(min_size=1, max_size=8),
                                       "arguments": JSON_VALUES.map(json.dumps)})})
EXTRA_KEYS = st.dictionaries(st.sampled_from(["name", "refusal", "audio", "weird", "tool_call_id"]), JSON_VALUES,
                             max_size=2)


@st.composite
def messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(1, 5))):
        role = draw(st.sampled_from(["system", "developer", "user", "assistant", "tool"]))
        message: dict[str, Any] = {**draw(EXTRA_KEYS), "role": role,
                                   "content": draw(st.one_of(TEXT, st.none()) if role == "assistant" else TEXT)}
        if role == "assistant" and draw(st.booleans()):
            message["tool_calls"] = draw(st.lists(TOOL_CALL, min_size=1, max_size=2))
        if role == "tool":
            message["tool_call_id"] = draw(st.text(min_size=1, max_size=8))
        out.append(message)
    return out


TOOLS = st.lists(st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=10)},
    optional={"description": TEXT, "parameters": st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3)})}),
    max_size=3)
CHAT_KWARGS = st.fixed_dictionaries({}, optional={
    "max_tokens": st.one_of(st.integers(min_value=1, max_value=1_000_000), st.integers(max_value=1_000_000),
                           st.floats(), st.booleans()),  # above 1e6: test_sdk_refuses_what_the_gateway_refuses
    "temperature": st.one_of(st.floats(min_value=0, max_value=2), st.floats(), st.integers(-1, 3)),
    "stop_sequence": st.one_of(st.none(), TEXT, st.lists(TEXT, max_size=3)),
    "tools": st.one_of(st.none(), TOOLS),
    "tool_choice": st.one_of(st.none(), st.sampled_from(["auto", "none", "required"]), st.text(max_size=6),
                             st.fixed_dictionaries({"type": st.just("function"),
                                                    "function": st.fixed_dictionaries({"name": TEXT})})),
    "response_format": st.one_of(st.none(), st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "json_schema"])},
        optional={"json_schema": st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3)})),
    "stream": st.booleans(),
})
MODELS = st.one_of(st.sampled_from(["gpt-4o", "openai/gpt-4o", "anthropic/claude-3.5-haiku"]), st.text(max_size=12))


def _hash_of(body: dict[str, Any]) -> bytes:
    return request_hash(canonical_chat_request(body))


@FUZZ
@given(MODELS, messages(), CHAT_KWARGS)
def test_chat_body_builds_sendable_json_that_hashes_the_same_on_both_sides(model: str, msgs: list[Any],
                                                                           kwargs: dict[str, Any]) -> None:
    try:
        body = chat_body(model, msgs, **kwargs)
    except InvalidInputError:
        return
    wire = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)  # what httpx sends
    received = json.loads(wire)
    assert _hash_of(body) == _hash_of(received)  # the gateway recomputes the same request hash
    try:
        _validate_chat(received)
    except _BadRequestError as exc:
        pytest.fail(f"the SDK accepted a body the gateway refuses: {exc.message}")


@FUZZ
@given(st.one_of(st.none(), st.text(), st.integers(), st.lists(JSON_VALUES, max_size=3),
                 st.lists(st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3), max_size=3)))
def test_chat_body_refuses_malformed_messages_with_a_typed_error(msgs: Any) -> None:
    try:
        body = chat_body("gpt-4o", msgs)
    except InvalidInputError:
        return
    assert all(m["role"] in ("system", "developer", "user", "assistant", "tool") for m in body["messages"])


@pytest.mark.parametrize("kwargs", [
    {"messages": [{"role": "user", "content": b"bytes"}]},
    {"messages": [{"role": "user", "content": {"a", "set"}}]},
    {"messages": [{"role": "user", "content": "x"}],
     "tools": [{"type": "function", "function": {"name": "f", 1: "int key"}}]},
    {"messages": [{"role": "user", "content": "x"}],
     "tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": float("nan")}}}]},
    {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "s": float("inf")}},
    {"messages": [{"role": "assistant", "content": "x", "tool_calls": "not a list"}]},
    {"messages": [{"role": "assistant", "content": "x", "tool_calls": ["not a call"]}]},
], ids=["bytes", "set", "int-key", "nan", "inf", "tool-calls-str", "tool-calls-items"])
def test_chat_input_that_is_not_json_is_an_invalid_input_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        body = chat_body("gpt-4o", **kwargs)
        _hash_of(body)
        json.dumps(body, allow_nan=False)


@pytest.mark.parametrize("kwargs", [
    {"messages": [{"role": "user", "content": 5}]},
    {"messages": [{"role": "user", "content": {"text": "hi"}}]},
    {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1_000_001},
], ids=["int-content", "object-content", "max-tokens"])
def test_sdk_refuses_what_the_gateway_refuses(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        body = chat_body("gpt-4o", **kwargs)
        try:
            _validate_chat(json.loads(json.dumps(body)))
        except _BadRequestError:
            raise AssertionError("accepted by chat_body, refused by the gateway") from None


# --------------------------------------------------------------------------------------------------
# SSE
# --------------------------------------------------------------------------------------------------

SSE_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x85\u2028\u2029"
                                          "\x0b\x0c\x1c\x1d\x1e"), max_size=30)


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[list[str], bytes]:
    """Events (each the joined data of its `data:` lines) and one serialisation of them."""
    events: list[str] = []
    out: list[str] = []
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    for _ in range(draw(st.integers(0, 6))):
        lines = draw(st.lists(SSE_TEXT, min_size=1, max_size=3))
        for line in lines:
            if draw(st.booleans()):
                out.append(": " + draw(SSE_TEXT))  # a comment
            if draw(st.booleans()):
                out.append(draw(st.sampled_from(["event: message", "id: 7", "retry: 10", "unknown: x"])))
            spaced = draw(st.booleans()) or line.startswith(" ")  # "data: x" loses exactly one space
            out.append(("data: " if spaced else "data:") + line if line or spaced else "data")
        out.append("")
        events.append("\n".join(lines))
    return events, (newline.join(out) + (newline if out else "")).encode()


@FUZZ
@given(sse_streams(), st.lists(st.integers(1, 64), max_size=20))
def test_sse_decoder_recovers_every_event_from_any_framing_and_chunking(stream: tuple[list[str], bytes],
                                                                        cuts: list[int]) -> None:
    events, raw = stream
    pieces, start = [], 0
    for size in cuts:
        pieces.append(raw[start:start + size])
        start += size
    pieces.append(raw[start:])
    response = httpx.Response(200, content=iter([p for p in pieces if p]))  # network chunking
    decoder = SSEDecoder()
    got = [d for d in (decoder.feed(line) for line in response.iter_lines()) if d is not None]
    last = decoder.flush()
    if last is not None:
        got.append(last)
    assert got == events


@st.composite
def split_answers(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """An answer (text and tool calls) and its chunks, split at arbitrary points."""
    text = draw(st.text(max_size=60))
    calls = draw(st.lists(st.tuples(st.text(min_size=1, max_size=8), JSON_VALUES.map(json.dumps)), max_size=3))
    chunks: list[dict[str, Any]] = []
    rest = text
    while rest:
        n = draw(st.integers(1, max(1, len(rest))))
        chunks.append({"choices": [{"index": 0, "delta": {"content": rest[:n]}}]})
        rest = rest[n:]
    for index, (name, arguments) in enumerate(calls):
        cut = draw(st.integers(0, len(arguments)))
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "id": f"call_{index}", "type": "function",
             "function": {"name": name, "arguments": arguments[:cut]}}]}}]})
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "function": {"arguments": arguments[cut:]}}]}}]})
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
    expected = [{"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(calls)]
    return text, expected, chunks


@FUZZ
@given(split_answers())
def test_stream_assembler_rebuilds_text_and_tool_calls_from_any_split(answer: Any) -> None:
    text, calls, chunks = answer
    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.chunk(json.dumps(chunk))
    assembler.chunk("[DONE]")
    assert assembler.done and assembler.text == text
    assert assembler.message_tool_calls() == calls
    assert assembler.usage is not None and assembler.usage.total_tokens == 7
    assert assembler.finish_reason == ("tool_calls" if calls else "stop")


@FUZZ
@given(JSON_VALUES.map(lambda v: json.dumps({"choices": [{"delta": v}]})))
@example('{"choices":[{"delta":"x"}]}')
@example('{"choices":[{"index":"a"}]}')
@example('{"choices":[{"delta":{"tool_calls":[{"index":"x"}]}}]}')
@example('{"choices":[{"delta":{"tool_calls":["x"]}}]}')
@example('{"choices":[{"delta":{"tool_calls":[{"function":"f"}]}}]}')
@example('{"choices":[{"delta":{"tool_calls":[{"index":1e400}]}}]}')
@example('{"usage":{"prompt_tokens":1e400}}')
def test_stream_assembler_refuses_malformed_events_with_a_typed_error(data: str) -> None:
    try:
        StreamAssembler().chunk(data)
    except OpenGradientError:
        pass


@FUZZ
@given(JSON_VALUES.map(json.dumps) | st.text(max_size=30))
def test_stream_assembler_never_accepts_non_object_events(data: str) -> None:
    assembler = StreamAssembler()
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    try:
        assembler.chunk(data)
    except OpenGradientError:
        return
    assert isinstance(value, dict) or data.strip() == "[DONE]"

