"""langchain-tests' standard integration suite for `OpenGradientChatModel`, on the devnet.

Every test talks to the devnet's LLM gateway and its deterministic reference model: each request
is paid with x402 and each answer's TEE signature is verified. Each model gets a fresh client, so
no test depends on another's payment or key cache.

The suite's VCR test (`test_stream_time`) replays `tests/cassettes/agents/`: in CI (record mode
`none`) its client is a plain HTTP client addressed to the devnet's host, and VCR answers every
request from the cassette, with no devnet and no socket. To record again, run with
`--record-mode=rewrite`: the whole suite then runs against a devnet served over HTTP on
127.0.0.1, and the cassette is written with payment headers removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_tests.conftest import base_vcr_config
from langchain_tests.integration_tests import ChatModelIntegrationTests

from opengradient.agents import OpenGradientChatModel
from opengradient.client.client import Client

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "agents"
DEVNET_HOST = "http://devnet.local"  # the in-process devnet's URL; loopback URLs are rewritten to it
_LOOPBACK = re.compile(r"^http://(?:127\.0\.0\.1|localhost|\[::1\]):\d+")
#: Request headers that carry payments or sessions: kept as present/absent, values never recorded.
PAYMENT_REQUEST_HEADERS = ("payment-signature", "x-payment", "x-upto-session", "authorization")
#: Response headers that carry payment receipts or sessions: never recorded.
PAYMENT_RESPONSE_HEADERS = ("payment-response", "x-payment-response", "x-upto-session", "set-cookie")


#: The request headers kept in cassettes and compared when matching.
_KEPT_HEADERS = ("content-type", "x-settlement-type", *PAYMENT_REQUEST_HEADERS)


def _canonical_request(request: Any) -> Any:
    """Applied when recording and before matching (after `filter_headers`).

    The devnet host for loopback URLs, JSON-RPC ids set to 0 (the client numbers calls per
    process), and only the headers that change the meaning of a request: a paid request then
    matches a recorded paid one, never its 402.
    """
    request.uri = _LOOPBACK.sub(DEVNET_HOST, request.uri)
    request.headers = {name: value for name, value in request.headers.items() if name.lower() in _KEPT_HEADERS}
    body = request.body
    if body and b'"jsonrpc"' in (body if isinstance(body, bytes) else body.encode()):
        try:
            message = json.loads(body)
        except ValueError:
            return request
        if isinstance(message, dict) and "id" in message:
            message["id"] = 0
            request.body = json.dumps(message, separators=(",", ":")).encode()
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers") or {}
    for name in list(headers):
        if name.lower() in PAYMENT_RESPONSE_HEADERS:
            del headers[name]
    return response


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    """langchain-tests' base config with payments scrubbed; `record_mode` is left to the command line.

    Requests match on method, URI, body and the few headers `_canonical_request` keeps; payment
    headers are replaced by a placeholder first.
    """
    config = base_vcr_config()
    config.pop("record_mode", None)
    config["cassette_library_dir"] = str(CASSETTES)
    config["filter_headers"] = [*config.get("filter_headers", []),
                                *[(name, "REDACTED") for name in PAYMENT_REQUEST_HEADERS]]
    config["before_record_request"] = _canonical_request
    config["before_record_response"] = _scrub_response
    config["match_on"] = ["method", "uri", "body", "headers"]
    return config


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


class TestOpenGradientChatModelIntegration(ChatModelIntegrationTests):
    _new_client: Callable[[], Client] | None = None

    @pytest.fixture(autouse=True)
    def _devnet_client(self, request: pytest.FixtureRequest, record_mode: str) -> None:
        recording = record_mode not in ("none", None)
        net = request.getfixturevalue("devnet_http" if recording else "devnet")
        if request.node.get_closest_marker("vcr") is not None and not recording:
            key = net.accounts[0].private_key  # VCR answers, as the devnet's plain URL did when recording
            self._new_client = lambda: Client(key, network=net.network, og_llm_server_url=net.url)
        elif recording:  # the devnet's plain URL as a pinned gateway: cassettes hold no enclave HTTPS ports
            self._new_client = lambda: net.new_client(og_llm_server_url=net.url)
        else:
            self._new_client = net.new_client

    @property
    def chat_model_class(self) -> type[OpenGradientChatModel]:
        return OpenGradientChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        assert self._new_client is not None
        return {"client": self._new_client(), "model": "openai/gpt-4o"}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "anthropic/claude-3.5-haiku"

    @property
    def enable_vcr_tests(self) -> bool:
        return True

    # Not supported, so these standard tests skip:
    # - image, PDF and audio inputs (supports_image_inputs, supports_image_urls, supports_pdf_inputs,
    #   supports_audio_inputs, supports_image_tool_message, supports_pdf_tool_message stay False):
    #   OpenGradient's gateway protocol carries text chat messages, and the devnet's reference
    #   model reads text only. (The adapter does forward OpenAI image parts.)
    # - usage details (supported_usage_metadata_details stays empty): the gateway reports only
    #   prompt, completion and total tokens, no audio/reasoning/cache breakdown.
