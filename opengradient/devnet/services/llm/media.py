"""Images the devnet's reference model reads: from data URLs, loopback URLs, or offline mirrors.

The devnet is offline, so an image URL is read only when it points at this machine (127.0.0.1,
localhost, ::1) or is in `OFFLINE_MIRRORS` (a remote URL whose bytes a test or tool has copied
here); any other URL is refused before payment with a clear error. PNGs are decoded here with
zlib (format, dimensions and mean colour); GIF, JPEG and WebP are identified with their
dimensions from their headers (this module decodes no compressed pixel data but PNG's).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import zlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["OFFLINE_MIRRORS", "ImageError", "describe_image", "image_urls", "is_local_url", "read_image",
           "remote_image_urls"]

#: Remote image URLs the devnet answers from local bytes (`{url: bytes}`), so suites that name a
#: public URL run offline. Empty by default.
OFFLINE_MIRRORS: dict[str, bytes] = {}

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_DATA_URL = re.compile(r"^data:([\w.+/-]*)((?:;[\w=.+-]+)*),(.*)$", re.S)
_MAX_IMAGE_BYTES = 20 * 1024 * 1024


class ImageError(ValueError):
    """An image the devnet cannot take: a remote URL (it is offline) or bytes that are not an image."""


def _part_url(part: Any) -> str | None:
    if not isinstance(part, Mapping) or part.get("type") != "image_url":
        return None
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    return url if isinstance(url, str) else None


def image_urls(messages: Any) -> Iterator[str]:
    """Every `image_url` URL in a list of chat messages, in order."""
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, Mapping) else None
        for part in content if isinstance(content, list) else []:
            url = _part_url(part)
            if url is not None:
                yield url


def is_local_url(url: str) -> bool:
    """Whether an http(s) URL points at this machine."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in _LOOPBACK_HOSTS


def remote_image_urls(messages: Any) -> list[str]:
    """The image URLs the offline devnet cannot fetch (neither data, loopback nor mirrored)."""
    return [url for url in image_urls(messages)
            if not url.startswith("data:") and url not in OFFLINE_MIRRORS and not is_local_url(url)]


def _data_url_bytes(url: str) -> bytes:
    match = _DATA_URL.match(url)
    if match is None:
        raise ImageError("the image's data URL is malformed (expected data:<type>;base64,<data>)")
    if ";base64" not in match.group(2):
        raise ImageError("the image's data URL is not base64")
    try:
        return base64.b64decode(match.group(3), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(f"the image's data URL is not valid base64: {exc}") from None


async def read_image(url: str, client: httpx.AsyncClient | None = None) -> bytes:
    """The bytes of one image URL (data, mirrored or loopback); raises `ImageError` otherwise."""
    if url.startswith("data:"):
        return _data_url_bytes(url)
    if url in OFFLINE_MIRRORS:
        return OFFLINE_MIRRORS[url]
    if not is_local_url(url):
        raise ImageError(f"the devnet is offline and fetches images only from this machine, not {url!r}: "
                         "send the image as a data URL or serve it on 127.0.0.1")
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=10.0) as own:
                response = await own.get(url)
        else:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise ImageError(f"could not fetch the image at {url}: {exc}") from None
    if response.status_code != 200:
        raise ImageError(f"the image at {url} answered HTTP {response.status_code}")
    if len(response.content) > _MAX_IMAGE_BYTES:
        raise ImageError(f"the image at {url} is larger than {_MAX_IMAGE_BYTES} bytes")
    return response.content


# --- reading images ------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png_mean(data: bytes) -> tuple[int, int, tuple[int, int, int]]:
    """Width, height and mean RGB of an 8-bit, non-interlaced PNG (any colour type)."""
    header = b""
    idat = bytearray()
    palette = b""
    for kind, body in _png_chunks(data):
        if kind == b"IHDR":
            header = body
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat += body
    if len(header) != 13:
        raise ImageError("the PNG has no valid IHDR chunk")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if colour not in _CHANNELS or depth != 8 or interlace:
        raise ImageError(f"the PNG is {depth}-bit colour type {colour}{' interlaced' if interlace else ''}; "
                         "the devnet reads 8-bit non-interlaced PNGs")
    if width * height > 16_000_000:
        raise ImageError("the PNG is too large for the devnet to read")
    channels = _CHANNELS[colour]
    stride = width * channels
    try:
        raw = zlib.decompress(bytes(idat))
    except zlib.error as exc:
        raise ImageError(f"the PNG's pixel data is corrupt: {exc}") from None
    if len(raw) < height * (stride + 1):
        raise ImageError("the PNG's pixel data is truncated")
    previous = bytearray(stride)
    totals = [0, 0, 0]
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                row[i] = (row[i] + _paeth(left, up, previous[i - channels] if i >= channels else 0)) & 0xFF
            elif kind != 0:
                raise ImageError(f"the PNG uses unknown row filter {kind}")
        for x in range(width):
            pixel = row[x * channels:(x + 1) * channels]
            if colour == 3:
                index = pixel[0] * 3
                rgb = palette[index:index + 3] if index + 3 <= len(palette) else b"\0\0\0"
            elif colour in (0, 4):
                rgb = bytes([pixel[0]] * 3)
            else:
                rgb = bytes(pixel[:3])
            totals[0] += rgb[0]
            totals[1] += rgb[1]
            totals[2] += rgb[2]
        previous = row
    count = max(1, width * height)
    mean = (round(totals[0] / count), round(totals[1] / count), round(totals[2] / count))
    return width, height, mean


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def describe_image(data: bytes) -> str:
    """What the image is, in words: format, dimensions and (for PNG) mean colour."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        width, height, (r, g, b) = _png_mean(data)
        return f"a PNG image, {width}x{height} pixels, whose mean colour is #{r:02x}{g:02x}{b:02x} (RGB {r}, {g}, {b})"
    size: tuple[int, int] | None = None
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        name, size = "GIF", struct.unpack("<HH", data[6:10])
    elif data.startswith(b"\xff\xd8"):
        name, size = "JPEG", _jpeg_size(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        name, size = "WebP", _webp_size(data)
    else:
        raise ImageError("the image is not a PNG, JPEG, GIF or WebP file")
    if size is None:
        raise ImageError(f"the {name} image's header is malformed")
    return (f"a {name} image, {size[0]}x{size[1]} pixels (the devnet decodes only PNG pixels, so it cannot "
            "say its colours)")
