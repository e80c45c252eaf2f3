"""langchain-tests' standard integration suite for `OpenGradientChatModel`, on the devnet.

Every test talks to the devnet's LLM gateway and its deterministic reference model: each request
is paid with x402 and each answer's TEE signature is verified. Each model gets a fresh client, so
no test depends on another's payment or key cache.

The multimodal tests download an image, a PDF and a WAV file; here they get them from a loopback
server (`media_server`) that serves files made by this module, so the suite runs offline (an image
URL the suite sends itself is read by the devnet from the same local copy). The reference model
reads images (format, size, mean colour) and says which other media it received.

The suite's VCR test (`test_stream_time`) replays `tests/cassettes/agents/`: in CI (record mode
`none`) its client is a plain HTTP client addressed to the devnet's host, and VCR answers every
request from the cassette, with no devnet and no socket. To record again, run with
`--record-mode=rewrite`: the whole suite then runs against a devnet served over HTTP on
127.0.0.1, and the cassette is written with payment headers removed.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import threading
import wave
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_tests.conftest import base_vcr_config
from langchain_tests.integration_tests import ChatModelIntegrationTests

from opengradient.agents import OpenGradientChatModel
from opengradient.client.client import Client
from opengradient.devnet.services.llm.media import OFFLINE_MIRRORS

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


def _png(width: int = 8, height: int = 8) -> bytes:
    """A small RGB gradient as a PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes(v for x in range(width) for v in (x * 32, y * 32, 128)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _pdf(text: str = "Dummy PDF file") -> bytes:
    """A one-page PDF showing `text`."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _wav(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A 440 Hz tone as 16-bit mono WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                                   for i in range(int(seconds * rate))))
    return buffer.getvalue()


#: What the suite downloads, by the end of its URL: path and content type on the loopback server.
_MEDIA: dict[str, tuple[str, str, Callable[[], bytes]]] = {
    ".png": ("/image.png", "image/png", _png), ".pdf": ("/document.pdf", "application/pdf", _pdf),
          ".wav": ("/audio.wav", "audio/wav", _wav)}


@pytest.fixture(scope="module")
def media_server() -> Iterator[str]:
    """A loopback HTTP server of the test image, PDF and audio; yields its base URL."""
    files = {path: (kind, make()) for path, kind, make in _MEDIA.values()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            kind, body = files.get(self.path, ("text/plain", b""))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def offline_media(media_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's downloads of its test media (https URLs) come from `media_server`."""
    real_get = httpx.get

    def get(url: Any, **kwargs: Any) -> httpx.Response:
        for suffix, (path, _, _) in _MEDIA.items():
            if str(url).startswith("https://") and str(url).endswith(suffix):
                response = real_get(media_server + path, **kwargs)
                # The suite also sends this URL itself: the offline devnet reads it from this copy.
                monkeypatch.setitem(OFFLINE_MIRRORS, str(url), response.content)
                return response
        return real_get(url, **kwargs)

    monkeypatch.setattr(httpx, "get", get)
    monkeypatch.setenv("LANGCHAIN_TESTS_USER_AGENT", "opengradient-tests (served from loopback)")


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

    # Media: the adapter turns every image, file and audio block into OpenAI's content part (in a
    # user message; a tool result's media follows it in one), the gateway carries them, and the
    # reference model describes images from their bytes and acknowledges the rest.
    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return True

    @property
    def supports_pdf_tool_message(self) -> bool:
        return True

    @property
    def supports_audio_inputs(self) -> bool:
        return True

    # Not supported, so these standard tests skip:
    # - usage details (supported_usage_metadata_details stays empty): the gateway reports only
    #   prompt, completion and total tokens, no audio/reasoning/cache breakdown.
