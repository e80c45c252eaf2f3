"""Upstream routing and the OpenAI-compatible passthrough (against a local ASGI app, no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from opengradient.devnet.services.llm.completions import (
    KNOWN_MODELS,
    Completion,
    Delta,
    UnknownModelError,
    UpstreamError,
    Usage,
)
from opengradient.devnet.services.llm.reference import ReferenceModel
from opengradient.devnet.services.llm.upstream import OpenAICompatibleUpstream, UpstreamRouter
from opengradient.types import LLM, TEE_LLM

SECRET = "sk-test-secret-key-123"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"]},
    },
}


# --- routing ---------------------------------------------------------------------------------------


def test_known_models_cover_the_enums_and_the_seed_names() -> None:
    router = UpstreamRouter(ReferenceModel())
    names = set(router.known_models)
    assert {m.value for m in TEE_LLM} | {m.value for m in LLM} <= names
    assert {"openai/gpt-4.1", "openai/gpt-4", "anthropic/claude-3-opus", "google/gemini-2.5-flash-preview",
            "google/gemini-2.5-pro-preview"} <= names
    assert len(names) == len(router.known_models) == len(KNOWN_MODELS) == 66


def test_resolves_full_and_bare_names_to_the_reference_model() -> None:
    reference = ReferenceModel()
    router = UpstreamRouter(reference)
    for name in KNOWN_MODELS:
        bare = name.split("/", 1)[1]
        assert router.resolve(name) == (reference, bare)
        assert router.resolve(bare) == (reference, bare)
    assert router.resolve("meta-llama/Meta-Llama-3-8B-Instruct") == (reference, "Meta-Llama-3-8B-Instruct")


@pytest.mark.parametrize("name", ["gpt-9", "openai/gpt-9", "GPT-4O", "anthropic/gpt-4o", "", "/", "openai/",
                                  "/gpt-4o", "nobody/nothing"])
def test_unknown_models_are_refused_with_the_list(name: str) -> None:
    router = UpstreamRouter(ReferenceModel())
    with pytest.raises(UnknownModelError) as info:
        router.resolve(name)
    message = str(info.value)
    assert repr(name) in message and "openai/gpt-4o" in message and "x-ai/grok-3-beta" in message


def test_malformed_model_values_raise_unknown_model() -> None:
    router = UpstreamRouter(ReferenceModel())
    for bad in (None, 5, ["gpt-4o"]):
        with pytest.raises(UnknownModelError):
            router.resolve(bad)  # type: ignore[arg-type]


def test_from_env_defaults_to_the_reference_model() -> None:
    router = UpstreamRouter.from_env({})
    assert isinstance(router.default, ReferenceModel) and router.by_provider == {}
    upstream, bare = router.resolve("openai/gpt-4o")
    assert isinstance(upstream, ReferenceModel) and bare == "gpt-4o"


def test_from_env_routes_providers_to_their_endpoints() -> None:
    env = {
        "OG_DEVNET_UPSTREAM_OPENAI_URL": "https://api.example.test/v1/",
        "OG_DEVNET_UPSTREAM_OPENAI_KEY": SECRET,
        "OG_DEVNET_UPSTREAM_X_AI_URL": "http://127.0.0.1:8081/v1",
        "OG_DEVNET_UPSTREAM_GOOGLE_URL": "",  # empty: ignored
        "UNRELATED": "x",
    }
    router = UpstreamRouter.from_env(env)
    assert set(router.by_provider) == {"OPENAI", "X_AI"}
    openai, bare = router.resolve("openai/gpt-4o")
    assert isinstance(openai, OpenAICompatibleUpstream) and bare == "gpt-4o"
    assert openai.base_url == "https://api.example.test/v1"
    assert router.resolve("gpt-4o")[0] is openai
    assert router.resolve("openai/gpt-5") == (openai, "gpt-5")  # the provider's own endpoint decides
    assert router.resolve("gpt-4o-mini") == (openai, "gpt-4o-mini")  # bare: provider guessed from the name
    xai, bare = router.resolve("x-ai/grok-3-beta")
    assert isinstance(xai, OpenAICompatibleUpstream) and xai is not openai and bare == "grok-3-beta"
    assert router.resolve("grok-3-beta")[0] is xai
    assert isinstance(router.resolve("google/gemini-2.5-flash")[0], ReferenceModel)
    assert isinstance(router.resolve("claude-3.5-haiku")[0], ReferenceModel)
    with pytest.raises(UnknownModelError):
        router.resolve("claude-9")
    assert SECRET not in repr(openai) and SECRET not in repr(vars(router)).replace(repr(openai), "")


def test_from_env_default_endpoint_serves_every_model() -> None:
    router = UpstreamRouter.from_env({"OG_DEVNET_UPSTREAM_URL": "http://127.0.0.1:11434/v1"})
    assert isinstance(router.default, OpenAICompatibleUpstream)
    assert router.resolve("llama3.2") == (router.default, "llama3.2")
    assert router.resolve("openai/gpt-4o") == (router.default, "gpt-4o")


def test_provider_keys_accept_either_spelling() -> None:
    reference, other = ReferenceModel(), ReferenceModel()
    router = UpstreamRouter(reference, {"x-ai": other, "meta-llama": other})
    assert router.resolve("x-ai/grok-4-1-fast")[0] is other
    assert router.resolve("Meta-Llama-3-8B-Instruct")[0] is other
    assert router.resolve("openai/o4-mini")[0] is reference


# --- an OpenAI-compatible server, serving the reference model --------------------------------------


def sse(events: list[Any]) -> str:
    return "".join(f"data: {json.dumps(e) if not isinstance(e, str) else e}\n\n" for e in events)


def make_app(seen: list[tuple[dict[str, str], dict[str, Any]]]) -> Starlette:
    """A tiny OpenAI-compatible server in front of the reference model. Model `explode` answers 500,
    model `missing` answers 404."""
    model = ReferenceModel()

    def failure(body: dict[str, Any]) -> Response | None:
        if body.get("model") == "explode":
            return JSONResponse({"error": {"message": f"boom (not {SECRET})", "type": "server_error"}}, 500)
        if body.get("model") == "missing":
            return JSONResponse({"error": {"message": "no such model", "code": "model_not_found"}}, 404)
        return None

    async def stream(deltas: AsyncIterator[Delta], kind: str) -> AsyncIterator[str]:
        yield ": keep-alive comment\r\n\r\n"
        async for delta in deltas:
            if delta.finish_reason is not None:
                if kind == "chat":
                    choice: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": delta.finish_reason}
                else:
                    choice = {"index": 0, "text": "", "finish_reason": delta.finish_reason}
                yield sse([{"object": "chunk", "choices": [choice]}])
                assert delta.usage is not None
                yield sse([{"object": "chunk", "choices": [], "usage": delta.usage.to_dict()}])  # separate
                continue
            if kind == "chat":
                piece: dict[str, Any] = {}
                if delta.content is not None:
                    piece["content"] = delta.content
                if delta.tool_call is not None:
                    piece["tool_calls"] = [delta.tool_call]
                choice = {"index": 0, "delta": piece, "finish_reason": None}
            else:
                choice = {"index": 0, "text": delta.content, "finish_reason": None}
            yield sse([{"object": "chunk", "choices": [choice]}]).replace("\n", "\r\n")
        yield "data: [DONE]\n\n"

    async def chat(request: Request) -> Response:
        body = await request.json()
        seen.append((dict(request.headers), body))
        failed = failure(body)
        if failed is not None:
            return failed
        if body.get("stream"):
            return StreamingResponse(stream(model.stream_chat(body), "chat"), media_type="text/event-stream")
        answer = await model.chat(body)
        message = {"role": "assistant", "content": answer.content, "tool_calls": answer.tool_calls}
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                             "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason}],
                             "usage": answer.usage.to_dict()})

    async def completions(request: Request) -> Response:
        body = await request.json()
        seen.append((dict(request.headers), body))
        failed = failure(body)
        if failed is not None:
            return failed
        if body.get("stream"):
            return StreamingResponse(stream(model.stream_complete(body), "text"), media_type="text/event-stream")
        answer = await model.complete(body)
        return JSONResponse({"object": "text_completion", "choices": [
            {"index": 0, "text": answer.content, "finish_reason": answer.finish_reason}],
            "usage": answer.usage.to_dict()})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/completions", completions, methods=["POST"])])


@pytest.fixture
def seen() -> list[tuple[dict[str, str], dict[str, Any]]]:
    return []


@pytest.fixture
async def upstream(seen: list[tuple[dict[str, str], dict[str, Any]]]) -> AsyncIterator[OpenAICompatibleUpstream]:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(seen)))
    yield OpenAICompatibleUpstream("http://upstream.test/v1/", SECRET, http=client, timeout=5)
    await client.aclose()


async def collect(stream: AsyncIterator[Delta]) -> list[Delta]:
    return [delta async for delta in stream]


def joined(deltas: list[Delta]) -> tuple[str, list[dict[str, Any]], str | None, Usage | None]:
    content = "".join(d.content or "" for d in deltas)
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        if delta.tool_call:
            call = calls.setdefault(delta.tool_call["index"], {"name": "", "arguments": ""})
            call["name"] += delta.tool_call["function"].get("name", "")
            call["arguments"] += delta.tool_call["function"].get("arguments", "")
    return content, [calls[i] for i in sorted(calls)], deltas[-1].finish_reason, deltas[-1].usage


CHATS = [
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "What is the capital of France?"}]},
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "Weather in Dallas in fahrenheit?"}],
     "tools": [WEATHER_TOOL], "tool_choice": "auto"},
    {"model": "claude-3.5-haiku", "messages": [{"role": "user", "content": "Tell me about Rome"}], "max_tokens": 4,
     "stop": ["zzz"], "temperature": 0.2},
]


@pytest.mark.parametrize("request_body", CHATS)
async def test_chat_passes_through(upstream: OpenAICompatibleUpstream, seen: list[Any],
                                   request_body: dict[str, Any]) -> None:
    expected = await ReferenceModel().chat(request_body)
    got = await upstream.chat(request_body)
    assert isinstance(got, Completion)
    assert (got.content, got.finish_reason, got.usage) == (expected.content, expected.finish_reason,
                                                           expected.usage)
    if expected.tool_calls:
        assert got.tool_calls and got.tool_calls[0]["function"] == expected.tool_calls[0]["function"]
        assert got.tool_calls[0]["id"].startswith("call_") and got.tool_calls[0]["type"] == "function"
    else:
        assert got.tool_calls is None
    headers, body = seen[-1]
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert body["model"] == request_body["model"] and body["stream"] is False
    assert body["messages"] == request_body["messages"]


@pytest.mark.parametrize("request_body", CHATS)
async def test_stream_chat_passes_through(upstream: OpenAICompatibleUpstream, seen: list[Any],
                                          request_body: dict[str, Any]) -> None:
    expected = await ReferenceModel().chat(request_body)
    deltas = await collect(upstream.stream_chat(request_body))
    content, calls, finish, usage = joined(deltas)
    assert finish == expected.finish_reason and usage == expected.usage
    assert all(d.finish_reason is None and d.usage is None for d in deltas[:-1])
    if expected.tool_calls:
        assert calls == [expected.tool_calls[0]["function"]] and content == ""
        first = deltas[0].tool_call
        assert first is not None and first["id"].startswith("call_") and first["index"] == 0
    else:
        assert content == expected.content and calls == []
    body = seen[-1][1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_completions_pass_through(upstream: OpenAICompatibleUpstream, seen: list[Any]) -> None:
    request = {"model": "gpt-4o", "prompt": "Once upon a time", "max_tokens": 50, "stop": None}
    expected = await ReferenceModel().complete(request)
    got = await upstream.complete(request)
    assert (got.content, got.finish_reason, got.usage, got.tool_calls) == (
        expected.content, expected.finish_reason, expected.usage, None)
    assert "stop" not in seen[-1][1]  # None values are not forwarded
    content, _, finish, usage = joined(await collect(upstream.stream_complete(request)))
    assert (content, finish, usage) == (expected.content, expected.finish_reason, expected.usage)


async def test_server_errors_become_upstream_errors(upstream: OpenAICompatibleUpstream) -> None:
    for call in (upstream.chat, upstream.complete):
        with pytest.raises(UpstreamError) as info:
            await call({"model": "explode", "messages": [], "prompt": "x"})
        assert info.value.status == 500 and "500" in str(info.value) and "boom" in str(info.value)
        assert SECRET not in str(info.value)
    with pytest.raises(UpstreamError):
        await collect(upstream.stream_chat({"model": "explode", "messages": []}))
    with pytest.raises(UnknownModelError):
        await upstream.chat({"model": "missing", "messages": []})
    with pytest.raises(UnknownModelError):
        await collect(upstream.stream_complete({"model": "missing", "prompt": "x"}))


async def test_connection_refused_is_an_upstream_error() -> None:
    upstream = OpenAICompatibleUpstream("http://127.0.0.1:9/v1", SECRET, timeout=5)
    try:
        with pytest.raises(UpstreamError) as info:
            await upstream.chat({"model": "gpt-4o", "messages": []})
        assert "unreachable" in str(info.value) and SECRET not in str(info.value)
        assert info.value.status is None
        with pytest.raises(UpstreamError):
            await collect(upstream.stream_chat({"model": "gpt-4o", "messages": []}))
    finally:
        await upstream.aclose()
    router = UpstreamRouter.from_env({"OG_DEVNET_UPSTREAM_OPENAI_URL": "http://127.0.0.1:9/v1"})
    await router.aclose()


def mock(handler: Any) -> OpenAICompatibleUpstream:
    return OpenAICompatibleUpstream("http://u.test/v1", None,
                                    http=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


async def test_timeouts_and_bad_bodies_are_upstream_errors() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(UpstreamError, match="ReadTimeout"):
        await mock(timeout).chat({"model": "gpt-4o", "messages": []})
    for body in (b"not json", b"[1, 2]", b'{"choices": []}'):
        with pytest.raises(UpstreamError):
            await mock(lambda request, body=body: httpx.Response(200, content=body)).chat({"model": "m"})
    with pytest.raises(UpstreamError, match="not JSON"):
        await collect(mock(lambda request: httpx.Response(200, text="data: {oops\n\n")).stream_chat({"model": "m"}))
    error_event = sse([{"error": {"message": "overloaded"}}])
    with pytest.raises(UpstreamError, match="overloaded"):
        await collect(mock(lambda request: httpx.Response(200, text=error_event)).stream_chat({"model": "m"}))


async def test_stream_parsing_tolerates_real_world_shapes() -> None:
    """Comments, event fields, CRLF, no usage (estimated), no `[DONE]`, and a 'function_call' finish."""
    body = ("event: message\r\n: ping\r\n"
            + sse([{"choices": [{"delta": {"role": "assistant", "content": "Hel"}}]}]).replace("\n", "\r\n")
            + sse([{"choices": [{"delta": {"content": "lo"}, "finish_reason": None}]}])
            + "data: " + json.dumps({"choices": [{"delta": {}, "finish_reason": "length"}]}))
    deltas = await collect(mock(lambda request: httpx.Response(200, text=body)).stream_chat(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
    assert [d.content for d in deltas[:-1]] == ["Hel", "lo"]
    assert deltas[-1].finish_reason == "length"
    assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens == 1
    assert deltas[-1].usage.total_tokens == deltas[-1].usage.prompt_tokens + 1

    message = {"role": "assistant", "content": None,
               "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}
    answer = {"choices": [{"message": message, "finish_reason": "function_call"}]}
    got = await mock(lambda request: httpx.Response(200, json=answer)).chat({"model": "m", "messages": []})
    assert got.finish_reason == "tool_calls" and got.content is None
    assert got.tool_calls == [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]


async def test_no_key_no_authorization_header() -> None:
    headers: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers)
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]})

    got = await mock(handler).chat({"model": "m", "messages": []})
    assert got.content == "ok" and "authorization" not in headers[0]
    assert got.usage == Usage(3, 1, 4)  # estimated: reply priming, and one token of output


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(
                        st.sampled_from(["choices", "message", "delta", "content", "tool_calls", "function",
                                         "usage", "finish_reason", "text", "index", "error", "arguments"]),
                        c, max_size=4), max_leaves=15)


@settings(max_examples=100, deadline=None)
@given(JSON, st.integers(200, 599))
def test_any_upstream_answer_gives_a_result_or_a_clean_error(body: Any, status: int) -> None:
    upstream = mock(lambda request: httpx.Response(status, json=body))
    stream_upstream = mock(lambda request: httpx.Response(status, text=sse([body, "[DONE]"])))

    async def run() -> None:
        for call in (upstream.chat({"model": "m", "messages": []}), upstream.complete({"model": "m"}),
                     collect(stream_upstream.stream_chat({"model": "m"})),
                     collect(stream_upstream.stream_complete({"model": "m"}))):
            try:
                result = await call
            except (UpstreamError, UnknownModelError):
                continue
            assert isinstance(result, Completion | list)

    asyncio.run(run())
