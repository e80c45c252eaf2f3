"""The devnet's twins API and `client.twins` against it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import opengradient as og
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.twins import DEVNET_TWINS_API_KEY, PERSONAS, TwinsService, persona_request

HELLO = [{"role": "user", "content": "Who are you?"}]


def _post(net: Devnet, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(net.network.twins_url + path, json=body, headers=headers or {}, timeout=30)


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == response.status_code and body["message"] and body["type"]
    return body


# ---- the route over HTTP ----------------------------------------------------------------------------


def test_chat_answers_openai_shaped(devnet_http: Devnet) -> None:
    response = _post(devnet_http, "/twins/satoshi/chat", {"model": "openai/gpt-4o", "messages": HELLO},
                     {"X-API-Key": DEVNET_TWINS_API_KEY})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "openai/gpt-4o" and isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant" and "Satoshi Nakamoto" in choice["message"]["content"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_missing_or_wrong_key_is_401_json(devnet_http: Devnet) -> None:
    body = {"model": "openai/gpt-4o", "messages": HELLO}
    missing = _post(devnet_http, "/twins/satoshi/chat", body)
    assert missing.status_code == 401 and "missing X-API-Key" in _error(missing)["message"]
    wrong = _post(devnet_http, "/twins/satoshi/chat", body, {"X-API-Key": "not-the-key"})
    assert wrong.status_code == 401 and _error(wrong)["type"] == "authentication_error"
    # The key is checked before the twin is looked up: no probing of twin names without a key.
    assert _post(devnet_http, "/twins/nobody/chat", body).status_code == 401


def test_unknown_twin_is_404(devnet_http: Devnet) -> None:
    response = _post(devnet_http, "/twins/nobody/chat", {"model": "openai/gpt-4o", "messages": HELLO},
                     {"X-API-Key": DEVNET_TWINS_API_KEY})
    assert response.status_code == 404
    assert "satoshi" in _error(response)["message"]


@pytest.mark.parametrize(("body", "match"), [
    ({"messages": HELLO}, "model"),
    ({"model": "openai/gpt-4o", "messages": []}, "messages"),
    ({"model": "openai/gpt-4o", "messages": [{"role": "robot", "content": "x"}]}, "role"),
    ({"model": "openai/gpt-4o", "messages": HELLO, "temperature": 5}, "temperature"),
    ({"model": "openai/gpt-4o", "messages": HELLO, "max_tokens": 0}, "max_tokens"),
    ({"model": "acme/unknown-model", "messages": [{"role": "user", "content": "hi"}]}, "unknown"),
    ([1, 2], "JSON object"),
])
def test_bad_requests_are_400(devnet_http: Devnet, body: Any, match: str) -> None:
    response = _post(devnet_http, "/twins/ada/chat", body, {"X-API-Key": DEVNET_TWINS_API_KEY})
    assert response.status_code == 400
    assert match in _error(response)["message"]


def test_not_json_is_400(devnet_http: Devnet) -> None:
    response = httpx.post(devnet_http.network.twins_url + "/twins/ada/chat", content=b"{nope",
                          headers={"X-API-Key": DEVNET_TWINS_API_KEY, "Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in _error(response)["message"]


def test_list_twins(devnet_http: Devnet) -> None:
    response = httpx.get(devnet_http.network.twins_url + "/twins", headers={"X-API-Key": DEVNET_TWINS_API_KEY})
    assert {t["id"] for t in response.json()["twins"]} == {"satoshi", "ada"}
    assert httpx.get(devnet_http.network.twins_url + "/twins").status_code == 401


def test_devnet_info_names_the_key(devnet_http: Devnet) -> None:
    info = httpx.get(devnet_http.url + "/").json()
    assert info["twins"] == {"url": devnet_http.network.twins_url, "api_key": DEVNET_TWINS_API_KEY,
                             "twins": ["ada", "satoshi"]}


# ---- personas ----------------------------------------------------------------------------------------


def test_persona_prompt_is_prepended() -> None:
    body: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Hi"}]}
    request = persona_request(PERSONAS["ada"], body)
    assert request["messages"][0] == {"role": "system", "content": PERSONAS["ada"].system_prompt}
    assert request["messages"][1:] == body["messages"] and body["messages"][0]["content"] == "Be brief."


async def test_persona_prompt_reaches_the_model() -> None:
    seen: list[dict[str, Any]] = []

    class Recorder:
        def supports(self, model: str) -> bool:
            return True

        async def chat(self, request: dict[str, Any]) -> Any:
            from opengradient.devnet.services.llm.completions import Completion, Usage

            seen.append(request)
            return Completion("ok", None, "stop", Usage(1, 1, 2))

    service = TwinsService(model=Recorder())  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://twins") as http:
        response = await http.post("/twins/api/v1/twins/satoshi/chat", headers={"X-API-Key": DEVNET_TWINS_API_KEY},
                                   json={"model": "openai/gpt-4o", "temperature": 0.5, "max_tokens": 9,
                                         "messages": [{"role": "user", "content": "Tell me about blocks"}]})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "ok"
    (request,) = seen
    assert request["messages"][0]["content"] == PERSONAS["satoshi"].system_prompt
    assert request["messages"][1] == {"role": "user", "content": "Tell me about blocks"}
    assert request["temperature"] == 0.5 and request["max_tokens"] == 9 and request["model"] == "openai/gpt-4o"


def _app(service: TwinsService) -> Any:
    from starlette.applications import Starlette

    return Starlette(routes=service.routes())


# ---- client.twins --------------------------------------------------------------------------------------


def test_client_twins_in_process(devnet: Devnet) -> None:
    reply = devnet.client.twins.chat("ada", og.TEE_LLM.GPT_4O, HELLO)
    assert reply.chat_output is not None and "Ada Lovelace" in reply.chat_output["content"]
    assert reply.finish_reason == "stop" and reply.model == "openai/gpt-4o" and reply.usage is not None
    math = devnet.client.twins.chat("satoshi", "anthropic/claude-3.5-haiku",
                                    [{"role": "user", "content": "What is 21 * 2?"}], temperature=0.3, max_tokens=40)
    assert math.chat_output is not None and math.chat_output["content"] == "21 * 2 = 42."


def test_client_twins_over_http(devnet_http: Devnet) -> None:
    reply = devnet_http.new_client().twins.chat("satoshi", og.TEE_LLM.CLAUDE_3_5_HAIKU, HELLO)
    assert reply.chat_output is not None and "Satoshi" in reply.chat_output["content"]


def test_client_without_key_raises_configuration_error(devnet: Devnet) -> None:
    client = og.Client(devnet.accounts[0].private_key, network=devnet.network)
    assert client.twins is client.twins  # always present
    with pytest.raises(og.ConfigurationError, match="twins API key"):
        client.twins.chat("ada", og.TEE_LLM.GPT_4O, HELLO)


def test_client_errors(devnet: Devnet) -> None:
    with pytest.raises(og.AuthenticationError) as wrong:
        devnet.new_client(twins_api_key="wrong").twins.chat("ada", og.TEE_LLM.GPT_4O, HELLO)
    assert wrong.value.status_code == 401 and "invalid API key" in str(wrong.value)
    with pytest.raises(og.NotFoundError):
        devnet.client.twins.chat("nobody", og.TEE_LLM.GPT_4O, HELLO)
    with pytest.raises(og.HTTPStatusError) as unknown:
        devnet.client.twins.chat("ada", "acme/unknown", HELLO)
    assert unknown.value.status_code == 400


def test_new_client_passes_the_devnet_key_unless_told_otherwise(devnet: Devnet) -> None:
    assert devnet.new_client().twins.chat("ada", og.TEE_LLM.GPT_4O, HELLO).chat_output
    assert "og-devnet" in DEVNET_TWINS_API_KEY


async def test_async_twins_chat(devnet: Devnet) -> None:
    client = devnet.new_client()
    try:
        reply = await client.twins.achat("satoshi", og.TEE_LLM.GPT_4O, HELLO)
        assert reply.chat_output is not None and "Satoshi" in reply.chat_output["content"]
    finally:
        await client.aclose()
