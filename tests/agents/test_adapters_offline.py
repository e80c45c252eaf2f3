"""The adapters against a fake `client.llm`: requests, answers, streams, tools, errors, proofs.

No network and no devnet: `FakeClient` stands in for `og.Client` and records each call.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

import pytest
from agents import (
    Agent,
    AgentOutputSchema,
    FunctionTool,
    ModelSettings,
    ModelTracing,
    RunConfig,
    Runner,
    UserError,
    WebSearchTool,
    function_tool,
    handoff,
)
from langchain_core import exceptions as lc_exceptions
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_core.runnables import RunnableBinding
from langchain_core.tools import tool
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
)
from pydantic import BaseModel, Field, SecretStr

import opengradient as og
from opengradient.agents import (
    OpenGradientChatModel,
    OpenGradientModel,
    OpenGradientModelProvider,
    langchain_adapter,
    openai_agents_model,
)
from opengradient.agents.openai_agents import items_to_messages
from opengradient.proof import Proof
from opengradient.types import (
    StreamChoice,
    StreamChunk,
    StreamDelta,
    TextGenerationOutput,
    ToolCallDelta,
    Usage,
)

_USAGE = Usage(5, 3, 8)


# == a fake `client.llm` =============================================================================


def text_output(text: str, *, model: str = "openai/gpt-4o", response_id: str = "chatcmpl-1",
                usage: Usage | None = _USAGE, finish_reason: str = "stop") -> TextGenerationOutput:
    """A verified-looking answer with a TEE proof."""
    proof = Proof(kind="tee", chain_id=910020, tee_id="0xabc", tee_signature="c2ln", tee_timestamp=1,
                  input_hash="0x01", output_hash="0x02", payment_hash="0xpay", model_cid=model)
    return TextGenerationOutput(chat_output={"role": "assistant", "content": text}, finish_reason=finish_reason,
                                usage=usage, model=model, id=response_id, payment_hash="0xpay",
                                transaction_hash="0xpay", tee_id="0xabc", tee_verified=True, proof=proof)


def tool_output(name: str, arguments: str, *, call_id: str = "call_1", response_id: str = "chatcmpl-2",
                model: str = "openai/gpt-4o") -> TextGenerationOutput:
    output = text_output("", model=model, response_id=response_id, finish_reason="tool_calls")
    output.chat_output = {"role": "assistant", "content": None,
                          "tool_calls": [{"id": call_id, "type": "function",
                                          "function": {"name": name, "arguments": arguments}}]}
    return output


def stream_chunks(output: TextGenerationOutput, *, pieces: int = 3) -> list[StreamChunk]:
    """The chunks a gateway would stream for `output`: tokens, then finish, then usage."""
    message = output.chat_output or {}
    chunks: list[StreamChunk] = [StreamChunk(choices=[StreamChoice(delta=StreamDelta(role="assistant"))],
                                             id=output.id, model=output.model)]
    text = message.get("content") or ""
    size = max(1, -(-len(text) // pieces))
    for start in range(0, len(text), size):
        chunks.append(StreamChunk(choices=[StreamChoice(delta=StreamDelta(content=text[start:start + size]))],
                                  id=output.id, model=output.model))
    for index, call in enumerate(message.get("tool_calls") or []):
        arguments = call["function"]["arguments"]
        chunks.append(StreamChunk(choices=[StreamChoice(delta=StreamDelta(tool_calls=[ToolCallDelta(
            index=index, id=call["id"], type="function", name=call["function"]["name"], arguments="")]))],
            id=output.id, model=output.model))
        half = len(arguments) // 2
        for part in (arguments[:half], arguments[half:]):
            chunks.append(StreamChunk(choices=[StreamChoice(delta=StreamDelta(tool_calls=[ToolCallDelta(
                index=index, arguments=part)]))], id=output.id, model=output.model))
    chunks.append(StreamChunk(choices=[StreamChoice(finish_reason=output.finish_reason)], id=output.id,
                              model=output.model, is_final=True))
    chunks.append(StreamChunk(choices=[StreamChoice()], id=output.id, model=output.model, usage=output.usage))
    return chunks


class FakeStream:
    """Sync and async stand-in for the SDK's streams: iterate, then `result` is set."""

    def __init__(self, output: TextGenerationOutput, error: Exception | None = None) -> None:
        self._output = output
        self._error = error
        self.result: TextGenerationOutput | None = None
        self.closed = False

    def __iter__(self) -> Iterator[StreamChunk]:
        yield from stream_chunks(self._output)
        if self._error is not None:
            raise self._error
        self.result = self._output

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        for chunk in stream_chunks(self._output):
            yield chunk
        if self._error is not None:
            raise self._error
        self.result = self._output

    def __enter__(self) -> FakeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True


@dataclass
class FakeLLM:
    """Records each `chat`/`achat` call and answers from a queue (or echoes the last user text)."""

    answers: list[TextGenerationOutput | Exception] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    stream_error: Exception | None = None

    def _next(self, kwargs: dict[str, Any]) -> TextGenerationOutput:
        self.calls.append(kwargs)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        last = next((m for m in reversed(kwargs["messages"]) if m["role"] == "user"), {"content": ""})
        return text_output(f"echo: {last['content']}", model=str(kwargs["model"]),
                           response_id=f"chatcmpl-{len(self.calls)}")

    def chat(self, model: Any, messages: Any, stream: bool = False, **kwargs: Any) -> Any:
        output = self._next({"model": model, "messages": messages, "stream": stream, **kwargs})
        return FakeStream(output, self.stream_error) if stream else output

    async def achat(self, model: Any, messages: Any, stream: bool = False, **kwargs: Any) -> Any:
        output = self._next({"model": model, "messages": messages, "stream": stream, **kwargs})
        return FakeStream(output, self.stream_error) if stream else output


@dataclass
class FakeClient:
    """Stands in for `og.Client` (only `llm` is used)."""

    llm: FakeLLM = field(default_factory=FakeLLM)


@pytest.fixture
def fake_client() -> FakeClient:
    return FakeClient()


# == LangChain ======================================================================================

class Weather(BaseModel):
    """Weather in a city."""

    city: str = Field(description="the city")
    degrees: int = Field(description="temperature in Celsius")


class WeatherDict(TypedDict):
    """Weather in a city."""

    city: str
    degrees: int


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"sunny in {city}"


def _model(fake_client: Any, **kwargs: Any) -> OpenGradientChatModel:
    return OpenGradientChatModel(client=fake_client, **kwargs)


# -- invoke -----------------------------------------------------------------------------------------


def test_invoke_sends_the_standard_parameters_and_returns_proof(fake_client: Any) -> None:
    llm = _model(fake_client, model=og.TEE_LLM.CLAUDE_3_5_HAIKU, temperature=0.5, max_tokens=42, stop=["END"],
                 x402_settlement_mode=og.x402SettlementMode.SETTLE_BATCH)
    message = llm.invoke([SystemMessage("be brief"), HumanMessage("hello")])

    call = fake_client.llm.calls[0]
    assert call["model"] == "anthropic/claude-3.5-haiku"
    assert call["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert (call["temperature"], call["max_tokens"], call["stop_sequence"]) == (0.5, 42, ["END"])
    assert call["x402_settlement_mode"] == "settle-batch"
    assert call["stream"] is False

    assert isinstance(message, AIMessage)
    assert message.content == "echo: hello"
    assert message.id == "chatcmpl-1"
    assert message.usage_metadata == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}
    meta = message.response_metadata
    assert meta["model_name"] == "anthropic/claude-3.5-haiku"
    assert meta["finish_reason"] == "stop"
    assert meta["model_provider"] == "opengradient"
    assert meta["tee_verified"] is True
    assert meta["payment_hash"] == "0xpay"
    proof = Proof.from_dict(meta["proof"])
    assert proof.kind == "tee" and proof.tee_id == "0xabc"


def test_per_call_overrides(fake_client: Any) -> None:
    llm = _model(fake_client)
    message = llm.invoke("hi", model="x-ai/grok-3-beta", temperature=1.0, max_tokens=7, stop=["z"])
    call = fake_client.llm.calls[0]
    assert (call["model"], call["temperature"], call["max_tokens"], call["stop_sequence"]) == (
        "x-ai/grok-3-beta", 1.0, 7, ["z"])
    assert message.response_metadata["model_name"] == "x-ai/grok-3-beta"
    assert llm._get_ls_params(model="x-ai/grok-3-beta")["ls_model_name"] == "x-ai/grok-3-beta"
    assert llm._get_ls_params()["ls_model_name"] == "openai/gpt-4o"


def test_every_message_has_its_own_id(fake_client: Any) -> None:
    llm = _model(fake_client)
    ids = {llm.invoke("a").id, llm.invoke("b").id, *(m.id for m in llm.batch(["c", "d"]))}
    assert len(ids) == 4


async def test_ainvoke_is_native_async(fake_client: Any) -> None:
    llm = _model(fake_client)
    message = await llm.ainvoke("hello")
    assert message.content == "echo: hello"
    assert message.usage_metadata is not None
    assert fake_client.llm.calls[0]["stream"] is False


def test_message_conversion(fake_client: Any) -> None:
    llm = _model(fake_client)
    history = [
        SystemMessage("sys"),
        HumanMessage("what is 1+2?", name="ann"),
        AIMessage([{"type": "text", "text": "let me add"},
                   {"type": "tool_use", "id": "c1", "name": "add", "input": {"a": 1, "b": 2}}],
                  tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1", "type": "tool_call"}]),
        ToolMessage(json.dumps({"result": 3}), tool_call_id="c1", name="add"),
        HumanMessage([{"type": "text", "text": "and "}, {"type": "text", "text": "now?"}]),
    ]
    llm.invoke(history)
    sent = fake_client.llm.calls[0]["messages"]
    assert sent[0] == {"role": "system", "content": "sys"}
    assert sent[1] == {"role": "user", "content": "what is 1+2?", "name": "ann"}
    assert sent[2]["role"] == "assistant" and sent[2]["content"] == "let me add"
    assert sent[2]["tool_calls"] == [{"id": "c1", "type": "function",
                                      "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}]
    assert sent[3] == {"role": "tool", "content": '{"result": 3}', "tool_call_id": "c1"}
    assert sent[4] == {"role": "user", "content": "and now?"}


def test_anthropic_style_tool_results_become_tool_messages(fake_client: Any) -> None:
    llm = _model(fake_client)
    llm.invoke([
        HumanMessage("pick a colour"),
        AIMessage([{"type": "thinking", "thinking": "hmm", "signature": "x"}, {"type": "text", "text": "ok"}],
                  tool_calls=[{"name": "picker", "args": {"c": "green"}, "id": "t1", "type": "tool_call"}]),
        HumanMessage([{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "nice"}]},
                      {"type": "text", "text": "and now?"}]),
    ])
    sent = fake_client.llm.calls[0]["messages"]
    assert sent[1]["content"] == "ok"
    assert sent[2:] == [{"role": "tool", "tool_call_id": "t1", "content": "nice"},
                        {"role": "user", "content": "and now?"}]


def test_images_become_openai_content_parts(fake_client: Any) -> None:
    llm = _model(fake_client)
    llm.invoke([HumanMessage([{"type": "text", "text": "what is this?"},
                              {"type": "image", "base64": "AAAA", "mime_type": "image/png"}])])
    content = fake_client.llm.calls[0]["messages"][0]["content"]
    assert content == [{"type": "text", "text": "what is this?"},
                       {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]


# -- streaming --------------------------------------------------------------------------------------


def _check_stream(chunks: list[AIMessageChunk], fake_client: Any) -> AIMessageChunk:
    assert len(chunks) >= 3, "token-level chunks expected"
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    with_usage = [c for c in chunks if c.usage_metadata]
    assert len(with_usage) == 1
    assert sum("model_name" in c.response_metadata for c in chunks) == 1
    assert sum("finish_reason" in c.response_metadata for c in chunks) == 1
    assert chunks[-1].chunk_position == "last"
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert fake_client.llm.calls[-1]["stream"] is True
    return full


def test_stream_yields_tokens_then_one_final_chunk(fake_client: Any) -> None:
    llm = _model(fake_client)
    full = _check_stream(list(llm.stream("hello there")), fake_client)
    assert full.content == "echo: hello there"
    assert full.usage_metadata == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}
    assert full.response_metadata["model_name"] == "openai/gpt-4o"
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.response_metadata["tee_verified"] is True
    assert full.response_metadata["proof"]["kind"] == "tee"
    assert full.id is not None and full.id.startswith("chatcmpl-")


async def test_astream_is_native_async(fake_client: Any) -> None:
    llm = _model(fake_client)
    chunks = [chunk async for chunk in llm.astream("hello there")]
    full = _check_stream(chunks, fake_client)
    assert full.content == "echo: hello there"


def test_stream_tool_call_chunks_carry_their_index(fake_client: Any) -> None:
    fake_client.llm.answers.append(tool_output("get_weather", '{"city": "Paris"}'))
    llm = _model(fake_client).bind_tools([get_weather])
    chunks = [c for c in llm.stream("weather in Paris?") if isinstance(c, AIMessageChunk)]
    pieces = [p for c in chunks for p in c.tool_call_chunks]
    assert pieces and all(p["index"] == 0 for p in pieces)
    full = _check_stream(chunks, fake_client)
    assert full.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1",
                                "type": "tool_call"}]
    assert full.response_metadata["finish_reason"] == "tool_calls"


def test_streaming_flag_streams_invoke(fake_client: Any) -> None:
    llm = _model(fake_client, streaming=True)
    message = llm.invoke("hello")
    assert fake_client.llm.calls[0]["stream"] is True
    assert message.content == "echo: hello"
    assert message.usage_metadata is not None


def test_stream_error_maps_to_langchain(fake_client: Any) -> None:
    fake_client.llm.stream_error = og.VerificationError("tampered")
    with pytest.raises(og.VerificationError):
        list(_model(fake_client).stream("hello"))


# -- tools ------------------------------------------------------------------------------------------


def test_bind_tools_returns_a_new_runnable_and_accepts_every_tool_form(fake_client: Any) -> None:
    llm = _model(fake_client)

    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    raw = {"type": "function", "function": {"name": "lookup", "description": "Look up a word.",
                                            "parameters": {"type": "object",
                                                           "properties": {"word": {"type": "string"}}}}}
    bound = llm.bind_tools([get_weather, Weather, WeatherDict, multiply, raw, Weather.model_json_schema()],
                           tool_choice="any")
    assert isinstance(bound, RunnableBinding)
    assert bound is not llm and bound.bound is llm
    assert llm.model_fields_set.isdisjoint({"tools", "tool_choice"})
    bound.invoke("hi")
    call = fake_client.llm.calls[0]
    names = [t["function"]["name"] for t in call["tools"]]
    assert names == ["get_weather", "Weather", "WeatherDict", "multiply", "lookup", "Weather"]
    assert call["tool_choice"] == "required"
    llm.invoke("plain")
    assert "tools" not in fake_client.llm.calls[1]


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", "auto"), ("any", "required"), ("required", "required"), ("none", "none"),
    ("get_weather", "get_weather"), (True, "get_weather"),
    ({"type": "function", "function": {"name": "get_weather"}}, "get_weather"),
])
def test_tool_choice_spellings(fake_client: Any, choice: Any, expected: Any) -> None:
    _model(fake_client).bind_tools([get_weather], tool_choice=choice).invoke("hi")
    assert fake_client.llm.calls[0]["tool_choice"] == expected


def test_tool_choice_must_name_a_bound_tool(fake_client: Any) -> None:
    with pytest.raises(og.InvalidInputError, match="names no bound tool"):
        _model(fake_client).bind_tools([get_weather], tool_choice="send_email")


def test_tool_calls_are_parsed_and_bad_arguments_are_invalid_tool_calls(fake_client: Any) -> None:
    fake_client.llm.answers += [tool_output("get_weather", '{"city": "Oslo"}'),
                                tool_output("get_weather", '{"city": ')]
    llm = _model(fake_client).bind_tools([get_weather])
    good = llm.invoke("weather in Oslo")
    assert good.tool_calls == [{"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_1", "type": "tool_call"}]
    assert good.response_metadata["finish_reason"] == "tool_calls"
    bad = llm.invoke("weather")
    assert bad.tool_calls == [] and bad.invalid_tool_calls[0]["name"] == "get_weather"


# -- structured output ------------------------------------------------------------------------------


def test_structured_output_function_calling(fake_client: Any) -> None:
    fake_client.llm.answers.append(tool_output("Weather", '{"city": "Rome", "degrees": 21}'))
    result = _model(fake_client).with_structured_output(Weather).invoke("weather in Rome")
    assert result == Weather(city="Rome", degrees=21)
    call = fake_client.llm.calls[0]
    assert call["tool_choice"] == "Weather"
    assert "ls_structured_output_format" not in call


def test_structured_output_json_schema(fake_client: Any) -> None:
    fake_client.llm.answers.append(text_output('{"city": "Rome", "degrees": 21}'))
    result = _model(fake_client).with_structured_output(WeatherDict, method="json_schema").invoke("Rome?")
    assert result == {"city": "Rome", "degrees": 21}
    response_format = fake_client.llm.calls[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "WeatherDict"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {"city", "degrees"}


def test_structured_output_json_mode_and_include_raw(fake_client: Any) -> None:
    fake_client.llm.answers += [text_output('{"city": "Rome", "degrees": 21}'),
                                text_output("not json")]
    runnable = _model(fake_client).with_structured_output(Weather, method="json_mode", include_raw=True)
    good = runnable.invoke("Rome as JSON")
    assert fake_client.llm.calls[0]["response_format"] == {"type": "json_object"}
    assert isinstance(good, dict)
    assert good["parsed"] == Weather(city="Rome", degrees=21) and good["parsing_error"] is None
    assert isinstance(good["raw"], AIMessage)
    bad = runnable.invoke("Rome as JSON")
    assert isinstance(bad, dict)
    assert bad["parsed"] is None and bad["parsing_error"] is not None


def test_structured_output_rejects_unknown_method(fake_client: Any) -> None:
    with pytest.raises(ValueError, match="unknown method"):
        _model(fake_client).with_structured_output(Weather, method="xml")  # type: ignore[arg-type]


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "expected"), [
    (og.RateLimitError("slow down", status_code=429, url="u"), lc_exceptions.ModelRateLimitError),
    (og.RequestTimeoutError("timed out"), lc_exceptions.ModelTimeoutError),
    (og.NetworkError("unreachable"), lc_exceptions.ModelConnectionError),
    (og.InvalidInputError("bad"), lc_exceptions.ModelInvalidRequestError),
    (og.AuthenticationError("no", status_code=401, url="u"), lc_exceptions.ModelAuthenticationError),
    (og.HTTPStatusError("unknown model 'x'", status_code=400, url="u"), lc_exceptions.ModelNotFoundError),
    (og.HTTPStatusError("upstream down", status_code=503, url="u"), lc_exceptions.ModelAPIError),
])
def test_errors_map_to_langchain_exceptions_and_keep_their_sdk_class(fake_client: Any, error: Exception,
                                                                     expected: type) -> None:
    fake_client.llm.answers.append(error)
    with pytest.raises(expected) as caught:
        _model(fake_client).invoke("hello")
    assert isinstance(caught.value, type(error))
    assert str(caught.value) == str(error)


def test_payment_and_verification_errors_are_raised_as_they_are(fake_client: Any) -> None:
    fake_client.llm.answers.append(og.SpendCapExceededError("too dear", amount=10, cap=1))
    with pytest.raises(og.SpendCapExceededError) as caught:
        _model(fake_client).invoke("hello")
    assert not isinstance(caught.value, lc_exceptions.ModelError)


def test_rate_limiter_is_honoured(fake_client: Any) -> None:
    limiter = InMemoryRateLimiter(requests_per_second=1000, check_every_n_seconds=0.001)
    llm = _model(fake_client, rate_limiter=limiter)
    assert llm.invoke("a").content == "echo: a"


# -- construction -----------------------------------------------------------------------------------


def test_builds_its_client_from_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "0x" + "22" * 32
    llm = OpenGradientChatModel(private_key=SecretStr(key), network="public", timeout=12, max_retries=5)
    client = llm.get_client()
    assert isinstance(client, og.Client)
    assert client is llm.get_client()
    assert client.max_retries == 5
    assert key not in repr(llm) and key not in str(llm.model_dump())
    monkeypatch.setenv("OG_PRIVATE_KEY", key)
    assert OpenGradientChatModel().get_client().address == client.address


def test_without_key_or_client_it_uses_the_global_client_or_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OG_PRIVATE_KEY", raising=False)
    monkeypatch.setattr(og, "global_client", None)
    with pytest.raises(og.ConfigurationError, match="needs a client or a private key"):
        OpenGradientChatModel().get_client()
    client = og.Client("0x" + "33" * 32)
    monkeypatch.setattr(og, "global_client", client)
    assert OpenGradientChatModel().get_client() is client


def test_rejects_things_that_are_not_clients() -> None:
    with pytest.raises(ValueError, match="og.Client"):
        OpenGradientChatModel(client=object())


def test_langchain_adapter_is_the_0_7_4_factory(fake_client: Any) -> None:
    llm = langchain_adapter(model_cid=og.TEE_LLM.GEMINI_2_5_FLASH, client=fake_client)
    assert isinstance(llm, OpenGradientChatModel)
    assert (llm.model, llm.max_tokens, llm.x402_settlement_mode) == ("google/gemini-2.5-flash", 300, "settle")
    keyed = langchain_adapter("0x" + "44" * 32, "openai/gpt-4o", 50, og.x402SettlementMode.SETTLE_METADATA)
    assert keyed.private_key is not None and keyed.max_tokens == 50
    assert keyed.x402_settlement_mode == "settle-metadata"


def test_importing_opengradient_does_not_import_the_frameworks() -> None:
    code = ("import sys, opengradient, opengradient.agents; "
            "bad = [m for m in ('langchain_core', 'agents', 'langgraph', 'openai') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# == OpenAI Agents ==================================================================================

NO_TRACE = RunConfig(tracing_disabled=True)


@function_tool
def agent_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"sunny in {city}"


class Report(BaseModel):
    city: str
    degrees: int


async def _respond(model: OpenGradientModel, **kwargs: Any) -> Any:
    args: dict[str, Any] = {"system_instructions": None, "input": "hi", "model_settings": ModelSettings(),
                            "tools": [], "output_schema": None, "handoffs": [], "tracing": ModelTracing.DISABLED,
                            "previous_response_id": None, "conversation_id": None, "prompt": None}
    args.update(kwargs)
    return await model.get_response(**args)


async def test_get_response_shapes_the_request(fake_client: Any) -> None:
    model = OpenGradientModel(og.TEE_LLM.GEMINI_2_5_FLASH, client=fake_client, max_tokens=64,
                              x402_settlement_mode=og.x402SettlementMode.SETTLE_METADATA)
    assert isinstance(agent_weather, FunctionTool)
    spanish = Agent(name="Spanish agent", handoff_description="Speaks Spanish")
    settings = ModelSettings(temperature=0.3, tool_choice="required", extra_args={"stop": ["END"]})
    response = await _respond(model, system_instructions="be nice", input="weather in Paris?",
                              model_settings=settings, tools=[agent_weather], handoffs=[handoff(spanish)],
                              output_schema=AgentOutputSchema(Report))
    call = fake_client.llm.calls[0]
    assert call["model"] == "google/gemini-2.5-flash"
    assert call["messages"] == [{"role": "system", "content": "be nice"},
                                {"role": "user", "content": "weather in Paris?"}]
    assert (call["temperature"], call["max_tokens"], call["stop_sequence"]) == (0.3, 64, ["END"])
    assert call["x402_settlement_mode"] == "settle-metadata"
    assert [t["function"]["name"] for t in call["tools"]] == ["agent_weather", "transfer_to_spanish_agent"]
    assert call["tools"][0]["function"]["parameters"]["properties"]["city"]["type"] == "string"
    assert call["tool_choice"] == "required"
    assert call["response_format"]["type"] == "json_schema"
    assert call["response_format"]["json_schema"]["schema"]["properties"]["degrees"]["type"] == "integer"

    [message] = response.output
    assert isinstance(message, ResponseOutputMessage)
    assert message.content[0].text == "echo: weather in Paris?"  # type: ignore[union-attr]
    assert response.usage.requests == 1
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (5, 3, 8)
    assert response.response_id == "chatcmpl-1"
    assert model.proof_for("chatcmpl-1") is model.last_proof is not None
    assert model.proofs == {"chatcmpl-1": model.last_proof}


async def test_tool_calls_become_function_call_items(fake_client: Any) -> None:
    fake_client.llm.answers.append(tool_output("agent_weather", '{"city": "Oslo"}'))
    response = await _respond(OpenGradientModel(client=fake_client), tools=[agent_weather])
    [call] = response.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.name, call.arguments, call.call_id) == ("agent_weather", '{"city": "Oslo"}', "call_1")


async def test_hosted_tools_are_refused(fake_client: Any) -> None:
    with pytest.raises(UserError, match="function tools only"):
        await _respond(OpenGradientModel(client=fake_client), tools=[WebSearchTool()])


def test_items_to_messages_joins_tool_calls_into_assistant_turns() -> None:
    items: list[Any] = [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "input_text", "text": "weather in "}, {"type": "input_text",
                                                                                      "text": "Oslo and Rome?"}]},
        {"type": "message", "role": "assistant", "id": "m1", "status": "completed",
         "content": [{"type": "output_text", "text": "checking", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "rain"}]},
        {"type": "reasoning", "id": "r1", "summary": []},
    ]
    messages = items_to_messages(items)
    assert messages[0] == {"role": "system", "content": "rules"}
    assert messages[1] == {"role": "user", "content": "weather in Oslo and Rome?"}
    assert messages[2]["role"] == "assistant" and messages[2]["content"] == "checking"
    assert [c["id"] for c in messages[2]["tool_calls"]] == ["c1", "c2"]
    assert messages[3:] == [{"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                            {"role": "tool", "tool_call_id": "c2", "content": "rain"}]
    with pytest.raises(UserError, match="computer_call"):
        items_to_messages([{"type": "computer_call", "id": "x"}])


async def test_stream_response_events_end_in_completed(fake_client: Any) -> None:
    model = OpenGradientModel(client=fake_client)
    events = [e async for e in model.stream_response(
        None, "hello there", ModelSettings(), [], None, [], ModelTracing.DISABLED,
        previous_response_id=None, conversation_id=None, prompt=None)]
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and isinstance(events[0], ResponseCreatedEvent)
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") >= 3
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "echo: hello there"
    [message] = completed.response.output
    assert isinstance(message, ResponseOutputMessage)
    assert message.content[0].text == text  # type: ignore[union-attr]
    assert completed.response.usage is not None and completed.response.usage.total_tokens == 8
    assert model.proof_for(completed.response.id) is not None
    assert fake_client.llm.calls[0]["stream"] is True


async def test_stream_response_streams_function_call_arguments(fake_client: Any) -> None:
    fake_client.llm.answers.append(tool_output("agent_weather", '{"city": "Oslo"}'))
    model = OpenGradientModel(client=fake_client)
    events = [e async for e in model.stream_response(
        None, "weather in Oslo", ModelSettings(), [agent_weather], None, [], ModelTracing.DISABLED,
        previous_response_id=None, conversation_id=None, prompt=None)]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(deltas) == {"city": "Oslo"}
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    [call] = completed.response.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.name, call.call_id, call.arguments) == ("agent_weather", "call_1", '{"city": "Oslo"}')


async def test_runner_with_a_provider_and_a_fake_client(fake_client: Any) -> None:
    provider = OpenGradientModelProvider(client=fake_client, default_model="openai/gpt-4o")
    agent = Agent(name="echo", instructions="Echo.")
    result = await Runner.run(agent, "ping", run_config=RunConfig(model_provider=provider, tracing_disabled=True))
    assert result.final_output == "echo: ping"
    assert provider.get_model(None) is provider.get_model("openai/gpt-4o")
    assert provider.proof_for(result.raw_responses[0].response_id) is not None


def test_without_a_client_it_uses_the_global_client_or_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(og, "global_client", None)
    with pytest.raises(og.ConfigurationError, match="needs a client"):
        _ = OpenGradientModel().client
    client = og.Client("0x" + "55" * 32)
    monkeypatch.setattr(og, "global_client", client)
    assert openai_agents_model().client is client


async def test_server_side_conversation_state_is_refused(fake_client: Any) -> None:
    with pytest.raises(UserError, match="keeps no conversation state"):
        await _respond(OpenGradientModel(client=fake_client), previous_response_id="resp_1")
    assert fake_client.llm.calls == []
