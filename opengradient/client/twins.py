"""`client.twins`: chat with digital twins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opengradient.client._http import first_choice, raise_for_status, read_json_object, transport_errors
from opengradient.client.llm import chat_body
from opengradient.errors import ConfigurationError, InvalidInputError, InvalidResponseError
from opengradient.types import TEE_LLM, TextGenerationOutput, Usage

if TYPE_CHECKING:
    import httpx

    from opengradient.client._http import HttpCore


class Twins:
    """Digital-twin chat; needs a twins API key (`twins_api_key=` on the client)."""

    def __init__(self, http: HttpCore, *, base_url: str, api_key: str | None) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self.__api_key = api_key

    def _request(self, twin_id: str, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]],
                 temperature: float | None, max_tokens: int | None) -> tuple[str, dict[str, str], dict[str, Any]]:
        if not self.__api_key:
            raise ConfigurationError("twins chat needs a twins API key", arguments=("twins_api_key",),
                                     hint="pass twins_api_key= to og.init, or set OG_TWINS_API_KEY")
        if not isinstance(twin_id, str) or not twin_id.strip() or "/" in twin_id:
            raise InvalidInputError(f"twin_id must be a non-empty id without '/', got {twin_id!r}")
        body = chat_body(model, messages, max_tokens=max_tokens or 100, temperature=temperature or 0.0)
        if max_tokens is None:
            body.pop("max_tokens")
        if temperature is None:
            body.pop("temperature")
        url = f"{self._base_url}/twins/{twin_id.strip()}/chat"
        return url, {"X-API-Key": self.__api_key}, body

    @staticmethod
    def _output(response: httpx.Response) -> TextGenerationOutput:
        data = read_json_object(response, "the twins API")
        choice = first_choice(data, "the twins API")
        content = (choice.get("message") or {}).get("content")
        if content is not None and not isinstance(content, str):
            raise InvalidResponseError(f"the twins API: the message content is a {type(content).__name__}, not text")
        return TextGenerationOutput(chat_output=dict(choice.get("message") or {}),
                                    finish_reason=choice.get("finish_reason"),
                                    usage=Usage.from_dict(data.get("usage")), model=data.get("model"))

    def chat(self, twin_id: str, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]],
             temperature: float | None = None, max_tokens: int | None = None) -> TextGenerationOutput:
        """Send `messages` to the twin `twin_id`, answered by `model`."""
        url, headers, body = self._request(twin_id, model, messages, temperature, max_tokens)
        with transport_errors(f"POST {url}"):
            response = self._http.sync.post(url, json=body, headers=headers)
        raise_for_status(response)
        return self._output(response)

    async def achat(self, twin_id: str, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]],
                    temperature: float | None = None, max_tokens: int | None = None) -> TextGenerationOutput:
        """Async twin of `chat`."""
        url, headers, body = self._request(twin_id, model, messages, temperature, max_tokens)
        with transport_errors(f"POST {url}"):
            response = await self._http.async_.post(url, json=body, headers=headers)
        raise_for_status(response)
        return self._output(response)

    def __repr__(self) -> str:
        return f"Twins(base_url={self._base_url!r})"
