"""OpenGradient's TEE-verified LLMs as a model of the OpenAI Agents SDK.

```python
from agents import Agent, RunConfig, Runner
from opengradient.agents import OpenGradientModel, OpenGradientModelProvider

agent = Agent(name="helper", instructions="…", model=OpenGradientModel("openai/gpt-4o", client=client))
result = await Runner.run(agent, "hello")
# or route every agent's model name through OpenGradient:
result = await Runner.run(agent, "hello", run_config=RunConfig(model_provider=OpenGradientModelProvider(client=client)))
```

Each model call is one `client.llm.achat` (x402-paid, TEE-verified): function tools, handoffs
(offered to the model as `transfer_to_…` tools) and structured `output_type`s (a `json_schema`
response format) all work, and `stream_response` turns the SDK's stream into Responses-API
events that end in `response.completed`. No OpenAI key is used.

Nothing an agent asks for is dropped: `ModelSettings` are sent as the chat request's fields
(`top_p`, penalties, `parallel_tool_calls`, `reasoning.effort` as `reasoning_effort`, `metadata`,
`store`, `verbosity`, `top_logprobs`, `extra_body`, `extra_args`; the gateway refuses those it does
not take), the runner applies `timeout` and `retry`, and settings with no form in a chat request (`truncation`,
`response_include`, `extra_headers`, `extra_query`, prompt-cache and context-management options,
reusable `prompt`s) are refused with `UserError`, as are content parts OpenAI's chat format cannot
carry. Images, files and audio go in user messages; a tool output holding media becomes a tool
message followed by a user message with the media (tool messages carry text only).

Proofs: every `ModelResponse.response_id` is the gateway's response id, and
`model.proof_for(response_id)` (or `provider.proof_for(...)`) returns that answer's `og.Proof`;
`model.last_output` is the latest verified `og.TextGenerationOutput`.

Tracing is the Agents SDK's business and is left as the user sets it: its default exporter sends
traces to OpenAI and, without `OPENAI_API_KEY`, skips them with a warning. Turn it off with
`agents.set_tracing_disabled(True)` or `RunConfig(tracing_disabled=True)`, or add your own
processor. When tracing is on, each call records a generation span (inputs and outputs only when
the run allows sensitive data).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opengradient.errors import ConfigurationError, missing_extra
from opengradient.types import TEE_LLM, TextGenerationOutput, x402SettlementMode

try:
    from agents import (
        AgentOutputSchemaBase,
        FunctionTool,
        Handoff,
        Model,
        ModelProvider,
        ModelResponse,
        ModelSettings,
        ModelTracing,
        Tool,
        TResponseInputItem,
        Usage,
        UserError,
    )
    from agents.items import TResponseOutputItem, TResponseStreamEvent
    from agents.tracing import generation_span
    from openai.types.responses import (
        Response,
        ResponseCompletedEvent,
        ResponseContentPartAddedEvent,
        ResponseContentPartDoneEvent,
        ResponseCreatedEvent,
        ResponseFunctionCallArgumentsDeltaEvent,
        ResponseFunctionCallArgumentsDoneEvent,
        ResponseFunctionToolCall,
        ResponseOutputItemAddedEvent,
        ResponseOutputItemDoneEvent,
        ResponseOutputMessage,
        ResponseOutputText,
        ResponseTextDeltaEvent,
        ResponseTextDoneEvent,
        ResponseUsage,
    )
    from openai.types.responses.response_prompt_param import ResponsePromptParam
    from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
except ImportError as exc:
    raise missing_extra(exc, "the OpenAI Agents adapter (OpenGradientModel)", "agents") from exc

if TYPE_CHECKING:
    from opengradient.client.client import Client
    from opengradient.proof import Proof

DEFAULT_MODEL = TEE_LLM.GPT_4O.value
#: `extra_args` keys that are OpenGradient's own options, not request fields.
_OWN_ARGS = ("x402_settlement_mode", "stop")
#: `ModelSettings` that have no form in a chat request, with what to do instead.
_REFUSED_SETTINGS = {
    "truncation": "the gateway keeps no conversation to truncate",
    "response_include": "it is a Responses API option",
    "prompt_cache_retention": "it is OpenAI's prompt-cache option",
    "prompt_cache_options": "it is OpenAI's prompt-cache option",
    "context_management": "it is a Responses API option",
    "extra_query": "the gateway's URL takes no query",
    "extra_headers": "the request's headers carry the payment only",
}
#: How many recent answers a model remembers the proofs of.
PROOFS_KEPT = 1000


class OpenGradientModel(Model):
    """An `agents.Model` whose every call is an x402-paid, TEE-verified `client.llm` chat.

    `model`: a gateway model (`og.TEE_LLM` or a `provider/model` string). `client`: an
    `og.Client`, or None to use `og.global_client`. `temperature`, `max_tokens` and
    `x402_settlement_mode` are defaults that an agent's `ModelSettings` override
    (`extra_args={"x402_settlement_mode": …, "stop": […]}` for the gateway's own options).

    Defaults follow the Agents SDK's: `max_tokens=None` sends none, so the gateway's default
    applies (on the devnet: 100 tokens); `temperature` is 0.0, the value the enclave signs when
    none is sent.
    """

    def __init__(self, model: TEE_LLM | str = DEFAULT_MODEL, *, client: Client | None = None,
                 temperature: float = 0.0, max_tokens: int | None = None,
                 x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE) -> None:
        self.model = model.value if isinstance(model, TEE_LLM) else str(model)
        self._client = client
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.x402_settlement_mode = x402_settlement_mode
        self.last_output: TextGenerationOutput | None = None
        self._proofs: OrderedDict[str, Proof] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenGradientModel(model={self.model!r})"

    @property
    def client(self) -> Client:
        """The client this model calls."""
        if self._client is not None:
            return self._client
        import opengradient

        if opengradient.global_client is None:
            raise ConfigurationError("OpenGradientModel needs a client",
                                     hint="pass client=og.init(...) or call og.init first")
        return opengradient.global_client

    # -- proofs -------------------------------------------------------------------------------------

    def proof_for(self, response_id: str | None) -> Proof | None:
        """The proof of the answer with this `ModelResponse.response_id` (recent answers only)."""
        with self._lock:
            return self._proofs.get(response_id) if response_id else None

    @property
    def proofs(self) -> dict[str, Proof]:
        """Proofs of recent answers by response id, oldest first."""
        with self._lock:
            return dict(self._proofs)

    @property
    def last_proof(self) -> Proof | None:
        """The proof of the latest answer."""
        return self.last_output.proof if self.last_output is not None else None

    def _remember(self, output: TextGenerationOutput, response_id: str) -> None:
        with self._lock:
            self.last_output = output
            if output.proof is not None:
                self._proofs[response_id] = output.proof
                while len(self._proofs) > PROOFS_KEPT:
                    self._proofs.popitem(last=False)

    # -- requests -----------------------------------------------------------------------------------

    def _request(self, system_instructions: str | None, input: str | list[TResponseInputItem],
                 model_settings: ModelSettings, tools: list[Tool], output_schema: AgentOutputSchemaBase | None,
                 handoffs: list[Handoff], previous_response_id: str | None = None,
                 conversation_id: str | None = None, prompt: ResponsePromptParam | None = None) -> dict[str, Any]:
        if previous_response_id or conversation_id:
            raise UserError("OpenGradient's gateway keeps no conversation state: run without "
                            "previous_response_id / conversation_id (the runner then sends the history)")
        if prompt is not None:
            raise UserError("OpenGradientModel cannot use a reusable prompt (`prompt`): prompts are stored on "
                            "OpenAI's Responses API; put the instructions in the agent instead")
        messages: list[dict[str, Any]] = []
        if system_instructions:
            messages.append({"role": "system", "content": system_instructions})
        messages += items_to_messages(input)
        extra = dict(model_settings.extra_args or {})
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens if model_settings.max_tokens is None else model_settings.max_tokens,
            "temperature": self.temperature if model_settings.temperature is None else model_settings.temperature,
            "x402_settlement_mode": extra.pop("x402_settlement_mode", None) or self.x402_settlement_mode,
        }
        stop = extra.pop("stop", None)
        if stop:
            request["stop_sequence"] = stop
        offered = [tool_to_openai(t) for t in tools] + [handoff_to_openai(h) for h in handoffs]
        if offered:
            request["tools"] = offered
            choice = tool_choice(model_settings.tool_choice)
            if choice is not None:
                request["tool_choice"] = choice
        if output_schema is not None and not output_schema.is_plain_text():
            request["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "final_output", "strict": output_schema.is_strict_json_schema(),
                "schema": output_schema.json_schema()}}
        body = settings_body(model_settings, tools_offered=bool(offered))
        body.update(extra)
        if body:
            request["extra_body"] = body
        return request

    def _span_config(self, request: Mapping[str, Any]) -> dict[str, Any]:
        config = {"temperature": request["temperature"], "max_tokens": request["max_tokens"],
                  "model_impl": "opengradient"}
        network = getattr(self.client, "network", None)
        if network is not None:
            config["base_url"] = network.llm_server_url
        return config

    async def get_response(self, system_instructions: str | None, input: str | list[TResponseInputItem],
                           model_settings: ModelSettings, tools: list[Tool],
                           output_schema: AgentOutputSchemaBase | None, handoffs: list[Handoff],
                           tracing: ModelTracing, *, previous_response_id: str | None = None,
                           conversation_id: str | None = None, prompt: ResponsePromptParam | None = None,
                           ) -> ModelResponse:
        """One paid, verified chat; the answer as Responses-API output items."""
        request = self._request(system_instructions, input, model_settings, tools, output_schema, handoffs,
                                previous_response_id, conversation_id, prompt)
        with generation_span(model=self.model, model_config=self._span_config(request),
                             disabled=tracing.is_disabled()) as span:
            output = await self.client.llm.achat(**request)
            assert isinstance(output, TextGenerationOutput)
            response_id = output.id or f"resp_{uuid.uuid4().hex}"
            items = output_items(output.chat_output or {}, response_id)
            self._remember(output, response_id)
            usage = _usage(output)
            if tracing.include_data():
                span.span_data.input = request["messages"]
                span.span_data.output = [output.chat_output or {}]
            span.span_data.usage = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
        return ModelResponse(output=items, usage=usage, response_id=response_id)

    async def stream_response(self, system_instructions: str | None, input: str | list[TResponseInputItem],
                              model_settings: ModelSettings, tools: list[Tool],
                              output_schema: AgentOutputSchemaBase | None, handoffs: list[Handoff],
                              tracing: ModelTracing, *, previous_response_id: str | None = None,
                              conversation_id: str | None = None, prompt: ResponsePromptParam | None = None,
                              ) -> AsyncIterator[TResponseStreamEvent]:
        """Stream one paid, verified chat as Responses-API events, ending in `response.completed`."""
        request = self._request(system_instructions, input, model_settings, tools, output_schema, handoffs,
                                previous_response_id, conversation_id, prompt)
        with generation_span(model=self.model, model_config=self._span_config(request),
                             disabled=tracing.is_disabled()) as span:
            events = _StreamEvents(self.model)
            stream = await self.client.llm.achat(**request, stream=True)
            assert not isinstance(stream, TextGenerationOutput)
            async with stream:
                async for chunk in stream:
                    for event in events.chunk(chunk):
                        yield event
            output = stream.result
            assert output is not None
            response_id = events.response_id or output.id or f"resp_{uuid.uuid4().hex}"
            self._remember(output, response_id)
            usage = _usage(output)
            if tracing.include_data():
                span.span_data.input = request["messages"]
                span.span_data.output = [output.chat_output or {}]
            span.span_data.usage = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
            for event in events.finish(output):
                yield event


class OpenGradientModelProvider(ModelProvider):
    """An `agents.ModelProvider` that serves every model name through OpenGradient.

    Use it as `RunConfig(model_provider=OpenGradientModelProvider(client=…))`: agents whose
    `model` is a gateway model name (or unset: `default_model`) then run on OpenGradient. One
    `OpenGradientModel` is kept per name, so its proofs stay reachable through `proof_for`.
    """

    def __init__(self, *, client: Client | None = None, default_model: TEE_LLM | str = DEFAULT_MODEL,
                 temperature: float = 0.0, max_tokens: int | None = None,
                 x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE) -> None:
        self.client = client
        self.default_model = default_model.value if isinstance(default_model, TEE_LLM) else default_model
        self._options: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens,
                                         "x402_settlement_mode": x402_settlement_mode}
        self._models: dict[str, OpenGradientModel] = {}
        self._lock = threading.Lock()

    def get_model(self, model_name: str | None) -> Model:
        name = model_name or self.default_model
        with self._lock:
            model = self._models.get(name)
            if model is None:
                model = self._models[name] = OpenGradientModel(name, client=self.client, **self._options)
            return model

    def proof_for(self, response_id: str | None) -> Proof | None:
        """The proof of an answer any of this provider's models gave."""
        with self._lock:
            models = list(self._models.values())
        for model in models:
            proof = model.proof_for(response_id)
            if proof is not None:
                return proof
        return None


def openai_agents_model(model: TEE_LLM | str = DEFAULT_MODEL, *, client: Client | None = None,
                        **kwargs: Any) -> OpenGradientModel:
    """A factory in the style of `langchain_adapter`: `OpenGradientModel(model, client=…, …)`."""
    return OpenGradientModel(model, client=client, **kwargs)


# -- conversions ------------------------------------------------------------------------------------


def settings_body(settings: ModelSettings, *, tools_offered: bool) -> dict[str, Any]:
    """The chat request fields of `settings` that `client.llm.chat` has no argument for.

    `UserError` for settings with no form in a chat request. `parallel_tool_calls` is sent only
    with tools (without them no tool is called); `include_usage` needs nothing (usage always
    comes); `timeout` and `retry` are the runner's own (it bounds and retries the model call).
    """
    refused = [f"{name} ({why})" for name, why in _REFUSED_SETTINGS.items() if getattr(settings, name, None)]
    reasoning = settings.reasoning
    if reasoning is not None and (getattr(reasoning, "summary", None) or getattr(reasoning, "generate_summary", None)):
        refused.append("reasoning.summary (reasoning summaries are a Responses API option)")
    if refused:
        raise UserError(f"OpenGradientModel cannot send these model settings: {'; '.join(refused)}")
    body: dict[str, Any] = {}
    for name in ("top_p", "frequency_penalty", "presence_penalty", "metadata", "store", "verbosity"):
        value = getattr(settings, name)
        if value is not None:
            body[name] = value
    if settings.parallel_tool_calls is not None and tools_offered:
        body["parallel_tool_calls"] = settings.parallel_tool_calls
    if reasoning is not None and reasoning.effort is not None:
        body["reasoning_effort"] = reasoning.effort
    if settings.top_logprobs is not None:
        body.update(logprobs=True, top_logprobs=settings.top_logprobs)
    if settings.extra_body is not None:
        if not isinstance(settings.extra_body, Mapping):
            raise UserError("ModelSettings.extra_body must be a dict of request fields")
        body.update(settings.extra_body)
    return body


def tool_to_openai(tool: Tool) -> dict[str, Any]:
    """An Agents SDK function tool as an OpenAI chat tool."""
    if not isinstance(tool, FunctionTool):
        raise UserError(f"OpenGradientModel supports function tools only, not {type(tool).__name__} "
                        "(hosted tools run on OpenAI's servers)")
    function: dict[str, Any] = {"name": tool.name, "description": tool.description or "",
                                "parameters": tool.params_json_schema}
    if tool.strict_json_schema:
        function["strict"] = True
    return {"type": "function", "function": function}


def handoff_to_openai(handoff: Handoff) -> dict[str, Any]:
    """A handoff as the `transfer_to_…` tool the model calls to hand the conversation over."""
    function: dict[str, Any] = {"name": handoff.tool_name, "description": handoff.tool_description or "",
                                "parameters": handoff.input_json_schema}
    if handoff.strict_json_schema:
        function["strict"] = True
    return {"type": "function", "function": function}


def tool_choice(choice: Any) -> str | None:
    """`ModelSettings.tool_choice` → the SDK's `auto`/`none`/`required`/a tool name."""
    if choice is None:
        return None
    if isinstance(choice, str):
        return choice
    name = getattr(choice, "name", None)
    if isinstance(name, str):  # MCPToolChoice and the like
        return name
    raise UserError(f"unsupported tool_choice {choice!r}")


def _get(item: Any, key: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(key, default)
    return getattr(item, key, default)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        kind = _get(part, "type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(str(_get(part, "text") or ""))
        elif kind == "refusal":
            parts.append(str(_get(part, "refusal") or ""))
    return "".join(parts)


def _openai_part(part: Any) -> dict[str, Any]:
    """One Responses-API input part (or a raw chat part) as OpenAI's chat content part; `UserError`
    for a part with no such form (a file id or URL: the gateway keeps and fetches no files)."""
    kind = _get(part, "type")
    if kind in ("input_text", "text", "output_text"):
        return {"type": "text", "text": str(_get(part, "text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(_get(part, "refusal") or "")}
    if kind == "input_image":
        url = _get(part, "image_url")
        if not url:
            raise UserError("OpenGradientModel needs images as URLs or data URLs, not file ids")
        image: dict[str, Any] = {"url": url}
        if _get(part, "detail"):
            image["detail"] = _get(part, "detail")
        return {"type": "image_url", "image_url": image}
    if kind == "image_url":
        image_url = _get(part, "image_url")
        image = dict(image_url) if isinstance(image_url, Mapping) else {"url": image_url}
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if not _get(part, "file_data"):
            raise UserError("OpenGradientModel sends files as file_data; a file id or file_url has no form in "
                            "OpenAI's chat format (the gateway keeps and fetches no files)")
        file: dict[str, Any] = {"file_data": _get(part, "file_data")}
        if _get(part, "filename"):
            file["filename"] = _get(part, "filename")
        return {"type": "file", "file": file}
    if kind == "input_audio":
        audio = _get(part, "input_audio")
        return {"type": "input_audio", "input_audio": {"data": _get(audio, "data"), "format": _get(audio, "format")}}
    raise UserError(f"OpenGradientModel cannot send {kind!r} content: it has no form in OpenAI's chat format")


def _content(content: Any, role: str) -> str | list[dict[str, Any]]:
    """Message content for `role`: text stays a string; media becomes content parts, in user
    messages only (OpenAI's chat format carries media nowhere else)."""
    if content is None or isinstance(content, str):
        return content or ""
    parts = [_openai_part(part) for part in content]
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    if role != "user":
        raise UserError(f"OpenGradientModel cannot send media in a {role} message: OpenAI's chat format carries "
                        "media in user messages only")
    return parts


def _tool_output(call_id: Any, output: Any) -> list[dict[str, Any]]:
    """A function call's output: a tool message, then (when it holds media) a user message with the
    media, since OpenAI's chat format carries only text in tool messages."""
    if isinstance(output, str):
        return [{"role": "tool", "tool_call_id": call_id, "content": output}]
    parts = output if isinstance(output, list) else [output]
    if not all(_get(p, "type") in _INPUT_PARTS for p in parts):
        return [{"role": "tool", "tool_call_id": call_id, "content": json.dumps(output, default=str)}]
    converted = [_openai_part(p) for p in parts]
    text = "".join(p["text"] for p in converted if p["type"] == "text")
    media = [p for p in converted if p["type"] != "text"]
    if not media:
        return [{"role": "tool", "tool_call_id": call_id, "content": text}]
    return [{"role": "tool", "tool_call_id": call_id, "content": text or "(the result is in the next message)"},
            {"role": "user", "content": media}]


_INPUT_PARTS = frozenset({"input_text", "text", "output_text", "input_image", "image_url", "input_file",
                          "input_audio"})


def items_to_messages(input: str | Iterable[Any]) -> list[dict[str, Any]]:
    """Responses-API input items → OpenAI chat messages (tool calls joined into assistant turns)."""
    if isinstance(input, str):
        return [{"role": "user", "content": input}]
    messages: list[dict[str, Any]] = []
    assistant: dict[str, Any] | None = None  # the assistant turn being built

    def flush() -> None:
        nonlocal assistant
        if assistant is not None:
            messages.append(assistant)
            assistant = None

    for item in input:
        kind = _get(item, "type")
        role = _get(item, "role")
        if kind in (None, "message") and role is not None:
            if role == "assistant":
                text = _content(_get(item, "content"), "assistant")
                assert isinstance(text, str)
                if assistant is None:
                    assistant = {"role": "assistant", "content": text}
                else:
                    assistant["content"] = (assistant["content"] or "") + text
                continue
            flush()
            if role in ("system", "developer"):
                messages.append({"role": "system", "content": _content(_get(item, "content"), "system")})
            elif role == "user":
                messages.append({"role": "user", "content": _content(_get(item, "content"), "user")})
            else:
                raise UserError(f"OpenGradientModel cannot send a message with role {role!r}")
        elif kind == "function_call":
            if assistant is None:
                assistant = {"role": "assistant", "content": ""}
            assistant.setdefault("tool_calls", []).append({
                "id": _get(item, "call_id"), "type": "function",
                "function": {"name": _get(item, "name"), "arguments": _get(item, "arguments") or "{}"}})
        elif kind == "function_call_output":
            flush()
            messages += _tool_output(_get(item, "call_id"), _get(item, "output"))
        elif kind in ("reasoning", "item_reference", "compaction"):
            continue  # nothing the gateway's models take back
        else:
            raise UserError(f"OpenGradientModel cannot send a {kind!r} item; it supports messages, "
                            "function calls and their outputs")
    flush()
    return messages


def output_items(message: Mapping[str, Any], response_id: str) -> list[TResponseOutputItem]:
    """The assistant message → Responses-API output items (a message, then function calls)."""
    items: list[TResponseOutputItem] = []
    text = message.get("content")
    if isinstance(text, list):
        text = _content_text(text)
    if text:
        items.append(ResponseOutputMessage(
            id=f"msg_{response_id}", type="message", role="assistant", status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])]))
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        items.append(ResponseFunctionToolCall(
            id=f"fc_{response_id}_{index}", call_id=call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
            name=function.get("name") or "", arguments=function.get("arguments") or "{}",
            type="function_call", status="completed"))
    return items


def _usage(output: TextGenerationOutput) -> Usage:
    usage = output.usage
    if usage is None:
        return Usage(requests=1)
    return Usage(requests=1, input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                 total_tokens=usage.total_tokens)


def _response_usage(usage: Usage) -> ResponseUsage:
    return ResponseUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                         total_tokens=usage.total_tokens,
                         input_tokens_details=InputTokensDetails.model_validate(
                             {"cached_tokens": 0, "cache_write_tokens": 0}),
                         output_tokens_details=OutputTokensDetails.model_validate({"reasoning_tokens": 0}))


class _StreamEvents:
    """SDK stream chunks → Responses-API stream events (created, item/part/delta events, completed)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.response_id: str | None = None
        self.created_at = time.time()
        self._sequence = 0
        self._started = False
        self._next_index = 0
        self._text_index: int | None = None
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}  # stream index → {output_index, id, call_id, name, arguments}

    def _seq(self) -> int:
        self._sequence += 1
        return self._sequence - 1

    def _response(self, output: list[TResponseOutputItem], status: str, usage: ResponseUsage | None = None
                  ) -> Response:
        return Response(id=self.response_id or "", created_at=self.created_at, model=self.model,
                        object="response", output=output, tool_choice="auto", tools=[],
                        parallel_tool_calls=False, status=status, usage=usage)  # type: ignore[arg-type]

    def _start(self, response_id: str | None) -> Iterable[TResponseStreamEvent]:
        if not self._started:
            self._started = True
            self.response_id = response_id or f"resp_{uuid.uuid4().hex}"
            yield ResponseCreatedEvent(type="response.created", sequence_number=self._seq(),
                                       response=self._response([], "in_progress"))

    def chunk(self, chunk: Any) -> Iterable[TResponseStreamEvent]:
        yield from self._start(chunk.id)
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                yield from self._text_delta(delta.content)
            for part in delta.tool_calls:
                yield from self._call_delta(part)

    def _text_delta(self, text: str) -> Iterable[TResponseStreamEvent]:
        item_id = f"msg_{self.response_id}"
        if self._text_index is None:
            self._text_index = self._next_index
            self._next_index += 1
            yield ResponseOutputItemAddedEvent(
                type="response.output_item.added", sequence_number=self._seq(), output_index=self._text_index,
                item=ResponseOutputMessage(id=item_id, type="message", role="assistant", status="in_progress",
                                           content=[]))
            yield ResponseContentPartAddedEvent(
                type="response.content_part.added", sequence_number=self._seq(), item_id=item_id,
                output_index=self._text_index, content_index=0,
                part=ResponseOutputText(type="output_text", text="", annotations=[]))
        self._text.append(text)
        yield ResponseTextDeltaEvent(type="response.output_text.delta", sequence_number=self._seq(),
                                     item_id=item_id, output_index=self._text_index, content_index=0,
                                     delta=text, logprobs=[])

    def _call_delta(self, part: Any) -> Iterable[TResponseStreamEvent]:
        call = self._calls.get(part.index)
        if call is None:
            call = self._calls[part.index] = {
                "output_index": self._next_index, "id": f"fc_{self.response_id}_{part.index}",
                "call_id": part.id or f"call_{uuid.uuid4().hex[:24]}", "name": part.name or "", "arguments": ""}
            self._next_index += 1
            yield ResponseOutputItemAddedEvent(
                type="response.output_item.added", sequence_number=self._seq(), output_index=call["output_index"],
                item=ResponseFunctionToolCall(id=call["id"], call_id=call["call_id"], name=call["name"],
                                              arguments="", type="function_call", status="in_progress"))
        elif part.name and not call["name"]:
            call["name"] = part.name
        if part.arguments:
            call["arguments"] += part.arguments
            yield ResponseFunctionCallArgumentsDeltaEvent(
                type="response.function_call_arguments.delta", sequence_number=self._seq(), item_id=call["id"],
                output_index=call["output_index"], delta=part.arguments)

    def finish(self, output: TextGenerationOutput) -> Iterable[TResponseStreamEvent]:
        """Close every open item and end with `response.completed` carrying the verified answer."""
        yield from self._start(output.id)
        final: dict[int, TResponseOutputItem] = {}
        if self._text_index is not None:
            item_id = f"msg_{self.response_id}"
            text = "".join(self._text)
            part = ResponseOutputText(type="output_text", text=text, annotations=[])
            yield ResponseTextDoneEvent(type="response.output_text.done", sequence_number=self._seq(),
                                        item_id=item_id, output_index=self._text_index, content_index=0,
                                        text=text, logprobs=[])
            yield ResponseContentPartDoneEvent(type="response.content_part.done", sequence_number=self._seq(),
                                               item_id=item_id, output_index=self._text_index, content_index=0,
                                               part=part)
            message = ResponseOutputMessage(id=item_id, type="message", role="assistant", status="completed",
                                            content=[part])
            final[self._text_index] = message
            yield ResponseOutputItemDoneEvent(type="response.output_item.done", sequence_number=self._seq(),
                                              output_index=self._text_index, item=message)
        for call in self._calls.values():
            arguments = call["arguments"] or "{}"
            yield ResponseFunctionCallArgumentsDoneEvent(
                type="response.function_call_arguments.done", sequence_number=self._seq(), item_id=call["id"],
                output_index=call["output_index"], arguments=arguments)
            item = ResponseFunctionToolCall(id=call["id"], call_id=call["call_id"], name=call["name"],
                                            arguments=arguments, type="function_call", status="completed")
            final[call["output_index"]] = item
            yield ResponseOutputItemDoneEvent(type="response.output_item.done", sequence_number=self._seq(),
                                              output_index=call["output_index"], item=item)
        items = [final[i] for i in sorted(final)]
        yield ResponseCompletedEvent(type="response.completed", sequence_number=self._seq(),
                                     response=self._response(items, "completed", _response_usage(_usage(output))))


__all__ = ["OpenGradientModel", "OpenGradientModelProvider", "handoff_to_openai", "items_to_messages",
           "openai_agents_model", "output_items", "tool_to_openai"]
