"""Oblivious HTTP framing (RFC 9458, chunked responses) over pyhpke: both ends, and what must fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opengradient.client.ohttp import (
    KeyConfig,
    _read_varint,
    _varint,
    encapsulate_request,
    generate_key,
    open_request,
)
from opengradient.errors import InvalidInputError, VerificationError

CONFIG, PRIVATE = generate_key(7)


def test_a_request_opens_only_with_its_key_and_header() -> None:
    message, _ = encapsulate_request(CONFIG, b'{"model": "gpt-4o"}')
    assert message[:7] == bytes([7, 0x00, 0x20, 0x00, 0x01, 0x00, 0x03])  # keyId, kem, kdf, aead
    assert open_request(CONFIG, PRIVATE, message)[0] == b'{"model": "gpt-4o"}'
    other, other_private = generate_key(7)
    with pytest.raises(ValueError, match="does not open"):
        open_request(other, other_private, message)
    with pytest.raises(ValueError, match="not this enclave's key"):
        open_request(KeyConfig(8, CONFIG.public_key), PRIVATE, message)
    tampered = bytearray(message)
    tampered[-1] ^= 1
    with pytest.raises(ValueError):
        open_request(CONFIG, PRIVATE, bytes(tampered))


def test_a_response_opens_only_for_its_request() -> None:
    message, context = encapsulate_request(CONFIG, b"question")
    _, server = open_request(CONFIG, PRIVATE, message)
    sealed = server.seal_response(b"answer")
    assert context.open_response(sealed) == b"answer"
    _, other_context = encapsulate_request(CONFIG, b"question")
    with pytest.raises(VerificationError):
        other_context.open_response(sealed)
    with pytest.raises(VerificationError):
        context.open_response(sealed[:-1] + bytes([sealed[-1] ^ 1]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=6), st.binary(max_size=50), st.integers(1, 97))
def test_chunked_responses_open_however_the_bytes_are_split(chunks: list[bytes], last: bytes, step: int) -> None:
    message, context = encapsulate_request(CONFIG, b"stream please")
    _, server = open_request(CONFIG, PRIVATE, message)
    sealer = server.chunked_sealer()
    wire = sealer.start() + b"".join(sealer.chunk(c) for c in chunks) + sealer.final(last)
    reader = context.chunked_reader()
    out = [piece for i in range(0, len(wire), step) for piece in reader.feed(wire[i:i + step])]
    assert out == chunks and reader.finish() == last


def test_a_cut_or_reordered_chunked_response_is_refused() -> None:
    message, context = encapsulate_request(CONFIG, b"stream")
    _, server = open_request(CONFIG, PRIVATE, message)
    sealer = server.chunked_sealer()
    start, one, two, final = sealer.start(), sealer.chunk(b"one"), sealer.chunk(b"two"), sealer.final(b"")
    cut = context.chunked_reader()
    list(cut.feed(start + one + two))
    with pytest.raises(VerificationError, match="cut short"):
        cut.finish()  # a stream without its final chunk is never complete
    reordered = context.chunked_reader()
    with pytest.raises(VerificationError):
        list(reordered.feed(start + two + one + final))
    truncated_final = context.chunked_reader()
    list(truncated_final.feed(start + one + two + final[:-1]))
    with pytest.raises(VerificationError):
        truncated_final.finish()


@given(st.integers(0, 2**62 - 1))
def test_varints_round_trip(n: int) -> None:
    encoded = _varint(n)
    assert _read_varint(encoded, 0) == (n, len(encoded))
    assert _read_varint(encoded[:-1], 0) is None if len(encoded) > 1 else True


def test_only_the_networks_suite_is_accepted() -> None:
    with pytest.raises(InvalidInputError, match="unsupported OHTTP suite"):
        KeyConfig(1, CONFIG.public_key, aead_id=0x0001)
    with pytest.raises(InvalidInputError, match="32 bytes"):
        KeyConfig(1, b"short")
