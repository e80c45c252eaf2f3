"""Generate an image with one of today's image models, on an in-process devnet.

Image-generation models answer with text (signed by the enclave, as any answer) and images on
`output.images` as `data:image/png;base64,…` URIs, which today's service does not sign. The
devnet draws a real PNG deterministically from the prompt, so the same prompt gives the same image.

Run: python examples/image_generation.py
"""

from __future__ import annotations

import base64
import hashlib

import opengradient as og


def main() -> None:
    with og.devnet.start() as net:
        response = net.client.llm.chat(
            model=og.TEE_LLM.GEMINI_2_5_FLASH_IMAGE,
            messages=[{"role": "user", "content": "A lighthouse on a cliff at dusk"}],
            max_tokens=None,
        )
        assert response.chat_output is not None and response.images
        print(f"answer:   {response.chat_output['content']}")
        print(f"verified: {response.tee_verified} (the text; the images are not signed)")
        header, data = response.images[0].split(",", 1)
        png = base64.b64decode(data)
        print(f"image:    {header}, {len(png)} bytes, sha256 {hashlib.sha256(png).hexdigest()[:16]}")
        is_png = png.startswith(b"\x89PNG\r\n\x1a\n")
        print(f"PNG:      {is_png}")


if __name__ == "__main__":
    main()
