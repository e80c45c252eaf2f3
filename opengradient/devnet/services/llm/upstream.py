"""The models behind the devnet LLM gateway.

The gateway handles routes, payments and signing; an `Upstream` produces the answer. Two kinds
exist: the offline `ReferenceModel` (the default, see `reference.py`) and `OpenAICompatibleUpstream`,
which forwards a request to any OpenAI-compatible endpoint (a provider with the user's own key, or a
local server). `UpstreamRouter` picks one per model name.

Configuration (`UpstreamRouter.from_env`):

- `OG_DEVNET_UPSTREAM_<PROVIDER>_URL` (and optionally `_KEY`): send the models of that provider to
  an OpenAI-compatible endpoint. `<PROVIDER>` is the prefix of a `provider/model` name upper-cased
  with `-` turned into `_`: `OPENAI`, `ANTHROPIC`, `GOOGLE`, `X_AI`, `META_LLAMA`, …
- `OG_DEVNET_UPSTREAM_URL` (and optionally `OG_DEVNET_UPSTREAM_KEY`): send every other model to one
  OpenAI-compatible endpoint instead of the reference model.

The URL is the API base, as for the OpenAI SDK (`https://api.openai.com/v1`,
`http://127.0.0.1:11434/v1`); requests go to `{url}/chat/completions` and `{url}/completions`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpx

from opengradient import bounded_json
from opengradient.bounded_json import response_json
from opengradient.devnet.services.llm import tokens
from opengradient.devnet.services.llm.completions import (
    KNOWN_MODELS,
    Completion,
    Delta,
    UnknownModelError,
    Upstream,
    UpstreamError,
    Usage,
)

__all__ = ["OpenAICompatibleUpstream", "UpstreamRouter"]

# --- routing -----------------------------------------------------------------------------------

_ENV_PREFIX = "OG_DEVNET_UPSTREAM_"
_PROVIDER_URL_RE = re.compile(r"^OG_DEVNET_UPSTREAM_([A-Z0-9_]+)_URL$")
#: Providers of bare names that are not in `KNOWN_MODELS`, by prefix of the name.
_PROVIDER_GUESSES: tuple[tuple[str, str], ...] = (
    ("gpt-", "openai"),
    ("chatgpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("claude", "anthropic"),
    ("gemini", "google"),
    ("grok", "x-ai"),
)


def provider_key(provider: str) -> str:
    """The environment spelling of a provider: `x-ai` → `X_AI`."""
    return provider.strip().upper().replace("-", "_")


class UpstreamRouter:
    """Picks the upstream for a model name.

    Models of a provider in `by_provider` (keys are provider prefixes in either spelling: `x-ai` or
    `X_AI`) go to that upstream; everything else goes to `default`.
    """

    def __init__(self, default: Upstream, by_provider: Mapping[str, Upstream] | None = None) -> None:
        self.default = default
        self.by_provider: dict[str, Upstream] = {
            provider_key(name): upstream for name, upstream in (by_provider or {}).items()
        }
        self.known_models: list[str] = list(KNOWN_MODELS)
        self._provider_of_bare: dict[str, str] = {}
        for name in KNOWN_MODELS:
            provider, bare = name.split("/", 1)
            self._provider_of_bare.setdefault(bare, provider)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> UpstreamRouter:
        """The router the environment configures: the reference model unless
        `OG_DEVNET_UPSTREAM_URL` or `OG_DEVNET_UPSTREAM_<PROVIDER>_URL` say otherwise."""
        from opengradient.devnet.services.llm.reference import ReferenceModel

        default: Upstream
        url = environ.get(_ENV_PREFIX + "URL", "").strip()
        if url:
            default = OpenAICompatibleUpstream(url, environ.get(_ENV_PREFIX + "KEY") or None)
        else:
            default = ReferenceModel()
        by_provider: dict[str, Upstream] = {}
        for name, value in environ.items():
            match = _PROVIDER_URL_RE.match(name)
            if match and value.strip():
                provider = match.group(1)
                key = environ.get(f"{_ENV_PREFIX}{provider}_KEY") or None
                by_provider[provider] = OpenAICompatibleUpstream(value.strip(), key)
        return cls(default, by_provider)

    def _provider_upstream(self, provider: str | None) -> Upstream:
        if provider:
            upstream = self.by_provider.get(provider_key(provider))
            if upstream is not None:
                return upstream
        return self.default

    def _unknown(self, model: object, reason: str = "") -> UnknownModelError:
        detail = f" ({reason})" if reason else ""
        return UnknownModelError(f"unknown model {model!r}{detail}; known models: {', '.join(self.known_models)}")

    def resolve(self, model: str) -> tuple[Upstream, str]:
        """The upstream for `model` (`provider/model` or bare) and the bare name to send it."""
        if not isinstance(model, str) or not model.strip():
            raise self._unknown(model, "the model name must be a non-empty string")
        if "/" in model:
            provider, bare = model.split("/", 1)
            if not provider or not bare:
                raise self._unknown(model, "expected provider/model or a bare model name")
            upstream = self._provider_upstream(provider)
            if model in self.known_models:
                return upstream, bare
            known_provider = self._provider_of_bare.get(bare)
            if known_provider is not None and provider_key(known_provider) != provider_key(provider):
                raise self._unknown(model, f"{bare!r} is a model of {known_provider!r}, not of {provider!r}")
            if upstream.supports(bare):
                return upstream, bare
            raise self._unknown(model)
        provider_name = self._provider_of_bare.get(model)
        if provider_name is not None:
            return self._provider_upstream(provider_name), model
        lowered = model.lower()
        for prefix, guess in _PROVIDER_GUESSES:
            if lowered.startswith(prefix) and provider_key(guess) in self.by_provider:
                upstream = self.by_provider[provider_key(guess)]
                if upstream.supports(model):
                    return upstream, model
        if self.default.supports(model):
            return self.default, model
        raise self._unknown(model)

    async def aclose(self) -> None:
        """Close the HTTP clients the upstreams own."""
        for upstream in {id(u): u for u in (self.default, *self.by_provider.values())}.values():
            close = getattr(upstream, "aclose", None)
            if close is not None:
                await close()


# --- OpenAI-compatible passthrough -------------------------------------------------------------


def _display_url(url: str) -> str:
    """`url` without credentials or query, for messages."""
    try:
        parsed = httpx.URL(url)
        return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _finish(reason: Any) -> str:
    if reason == "function_call":
        return "tool_calls"
    return reason if isinstance(reason, str) and reason else "stop"


def _usage(data: Any, prompt_tokens: int, completion_text: str) -> Usage:
    if isinstance(data, Mapping):
        try:
            prompt = int(data.get("prompt_tokens") or 0)
            completion = int(data.get("completion_tokens") or 0)
            total = int(data.get("total_tokens") or prompt + completion)
            return Usage(prompt, completion, total)
        except (TypeError, ValueError):
            pass
    completion = tokens.count_tokens(completion_text)
    return Usage(prompt_tokens, completion, prompt_tokens + completion)


def _message_tool_calls(raw: Any) -> list[dict[str, Any]] | None:
    if not isinstance(raw, list) or not raw:
        return None
    calls = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        function = _mapping(item.get("function"))
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append({
            "id": str(item.get("id") or ""),
            "type": "function",
            "function": {"name": str(function.get("name") or ""), "arguments": arguments},
        })
    return calls or None


def _chunk_tool_call(raw: Any, position: int) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    index = raw.get("index")
    call: dict[str, Any] = {"index": index if isinstance(index, int) else position}
    if raw.get("id"):
        call["id"] = str(raw["id"])
    if raw.get("type"):
        call["type"] = str(raw["type"])
    function = raw.get("function")
    out: dict[str, Any] = {}
    if isinstance(function, Mapping):
        if function.get("name"):
            out["name"] = str(function["name"])
        if function.get("arguments") is not None:
            arguments = function["arguments"]
            out["arguments"] = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call["function"] = out
    return call


class OpenAICompatibleUpstream(Upstream):
    """Forwards requests to an OpenAI-compatible endpoint (`{base_url}/chat/completions`,
    `{base_url}/completions`), streaming or not, with the bare model name.

    Connection failures, timeouts, 5xx answers and unreadable bodies raise `UpstreamError`; a 404 or
    a `model_not_found` error raises `UnknownModelError`. The API key is sent as a bearer token and
    never appears in reprs, messages or logs.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 60,
        models: Iterable[str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._http = http
        self._owns_http = http is None
        self._timeout = timeout
        self._models = frozenset(models) if models is not None else None

    def __repr__(self) -> str:
        return f"OpenAICompatibleUpstream({_display_url(self.base_url)!r})"

    def supports(self, model: str) -> bool:
        """Every model, unless a `models` list was given."""
        return self._models is None or model in self._models

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client if this upstream created it."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json",
                   "Accept": "text/event-stream" if stream else "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _where(self, path: str) -> str:
        return _display_url(self.base_url + path)

    def _failure(self, path: str, status: int, body: bytes) -> Exception:
        text = body[:300].decode("utf-8", "replace")
        message = ""
        code = ""
        try:
            error = bounded_json.loads(body).get("error")
            if isinstance(error, Mapping):
                message = str(error.get("message") or "")
                code = str(error.get("code") or "")
            elif isinstance(error, str):
                message = error
        except (ValueError, AttributeError):
            pass
        if self._api_key:
            text = text.replace(self._api_key, "***")
            message = message.replace(self._api_key, "***")
        detail = message or text
        if status == 404 or code == "model_not_found":
            return UnknownModelError(f"upstream {self._where(path)} does not serve the model: {detail}")
        return UpstreamError(f"upstream {self._where(path)} answered {status}: {detail}", status=status)

    def _transport_failure(self, path: str, exc: Exception) -> UpstreamError:
        return UpstreamError(f"upstream {self._where(path)} unreachable ({type(exc).__name__})")

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client().post(
                self.base_url + path, json=body, headers=self._headers(False), timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise self._transport_failure(path, exc) from None
        if response.status_code >= 400:
            raise self._failure(path, response.status_code, response.content)
        try:
            data = response_json(response)
        except ValueError:
            raise UpstreamError(f"upstream {self._where(path)} sent a body that is not JSON") from None
        if not isinstance(data, dict):
            raise UpstreamError(f"upstream {self._where(path)} sent an unexpected body")
        return data

    async def _events(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The JSON payloads of the server-sent events of a streamed answer, up to `[DONE]`."""
        try:
            async with self._client().stream(
                "POST", self.base_url + path, json=body, headers=self._headers(True), timeout=self._timeout
            ) as response:
                if response.status_code >= 400:
                    raise self._failure(path, response.status_code, await response.aread())
                data: list[str] = []
                async for line in response.aiter_lines():
                    line = line.rstrip("\r")
                    if line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                        continue
                    if line or not data:
                        continue  # comments, event/id/retry fields, or blank lines between events
                    payload = "\n".join(data)
                    data = []
                    if payload.strip() == "[DONE]":
                        return
                    yield self._parse_event(path, payload)
                if data and "\n".join(data).strip() != "[DONE]":
                    yield self._parse_event(path, "\n".join(data))
        except httpx.HTTPError as exc:
            raise self._transport_failure(path, exc) from None

    def _parse_event(self, path: str, payload: str) -> dict[str, Any]:
        try:
            event = bounded_json.loads(payload)
        except ValueError:
            raise UpstreamError(f"upstream {self._where(path)} sent an event that is not JSON") from None
        if not isinstance(event, dict):
            raise UpstreamError(f"upstream {self._where(path)} sent an unexpected event")
        if "error" in event and not event.get("choices"):
            error = event["error"]
            message = error.get("message") if isinstance(error, Mapping) else error
            raise UpstreamError(f"upstream {self._where(path)} failed while streaming: {message}")
        return event

    @staticmethod
    def _body(request: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        body = {k: v for k, v in request.items() if v is not None}
        body["stream"] = stream
        if stream:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, Mapping) else {}),
                                      "include_usage": True}
        else:
            body.pop("stream_options", None)
        return body

    @staticmethod
    def _first_choice(data: Mapping[str, Any]) -> Mapping[str, Any]:
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            return choices[0]
        return {}

    async def chat(self, request: dict[str, Any]) -> Completion:
        data = await self._post("/chat/completions", self._body(request, False))
        choice = self._first_choice(data)
        if not choice:
            raise UpstreamError(f"upstream {self._where('/chat/completions')} sent no choices")
        message = _mapping(choice.get("message"))
        content = message.get("content")
        content = content if isinstance(content, str) else tokens.message_text(content) or None
        tool_calls = _message_tool_calls(message.get("tool_calls"))
        prompt = tokens.count_chat_prompt_tokens(request.get("messages"), request.get("tools"))
        produced = (content or "") + "".join(c["function"]["arguments"] for c in tool_calls or [])
        return Completion(content, tool_calls, _finish(choice.get("finish_reason")),
                          _usage(data.get("usage"), prompt, produced))

    async def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        finish: Any = None
        usage_data: Any = None
        produced: list[str] = []
        async for event in self._events("/chat/completions", self._body(request, True)):
            if event.get("usage"):
                usage_data = event["usage"]
            choice = self._first_choice(event)
            delta = _mapping(choice.get("delta"))
            content = delta.get("content")
            if isinstance(content, str) and content:
                produced.append(content)
                yield Delta(content=content)
            raw_calls = delta.get("tool_calls")
            if isinstance(raw_calls, list):
                for position, raw in enumerate(raw_calls):
                    call = _chunk_tool_call(raw, position)
                    if call is not None:
                        produced.append(call["function"].get("arguments", ""))
                        yield Delta(tool_call=call)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        prompt = tokens.count_chat_prompt_tokens(request.get("messages"), request.get("tools"))
        yield Delta(finish_reason=_finish(finish), usage=_usage(usage_data, prompt, "".join(produced)))

    @staticmethod
    def _prompt_tokens(request: Mapping[str, Any]) -> int:
        prompt = request.get("prompt")
        if isinstance(prompt, list):
            prompt = "".join(p for p in prompt if isinstance(p, str))
        return tokens.count_tokens(prompt if isinstance(prompt, str) else "")

    async def complete(self, request: dict[str, Any]) -> Completion:
        data = await self._post("/completions", self._body(request, False))
        choice = self._first_choice(data)
        if not choice:
            raise UpstreamError(f"upstream {self._where('/completions')} sent no choices")
        text = choice.get("text")
        text = text if isinstance(text, str) else ""
        return Completion(text, None, _finish(choice.get("finish_reason")),
                          _usage(data.get("usage"), self._prompt_tokens(request), text))

    async def stream_complete(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        finish: Any = None
        usage_data: Any = None
        produced: list[str] = []
        async for event in self._events("/completions", self._body(request, True)):
            if event.get("usage"):
                usage_data = event["usage"]
            choice = self._first_choice(event)
            text = choice.get("text")
            if isinstance(text, str) and text:
                produced.append(text)
                yield Delta(content=text)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        yield Delta(finish_reason=_finish(finish),
                    usage=_usage(usage_data, self._prompt_tokens(request), "".join(produced)))
