"""What a TEE signs for an LLM response, and how to check it.

The gateway's enclave signs `keccak256(request_hash ‖ output_hash ‖ uint256(timestamp))` with
RSA-PSS (SHA-256, MGF1-SHA-256, salt 32). Both hashes are recomputed here from what the client
sent and received, so a response whose content, tool calls, hashes, timestamp, signature or
enclave id was changed anywhere on the way fails verification. The devnet's gateway signs with
these same functions, so there is one definition of the canonical form.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from opengradient.errors import VerificationError

TEE_FIELDS = ("tee_signature", "tee_request_hash", "tee_output_hash", "tee_timestamp", "tee_id")


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's hash)."""
    from eth_utils import keccak

    return bytes(keccak(data))


def canonical_user_content(content: Any) -> Any:
    """User content as hashed: text parts kept, each attachment reduced to `{type[, filename]}`.

    Attachment bytes (images, files, audio) are not hashed, so the enclave's signature covers what
    the user said and which kinds of media came with it, not the media themselves.
    """
    if not isinstance(content, list):
        return content
    out: list[Any] = []
    for part in content:
        if not isinstance(part, Mapping):
            out.append({"type": "text", "text": str(part)})
        elif part.get("type") == "text":
            out.append({"type": "text", "text": part.get("text") or ""})
        else:
            entry: dict[str, Any] = {"type": part.get("type")}
            file = part.get("file")
            filename = (file.get("filename") if isinstance(file, Mapping) else None) or part.get("filename")
            if filename:
                entry["filename"] = filename
            out.append(entry)
    return out


def normalize_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical form of one chat message: only the fields that are hashed."""
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": content}
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": content or ""}
        if message.get("tool_calls"):
            out["tool_calls"] = normalize_tool_calls(message["tool_calls"])
        return out
    if role == "tool":
        return {"role": "tool", "content": content, "tool_call_id": message.get("tool_call_id")}
    if role == "user":
        return {"role": "user", "content": canonical_user_content(content)}
    return {"role": role, "content": content}


def normalize_tool_calls(tool_calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls in OpenAI's message form, without stream-only keys such as `index`."""
    out = []
    for call in tool_calls:
        function = call.get("function") or {}
        out.append({"id": call.get("id"), "type": call.get("type", "function"),
                    "function": {"name": function.get("name"), "arguments": function.get("arguments")}})
    return out


def _temperature(body: Mapping[str, Any]) -> float:
    value = body.get("temperature")
    return 0.0 if value is None else float(value)


def canonical_chat_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed part of a chat request body.

    Other fields (`tool_choice`, `stream`, sampling options such as `top_p`) are sent but not
    hashed: a response's signature does not vouch for them.
    """
    canonical: dict[str, Any] = {
        "model": body.get("model"),
        "messages": [normalize_message(m) for m in body.get("messages") or []],
        "temperature": _temperature(body),
    }
    for key in ("max_tokens", "stop", "tools", "response_format"):
        if body.get(key) is not None:
            canonical[key] = body[key]
    if body.get("web_search"):  # hashed only when asked for, as `true`
        canonical["web_search"] = True
    return canonical


def canonical_completion_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed part of a completion request body."""
    canonical: dict[str, Any] = {
        "model": body.get("model"),
        "prompt": body.get("prompt"),
        "temperature": _temperature(body),
    }
    for key in ("max_tokens", "stop"):
        if body.get(key) is not None:
            canonical[key] = body[key]
    return canonical


def request_hash(canonical: Mapping[str, Any]) -> bytes:
    """keccak256 of the canonical request as `json.dumps(…, sort_keys=True)`."""
    return keccak256(json.dumps(canonical, sort_keys=True).encode("utf-8"))


def output_text(content: str | None, tool_calls: Sequence[Mapping[str, Any]] | None,
                finish_reason: str | None) -> str:
    """What the output hash covers: the text, or the tool calls when the model called tools."""
    if finish_reason == "tool_calls" and tool_calls:
        return json.dumps(normalize_tool_calls(tool_calls), sort_keys=True)
    if content is not None and not isinstance(content, str):
        raise VerificationError(f"the response's content is a {type(content).__name__}, not text")
    return content or ""


def output_hash(text: str) -> bytes:
    """keccak256 of the output text."""
    return keccak256(text.encode("utf-8"))


def signed_message(req_hash: bytes, out_hash: bytes, timestamp: int) -> bytes:
    """The 32 bytes the enclave signs: keccak256(request_hash ‖ output_hash ‖ uint256(timestamp))."""
    return keccak256(req_hash + out_hash + int(timestamp).to_bytes(32, "big"))


@lru_cache(maxsize=256)
def tee_id_of(public_key_der: bytes) -> str:
    """An enclave's id: keccak256 of its DER SubjectPublicKeyInfo (cached: asked on every response)."""
    return "0x" + keccak256(public_key_der).hex()


@dataclass(frozen=True)
class TeeKey:
    """A trusted enclave key (DER SubjectPublicKeyInfo) and its id."""

    public_key_der: bytes

    @property
    def tee_id(self) -> str:
        """keccak256 of the key, as the gateway reports it."""
        return tee_id_of(self.public_key_der)

    @classmethod
    def from_pem(cls, pem: str | bytes) -> TeeKey:
        """Load a PEM public key (as `GET /signing-key` serves it)."""
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
        der = key.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(der)


@dataclass(frozen=True)
class TeeAttestation:
    """The TEE fields of one response, parsed."""

    signature: bytes
    request_hash: bytes
    output_hash: bytes
    timestamp: int
    tee_id: str

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> TeeAttestation:
        """Parse the `tee_*` fields; malformed values are a verification failure."""
        missing = [f for f in TEE_FIELDS if fields.get(f) in (None, "")]
        if missing:
            raise VerificationError(f"the response lacks TEE fields: {', '.join(missing)}")
        try:
            return cls(
                signature=base64.b64decode(str(fields["tee_signature"]), validate=True),
                request_hash=bytes.fromhex(str(fields["tee_request_hash"]).removeprefix("0x")),
                output_hash=bytes.fromhex(str(fields["tee_output_hash"]).removeprefix("0x")),
                timestamp=int(fields["tee_timestamp"]),
                tee_id=str(fields["tee_id"]).lower(),
            )
        except (ValueError, TypeError, binascii.Error) as exc:
            raise VerificationError(f"the response's TEE fields are malformed: {exc}") from exc


def verify_tee_signature(attestation: TeeAttestation, *, key: TeeKey, expected_request_hash: bytes,
                         expected_output_hash: bytes) -> None:
    """Check a response's TEE fields against what was sent and received; raises on any mismatch."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    if attestation.tee_id != key.tee_id.lower():
        raise VerificationError(f"the response was signed by enclave {attestation.tee_id}, "
                                f"not the trusted {key.tee_id}")
    if attestation.request_hash != expected_request_hash:
        raise VerificationError("the signed request hash does not match the request that was sent")
    if attestation.output_hash != expected_output_hash:
        raise VerificationError("the signed output hash does not match the output that was received")
    public_key = serialization.load_der_public_key(key.public_key_der)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise VerificationError("the trusted TEE key is not an RSA key")
    message = signed_message(attestation.request_hash, attestation.output_hash, attestation.timestamp)
    try:
        public_key.verify(attestation.signature, message,
                          padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                          hashes.SHA256())
    except InvalidSignature:
        raise VerificationError("the TEE signature does not verify with the trusted key") from None
