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

Nothing a caller asks for is dropped on the way: an unknown constructor argument is refused,
per-call options the gateway has no field for are sent as they are (and the gateway refuses what
it does not take), and every content block becomes OpenAI's content part or is refused.

LangChain's `init_chat_model` admits only LangChain's built-in providers; `init_chat_model` here
takes `"opengradient:<model>"` (or `model_provider="opengradient"`) and hands every other model to
LangChain's. `langchain.agents.create_agent(model=OpenGradientChatModel(...), ...)` takes the model
itself, structured `response_format`s included.
"""

from __future__ import annotations

import difflib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, cast

from opengradient import bounded_json
from opengradient.agents._errors import langchain_errors
from opengradient.errors import ConfigurationError, InvalidInputError, missing_extra
from opengradient.types import TEE_LLM, StreamChunk, TextGenerationOutput, x402SettlementMode

try:
    from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
    from langchain_core.exceptions import OutputParserException
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
except ImportError as exc:
    raise missing_extra(exc, "the LangChain adapter (OpenGradientChatModel)", "langchain") from exc

if TYPE_CHECKING:
    from opengradient.client.client import Client

PROVIDER = "opengradient"
DEFAULT_MODEL = TEE_LLM.GPT_4O.value
_TOOL_CHOICE_ALIASES = {"any": "required", "required": "required", "auto": "auto", "none": "none"}
#: Per-call options that are LangChain's own, not request fields: tracing metadata, and the usage
#: option of streams (the SDK always asks for usage).
_LANGCHAIN_OPTIONS = frozenset({"ls_structured_output_format", "stream_options"})
#: Sampling options with a field of their own on the model.
_SAMPLING = ("top_p", "frequency_penalty", "presence_penalty", "seed")
#: Arguments the model takes besides its fields (BaseChatModel's deprecated `callback_manager`).
_EXTRA_ARGUMENTS = frozenset({"callback_manager"})
_TEXT_BLOCKS = frozenset({"text", "input_text", "output_text"})
#: Blocks of an assistant turn that are not sent back as content: tool calls travel as
#: `tool_calls`, and a model's reasoning is not replayed.
_ASSISTANT_SKIPPED = frozenset({"tool_use", "tool_call", "reasoning", "thinking", "redacted_thinking"})
_MEDIA_BLOCKS = frozenset({"image", "image_url", "input_image", "file", "input_file", "audio", "input_audio",
                           "document", "video"})
_AUDIO_FORMATS = {"wav": "wav", "x-wav": "wav", "wave": "wav", "vnd.wave": "wav", "mpeg": "mp3", "mp3": "mp3"}


class OpenGradientChatModel(BaseChatModel):
    """OpenGradient's TEE-verified LLMs as a LangChain chat model.

    Give it a `client` (`og.init(...)`, `og.devnet.start().client`, any `og.Client`) or a
    `private_key` (alias `api_key`; default `$OG_PRIVATE_KEY`), from which it builds a client on
    first use with `network`, `timeout`, `max_retries` and `client_kwargs`. Without either it uses
    `og.global_client`.

    Standard parameters: `model` (alias `model_name`; any gateway model, `og.TEE_LLM` values or
    plain strings), `temperature`, `max_tokens`, `stop` (alias `stop_sequences`), `top_p`,
    `frequency_penalty`, `presence_penalty`, `seed`, `model_kwargs` (more request fields, sent as
    they are), `timeout`, `max_retries`, `rate_limiter`, `streaming`; OpenGradient's own:
    `x402_settlement_mode` (alias `settlement_mode`). `timeout` and `max_retries` apply to clients
    the model builds itself; a client passed in keeps its own settings. An argument the model does
    not know is refused (a misspelt `temperatur=` would otherwise leave the default in force).

    Defaults follow LangChain's chat models: `max_tokens=None` and the sampling options unset send
    nothing, so the gateway's defaults apply (on the devnet: 100 tokens); `temperature` is 0.0, the
    value the enclave signs when none is sent.

    Per-call options (`invoke(..., top_p=0.5, parallel_tool_calls=False)`) override the model's;
    any the model has no field for are sent as request fields, and the gateway refuses those it
    does not take. `response_format` may be an OpenAI response format, a Pydantic class, a
    TypedDict or a JSON schema; with a class, the parsed answer is in `additional_kwargs["parsed"]`.

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
    """Sampling temperature, 0 to 2 (0.0: what the enclave signs when none is sent)."""
    max_tokens: int | None = None
    """Most tokens to generate; None leaves it (and the price) to the gateway's default."""
    stop: list[str] | None = Field(default=None, validation_alias=AliasChoices("stop", "stop_sequences"))
    top_p: float | None = None
    """Nucleus sampling, 0 to 1 (unset: the gateway's default)."""
    frequency_penalty: float | None = None
    """-2 to 2 (unset: the gateway's default)."""
    presence_penalty: float | None = None
    """-2 to 2 (unset: the gateway's default)."""
    seed: int | None = None
    """Ask for reproducible sampling (where the model supports it)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """More request fields, sent as they are (the gateway refuses those it does not take)."""
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
            _refuse_unknown(cls, values)
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
        clash = sorted(set(self.model_kwargs) & (set(type(self).model_fields) | {"messages", "tools",
                                                                                  "tool_choice", "stream"}))
        if clash:
            raise ConfigurationError(f"model_kwargs sets {', '.join(clash)}: pass them as arguments of the model "
                                     "(or of the call) instead")
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
        params = {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens,
                  "stop": self.stop, "x402_settlement_mode": self.x402_settlement_mode}
        return {**params, **self._sampling(), **self.model_kwargs}

    def _sampling(self) -> dict[str, Any]:
        """The sampling options that are set."""
        return {name: getattr(self, name) for name in _SAMPLING if getattr(self, name) is not None}

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

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> _Request:
        """Keyword arguments for `client.llm.chat` (per-call options override the model's).

        Options without an argument of their own go into the request body as they are: none is
        dropped, and the gateway refuses the ones it does not take.
        """
        options = dict(kwargs)
        for name in _LANGCHAIN_OPTIONS:
            options.pop(name, None)
        model = options.pop("model", None) or self.model
        stops = stop if stop is not None else options.pop("stop", None)
        options.pop("stop", None)
        if stops is None:
            stops = self.stop
        max_tokens = options.pop("max_tokens", None)
        request: dict[str, Any] = {
            "model": model.value if isinstance(model, TEE_LLM) else str(model),
            "messages": to_openai_messages(messages),
            "max_tokens": self.max_tokens if max_tokens is None else max_tokens,
            "temperature": _or(options.pop("temperature", None), self.temperature),
            "stop_sequence": list(stops) if stops else None,
            "x402_settlement_mode": options.pop("x402_settlement_mode", None) or self.x402_settlement_mode,
        }
        strict = options.pop("strict", None)
        tools = options.pop("tools", None)
        choice = options.pop("tool_choice", None)
        parallel = options.pop("parallel_tool_calls", None)
        if tools:
            request["tools"] = [_strict_tool(convert_to_openai_tool(t), strict) for t in tools]
            if choice is not None:
                request["tool_choice"] = _tool_choice(choice, request["tools"])
        elif choice not in (None, "none", "auto"):
            raise InvalidInputError(f"tool_choice {choice!r} needs tools", hint="bind them with bind_tools")
        response_format, parse = _response_format(options.pop("response_format", None), strict)
        if response_format is not None:
            request["response_format"] = response_format
        extra = {**self._sampling(), **self.model_kwargs, **options}
        if parallel is not None and tools:  # without tools there is no tool call to limit
            extra["parallel_tool_calls"] = parallel
        if extra:
            request["extra_body"] = extra
        return _Request(request, parse)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        prepared = self._request(messages, stop, kwargs)
        with langchain_errors():
            output = self.get_client().llm.chat(**prepared.kwargs)
        assert isinstance(output, TextGenerationOutput)
        return _chat_result(output, prepared)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        prepared = self._request(messages, stop, kwargs)
        with langchain_errors():
            output = await self.get_client().llm.achat(**prepared.kwargs)
        assert isinstance(output, TextGenerationOutput)
        return _chat_result(output, prepared)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
                ) -> Iterator[ChatGenerationChunk]:
        # LangChain's `stream` reports each chunk to the callbacks itself.
        prepared = self._request(messages, stop, kwargs)
        assembler = _ChunkAssembler(prepared)
        with langchain_errors():
            stream = self.get_client().llm.chat(**prepared.kwargs, stream=True)
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
        prepared = self._request(messages, stop, kwargs)
        assembler = _ChunkAssembler(prepared)
        with langchain_errors():
            stream = await self.get_client().llm.achat(**prepared.kwargs, stream=True)
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
                   parallel_tool_calls: bool | None = None, **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """A runnable that offers `tools` to the model; the model itself is left unchanged.

        `tools`: anything LangChain accepts (`@tool` functions, `BaseTool`s, Pydantic models,
        TypedDicts, plain functions, OpenAI tool dicts, JSON schemas). `tool_choice`: `"auto"`,
        `"any"`/`"required"`/`True` (must call one), `"none"`, or a tool name (must call it).
        `parallel_tool_calls=False` allows one tool call per answer (the SDK refuses more).
        Other keyword arguments are bound as per-call options.
        """
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = _tool_choice(tool_choice, formatted)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
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


def init_chat_model(model: str | None = None, *, model_provider: str | None = None,
                    **kwargs: Any) -> BaseChatModel | Runnable[LanguageModelInput, Any]:
    """LangChain's `init_chat_model`, knowing OpenGradient too.

    LangChain's own admits only its built-in providers, so `"opengradient:<model>"` (or
    `model_provider="opengradient"`) reaches OpenGradient only through this one:
    `init_chat_model("opengradient:openai/gpt-4o", client=client)` is
    `OpenGradientChatModel(model="openai/gpt-4o", client=client)`. Every other model goes to
    `langchain.chat_models.init_chat_model` (the `langchain` package) unchanged.
    """
    provider, name = model_provider, model
    if provider is None and isinstance(model, str) and model.startswith(f"{PROVIDER}:"):
        provider, name = PROVIDER, model.split(":", 1)[1]
    if provider == PROVIDER:
        configurable = sorted({"configurable_fields", "config_prefix"} & set(kwargs))
        if configurable:
            raise ConfigurationError(f"init_chat_model for {PROVIDER} takes no {', '.join(configurable)}",
                                     hint="build the model, then use its configurable_fields(...)")
        return OpenGradientChatModel(model=name or DEFAULT_MODEL, **kwargs)
    try:
        from langchain.chat_models import init_chat_model as langchain_init_chat_model
    except ImportError as exc:
        raise ImportError(f"init_chat_model for a provider other than {PROVIDER} is LangChain's own, in the "
                          "`langchain` package: pip install langchain") from exc
    return cast("BaseChatModel | Runnable[LanguageModelInput, Any]",
                langchain_init_chat_model(model, model_provider=model_provider, **kwargs))


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


def _refuse_unknown(cls: type[BaseModel], values: Mapping[str, Any]) -> None:
    """Refuse constructor arguments the model does not know, naming the likely one meant."""
    known = set(_EXTRA_ARGUMENTS)
    for name, info in cls.model_fields.items():
        known.add(name)
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            known.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            known.add(alias)
    unknown = sorted(set(values) - known)
    if unknown:
        guesses = [match for name in unknown for match in difflib.get_close_matches(name, known, n=1)]
        meant = f" (did you mean {', '.join(repr(g) for g in guesses)}?)" if guesses else ""
        raise ConfigurationError(f"{cls.__name__} got unknown arguments {', '.join(map(repr, unknown))}{meant}",
                                 hint="more gateway request fields go in model_kwargs={...}")


@dataclass(frozen=True)
class _Request:
    """One prepared call: the `client.llm.chat` arguments, and how to parse a structured answer."""

    kwargs: dict[str, Any]
    parse: Callable[[str], Any] | None = None

    @property
    def model(self) -> str:
        return str(self.kwargs["model"])


def _strict_tool(tool: dict[str, Any], strict: bool | None) -> dict[str, Any]:
    """A tool with a per-call `strict` applied to its function."""
    if strict is None:
        return tool
    return {**tool, "function": {**tool["function"], "strict": strict}}


def _response_format(value: Any, strict: bool | None) -> tuple[dict[str, Any] | None, Callable[[str], Any] | None]:
    """A per-call `response_format` as OpenAI's dict, and the parser of its answers (for classes).

    Accepted: OpenAI's `{"type": "json_schema" | "json_object" | "text", ...}`, a Pydantic class, a
    TypedDict, or a JSON schema (as `with_structured_output` takes them).
    """
    if value is None:
        return None, None
    if isinstance(value, Mapping) and value.get("type") in ("json_schema", "json_object", "text"):
        if strict is not None and value.get("type") == "json_schema":
            return {**value, "json_schema": {**(value.get("json_schema") or {}), "strict": strict}}, None
        return dict(value), None
    if not isinstance(value, (Mapping, type)):
        raise InvalidInputError(f"response_format {value!r} is not a response format",
                                hint="pass {'type': 'json_schema', ...}, a Pydantic class, a TypedDict or a "
                                     "JSON schema")
    schema: dict[str, Any] | type = dict(value) if isinstance(value, Mapping) else value
    function = convert_to_openai_tool(schema)["function"]
    spec: dict[str, Any] = {"name": function["name"], "schema": convert_to_json_schema(schema)}
    if function.get("description"):
        spec["description"] = function["description"]
    if strict is not None:
        spec["strict"] = strict
    parse: Callable[[str], Any] | None = None
    if isinstance(value, type) and is_basemodel_subclass(value):
        parse = cast("type[BaseModel]", value).model_validate_json
    elif isinstance(value, type):
        parse = bounded_json.loads
    return {"type": "json_schema", "json_schema": spec}, parse


def _text(content: str | list[Any]) -> str:
    """The text blocks of `content`, joined (the caller has dealt with any other block)."""
    if isinstance(content, str):
        return content
    return "".join(block if isinstance(block, str) else str(block.get("text") or "")
                   for block in content if isinstance(block, str) or _kind(block) in _TEXT_BLOCKS)


def _kind(block: Any) -> str | None:
    return block.get("type") if isinstance(block, Mapping) else None


def _data_url(mime: Any, data: Any, what: str) -> str:
    if not isinstance(data, str) or not data:
        raise InvalidInputError(f"a {what} block needs its data (base64) or a URL")
    return f"data:{mime or 'application/octet-stream'};base64,{data}"


def _no_form(what: str, why: str) -> InvalidInputError:
    return InvalidInputError(f"OpenGradientChatModel cannot send {what}: {why}",
                             hint="OpenAI's chat format carries images (URL or data), files and wav/mp3 audio as data")


def _source(block: Mapping[str, Any]) -> tuple[str | None, Any, Any]:
    """(kind, data or URL, mime type) of a media block in LangChain's v1 or v0 shape or Anthropic's."""
    source = block.get("source")
    if isinstance(source, Mapping):  # Anthropic: {"source": {"type": "base64" | "url" | "text", ...}}
        kind = source.get("type")
        return kind, source.get("url") if kind == "url" else source.get("data"), source.get("media_type")
    mime = block.get("mime_type")
    if block.get("source_type") is not None:  # LangChain v0
        kind = block["source_type"]
        return kind, block.get("url") if kind == "url" else block.get("data"), mime
    for kind, key in (("url", "url"), ("base64", "base64"), ("id", "file_id"), ("text", "text")):
        if block.get(key) is not None:
            return kind, block[key], mime
    return None, None, mime


def _filename(block: Mapping[str, Any]) -> str | None:
    for holder in (block, block.get("extras"), block.get("metadata"), block.get("source")):
        if isinstance(holder, Mapping) and isinstance(holder.get("filename"), str):
            return str(holder["filename"])
    return None


def _image_part(block: Mapping[str, Any]) -> dict[str, Any]:
    kind, value, mime = _source(block)
    if kind == "url":
        url = str(value)
    elif kind == "base64":
        url = _data_url(mime or "image/png", value, "image")
    else:
        raise _no_form("an image by file id", "the gateway keeps no files; send its data or URL")
    image: dict[str, Any] = {"url": url}
    detail = block.get("detail") or (block.get("extras") or {}).get("detail")
    if detail:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _file_part(block: Mapping[str, Any]) -> dict[str, Any]:
    kind, value, mime = _source(block)
    if kind == "text":
        return {"type": "text", "text": str(value)}
    if kind != "base64":
        raise _no_form(f"a file by {'URL' if kind == 'url' else 'file id'}",
                       "OpenAI's chat format takes files as data: fetch it and send base64")
    file: dict[str, Any] = {"file_data": _data_url(mime, value, "file")}
    name = _filename(block)
    if name:
        file["filename"] = name
    return {"type": "file", "file": file}


def _audio_part(block: Mapping[str, Any]) -> dict[str, Any]:
    kind, value, mime = _source(block)
    if kind != "base64" or not isinstance(value, str):
        raise _no_form("audio by URL or file id", "OpenAI's chat format takes audio as base64 data")
    audio_format = _AUDIO_FORMATS.get(str(mime or "").rpartition("/")[2].lower())
    if audio_format is None:
        raise _no_form(f"{mime or 'untyped'} audio", "OpenAI's chat format takes wav or mp3")
    return {"type": "input_audio", "input_audio": {"data": value, "format": audio_format}}


def _openai_part(block: Any) -> dict[str, Any]:
    """One content block (LangChain's v1 or v0 shape, OpenAI's or Anthropic's) as an OpenAI chat
    content part; `InvalidInputError` for a block that has no such form, so nothing is dropped."""
    if isinstance(block, str):
        return {"type": "text", "text": block}
    if not isinstance(block, Mapping):
        raise _no_form(f"a {type(block).__name__} as a content block", "blocks are strings or dicts")
    kind = block.get("type")
    if kind in _TEXT_BLOCKS or kind == "text-plain":
        return {"type": "text", "text": str(block.get("text") or "")}
    if kind == "image_url":
        image = block.get("image_url")
        return {"type": "image_url", "image_url": dict(image) if isinstance(image, Mapping) else {"url": image}}
    if kind == "input_image":  # the Responses API's shape
        if not block.get("image_url"):
            raise _no_form("an image by file id", "the gateway keeps no files; send its data or URL")
        return _image_part({"url": block["image_url"], "detail": block.get("detail")})
    if kind == "image":
        return _image_part(block)
    if kind == "file" and isinstance(block.get("file"), Mapping):  # OpenAI's own shape
        if not block["file"].get("file_data"):
            raise _no_form("a file by file id", "the gateway keeps no files; send its data")
        return {"type": "file", "file": dict(block["file"])}
    if kind in ("file", "document"):
        return _file_part(block)
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": dict(block.get("input_audio") or {})}
    if kind == "audio":
        return _audio_part(block)
    raise _no_form(f"a {kind!r} content block", "it has no form in OpenAI's chat format")


def _content(content: str | list[Any], role: str) -> str | list[dict[str, Any]]:
    """Message content for `role`: text stays a string; media becomes OpenAI content parts (user
    turns only: OpenAI's format carries media nowhere else)."""
    if isinstance(content, str):
        return content
    if role == "assistant":
        content = [b for b in content if _kind(b) not in _ASSISTANT_SKIPPED]
    parts = [_openai_part(block) for block in content]
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    if role != "user":
        raise _no_form(f"media in a {role} message", "OpenAI's chat format carries media in user messages only")
    return parts


def _tool_messages(call_id: str, content: Any) -> list[dict[str, Any]]:
    """A tool's result: a tool message, then (when it holds media) a user message with the media,
    since OpenAI's chat format carries only text in tool messages."""
    if content is None:
        return [{"role": "tool", "tool_call_id": call_id, "content": ""}]
    if isinstance(content, str):
        return [{"role": "tool", "tool_call_id": call_id, "content": content}]
    blocks = content if isinstance(content, list) else [content]
    media = [b for b in blocks if _kind(b) in _MEDIA_BLOCKS]
    if not media:
        if all(isinstance(b, str) or _kind(b) in _TEXT_BLOCKS for b in blocks):
            return [{"role": "tool", "tool_call_id": call_id, "content": _text(blocks)}]
        return [{"role": "tool", "tool_call_id": call_id, "content": json.dumps(content, ensure_ascii=False)}]
    text = _text([b for b in blocks if _kind(b) not in _MEDIA_BLOCKS])
    parts = [_openai_part(b) for b in media]
    return [{"role": "tool", "tool_call_id": call_id, "content": text or "(the result is in the next message)"},
            {"role": "user", "content": parts}]


def _openai_tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    calls = [{"id": c.get("id") or f"call_{i}", "type": "function",
              "function": {"name": c["name"], "arguments": json.dumps(c.get("args") or {}, ensure_ascii=False)}}
             for i, c in enumerate(message.tool_calls)]
    calls += [{"id": c.get("id") or f"call_invalid_{i}", "type": "function",
               "function": {"name": c.get("name") or "", "arguments": c.get("args") or ""}}
              for i, c in enumerate(message.invalid_tool_calls)]
    return calls


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages → the gateway's OpenAI chat messages.

    Every content block is converted to OpenAI's content part or refused (`InvalidInputError`):
    images, files (PDF, …) and wav/mp3 audio go in user messages; a tool result that holds media is
    a tool message followed by a user message with the media.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any]
        if isinstance(message, SystemMessage):
            entry = {"role": "system", "content": _content(message.content, "system")}
        elif isinstance(message, HumanMessage):
            content: str | list[Any] = message.content
            if isinstance(content, list):  # Anthropic-style tool results ride in the user turn
                results = [b for b in content if _kind(b) == "tool_result"]
                for block in results:
                    out += _tool_messages(str(block.get("tool_use_id") or ""), block.get("content"))
                content = [b for b in content if _kind(b) != "tool_result"]
                if results and not content:
                    continue
            entry = {"role": "user", "content": _content(content, "user")}
        elif isinstance(message, AIMessage):
            entry = {"role": "assistant", "content": _content(message.content, "assistant")}
            calls = _openai_tool_calls(message)
            if calls:
                entry["tool_calls"] = calls
        elif isinstance(message, ToolMessage):
            out += _tool_messages(message.tool_call_id, message.content)
            continue
        elif isinstance(message, FunctionMessage):
            out += _tool_messages(message.name, message.content)
            continue
        elif isinstance(message, ChatMessage):
            role = {"human": "user", "ai": "assistant"}.get(message.role, message.role)
            entry = {"role": role, "content": _content(message.content, role)}
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


def _parsed(prepared: _Request, text: str | None) -> dict[str, Any]:
    """`additional_kwargs` of an answer to a class `response_format`: the parsed object."""
    if prepared.parse is None or text is None:
        return {}
    try:
        return {"parsed": prepared.parse(text)}
    except ValueError as exc:
        raise OutputParserException(f"the answer does not fit the response format: {exc}", llm_output=text) from exc


def _chat_result(output: TextGenerationOutput, prepared: _Request) -> ChatResult:
    raw = output.chat_output or {}
    calls, invalid = _parse_tool_calls(raw.get("tool_calls"))
    content = raw.get("content") or ""
    message = AIMessage(content=content, tool_calls=calls, invalid_tool_calls=invalid,
                        additional_kwargs=_parsed(prepared, None if calls else content),
                        id=output.id, usage_metadata=_usage(output.usage),
                        response_metadata=_metadata(output, prepared.model, output.finish_reason))
    generation = ChatGeneration(message=message, generation_info={"finish_reason": output.finish_reason})
    return ChatResult(generations=[generation], llm_output={"model_name": prepared.model, "id": output.id})


class _ChunkAssembler:
    """SDK stream chunks → LangChain chunks; the last chunk carries usage and metadata (once)."""

    def __init__(self, prepared: _Request) -> None:
        self.prepared = prepared
        self.model = prepared.model
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
        answer = (output.chat_output or {}) if output is not None else {}
        parsed = _parsed(self.prepared, None if answer.get("tool_calls") else answer.get("content"))
        message = AIMessageChunk(content="", id=message_id, chunk_position="last", additional_kwargs=parsed,
                                 usage_metadata=_usage(output.usage if output is not None else None),
                                 response_metadata=_metadata(output, self.model, finish))
        return ChatGenerationChunk(message=message, generation_info={"finish_reason": finish})


__all__ = ["OpenGradientChatModel", "init_chat_model", "langchain_adapter", "to_openai_messages"]
