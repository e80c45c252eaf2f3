"""`og.ConfidentialLLM`: chat whose prompt and answer only the enclave can read.

The request is sealed with HPKE (Oblivious HTTP) to the X25519 key an enclave registered in the
TEE registry's `ohttpConfig`, and posted to a *relay* with the caller's own auth headers. The relay
pays the enclave for it (the caller needs no wallet) and forwards bytes it cannot read; the
enclave opens the request, answers, and seals the answer to this request alone. The client opens
it and checks the enclave's RSA-PSS signature against the key registered with that same
`ohttpConfig` before returning anything, exactly as `client.llm` does: tampering anywhere on the
way fails, and so does an answer signed by another enclave than the one the request was sealed to.

Route: `POST {relay}/api/v1/chat/ohttp`, `Content-Type: message/ohttp-req`, `Accept:
message/ohttp-res` (streams: `message/ohttp-chunked-res` with `X-OHTTP-Stream: true`), `X-TEE-ID`.
The opened answer is `{"status", "body"}` (or a bare body); streams are the SSE events of a chat
stream, one sealed chunk each, and a stream that ends before its final chunk is refused as cut.

What stays visible: the relay sees who calls, when, how large the sealed messages are, and which
enclave they go to (and, as it pays, the price); it never sees a prompt or an answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import httpx

from opengradient import bounded_json
from opengradient.client._http import HttpCore, first_choice, raise_for_status
from opengradient.client.chain import AsyncDriver, Flow, HttpSend, SyncDriver
from opengradient.client.llm import allowed_tool_calls, chat_body
from opengradient.client.ohttp import KeyConfig, RequestContext, encapsulate_request
from opengradient.client.registry import EnclaveDirectory, RegisteredEnclave
from opengradient.client.sse import SSEDecoder, StreamAssembler
from opengradient.client.tee import (
    TeeAttestation,
    TeeKey,
    canonical_chat_request,
    output_hash,
    output_text,
    request_hash,
    verify_tee_signature,
)
from opengradient.errors import (
    ConfigurationError,
    HTTPStatusError,
    InvalidResponseError,
    NetworkError,
    VerificationError,
)
from opengradient.proof import Proof
from opengradient.types import TEE_LLM, StreamChunk, TextGenerationOutput, Usage

__all__ = ["ConfidentialLLM", "ConfidentialStream", "AsyncConfidentialStream", "RELAY_PATH"]

RELAY_PATH = "/api/v1/chat/ohttp"
_REQUEST_TYPE = "message/ohttp-req"
_RESPONSE_TYPE = "message/ohttp-res"
_CHUNKED_TYPE = "message/ohttp-chunked-res"


class ConfidentialLLM:
    """Confidential chat through an OHTTP relay (`chat`, and `achat` for asyncio).

    `relay_url` is the relay's base URL; `headers` are the caller's own credentials for it (the
    relay pays; no private key is needed). The enclave comes from the TEE registry of `network`
    (an `og` preset name or a `Network`): one that registered an `ohttpConfig`, `tee_id` when
    given. `transport`/`async_transport` replace the network layer (the in-process devnet).
    """

    def __init__(self, relay_url: str, *, headers: Mapping[str, str] | None = None, network: Any = "public-latest",
                 tee_id: str | None = None, timeout: float | None = None,
                 transport: httpx.BaseTransport | None = None,
                 async_transport: httpx.AsyncBaseTransport | None = None) -> None:
        from opengradient.networks import PRESETS, Network

        if not isinstance(relay_url, str) or not relay_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"relay_url must be an http(s) URL, got {relay_url!r}")
        if isinstance(network, str) and network not in PRESETS:
            raise ConfigurationError(f"unknown network {network!r}", hint=f"use one of {sorted(PRESETS)} or a Network")
        self._network: Network = PRESETS[network] if isinstance(network, str) else network
        if not self._network.tee_registry_address:
            raise ConfigurationError(f"network {self._network.name!r} names no TEE registry to find enclaves in")
        self._relay = relay_url.rstrip("/")
        self._headers = dict(headers or {})
        self._tee_id = tee_id.lower() if tee_id else None
        self._http = HttpCore(timeout=timeout, transport=transport, async_transport=async_transport)
        self.enclaves = EnclaveDirectory(self._network.tee_registry_address, plain_http=True)
        # A sealed request is never sent twice: a retry would have the relay pay again.
        self._sync = SyncDriver(self._http, self._network.rpc_url, None, chain_id=self._network.alpha_chain_id,
                                max_retries=0)
        self._async = AsyncDriver(self._http, self._network.rpc_url, None, chain_id=self._network.alpha_chain_id,
                                  max_retries=0)

    def __repr__(self) -> str:
        return f"ConfidentialLLM(relay={self._relay!r}, network={self._network.name!r})"

    # -- public API -------------------------------------------------------------------------

    def chat(self, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]], max_tokens: int | None = 100,
             stop_sequence: Any = None, temperature: float = 0.0, tools: Any = None, tool_choice: Any = None,
             response_format: Any = None, stream: bool = False) -> TextGenerationOutput | ConfidentialStream:
        """A sealed chat; with `stream=True` a `ConfidentialStream` of verified-at-the-end chunks."""
        body = chat_body(model, messages, max_tokens=max_tokens, stop_sequence=stop_sequence,
                         temperature=temperature, tools=tools, tool_choice=tool_choice, stream=stream,
                         response_format=response_format)
        response, context, enclave = self._sync.run(self._send_flow(body, stream))
        if stream:
            return ConfidentialStream(response, context, enclave, body)
        return _output(body, context.open_response(response.content), enclave)

    async def achat(self, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]], max_tokens: int | None = 100,
                    stop_sequence: Any = None, temperature: float = 0.0, tools: Any = None, tool_choice: Any = None,
                    response_format: Any = None,
                    stream: bool = False) -> TextGenerationOutput | AsyncConfidentialStream:
        """Async twin of `chat`."""
        body = chat_body(model, messages, max_tokens=max_tokens, stop_sequence=stop_sequence,
                         temperature=temperature, tools=tools, tool_choice=tool_choice, stream=stream,
                         response_format=response_format)
        response, context, enclave = await self._async.run(self._send_flow(body, stream))
        if stream:
            return AsyncConfidentialStream(response, context, enclave, body)
        return _output(body, context.open_response(await response.aread()), enclave)

    def close(self) -> None:
        """Close the sync connection pool."""
        self._http.close()

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self._http.aclose()

    # -- flows ------------------------------------------------------------------------------

    def _enclave(self) -> RegisteredEnclave:
        candidates = [e for e in self.enclaves.active if e.ohttp is not None and e.ohttp.public_key
                      and (self._tee_id is None or e.tee_id.lower() == self._tee_id)]
        if not candidates:
            which = f"enclave {self._tee_id}" if self._tee_id else "any active enclave"
            raise NetworkError(f"the TEE registry lists no Oblivious HTTP key for {which}",
                               hint="confidential chat needs an enclave that registered an ohttpConfig")
        return self.enclaves.choose(candidates)

    def _send_flow(self, body: dict[str, Any], stream: bool) -> Flow[tuple[httpx.Response, RequestContext,
                                                                           RegisteredEnclave]]:
        if self.enclaves.stale() or not self.enclaves.active:
            yield from self.enclaves.read_flow()
        enclave = self._enclave()
        assert enclave.ohttp is not None
        config = KeyConfig(enclave.ohttp.key_id, enclave.ohttp.public_key, enclave.ohttp.kem_id,
                           enclave.ohttp.kdf_id, enclave.ohttp.aead_id)
        sealed, context = encapsulate_request(config, _json_bytes(body))
        headers = {**self._headers, "Content-Type": _REQUEST_TYPE, "X-TEE-ID": enclave.tee_id,
                   "Accept": _CHUNKED_TYPE if stream else _RESPONSE_TYPE}
        if stream:
            headers["X-OHTTP-Stream"] = "true"
        response = yield HttpSend("POST", self._relay + RELAY_PATH, headers, content=sealed, stream=stream)
        raise_for_status(response, hint="the relay refused the request (check the credentials it expects)")
        expected = _CHUNKED_TYPE if stream else _RESPONSE_TYPE
        if response.headers.get("content-type", "").split(";")[0].strip() != expected:
            raise InvalidResponseError(f"the relay answered {response.headers.get('content-type')!r}, "
                                       f"not a sealed {expected}")
        return response, context, enclave


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    import json

    return json.dumps(body, separators=(",", ":")).encode()


def _inner(plaintext: bytes) -> tuple[int, Any]:
    """(status, body) of an opened answer: `{"status", "body"}` or a bare body."""
    try:
        document = bounded_json.loads(plaintext)
    except ValueError as exc:
        raise InvalidResponseError(f"the enclave's sealed answer is not JSON ({exc})") from None
    if isinstance(document, dict) and set(document) >= {"status", "body"} and isinstance(document["status"], int):
        return document["status"], document["body"]
    return 200, document


def _verify(body: Mapping[str, Any], fields: Mapping[str, Any], text: str, enclave: RegisteredEnclave) -> None:
    attestation = TeeAttestation.from_fields(fields)
    if str(attestation.tee_id).lower() != enclave.tee_id.lower():
        raise VerificationError(f"the answer is signed by enclave {attestation.tee_id}, not {enclave.tee_id}, "
                                "to which the request was sealed")
    verify_tee_signature(attestation, key=TeeKey(enclave.public_key),
                         expected_request_hash=request_hash(canonical_chat_request(body)),
                         expected_output_hash=output_hash(text))


def _signed_message(message: dict[str, Any], finish: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
    """The message as the enclave signed it: tool calls (where the request allowed them) or text."""
    if message.get("tool_calls") or finish == "tool_calls":
        allowed_tool_calls(body, message.get("tool_calls"))
        if finish != "tool_calls":
            raise VerificationError("the answer carries tool calls the enclave did not sign "
                                    f"(finish_reason {finish!r})")
        message = {**message, "content": None}
    return message


def _finished(body: Mapping[str, Any], message: dict[str, Any], finish: str | None, usage: Usage | None,
              fields: Mapping[str, Any], enclave: RegisteredEnclave, model: Any,
              answer_id: Any) -> TextGenerationOutput:
    message = _signed_message(message, finish, body)
    message.setdefault("role", "assistant")
    text = output_text(message.get("content"), message.get("tool_calls"), finish)
    _verify(body, fields, text, enclave)
    output = TextGenerationOutput(chat_output=message, finish_reason=finish, usage=usage, model=model, id=answer_id)
    output.tee_signature, output.tee_id = fields.get("tee_signature"), fields.get("tee_id")
    output.tee_request_hash, output.tee_output_hash = fields.get("tee_request_hash"), fields.get("tee_output_hash")
    output.tee_timestamp = int(fields["tee_timestamp"])
    output.tee_verified = True
    output.tee_endpoint, output.tee_payment_address = enclave.endpoint, enclave.payment_address
    output.proof = Proof(kind="tee", tee_id=output.tee_id, tee_signature=output.tee_signature,
                         tee_timestamp=output.tee_timestamp,
                         input_hash="0x" + request_hash(canonical_chat_request(body)).hex(),
                         output_hash="0x" + output_hash(text).hex(), model_cid=str(body["model"]))
    return output


def _output(body: Mapping[str, Any], plaintext: bytes, enclave: RegisteredEnclave) -> TextGenerationOutput:
    status, answer = _inner(plaintext)
    if status >= 400:
        error = answer.get("error") if isinstance(answer, dict) else None
        message = error.get("message") if isinstance(error, dict) else str(answer)[:300]
        raise HTTPStatusError(str(message), status_code=status, url=f"enclave {enclave.tee_id} (sealed answer)",
                              body=answer)
    if not isinstance(answer, dict):
        raise InvalidResponseError("the enclave's sealed answer is not a chat completion object")
    choice = first_choice(answer, "the enclave's sealed answer")
    return _finished(body, dict(choice.get("message") or {}), choice.get("finish_reason"),
                     Usage.from_dict(answer.get("usage")), answer, enclave, answer.get("model"), answer.get("id"))


class _StreamState:
    """What the sync and async streams share: opening chunks, SSE decoding, the final check."""

    def __init__(self, context: RequestContext, enclave: RegisteredEnclave, body: dict[str, Any]) -> None:
        self.reader = context.chunked_reader()
        self.enclave, self.body = enclave, body
        self.decoder = SSEDecoder()
        self.assembler = StreamAssembler()
        self._pending = ""

    def take(self, data: bytes) -> Iterator[StreamChunk]:
        for plaintext in self.reader.feed(data):
            yield from self._lines(plaintext)

    def _lines(self, plaintext: bytes) -> Iterator[StreamChunk]:
        self._pending += plaintext.decode("utf-8")
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            event = self.decoder.feed(line)
            if event is not None and (chunk := self.assembler.chunk(event)) is not None:
                yield chunk

    def end(self) -> tuple[list[StreamChunk], TextGenerationOutput]:
        chunks = list(self._lines(self.reader.finish() + b"\n"))
        event = self.decoder.flush()
        if event is not None and (chunk := self.assembler.chunk(event)) is not None:
            chunks.append(chunk)
        assembled = self.assembler
        if not assembled.done:
            raise VerificationError("the sealed stream ended without its [DONE] event")
        calls = assembled.message_tool_calls()
        message: dict[str, Any] = {"role": "assistant", "content": assembled.text}
        if calls:
            message["tool_calls"] = calls
        return chunks, _finished(self.body, message, assembled.finish_reason, assembled.usage, assembled.tee,
                                 self.enclave, assembled.model, assembled.id)


class ConfidentialStream:
    """A sealed streamed answer: iterate for chunks; `result` holds the verified output at the end
    (a stream whose signature fails raises at its end, before `result` is set)."""

    def __init__(self, response: httpx.Response, context: RequestContext, enclave: RegisteredEnclave,
                 body: dict[str, Any]) -> None:
        self._response = response
        self._state = _StreamState(context, enclave, body)
        self.result: TextGenerationOutput | None = None

    def __iter__(self) -> Iterator[StreamChunk]:
        from opengradient.client._http import transport_errors

        try:
            with transport_errors("reading the sealed stream"):
                for data in self._response.iter_bytes():
                    yield from self._state.take(data)
            chunks, self.result = self._state.end()
            yield from chunks
        finally:
            self._response.close()

    def close(self) -> None:
        """Stop reading and free the connection."""
        self._response.close()


class AsyncConfidentialStream:
    """Async twin of `ConfidentialStream`."""

    def __init__(self, response: httpx.Response, context: RequestContext, enclave: RegisteredEnclave,
                 body: dict[str, Any]) -> None:
        self._response = response
        self._state = _StreamState(context, enclave, body)
        self.result: TextGenerationOutput | None = None

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        from opengradient.client._http import transport_errors

        try:
            with transport_errors("reading the sealed stream"):
                async for data in self._response.aiter_bytes():
                    for chunk in self._state.take(data):
                        yield chunk
            chunks, self.result = self._state.end()
            for chunk in chunks:
                yield chunk
        finally:
            await self._response.aclose()

    async def aclose(self) -> None:
        """Stop reading and free the connection."""
        await self._response.aclose()
