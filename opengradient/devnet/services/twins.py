"""The devnet's digital-twins API, served by the reference model.

`POST {base}/twins/api/v1/twins/{twin_id}/chat` with header `X-API-Key` and an OpenAI-shaped body
`{model, messages, temperature?, max_tokens?}` answers with an OpenAI `chat.completion`. Each twin
is a persona whose system prompt is put in front of the conversation before the devnet's
deterministic reference model answers; asked who it is, a twin introduces itself. `GET
{base}/twins/api/v1/twins` lists the twins.

The key is `DEVNET_TWINS_API_KEY` (printed by `opengradient devnet up`; clients made with
`Devnet.new_client` carry it). A missing or wrong key gets a 401, an unknown twin a 404, and a
malformed body or unknown model a 400, each as `{"error": {"message", "type", "code"}}`.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opengradient import bounded_json
from opengradient.devnet.services.llm import tokens
from opengradient.devnet.services.llm.completions import UnknownModelError
from opengradient.devnet.services.llm.reference import ReferenceModel

#: The devnet's twins API key: a published development value, worthless anywhere else.
DEVNET_TWINS_API_KEY = "og-devnet-twins-key"
#: Where the twins API lives under the devnet's base URL (the devnet preset's `twins_url`).
TWINS_PREFIX = "/twins/api/v1"

_ROLES = {"system", "developer", "user", "assistant", "tool"}
_IDENTITY_RE = re.compile(r"\bwho are you\b|\bwhat(?:'s| is) your name\b|\bintroduce yourself\b", re.IGNORECASE)


@dataclass(frozen=True)
class Persona:
    """A twin: who it is and the system prompt that makes the model speak as it."""

    twin_id: str
    name: str
    system_prompt: str
    introduction: str


PERSONAS: dict[str, Persona] = {p.twin_id: p for p in (
    Persona("satoshi", "Satoshi Nakamoto",
            "You are the digital twin of Satoshi Nakamoto, the pseudonymous creator of Bitcoin. Answer "
            "tersely and precisely, in the voice of the Bitcoin white paper.",
            "I am the digital twin of Satoshi Nakamoto, creator of Bitcoin, here on the OpenGradient devnet."),
    Persona("ada", "Ada Lovelace",
            "You are the digital twin of Ada Lovelace, mathematician and author of the first published "
            "computer program. Answer with curiosity and mathematical care.",
            "I am the digital twin of Ada Lovelace, who wrote the first program for the Analytical Engine, "
            "here on the OpenGradient devnet."),
)}


class _BadRequestError(Exception):
    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)


def _bad(message: str) -> _BadRequestError:
    return _BadRequestError(400, message, "invalid_request_error")


def _validated(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise _bad("the body must be a JSON object")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model.strip():
        raise _bad("'model' must be a non-empty string such as 'openai/gpt-4o'")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
            raise _bad(f"messages[{i}] must be an object with a role in {sorted(_ROLES)}")
    out: dict[str, Any] = {"model": model.strip(), "messages": [dict(m) for m in messages]}
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise _bad("'temperature' must be a number from 0 to 2")
        out["temperature"] = float(temperature)
    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            raise _bad("'max_tokens' must be a positive integer")
        out["max_tokens"] = max_tokens
    return out


def persona_request(persona: Persona, body: Mapping[str, Any]) -> dict[str, Any]:
    """The request the model answers: the persona's system prompt in front of the conversation."""
    request = dict(body)
    request["messages"] = [{"role": "system", "content": persona.system_prompt}, *body["messages"]]
    return request


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


class TwinsService:
    """The twins routes of one devnet."""

    def __init__(self, *, api_key: str = DEVNET_TWINS_API_KEY, model: ReferenceModel | None = None,
                 personas: Mapping[str, Persona] | None = None) -> None:
        self.api_key = api_key
        self.model = model or ReferenceModel()
        self.personas = dict(personas if personas is not None else PERSONAS)

    def routes(self) -> list[Route]:
        """Routes to mount at the devnet's root."""
        return [
            Route(f"{TWINS_PREFIX}/twins", self._list, methods=["GET"]),
            Route(f"{TWINS_PREFIX}/twins/{{twin_id}}/chat", self._chat, methods=["POST"]),
        ]

    def info(self) -> dict[str, Any]:
        """What `GET /` says about the twins."""
        return {"api_key": self.api_key, "twins": sorted(self.personas)}

    def _authorised(self, request: Request) -> Response | None:
        given = request.headers.get("x-api-key")
        if not given:
            return _error(401, "missing X-API-Key header", "authentication_error")
        if not secrets.compare_digest(given.encode(), self.api_key.encode()):
            return _error(401, "invalid API key", "authentication_error")
        return None

    async def _list(self, request: Request) -> Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        return JSONResponse({"twins": [{"id": p.twin_id, "name": p.name} for p in self.personas.values()]})

    async def _chat(self, request: Request) -> Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        twin_id = request.path_params["twin_id"]
        persona = self.personas.get(twin_id)
        if persona is None:
            return _error(404, f"no twin {twin_id!r}; the devnet's twins are {', '.join(sorted(self.personas))}",
                          "not_found")
        try:
            try:
                parsed = bounded_json.loads(await request.body())
            except ValueError:
                raise _bad("the request body is not valid JSON") from None
            body = _validated(parsed)
            if not self.model.supports(body["model"]):
                raise _bad(f"unknown model {body['model']!r}; use a model of the LLM gateway such as "
                           "'openai/gpt-4o'")
            if _IDENTITY_RE.search(_last_user_text(body["messages"])):
                content: str | None = persona.introduction
                prompt = tokens.count_chat_prompt_tokens(persona_request(persona, body)["messages"], None, None)
                completion = tokens.count_tokens(persona.introduction)
                finish, tool_calls = "stop", None
                usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                         "total_tokens": prompt + completion}
            else:
                try:
                    answer = await self.model.chat(persona_request(persona, body))
                except UnknownModelError as exc:
                    raise _bad(str(exc)) from None
                content, finish, tool_calls, usage = (answer.content, answer.finish_reason, answer.tool_calls,
                                                      answer.usage.to_dict())
        except _BadRequestError as exc:
            return _error(exc.status, exc.message, exc.kind)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return JSONResponse({
            "id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "twin_id": persona.twin_id,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        })


__all__ = ["DEVNET_TWINS_API_KEY", "PERSONAS", "Persona", "TWINS_PREFIX", "TwinsService", "persona_request"]
