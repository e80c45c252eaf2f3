"""Ask about an image with `client.llm.chat`, on an in-process devnet.

Images travel as OpenAI content parts (`image_url` with a data URL, or an http(s) URL). The
enclave signs the request with the text kept and each attachment reduced to its type, so the
signature verifies without hashing the image bytes. The devnet's reference model reads the image
itself and says its format, size and mean colour; being offline, it fetches URLs only from this
machine.

Run: python examples/image_input.py
"""

from __future__ import annotations

import base64
import struct
import zlib

import opengradient as og


def orange_png(width: int = 16, height: int = 8) -> bytes:
    """A small solid-orange PNG, written with zlib."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes((255, 165, 0)) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def main() -> None:
    with og.devnet.start() as net:
        image = "data:image/png;base64," + base64.b64encode(orange_png()).decode()
        response = net.client.llm.chat(
            model=og.TEE_LLM.GPT_4O,
            messages=[{"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": image}},
            ]}],
            max_tokens=None,
        )
        assert response.chat_output is not None
        print(f"answer:   {response.chat_output['content']}")
        print(f"verified: {response.tee_verified} (signed request hash 0x{response.tee_request_hash})")

        try:  # the offline devnet refuses remote URLs before anything is paid
            net.client.llm.chat(og.TEE_LLM.GPT_4O, [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
        except og.HTTPStatusError as exc:
            print(f"remote URL refused: HTTP {exc.status_code}")


if __name__ == "__main__":
    main()
