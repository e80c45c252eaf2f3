"""The adapters send what the user asked for, or refuse it; they never drop it (issue 19).

Driven through LangChain's, LangGraph's and the OpenAI Agents SDK's public APIs against the devnet.
Where a test must see the request on the wire, the client talks to the HTTP devnet through a
loopback proxy that records every request (tests/reliability/proxy.py, relaying only); everything
else runs on the in-process devnet. Each answer is paid and its TEE signature verified, so a
forwarded field that broke the signature would fail the call.
"""

from __future__ import annotations

import base64
import json
import struct
import warnings
import zlib
from collections.abc import Iterator
from typing import Any, cast

import pytest
from agents import Agent, ModelSettings, RunConfig, Runner, UserError, function_tool
from agents.exceptions import ModelTimeoutError as AgentsTimeoutError
from agents.model_settings import Reasoning
from langchain_core import exceptions as lc_exceptions
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, ValidationError
from typing_extensions import TypedDict

import opengradient as og
from opengradient.agents import OpenGradientChatModel, OpenGradientModel, OpenGradientModelProvider, init_chat_model
from opengradient.alphasense import ToolType
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.llm.payments import price_of
from tests.payers import new_payer
from tests.reliability.chainview import Settlements
from tests.reliability.proxy import FaultProxy, on_path, proxy_for

CHAT = "/v1/chat/completions"
NO_TRACE = RunConfig(tracing_disabled=True)
PDF = base64.b64encode(b"%PDF-1.4\n% a document\n%%EOF\n").decode()
WAV = base64.b64encode(b"RIFF....WAVEfmt ").decode()
def _png_1x2() -> bytes:
    """A real 1x2 PNG, a red pixel over a blue one: the reference model reads it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0\xff\0\0" + b"\0\0\0\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG = base64.b64encode(_png_1x2()).decode()
#: How the reference model describes `PNG`.
PNG_SEEN = "a PNG image, 1x2 pixels, whose mean colour is #800080 (RGB 128, 0, 128)"


class WeatherReport(BaseModel):
    city: str
    degrees: int


class WeatherDict(TypedDict):
    city: str
    degrees: int


@tool
def lookup_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 22 degrees in {city}."


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 22 degrees in {city}."


@pytest.fixture
def proxy(devnet_http: Devnet) -> Iterator[FaultProxy]:
    """A relaying proxy in front of the HTTP devnet: it records what reaches the gateway."""
    with proxy_for(devnet_http.url) as running:
        yield running


def proxied_client(net: Devnet, proxy: FaultProxy, **kwargs: Any) -> og.Client:
    return net.new_client(og_llm_server_url=proxy.url, og_llm_streaming_server_url=proxy.url, **kwargs)


def paid_bodies(proxy: FaultProxy) -> list[dict[str, Any]]:
    """The JSON bodies of the paid chat requests the gateway received, in order."""
    return [json.loads(r.body) for r in proxy.seen(on_path(CHAT, paid=True))]


# == 1. constructor arguments ======================================================================


def test_a_misspelt_constructor_argument_is_refused_with_the_likely_one(devnet: Devnet) -> None:
    with pytest.raises(ValidationError, match="'temperatur'.*did you mean 'temperature'"):
        OpenGradientChatModel(client=devnet.client, temperatur=0.9)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="model_kwargs sets temperature"):
        OpenGradientChatModel(client=devnet.client, model_kwargs={"temperature": 0.9})
    with pytest.raises(TypeError):
        OpenGradientModel("openai/gpt-4o", client=devnet.client, temperatur=0.9)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        OpenGradientModelProvider(client=devnet.client, max_token=5)  # type: ignore[call-arg]


def test_constructor_sampling_options_and_model_kwargs_reach_the_gateway(devnet_http: Devnet,
                                                                       proxy: FaultProxy) -> None:
    llm = OpenGradientChatModel(client=proxied_client(devnet_http, proxy), top_p=0.5, frequency_penalty=0.25,
                                presence_penalty=-0.5, seed=7, model_kwargs={"user": "ann"})
    message = llm.invoke("Hello", logit_bias={"50256": -100}, service_tier="auto")
    assert message.response_metadata["tee_verified"] is True
    [body] = paid_bodies(proxy)
    assert {k: body[k] for k in ("top_p", "frequency_penalty", "presence_penalty", "seed", "user",
                                 "logit_bias", "service_tier")} == {
        "top_p": 0.5, "frequency_penalty": 0.25, "presence_penalty": -0.5, "seed": 7, "user": "ann",
        "logit_bias": {"50256": -100}, "service_tier": "auto"}


def test_a_misspelt_request_field_is_refused_by_the_gateway(devnet: Devnet) -> None:
    llm = OpenGradientChatModel(client=devnet.new_client(), model_kwargs={"temperatur": 0.9})
    with pytest.raises(lc_exceptions.ModelInvalidRequestError, match="unknown parameter 'temperatur'"):
        llm.invoke("Hello")
    with pytest.raises(lc_exceptions.ModelInvalidRequestError, match="'top_p' must be a number from 0 to 1"):
        OpenGradientChatModel(client=devnet.new_client()).invoke("Hello", top_p=3)


# == 2. every setting is forwarded or refused ======================================================


async def test_agents_model_settings_reach_the_gateway(devnet_http: Devnet, proxy: FaultProxy) -> None:
    model = OpenGradientModel("openai/gpt-4o", client=proxied_client(devnet_http, proxy))
    settings = ModelSettings(top_p=0.3, frequency_penalty=0.1, presence_penalty=0.2, parallel_tool_calls=False,
                             reasoning=Reasoning(effort="low"), metadata={"team": "a"}, store=False,
                             extra_body={"seed": 11}, extra_args={"user": "bob", "stop": ["END"]})
    agent = Agent(name="weather", instructions="Answer with the tool.", tools=[get_weather], model=model,
                  model_settings=settings)
    result = await Runner.run(agent, "What is the weather in Paris?", run_config=NO_TRACE)
    assert "Paris" in result.final_output
    bodies = paid_bodies(proxy)
    assert len(bodies) == 2  # the tool call, then the answer
    for body in bodies:
        assert {k: body.get(k) for k in ("top_p", "frequency_penalty", "presence_penalty", "parallel_tool_calls",
                                         "reasoning_effort", "metadata", "store", "seed", "user", "stop")} == {
            "top_p": 0.3, "frequency_penalty": 0.1, "presence_penalty": 0.2, "parallel_tool_calls": False,
            "reasoning_effort": "low", "metadata": {"team": "a"}, "store": False, "seed": 11, "user": "bob",
            "stop": ["END"]}
    for response in result.raw_responses:
        proof = model.proof_for(response.response_id)
        assert proof is not None and proof.verify(model.client)


@pytest.mark.parametrize(("settings", "refused"), [
    (ModelSettings(truncation="auto"), "truncation"),
    (ModelSettings(extra_headers={"X-Debug": "1"}), "extra_headers"),
    (ModelSettings(extra_query={"debug": "1"}), "extra_query"),
    (ModelSettings(response_include=["reasoning.encrypted_content"]), "response_include"),
])
async def test_agents_settings_with_no_chat_form_are_refused(devnet: Devnet, settings: ModelSettings,
                                                             refused: str) -> None:
    agent = Agent(name="plain", model=OpenGradientModel(client=devnet.new_client()), model_settings=settings)
    with pytest.raises(UserError, match=refused):
        await Runner.run(agent, "Hello", run_config=NO_TRACE)


async def test_agents_reusable_prompts_and_unknown_extra_args_are_refused(devnet: Devnet) -> None:
    model = OpenGradientModel(client=devnet.new_client())
    with pytest.raises(UserError, match="reusable prompt"):
        await Runner.run(Agent(name="p", model=model, prompt={"id": "pmpt_1"}), "Hello", run_config=NO_TRACE)
    agent = Agent(name="x", model=model, model_settings=ModelSettings(extra_args={"temperatur": 1}))
    with pytest.raises(og.HTTPStatusError, match="unknown parameter 'temperatur'"):
        await Runner.run(agent, "Hello", run_config=NO_TRACE)


def test_langchain_parallel_tool_calls_reach_the_gateway(devnet_http: Devnet, proxy: FaultProxy) -> None:
    llm = OpenGradientChatModel(client=proxied_client(devnet_http, proxy))
    message = llm.bind_tools([lookup_weather], parallel_tool_calls=False).invoke("What is the weather in Oslo?")
    assert message.tool_calls[0]["args"] == {"city": "Oslo"}
    llm.invoke("What is the weather in Oslo?", parallel_tool_calls=False)  # no tools: nothing to limit
    first, second = paid_bodies(proxy)
    assert first["parallel_tool_calls"] is False and "parallel_tool_calls" not in second


# == 3. content blocks =============================================================================


def test_langchain_files_audio_and_images_reach_the_model_in_openai_form(devnet_http: Devnet,
                                                                         proxy: FaultProxy) -> None:
    llm = OpenGradientChatModel(client=proxied_client(devnet_http, proxy), model="google/gemini-2.5-flash")
    content: list[str | dict[str, Any]] = [
        {"type": "text", "text": "Summarise these."},
        {"type": "file", "base64": PDF, "mime_type": "application/pdf", "filename": "report.pdf"},
        {"type": "audio", "base64": WAV, "mime_type": "audio/wav"},
        {"type": "image", "source_type": "base64", "data": PNG, "mime_type": "image/png"},
    ]
    message = llm.invoke([HumanMessage(content)])
    assert "a file (report.pdf) and an audio clip" in message.text and PNG_SEEN in message.text
    [body] = paid_bodies(proxy)
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Summarise these."},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"}},
        {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    assert og.Proof.from_dict(message.response_metadata["proof"]).verify(llm.get_client())


def test_langchain_media_in_a_tool_result_follows_it_as_a_user_message(devnet: Devnet) -> None:
    llm = OpenGradientChatModel(client=devnet.new_client())
    history = [HumanMessage("Fetch the chart."),
               AIMessage("", tool_calls=[{"name": "chart", "args": {}, "id": "c1", "type": "tool_call"}]),
               ToolMessage([{"type": "text", "text": "the chart"},
                            {"type": "image", "base64": PNG, "mime_type": "image/png"}], tool_call_id="c1")]
    answer = llm.invoke(history)
    assert answer.text == f"The result of chart is: the chart (with {PNG_SEEN})"


def test_langchain_blocks_without_an_openai_form_are_refused(devnet: Devnet) -> None:
    llm = OpenGradientChatModel(client=devnet.new_client())
    cases: list[tuple[list[str | dict[str, Any]], str]] = [
        ([{"type": "text", "text": "see"}, {"type": "video", "url": "https://example.com/a.mp4"}], "'video'"),
        ([{"type": "file", "url": "https://example.com/a.pdf"}], "a file by URL"),
        ([{"type": "image", "file_id": "file-1"}], "an image by file id"),
        ([{"type": "audio", "base64": WAV, "mime_type": "audio/ogg"}], "audio/ogg audio"),
    ]
    for content, reason in cases:
        with pytest.raises(og.InvalidInputError, match=reason):
            llm.invoke([HumanMessage(content)])
    with pytest.raises(og.InvalidInputError, match="media in a system message"):
        llm.invoke([("system", [{"type": "image", "base64": PNG, "mime_type": "image/png"}]), ("user", "hi")])


async def test_agents_pdf_and_image_reach_the_model_in_openai_form(devnet_http: Devnet, proxy: FaultProxy) -> None:
    model = OpenGradientModel("openai/gpt-4o", client=proxied_client(devnet_http, proxy))
    agent = Agent(name="reader", instructions="Read attachments.", model=model)
    pdf_only = [{"role": "user", "content": [
        {"type": "input_text", "text": "Summarise this."},
        {"type": "input_file", "file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"}]}]
    with_image = [{"role": "user", "content": [
        *pdf_only[0]["content"], {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}",
                                  "detail": "low"}]}]
    first = await Runner.run(agent, pdf_only, run_config=NO_TRACE)  # type: ignore[arg-type]
    second = await Runner.run(agent, with_image, run_config=NO_TRACE)  # type: ignore[arg-type]
    assert "a file (report.pdf)" in first.final_output
    assert "a file (report.pdf)" in second.final_output and PNG_SEEN in second.final_output
    bodies = paid_bodies(proxy)
    pdf_part = {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"}}
    assert bodies[0]["messages"][1]["content"] == [{"type": "text", "text": "Summarise this."}, pdf_part]
    assert bodies[1]["messages"][1]["content"][2] == {
        "type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}}
    with pytest.raises(UserError, match="file_data"):
        await Runner.run(agent, [{"role": "user", "content": [
            {"type": "input_file", "file_id": "file-1"}]}], run_config=NO_TRACE)


# == 4. structured response formats, max_tokens=None and the defaults ==============================


def test_langchain_takes_a_pydantic_class_or_typeddict_as_response_format(devnet: Devnet) -> None:
    llm = OpenGradientChatModel(client=devnet.new_client())
    message = llm.invoke("Weather report for Oslo: 15 degrees.", response_format=WeatherReport)
    assert message.additional_kwargs["parsed"] == WeatherReport(city="Oslo", degrees=15)
    streamed: Any = None
    for chunk in llm.bind(response_format=WeatherDict).stream("Weather report for Oslo: 15 degrees."):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None and streamed.additional_kwargs["parsed"] == {"city": "Oslo", "degrees": 15}


def test_max_tokens_none_leaves_the_limit_to_the_gateway(devnet_http: Devnet, proxy: FaultProxy) -> None:
    assert OpenGradientChatModel().max_tokens is None
    assert OpenGradientModel().max_tokens is None
    client = proxied_client(devnet_http, proxy)
    OpenGradientChatModel(client=client, max_tokens=None).invoke("Hello")
    OpenGradientChatModel(client=client, max_tokens=64).invoke("Hello", max_tokens=None)  # None: the model's
    first, second = paid_bodies(proxy)
    assert "max_tokens" not in first and second["max_tokens"] == 64


async def test_agents_max_tokens_none_is_sent_as_none(devnet_http: Devnet, proxy: FaultProxy) -> None:
    model = OpenGradientModel(client=proxied_client(devnet_http, proxy))
    await Runner.run(Agent(name="a", model=model, model_settings=ModelSettings(max_tokens=None)), "Hello",
                     run_config=NO_TRACE)
    [body] = paid_bodies(proxy)
    assert "max_tokens" not in body


# == 5. retries on 429 and 5xx, paying once ========================================================


@pytest.mark.parametrize(("status", "retry_after"), [(503, None), (429, 0.0), (500, None)])
def test_a_failed_paid_request_is_retried_with_its_authorization_and_settles_once(
        devnet_http: Devnet, proxy: FaultProxy, status: int, retry_after: float | None) -> None:
    payer = new_payer(devnet_http)
    settlements = Settlements(devnet_http)
    client = proxied_client(devnet_http, proxy, private_key=payer.account.private_key, max_retries=2)
    llm = OpenGradientChatModel(client=client, max_tokens=20)
    struck = devnet_http.gateway.faults.struck
    devnet_http.gateway.faults.fail(1, status=status, retry_after=retry_after)
    message = llm.invoke("Hello")
    assert devnet_http.gateway.faults.struck == struck + 1
    assert message.response_metadata["tee_verified"] is True
    attempts = proxy.seen(on_path(CHAT, paid=True))
    assert len(attempts) == 2 and attempts[0].header("payment-signature") == attempts[1].header("payment-signature")
    [settled] = settlements.since_start(payer.address)
    assert settled.value == price_of("gpt-4o", 20)
    assert message.response_metadata["payment_hash"] == settled.tx_hash


async def test_without_retries_the_failure_reaches_the_framework(devnet: Devnet) -> None:
    llm = OpenGradientChatModel(client=devnet.new_client(max_retries=0))
    devnet.gateway.faults.fail(1, status=429)
    with pytest.raises(lc_exceptions.ModelRateLimitError, match="rate limited"):
        await llm.ainvoke("Hello")
    devnet.gateway.faults.fail(1, status=503)
    agent = Agent(name="a", model=OpenGradientModel(client=devnet.new_client(max_retries=0)))
    with pytest.raises(og.HTTPStatusError, match="nothing was charged"):
        await Runner.run(agent, "Hello", run_config=NO_TRACE)


async def test_agents_runs_are_retried_too(devnet: Devnet) -> None:
    model = OpenGradientModel(client=devnet.new_client(max_retries=1))
    devnet.gateway.faults.fail(1, status=502)
    result = await Runner.run(Agent(name="a", model=model), "Hello", run_config=NO_TRACE)
    assert result.final_output and model.last_output is not None and model.last_output.tee_verified


# == 6. timeouts, in-process as over HTTP ==========================================================


@pytest.mark.parametrize("transport", ["in-process", "http"])
def test_the_client_timeout_holds_on_either_devnet(request: pytest.FixtureRequest, transport: str) -> None:
    net: Devnet = request.getfixturevalue("devnet" if transport == "in-process" else "devnet_http")
    llm = OpenGradientChatModel(client=net.new_client(timeout=2, max_retries=0))
    llm.invoke("warm up")  # the offer and the enclave key are cached: the next call is one paid POST
    release = net.gateway.faults.stall()
    try:
        with pytest.raises(lc_exceptions.ModelTimeoutError):
            llm.invoke("Hello")
    finally:
        release.set()


async def test_the_client_timeout_holds_for_async_streams_in_process(devnet: Devnet) -> None:
    llm = OpenGradientChatModel(client=devnet.new_client(timeout=2, max_retries=0), streaming=True)
    await llm.ainvoke("warm up")
    release = devnet.gateway.faults.stall()
    try:
        with pytest.raises(lc_exceptions.ModelTimeoutError):
            await llm.ainvoke("Hello")
    finally:
        release.set()


async def test_agents_model_settings_timeout_bounds_the_call(devnet: Devnet) -> None:
    model = OpenGradientModel(client=devnet.new_client(max_retries=0))
    agent = Agent(name="a", model=model, model_settings=ModelSettings(timeout=1))
    await Runner.run(agent, "warm up", run_config=NO_TRACE)
    release = devnet.gateway.faults.stall()
    try:
        with pytest.raises(AgentsTimeoutError):  # the runner applies ModelSettings.timeout
            await Runner.run(agent, "Hello", run_config=NO_TRACE)
    finally:
        release.set()


# == 7. a forced tool choice right after a tool result: create_agent's ToolStrategy ===============


def test_create_agent_with_a_tool_strategy_gets_its_structured_response(devnet: Devnet) -> None:
    from langchain.agents import create_agent
    from langchain.agents.structured_output import ToolStrategy

    llm = OpenGradientChatModel(client=devnet.new_client(), model="anthropic/claude-3.5-haiku")
    agent: Any = create_agent(llm, tools=[lookup_weather], response_format=ToolStrategy(WeatherReport))
    state = agent.invoke({"messages": [("user", "What is the weather in Paris?")]})
    assert state["structured_response"] == WeatherReport(city="Paris", degrees=22)
    calls = [c["name"] for m in state["messages"] if isinstance(m, AIMessage) for c in m.tool_calls]
    assert calls == ["lookup_weather", "WeatherReport"]


def test_create_agent_with_a_provider_strategy(devnet: Devnet) -> None:
    from langchain.agents import create_agent

    llm = OpenGradientChatModel(client=devnet.new_client(), model="openai/gpt-4o")  # gpt-4o: ProviderStrategy
    agent: Any = create_agent(llm, tools=[], response_format=WeatherReport)
    state = agent.invoke({"messages": [("user", "Weather report for Oslo: 15 degrees.")]})
    assert state["structured_response"] == WeatherReport(city="Oslo", degrees=15)


# == 8. proofs after a LangGraph checkpoint ========================================================


def test_proofs_come_back_from_a_checkpoint_and_verify(devnet: Devnet) -> None:
    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver

    from tests.devnet.test_alphasense_agents import QUESTION, risk_tool, volatility_tool

    client = devnet.new_client()
    tools = [risk_tool(ToolType.LANGCHAIN, devnet, client), volatility_tool(ToolType.LANGCHAIN, client)]
    agent: Any = create_agent(OpenGradientChatModel(client=client), tools=tools, checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "proofs"}}
    agent.invoke({"messages": [("user", QUESTION)]}, config)
    agent.invoke({"messages": [("user", "What is the ETH volatility forecast for the next hour?")]}, config)
    messages = agent.get_state(config).values["messages"]
    artifacts = [m.artifact for m in messages if isinstance(m, ToolMessage)]
    assert len(artifacts) == 2 and all(isinstance(a, dict) for a in artifacts)  # plain dicts after the checkpoint
    proofs = [og.Proof.from_dict(a) for a in artifacts]
    assert [type(p).__name__ for p in proofs] == ["Proof", "WorkflowResultProof"]
    assert all(p.verify(client) for p in proofs)
    answers = [m for m in messages if isinstance(m, AIMessage)]
    assert answers and all(og.Proof.from_dict(m.response_metadata["proof"]).verify(client) for m in answers)


# == 9. init_chat_model and create_agent =========================================================


def test_init_chat_model_reaches_opengradient_and_hands_the_rest_to_langchain(devnet: Devnet) -> None:
    from langchain.agents import create_agent

    client = devnet.new_client()
    for llm in (init_chat_model("opengradient:anthropic/claude-3.5-haiku", client=client),
                init_chat_model("anthropic/claude-3.5-haiku", model_provider="opengradient", client=client)):
        assert isinstance(llm, OpenGradientChatModel) and llm.model == "anthropic/claude-3.5-haiku"
    model = cast(OpenGradientChatModel, init_chat_model("opengradient:openai/gpt-4o", client=client))
    agent: Any = create_agent(model, tools=[lookup_weather])
    state = agent.invoke({"messages": [("user", "What is the weather in Rome?")]})
    assert "Rome" in state["messages"][-1].text
    with pytest.raises(ValueError, match="Unsupported"):
        init_chat_model("gpt-4o", model_provider="not-a-provider")  # LangChain's own answer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ImportError, match="langchain-openai|langchain_openai"):
            init_chat_model("openai:gpt-4o")  # LangChain's, which needs its partner package
