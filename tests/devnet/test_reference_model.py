"""The devnet reference model: deterministic, honours tools, response formats, stop, max_tokens,
streams what it answers, and counts tokens consistently."""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opengradient.devnet.services.llm.completions import KNOWN_MODELS, Completion, Delta, UnknownModelError, Usage
from opengradient.devnet.services.llm.reference import (
    ReferenceModel,
    SchemaFiller,
    new_call_id,
    quoted_spans,
    requested_keys,
    split_identifier,
)
from opengradient.devnet.services.llm.tokens import count_chat_prompt_tokens, count_tokens, tokenize

MODEL = ReferenceModel()

# --- a small JSON-schema validator (the subset the reference model claims) -------------------------

_FORMATS = {
    "date": r"\d{4}-\d{2}-\d{2}",
    "date-time": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})",
    "time": r"\d{2}:\d{2}:\d{2}",
    "email": r"[^@\s]+@[^@\s]+\.[^@\s]+",
    "uri": r"[a-z][a-z0-9+.-]*://\S+",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "ipv4": r"(?:\d{1,3}\.){3}\d{1,3}",
}


def _resolve(schema: Any, root: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#").removeprefix("/").split("/") if schema["$ref"] != "#" else []:
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _is_type(value: Any, kind: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[kind]


def errors(value: Any, schema: Any, root: Any = None, path: str = "$") -> list[str]:
    """Why `value` is not an instance of `schema` (empty when it is)."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return []
    out: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_type(value, k) for k in kinds):
            return [f"{path}: {value!r} is not of type {kind}"]
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: {value!r} != const {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in enum")
    for sub in schema.get("allOf", []):
        out += errors(value, sub, root, path)
    if "anyOf" in schema and all(errors(value, s, root, path) for s in schema["anyOf"]):
        out.append(f"{path}: matches no anyOf choice")
    if "oneOf" in schema and sum(not errors(value, s, root, path) for s in schema["oneOf"]) != 1:
        out.append(f"{path}: does not match exactly one oneOf choice")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: missing required {key!r}")
        for key, item in value.items():
            if key in properties:
                out += errors(item, properties[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unexpected property {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(item, schema["additionalProperties"], root, f"{path}.{key}")
        if len(value) < schema.get("minProperties", 0):
            out.append(f"{path}: too few properties")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", math.inf):
            out.append(f"{path}: {len(value)} items out of range")
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            out.append(f"{path}: items not unique")
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            if i < len(prefix):
                out += errors(item, prefix[i], root, f"{path}[{i}]")
            elif "items" in schema:
                out += errors(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", math.inf):
            out.append(f"{path}: length {len(value)} out of range")
        fmt = schema.get("format")
        if fmt in _FORMATS and not re.fullmatch(_FORMATS[fmt], value):
            out.append(f"{path}: {value!r} is not a {fmt}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value} < minimum")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value} > maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append(f"{path}: {value} <= exclusiveMinimum")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            out.append(f"{path}: {value} >= exclusiveMaximum")
        step = schema.get("multipleOf")
        if step and abs(value / step - round(value / step)) > 1e-9:
            out.append(f"{path}: {value} is not a multiple of {step}")
    return out


# --- helpers ---------------------------------------------------------------------------------------

WEATHER_TOOL = {  # from the seed's LLM inference guide
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city to find the weather for, e.g. 'San Francisco'"},
                "state": {
                    "type": "string",
                    "description": "the two-letter abbreviation for the state that the city is in, e.g. 'CA' "
                                   "which would mean 'California'",
                },
                "unit": {"type": "string", "description": "The unit to fetch the temperature in",
                         "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "state", "unit"],
        },
    },
}
SEED_MESSAGES = [
    {"role": "system", "content": "You are a AI assistant that helps the user with tasks. Use tools if necessary."},
    {"role": "user", "content": "Hi! How are you doing today?"},
    {"role": "assistant", "content": "I'm doing well! How can I help you?"},
    {"role": "user", "content": "Can you tell me what the temperate will be in Dallas, in fahrenheit?"},
]
STOCK_TOOL = {
    "type": "function",
    "function": {
        "name": "getStockPrice",
        "description": "Look up the latest price of a stock by its ticker symbol",
        "parameters": {
            "type": "object",
            "properties": {"ticker": {"type": "string", "description": "Ticker symbol, e.g. AAPL"},
                           "exchange": {"type": "string", "enum": ["NASDAQ", "NYSE"]}},
            "required": ["ticker"],
        },
    },
}
ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add_numbers",
        "description": "Add two numbers",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                       "required": ["a", "b"], "additionalProperties": False},
    },
}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def chat_request(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": messages, **extra}


def arguments(completion: Completion) -> dict[str, Any]:
    assert completion.tool_calls and len(completion.tool_calls) == 1
    result = json.loads(completion.tool_calls[0]["function"]["arguments"])
    assert isinstance(result, dict)
    return result


def tool_schema(tool: dict[str, Any]) -> dict[str, Any]:
    parameters = tool["function"]["parameters"]
    assert isinstance(parameters, dict)
    return parameters


async def collect(stream: Any) -> list[Delta]:
    return [delta async for delta in stream]


def assemble(deltas: list[Delta]) -> tuple[str | None, list[dict[str, Any]] | None, str | None, Usage | None]:
    """Content, tool calls (message form), finish reason and usage of a stream."""
    assert all(d.finish_reason is None and d.usage is None for d in deltas[:-1])
    content = "".join(d.content for d in deltas if d.content)
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        if delta.tool_call is not None:
            call = calls.setdefault(delta.tool_call["index"], {"id": None, "type": "function",
                                                               "function": {"name": "", "arguments": ""}})
            call["id"] = delta.tool_call.get("id") or call["id"]
            function = delta.tool_call.get("function", {})
            call["function"]["name"] += function.get("name", "")
            call["function"]["arguments"] += function.get("arguments", "")
    tool_calls = [calls[i] for i in sorted(calls)] or None
    return (content if content or not tool_calls else None), tool_calls, deltas[-1].finish_reason, deltas[-1].usage


# --- tokens ----------------------------------------------------------------------------------------


@given(st.text())
def test_tokenize_round_trips(text: str) -> None:
    pieces = tokenize(text)
    assert "".join(pieces) == text
    assert count_tokens(text) == len(pieces)
    assert all(pieces)


def test_tokenize_examples() -> None:
    assert tokenize("Hello, world!") == ["Hello", ",", " world", "!"]
    assert tokenize("  a  b ") == ["  a", "  b", " "]
    assert tokenize("1234567") == ["123", "456", "7"]
    assert count_tokens("") == 0


def test_prompt_tokens_grow_with_the_request() -> None:
    small = count_chat_prompt_tokens(user("hi"))
    assert count_chat_prompt_tokens([*user("hi"), *user("there")]) > small
    assert count_chat_prompt_tokens(user("hi"), [WEATHER_TOOL]) > small + count_tokens("get_current_weather")
    parts = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert count_chat_prompt_tokens(parts) == small


# --- models and determinism ------------------------------------------------------------------------


async def test_serves_every_known_model_by_bare_and_full_name() -> None:
    assert len(KNOWN_MODELS) == len(set(KNOWN_MODELS)) == 66  # both generations of TEE_LLM, og.LLM, older names
    for name in KNOWN_MODELS:
        bare = name.split("/", 1)[1]
        assert MODEL.supports(bare) and MODEL.supports(name)
        assert (await MODEL.chat({"model": bare, "messages": user("hi")})).content
    assert not MODEL.supports("gpt-9") and not MODEL.supports("GPT-4O")
    with pytest.raises(UnknownModelError, match="gpt-4o"):
        await MODEL.chat({"model": "gpt-9", "messages": user("hi")})
    with pytest.raises(UnknownModelError):
        await collect(MODEL.stream_complete({"model": None, "prompt": "hi"}))
    assert not ReferenceModel(["only-this"]).supports("gpt-4o")


DETERMINISM_REQUESTS = [
    chat_request(user("What is the capital of France?")),
    chat_request(SEED_MESSAGES, tools=[WEATHER_TOOL]),
    chat_request(user("Give me a person"), response_format={"type": "json_object"}),
    chat_request(user("Tell me a joke about cats. Return the result as a JSON with 'setup' and 'punchline' keys."),
                 response_format={"type": "json_object"}),
    chat_request(user("Tell me a long story about dragons"), max_tokens=5, temperature=1.5),
]


@pytest.mark.parametrize("request_body", DETERMINISM_REQUESTS)
async def test_same_request_same_answer(request_body: dict[str, Any]) -> None:
    first, second = await MODEL.chat(request_body), await ReferenceModel().chat(dict(request_body))
    assert first.content == second.content
    assert first.finish_reason == second.finish_reason and first.usage == second.usage
    if first.tool_calls:
        assert second.tool_calls
        assert first.tool_calls[0]["function"] == second.tool_calls[0]["function"]
        assert first.tool_calls[0]["id"] != second.tool_calls[0]["id"]


async def test_call_ids_are_unique_and_well_formed() -> None:
    ids = [new_call_id() for _ in range(500)]
    for _ in range(20):
        completion = await MODEL.chat(chat_request(SEED_MESSAGES, tools=[WEATHER_TOOL]))
        assert completion.tool_calls
        ids.append(completion.tool_calls[0]["id"])
        first = (await collect(MODEL.stream_chat(chat_request(SEED_MESSAGES, tools=[WEATHER_TOOL]))))[0]
        assert first.tool_call is not None
        ids.append(first.tool_call["id"])
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", i) for i in ids)


# --- plain answers ---------------------------------------------------------------------------------


async def answer(text: str | list[dict[str, Any]], **extra: Any) -> str:
    messages = user(text) if isinstance(text, str) else text
    completion = await MODEL.chat(chat_request(messages, **extra))
    assert completion.tool_calls is None and completion.finish_reason == "stop"
    assert isinstance(completion.content, str) and completion.content
    return completion.content


async def test_plain_answers_restate_the_question() -> None:
    reply = await answer("What is the population of Tokyo in 2023?")
    assert "Tokyo" in reply and "2023" in reply and "population" in reply
    reply = await answer("Patient: 45-year-old male, chest pain. Blood pressure: 140/90. What are the causes?")
    assert "45" in reply and "140/90" in reply
    assert (await answer("Hello!")).startswith("Hello!")
    assert "reference model" in await answer("Please summarize the quarterly report")
    assert await answer("Say 'pong'") == "pong"
    assert await answer("Reply with exactly: PONG") == "PONG"
    assert "84" in await answer("What is 12 * 7?")


async def test_identity_question_names_the_model() -> None:
    reply = await answer("Who are you?")
    assert "gpt-4o" in reply and "reference model" in reply and "devnet" in reply


async def test_repeats_the_users_name() -> None:
    seed = [{"role": "system", "content": "You are a helpful AI assistant.", "name": "HAL"},
            {"role": "user", "content": "Hello! How are you doing? Can you repeat my name?"}]
    assert "HAL" in await answer(seed)
    assert "Alice" in await answer("Hi, my name is Alice. What is my name?")
    assert "Bob" in await answer([{"role": "user", "name": "Bob", "content": "Repeat my name"}])
    assert "haven't told me" in await answer("What's my name?")


async def test_odd_requests_still_get_an_answer() -> None:
    for messages in ([], None, "hi", [{"role": "user", "content": None}], [{"role": "user"}, 5],
                     [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]}]):
        completion = await MODEL.chat({"model": "gpt-4o", "messages": messages, "tools": "bad", "stop": 3,
                                       "max_tokens": "x", "response_format": "weird", "tool_choice": 7})
        assert completion.content and completion.finish_reason == "stop"


# --- tools -----------------------------------------------------------------------------------------


async def test_seed_weather_example_calls_the_tool_with_dallas_fahrenheit() -> None:
    completion = await MODEL.chat(chat_request(SEED_MESSAGES, tools=[WEATHER_TOOL], tool_choice="auto"))
    assert completion.content is None and completion.finish_reason == "tool_calls"
    assert completion.tool_calls is not None
    call = completion.tool_calls[0]
    assert call["type"] == "function" and call["function"]["name"] == "get_current_weather"
    args = arguments(completion)
    assert args == {"city": "Dallas", "state": "TX", "unit": "fahrenheit"}
    assert errors(args, tool_schema(WEATHER_TOOL)) == []
    assert completion.usage.completion_tokens == count_tokens(call["function"]["arguments"])


async def test_auto_answers_in_text_when_no_tool_fits() -> None:
    reply = await answer(SEED_MESSAGES[:2], tools=[WEATHER_TOOL, STOCK_TOOL])
    assert "How can I help" in reply
    reply = await answer("Write a haiku about autumn leaves", tools=[WEATHER_TOOL])
    assert "haiku" in reply


async def test_auto_picks_the_best_matching_tool() -> None:
    completion = await MODEL.chat(chat_request(user("What's the stock price of AAPL on NASDAQ?"),
                                               tools=[WEATHER_TOOL, STOCK_TOOL]))
    assert completion.tool_calls and completion.tool_calls[0]["function"]["name"] == "getStockPrice"
    args = arguments(completion)
    assert args["ticker"] == "AAPL" or "AAPL" in args["ticker"]
    assert args.get("exchange") in (None, "NASDAQ")
    assert errors(args, tool_schema(STOCK_TOOL)) == []
    weather = await MODEL.chat(chat_request(user("Is it going to rain in Paris tomorrow?"),
                                            tools=[STOCK_TOOL, WEATHER_TOOL]))
    assert weather.tool_calls and weather.tool_calls[0]["function"]["name"] == "get_current_weather"
    assert arguments(weather)["city"] == "Paris"


async def test_none_never_calls_a_tool() -> None:
    reply = await answer(SEED_MESSAGES, tools=[WEATHER_TOOL], tool_choice="none")
    assert "Dallas" in reply


async def test_required_always_calls_the_best_tool() -> None:
    completion = await MODEL.chat(chat_request(user("Hello there"), tools=[STOCK_TOOL, ADD_TOOL],
                                               tool_choice="required"))
    assert completion.finish_reason == "tool_calls" and completion.tool_calls
    assert completion.tool_calls[0]["function"]["name"] == "getStockPrice"  # no match: the first tool
    completion = await MODEL.chat(chat_request(user("please add 2 and 3.5"), tools=[STOCK_TOOL, ADD_TOOL],
                                               tool_choice="required"))
    assert completion.tool_calls and completion.tool_calls[0]["function"]["name"] == "add_numbers"
    assert arguments(completion) == {"a": 2, "b": 3.5}


async def test_named_tool_choice_calls_that_tool() -> None:
    choice = {"type": "function", "function": {"name": "add_numbers"}}
    completion = await MODEL.chat(chat_request(SEED_MESSAGES, tools=[WEATHER_TOOL, ADD_TOOL], tool_choice=choice))
    assert completion.tool_calls and completion.tool_calls[0]["function"]["name"] == "add_numbers"
    assert errors(arguments(completion), tool_schema(ADD_TOOL)) == []
    missing = {"type": "function", "function": {"name": "nope"}}
    assert "Dallas" in await answer(SEED_MESSAGES, tools=[WEATHER_TOOL], tool_choice=missing)


async def test_answers_in_text_after_a_tool_result() -> None:
    first = await MODEL.chat(chat_request(SEED_MESSAGES, tools=[WEATHER_TOOL]))
    assert first.tool_calls
    result = json.dumps({"temperature": 72, "unit": "fahrenheit"})
    messages: list[dict[str, Any]] = [
        *SEED_MESSAGES, {"role": "assistant", "content": None, "tool_calls": first.tool_calls},
                {"role": "tool", "tool_call_id": first.tool_calls[0]["id"], "content": result}]
    reply = await answer(messages, tools=[WEATHER_TOOL], tool_choice="auto")
    assert reply == f"The result of get_current_weather is: {result}"
    streamed = assemble(await collect(MODEL.stream_chat(chat_request(messages, tools=[WEATHER_TOOL]))))
    assert streamed[0] == reply and streamed[1] is None and streamed[2] == "stop"


async def test_a_forced_tool_choice_after_a_tool_result_calls_a_tool() -> None:
    """As a provider must: `required` calls a tool not called yet in the turn (the one left when
    every tool was), a named choice calls that tool; arguments come from question and results."""
    report = {"type": "function", "function": {"name": "WeatherReport", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
        "required": ["city", "temperature"]}}}
    first = await MODEL.chat(chat_request(SEED_MESSAGES, tools=[WEATHER_TOOL, report], tool_choice="auto"))
    assert first.tool_calls and first.tool_calls[0]["function"]["name"] == "get_current_weather"
    messages: list[dict[str, Any]] = [
        *SEED_MESSAGES, {"role": "assistant", "content": None, "tool_calls": first.tool_calls},
        {"role": "tool", "tool_call_id": first.tool_calls[0]["id"], "content": "It is 72 degrees."}]
    for choice in ("required", {"type": "function", "function": {"name": "WeatherReport"}}):
        forced = await MODEL.chat(chat_request(messages, tools=[WEATHER_TOOL, report], tool_choice=choice))
        assert forced.finish_reason == "tool_calls" and forced.tool_calls
        call = forced.tool_calls[0]["function"]
        assert call["name"] == "WeatherReport" and json.loads(call["arguments"])["temperature"] == 72
    again = await MODEL.chat(chat_request(messages, tools=[WEATHER_TOOL], tool_choice="required"))
    assert again.tool_calls and again.tool_calls[0]["function"]["name"] == "get_current_weather"


NESTED_TOOL = {
    "type": "function",
    "function": {
        "name": "book_flight",
        "description": "Book a flight for passengers",
        "parameters": {
            "type": "object",
            "properties": {
                "destination": {"type": "string"},
                "passengers": {"type": "integer", "minimum": 1, "maximum": 9},
                "date": {"type": "string", "format": "date"},
                "cabin": {"type": "string", "enum": ["economy", "business", "first"]},
                "refundable": {"type": "boolean"},
                "travellers": {
                    "type": "array", "minItems": 1, "maxItems": 3,
                    "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                               "age": {"type": "integer", "minimum": 0}},
                              "required": ["name", "age"]},
                },
                "contact": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}},
                            "required": ["email"]},
                "notes": {"type": ["string", "null"]},
            },
            "required": ["destination", "passengers", "date", "cabin", "refundable", "travellers", "contact"],
        },
    },
}


async def test_arguments_follow_the_schema_and_the_text() -> None:
    text = "Book a business flight to Lisbon for 12 passengers on 2025-03-14, refundable, mail ann@example.com"
    completion = await MODEL.chat(chat_request(user(text), tools=[NESTED_TOOL]))
    args = arguments(completion)
    assert errors(args, tool_schema(NESTED_TOOL)) == []
    assert args["destination"] == "Lisbon" and args["cabin"] == "business"
    assert args["passengers"] == 9  # 12 clamped to the maximum
    assert args["date"] == "2025-03-14" and args["refundable"] is True
    assert args["contact"]["email"] == "ann@example.com"
    bare = await MODEL.chat(chat_request(user("book it"), tools=[NESTED_TOOL], tool_choice="required"))
    assert errors(arguments(bare), tool_schema(NESTED_TOOL)) == []
    assert arguments(bare)["refundable"] is False


CUSTOMER_TOOL = {  # langchain-tests' unicode_customer tool, as LangChain sends it
    "type": "function",
    "function": {
        "name": "unicode_customer",
        "description": "Tool for creating a customer with Unicode name.",
        "parameters": {
            "type": "object",
            "properties": {
                "customer_name": {"type": "string", "description": "The customer's name in their native language."},
                "description": {"type": "string", "description": "Description of the customer."},
            },
            "required": ["customer_name", "description"],
        },
    },
}


@pytest.mark.parametrize(("text", "name"), [
    ("Create a customer named '你好啊集团' (Hello Group) - a Chinese technology company", "你好啊集团"),
    ("Create a customer named 'こんにちは株式会社' (Hello Corporation) - a Japanese company", "こんにちは株式会社"),
    ("Create a customer called “Société Générale”, a French bank", "Société Générale"),
    ("Register 「東京商事」 as a customer", "東京商事"),
    ("Add customer: ‘Müller & Söhne’", "Müller & Söhne"),
    ('New customer "O\'Brien Ltd" please', "O'Brien Ltd"),
    ("Create a customer named Acme Corp", "Acme Corp"),
    ("创建一个名为'你好'的客户", "你好"),
])
async def test_name_arguments_prefer_quoted_text(text: str, name: str) -> None:
    for choice in ("any", "auto") if "customer" in text else ("any",):  # `auto` needs a word of the tool's
        request = chat_request(user(text), tools=[CUSTOMER_TOOL], tool_choice=choice)
        completion = await MODEL.chat(request)
        args = arguments(completion)
        assert args["customer_name"] == name
        assert errors(args, tool_schema(CUSTOMER_TOOL)) == []
        assert completion.tool_calls is not None
        assert name in completion.tool_calls[0]["function"]["arguments"]  # not \u-escaped
        streamed = assemble(await collect(MODEL.stream_chat(request)))
        assert streamed[1] is not None and streamed[1][0]["function"] == completion.tool_calls[0]["function"]


async def test_quoted_text_fills_other_naming_parameters() -> None:
    tool = {"type": "function", "function": {
        "name": "create_file", "description": "Create a file",
        "parameters": {"type": "object", "required": ["file_name", "owner", "label"], "properties": {
            "file_name": {"type": "string"},
            "owner": {"type": "string", "description": "The owner's full name"},
            "label": {"type": "string"}}}}}
    args = arguments(await MODEL.chat(chat_request(
        user("Create a file named 'report.txt' for “Ann Lee”"), tools=[tool])))
    assert args["file_name"] == "report.txt" and args["owner"] == "Ann Lee"  # each quote fills one name
    tag = {"type": "function", "function": {"name": "tag_file", "parameters": {
        "type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}}}
    args = arguments(await MODEL.chat(chat_request(user("Tag the file: set its 'label' to 'urgent'"), tools=[tag])))
    assert args["label"] == "urgent"  # quoted text that names the property itself is skipped
    person = {"type": "function", "function": {"name": "greet_person", "parameters": {
        "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}
    assert arguments(await MODEL.chat(chat_request(user("Greet 'Zoë'"), tools=[person])))["name"] == "Zoë"
    assert arguments(await MODEL.chat(chat_request(user("Greet my friend, name is Bob"),
                                                   tools=[person])))["name"] == "Bob"


async def test_tools_without_parameters_and_flat_tool_shape() -> None:
    ping = {"type": "function", "function": {"name": "ping_server", "description": "Ping the server"}}
    completion = await MODEL.chat(chat_request(user("ping the server please"), tools=[ping]))
    assert arguments(completion) == {}
    flat = {"type": "function", "name": "ping_server", "parameters": {"type": "object", "properties": {}}}
    completion = await MODEL.chat(chat_request(user("ping the server"), tools=[flat]))
    assert completion.tool_calls and completion.tool_calls[0]["function"]["name"] == "ping_server"


def test_identifier_splitting() -> None:
    assert split_identifier("get_currentWeather") == ["get", "current", "weather"]
    assert split_identifier("HTTPServerName") == ["http", "server", "name"]


# --- response formats ------------------------------------------------------------------------------


async def test_json_object_format() -> None:
    content = await answer("Give me three colours", response_format={"type": "json_object"})
    data = json.loads(content)
    assert isinstance(data, dict) and "colours" in data["answer"]


JOKE = ("Tell me a joke about cats. Return the result as a JSON with 'setup' and 'punchline' keys. "
        "Return nothing other than JSON.")  # langchain-tests' test_json_mode


@pytest.mark.parametrize("text", [
    JOKE,
    'Tell me a joke about cats as a JSON object with "setup" and "punchline".',
    "Tell me a joke about cats. Respond in JSON with keys: setup, punchline",
    "Tell me a joke about cats in JSON, fields “setup” and “punchline”",
    "Tell me a joke about cats. JSON with setup and punchline keys, please.",
])
async def test_json_object_has_the_keys_the_message_names(text: str) -> None:
    request = chat_request(user(text), response_format={"type": "json_object"})
    completion = await MODEL.chat(request)
    assert completion.content is not None and completion.finish_reason == "stop"
    data = json.loads(completion.content)
    assert list(data) == ["setup", "punchline"]
    assert all(isinstance(v, str) and v.strip() for v in data.values())
    assert all("cats" in v for v in data.values())  # derived from the message
    assert data["setup"] != data["punchline"]
    assert completion.usage.completion_tokens == count_tokens(completion.content)
    content, tool_calls, finish, usage = assemble(await collect(MODEL.stream_chat(request)))
    assert (content, tool_calls, finish, usage) == (completion.content, None, "stop", completion.usage)


async def test_json_object_values_come_from_the_message() -> None:
    data = json.loads(await answer("My name is Carol and I live in Berlin. Reply in JSON with keys: name, city, "
                                   "summary", response_format={"type": "json_object"}))
    assert list(data) == ["name", "city", "summary"]
    assert data["name"] == "Carol" and data["city"] == "Berlin" and "Carol" in data["summary"]
    data = json.loads(await answer("Plan a trip to Lisbon on 2025-03-14. JSON keys: destination, date",
                                   response_format={"type": "json_object"}))
    assert data == {"destination": "Lisbon", "date": "2025-03-14"}
    data = json.loads(await answer("Describe the Eiffel Tower in JSON with the fields 'height' and 'built'",
                                   response_format={"type": "json_object"}))
    assert list(data) == ["height", "built"] and all("Eiffel Tower" in v for v in data.values())
    data = json.loads(await answer("Return a JSON object with 'first_name' and 'lastName' keys",
                                   response_format={"type": "json_object"}))
    assert list(data) == ["first_name", "lastName"]  # a key's own quoted name is never its value
    assert all(v and v not in ("first_name", "lastName") for v in data.values())
    data = json.loads(await answer("JSON with 「名前」と「年齢」 keys", response_format={"type": "json_object"}))
    assert list(data) == ["名前", "年齢"] and all(data.values())


async def test_json_object_without_named_keys_keeps_the_answer_shape() -> None:
    for text in ("Give me three colours", "Say 'pong' in JSON", "Use the keys and values of a map, in JSON",
                 "List the key points of the story as JSON"):
        data = json.loads(await answer(text, response_format={"type": "json_object"}))
        assert list(data) == ["answer"] and data["answer"], text


def test_requested_keys() -> None:
    assert requested_keys(JOKE) == ["setup", "punchline"]
    assert requested_keys("keys: setup, punchline") == ["setup", "punchline"]
    assert requested_keys("with the following keys: name, age and city.") == ["name", "age", "city"]
    assert requested_keys("Return JSON with keys 'a', 'b' and 'c'") == ["a", "b", "c"]
    assert requested_keys("JSON with keys (setup, punchline)") == ["setup", "punchline"]
    assert requested_keys("Return JSON. Use the `summary` field") == ["summary"]
    assert requested_keys('Respond in JSON: "first name", "last name".') == ["first name", "last name"]
    assert requested_keys("I don't know what 'foo' is; give JSON with fields ‘bar’ and ‘baz’") == ["bar", "baz"]
    for text in ("Give me a person", "Say 'pong' in JSON", "use the keys and values", "keys: a, b",
                 "the key points of the story in JSON", "Create a customer named 'Acme'", ""):
        assert requested_keys(text) is None, text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(lambda k: k not in {
           "a", "an", "and", "or", "the", "json", "keys", "key", "with"}), min_size=1, max_size=5, unique=True),
       st.sampled_from([("'", "'"), ('"', '"'), ("‘", "’"), ("“", "”"), ("「", "」"), ("`", "`")]),
       st.sampled_from(["Return a JSON object with {} keys.", "Reply in JSON with the keys {}",
                        "Answer as JSON, fields: {}"]))
def test_json_object_named_keys_property(keys: list[str], quote: tuple[str, str], template: str) -> None:
    listed = [f"{quote[0]}{k}{quote[1]}" for k in keys]
    text = "Tell me about Rome. " + template.format(
        listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1])
    request = chat_request(user(text), response_format={"type": "json_object"})
    completion = asyncio.run(MODEL.chat(request))
    assert completion.content is not None
    data = json.loads(completion.content)
    assert list(data) == keys and all(isinstance(v, str) and v for v in data.values())
    assert "Rome" in completion.content
    streamed = assemble(asyncio.run(collect(MODEL.stream_chat(request))))
    assert streamed[0] == completion.content


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*"ab kK:,'\"‘’“”「」`\x00.\n", "keys", "with", "and", "json", " fields ",
                                  "named", "值"]), max_size=40).map("".join) | st.text())
def test_json_object_answers_are_flat_string_objects_for_any_text(text: str) -> None:
    request = chat_request(user(text), response_format={"type": "json_object"})
    completion = asyncio.run(MODEL.chat(request))
    assert completion.content is not None
    data = json.loads(completion.content)
    assert isinstance(data, dict) and data
    assert all(isinstance(v, str) and v.strip() for v in data.values())
    assert list(data) == (requested_keys(text.strip()) or ["answer"])
    assert assemble(asyncio.run(collect(MODEL.stream_chat(request))))[0] == completion.content


def test_quoted_spans() -> None:
    def inner(text: str) -> list[str]:
        return [q for _, _, q in quoted_spans(text)]

    assert inner("Create a customer named '你好啊集团' (Hello Group)") == ["你好啊集团"]
    assert inner("I don't know what 'foo' is, it's the dogs' bowl") == ["foo"]
    assert inner("He is 5'10\" tall") == []
    assert inner('a "b c" d “e” ‘f’s g’ 「h」『i』«j» `k`') == ["b c", "e", "f’s g", "h", "i", "j", "k"]
    assert inner("创建一个名为'你好'的客户") == ["你好"]
    assert inner("' spaced ' and 'unclosed") == []
    assert inner("'line\nbreak'") == []
    text = "say 'x' now"
    assert [(text[s:e]) for s, e, _ in quoted_spans(text)] == ["'x'"]


PYDANTIC_LIKE = {  # the shape pydantic / LangChain `with_structured_output` sends
    "$defs": {
        "Address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                    "required": ["city", "zip"], "additionalProperties": False, "title": "Address"},
        "Role": {"enum": ["admin", "user", "guest"], "type": "string", "title": "Role"},
    },
    "type": "object",
    "title": "Person",
    "properties": {
        "name": {"type": "string", "title": "Name"},
        "age": {"type": "integer", "exclusiveMinimum": 0, "maximum": 150},
        "email": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
        "role": {"$ref": "#/$defs/Role"},
        "address": {"$ref": "#/$defs/Address"},
        "scores": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 2,
                   "maxItems": 4},
        "joined": {"type": "string", "format": "date-time"},
        "kind": {"const": "person"},
        "answer": {"type": "string"},
    },
    "required": ["name", "age", "email", "role", "address", "scores", "joined", "kind", "answer"],
    "additionalProperties": False,
}


async def test_json_schema_format_langchain_shape() -> None:
    response_format = {"type": "json_schema",
                       "json_schema": {"name": "Person", "description": "A person", "schema": PYDANTIC_LIKE,
                                       "strict": True}}
    text = "My name is Carol, I am 34 years old, an admin living in Berlin"
    content = await answer(text, response_format=response_format)
    data = json.loads(content)
    assert errors(data, PYDANTIC_LIKE) == []
    assert data["name"] == "Carol" and data["age"] == 34 and data["role"] == "admin"
    assert data["address"]["city"] == "Berlin" and data["kind"] == "person"
    assert "Carol" in data["answer"]


def _word() -> st.SearchStrategy[str]:
    return st.sampled_from(["alpha", "beta", "city", "count", "name", "size", "colour", "tags", "items", "x"])


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    def string(lo: int, extra: int, fmt: str | None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        if fmt:
            schema["format"] = fmt
            return schema
        if lo:
            schema["minLength"] = lo
        if extra >= 0:
            schema["maxLength"] = lo + extra
        return schema

    def number(kind: str, lo: int | None, span: int, exclusive: bool, step: int | None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": kind}
        if lo is not None:
            schema["exclusiveMinimum" if exclusive else "minimum"] = lo
            schema["maximum"] = lo + span + (step or 1) + 1
        if step:
            schema["multipleOf"] = step
        return schema

    return st.one_of(
        st.builds(string, st.integers(0, 5), st.integers(-1, 8), st.sampled_from([None, None, "date", "email",
                                                                                  "uuid", "uri"])),
        st.builds(number, st.sampled_from(["integer", "number"]), st.one_of(st.none(), st.integers(-50, 50)),
                  st.integers(0, 100), st.booleans(), st.one_of(st.none(), st.integers(2, 5))),
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        st.lists(st.sampled_from(["red", "green", "blue", "x"]), min_size=1, max_size=3, unique=True).map(
            lambda e: {"enum": e}),
        st.sampled_from([{"const": 7}, {"const": "fixed"}]),
    )


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def obj(props: dict[str, dict[str, Any]], data: st.DataObject) -> dict[str, Any]:
        required = data.draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}

    def array(items: dict[str, Any], lo: int, extra: int) -> dict[str, Any]:
        return {"type": "array", "items": items, "minItems": lo, "maxItems": lo + extra}

    return st.one_of(
        st.builds(obj, st.dictionaries(_word(), children, max_size=4), st.data()),
        st.builds(array, children, st.integers(0, 3), st.integers(0, 3)),
        st.lists(children, min_size=1, max_size=3).map(lambda options: {"anyOf": options}),
    )


SCHEMAS = st.recursive(_leaf(), _extend, max_leaves=12)
TEXTS = st.lists(st.sampled_from(["alpha", "Berlin", "name", "is", "Zed", "count", "42", "-3", "7.5",
                                  "blue", "colour", "2024-05-06", "size", "x", "true", "not", "red"]),
                 max_size=12).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCHEMAS, TEXTS)
def test_schema_instances_are_valid(schema: dict[str, Any], text: str) -> None:
    value = SchemaFiller(text, root=schema, reply="a reply").value(schema)
    assert errors(value, schema) == [], (schema, value)
    assert SchemaFiller(text, root=schema, reply="a reply").value(schema) == value  # deterministic


EDGE_SCHEMAS = [
    {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 10}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "items": {"type": "string", "maxLength": 2}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "string", "format": "uuid"}, {"type": "integer"}], "minItems": 2},
    {"definitions": {"n": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}},
     "type": "object", "properties": {"p": {"$ref": "#/definitions/n"}}, "required": ["p"]},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
               {"properties": {"b": {"type": "string", "minLength": 3}}, "required": ["b"]}]},
    {"oneOf": [{"type": "null"}, {"type": "integer", "minimum": 5}]},
    {"type": ["null", "string"], "format": "date-time"},
    {"type": "integer", "minimum": 0.5, "maximum": 2.5},
    {"type": "number", "multipleOf": 0.25, "minimum": 0.1, "maximum": 0.3},
    {"type": "integer", "multipleOf": 7, "minimum": 50},
    {"type": "object", "minProperties": 2, "additionalProperties": {"type": "integer"}},
    {"type": "object", "properties": {"tree": {"$ref": "#"}}},
    {"type": "string", "format": "ipv4"},
    {"properties": {"count": {"type": "integer"}}, "required": ["count"]},
    {},
    True,
]


@pytest.mark.parametrize("schema", EDGE_SCHEMAS)
@pytest.mark.parametrize("text", ["", "count 3 and 3 and 3 with red, the tree", "-5 0.2 2024-01-02T03:04:05Z"])
def test_edge_schema_instances_are_valid(schema: Any, text: str) -> None:
    value = SchemaFiller(text, root=schema).value(schema)
    assert errors(value, schema) == [], value


@settings(max_examples=40, deadline=None)
@given(SCHEMAS.filter(lambda s: s.get("type") == "object"), TEXTS)
def test_json_schema_responses_parse_and_validate(schema: dict[str, Any], text: str) -> None:
    request = chat_request(user(text or "hi"),
                           response_format={"type": "json_schema", "json_schema": {"name": "t", "schema": schema}})
    completion = asyncio.run(MODEL.chat(request))
    assert completion.content is not None
    assert errors(json.loads(completion.content), schema) == []


@settings(max_examples=40, deadline=None)
@given(SCHEMAS.filter(lambda s: s.get("type") == "object"), TEXTS)
def test_tool_arguments_validate_for_any_schema(schema: dict[str, Any], text: str) -> None:
    tool = {"type": "function", "function": {"name": "do_alpha", "parameters": schema}}
    completion = asyncio.run(MODEL.chat(chat_request(user(text), tools=[tool], tool_choice="required")))
    assert errors(arguments(completion), schema) == []


# --- stop and max_tokens ---------------------------------------------------------------------------


async def test_stop_sequences_cut_the_output() -> None:
    question = "What is the capital of France?"
    full = await answer(question)
    cut = full.index("France")
    for stop in ("France", ["zzz", "France"], ["France", full[:3][::-1]]):
        completion = await MODEL.chat(chat_request(user(question), stop=stop))
        assert completion.content == full[:cut] and completion.finish_reason == "stop"
        assert completion.usage.completion_tokens == count_tokens(full[:cut])
    unchanged = await MODEL.chat(chat_request(user(question), stop=["not in it"]))
    assert unchanged.content == full


async def test_max_tokens_truncates_with_length() -> None:
    question = "Tell me everything about the history of Rome"
    full = await answer(question)
    assert count_tokens(full) > 5
    for key in ("max_tokens", "max_completion_tokens"):
        completion = await MODEL.chat(chat_request(user(question), **{key: 5}))
        assert completion.finish_reason == "length"
        assert completion.content == "".join(tokenize(full)[:5])
        assert completion.usage.completion_tokens == 5
    roomy = await MODEL.chat(chat_request(user(question), max_tokens=1000))
    assert roomy.content == full and roomy.finish_reason == "stop"
    both = await MODEL.chat(chat_request(user(question), max_tokens=3, stop="Rome"))
    assert both.finish_reason == "length" and both.usage.completion_tokens == 3


async def test_tool_calls_are_never_truncated() -> None:
    completion = await MODEL.chat(chat_request(SEED_MESSAGES, tools=[WEATHER_TOOL], max_tokens=2, stop="Dallas"))
    assert completion.finish_reason == "tool_calls" and arguments(completion)["city"] == "Dallas"


# --- streaming -------------------------------------------------------------------------------------

STREAM_REQUESTS = [
    *DETERMINISM_REQUESTS,
    chat_request(user("What is the capital of France?"), stop=["France"]),
    chat_request(user("Book a business flight to Lisbon for 2 passengers"), tools=[NESTED_TOOL]),
    chat_request(user("add 1 and 2"), tools=[ADD_TOOL], tool_choice="required"),
    chat_request(user("Carol, 34"), response_format={"type": "json_schema",
                                                     "json_schema": {"name": "p", "schema": PYDANTIC_LIKE}}),
    chat_request(user("Hello! How are you doing? Can you repeat my name?"), max_tokens=4),
]


@pytest.mark.parametrize("request_body", STREAM_REQUESTS)
async def test_stream_matches_non_stream(request_body: dict[str, Any]) -> None:
    completion = await MODEL.chat(request_body)
    deltas = await collect(MODEL.stream_chat(request_body))
    content, tool_calls, finish, usage = assemble(deltas)
    assert finish == completion.finish_reason and usage == completion.usage
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if completion.tool_calls:
        assert content is None and tool_calls is not None
        assert [c["function"] for c in tool_calls] == [c["function"] for c in completion.tool_calls]
        first = deltas[0].tool_call
        assert first is not None and first["function"] == {"name": tool_calls[0]["function"]["name"],
                                                           "arguments": ""}
        assert first["type"] == "function" and first["index"] == 0 and first["id"].startswith("call_")
    else:
        assert tool_calls is None and content == completion.content
        pieces = [d.content for d in deltas if d.content is not None]
        assert pieces == tokenize(completion.content or "")  # one delta per token
        assert usage.completion_tokens == len(pieces)


# --- text completion -------------------------------------------------------------------------------


async def test_complete_continues_the_prompt() -> None:
    prompt = "Translate the following English text to French: 'Hello, how are you?'"
    completion = await MODEL.complete({"model": "gpt-4o", "prompt": prompt, "max_tokens": 50, "temperature": 0.0})
    assert completion.content and completion.content.startswith(" ") and "French" in completion.content
    assert completion.tool_calls is None and completion.finish_reason == "stop"
    assert completion.usage.prompt_tokens == count_tokens(prompt)
    assert completion.usage.completion_tokens == count_tokens(completion.content)
    again = await MODEL.complete({"model": "gpt-4o", "prompt": prompt})
    assert again.content == completion.content
    assert (await MODEL.complete({"model": "gpt-4o", "prompt": "2 + 2 ="})).content == " 4"
    assert (await MODEL.complete({"model": "gpt-4o", "prompt": ["first", "second"]})).content


@pytest.mark.parametrize("extra", [{}, {"max_tokens": 3}, {"stop": ["model"]}, {"stop": "restate"}])
async def test_complete_stream_matches_and_honours_limits(extra: dict[str, Any]) -> None:
    request = {"model": "o4-mini", "prompt": "The capital of France is", **extra}
    full = (await MODEL.complete({"model": "o4-mini", "prompt": request["prompt"]})).content or ""
    completion = await MODEL.complete(request)
    text = completion.content or ""
    assert full.startswith(text)
    if "max_tokens" in extra:
        assert completion.finish_reason == "length" and count_tokens(text) == 3
    elif extra:
        assert completion.finish_reason == "stop" and len(text) < len(full)
    deltas = await collect(MODEL.stream_complete(request))
    content, tool_calls, finish, usage = assemble(deltas)
    assert (content, tool_calls, finish, usage) == (text, None, completion.finish_reason, completion.usage)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["role", "content", "name", "type", "function", "text", "tool_calls", "id",
                         "parameters", "properties", "required", "items", "enum", "json_schema", "schema"]),
        children, max_size=4),
    max_leaves=20)
REQUEST_KEYS = ["messages", "tools", "tool_choice", "response_format", "stop", "max_tokens", "prompt", "temperature"]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(REQUEST_KEYS), JSON_VALUES))
def test_arbitrary_request_bodies_never_crash(body: dict[str, Any]) -> None:
    request = {**body, "model": "gpt-4o"}

    async def run() -> None:
        completion = await MODEL.chat(request)
        deltas = await collect(MODEL.stream_chat(request))
        assert deltas[-1].usage == completion.usage and deltas[-1].finish_reason == completion.finish_reason
        text = await MODEL.complete(request)
        assert text.usage.total_tokens == text.usage.prompt_tokens + text.usage.completion_tokens

    asyncio.run(run())
