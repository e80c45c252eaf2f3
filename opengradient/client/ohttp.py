"""Oblivious HTTP (RFC 9458) message framing, over HPKE (RFC 9180) from `pyhpke`.

Confidential chat seals a request to an enclave's X25519 key, so the relay that forwards it (and
pays for it) sees only ciphertext. The suite is the one the network registers: DHKEM(X25519,
HKDF-SHA256) `0x0020`, HKDF-SHA256 `0x0001`, ChaCha20-Poly1305 `0x0003`.

- Request: `hdr = keyId(1) ‖ kemId(2) ‖ kdfId(2) ‖ aeadId(2)`; HPKE base mode to the key with
  `info = "message/bhttp request" ‖ 0x00 ‖ hdr`; the message is `hdr ‖ enc ‖ ciphertext`.
- Response: a secret exported from the request's HPKE context (label `"message/bhttp response"`),
  a random `response_nonce`, `prk = HKDF-Extract(enc ‖ response_nonce, secret)`, AEAD key and nonce
  expanded from it (`"key"`, `"nonce"`); the message is `response_nonce ‖ ciphertext`.
- Chunked response (for streams): the export label is `"message/bhttp chunked response"`; after the
  nonce come chunks, each `varint(length) ‖ sealed`, the i-th sealed with the base nonce XOR i; the
  last is `varint(0) ‖ sealed` with AAD `"final"`, running to the end of the message.

HPKE (key encapsulation, key schedule, export) is `pyhpke`'s; HKDF and the AEAD are
`cryptography`'s. This module only frames. Both ends are here: the SDK seals requests and opens
responses; the devnet's enclave opens requests and seals responses.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from dataclasses import dataclass

from opengradient.errors import InvalidInputError, VerificationError

__all__ = [
    "AEAD_CHACHA20_POLY1305",
    "KDF_HKDF_SHA256",
    "KEM_X25519_HKDF_SHA256",
    "ChunkedResponseReader",
    "KeyConfig",
    "RequestContext",
    "ServerContext",
    "encapsulate_request",
    "generate_key",
    "open_request",
]

KEM_X25519_HKDF_SHA256 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_CHACHA20_POLY1305 = 0x0003
_REQUEST_LABEL = b"message/bhttp request"
_RESPONSE_LABEL = b"message/bhttp response"
_CHUNKED_RESPONSE_LABEL = b"message/bhttp chunked response"
_FINAL = b"final"
_NK = 32  # ChaCha20-Poly1305 key length
_NN = 12  # its nonce length
_NONCE_LEN = max(_NK, _NN)  # response_nonce length
_ENC_LEN = 32  # an X25519 encapsulated key
_TAG = 16
#: The largest chunk a reader accepts (a bound on what one length prefix may claim).
MAX_CHUNK = 16 * 1024 * 1024


@dataclass(frozen=True)
class KeyConfig:
    """An enclave's OHTTP key: its id, suite and X25519 public key (32 bytes)."""

    key_id: int
    public_key: bytes
    kem_id: int = KEM_X25519_HKDF_SHA256
    kdf_id: int = KDF_HKDF_SHA256
    aead_id: int = AEAD_CHACHA20_POLY1305

    def __post_init__(self) -> None:
        if not 0 <= self.key_id <= 255:
            raise InvalidInputError(f"an OHTTP key id is one byte, got {self.key_id}")
        if (self.kem_id, self.kdf_id, self.aead_id) != (KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256,
                                                        AEAD_CHACHA20_POLY1305):
            raise InvalidInputError(
                f"unsupported OHTTP suite kem={self.kem_id:#06x} kdf={self.kdf_id:#06x} aead={self.aead_id:#06x}: "
                "this client speaks X25519 / HKDF-SHA256 / ChaCha20-Poly1305 (0x0020, 0x0001, 0x0003)")
        if len(self.public_key) != _ENC_LEN:
            raise InvalidInputError(f"an X25519 public key is 32 bytes, got {len(self.public_key)}")

    @property
    def encoded(self) -> bytes:
        """The key configuration as RFC 9458 §3.1 encodes it: keyId, kemId, the public key, then the
        length of the suites and each (kdfId, aeadId)."""
        suites = self.kdf_id.to_bytes(2, "big") + self.aead_id.to_bytes(2, "big")
        return (bytes([self.key_id]) + self.kem_id.to_bytes(2, "big") + self.public_key
                + len(suites).to_bytes(2, "big") + suites)

    @property
    def header(self) -> bytes:
        """`keyId ‖ kemId ‖ kdfId ‖ aeadId`, big-endian: the first 7 bytes of a request."""
        return (bytes([self.key_id]) + self.kem_id.to_bytes(2, "big") + self.kdf_id.to_bytes(2, "big")
                + self.aead_id.to_bytes(2, "big"))


def _suite() -> object:
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId

    return CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)


def generate_key(key_id: int = 1) -> tuple[KeyConfig, bytes]:
    """A new X25519 key pair: (its public `KeyConfig`, the private key's 32 bytes)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return KeyConfig(key_id, public), private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _info(config: KeyConfig) -> bytes:
    return _REQUEST_LABEL + b"\x00" + config.header


def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def _response_keys(secret: bytes, enc: bytes, response_nonce: bytes) -> tuple[bytes, bytes]:
    prk = _hkdf_extract(enc + response_nonce, secret)
    return _hkdf_expand(prk, b"key", _NK), _hkdf_expand(prk, b"nonce", _NN)


def _chunk_nonce(base: bytes, counter: int) -> bytes:
    return bytes(a ^ b for a, b in zip(base, counter.to_bytes(_NN, "big"), strict=True))


def _aead(key: bytes) -> object:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    return ChaCha20Poly1305(key)


def _varint(n: int) -> bytes:
    """QUIC variable-length integer (RFC 9000 §16)."""
    if n < 1 << 6:
        return n.to_bytes(1, "big")
    if n < 1 << 14:
        return (n | 0x4000).to_bytes(2, "big")
    if n < 1 << 30:
        return (n | 0x8000_0000).to_bytes(4, "big")
    if n < 1 << 62:
        return (n | 0xC000_0000_0000_0000).to_bytes(8, "big")
    raise ValueError("varint out of range")


def _read_varint(data: bytes, at: int) -> tuple[int, int] | None:
    """(value, next offset), or None when `data` does not hold the whole varint yet."""
    if at >= len(data):
        return None
    size = 1 << (data[at] >> 6)
    if at + size > len(data):
        return None
    value = int.from_bytes(data[at:at + size], "big") & ((1 << (8 * size - 2)) - 1)
    return value, at + size


class RequestContext:
    """The client's side after sealing a request: opens the response (whole or chunked)."""

    def __init__(self, context: object, enc: bytes) -> None:
        self._context = context
        self._enc = enc

    def _keys(self, label: bytes, response_nonce: bytes) -> tuple[bytes, bytes]:
        secret = self._context.export(label, _NK)  # type: ignore[attr-defined]
        return _response_keys(secret, self._enc, response_nonce)

    def open_response(self, message: bytes) -> bytes:
        """The plaintext of an encapsulated response; `VerificationError` if it does not open."""
        if len(message) < _NONCE_LEN + _TAG:
            raise VerificationError("the OHTTP response is too short to be sealed")
        key, nonce = self._keys(_RESPONSE_LABEL, message[:_NONCE_LEN])
        try:
            return bytes(_aead(key).decrypt(nonce, message[_NONCE_LEN:], b""))  # type: ignore[attr-defined]
        except Exception:
            raise VerificationError("the OHTTP response does not open with this request's keys "
                                    "(tampered with, or sealed for another request)") from None

    def chunked_reader(self) -> ChunkedResponseReader:
        """A reader for a chunked response, fed the bytes as they arrive."""
        return ChunkedResponseReader(self)


class ChunkedResponseReader:
    """Opens a chunked OHTTP response incrementally: `feed` bytes, get plaintext chunks; `finish`
    checks that the final chunk arrived (a stream cut short is refused, never taken as complete)."""

    def __init__(self, request: RequestContext) -> None:
        self._request = request
        self._buffer = b""
        self._key: bytes | None = None
        self._nonce = b""
        self._counter = 0
        self._final_started = False
        self.done = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Plaintext of every chunk completed by `data` (the final chunk waits for `finish`)."""
        if self.done:
            raise VerificationError("the OHTTP response continues after its final chunk")
        self._buffer += data
        if self._key is None:
            if len(self._buffer) < _NONCE_LEN:
                return
            self._key, self._nonce = self._request._keys(_CHUNKED_RESPONSE_LABEL, self._buffer[:_NONCE_LEN])
            self._buffer = self._buffer[_NONCE_LEN:]
        while not self._final_started:
            read = _read_varint(self._buffer, 0)
            if read is None:
                return
            length, start = read
            if length == 0:
                self._buffer, self._final_started = self._buffer[start:], True
                return
            if length > MAX_CHUNK:
                raise VerificationError(f"an OHTTP chunk claims {length} bytes (at most {MAX_CHUNK})")
            if len(self._buffer) < start + length:
                return
            yield self._open(self._buffer[start:start + length], b"")
            self._buffer = self._buffer[start + length:]

    def finish(self) -> bytes:
        """The final chunk's plaintext, once the response has ended."""
        if not self._final_started or self._key is None:
            raise VerificationError("the OHTTP response ended before its final chunk: it was cut short")
        self.done = True
        return self._open(self._buffer, _FINAL)

    def _open(self, sealed: bytes, aad: bytes) -> bytes:
        assert self._key is not None
        nonce = _chunk_nonce(self._nonce, self._counter)
        self._counter += 1
        try:
            return bytes(_aead(self._key).decrypt(nonce, sealed, aad))  # type: ignore[attr-defined]
        except Exception:
            raise VerificationError("an OHTTP response chunk does not open (tampered with, reordered, "
                                    "or sealed for another request)") from None


def encapsulate_request(config: KeyConfig, plaintext: bytes) -> tuple[bytes, RequestContext]:
    """Seal `plaintext` to `config`'s key: (the encapsulated request, the context to open its answer)."""
    suite = _suite()
    public = suite.kem.deserialize_public_key(config.public_key)  # type: ignore[attr-defined]
    enc, sender = suite.create_sender_context(public, info=_info(config))  # type: ignore[attr-defined]
    ciphertext = sender.seal(plaintext, aad=b"")
    return config.header + bytes(enc) + bytes(ciphertext), RequestContext(sender, bytes(enc))


class ServerContext:
    """The enclave's side after opening a request: seals the response (whole or chunked)."""

    def __init__(self, context: object, enc: bytes) -> None:
        self._context = context
        self._enc = enc

    def _keys(self, label: bytes) -> tuple[bytes, bytes, bytes]:
        response_nonce = os.urandom(_NONCE_LEN)
        secret = self._context.export(label, _NK)  # type: ignore[attr-defined]
        key, nonce = _response_keys(secret, self._enc, response_nonce)
        return response_nonce, key, nonce

    def seal_response(self, plaintext: bytes) -> bytes:
        """The encapsulated response carrying `plaintext`."""
        response_nonce, key, nonce = self._keys(_RESPONSE_LABEL)
        return response_nonce + bytes(_aead(key).encrypt(nonce, plaintext, b""))  # type: ignore[attr-defined]

    def chunked_sealer(self) -> ChunkedResponseSealer:
        """A sealer for a chunked response (streams)."""
        return ChunkedResponseSealer(self)


class ChunkedResponseSealer:
    """Seals a chunked response: `start()` (the nonce), `chunk(data)` each piece, `final(data)`."""

    def __init__(self, server: ServerContext) -> None:
        self._response_nonce, self._key, self._nonce = server._keys(_CHUNKED_RESPONSE_LABEL)
        self._counter = 0

    def start(self) -> bytes:
        """The first bytes of the response: its nonce."""
        return self._response_nonce

    def _seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = _chunk_nonce(self._nonce, self._counter)
        self._counter += 1
        return bytes(_aead(self._key).encrypt(nonce, data, aad))  # type: ignore[attr-defined]

    def chunk(self, data: bytes) -> bytes:
        """One non-final chunk (empty data is not a chunk: it would read as the final marker)."""
        if not data:
            raise ValueError("a non-final OHTTP chunk cannot be empty")
        sealed = self._seal(data, b"")
        return _varint(len(sealed)) + sealed

    def final(self, data: bytes = b"") -> bytes:
        """The final chunk: `varint(0) ‖ sealed(data)` with AAD "final"."""
        return _varint(0) + self._seal(data, _FINAL)


def open_request(config: KeyConfig, private_key: bytes, message: bytes) -> tuple[bytes, ServerContext]:
    """Open an encapsulated request sealed to `config`: (plaintext, the context to seal the answer).

    `ValueError` when the header names another key or suite, or the ciphertext does not open.
    """
    header = config.header
    if len(message) < len(header) + _ENC_LEN + _TAG:
        raise ValueError("the OHTTP request is too short")
    if message[:len(header)] != header:
        raise ValueError(f"the OHTTP request is for key {message[0]} / suite {message[1:7].hex()}, not this "
                         f"enclave's key {config.key_id} / {header[1:].hex()}")
    enc = message[len(header):len(header) + _ENC_LEN]
    suite = _suite()
    key = suite.kem.deserialize_private_key(private_key)  # type: ignore[attr-defined]
    try:
        recipient = suite.create_recipient_context(enc, key, info=_info(config))  # type: ignore[attr-defined]
        plaintext = recipient.open(message[len(header) + _ENC_LEN:], aad=b"")
    except Exception:
        raise ValueError("the OHTTP request does not open with this enclave's key") from None
    return bytes(plaintext), ServerContext(recipient, enc)
