"""What the devnet's reference model makes beside text: images and offline web search.

Image-generation models answer with a real PNG drawn deterministically from the prompt (written
with zlib), so the same prompt always gives the same image. Web search reads a small corpus of
documents shipped with the package (`web_corpus.json`), never the internet, and every answer and
citation says so.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import struct
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["CORPUS_URL_PREFIX", "IMAGE_MODELS", "Document", "corpus", "draw_png", "image_data_url",
           "is_image_model", "search"]

#: The image-generation models of today's service (bare names).
IMAGE_MODELS: frozenset[str] = frozenset({
    "gemini-2.5-flash-image", "gemini-3.1-flash-image", "gpt-image-2", "grok-2-image", "seedream-4.0",
    "seedance-4.5", "glm-image"})
#: How citations of the local corpus are addressed (not a web URL).
CORPUS_URL_PREFIX = "devnet-corpus://"


def is_image_model(model: str) -> bool:
    """Whether `model` (bare or `provider/model`) generates images."""
    return (model.split("/", 1)[1] if "/" in model else model) in IMAGE_MODELS


def draw_png(prompt: str, width: int = 64, height: int = 64) -> bytes:
    """A PNG drawn from the prompt's hash: a two-colour diagonal gradient, the same for the same prompt."""
    seed = hashlib.sha256(prompt.encode("utf-8")).digest()
    start, end = seed[0:3], seed[3:6]
    rows = bytearray()
    span = max(1, width + height - 2)
    for y in range(height):
        rows.append(0)
        for x in range(width):
            t = (x + y) / span
            rows += bytes(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
            + chunk(b"IEND", b""))


def image_data_url(png: bytes) -> str:
    """A PNG as the `data:` URI today's gateway returns in `message.images`."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class Document:
    """One document of the local corpus."""

    id: str
    title: str
    text: str

    @property
    def url(self) -> str:
        """Its address in the local corpus (`devnet-corpus://<id>`)."""
        return CORPUS_URL_PREFIX + self.id


@functools.cache
def corpus() -> tuple[Document, ...]:
    """The documents shipped with the devnet."""
    raw: Any = json.loads(resources.files(__package__).joinpath("web_corpus.json").read_text("utf-8"))
    return tuple(Document(d["id"], d["title"], d["text"]) for d in raw["documents"])


def _terms(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def search(query: str, limit: int = 2) -> list[Document]:
    """The corpus documents that share the most words with `query` (best first; none if nothing matches)."""
    words = _terms(query)
    scored = [(len(words & _terms(d.title + " " + d.text)) + 2 * len(words & _terms(d.title)), i, d)
              for i, d in enumerate(corpus())]
    return [d for score, _, d in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0][:limit]
