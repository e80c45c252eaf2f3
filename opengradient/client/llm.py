"""`client.llm`: chat and completion with TEE-verified LLMs, paid per request with x402.

A call is validated and encoded before anything is signed or sent. A warm client signs the
payment up front from the cached offer and makes one HTTP round trip; a cold one gets the
402 offer first. Every response is checked against the enclave key it claims to be signed
by (the TEE registry's key by default); a response that does not verify raises.

With `payment_scheme="upto"` the client pays with x402's metered `upto` scheme (Permit2; the
payer must have run `ensure_opg_approval` for at least the gateway's session cap — checked
before signing, from one cached read of the allowance). The first paid request opens an upto
session on the gateway; later requests to the same host and path send `X-Upto-Session` instead
of a payment, so a warm client does no signing and no on-chain work per request. Their outputs
carry `upto_session`, and `payment_hash` stays None until the gateway settles the session (once,
when it is idle or used up, or at `close_sessions()`, which returns the settlement transactions).

Where requests go: to the network's pinned gateway (`llm_server_url`), or, when the network has
`llm_discovery` (today's network), to an enclave picked from the TEE registry (`client.llm.enclaves`,
re-read every 300 s; see `opengradient.client.registry`). A discovered enclave is reached over TLS
that trusts only its registered certificate, must sign its responses with its own registered key,
and is paid only at its registered payment address: an offer to pay anyone else is refused before
anything is signed. A request whose connection to the enclave fails before anything was sent (no
connection, or a certificate other than the registered one) is sent once more, to another active
enclave when there is one; one that got any HTTP answer is never re-sent elsewhere. Every output
names the enclave (`tee_id`, `tee_endpoint`, `tee_payment_address`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, overload

import httpx

from opengradient.bounded_json import response_json
from opengradient.client._http import (
    first_choice,
    never_sent,
    raise_for_status,
    read_json_object,
    transport_errors,
)
from opengradient.client.chain import AsyncDriver, Flow, HttpSend, Rpc, SendTx, SyncDriver, wait_for_receipt
from opengradient.client.payments import (
    DEFAULT_MAX_PAYMENT,
    PAYMENT_SIGNATURE,
    UPTO_SESSION,
    Payer,
    PaymentScheme,
    SignedPayment,
    UptoSession,
    declined,
    describe_offer,
    payment_required_of,
    settlement_of,
)
from opengradient.client.registry import EnclaveDirectory, RegisteredEnclave
from opengradient.client.sse import SSEDecoder, StreamAssembler
from opengradient.client.tee import (
    TeeAttestation,
    TeeKey,
    canonical_chat_request,
    canonical_completion_request,
    output_hash,
    output_text,
    request_hash,
    verify_tee_signature,
)
from opengradient.errors import (
    InvalidInputError,
    InvalidResponseError,
    NetworkError,
    PaymentRequiredError,
    VerificationError,
)
from opengradient.proof import Proof
from opengradient.types import (
    TEE_LLM,
    ApprovalResult,
    StreamChunk,
    TextGenerationOutput,
    Usage,
    x402SettlementMode,
)

if TYPE_CHECKING:
    from opengradient.client._http import HttpCore
    from opengradient.client.wallet import Wallet
    from opengradient.networks import Network

log = logging.getLogger("opengradient.llm")

TeeTrust = Literal["registry", "gateway", "off"]
_ROLES = {"system", "developer", "user", "assistant", "tool"}
_TOOL_CHOICES = {"auto", "none", "required"}
#: Body fields `chat_body` builds from its own arguments.
_CHAT_ARGUMENTS = frozenset({"model", "messages", "max_tokens", "temperature", "stop", "tools", "tool_choice",
                             "response_format", "stream", "stream_options", "web_search"})
_MAX_TOKENS = 1_000_000  # what gateways accept; more is always a mistake
#: Response headers of today's gateways: the data-settlement transaction and the batch data's blob.
DATA_SETTLEMENT_TX_HEADER = "x-settlement-tx-hash"
DATA_SETTLEMENT_BLOB_HEADER = "x-settlement-walrus-blob-id"
_ALLOWANCE = bytes.fromhex("dd62ed3e")  # allowance(address,address)
_APPROVE = bytes.fromhex("095ea7b3")  # approve(address,uint256)
_OPG_DECIMALS = 18
#: The x402 code of a Permit2 payment whose allowance is too low.
_ALLOWANCE_REQUIRED = "permit2_allowance_required"


def model_name(model: TEE_LLM | str) -> str:
    """The wire name of a model: the enum's value or any `provider/model` or bare string."""
    name = model.value if isinstance(model, TEE_LLM) else model
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"model must be an og.TEE_LLM or a non-empty string, got {model!r}")
    name = name.strip()
    provider, slash, rest = name.partition("/")
    if slash and (not provider or not rest):
        raise InvalidInputError(f"model {name!r} is malformed", hint="use 'provider/model' or 'model'")
    return name


def settlement_header(mode: x402SettlementMode | str) -> str:
    """The `X-SETTLEMENT-TYPE` value for a settlement mode."""
    if isinstance(mode, x402SettlementMode):
        return mode.value
    if isinstance(mode, str) and mode.strip():
        return mode.strip()
    raise InvalidInputError(f"unknown settlement mode {mode!r}", hint="use og.x402SettlementMode")


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise InvalidInputError("messages must be a non-empty list of {'role', 'content'} dicts")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidInputError(f"messages[{i}] must be a dict, got {type(message).__name__}")
        if message.get("role") not in _ROLES:
            raise InvalidInputError(f"messages[{i}] has role {message.get('role')!r}",
                                    hint=f"use one of {sorted(_ROLES)}")
        if message.get("role") == "tool" and not message.get("tool_call_id"):
            raise InvalidInputError(f"messages[{i}] is a tool result without tool_call_id")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise InvalidInputError(f"messages[{i}] content must be text or a list of content parts, "
                                    f"got {type(content).__name__}")
        calls = message.get("tool_calls")
        if calls is not None and (not isinstance(calls, list) or not all(
                isinstance(c, Mapping) and isinstance(c.get("function"), Mapping) for c in calls)):
            raise InvalidInputError(f"messages[{i}] tool_calls must be a list of "
                                    "{'id', 'type': 'function', 'function': {'name', 'arguments'}} dicts")
        out.append(dict(message))
    return out


def _check_json(body: dict[str, Any]) -> dict[str, Any]:
    """The body must be plain JSON (no NaN, no odd keys), or it could not be sent or hashed."""
    try:
        json.dumps(body, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"the request cannot be sent as JSON: {exc}",
                                hint="use only strings, numbers, lists and dicts with string keys") from exc
    return body


def _check_common(max_tokens: Any, temperature: Any, stop: Any) -> list[str] | None:
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or not 0 < max_tokens <= _MAX_TOKENS):
        raise InvalidInputError(f"max_tokens must be an integer from 1 to {_MAX_TOKENS} (or None: the "
                                f"gateway's default), got {max_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise InvalidInputError(f"temperature must be a number from 0 to 2, got {temperature!r}")
    if stop is None:
        return None
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, Sequence) or not all(isinstance(s, str) and s for s in stops):
        raise InvalidInputError("stop_sequence must be a string or a list of non-empty strings")
    return list(stops)


def _tool_choice(choice: Any) -> Any:
    if choice is None or (isinstance(choice, str) and choice in _TOOL_CHOICES):
        return choice
    if isinstance(choice, str):
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, Mapping) and isinstance((choice.get("function") or {}).get("name"), str):
        return dict(choice)
    raise InvalidInputError(f"tool_choice {choice!r} is not valid",
                            hint="use 'auto', 'none', 'required' or a tool name")


def _check_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None or tools == []:
        return None
    if not isinstance(tools, Sequence) or isinstance(tools, (str, bytes)):
        raise InvalidInputError("tools must be a list of OpenAI function tools")
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidInputError(f"tools[{i}] must look like {{'type': 'function', 'function': "
                                    "{'name': …, 'parameters': {…}}}")
    return [dict(t) for t in tools]


def _check_extra_body(extra_body: Any) -> dict[str, Any]:
    """More request fields, sent as given; those `chat` takes as arguments must come that way, so
    that one request never says two things."""
    if extra_body is None:
        return {}
    if not isinstance(extra_body, Mapping) or not all(isinstance(k, str) for k in extra_body):
        raise InvalidInputError("extra_body must be a dict of request fields, such as {'top_p': 0.9}")
    clash = sorted(set(extra_body) & _CHAT_ARGUMENTS)
    if clash:
        raise InvalidInputError(f"extra_body sets {', '.join(clash)}, which chat takes as its own arguments",
                                hint="pass them as arguments of chat (stop as stop_sequence)")
    return dict(extra_body)


def chat_body(model: TEE_LLM | str, messages: Any, *, max_tokens: int | None = 100, stop_sequence: Any = None,
              temperature: float = 0.0, tools: Any = None, tool_choice: Any = None, stream: bool = False,
              response_format: Any = None, extra_body: Mapping[str, Any] | None = None,
              web_search: bool = False) -> dict[str, Any]:
    """Validate chat arguments and build the request body (raises before any I/O).

    `max_tokens=None` leaves the limit (and so the price) to the gateway's default. `extra_body`
    adds gateway request fields (`top_p`, `seed`, `parallel_tool_calls`, …) as they are.
    """
    stops = _check_common(max_tokens, temperature, stop_sequence)
    body: dict[str, Any] = {"model": model_name(model), "messages": _check_messages(messages),
                            "temperature": float(temperature)}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if stops:
        body["stop"] = stops
    checked_tools = _check_tools(tools)
    if checked_tools:
        body["tools"] = checked_tools
        choice = _tool_choice(tool_choice)
        if choice is not None:
            body["tool_choice"] = choice
    if response_format is not None:
        if not isinstance(response_format, Mapping) or "type" not in response_format:
            raise InvalidInputError("response_format must be a dict such as {'type': 'json_object'}")
        body["response_format"] = dict(response_format)
    body.update(_check_extra_body(extra_body))
    if not isinstance(web_search, bool):
        raise InvalidInputError(f"web_search must be True or False, got {web_search!r}")
    if web_search:  # the provider's native web search; signed (hashed as `true`)
        body["web_search"] = True
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return _check_json(body)


def completion_body(model: TEE_LLM | str, prompt: Any, *, max_tokens: int = 100, stop_sequence: Any = None,
                    temperature: float = 0.0) -> dict[str, Any]:
    """Validate completion arguments and build the request body."""
    if not isinstance(prompt, str) or not prompt:
        raise InvalidInputError("prompt must be a non-empty string")
    stops = _check_common(max_tokens, temperature, stop_sequence)
    body: dict[str, Any] = {"model": model_name(model), "prompt": prompt, "temperature": float(temperature)}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if stops:
        body["stop"] = stops
    return _check_json(body)


def opg_to_base_units(amount: Any) -> int:
    """OPG (a decimal amount) to base units, exactly."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidInputError(f"opg_amount must be a number, got {amount!r}") from None
    units = value * 10**_OPG_DECIMALS
    if not value.is_finite() or value < 0 or units != units.to_integral_value():
        raise InvalidInputError(f"opg_amount {amount!r} is not a non-negative OPG amount")
    return int(units)


@dataclass(frozen=True)
class _Target:
    """Where one request goes: a pinned gateway (`enclave` None) or a registry-discovered enclave."""

    base: str
    enclave: RegisteredEnclave | None = None

    @property
    def tls_pin(self) -> bytes | None:
        """The certificate the connection must trust alone (None: the system's trust, or a transport's)."""
        return self.enclave.tls_pin if self.enclave is not None else None


class _Call:
    """One request: its body, route, canonical hash, and how to read its answer."""

    def __init__(self, kind: Literal["chat", "completion"], body: dict[str, Any], path: str, static_base: str,
                 mode: str) -> None:
        self.kind = kind
        self.body = body
        self.path = path
        self.mode = mode
        canonical = canonical_chat_request(body) if kind == "chat" else canonical_completion_request(body)
        self.request_hash = request_hash(canonical)
        self.bind(_Target(static_base.rstrip("/")))

    def bind(self, target: _Target) -> None:
        """Aim the call at `target`. Offers are cached per URL and certificate, so a warm client
        signs up front only toward a server it already reached through that same certificate."""
        self.target = target
        self.url = target.base + self.path
        pin = target.tls_pin
        self.cache_key = (self.url, hashlib.sha256(pin).hexdigest() if pin else None, self.body["model"],
                          self.body.get("max_tokens"))

    @property
    def route(self) -> tuple[str, str, int | None, str]:
        """An upto session's scope: scheme, host, port and path of the URL."""
        return _route(self.url)


@lru_cache(maxsize=64)
def _route(url: str) -> tuple[str, str, int | None, str]:
    parts = httpx.URL(url)
    return parts.scheme, parts.host, parts.port, parts.path


class LLM:
    """LLM chat and completion through the TEE gateway (sync methods, `a`-prefixed async twins)."""

    def __init__(self, *, http: HttpCore, network: Network, wallet: Wallet | None, max_retries: int = 2,
                 max_payment_per_request: int = DEFAULT_MAX_PAYMENT, tee_trust: TeeTrust = "registry",
                 tee_public_key: str | None = None, payment_scheme: PaymentScheme = "exact") -> None:
        self._network = network
        self._payer = Payer(wallet, network.payments, max_payment=max_payment_per_request,
                            scheme=payment_scheme)
        self._tee_trust: TeeTrust = tee_trust
        self._pinned_key = TeeKey.from_pem(tee_public_key) if tee_public_key else None
        self._keys: dict[str, TeeKey] = {}
        #: The TEE registry as last read, and the enclave requests go to when the network discovers
        #: them (`clock` and `choose` can be replaced, e.g. to test the 300 s refresh).
        self.enclaves = EnclaveDirectory(network.tee_registry_address or "", plain_http=http.custom_transport)
        self._discover = network.llm_discovery and bool(network.tee_registry_address)
        self._route_pins: dict[tuple[str, str, int | None, str], bytes | None] = {}
        self._sync = SyncDriver(http, network.rpc_url, None, chain_id=network.alpha_chain_id,
                                max_retries=max_retries)
        self._async = AsyncDriver(http, network.rpc_url, None, chain_id=network.alpha_chain_id,
                                  max_retries=max_retries)
        payments_chain_id = int(network.payments.network.split(":")[-1])
        self._pay_sync = SyncDriver(http, network.payments.rpc_url, wallet, chain_id=payments_chain_id,
                                    max_retries=max_retries)
        self._pay_async = AsyncDriver(http, network.payments.rpc_url, wallet,
                                      chain_id=payments_chain_id, max_retries=max_retries)
        self._payments_chain_id = payments_chain_id

    # -- public API -------------------------------------------------------------------------

    @overload
    def chat(self, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]], max_tokens: int | None = 100,
             stop_sequence: str | list[str] | None = None, temperature: float = 0.0,
             tools: list[dict[str, Any]] | None = None, tool_choice: str | dict[str, Any] | None = None,
             x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE,
             stream: Literal[False] = False, response_format: dict[str, Any] | None = None,
             extra_body: Mapping[str, Any] | None = None, web_search: bool = False) -> TextGenerationOutput: ...

    @overload
    def chat(self, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]], max_tokens: int | None = 100,
             stop_sequence: str | list[str] | None = None, temperature: float = 0.0,
             tools: list[dict[str, Any]] | None = None, tool_choice: str | dict[str, Any] | None = None,
             x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE,
             *, stream: Literal[True], response_format: dict[str, Any] | None = None,
             extra_body: Mapping[str, Any] | None = None, web_search: bool = False) -> TextGenerationStream: ...

    def chat(self, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]], max_tokens: int | None = 100,
             stop_sequence: str | list[str] | None = None, temperature: float = 0.0,
             tools: list[dict[str, Any]] | None = None, tool_choice: str | dict[str, Any] | None = None,
             x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE,
             stream: bool = False, response_format: dict[str, Any] | None = None,
             extra_body: Mapping[str, Any] | None = None,
             web_search: bool = False) -> TextGenerationOutput | TextGenerationStream:
        """Chat with `model`; with `stream=True` returns an iterator of `StreamChunk`s.

        `max_tokens=None` leaves the limit to the gateway's default; `extra_body` adds more request
        fields as they are (`{"top_p": 0.9, "seed": 7}`): the gateway refuses those it does not take.
        `web_search=True` asks the provider to search the web (the devnet searches a local corpus).
        Image-generation models (`TEE_LLM.GPT_IMAGE_2`, …) return their images on `output.images`.
        """
        call = self._chat_call(model, messages, max_tokens, stop_sequence, temperature, tools, tool_choice,
                               x402_settlement_mode, stream, response_format, extra_body, web_search)
        if stream:
            response, payment = self._sync.run(self._open_flow(call, stream=True))
            reopen = (lambda: self._sync.run(self._reopen_flow(call, payment))) if payment is not None else None
            return TextGenerationStream(response, self._stream_finisher(call, payment), reopen=reopen,
                                        retries=self._sync.max_retries)
        return self._sync.run(self._complete_flow(call))

    @overload
    async def achat(self, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]], max_tokens: int | None = 100,
             stop_sequence: str | list[str] | None = None, temperature: float = 0.0,
             tools: list[dict[str, Any]] | None = None, tool_choice: str | dict[str, Any] | None = None,
             x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE,
             stream: Literal[False] = False, response_format: dict[str, Any] | None = None,
             extra_body: Mapping[str, Any] | None = None, web_search: bool = False) -> TextGenerationOutput: ...

    @overload
    async def achat(self, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]], max_tokens: int | None = 100,
             stop_sequence: str | list[str] | None = None, temperature: float = 0.0,
             tools: list[dict[str, Any]] | None = None, tool_choice: str | dict[str, Any] | None = None,
             x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE,
             *, stream: Literal[True], response_format: dict[str, Any] | None = None,
             extra_body: Mapping[str, Any] | None = None, web_search: bool = False) -> AsyncTextGenerationStream: ...

    async def achat(self, model: TEE_LLM | str, messages: Sequence[Mapping[str, Any]], max_tokens: int | None = 100,
                    stop_sequence: str | list[str] | None = None, temperature: float = 0.0,
                    tools: list[dict[str, Any]] | None = None, tool_choice: str | dict[str, Any] | None = None,
                    x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE,
                    stream: bool = False, response_format: dict[str, Any] | None = None,
                    extra_body: Mapping[str, Any] | None = None,
                    web_search: bool = False) -> TextGenerationOutput | AsyncTextGenerationStream:
        """Async twin of `chat`; with `stream=True` returns an async iterator of chunks."""
        call = self._chat_call(model, messages, max_tokens, stop_sequence, temperature, tools, tool_choice,
                               x402_settlement_mode, stream, response_format, extra_body, web_search)
        if stream:
            response, payment = await self._async.run(self._open_flow(call, stream=True))
            areopen = (lambda: self._async.run(self._reopen_flow(call, payment))) if payment is not None else None
            return AsyncTextGenerationStream(response, self._stream_finisher(call, payment), reopen=areopen,
                                             retries=self._async.max_retries)
        return await self._async.run(self._complete_flow(call))

    def completion(self, model: TEE_LLM | str, prompt: str, max_tokens: int = 100,
                   stop_sequence: str | list[str] | None = None, temperature: float = 0.0,
                   x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE,
                   ) -> TextGenerationOutput:
        """Complete `prompt` with `model`."""
        call = self._completion_call(model, prompt, max_tokens, stop_sequence, temperature, x402_settlement_mode)
        return self._sync.run(self._complete_flow(call))

    async def acompletion(self, model: TEE_LLM | str, prompt: str, max_tokens: int = 100,
                          stop_sequence: str | list[str] | None = None, temperature: float = 0.0,
                          x402_settlement_mode: x402SettlementMode | str = x402SettlementMode.SETTLE,
                          ) -> TextGenerationOutput:
        """Async twin of `completion`."""
        call = self._completion_call(model, prompt, max_tokens, stop_sequence, temperature, x402_settlement_mode)
        return await self._async.run(self._complete_flow(call))

    def ensure_opg_approval(self, opg_amount: float | int | str | Decimal) -> ApprovalResult:
        """Make sure Permit2 may spend `opg_amount` OPG of the payer's; sends `approve` only if needed.

        Needed before `payment_scheme="upto"` pays: the gateway settles upto sessions through
        Permit2, and each settlement uses up that much of the allowance.
        """
        return self._pay_sync.run(self._approval_flow(opg_to_base_units(opg_amount)))

    async def aensure_opg_approval(self, opg_amount: float | int | str | Decimal) -> ApprovalResult:
        """Async twin of `ensure_opg_approval`."""
        return await self._pay_async.run(self._approval_flow(opg_to_base_units(opg_amount)))

    @property
    def payment_scheme(self) -> PaymentScheme:
        """How this client pays: `exact` (per request) or `upto` (metered sessions)."""
        return self._payer.scheme

    def close_sessions(self) -> list[dict[str, Any]]:
        """Ask the gateway to settle this client's open upto sessions now (without this, the
        gateway settles each on its own once it is idle or used up).

        Returns the gateway's final state of each session: `session`, `status` (`settled`, or
        `failed` with `errorReason`), `amount` settled, `requests` served and the settlement
        `transaction` (None when nothing was charged, or when the gateway had no record of it).
        """
        return self._sync.run(self._close_sessions_flow())

    async def aclose_sessions(self) -> list[dict[str, Any]]:
        """Async twin of `close_sessions`."""
        return await self._async.run(self._close_sessions_flow())

    def verify_proof(self, proof: Proof) -> bool:
        """Check a TEE proof: a trusted enclave signed its request and output hashes at its time."""
        if not (proof.input_hash and proof.output_hash and proof.tee_signature and proof.tee_id):
            raise VerificationError("the proof lacks the hashes, signature or enclave id of a TEE proof")
        if self._pinned_key is None and self._tee_trust != "off" and proof.tee_id.lower() not in self._keys:
            if self._tee_trust == "gateway":
                self._sync.run(self._gateway_key_flow())
            else:
                self._sync.run(self._read_registry_flow())
        attestation = TeeAttestation.from_fields({
            "tee_signature": proof.tee_signature, "tee_request_hash": proof.input_hash,
            "tee_output_hash": proof.output_hash, "tee_timestamp": proof.tee_timestamp, "tee_id": proof.tee_id})
        verify_tee_signature(attestation, key=self._key_for(proof.tee_id),
                             expected_request_hash=attestation.request_hash,
                             expected_output_hash=attestation.output_hash)
        return True

    # -- building calls ---------------------------------------------------------------------

    def _chat_call(self, model: TEE_LLM | str, messages: Any, max_tokens: int | None, stop: Any,
                   temperature: float, tools: Any, tool_choice: Any, mode: Any, stream: bool, response_format: Any,
                   extra_body: Mapping[str, Any] | None, web_search: bool = False) -> _Call:
        body = chat_body(model, messages, max_tokens=max_tokens, stop_sequence=stop, temperature=temperature,
                         tools=tools, tool_choice=tool_choice, stream=stream, response_format=response_format,
                         extra_body=extra_body, web_search=web_search)
        base = self._network.llm_streaming_server_url if stream else self._network.llm_server_url
        return _Call("chat", body, "/v1/chat/completions", base, settlement_header(mode))

    def _completion_call(self, model: TEE_LLM | str, prompt: Any, max_tokens: int, stop: Any,
                         temperature: float, mode: Any) -> _Call:
        body = completion_body(model, prompt, max_tokens=max_tokens, stop_sequence=stop, temperature=temperature)
        return _Call("completion", body, "/v1/completions", self._network.llm_server_url, settlement_header(mode))

    # -- flows --------------------------------------------------------------------------------

    def _send(self, call: _Call, payment: SignedPayment | None, stream: bool,
              session: UptoSession | None = None) -> HttpSend:
        headers = {"Content-Type": "application/json", "X-SETTLEMENT-TYPE": call.mode}
        if payment is not None:
            headers[PAYMENT_SIGNATURE] = payment.header
        elif session is not None:
            headers[UPTO_SESSION] = session.id
        return HttpSend("POST", call.url, headers, call.body, stream, tls_pin=call.target.tls_pin)

    def _enclave_flow(self, *, avoid: RegisteredEnclave | None = None) -> Flow[RegisteredEnclave]:
        """The enclave to send to: the current one while the registry (re-read when stale, or when
        moving away from `avoid`) still lists it, else another active one."""
        if avoid is not None or self.enclaves.stale():
            yield from self._read_registry_flow()
        return self.enclaves.select(avoid=avoid)

    def _open_flow(self, call: _Call, *, stream: bool) -> Flow[tuple[httpx.Response, SignedPayment | None]]:
        """Pay (or use the open upto session) and send; returns the successful response and the
        payment it carried (None when an upto session covered it). A discovered enclave that could
        not be reached at all is replaced once by another (see the module's docstring)."""
        if not self._discover:
            return (yield from self._open_at(call, stream, [0]))
        call.bind(_Target((enclave := (yield from self._enclave_flow())).base_url, enclave))
        signed = [0]  # what this call has signed so far, over both attempts: the cap holds for the call
        try:
            return (yield from self._open_at(call, stream, signed))
        except NetworkError as exc:
            if not never_sent(exc) or signed[0] < 0:  # an answer came, or the request may have arrived
                raise
            log.warning("enclave %s at %s could not be reached (%s); trying another once", enclave.tee_id,
                        enclave.endpoint, exc.message)
        other = yield from self._enclave_flow(avoid=enclave)
        call.bind(_Target(other.base_url, other))
        return (yield from self._open_at(call, stream, signed))

    def _open_at(self, call: _Call, stream: bool, signed: list[int]
                 ) -> Flow[tuple[httpx.Response, SignedPayment | None]]:
        payer = self._payer
        session = payer.session_for(call.route, call.cache_key) if payer.scheme == "upto" else None
        held = [session]  # the session while this request still counts as in flight on it
        try:
            return (yield from self._pay_and_send(call, stream, held, signed))
        finally:
            if held[0] is not None:  # failed before an answer said anything about it
                payer.release_session(held[0])

    def _pay_and_send(self, call: _Call, stream: bool, held: list[UptoSession | None], signed: list[int]
                      ) -> Flow[tuple[httpx.Response, SignedPayment | None]]:
        """`signed[0]`: what the call signed before (set to -1 once an HTTP answer came back)."""
        payer = self._payer
        session = held[0]
        payment = None
        if session is None and payer.wallet is not None:
            cached = payer.cached(call.cache_key)
            if cached is not None:
                payment = yield from self._sign_flow(cached, call, already_signed=signed[0])
                signed[0] += payment.amount
        response = yield self._send(call, payment, stream, session)
        already = signed[0]
        signed[0] = -1  # answered: never re-sent elsewhere
        if response.status_code == 402:
            offer = payment_required_of(response)
            if session is not None:  # settled, used up or expired: pay afresh
                payer.drop_session(call.route, session, offer.get("error"))
                payer.release_session(session)
                held[0] = session = None
            elif payment is not None:
                payer.forget(call.cache_key)  # the cached offer is stale: pay the new one once
            payment = yield from self._sign_flow(offer, call, already_signed=already)
            payer.remember(call.cache_key, offer)
            response = yield self._send(call, payment, stream)
            if response.status_code == 402:
                try:
                    refused: dict[str, Any] | None = payment_required_of(response)
                except Exception:
                    refused = None
                error = declined(response, refused)
                if error.reason == _ALLOWANCE_REQUIRED:
                    payer.permit2_allowance = None  # read it again next time
                    raise PaymentRequiredError(
                        "the gateway refused the upto payment: the payer's OPG allowance for Permit2 does "
                        "not cover the session cap (settled sessions use it up). PAYMENT-REQUIRED: "
                        f"{describe_offer(refused)}", requirements=refused,
                        reason=_ALLOWANCE_REQUIRED,
                        hint="call client.llm.ensure_opg_approval(opg_amount=…) with a larger amount")
                raise error
        if payer.scheme == "upto" and response.status_code < 400:
            held[0] = None  # accounted for by keep_session
            payer.keep_session(call.route, call.cache_key, settlement_of(response),
                               response.headers.get(UPTO_SESSION), session)
            self._route_pins[call.route] = call.target.tls_pin  # where close_sessions goes
        raise_for_status(response)
        yield from self._trusted_keys_flow(response, call.target)
        return response, payment

    def _reopen_flow(self, call: _Call, payment: SignedPayment) -> Flow[httpx.Response]:
        """Resend a paid stream with the same payment: the gateway replays it without charging again."""
        response = yield self._send(call, payment, True)
        if response.status_code == 402:
            raise declined(response, None)
        raise_for_status(response)
        return response

    def _sign_flow(self, offer: dict[str, Any], call: _Call, *, already_signed: int = 0) -> Flow[SignedPayment]:
        """Sign a payment for `offer`; an upto one only once the Permit2 allowance covers its cap,
        and for a discovered enclave only when it pays the enclave's registered address."""
        if self._payer.wallet is not None:
            option = self._payer.choose(offer)
            enclave = call.target.enclave
            if enclave is not None and str(option.get("payTo", "")).lower() != enclave.payment_address.lower():
                raise PaymentRequiredError(
                    f"enclave {enclave.tee_id} asks to be paid at {option.get('payTo')!r}, but the TEE registry "
                    f"lists its payment address as {enclave.payment_address}; nothing was signed. "
                    f"PAYMENT-REQUIRED: {describe_offer(offer)}", requirements=offer, reason="pay_to_not_registered",
                    hint="the enclave's offer and its registry entry disagree: report it, or pin a gateway "
                         "you trust with og_llm_server_url=…")
            if option.get("scheme") == "upto":
                try:
                    cap = int(option["amount"])
                except (KeyError, TypeError, ValueError):
                    cap = 0  # `sign` refuses the offer
                yield from self._allowance_check_flow(cap, offer)
        return self._payer.sign(offer, already_signed=already_signed)

    def _allowance_check_flow(self, cap: int, offer: dict[str, Any]) -> Flow[None]:
        """Refuse to sign an upto cap the Permit2 allowance does not cover (one cached read)."""
        known = self._payer.permit2_allowance
        if known is not None and known >= cap:
            return
        from eth_abi import decode, encode

        from opengradient.client.rpc import _result
        from opengradient.networks import PERMIT2_ADDRESS

        assert self._payer.wallet is not None
        data = _ALLOWANCE + encode(["address", "address"], [self._payer.wallet.address, PERMIT2_ADDRESS])
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [
            {"to": self._network.payments.token_address, "data": "0x" + data.hex()}, "latest"]}
        reply = yield HttpSend("POST", self._network.payments.rpc_url, {"Content-Type": "application/json"},
                               request, False)
        allowance = int(decode(["uint256"], bytes.fromhex(str(_result(reply, "eth_call"))[2:]))[0])
        self._payer.permit2_allowance = allowance
        if allowance < cap:
            raise PaymentRequiredError(
                f"the upto payment needs a Permit2 allowance of at least {cap} base units of OPG (the "
                f"gateway's session cap); the payer has approved {allowance}. PAYMENT-REQUIRED: "
                f"{describe_offer(offer)}", requirements=offer,
                reason=_ALLOWANCE_REQUIRED,
                hint=f"call client.llm.ensure_opg_approval(opg_amount={Decimal(cap) / 10**_OPG_DECIMALS}) "
                     "or more first")

    def _close_sessions_flow(self) -> Flow[list[dict[str, Any]]]:
        """DELETE each open session at its gateway; the gateway settles it and answers its state."""
        results: list[dict[str, Any]] = []
        for (scheme, host, port, path), session in self._payer.take_sessions():
            base = httpx.URL(scheme=scheme, host=host, port=port)
            reply = yield HttpSend("DELETE", str(base.copy_with(path=f"/upto/sessions/{session.id}")),
                                   {}, None, False, tls_pin=self._route_pins.get((scheme, host, port, path)))
            if reply.status_code in (404, 405):  # forgotten, or a gateway that settles on its own only
                results.append({"session": session.id, "status": "unknown", "transaction": None})
                continue
            raise_for_status(reply)
            results.append(read_json_object(reply, "closing an upto session"))
        return results

    def _complete_flow(self, call: _Call) -> Flow[TextGenerationOutput]:
        response, payment = yield from self._open_flow(call, stream=False)
        data = read_json_object(response, "the gateway")
        choice = first_choice(data, "the gateway")
        finish = choice.get("finish_reason")
        if call.kind == "chat":
            message = self._signed_part(dict(choice.get("message") or {}), finish, call.body)
            message.setdefault("role", "assistant")
            text = output_text(message.get("content"), message.get("tool_calls"), finish)
            output = TextGenerationOutput(chat_output=message, finish_reason=finish,
                                          images=generated_images(message.pop("images", None)))
        else:
            completion = choice.get("text")
            if completion is None:
                completion = data.get("completion")
            text = output_text(completion, None, finish)
            output = TextGenerationOutput(completion_output=completion or "", finish_reason=finish)
        output.usage = Usage.from_dict(data.get("usage"))
        output.model, output.id = data.get("model"), data.get("id")
        self._finish(output, call, payment, settlement_of(response), data, text)
        self._data_settlement(output, response, data)
        return output

    def _stream_finisher(self, call: _Call, payment: SignedPayment | None
                         ) -> Callable[[httpx.Response, StreamAssembler], TextGenerationOutput]:
        def finish(response: httpx.Response, assembled: StreamAssembler) -> TextGenerationOutput:
            calls = assembled.message_tool_calls()
            message: dict[str, Any] = {"role": "assistant", "content": assembled.text}
            if calls:
                message["tool_calls"] = calls
            message = self._signed_part(message, assembled.finish_reason, call.body)
            output = TextGenerationOutput(chat_output=message, finish_reason=assembled.finish_reason,
                                          usage=assembled.usage, model=assembled.model, id=assembled.id,
                                          images=generated_images(assembled.images))
            text = output_text(assembled.text, calls, assembled.finish_reason)
            self._finish(output, call, payment, settlement_of(response), assembled.tee, text)
            self._data_settlement(output, response, assembled.settlement)
            return output

        return finish

    def _signed_part(self, message: dict[str, Any], finish: str | None, request: Mapping[str, Any]) -> dict[str, Any]:
        """Keep only what the enclave signs: tool calls when it called tools, else the text.

        The output hash covers the tool calls only when `finish_reason` is "tool_calls", and the text
        otherwise; anything else in the message could have been added on the way, so it is refused
        (tool calls an agent might run) or dropped (text beside tool calls). The signature does not
        say which of the two the output was, nor covers `tool_choice`: a signed text that happens to
        be the JSON of tool calls could be relabelled as tool calls on the way. So tool calls are
        accepted only where the request allowed them (`allowed_tool_calls`).
        """
        if message.get("tool_calls") or finish == "tool_calls":
            allowed_tool_calls(request, message.get("tool_calls"))
        if self._tee_trust == "off" and self._pinned_key is None:
            return message
        if message.get("tool_calls") and finish != "tool_calls":
            raise VerificationError("the response carries tool calls that the enclave did not sign "
                                    f"(finish_reason is {finish!r}, not 'tool_calls')")
        if finish == "tool_calls" and message.get("tool_calls") and message.get("content"):
            return {**message, "content": None}
        return message

    def _finish(self, output: TextGenerationOutput, call: _Call, payment: SignedPayment | None,
                receipt: dict[str, Any] | None, fields: Mapping[str, Any], text: str) -> None:
        """Attach payment and TEE fields, verify the signature, and build the proof."""
        if receipt is not None and receipt.get("success"):
            output.payment_hash = receipt.get("transaction") or None  # "": an open upto session
            output.transaction_hash = output.payment_hash or ""
        output.amount_paid = payment.amount if payment is not None else None
        if receipt is not None and receipt.get("session"):  # charged to an upto session
            output.upto_session = str(receipt["session"])
            price = receipt.get("price")
            output.amount_paid = int(price) if isinstance(price, (int, str)) and str(price).isdigit() else None
        output.tee_signature = fields.get("tee_signature")
        output.tee_request_hash = fields.get("tee_request_hash")
        output.tee_output_hash = fields.get("tee_output_hash")
        output.tee_timestamp = int(fields["tee_timestamp"]) if fields.get("tee_timestamp") is not None else None
        output.tee_id = fields.get("tee_id")
        output.tee_endpoint = call.target.base
        enclave = call.target.enclave
        if enclave is not None:
            output.tee_payment_address = enclave.payment_address
            output.tee_id = output.tee_id or enclave.tee_id
        out_hash = output_hash(text)
        if self._tee_trust != "off" or self._pinned_key is not None:
            signer = str(fields.get("tee_id", "")).lower()
            if enclave is not None and self._pinned_key is None and signer != enclave.tee_id:
                raise VerificationError(f"the response is signed by enclave {fields.get('tee_id')}, but the request "
                                        f"went to enclave {enclave.tee_id} ({enclave.endpoint})")
            attestation = TeeAttestation.from_fields(fields)
            verify_tee_signature(attestation, key=self._key_for(attestation.tee_id),
                                 expected_request_hash=call.request_hash,
                                 expected_output_hash=out_hash)
            output.tee_verified = True
        output.proof = Proof(
            kind="tee", chain_id=self._payments_chain_id, tee_id=output.tee_id,
            tee_signature=output.tee_signature, tee_timestamp=output.tee_timestamp,
            input_hash=("0x" + call.request_hash.hex()), output_hash="0x" + out_hash.hex(),
            payment_hash=output.payment_hash, model_cid=call.body["model"])

    @staticmethod
    def _data_settlement(output: TextGenerationOutput, response: httpx.Response, fields: Mapping[str, Any]) -> None:
        """Today's gateways report the data-settlement transaction and the batch data's blob id in
        headers (or, for a stream, whose headers went out first, in its final event)."""
        tx = response.headers.get(DATA_SETTLEMENT_TX_HEADER) or fields.get("data_settlement_transaction_hash")
        blob = response.headers.get(DATA_SETTLEMENT_BLOB_HEADER) or fields.get("data_settlement_blob_id")
        output.data_settlement_transaction_hash = str(tx) if tx else None
        output.data_settlement_blob_id = str(blob) if blob else None

    def _trusted_keys_flow(self, response: httpx.Response, target: _Target) -> Flow[None]:
        """Load the enclave keys this client trusts, unless the response's signer is known already
        (and, for registry trust, the registry's reading is fresh)."""
        if self._pinned_key is not None or self._tee_trust == "off":
            return
        tee_id = _response_tee_id(response)
        if self._tee_trust == "gateway":
            if not self._keys or (tee_id is not None and tee_id not in self._keys):
                yield from self._gateway_key_flow(target)
        elif not self._keys or (tee_id is not None and tee_id not in self._keys) or self.enclaves.stale():
            yield from self._read_registry_flow()

    def _gateway_key_flow(self, target: _Target | None = None) -> Flow[None]:
        """Trust the key the gateway publishes at `/signing-key` (only when configured to): the
        pinned gateway's, or a discovered enclave's own (over its pinned TLS)."""
        base = target.base if target is not None else self._network.llm_server_url.rstrip("/")
        reply = yield HttpSend("GET", f"{base}/signing-key", {}, None, False,
                               tls_pin=target.tls_pin if target is not None else None)
        raise_for_status(reply)
        published = read_json_object(reply, "the gateway's /signing-key")
        try:
            key = TeeKey.from_pem(str(published["public_key"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidResponseError(f"the gateway's /signing-key answer has no usable public_key ({exc})") from None
        self._keys[key.tee_id.lower()] = key

    def _key_for(self, tee_id: Any) -> TeeKey:
        if self._pinned_key is not None:
            return self._pinned_key
        key = self._keys.get(str(tee_id).lower()) if tee_id else None
        if key is None:
            source = "the gateway's published key" if self._tee_trust == "gateway" else "the TEE registry"
            raise VerificationError(f"the response is signed by enclave {tee_id}, which {source} does not "
                                    "vouch for", hint="pass tee_trust='off' to skip verification (not "
                                    "recommended)", arguments=("tee_trust",))
        return key

    def _read_registry_flow(self) -> Flow[None]:
        """Read the active LLM enclaves from the TEE registry on the Alpha chain; with
        `tee_trust="registry"` their keys are the ones trusted (an enclave no longer listed is no
        longer trusted)."""
        if not self._network.tee_registry_address:
            raise VerificationError(
                f"network {self._network.name!r} names no TEE registry to take enclave keys from",
                hint="pass tee_trust='gateway' or tee_public_key=… to the client", arguments=("tee_trust",))
        entries = yield from self.enclaves.read_flow()
        if self._tee_trust == "registry":
            self._keys = {e.tee_id: TeeKey(e.public_key) for e in entries}

    def _approval_flow(self, amount: int) -> Flow[ApprovalResult]:
        from eth_abi import decode, encode

        from opengradient.networks import PERMIT2_ADDRESS

        owner = self._pay_sync._wallet().address
        token = self._network.payments.token_address
        read = {"to": token, "data": "0x" + (_ALLOWANCE + encode(["address", "address"],
                                                                  [owner, PERMIT2_ADDRESS])).hex()}
        before = decode(["uint256"], bytes.fromhex(str((yield Rpc("eth_call", (read, "latest"))))[2:]))[0]
        self._payer.permit2_allowance = before
        if before >= amount:
            return ApprovalResult(before, before, None)
        data = _APPROVE + encode(["address", "uint256"], [PERMIT2_ADDRESS, amount])
        gas = int((yield Rpc("eth_estimateGas", ({"from": owner, "to": token, "data": "0x" + data.hex()},))), 16)
        tx_hash = yield SendTx(token, data, gas + gas // 5)
        yield from wait_for_receipt(tx_hash)
        after = decode(["uint256"], bytes.fromhex(str((yield Rpc("eth_call", (read, "latest"))))[2:]))[0]
        self._payer.permit2_allowance = after
        return ApprovalResult(before, after, tx_hash)


def generated_images(images: Any) -> list[str] | None:
    """The images an image-generation model returned, as `data:image/…` URIs (or None).

    Today's enclave signs the text only, so these are not covered by the signature; anything that
    is not an image data URI (or an http(s) URL some providers return) is refused.
    """
    if images is None:
        return None
    if not isinstance(images, list) or not all(
            isinstance(i, str) and (i.startswith("data:image/") or i.startswith(("https://", "http://")))
            for i in images):
        raise InvalidResponseError("the gateway returned images that are not image data URIs or URLs")
    return list(images) or None


def allowed_tool_calls(request: Mapping[str, Any], calls: Any) -> None:
    """Refuse tool calls the request did not allow: no tools offered, `tool_choice` "none", a
    function it did not offer, another than the one it forced, or several where
    `parallel_tool_calls` is false. `VerificationError` otherwise."""
    offered = {str((t.get("function") or {}).get("name")) for t in request.get("tools") or []
               if isinstance(t, Mapping)}
    if not offered:
        raise VerificationError("the response carries tool calls but the request offered no tools: a signed "
                                "text answer relabelled as tool calls is refused")
    choice = request.get("tool_choice")
    if choice == "none":
        raise VerificationError("the response carries tool calls but the request's tool_choice is 'none'")
    forced = (choice.get("function") or {}).get("name") if isinstance(choice, Mapping) else None
    if not isinstance(calls, list) or not calls:
        raise VerificationError("the response says it called tools (finish_reason 'tool_calls') but carries none")
    if request.get("parallel_tool_calls") is False and len(calls) > 1:
        raise VerificationError(f"the response calls {len(calls)} tools but the request's parallel_tool_calls "
                                "is false")
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if name not in offered:
            raise VerificationError(f"the response calls {name!r}, which the request did not offer "
                                    f"(offered: {', '.join(sorted(offered))})")
        if forced is not None and name != forced:
            raise VerificationError(f"the response calls {name!r} but the request forced {forced!r}")


def _response_tee_id(response: httpx.Response) -> str | None:
    if response.is_stream_consumed or not response.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        value = response_json(response).get("tee_id")
    except (ValueError, AttributeError, httpx.ResponseNotRead):
        return None
    return str(value).lower() if value else None


class _Replay:
    """Counts stream events so a reopened stream (a byte-identical replay) skips what was yielded."""

    def __init__(self) -> None:
        self.delivered = 0
        self.seen = 0

    def restart(self) -> None:
        self.seen = 0

    def fresh(self) -> bool:
        """Note one more event of the current connection; True if the caller has not had it yet."""
        self.seen += 1
        if self.seen <= self.delivered:
            return False
        self.delivered += 1
        return True


class TextGenerationStream:
    """A streamed answer: iterate for `StreamChunk`s; afterwards `result` holds the verified output.

    A paid stream cut mid-way is reopened with the same payment (at most `retries` times): the
    gateway replays the stored stream without charging again, and chunks already yielded are skipped.
    """

    def __init__(self, response: httpx.Response,
                 finish: Callable[[httpx.Response, StreamAssembler], TextGenerationOutput], *,
                 reopen: Callable[[], httpx.Response] | None = None, retries: int = 0) -> None:
        self._response = response
        self._finish = finish
        self._reopen = reopen
        self._retries = retries
        self._assembler = StreamAssembler()
        self.result: TextGenerationOutput | None = None

    def __iter__(self) -> Iterator[StreamChunk]:
        replay, attempts = _Replay(), 0
        try:
            while True:
                try:
                    yield from self._read(replay)
                    break
                except NetworkError:
                    self._response.close()
                    if self._reopen is None or attempts >= self._retries:
                        raise
                    attempts += 1
                    replay.restart()
                    self._response = self._reopen()
        finally:
            self._response.close()
        self.result = self._finish(self._response, self._assembler)

    def _read(self, replay: _Replay) -> Iterator[StreamChunk]:
        decoder = SSEDecoder()
        with transport_errors("reading the stream"):
            for line in self._response.iter_lines():
                data = decoder.feed(line)
                if data is not None and replay.fresh() and (chunk := self._assembler.chunk(data)) is not None:
                    yield chunk
                if self._assembler.done:
                    return
            data = decoder.flush()
            if data is not None and replay.fresh() and (chunk := self._assembler.chunk(data)) is not None:
                yield chunk

    def close(self) -> None:
        """Stop reading and free the connection."""
        self._response.close()

    def __enter__(self) -> TextGenerationStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTextGenerationStream:
    """Async twin of `TextGenerationStream`."""

    def __init__(self, response: httpx.Response,
                 finish: Callable[[httpx.Response, StreamAssembler], TextGenerationOutput], *,
                 reopen: Callable[[], Awaitable[httpx.Response]] | None = None, retries: int = 0) -> None:
        self._response = response
        self._finish = finish
        self._reopen = reopen
        self._retries = retries
        self._assembler = StreamAssembler()
        self.result: TextGenerationOutput | None = None

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        replay, attempts = _Replay(), 0
        try:
            while True:
                try:
                    async for chunk in self._read(replay):
                        yield chunk
                    break
                except NetworkError:
                    await self._response.aclose()
                    if self._reopen is None or attempts >= self._retries:
                        raise
                    attempts += 1
                    replay.restart()
                    self._response = await self._reopen()
        finally:
            await self._response.aclose()
        self.result = self._finish(self._response, self._assembler)

    async def _read(self, replay: _Replay) -> AsyncIterator[StreamChunk]:
        decoder = SSEDecoder()
        with transport_errors("reading the stream"):
            async for line in self._response.aiter_lines():
                data = decoder.feed(line)
                if data is not None and replay.fresh() and (chunk := self._assembler.chunk(data)) is not None:
                    yield chunk
                if self._assembler.done:
                    return
            data = decoder.flush()
            if data is not None and replay.fresh() and (chunk := self._assembler.chunk(data)) is not None:
                yield chunk

    async def aclose(self) -> None:
        """Stop reading and free the connection."""
        await self._response.aclose()

    async def __aenter__(self) -> AsyncTextGenerationStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["LLM", "AsyncTextGenerationStream", "TextGenerationStream", "chat_body", "completion_body"]
