"""Images in: attachments are hashed as today's enclave hashes them, and the devnet reads the bytes.

The reference model decodes PNGs and reports their format, dimensions and mean colour, so these
tests check that an image arrived whole; URL images are read only from this machine.
"""

from __future__ import annotations

import base64
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_abi import decode, encode

import opengradient as og
from opengradient.client.tee import canonical_chat_request, request_hash
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.llm import media


def png(width: int, height: int, pixel: Any, *, filter_type: int = 0) -> bytes:
    """An RGB PNG whose pixel (x, y) is `pixel(x, y)`; rows use one filter type (0 none, 1 sub)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b""
    for y in range(height):
        row = bytes(v for x in range(width) for v in pixel(x, y))
        if filter_type == 1:
            row = bytes((row[i] - (row[i - 3] if i >= 3 else 0)) & 0xFF for i in range(len(row)))
        rows += bytes([filter_type]) + row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def image_message(text: str, url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


# --- hashing --------------------------------------------------------------------------------------


def test_attachments_are_hashed_as_type_and_filename() -> None:
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Compare these"},
        {"type": "image_url", "image_url": {"url": data_url(b"one")}},
        {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,AAAA"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}
    assert canonical_chat_request(body)["messages"][0]["content"] == [
        {"type": "text", "text": "Compare these"}, {"type": "image_url"},
        {"type": "file", "filename": "report.pdf"}, {"type": "input_audio"}]


def test_the_text_part_is_hashed_and_the_image_bytes_are_not() -> None:
    def digest(text: str, image: bytes) -> bytes:
        return request_hash(canonical_chat_request({"model": "openai/gpt-4o",
                                                    "messages": image_message(text, data_url(image))}))

    assert digest("What is this?", b"one") == digest("What is this?", b"two")
    assert digest("What is this?", b"one") != digest("What is that?", b"one")


def test_web_search_is_hashed_only_when_asked_for() -> None:
    base = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    assert "web_search" not in canonical_chat_request({**base, "web_search": False})
    assert canonical_chat_request({**base, "web_search": True})["web_search"] is True


# --- reading images -------------------------------------------------------------------------------


@pytest.mark.parametrize("filter_type", [0, 1])
def test_the_devnet_reads_a_pngs_size_and_mean_colour(filter_type: int) -> None:
    image = png(4, 2, lambda x, y: (255, 0, 0) if x < 2 else (0, 0, 255), filter_type=filter_type)
    assert media.describe_image(image) == ("a PNG image, 4x2 pixels, whose mean colour is #800080 "
                                           "(RGB 128, 0, 128)")


def test_other_formats_are_identified_and_non_images_refused() -> None:
    gif = b"GIF89a" + struct.pack("<HH", 7, 5) + b"\0" * 8
    assert media.describe_image(gif).startswith("a GIF image, 7x5 pixels")
    with pytest.raises(media.ImageError, match="not a PNG"):
        media.describe_image(b"hello")


def _opg_balance(net: Devnet, address: str) -> int:
    data = bytes.fromhex("70a08231") + encode(["address"], [address])
    reply: Any = net.payments_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [
        {"to": net.network.payments.token_address, "data": "0x" + data.hex()}, "latest"]})
    return int(decode(["uint256"], bytes.fromhex(reply["result"][2:]))[0])


GREEN = png(3, 3, lambda x, y: (0, 200, 0))


def test_a_signed_request_with_an_image_verifies_and_the_model_saw_it(devnet: Devnet) -> None:
    result = devnet.client.llm.chat("openai/gpt-4o", image_message("Describe this image.", data_url(GREEN)),
                                    max_tokens=None)
    assert result.tee_verified
    assert "a PNG image, 3x3 pixels, whose mean colour is #00c800" in (result.chat_output or {})["content"]
    assert result.tee_request_hash == request_hash(canonical_chat_request({
        "model": "openai/gpt-4o", "temperature": 0.0,
        "messages": image_message("Describe this image.", "data:anything")})).hex()


def test_a_streamed_answer_about_an_image_verifies(devnet: Devnet) -> None:
    stream = devnet.client.llm.chat("openai/gpt-4o", image_message("What is it?", data_url(GREEN)),
                                    max_tokens=None, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "mean colour is #00c800" in text
    assert stream.result is not None and stream.result.tee_verified


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    """A loopback HTTP server of one PNG at /blue.png."""
    blue = png(5, 4, lambda x, y: (0, 0, 250))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = blue if self.path == "/blue.png" else b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_loopback_image_url_is_fetched_and_read(devnet: Devnet, image_server: str) -> None:
    result = devnet.client.llm.chat("openai/gpt-4o", image_message("Describe it", image_server + "/blue.png"),
                                    max_tokens=None)
    assert result.tee_verified and "a PNG image, 5x4 pixels, whose mean colour is #0000fa" in str(
        (result.chat_output or {})["content"])


def test_a_remote_image_url_is_refused_before_payment(devnet: Devnet) -> None:
    client = devnet.new_client(devnet.accounts[5].private_key)
    before = _opg_balance(devnet, client.address or "")
    with pytest.raises(og.HTTPStatusError) as caught:
        client.llm.chat("openai/gpt-4o", image_message("Describe it", "https://example.com/cat.png"))
    assert caught.value.status_code == 400 and "offline" in str(caught.value)
    assert _opg_balance(devnet, client.address or "") == before


def test_a_mirrored_remote_url_is_read_from_its_local_copy(devnet: Devnet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(media.OFFLINE_MIRRORS, "https://example.com/green.png", GREEN)
    result = devnet.client.llm.chat("openai/gpt-4o", image_message("Describe it", "https://example.com/green.png"),
                                    max_tokens=None)
    assert "mean colour is #00c800" in str((result.chat_output or {})["content"])
