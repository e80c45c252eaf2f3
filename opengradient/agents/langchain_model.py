"""`OpenGradientChatModel`: OpenGradient's TEE-verified, x402-paid LLMs as a LangChain chat model.

```python
import opengradient as og
from opengradient.agents import OpenGradientChatModel

llm = OpenGradientChatModel(model="openai/gpt-4o", private_key="0x…")   # or client=og.init(...)
msg = llm.invoke("Hello")
msg.response_metadata["proof"]          # the enclave's signature over this request and answer
```

Every call goes through `client.llm.chat`/`achat` (streams through the SDK's SSE streams), so each
answer is paid with x402 and its TEE signature is checked before LangChain sees it; the check's
result (`tee_verified`) and the `Proof` (as a dict) are in `response_metadata`.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser, PydanticToolsParser
from langchain_core.output_parsers.base import OutputParserLike
from langchain_core.output_parsers.pydantic import PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils import secret_from_env
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from opengradient import bounded_json
from opengradient.agents._errors import langchain_errors
from opengradient.errors import ConfigurationError, InvalidInputError
from opengradient.types import TEE_LLM, StreamChunk, TextGenerationOutput, x402SettlementMode

if TYPE_CHECKING:
    from opengradient.client.client import Client

PROVIDER = "opengradient"
DEFAULT_MODEL = TEE_LLM.GPT_4O.value
_TOOL_CHOICE_ALIASES = {"any": "required", "required": "required", "auto": "auto", "none": "none"}
#: Per-call options a chat model run may carry that the gateway has no use for.
_IGNORED_OPTIONS = frozenset({"parallel_tool_calls", "ls_structured_output_format", "stream_options", "strict"})
_MEDIA_BLOCKS = frozenset({"image", "image_url", "input_image", "file", "input_file", "audio", "input_audio"})


class OpenGradientChatModel(BaseChatModel):
    """OpenGradient's TEE-verified LLMs as a LangChain chat model.

    Give it a `client` (`og.init(...)`, `og.devnet.start().client`, any `og.Client`) or a
    `private_key` (alias `api_key`; default `$OG_PRIVATE_KEY`), from which it builds a client on
    first use with `network`, `timeout`, `max_retries` and `client_kwargs`. Without either it uses
    `og.global_client`.

    Standard parameters: `model` (alias `model_name`; any gateway model, `og.TEE_LLM` values or
    plain strings), `temperature`, `max_tokens`, `stop` (alias `stop_sequences`), `timeout`,
    `max_retries`, `rate_limiter`, `streaming`; OpenGradient's own: `x402_settlement_mode`
    (alias `settlement_mode`). `timeout` and `max_retries` apply to clients the model builds
    itself; a client passed in keeps its own settings.

    `response_metadata` of every answer holds `model_name`, `finish_reason`, `id`,
    `tee_verified` (the enclave signature checked out), `tee_id`, `tee_endpoint` and
    `tee_payment_address` (which enclave answered, and where it is paid), `payment_hash` and `proof`
    (`og.Proof.to_dict()`; rebuild with `og.Proof.from_dict` and `.verify()` it later).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    client: Any = Field(default=None, exclude=True, repr=False)
    """An `og.Client`; when None, one is built from `private_key`."""
    private_key: SecretStr | None = Field(validation_alias=AliasChoices("private_key", "api_key"),
                                          default_factory=secret_from_env("OG_PRIVATE_KEY", default=None))
    """Key that pays for requests (x402), when no `client` is given. Default: `$OG_PRIVATE_KEY`."""
    model: str = Field(default=DEFAULT_MODEL, validation_alias=AliasChoices("model", "model_name"))
    """Gateway model name, `provider/model` (`og.TEE_LLM`) or a bare name."""
    temperature: float = 0.0
    max_tokens: int = 300
    stop: list[str] | None = Field(default=None, validation_alias=AliasChoices("stop", "stop_sequences"))
    timeout: float | None = None
    """Seconds to wait for the gateway (clients built by this model)."""
    max_retries: int = 2
    """Retries of failed connections (clients built by this model); a retried request reuses its
    payment authorization, so it never pays twice."""
    x402_settlement_mode: str = Field(default=x402SettlementMode.SETTLE.value,
                                      validation_alias=AliasChoices("x402_settlement_mode", "settlement_mode"))
    """How much of each request is recorded on chain (`og.x402SettlementMode`)."""
    streaming: bool = False
    """Stream from the gateway even when called with `invoke`."""
    network: str | None = None
    """Network preset of a client built by this model (`"public"` by default)."""
    client_kwargs: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)
    """More `og.Client` arguments for a client built by this model."""

    _own_client: Any = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for key in ("model", "model_name"):
                if isinstance(values.get(key), TEE_LLM):
                    values[key] = values[key].value
            for key in ("x402_settlement_mode", "settlement_mode"):
                if isinstance(values.get(key), x402SettlementMode):
                    values[key] = values[key].value
            for key in ("stop", "stop_sequences"):
                if isinstance(values.get(key), str):
                    values[key] = [values[key]]
        return values

    @model_validator(mode="after")
    def _check(self) -> OpenGradientChatModel:
        if self.client is not None and not hasattr(self.client, "llm"):
            raise ConfigurationError(f"client must be an og.Client, got {type(self.client).__name__}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ConfigurationError(f"max_tokens must be positive, got {self.max_tokens}")
        return self

    # -- LangChain plumbing ------------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "opengradient-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["opengradient", "agents", "langchain_model"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"private_key": "OG_PRIVATE_KEY"}

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens,
                "stop": self.stop, "x402_settlement_mode": self.x402_settlement_mode}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider=PROVIDER, ls_model_name=str(kwargs.get("model") or self.model),
                                 ls_model_type="chat",
                                 ls_temperature=kwargs.get("temperature", self.temperature))
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens:
            params["ls_max_tokens"] = max_tokens
        stops = stop or kwargs.get("stop") or self.stop
        if stops:
            params["ls_stop"] = [stops] if isinstance(stops, str) else list(stops)
        return params

    # -- the client ----------------------------------------------------------------------------------

    def get_client(self) -> Client:
        """The `og.Client` this model calls (built on first use when none was given)."""
        if self.client is not None:
            return self.client
        with self._client_lock:
            if self._own_client is None:
                key = self.private_key.get_secret_value() if self.private_key is not None else None
                if not key:
                    import opengradient

                    if opengradient.global_client is not None:
                        return opengradient.global_client
                    raise ConfigurationError(
                        "OpenGradientChatModel needs a client or a private key",
                        hint="pass client=og.init(...), private_key=…, or set OG_PRIVATE_KEY")
                from opengradient.client.client import Client

                kwargs = dict(self.client_kwargs)
                kwargs.setdefault("network", self.network or "public")
                kwargs.setdefault("timeout", self.timeout)
                kwargs.setdefault("max_retries", self.max_retries)
                self._own_client = Client(key, **kwargs)
            return self._own_client

    # -- requests ------------------------------------------------------------------------------------

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
                 ) -> dict[str, Any]:
        """Keyword arguments for `client.llm.chat` (per-call options override the model's)."""
        options = dict(kwargs)
        for name in _IGNORED_OPTIONS:
            options.pop(name, None)
        model = options.pop("model", None) or self.model
        stops = stop if stop is not None else options.pop("stop", None)
        options.pop("stop", None)
        if stops is None:
            stops = self.stop
        request: dict[str, Any] = {
            "model": model.value if isinstance(model, TEE_LLM) else str(model),
            "messages": to_openai_messages(messages),
            "max_tokens": options.pop("max_tokens", None) or self.max_tokens,
            "temperature": _or(options.pop("temperature", None), self.temperature),
            "stop_sequence": list(stops) if stops else None,
            "x402_settlement_mode": options.pop("x402_settlement_mode", None) or self.x402_settlement_mode,
        }
        tools = options.pop("tools", None)
        if tools:
            request["tools"] = [convert_to_openai_tool(t) for t in tools]
            choice = options.pop("tool_choice", None)
            if choice is not None:
                request["tool_choice"] = _tool_choice(choice, request["tools"])
        options.pop("tool_choice", None)
        response_format = options.pop("response_format", None)
        if response_format is not None:
            request["response_format"] = response_format
        if options:
            warnings.warn(f"OpenGradientChatModel ignores unsupported options {sorted(options)}",
                          stacklevel=4)
        return request

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        with langchain_errors():
            output = self.get_client().llm.chat(**request)
        assert isinstance(output, TextGenerationOutput)
        return _chat_result(output, request["model"])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        with langchain_errors():
            output = await self.get_client().llm.achat(**request)
        assert isinstance(output, TextGenerationOutput)
        return _chat_result(output, request["model"])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
                ) -> Iterator[ChatGenerationChunk]:
        # LangChain's `stream` reports each chunk to the callbacks itself.
        request = self._request(messages, stop, kwargs)
        assembler = _ChunkAssembler(request["model"])
        with langchain_errors():
            stream = self.get_client().llm.chat(**request, stream=True)
            assert not isinstance(stream, TextGenerationOutput)
            with stream:
                for chunk in stream:
                    generation = assembler.chunk(chunk)
                    if generation is not None:
                        yield generation
            final = assembler.final(stream.result)
        yield final

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any
                       ) -> AsyncIterator[ChatGenerationChunk]:
        # LangChain's `stream` reports each chunk to the callbacks itself.
        request = self._request(messages, stop, kwargs)
        assembler = _ChunkAssembler(request["model"])
        with langchain_errors():
            stream = await self.get_client().llm.achat(**request, stream=True)
            assert not isinstance(stream, TextGenerationOutput)
            async with stream:
                async for chunk in stream:
                    generation = assembler.chunk(chunk)
                    if generation is not None:
                        yield generation
            final = assembler.final(stream.result)
        yield final

    # -- tools and structured output ---------------------------------------------------------------

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: dict[str, Any] | str | bool | None = None, strict: bool | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """A runnable that offers `tools` to the model; the model itself is left unchanged.

        `tools`: anything LangChain accepts (`@tool` functions, `BaseTool`s, Pydantic models,
        TypedDicts, plain functions, OpenAI tool dicts, JSON schemas). `tool_choice`: `"auto"`,
        `"any"`/`"required"`/`True` (must call one), `"none"`, or a tool name (must call it).
        """
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = _tool_choice(tool_choice, formatted)
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
            self, schema: dict[str, Any] | type | None = None, *,
            method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
            include_raw: bool = False, strict: bool | None = None, **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A runnable that answers with `schema`-shaped output (a Pydantic object or a dict).

        `method="function_calling"` forces a call of a tool shaped like the schema;
        `"json_schema"` asks the gateway for a `json_schema` response format; `"json_mode"` asks
        for any JSON object (say in the prompt which keys you want). With `include_raw=True` the
        result is `{"raw": AIMessage, "parsed": …, "parsing_error": …}`.
        """
        if kwargs:
            raise ValueError(f"with_structured_output got unsupported arguments {sorted(kwargs)}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        if method != "json_mode" and schema is None:
            raise ValueError(f"method={method!r} needs a schema")
        trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        llm: Runnable[LanguageModelInput, Any]
        parser: OutputParserLike[Any]
        if method == "function_calling":
            assert schema is not None
            tool = convert_to_openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name, strict=strict, ls_structured_output_format=trace)
            if is_pydantic:
                parser = PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            else:
                parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        elif method == "json_schema":
            assert schema is not None
            function = convert_to_openai_tool(schema, strict=strict)["function"]
            spec: dict[str, Any] = {"name": function["name"], "schema": convert_to_json_schema(schema)}
            if function.get("description"):
                spec["description"] = function["description"]
            if strict is not None:
                spec["strict"] = strict
            llm = self.bind(response_format={"type": "json_schema", "json_schema": spec},
                            ls_structured_output_format=trace)
            parser = (PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                      if is_pydantic else JsonOutputParser())
        elif method == "json_mode":
            llm = self.bind(response_format={"type": "json_object"},
                            ls_structured_output_format={**trace, "schema": schema} if schema else None)
            parser = (PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                      if is_pydantic else JsonOutputParser())
        else:
            raise ValueError(f"unknown method {method!r}; use 'function_calling', 'json_schema' or 'json_mode'")
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([unparsed], exception_key="parsing_error")


def langchain_adapter(private_key: str | None = None, model_cid: TEE_LLM | str = TEE_LLM.GPT_4O,
                      max_tokens: int = 300,
                      x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE, *,
                      client: Client | None = None, **kwargs: Any) -> OpenGradientChatModel:
    """The 0.7.4 factory: a LangChain chat model for `model_cid`, paying with `private_key`.

    Pass `client=` to reuse a client (a devnet's, say) instead of a key; other keyword arguments
    go to `OpenGradientChatModel`.
    """
    model = model_cid.value if isinstance(model_cid, TEE_LLM) else model_cid
    fields: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                              "x402_settlement_mode": x402_settlement_mode, **kwargs}
    if client is not None:
        fields["client"] = client
    if private_key is not None:
        fields["private_key"] = private_key
    return OpenGradientChatModel(**fields)


# -- conversions ------------------------------------------------------------------------------------


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> str:
    """LangChain's tool_choice spellings → the SDK's: `auto`, `none`, `required` or a tool name."""
    if choice is True:
        return str(tools[0]["function"]["name"]) if len(tools) == 1 else "required"
    if isinstance(choice, Mapping):  # OpenAI's {"type": "function", "function": {"name": …}}
        choice = (choice.get("function") or {}).get("name") or choice.get("name")
    if isinstance(choice, str):
        if choice in _TOOL_CHOICE_ALIASES:
            return _TOOL_CHOICE_ALIASES[choice]
        names = [t["function"]["name"] for t in tools]
        if choice not in names:
            raise InvalidInputError(f"tool_choice {choice!r} names no bound tool",
                                    hint=f"bound tools: {', '.join(names)}")
        return choice
    raise InvalidInputError(f"tool_choice {choice!r} is not valid",
                            hint="use 'auto', 'any', 'required', 'none', True or a tool name")


def _text(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping) and block.get("type") in ("text", "input_text", "output_text"):
            parts.append(str(block.get("text") or ""))
    return "".join(parts)


def _user_content(content: str | list[Any]) -> str | list[dict[str, Any]]:
    """Text stays text; content with media becomes OpenAI content parts."""
    if isinstance(content, str):
        return content
    if not any(isinstance(b, Mapping) and b.get("type") in _MEDIA_BLOCKS for b in content):
        return _text(content)
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "text": block})
        elif isinstance(block, Mapping):
            kind = block.get("type")
            if kind in ("text", "input_text"):
                parts.append({"type": "text", "text": str(block.get("text") or "")})
            elif kind == "image_url":
                parts.append({"type": "image_url", "image_url": block["image_url"]})
            elif kind == "image":
                if block.get("url"):
                    url = block["url"]
                else:
                    data = block.get("base64") or block.get("data")
                    url = f"data:{block.get('mime_type', 'image/png')};base64,{data}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            else:
                parts.append(dict(block))
    return parts


def _tool_result_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        text = _text(content)
        return text or json.dumps(content, ensure_ascii=False)
    return json.dumps(content, ensure_ascii=False)


def _openai_tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    calls = [{"id": c.get("id") or f"call_{i}", "type": "function",
              "function": {"name": c["name"], "arguments": json.dumps(c.get("args") or {}, ensure_ascii=False)}}
             for i, c in enumerate(message.tool_calls)]
    calls += [{"id": c.get("id") or f"call_invalid_{i}", "type": "function",
               "function": {"name": c.get("name") or "", "arguments": c.get("args") or ""}}
              for i, c in enumerate(message.invalid_tool_calls)]
    return calls


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages → the gateway's OpenAI chat messages."""
    out: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any]
        if isinstance(message, SystemMessage):
            entry = {"role": "system", "content": _text(message.content)}
        elif isinstance(message, HumanMessage):
            content: str | list[Any] = message.content
            if isinstance(content, list):  # Anthropic-style tool results ride in the user turn
                results = [b for b in content if isinstance(b, Mapping) and b.get("type") == "tool_result"]
                out += [{"role": "tool", "tool_call_id": str(b.get("tool_use_id") or ""),
                         "content": _tool_result_text(b.get("content"))} for b in results]
                content = [b for b in content if not (isinstance(b, Mapping) and b.get("type") == "tool_result")]
                if results and not content:
                    continue
            entry = {"role": "user", "content": _user_content(content)}
        elif isinstance(message, AIMessage):
            entry = {"role": "assistant", "content": _text(message.content)}
            calls = _openai_tool_calls(message)
            if calls:
                entry["tool_calls"] = calls
        elif isinstance(message, ToolMessage):
            content = message.content if isinstance(message.content, str) else _text(message.content)
            if not isinstance(message.content, str) and not content:
                content = json.dumps(message.content, ensure_ascii=False)
            entry = {"role": "tool", "content": content, "tool_call_id": message.tool_call_id}
        elif isinstance(message, FunctionMessage):
            entry = {"role": "tool", "content": _text(message.content), "tool_call_id": message.name}
        elif isinstance(message, ChatMessage):
            role = {"human": "user", "ai": "assistant"}.get(message.role, message.role)
            entry = {"role": role, "content": _text(message.content)}
        else:
            raise InvalidInputError(f"OpenGradientChatModel cannot send a {type(message).__name__}")
        if message.name and entry["role"] in ("user", "assistant", "system"):
            entry["name"] = message.name
        out.append(entry)
    return out


def _usage(output_usage: Any) -> UsageMetadata | None:
    if output_usage is None:
        return None
    return UsageMetadata(input_tokens=output_usage.prompt_tokens, output_tokens=output_usage.completion_tokens,
                         total_tokens=output_usage.total_tokens)


def _metadata(output: TextGenerationOutput | None, model: str, finish_reason: str | None) -> dict[str, Any]:
    """`response_metadata` of an answer: model, finish reason, payment and TEE evidence."""
    meta: dict[str, Any] = {"model_name": model, "model_provider": PROVIDER, "finish_reason": finish_reason}
    if output is None:
        return meta
    if output.model and output.model != model:
        meta["served_model"] = output.model
    if output.id:
        meta["id"] = output.id
    meta["tee_verified"] = output.tee_verified
    for key in ("tee_id", "tee_endpoint", "tee_payment_address"):
        if getattr(output, key):
            meta[key] = getattr(output, key)
    if output.payment_hash:
        meta["payment_hash"] = output.payment_hash
    if output.proof is not None:
        meta["proof"] = output.proof.to_dict()
    return meta


def _parse_tool_calls(raw_calls: Any) -> tuple[list[Any], list[Any]]:
    calls, invalid = [], []
    for raw in raw_calls or []:
        function = raw.get("function") or {}
        name, arguments, call_id = function.get("name") or "", function.get("arguments") or "", raw.get("id")
        try:
            args = bounded_json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            invalid.append(invalid_tool_call(name=name, args=arguments, id=call_id, error=str(exc)))
            continue
        if not isinstance(args, dict):
            invalid.append(invalid_tool_call(name=name, args=arguments, id=call_id,
                                             error="tool arguments are not a JSON object"))
            continue
        calls.append(tool_call(name=name, args=args, id=call_id))
    return calls, invalid


def _chat_result(output: TextGenerationOutput, model: str) -> ChatResult:
    raw = output.chat_output or {}
    calls, invalid = _parse_tool_calls(raw.get("tool_calls"))
    message = AIMessage(content=raw.get("content") or "", tool_calls=calls, invalid_tool_calls=invalid,
                        id=output.id, usage_metadata=_usage(output.usage),
                        response_metadata=_metadata(output, model, output.finish_reason))
    generation = ChatGeneration(message=message, generation_info={"finish_reason": output.finish_reason})
    return ChatResult(generations=[generation], llm_output={"model_name": model, "id": output.id})


class _ChunkAssembler:
    """SDK stream chunks → LangChain chunks; the last chunk carries usage and metadata (once)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id: str | None = None
        self.finish_reason: str | None = None

    def chunk(self, chunk: StreamChunk) -> ChatGenerationChunk | None:
        self.id = self.id or chunk.id
        text = ""
        pieces = []
        for choice in chunk.choices:
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
            text += choice.delta.content or ""
            pieces += [tool_call_chunk(name=d.name, args=d.arguments, id=d.id, index=d.index)
                       for d in choice.delta.tool_calls]
        if not text and not pieces:
            return None
        return ChatGenerationChunk(message=AIMessageChunk(content=text, tool_call_chunks=pieces, id=self.id))

    def final(self, output: TextGenerationOutput | None) -> ChatGenerationChunk:
        finish = (output.finish_reason if output is not None else None) or self.finish_reason
        message_id = (output.id if output is not None else None) or self.id
        message = AIMessageChunk(content="", id=message_id, chunk_position="last",
                                 usage_metadata=_usage(output.usage if output is not None else None),
                                 response_metadata=_metadata(output, self.model, finish))
        return ChatGenerationChunk(message=message, generation_info={"finish_reason": finish})


__all__ = ["OpenGradientChatModel", "langchain_adapter", "to_openai_messages"]
