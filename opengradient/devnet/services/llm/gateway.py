"""The devnet's TEE LLM gateway: OpenAI-shaped routes, x402 payments, signed responses.

Routes (mounted on the devnet app's root):

- `POST /v1/chat/completions`, `POST /v1/completions` — OpenAI shapes, SSE with `"stream": true`;
- `GET /signing-key`, `GET /enclave/attestation?nonce=<hex>` — the enclave key (simulated TEE);
- `POST /facilitator/verify`, `POST /facilitator/settle`, `GET /facilitator/supported` — the
  devnet's facilitator in x402's facilitator HTTP API shapes, for x402's own server middleware;
- `GET /upto/sessions/{id}` (a session's state and, once settled, its transaction) and
  `DELETE /upto/sessions/{id}` (settle it now; answers when it is on chain);
- `GET /settlement/blobs/{blob_id}` — the batch data of a `batch` request (see below).

Enclaves: the gateway signs with one or more enclave keys, each registered in the TEE registry
with its own endpoint (and TLS certificate, for an HTTPS endpoint). A request is answered, and its
response signed, by the enclave whose registered endpoint it was sent to (by its `Host`); anything
else — the devnet's plain base URL — by the first enclave. They share one payment address, one
ledger of payments and one book of upto sessions: one operator running several enclaves.

Data settlement, reported as today's gateways do: an `individual` (`settle-metadata`) request is
recorded on chain before it is answered and the answer carries `x-settlement-tx-hash`; a `batch`
request's batch data (its hashes, signature, enclave and payment) is stored in the devnet's
content-addressed store and the answer carries its id in `x-settlement-walrus-blob-id`, while
its leaf waits for the Merkle batch. A stream, whose headers go out first, carries them in its
final event (`data_settlement_transaction_hash`, `data_settlement_blob_id`).

Validation follows OpenAI's API: besides the core fields the gateway takes OpenAI's other chat
fields (`top_p`, penalties, `seed`, `parallel_tool_calls`, `metadata`, `web_search`, …, checked
in `_OPTIONS`) and refuses unknown ones by name; content parts are checked per role (media in
user messages only, as OpenAI's chat format has it). `faults` fails or stalls requests on purpose.

A paid request goes: validate (400) → price from model and `max_tokens` → 402 with
`PAYMENT-REQUIRED` when there is no payment → verify the payment (x402 facilitator core,
simulating the transfer on chain; 402 with x402's error code when refused) → run the upstream
model (503 on failure, nothing settled) → settle on chain (402 with a failed `PAYMENT-RESPONSE`
when that fails) → respond with `PAYMENT-RESPONSE` and the TEE fields → record the settlement on
`OGSettlement` in a background worker. A stream is settled after the upstream produced its first
piece and before the first byte goes out.

A payment authorization is idempotent: sent again with the same body after a success, the stored
response is replayed without settling again; with another body it is refused as already used.
Concurrent duplicates wait for the first one. A paid stream whose client leaves early is finished
in the background and stored, so the retry gets it whole.

The 402 offers `exact` first (unchanged for existing clients) and `upto` second. An `upto` payment
(a Permit2 cap) is verified the same way, but instead of settling, the request's price opens an
upto session (`opengradient.devnet.services.llm.upto`): the answer carries `X-Upto-Session: <id>` and a
`PAYMENT-RESPONSE` of an *open* session — `{"success": true, "transaction": "", "network",
"payer", "amount": <charged to the session so far>, "price": <this request>, "session": <id>,
"sessionStatus": "open", "cap", "remaining"}` (an empty `transaction`, as x402 itself reports a
settlement that sent nothing). A request with `X-Upto-Session` and no payment header is charged to
the session (same receipt shape) while the cap covers its price, and gets a 402 saying why
otherwise (`upto_session_unknown`, `…_cap_exhausted`, `…_expired`, `…_route_mismatch`), when the
client pays afresh. The session settles once — one `settle` of the cumulative amount through
x402's upto proxy — when idle, when exhausted or expiring, on `DELETE`, `flush_sessions()` or
`close()`. Its requests' `OGSettlement` records are sent then, naming that transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from eth_utils import keccak
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from x402.mechanisms.evm.constants import (
    ERC20_ALLOWANCE_ABI,
    ERR_NONCE_ALREADY_USED,
    PERMIT2_ADDRESS,
    SCHEME_UPTO,
)
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse
from x402.schemas.v1 import PaymentPayloadV1

from opengradient import bounded_json
from opengradient.client.tee import (
    canonical_chat_request,
    canonical_completion_request,
    output_hash,
    output_text,
    request_hash,
)
from opengradient.devnet.services.llm.completions import (
    Completion,
    Delta,
    UnknownModelError,
    Upstream,
    UpstreamError,
    Usage,
)
from opengradient.devnet.services.llm.enclave import PCR_HASH, Enclave
from opengradient.devnet.services.llm.exposure import ExposureBook, Reservation
from opengradient.devnet.services.llm.facilitator import (
    AuthorizationKey,
    DevFacilitator,
    PendingSettlement,
    authorization_key,
    chain_id_of_network,
    parse_facilitator_request,
)
from opengradient.devnet.services.llm.faults import Faults
from opengradient.devnet.services.llm.payments import (
    DEFAULT_MAX_TOKENS,
    PRICES,
    UPTO_CAP_MULTIPLE,
    PaymentHeaderError,
    SettlementMode,
    build_payment_required,
    build_requirements,
    build_upto_requirements,
    decode_payment_header,
    encode_header_json,
    parse_settlement_mode,
    price_of,
    v1_requirements_json,
)
from opengradient.devnet.services.llm.relay import ENCLAVE_OHTTP_PATH
from opengradient.devnet.services.llm.settlement import SettlementRecord, SettlementRecorder, merkle_leaf
from opengradient.devnet.services.llm.upstream import UpstreamRouter
from opengradient.devnet.services.llm.upto import SESSION_HEADER, UptoSession, UptoSessions

if TYPE_CHECKING:
    from opengradient.devnet.chain.deploy import PaymentContracts
    from opengradient.devnet.chain.evm import DevChain
    from opengradient.devnet.chain.keys import DevAccount
    from opengradient.devnet.services.hub import ModelStore

__all__ = ["LLMGateway", "NO_MATCHING_REQUIREMENTS"]

log = logging.getLogger("opengradient.devnet.gateway")

#: Logs that change what a payer can pay: the token's Transfer and Approval, Permit2's nonce burns.
_TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
_APPROVAL_TOPIC = "0x" + keccak(text="Approval(address,address,uint256)").hex()
_NONCE_INVALIDATION_TOPIC = "0x" + keccak(text="UnorderedNonceInvalidation(address,uint256,uint256)").hex()
_NONCE_BITMAP_ABI: list[dict[str, Any]] = [{
    "type": "function", "name": "nonceBitmap", "stateMutability": "view",
    "inputs": [{"name": "owner", "type": "address"}, {"name": "word", "type": "uint256"}],
    "outputs": [{"name": "", "type": "uint256"}]}]

#: The 402 `error` when a payment's `accepted` is not the offer (x402's server wording).
NO_MATCHING_REQUIREMENTS = "No matching payment requirements"
PAYMENT_REQUIRED = "Payment required"
INVALID_PAYLOAD = "invalid_payload"
#: An upto permit presented again after it opened a session (x402's name for a used Permit2 nonce).
PERMIT2_NONCE_USED = "permit2_invalid_nonce"
#: How long a settled response stays replayable after its authorization expires.
_REPLAY_GRACE_SECONDS = 600
_MAX_STORED = 4096
#: How long a duplicate waits for the request in flight with the same authorization.
_WAIT_SECONDS = 120.0
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
#: Tools one request may offer (OpenAI's limit).
MAX_TOOLS = 128
#: Response headers reporting data settlement (today's gateways).
DATA_SETTLEMENT_TX_HEADER = "x-settlement-tx-hash"
DATA_SETTLEMENT_BLOB_HEADER = "x-settlement-walrus-blob-id"


class _BadRequestError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _is_uint(value: Any) -> bool:
    """A uint256 as the protocol spells it: decimal digits (or a JSON integer)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2**256
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 100 and int(value) < 2**256


def _body_receive(body: bytes) -> Any:
    """An ASGI `receive` that gives `body` once (for requests the gateway builds itself)."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _error(status: int, message: str, kind: str = "invalid_request_error",
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status,
                        headers=dict(headers or {}))


def _json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, headers=dict(headers or {}),
                    media_type="application/json")


def _sse(data: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


_SSE_DONE = b"data: [DONE]\n\n"


# --------------------------------------------------------------------------------------------
# Request validation
# --------------------------------------------------------------------------------------------


def _validate_common(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _BadRequestError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _BadRequestError("'model' is required: a model name such as 'openai/gpt-4o' or 'gpt-4o'")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or not 1 <= max_tokens <= 1_000_000):
        raise _BadRequestError("'max_tokens' must be an integer from 1 to 1000000")
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool)
                                    or not isinstance(temperature, (int, float))
                                    or not 0 <= temperature <= 2):
        raise _BadRequestError("'temperature' must be a number from 0 to 2")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _BadRequestError("'stream' must be a boolean")
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
        raise _BadRequestError("'stop' must be a string or a list of strings")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _BadRequestError("'stream_options' must be an object")
    return body


def _number(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high


def _integer(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _bias_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _number(-100, 100)(v) for k, v in value.items())


#: Request fields the gateway takes besides the core ones: each one's check and what it must be.
#: The reference model answers deterministically, so it ignores the sampling options; it honours
#: `n` (one answer, the one signed) and `parallel_tool_calls` (it calls one tool at a time).
_OPTIONS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "top_p": (_number(0, 1), "a number from 0 to 1"),
    "frequency_penalty": (_number(-2, 2), "a number from -2 to 2"),
    "presence_penalty": (_number(-2, 2), "a number from -2 to 2"),
    "seed": (_integer(-(2**63), 2**63 - 1), "an integer"),
    "n": (lambda v: v == 1 and not isinstance(v, bool), "1 (the enclave signs one answer)"),
    "logit_bias": (_bias_map, "an object of token ids to numbers from -100 to 100"),
    "user": (lambda v: isinstance(v, str), "a string"),
    "metadata": (_string_map, "an object of strings"),
    "store": (lambda v: isinstance(v, bool), "a boolean"),
    "service_tier": (lambda v: isinstance(v, str), "a string"),
    "reasoning_effort": (lambda v: v in ("none", "minimal", "low", "medium", "high", "xhigh"),
                         "one of none, minimal, low, medium, high, xhigh"),
    "verbosity": (lambda v: v in ("low", "medium", "high"), "one of low, medium, high"),
    "prediction": (lambda v: isinstance(v, dict), "an object"),
    "web_search": (lambda v: isinstance(v, (bool, dict)), "a boolean or an object"),
    "logprobs": (lambda v: v is False, "false (the gateway's answers carry no log probabilities)"),
}
_CHAT_FIELDS = frozenset({"model", "messages", "max_tokens", "temperature", "stream", "stream_options", "stop",
                          "tools", "tool_choice", "response_format", "parallel_tool_calls", *_OPTIONS})
_COMPLETION_OPTIONS = ("top_p", "frequency_penalty", "presence_penalty", "seed", "n", "logit_bias", "user")
_COMPLETION_FIELDS = frozenset({"model", "prompt", "max_tokens", "temperature", "stream", "stream_options", "stop",
                                *_COMPLETION_OPTIONS})
#: Fields of OpenAI's API the gateway refuses, and why.
_REFUSED = {
    "max_completion_tokens": "use 'max_tokens': the gateway prices a request from it",
    "functions": "use 'tools'", "function_call": "use 'tool_choice'",
    "modalities": "the gateway answers in text", "audio": "the gateway answers in text",
    "top_logprobs": "the gateway's answers carry no log probabilities",
}


def _validate_options(body: dict[str, Any], fields: frozenset[str], options: Any) -> None:
    """Refuse fields the gateway does not take (OpenAI's API does the same), and malformed options."""
    for key in body:
        if key not in fields:
            why = _REFUSED.get(key) or f"the gateway takes: {', '.join(sorted(fields))}"
            raise _BadRequestError(f"unknown parameter '{key}' ({why})")
    for key in options:
        value = body.get(key)
        if value is not None and not _OPTIONS[key][0](value):
            raise _BadRequestError(f"'{key}' must be {_OPTIONS[key][1]}")


#: The content parts each role may carry (OpenAI's chat format: media only in user messages).
_PARTS = {"user": ("text", "image_url", "input_audio", "file"), "assistant": ("text", "refusal")}


def _check_part(where: str, part: Any, allowed: tuple[str, ...]) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in allowed:
        raise _BadRequestError(f"{where} has type {kind!r}; this role's content parts are: {', '.join(allowed)}")
    if kind in ("text", "refusal") and not isinstance(part.get(kind), str):
        raise _BadRequestError(f"{where} must carry its '{kind}' as a string")
    if kind == "image_url" and not isinstance((part.get("image_url") or {}).get("url"), str):
        raise _BadRequestError(f"{where} must be {{'type': 'image_url', 'image_url': {{'url': …}}}}")
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        if not isinstance(audio.get("data"), str) or audio.get("format") not in ("wav", "mp3"):
            raise _BadRequestError(f"{where} must be {{'type': 'input_audio', 'input_audio': {{'data': <base64>, "
                                   "'format': 'wav' or 'mp3'}}")
    if kind == "file":
        file = part.get("file") or {}
        if file.get("file_id") is not None:
            raise _BadRequestError(f"{where} names a file_id; the gateway keeps no files: send file_data")
        if not isinstance(file.get("file_data"), str):
            raise _BadRequestError(f"{where} must be {{'type': 'file', 'file': {{'file_data': <data URL>, "
                                   "'filename'?}}")


def _validate_chat(body: Any) -> dict[str, Any]:
    body = _validate_common(body)
    _validate_options(body, _CHAT_FIELDS, _OPTIONS)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequestError("'messages' must be a non-empty list of messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise _BadRequestError(f"messages[{i}] must be an object with a role "
                              "(system, developer, user, assistant or tool)")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _BadRequestError(f"messages[{i}].content must be a string, a list of parts or null")
        if isinstance(content, list):
            allowed = _PARTS.get(message["role"], ("text",))
            for j, part in enumerate(content):
                _check_part(f"messages[{i}].content[{j}]", part, allowed)
        calls = message.get("tool_calls")
        if calls is not None and (not isinstance(calls, list) or not all(
                isinstance(c, dict) and isinstance(c.get("function"), dict) for c in calls)):
            raise _BadRequestError(f"messages[{i}].tool_calls must be a list of "
                                   "{'id', 'type': 'function', 'function': {'name', 'arguments'}} objects")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _BadRequestError("'tools' must be a list")
        if len(tools) > MAX_TOOLS:
            raise _BadRequestError(f"'tools' has {len(tools)} tools; at most {MAX_TOOLS} are accepted "
                                   "(as OpenAI's API)")
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise _BadRequestError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name', …}}}}")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and not (tool_choice in ("auto", "none", "required")
                                        or isinstance(tool_choice, dict)):
        raise _BadRequestError("'tool_choice' must be 'auto', 'none', 'required' or a function choice")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise _BadRequestError("'parallel_tool_calls' must be a boolean")
        if not tools:
            raise _BadRequestError("'parallel_tool_calls' is only allowed when 'tools' are offered")
    response_format = body.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise _BadRequestError("'response_format' must be an object")
    return body


def _validate_completion(body: Any) -> dict[str, Any]:
    body = _validate_common(body)
    _validate_options(body, _COMPLETION_FIELDS, _COMPLETION_OPTIONS)
    prompt = body.get("prompt")
    if not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt
                                        and all(isinstance(p, str) for p in prompt))):
        raise _BadRequestError("'prompt' must be a string (or a list of strings)")
    return body


# --------------------------------------------------------------------------------------------
# Idempotent replay of paid responses
# --------------------------------------------------------------------------------------------


@dataclass
class _Stored:
    signature: str
    body_sha: bytes
    status: int
    headers: dict[str, str]
    media_type: str
    chunks: list[bytes]
    expires_at: float


class _Ledger:
    """Settled responses by payment authorization (payer, nonce), and the ones in flight.

    Thread-safe and loop-agnostic: the devnet app may run on the in-process bridge loop and on
    uvicorn's loop at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: OrderedDict[tuple[str, str], _Stored] = OrderedDict()
        self._inflight: dict[tuple[str, str], list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    async def acquire(self, key: tuple[str, str]) -> tuple[_Stored | None, bool]:
        """(stored response, owner) for `key`.

        When nothing is stored the caller becomes the key's owner (and must `release` it),
        unless the owner in flight outlasts `_WAIT_SECONDS`: then the caller goes on without
        ownership (verification refuses an authorization that was meanwhile settled).
        """
        loop = asyncio.get_running_loop()
        waited = False
        while True:
            with self._lock:
                stored = self._done.get(key)
                if stored is not None:
                    if stored.expires_at >= time.time():
                        return stored, False
                    del self._done[key]
                waiters = self._inflight.get(key)
                if waiters is None:
                    self._inflight[key] = []
                    return None, True
                if waited:
                    return None, False
                waiter: asyncio.Future[None] = loop.create_future()
                waiters.append((loop, waiter))
            try:
                await asyncio.wait_for(waiter, _WAIT_SECONDS)
            except TimeoutError:
                waited = True

    def release(self, key: tuple[str, str], stored: _Stored | None) -> None:
        """Give `key` back (owner only), storing the response when the payment settled."""
        with self._lock:
            if stored is not None:
                self._done[key] = stored
                now = time.time()
                while self._done and (len(self._done) > _MAX_STORED
                                      or next(iter(self._done.values())).expires_at < now):
                    self._done.popitem(last=False)
            waiters = self._inflight.pop(key, [])
        for loop, waiter in waiters:
            loop.call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


# --------------------------------------------------------------------------------------------
# One request in flight
# --------------------------------------------------------------------------------------------


@dataclass
class _Call:
    kind: str  # "chat" | "completion"
    body: dict[str, Any]
    raw: bytes
    upstream: Upstream
    upstream_request: dict[str, Any]
    requirements: PaymentRequirements
    mode: str
    canonical: dict[str, Any]
    request_hash: bytes
    enclave: Enclave
    created: int = field(default_factory=lambda: int(time.time()))
    id: str = ""
    # payment
    payload: PaymentPayload | None = None
    legacy: bool = False  # the payment came as x402 v1 or in X-PAYMENT: a 402 carries a v1 body
    legacy_network: str | None = None  # the v1 network name the client used
    v1_payload: bool = False  # `accepted` was synthesised from a v1 payload (nothing to compare)
    key: tuple[str, str] | None = None
    signature: str = ""
    valid_before: int = 0
    settled: SettleResponse | None = None
    upto: bool = False  # the payment is an upto permit (opens a session instead of settling)
    nonce: int = 0  # the payment's nonce as a number (EIP-3009 bytes32, or the Permit2 uint256)
    session: UptoSession | None = None  # the upto session this request is charged to
    reservation: Reservation | None = None  # what the payment may still take, until it settles
    hold: AuthorizationKey | None = None  # the gateway's hold on the authorization, until it settles
    reserved: bool = False  # its price is reserved on `session` and not yet committed
    session_receipt: dict[str, Any] | None = None
    owner: bool = False  # holds the authorization's key in the ledger
    handed_off: bool = False  # the key is released elsewhere (stored response or stream end)
    tx: str = ""  # settlement transaction, for the log line


class LLMGateway:
    """The TEE LLM gateway of a devnet. Build it with `deploy()`; mount `routes()`."""

    def __init__(self, *, payments_chain: DevChain, alpha_chain: DevChain,
                 contracts: PaymentContracts, tee_registry: str, operator: DevAccount,
                 facilitator: DevAccount, router: UpstreamRouter | None = None,
                 enclave: Enclave | None = None, token_name: str = "OPG",
                 token_version: str = "2", upto_cap_multiple: int = UPTO_CAP_MULTIPLE,
                 upto_idle_seconds: float = 30.0, store: ModelStore | None = None) -> None:
        self.payments_chain = payments_chain
        self.alpha_chain = alpha_chain
        self.contracts = contracts
        self.tee_registry = tee_registry
        self.operator = operator
        self.router = router or UpstreamRouter.from_env()
        #: The first enclave: it answers requests sent to no registered endpoint.
        self.enclave = enclave or Enclave()
        #: Enclaves by the authority (`host:port`) of their registered endpoint, and what was registered.
        self._by_authority: dict[str, Enclave] = {}
        self.registered: list[dict[str, Any]] = []
        #: Where batch data is stored (content-addressed), and the ids of what this gateway stored there.
        self.store = store
        self._blobs: set[str] = set()
        self.token_name, self.token_version = token_name, token_version
        self.network = f"eip155:{payments_chain.chain_id}"
        self.pay_to = operator.address
        self.facilitator = DevFacilitator(payments_chain, facilitator.private_key)
        self.settlements = SettlementRecorder(payments_chain, operator.private_key, contracts.settlement)
        #: With False the gateway serves without asking for payment (for measuring overheads).
        self.require_payment = True
        #: Failures and stalls to produce on purpose, for testing clients (`faults.py`).
        self.faults = Faults()
        self._ledger = _Ledger()
        self._requirements: dict[int, PaymentRequirements] = {}
        self._upto_requirements: dict[int, PaymentRequirements] = {}
        #: An upto offer's cap is `upto_cap_multiple` × the request's price, or `upto_session_cap`
        #: when that is set (and covers the price).
        self.upto_cap_multiple = upto_cap_multiple
        self.upto_session_cap: int | None = None
        self.exposure = ExposureBook(self._coverage, lambda: payments_chain.head_hash)
        self.sessions = UptoSessions(self._settle_session, self._record_now, idle_seconds=upto_idle_seconds,
                                     min_price=min(p.price(1) for p in PRICES.values()),
                                     on_ended=self._session_ended, recheck=self._recheck_payer)
        self._watched_topics = {_TRANSFER_TOPIC, _APPROVAL_TOPIC, _NONCE_INVALIDATION_TOPIC}
        payments_chain.add_log_listener(self._on_payment_logs)
        self._closed = False
        #: Wall time of the most recent settlement (verify excluded), for benchmarks.
        self.last_settle_seconds = 0.0

    @classmethod
    def deploy(cls, *, payments_chain: DevChain, alpha_chain: DevChain, operator: DevAccount,
               facilitator: DevAccount, holders: list[str], mint_each: int = 1_000_000 * 10**18,
               router: UpstreamRouter | None = None, token_name: str = "OPG", token_version: str = "2",
               token_address: str | None = None, store: ModelStore | None = None) -> LLMGateway:
        """Deploy the payment contracts and the TEE registry, then build the gateway (the OPG
        token at `token_address` with that EIP-712 name and version, when given)."""
        from opengradient.devnet.chain.deploy import deploy_payment_contracts, deploy_tee_registry

        contracts = deploy_payment_contracts(payments_chain, operator, holders, mint_each=mint_each,
                                             token_name=token_name, token_version=token_version,
                                             token_address=token_address)
        registry = deploy_tee_registry(alpha_chain, operator)
        return cls(payments_chain=payments_chain, alpha_chain=alpha_chain, contracts=contracts,
                   tee_registry=registry, operator=operator, facilitator=facilitator, router=router,
                   token_name=token_name, token_version=token_version, store=store)

    # ---- lifecycle -------------------------------------------------------------------------------

    def register_tee(self, endpoint: str, *, enclave: Enclave | None = None, certificate: bytes = b"") -> str:
        """Register an enclave (the first one by default) in the TEE registry as an LLM proxy at
        `endpoint`, paid at the gateway's address, with the DER TLS `certificate` its HTTPS server
        presents (none for a plain-http endpoint); requests sent there are its own. Its Oblivious HTTP
        key goes in the entry's `ohttpConfig` (confidential chat seals requests to it). Returns its
        tee id."""
        from opengradient.devnet.chain.deploy import Deployer

        enclave = enclave or self.enclave
        deployer = Deployer(self.alpha_chain, self.operator, estimate_gas=False)
        deployer.transact(self.tee_registry, "TEERegistry", "registerTEE", self.pay_to, endpoint,
                          enclave.public_key_der, certificate, PCR_HASH, 0)
        key = enclave.ohttp
        deployer.transact(self.tee_registry, "TEERegistry", "setOhttpConfig", bytes.fromhex(enclave.tee_id[2:]),
                          key.key_id, key.kem_id, key.kdf_id, key.aead_id, key.public_key, key.encoded)
        self._by_authority[httpx.URL(endpoint).netloc.decode().lower()] = enclave
        self.registered.append({"tee_id": enclave.tee_id, "endpoint": endpoint, "payment_address": self.pay_to,
                                "tls_certificate_sha256": hashlib.sha256(certificate).hexdigest()
                                if certificate else None})
        return enclave.tee_id

    def disable_tee(self, tee_id: str) -> None:
        """Take an enclave out of the registry's active list (it keeps answering, as a retired
        enclave may: clients stop choosing it)."""
        from opengradient.devnet.chain.deploy import Deployer

        Deployer(self.alpha_chain, self.operator, estimate_gas=False).transact(
            self.tee_registry, "TEERegistry", "disableTEE", bytes.fromhex(tee_id.removeprefix("0x")))

    def enclave_for(self, request: Request) -> Enclave:
        """The enclave a request was sent to: by its `Host`, the first enclave otherwise."""
        host = request.headers.get("host", "").lower()
        return self._by_authority.get(host, self.enclave)

    def close(self) -> None:
        """Settle the open upto sessions, record pending settlements (a partial batch included) and
        stop the recorder."""
        if self._closed:
            return
        try:
            self.sessions.shutdown()
            self.facilitator.close()  # settlements in the pool: wait for their blocks
        finally:
            self._closed = True
            self.settlements.close()

    def flush_sessions(self, timeout: float = 30.0) -> list[UptoSession]:
        """Settle every open upto session now; returns them once settled."""
        return self.sessions.flush(timeout)

    def info(self) -> dict[str, Any]:
        """What `GET /` reports about the gateway."""
        return {
            "network": self.network,
            "opg_token": self.contracts.opg_token,
            "pay_to": self.pay_to,
            "facilitator": self.facilitator.address,
            "schemes": ["exact", SCHEME_UPTO],
            "permit2": self.contracts.permit2,
            "upto_proxy": self.contracts.upto_proxy,
            "upto_cap_multiple": self.upto_cap_multiple,
            "upto_idle_seconds": self.sessions.idle_seconds,
            "settlement_contract": self.contracts.settlement,
            "tee_registry": self.tee_registry,
            "tee_id": self.enclave.tee_id,
            "enclaves": list(self.registered),
            "tee_simulated": True,
        }

    def routes(self) -> list[Route]:
        """The gateway's routes, for the devnet app's root."""
        return [
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/completions", self._completion, methods=["POST"]),
            Route("/signing-key", self._signing_key, methods=["GET"]),
            Route("/enclave/attestation", self._attestation, methods=["GET"]),
            Route("/facilitator/verify", self._facilitator_verify, methods=["POST"]),
            Route("/facilitator/settle", self._facilitator_settle, methods=["POST"]),
            Route("/facilitator/supported", self._facilitator_supported, methods=["GET"]),
            Route("/upto/sessions/{session_id}", self._session_status, methods=["GET"]),
            Route("/upto/sessions/{session_id}", self._session_close, methods=["DELETE"]),
            Route("/settlement/blobs/{blob_id}", self._settlement_blob, methods=["GET"]),
            Route(ENCLAVE_OHTTP_PATH, self._ohttp_chat, methods=["POST"]),
        ]

    # ---- confidential chat: sealed requests, opened in the enclave ----------------------------------

    def authority_of(self, tee_id: str) -> str | None:
        """The `host:port` requests to enclave `tee_id` (with or without 0x) are addressed to (None
        when unregistered)."""
        wanted = tee_id.lower().removeprefix("0x")
        for authority, enclave in self._by_authority.items():
            if enclave.tee_id.lower().removeprefix("0x") == wanted:
                return authority
        return None

    async def ohttp_call(self, headers: dict[str, str], sealed: bytes, authority: str) -> Response:
        """The enclave's answer to a sealed request, as the relay reaches it inside the devnet."""
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw += [(b"host", authority.encode()), (b"content-length", str(len(sealed)).encode())]
        scope = {"type": "http", "method": "POST", "path": ENCLAVE_OHTTP_PATH, "raw_path": ENCLAVE_OHTTP_PATH.encode(),
                 "query_string": b"", "headers": raw, "scheme": "http", "server": ("devnet.local", 80),
                 "client": ("127.0.0.1", 0), "http_version": "1.1", "root_path": ""}
        return await self._ohttp_chat(Request(scope, _body_receive(sealed)))

    async def _ohttp_chat(self, request: Request) -> Response:
        """Open a sealed chat request, serve it as any paid chat, seal the answer to it.

        A 402 goes back unsealed (the price is for whoever pays: the relay); every other answer —
        errors included — is sealed, `{"status", "body"}`, or chunk by chunk for a stream.
        """
        enclave = self.enclave_for(request)
        try:
            plaintext, sealer = enclave.open_sealed(await request.body())
        except ValueError as exc:
            return _error(400, f"the sealed request does not open: {exc}")
        headers = [(k, v) for k, v in request.scope["headers"]
                   if k not in (b"content-type", b"content-length", b"accept")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(plaintext)).encode())]
        inner = Request({**request.scope, "path": "/v1/chat/completions", "headers": headers},
                        _body_receive(plaintext))
        answer = await self._serve(inner, "chat")
        kept = {k: v for k, v in answer.headers.items()
                if k.lower() in ("payment-response", "x-upto-session", "x-settlement-tx-hash",
                                 "x-settlement-walrus-blob-id")}
        if answer.status_code == 402:
            return answer
        if isinstance(answer, StreamingResponse) and answer.status_code == 200:
            chunked = sealer.chunked_sealer()

            async def sealed_frames() -> AsyncIterator[bytes]:
                yield chunked.start()
                async for piece in answer.body_iterator:
                    data = piece.encode() if isinstance(piece, str) else bytes(piece)
                    if data:
                        yield chunked.chunk(data)
                yield chunked.final(b"")

            return StreamingResponse(sealed_frames(), 200, headers={**kept, "Cache-Control": "no-store"},
                                     media_type="message/ohttp-chunked-res")
        body = bytes(answer.body) if not isinstance(answer, StreamingResponse) else b"".join(
            [piece.encode() if isinstance(piece, str) else bytes(piece) async for piece in answer.body_iterator])
        try:
            document: Any = bounded_json.loads(body) if body else None
        except ValueError:
            document = body.decode("utf-8", "replace")
        sealed = sealer.seal_response(json.dumps({"status": answer.status_code, "body": document},
                                                 separators=(",", ":")).encode())
        return Response(sealed, 200, headers={**kept, "Cache-Control": "no-store"}, media_type="message/ohttp-res")

    # ---- pricing ---------------------------------------------------------------------------------

    def requirements_for(self, model: str, max_tokens: int | None) -> PaymentRequirements:
        """What a request to `model` with `max_tokens` must pay (the same for the same inputs)."""
        amount = price_of(model, max_tokens)
        cached = self._requirements.get(amount)
        if cached is None:
            cached = build_requirements(network=self.network, amount=amount,
                                        asset=self.contracts.opg_token, pay_to=self.pay_to,
                                        token_name=self.token_name, token_version=self.token_version)
            self._requirements[amount] = cached
        return cached

    def upto_requirements_for(self, price: int) -> PaymentRequirements:
        """The upto offer for a request costing `price`: a cap covering many such requests."""
        cap = max(price, self.upto_session_cap if self.upto_session_cap is not None
                  else price * self.upto_cap_multiple)
        cached = self._upto_requirements.get(cap)
        if cached is None:
            cached = build_upto_requirements(network=self.network, cap=cap, asset=self.contracts.opg_token,
                                             pay_to=self.pay_to, facilitator=self.facilitator.address,
                                             token_name=self.token_name, token_version=self.token_version)
            self._upto_requirements[cap] = cached
        return cached

    # ---- routes: TEE -----------------------------------------------------------------------------

    async def _signing_key(self, request: Request) -> Response:
        url = str(request.base_url).rstrip("/") + "/enclave/attestation"
        return JSONResponse(self.enclave_for(request).signing_key(url))

    async def _attestation(self, request: Request) -> Response:
        raw = request.query_params.get("nonce", "").strip().removeprefix("0x").removeprefix("0X")
        try:
            nonce = bytes.fromhex(raw)
        except ValueError:
            nonce = b""
        if not 1 <= len(nonce) <= 64 or len(raw) != 2 * len(nonce):
            return _error(400, "'nonce' must be 1 to 64 bytes of hex, e.g. ?nonce=" + secrets.token_hex(16))
        return JSONResponse(await run_in_threadpool(self.enclave_for(request).attestation, nonce))

    async def _settlement_blob(self, request: Request) -> Response:
        blob_id = request.path_params["blob_id"]
        data = self.store.get(blob_id) if self.store is not None and blob_id in self._blobs else None
        if data is None:
            return _error(404, f"no settlement data stored as {blob_id}", "not_found")
        return Response(data, media_type="application/json")

    # ---- routes: facilitator over HTTP -----------------------------------------------------------

    async def _facilitator_body(self, request: Request) -> tuple[Any, Any]:
        try:
            return parse_facilitator_request(bounded_json.loads(await request.body()))
        except ValueError as exc:
            raise _BadRequestError(str(exc)) from None

    async def _facilitator_verify(self, request: Request) -> Response:
        try:
            payload, requirements = await self._facilitator_body(request)
        except _BadRequestError as exc:
            return _error(400, exc.message)
        result = await run_in_threadpool(self.facilitator.verify, payload, requirements)
        return _json_response(result.model_dump(by_alias=True, exclude_none=True))

    async def _facilitator_settle(self, request: Request) -> Response:
        try:
            payload, requirements = await self._facilitator_body(request)
        except _BadRequestError as exc:
            return _error(400, exc.message)
        result = await run_in_threadpool(self.facilitator.settle_public, payload, requirements)
        log.info("POST /facilitator/settle success=%s amount=%s tx=%s", result.success,
                 requirements.get_amount(), result.transaction[:10])
        return _json_response(result.model_dump(by_alias=True, exclude_none=True))

    async def _facilitator_supported(self, request: Request) -> Response:
        return _json_response(self.facilitator.supported())

    # ---- routes: upto sessions -------------------------------------------------------------------

    async def _session_status(self, request: Request) -> Response:
        session = self.sessions.get(request.path_params["session_id"])
        if session is None:
            return _error(404, "no such upto session (unknown, or settled long ago)", "not_found")
        return _json_response(session.status(self.network))

    async def _session_close(self, request: Request) -> Response:
        session = self.sessions.close(request.path_params["session_id"])
        if session is None:
            return _error(404, "no such upto session (unknown, or settled long ago)", "not_found")
        await run_in_threadpool(session.done.wait, _WAIT_SECONDS)
        return _json_response(session.status(self.network))

    # ---- routes: LLM -----------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        return await self._serve(request, "chat")

    async def _completion(self, request: Request) -> Response:
        return await self._serve(request, "completion")

    async def _serve(self, request: Request, kind: str) -> Response:
        started = time.perf_counter()
        call: _Call | None = None
        response: Response | None = None
        try:
            try:
                call = await self._prepare(request, kind)
            except _BadRequestError as exc:
                response = _error(400, exc.message)
                return response
            response = await self._paid(request, call)
            return response
        except Exception:
            log.exception("the gateway failed on %s %s", request.method, request.url.path)
            response = _error(500, "internal error in the devnet gateway", "server_error")
            return response
        finally:
            status = response.status_code if response is not None else 0
            charged = call is not None and (call.payload is not None or call.session is not None)
            log.info("%s %s model=%s status=%d amount=%s tx=%s%s (%.1f ms)", request.method,
                     request.url.path, call.body.get("model") if call else "-", status,
                     call.requirements.amount if call and charged else "-",
                     call.tx[:10] if call and call.tx else "-",
                     f" session={call.session.id[:12]}" if call and call.session else "",
                     (time.perf_counter() - started) * 1000)

    async def _prepare(self, request: Request, kind: str) -> _Call:
        raw = await request.body()
        try:
            parsed = bounded_json.loads(raw)
        except ValueError:
            raise _BadRequestError("the request body is not valid JSON") from None
        body = _validate_chat(parsed) if kind == "chat" else _validate_completion(parsed)
        try:
            upstream, bare = self.router.resolve(body["model"])
        except UnknownModelError as exc:
            raise _BadRequestError(str(exc)) from None
        refusal = getattr(upstream, "refusal", None)  # what the upstream cannot take, before payment
        reason = refusal(body) if callable(refusal) else None
        if reason:
            raise _BadRequestError(reason)
        try:
            mode = parse_settlement_mode(request.headers.get("x-settlement-type"))
        except ValueError as exc:
            raise _BadRequestError(str(exc)) from None
        upstream_request = {k: v for k, v in body.items()
                            if k not in ("stream", "stream_options") and v is not None}
        upstream_request["model"] = bare
        upstream_request.setdefault("max_tokens", DEFAULT_MAX_TOKENS)  # the budget that was priced
        canonical = (canonical_chat_request(body) if kind == "chat"
                     else canonical_completion_request(body))
        prefix = "chatcmpl-" if kind == "chat" else "cmpl-"
        return _Call(kind=kind, body=body, raw=raw, upstream=upstream,
                     upstream_request=upstream_request,
                     requirements=self.requirements_for(bare, body.get("max_tokens")), mode=mode,
                     canonical=canonical, request_hash=request_hash(canonical), enclave=self.enclave_for(request),
                     id=prefix + secrets.token_hex(12))

    # ---- payments --------------------------------------------------------------------------------

    def _payment_required(self, request: Request, call: _Call, error: str,
                          settled: SettleResponse | None = None) -> Response:
        description = (f"{call.body['model']} {'chat completion' if call.kind == 'chat' else 'completion'}"
                       f" (max_tokens={call.body.get('max_tokens') or DEFAULT_MAX_TOKENS})")
        offers = [call.requirements, self.upto_requirements_for(int(call.requirements.amount))]
        required = build_payment_required(offers, url=str(request.url), description=description,
                                          error=error)
        headers = {"PAYMENT-REQUIRED": encode_header_json(required.model_dump(by_alias=True,
                                                                              exclude_none=True)),
                   "Cache-Control": "no-store"}
        body: dict[str, Any] = {}
        if call.legacy:  # an x402 v1 client reads the offer from the body
            network = call.legacy_network or self.facilitator.v1_network or self.network
            body = {"x402Version": 1, "error": error, "accepts": [
                v1_requirements_json(call.requirements, network=network, url=str(request.url),
                                     description=description)]}
        if settled is not None:
            receipt = self._receipt_header(call, settled)
            headers["PAYMENT-RESPONSE"] = headers["X-PAYMENT-RESPONSE"] = receipt
        return _json_response(body, 402, headers)

    def _receipt_header(self, call: _Call, settled: SettleResponse) -> str:
        if call.session_receipt is not None:
            return encode_header_json(call.session_receipt)
        receipt: dict[str, Any] = {"success": settled.success, "transaction": settled.transaction,
                                   "network": call.legacy_network or settled.network or self.network,
                                   "payer": settled.payer}
        if settled.success:
            receipt["amount"] = call.requirements.amount
        else:
            receipt["errorReason"] = settled.error_reason or "settlement_failed"
            if settled.error_message:
                receipt["errorMessage"] = settled.error_message
        return encode_header_json(receipt)

    def _read_payment(self, request: Request, call: _Call) -> str | None:
        """Parse the payment header into `call`; returns a refusal reason, or None when usable."""
        header = request.headers.get("payment-signature")
        legacy_header = False
        if header is None:
            header = request.headers.get("x-payment")
            legacy_header = header is not None
        if header is None:
            return PAYMENT_REQUIRED
        try:
            payload = decode_payment_header(header)
        except PaymentHeaderError:
            call.legacy = legacy_header
            return INVALID_PAYLOAD
        if isinstance(payload, PaymentPayloadV1):
            call.legacy = call.v1_payload = True
            call.legacy_network = payload.network
            chain_id = chain_id_of_network(payload.network)
            accepted = call.requirements.model_copy(update={
                "scheme": payload.scheme,
                "network": f"eip155:{chain_id}" if chain_id is not None else payload.network})
            payload = PaymentPayload(x402_version=2, payload=payload.payload, accepted=accepted)
        else:
            call.legacy = legacy_header
        signature = payload.payload.get("signature")
        call.upto = payload.accepted.scheme == SCHEME_UPTO and not call.v1_payload
        authorization = payload.payload.get("permit2Authorization" if call.upto else "authorization")
        if not isinstance(authorization, dict) or not isinstance(signature, str):
            return INVALID_PAYLOAD  # EIP-3009 `exact` and Permit2 `upto` payments are offered
        key = authorization_key(payload)
        valid_before = authorization.get("deadline" if call.upto else "validBefore")
        if key is None or valid_before is None or not _is_uint(valid_before):
            return INVALID_PAYLOAD  # keys are built from numbers: "7", "07" and "007" are one nonce
        call.valid_before = int(valid_before)
        call.payload = payload
        _, payer, call.nonce = key
        call.key = (f"upto:{payer}" if call.upto else payer, str(call.nonce))
        call.signature = signature.lower()
        return None

    def _offer_for(self, call: _Call) -> PaymentRequirements:
        """The offer the call's payment must match: the price (`exact`) or the cap (`upto`)."""
        return self.upto_requirements_for(int(call.requirements.amount)) if call.upto else call.requirements

    def _accepted_matches(self, accepted: PaymentRequirements, offer: PaymentRequirements) -> bool:
        return (accepted.scheme == offer.scheme and accepted.network == offer.network
                and accepted.amount == offer.amount
                and accepted.asset.lower() == offer.asset.lower()
                and accepted.pay_to.lower() == offer.pay_to.lower()
                and accepted.max_timeout_seconds == offer.max_timeout_seconds
                and all(accepted.extra.get(k) == v for k, v in offer.extra.items()))

    async def _paid(self, request: Request, call: _Call) -> Response:
        if not self.require_payment:
            return await self._run(request, call)
        session_id = request.headers.get(SESSION_HEADER)
        if session_id and request.headers.get("payment-signature") is None \
                and request.headers.get("x-payment") is None:
            return await self._session_call(request, call, session_id.strip())
        refusal = self._read_payment(request, call)
        if refusal is not None:
            return self._payment_required(request, call, refusal)
        assert call.key is not None and call.payload is not None
        used = PERMIT2_NONCE_USED if call.upto else ERR_NONCE_ALREADY_USED
        stored, call.owner = await self._ledger.acquire(call.key)
        if stored is not None:
            if stored.signature == call.signature and stored.body_sha == hashlib.sha256(call.raw).digest():
                call.tx = "replay"
                return self._replay(stored)
            return self._payment_required(request, call, used)
        if call.upto and self.sessions.used(call.key[0].removeprefix("upto:"), call.nonce):
            if call.owner:
                self._ledger.release(call.key, None)
                call.owner = False
            return self._payment_required(request, call, used)
        try:
            # Verified before the model runs: an upstream may cost real money, and the reference
            # model answers in microseconds, so overlapping the two would gain nothing.
            refused = await self._check_payment(request, call)
            if refused is not None:
                return refused
            return await self._run(request, call)
        finally:
            self._release_payment(call)  # unless settled or handed to a session already
            if call.owner and not call.handed_off:
                self._ledger.release(call.key, None)

    def _release_payment(self, call: _Call) -> None:
        """The payment settled, failed or was never used: its reservation and hold end."""
        self.exposure.release(call.reservation)
        self.facilitator.unhold(call.hold)
        call.reservation, call.hold = None, None

    def _replay(self, stored: _Stored) -> Response:
        headers = dict(stored.headers)
        if stored.media_type == "text/event-stream":
            chunks = list(stored.chunks)

            async def frames() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk

            return StreamingResponse(frames(), stored.status, headers=headers,
                                     media_type=stored.media_type)
        return Response(b"".join(stored.chunks), stored.status, headers=headers,
                        media_type=stored.media_type)

    async def _check_payment(self, request: Request, call: _Call) -> Response | None:
        """Hold the authorization, verify the payment and reserve what it may take against the
        payer's balance less what is pending for it; a 402 when any of it is refused."""
        assert call.payload is not None
        offer = self._offer_for(call)
        call.hold = self.facilitator.hold(call.payload)  # nobody else settles it from here on
        refusal = await run_in_threadpool(self._verify_and_reserve, call, offer)  # reads the chain
        if refusal is not None:
            return self._payment_required(request, call, refusal)
        return None

    def _verify_and_reserve(self, call: _Call, offer: PaymentRequirements) -> str | None:
        """Verify `call`'s payment (an `exact` one without simulating its transfer) and reserve its
        amount; the x402 code of the refusal, or None."""
        assert call.payload is not None
        result, simulated = self.facilitator.verify_quick(call.payload, offer)
        if not result.is_valid:
            return result.invalid_reason or INVALID_PAYLOAD
        if not call.v1_payload and not self._accepted_matches(call.payload.accepted, offer):
            return NO_MATCHING_REQUIREMENTS
        call.reservation, refusal = self.exposure.reserve(str(result.payer), int(offer.amount), permit2=call.upto,
                                                          checked=simulated)
        return refusal

    def _coverage(self, payer: str) -> tuple[int, int]:
        """`payer`'s OPG balance and its allowance to Permit2, on chain now."""
        signer, token = self.facilitator.signer, self.contracts.opg_token
        allowance = int(signer.read_contract(token, ERC20_ALLOWANCE_ABI, "allowance", payer, PERMIT2_ADDRESS))
        return signer.get_balance(payer, token), allowance

    def _on_payment_logs(self, logs: list[dict[str, Any]]) -> None:
        """A block was mined on the payments chain: note payers whose coverage it may have changed
        (runs under the chain's lock: only notes them; `_recheck_payer` reads the chain later)."""
        token, permit2 = self.contracts.opg_token.lower(), PERMIT2_ADDRESS.lower()
        payers: set[str] = set()
        for entry in logs:
            topics, address = entry.get("topics") or [], str(entry.get("address", "")).lower()
            if len(topics) < 2 or topics[0] not in self._watched_topics:
                continue
            if (address == token and topics[0] != _NONCE_INVALIDATION_TOPIC) or (
                    address == permit2 and topics[0] == _NONCE_INVALIDATION_TOPIC):
                payers.add("0x" + str(topics[1])[-40:])
        if payers:
            self.sessions.mark_dirty(payers)

    def _recheck_payer(self, payer: str) -> None:
        """Re-read the chain for `payer`'s live sessions: revoke those whose permit nonce was used,
        and settle them all now if the payer no longer covers what is reserved for it."""
        sessions = self.sessions.live_of(payer)
        if not sessions:
            return
        signer = self.facilitator.signer
        for session in sessions:
            bitmap = int(signer.read_contract(PERMIT2_ADDRESS, _NONCE_BITMAP_ABI, "nonceBitmap", payer,
                                              session.nonce >> 8))
            if bitmap >> (session.nonce & 0xFF) & 1:
                self.sessions.revoke(session, "upto_permit_used_elsewhere")
        covered, balance, allowance = self.exposure.covered(payer)
        if not covered:
            log.warning("payer %s no longer covers its upto sessions (balance %d, allowance %d): settling them",
                        payer, balance, allowance)
            self.sessions.close_payer(payer, "coverage reduced")

    def _session_ended(self, session: UptoSession) -> None:
        """A session settled, failed or was revoked: its reservation and its hold on the permit end."""
        self.exposure.release(session.reservation)
        self.facilitator.unhold(session.hold)
        session.reservation = session.hold = None

    async def _session_call(self, request: Request, call: _Call, session_id: str) -> Response:
        """A request charged to an open upto session (no payment header): 402 when it cannot be."""
        price = int(call.requirements.amount)
        known = self.sessions.get(session_id)
        generation = self.sessions.dirty(known.payer) if known is not None else None
        if known is not None and generation is not None:  # the chain changed for this payer
            await run_in_threadpool(self._recheck_payer, known.payer)
            self.sessions.checked(known.payer, generation)
        session, refusal = self.sessions.reserve(session_id, price, request.method, request.url.path)
        if session is None:
            return self._payment_required(request, call, refusal or PAYMENT_REQUIRED)
        call.session, call.reserved = session, True
        try:
            return await self._run(request, call)
        finally:
            if call.reserved:  # not served (upstream failure, bad request): nothing is charged
                call.reserved = False
                self.sessions.refund(session, price)

    def _session_headers(self, call: _Call) -> dict[str, str]:
        """`PAYMENT-RESPONSE` of an open session (and `X-Upto-Session`) for a served request."""
        session = call.session
        assert session is not None
        charged = session.charged
        call.session_receipt = {
            "success": True, "transaction": "", "network": self.network, "payer": session.payer,
            "amount": str(charged), "price": call.requirements.amount, "session": session.id,
            "sessionStatus": "open", "cap": str(session.cap), "remaining": str(session.cap - charged)}
        if call.payload is not None:  # the opening request: its response is stored for retries
            call.settled = SettleResponse(success=True, transaction="", network=self.network,
                                          payer=session.payer, amount=str(charged))
        return {SESSION_HEADER: session.id}

    async def _collect(self, request: Request, call: _Call) -> Response | None:
        """Take the request's payment once the model has answered: settle an `exact` payment,
        open a session with an `upto` one, or commit the charge to the session it came with."""
        if call.session is not None:  # charged to an open session
            self.sessions.commit(call.session)
            call.reserved = False
            self._session_headers(call)
            return None
        assert call.payload is not None
        if not call.upto:
            return await self._settle(request, call)
        permit = call.payload.payload["permit2Authorization"]
        try:
            call.session = self.sessions.open(
                payer=str(permit["from"]), nonce=call.nonce, payload=call.payload,
                requirements=self._offer_for(call), price=int(call.requirements.amount),
                method=request.method, path=request.url.path, deadline=call.valid_before,
                reservation=call.reservation, hold=call.hold)
        except (ValueError, RuntimeError) as exc:
            log.warning("could not open an upto session: %s", exc)
            return self._payment_required(request, call, PERMIT2_NONCE_USED)
        call.reservation, call.hold = None, None  # the session keeps them until it has settled
        self._session_headers(call)
        return None

    def _settle_session(self, session: UptoSession, amount: int) -> SettleResponse:
        """The one settlement of an upto session (the session book's settler thread calls it).

        It takes what the session served, or as much of it as the payer's balance and allowance
        still cover (a payer who moved funds away mid-session leaves less than it was served).
        """
        balance, allowance = self._coverage(session.payer)
        if min(balance, allowance) < amount:
            log.warning("upto session %s served %d but its payer now covers only %d: settling that",
                        session.id[:12], amount, min(balance, allowance))
            amount = min(balance, allowance)
            if amount == 0:
                return SettleResponse(success=False, error_reason="insufficient_funds", transaction="",
                                      network=str(session.requirements.network), payer=session.payer)
        started = time.perf_counter()
        result = self.facilitator.settle_upto(session.payload, session.requirements, amount)
        if not result.success and not result.transaction:
            # Nothing was broadcast (e.g. the sender's nonce was resynchronised after a refused
            # send): trying once more cannot settle twice, and a session has no other chance.
            log.warning("settling upto session %s failed before broadcast (%s); retrying once",
                        session.id[:12], result.error_reason)
            result = self.facilitator.settle_upto(session.payload, session.requirements, amount)
        self.last_settle_seconds = time.perf_counter() - started
        return result

    def _record_now(self, record: SettlementRecord) -> None:
        if not self._closed:
            self.settlements.record(record)

    async def _settle(self, request: Request, call: _Call) -> Response | None:
        """Hand the payment to the chain; a 402 when it is refused before anything is sent.

        The answer goes out once the transfer is in the pool under its (final) hash, not once it
        is mined: the reservation and the hold stay until the block is built, and a transfer that
        fails on chain then bars the payer (`ExposureBook.bar`)."""
        assert call.payload is not None
        started = time.perf_counter()
        submitted = await run_in_threadpool(self.facilitator.submit, call.payload, call.requirements)
        self.last_settle_seconds = time.perf_counter() - started
        if isinstance(submitted, SettleResponse):
            self._release_payment(call)  # refused before sending: nothing is pending
            call.settled = submitted
            log.warning("settlement failed: %s %s", submitted.error_reason, submitted.error_message or "")
            return self._payment_required(request, call, submitted.error_reason or "settlement_failed", submitted)
        reservation, hold = call.reservation, call.hold
        call.reservation, call.hold = None, None  # released when the block is built
        submitted.result.add_done_callback(lambda done: self._settlement_mined(submitted, reservation, hold))
        call.settled = SettleResponse(success=True, transaction=submitted.transaction, network=submitted.network,
                                      payer=submitted.payer)
        call.tx = submitted.transaction
        return None

    def _settlement_mined(self, pending: PendingSettlement, reservation: Reservation | None,
                          hold: AuthorizationKey | None) -> None:
        """A served request's settlement left the pool: its reservation and hold end; a failure
        bars the payer, who was served and did not pay."""
        try:
            result = pending.result.result()
            failure = None if result.success else f"{result.error_reason or 'failed'} in {pending.transaction}"
        except Exception as exc:  # the worker itself broke: the payment's fate is unknown, count it unpaid
            failure = f"{type(exc).__name__}: {exc} in {pending.transaction}"
        if failure is not None:
            log.warning("settlement of a served request failed (%s): payer %s is refused from now on",
                        failure, pending.payer)
            self.exposure.bar(pending.payer, failure)
        self.exposure.release(reservation)
        self.facilitator.unhold(hold)

    def _paid_headers(self, call: _Call) -> dict[str, str]:
        if call.session_receipt is not None:  # upto (x402 v2 only): no legacy X-PAYMENT-RESPONSE
            assert call.session is not None
            return {"PAYMENT-RESPONSE": encode_header_json(call.session_receipt), SESSION_HEADER: call.session.id}
        if call.settled is None:
            return {}
        receipt = self._receipt_header(call, call.settled)
        return {"PAYMENT-RESPONSE": receipt, "X-PAYMENT-RESPONSE": receipt}

    def _record(self, call: _Call, out_hash: bytes, text: str) -> SettlementRecord | None:
        """The request's settlement record: handed to its upto session (recorded when the session
        settles, naming that transaction) or returned for the caller to record now; None when
        nothing was paid."""
        metadata = call.mode == SettlementMode.INDIVIDUAL
        detail = {"model": str(call.body["model"]), "input": json.dumps(call.canonical, sort_keys=True) if metadata
                  else "", "output": text if metadata else ""}
        if call.session is not None and call.session_receipt is not None and not self._closed:
            self.sessions.add_record(call.session, SettlementRecord(
                mode=call.mode, payment_tx="", request_hash=call.request_hash, output_hash=out_hash,
                payer=call.session.payer, amount=int(call.requirements.amount), **detail))
            return None
        if call.settled is None or not call.settled.success or self._closed:
            return None
        return SettlementRecord(
            mode=call.mode, payment_tx=call.settled.transaction, request_hash=call.request_hash,
            output_hash=out_hash, payer=str(call.settled.payer), amount=int(call.requirements.amount), **detail)

    async def _settle_data(self, call: _Call, out_hash: bytes, text: str, tee: Mapping[str, Any]) -> dict[str, str]:
        """Record the request's data as its mode says; what the answer reports about it (header
        names to values): the record's transaction (individual) or the batch data's blob id (batch)."""
        record = self._record(call, out_hash, text)
        report: dict[str, str] = {}
        if call.mode == SettlementMode.BATCH and self.store is not None and (record is not None or call.session):
            blob = {"version": 1, "mode": SettlementMode.BATCH, "model": str(call.body["model"]),
                    "tee_id": tee.get("tee_id"), "tee_request_hash": call.request_hash.hex(),
                    "tee_output_hash": out_hash.hex(), "tee_signature": tee.get("tee_signature"),
                    "tee_timestamp": tee.get("tee_timestamp"),
                    "leaf": merkle_leaf(call.request_hash, out_hash).hex(),
                    "payment_transaction": record.payment_tx if record is not None else None,
                    "upto_session": call.session.id if call.session is not None else None}
            blob_id = self.store.put(json.dumps(blob, sort_keys=True).encode())
            self._blobs.add(blob_id)
            report[DATA_SETTLEMENT_BLOB_HEADER] = blob_id
        if record is None:
            return report
        try:
            if record.mode == SettlementMode.INDIVIDUAL:
                tx = await run_in_threadpool(self.settlements.record_and_wait, record)
                if tx:
                    report[DATA_SETTLEMENT_TX_HEADER] = tx
            else:
                self.settlements.record(record)
        except RuntimeError:  # the devnet is shutting down; the payment itself is settled
            log.warning("settlement record of %s dropped: the recorder is closed", record.payment_tx)
        return report

    def _finish(self, call: _Call, status: int, headers: dict[str, str], media_type: str,
                chunks: list[bytes]) -> None:
        """Store a paid response for replays and give the authorization's key back."""
        if not call.owner or call.key is None:
            return
        stored = None
        if call.settled is not None and call.settled.success:
            stored = _Stored(signature=call.signature, body_sha=hashlib.sha256(call.raw).digest(),
                             status=status, headers=headers, media_type=media_type, chunks=chunks,
                             expires_at=max(call.valid_before, time.time()) + _REPLAY_GRACE_SECONDS)
        self._ledger.release(call.key, stored)
        call.handed_off = True

    def _unavailable(self, call: _Call, exc: Exception) -> Response:
        log.warning("upstream failed for %s: %s (nothing settled)", call.body.get("model"), exc)
        if isinstance(exc, UpstreamError) and exc.status == 429:  # the provider's rate limit, passed on
            return _error(429, f"the upstream model is rate limited: {exc}; nothing was charged",
                          "rate_limit_exceeded")
        return _error(503, f"the upstream model is unavailable: {exc}; nothing was charged",
                      "upstream_unavailable")

    async def _run(self, request: Request, call: _Call) -> Response:
        stall = self.faults.next_stall()
        if stall is not None:
            await run_in_threadpool(stall.wait, _WAIT_SECONDS)
        failure = self.faults.next_failure()
        if failure is not None:
            log.warning("injected fault for %s: %d (nothing settled)", call.body.get("model"), failure.status)
            limited = failure.status == 429
            headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else None
            return _error(failure.status, f"the upstream model {'is rate limited' if limited else 'failed'} "
                          "(an injected fault); nothing was charged",
                          "rate_limit_exceeded" if limited else "upstream_unavailable", headers)
        if call.body.get("stream"):
            return await self._run_stream(request, call)
        return await self._run_once(request, call)

    # ---- non-streaming ---------------------------------------------------------------------------

    async def _run_once(self, request: Request, call: _Call) -> Response:
        method = call.upstream.chat if call.kind == "chat" else call.upstream.complete
        try:
            answer: Completion = await method(call.upstream_request)
        except UpstreamError as exc:
            return self._unavailable(call, exc)
        except UnknownModelError as exc:
            return _error(400, str(exc))
        text = output_text(answer.content, answer.tool_calls, answer.finish_reason)
        out_hash = output_hash(text)
        body = self._final_body(call, answer)
        tee = call.enclave.tee_fields(call.request_hash, out_hash)
        body.update(tee)
        if call.payload is not None or call.session is not None:
            refused = await self._collect(request, call)
            if refused is not None:
                return refused
        headers = self._paid_headers(call)
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers.update(await self._settle_data(call, out_hash, text, tee))
        self._finish(call, 200, headers, "application/json", [payload])
        return Response(payload, 200, headers=headers, media_type="application/json")

    def _final_body(self, call: _Call, answer: Completion) -> dict[str, Any]:
        usage = answer.usage.to_dict()
        if call.kind == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": answer.content}
            if answer.tool_calls:
                message["tool_calls"] = answer.tool_calls
            if answer.images:  # today's gateway: generated images beside the signed text
                message["images"] = list(answer.images)
            return {"id": call.id, "object": "chat.completion", "created": call.created,
                    "model": call.body["model"],
                    "choices": [{"index": 0, "message": message, "logprobs": None,
                                 "finish_reason": answer.finish_reason}],
                    "usage": usage}
        text = answer.content or ""
        return {"id": call.id, "object": "text_completion", "created": call.created,
                "model": call.body["model"],
                "choices": [{"index": 0, "text": text, "logprobs": None,
                             "finish_reason": answer.finish_reason}],
                "usage": usage, "completion": text}

    # ---- streaming -------------------------------------------------------------------------------

    async def _run_stream(self, request: Request, call: _Call) -> Response:
        method = call.upstream.stream_chat if call.kind == "chat" else call.upstream.stream_complete
        pieces = method(call.upstream_request).__aiter__()
        first: Delta | None
        try:
            first = await pieces.__anext__()
        except StopAsyncIteration:
            first = None
        except (UpstreamError, UnknownModelError) as exc:
            await _close(pieces)
            if isinstance(exc, UnknownModelError):
                return _error(400, str(exc))
            return self._unavailable(call, exc)
        if call.payload is not None or call.session is not None:
            refused = await self._collect(request, call)  # before the first byte goes out
            if refused is not None:
                await _close(pieces)
                return refused
        headers = {**self._paid_headers(call), **_SSE_HEADERS}
        call.handed_off = True  # the stream gives the authorization's key back when it ends
        stream = _Stream(self, call, headers)
        stream.produce(first, pieces)
        return StreamingResponse(stream.frames(), 200, headers=headers, media_type="text/event-stream")


async def _close(pieces: AsyncIterator[Delta]) -> None:
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception as exc:  # the stream is being dropped anyway
            log.debug("closing an upstream stream failed: %s", exc)


class _Stream:
    """One SSE answer: turns upstream deltas into chunks, signs the end, keeps the frames.

    A producer task reads the upstream and the client's response only reads the frames it made,
    so a client that leaves — before the first byte or mid-way — never interrupts the upstream:
    the answer is always produced whole, signed whole and stored whole, and a retry with the same
    authorization gets all of it. (Were the client's cancellation to reach the upstream, a cut
    answer would be signed as a finished one and replayed as if complete.) An upstream that ends
    without saying how it finished is an upstream failure, not a finished answer.
    """

    def __init__(self, gateway: LLMGateway, call: _Call, headers: dict[str, str]) -> None:
        self.gateway, self.call, self.headers = gateway, call, headers
        self.sent: list[bytes] = []
        self.done = False
        self._more = asyncio.Event()
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.images: list[str] | None = None
        self.role_pending = call.kind == "chat"
        self.include_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))

    def chunk(self, *, content: str | None = None, tool_call: dict[str, Any] | None = None,
              finish_reason: str | None = None, usage: Usage | None = None,
              empty_choices: bool = False) -> dict[str, Any]:
        call = self.call
        if call.kind == "chat":
            obj = "chat.completion.chunk"
            delta: dict[str, Any] = {}
            if self.role_pending and not empty_choices:
                delta["role"] = "assistant"
                self.role_pending = False
            if content is not None:
                delta["content"] = content
            if tool_call is not None:
                delta["tool_calls"] = [tool_call]
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None,
                                      "finish_reason": finish_reason}
        else:
            obj = "text_completion"
            choice = {"index": 0, "text": content or "", "logprobs": None,
                      "finish_reason": finish_reason}
        chunk: dict[str, Any] = {"id": call.id, "object": obj, "created": call.created,
                                 "model": call.body["model"],
                                 "choices": [] if empty_choices else [choice]}
        if usage is not None:
            chunk["usage"] = usage.to_dict()
        return chunk

    def _frame(self, data: Mapping[str, Any]) -> bytes:
        encoded = _sse(data)
        self.sent.append(encoded)
        return encoded

    def take(self, delta: Delta) -> list[bytes]:
        out = []
        if delta.content:
            self.text.append(delta.content)
            out.append(self._frame(self.chunk(content=delta.content)))
        if delta.tool_call is not None:
            piece = delta.tool_call
            slot = self.calls.setdefault(int(piece.get("index", 0)), {
                "id": "", "type": "function", "function": {"name": "", "arguments": ""}})
            if piece.get("id"):
                slot["id"] = piece["id"]
            function = piece.get("function") or {}
            if function.get("name"):
                slot["function"]["name"] = function["name"]
            slot["function"]["arguments"] += function.get("arguments") or ""
            out.append(self._frame(self.chunk(tool_call=piece)))
        if delta.finish_reason:
            self.finish = delta.finish_reason
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.images:
            self.images = list(delta.images)
        return out

    async def end(self) -> list[bytes]:
        """The signed finish chunk (with what data settlement reports), OpenAI's usage chunk when
        asked, `[DONE]`; records the payment."""
        if self.finish is None:
            raise UpstreamError("the upstream stream ended without a finish_reason")
        finish = self.finish
        usage = self.usage or Usage(0, 0, 0)
        tool_calls = [self.calls[i] for i in sorted(self.calls)] or None
        out_text = output_text("".join(self.text), tool_calls, finish)
        out_hash = output_hash(out_text)
        tee = self.call.enclave.tee_fields(self.call.request_hash, out_hash)
        reported = await self.gateway._settle_data(self.call, out_hash, out_text, tee)
        last = self.chunk(finish_reason=finish, usage=usage)
        last.update(tee)
        if self.images:  # on the final chunk, as today's gateway sends them
            last["images"] = self.images
        if DATA_SETTLEMENT_TX_HEADER in reported:
            last["data_settlement_transaction_hash"] = reported[DATA_SETTLEMENT_TX_HEADER]
        if DATA_SETTLEMENT_BLOB_HEADER in reported:
            last["data_settlement_blob_id"] = reported[DATA_SETTLEMENT_BLOB_HEADER]
        out = [self._frame(last)]
        if self.include_usage:  # OpenAI's separate usage chunk (empty choices), signed alike
            usage_chunk = self.chunk(usage=usage, empty_choices=True)
            usage_chunk.update(tee)
            out.append(self._frame(usage_chunk))
        self.sent.append(_SSE_DONE)
        out.append(_SSE_DONE)
        return out

    def _failed(self, exc: Exception) -> bytes:
        log.warning("upstream failed mid-stream for %s: %s", self.call.body.get("model"), exc)
        return _sse({"error": {"message": f"the upstream model failed mid-stream: {exc}",
                               "type": "upstream_unavailable", "code": 503}}) + _SSE_DONE

    def _release(self, complete: bool) -> None:
        call = self.call
        if not call.owner or call.key is None:
            return
        if complete:
            self.gateway._finish(call, 200, self.headers, "text/event-stream", self.sent)
        else:
            self.gateway._ledger.release(call.key, None)

    def produce(self, first: Delta | None, pieces: AsyncIterator[Delta]) -> None:
        """Start reading the upstream in a task of its own (kept until it is done)."""
        task = asyncio.get_running_loop().create_task(self._produce(first, pieces))
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)

    async def _produce(self, first: Delta | None, pieces: AsyncIterator[Delta]) -> None:
        complete = False
        try:
            if first is not None:
                self.take(first)
                self._more.set()
                async for delta in pieces:
                    self.take(delta)
                    self._more.set()
            await self.end()
            complete = True
        except Exception as exc:  # UpstreamError, or anything unexpected: the stream failed
            self.sent.append(self._failed(exc))
        finally:
            self.done = True
            self._more.set()
            self._release(complete)

    async def frames(self) -> AsyncIterator[bytes]:
        """What the client receives: the producer's frames, as they come."""
        sent = 0
        while True:
            while sent < len(self.sent):
                sent += 1
                yield self.sent[sent - 1]
            if self.done:
                return
            self._more.clear()
            if sent == len(self.sent) and not self.done:
                await self._more.wait()


#: Streams' producer tasks (kept referenced until done).
_BACKGROUND: set[asyncio.Task[None]] = set()
