"""The legacy LLM API of the 0.7.4 LLM guide, on top of today's client.

`og.new_client(email, password, private_key)` returns a `Client`; `client.llm_completion(...)` and
`client.llm_chat(...)` run in one of two modes (`og.LlmInferenceMode`):

- **VANILLA** (the default, as in the guide): one transaction to the inference contract's
  `runLLMCompletion` / `runLLMChat` on the Alpha chain. The chain's LLM precompile answers (on the
  devnet: the deterministic reference model at `0x…F6`) and the contract emits the answer in an
  `LLMCompletionResult` / `LLMChatResult` event, which is decoded from the receipt. The request is
  paid with the transaction's gas, so `transaction_hash` and `payment_hash` are that
  transaction's hash. There is no x402 payment, no TEE signature and no `proof`.
- **TEE**: the request goes through `client.llm` — the TEE gateway, paid with x402 — and the
  result is the gateway's verified answer (`payment_hash`, `tee_*` fields, `proof`).

Settlement modes (`x402_settlement_mode=`, or `settlement_mode=` as the guide spells it) only
exist for x402 payments: they apply to TEE requests. A VANILLA request is settled by its own
transaction, so a settlement mode passed with VANILLA is ignored with a `UserWarning`.

Model names are any string (`gpt-4`, `claude-3-opus`, `openai/gpt-4o`, `og.LLM.*`, `og.TEE_LLM.*`):
the network decides what it serves, and an unknown model is refused with a clear error before
anything is paid (VANILLA: the gas estimate reverts; TEE: the gateway answers 400).

On-chain encoding (as the inference contract takes it): temperature is sent as a `uint32` scaled by 100 (0.7 → 70),
absent optional strings as `""`, tool parameters and call arguments as JSON text.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opengradient.client.chain import AsyncDriver, Flow, Rpc, SendTx, SyncDriver, wait_for_receipt
from opengradient.client.llm import chat_body, completion_body
from opengradient.client.rpc import revert_error
from opengradient.errors import InferenceError, InvalidInputError
from opengradient.types import (
    TEE_LLM,
    InferenceMode,
    LlmInferenceMode,
    TextGenerationOutput,
    x402SettlementMode,
)

if TYPE_CHECKING:
    from opengradient.client._http import HttpCore
    from opengradient.client.client import Client
    from opengradient.client.llm import LLM
    from opengradient.client.wallet import Wallet
    from opengradient.networks import Network

# ---- ABI of the legacy LLM entry points ----------------------------------------------------------
# Constants are written out; tests recompute each selector and topic from its signature and check
# them against the compiled inference contract.

#: `ToolCall(string id, string name, string arguments)`.
TOOL_CALL = "(string,string,string)"
#: `ChatMessage(string role, string content, string name, string tool_call_id, ToolCall[] tool_calls)`.
CHAT_MESSAGE = f"(string,string,string,string,{TOOL_CALL}[])"
#: `ToolDefinition(string description, string name, string parameters)`.
TOOL_DEFINITION = "(string,string,string)"
#: `LLMChatRequest(uint8 mode, string modelCID, ChatMessage[] messages, ToolDefinition[] tools,
#: string tool_choice, uint32 max_tokens, string[] stop_sequence, uint32 temperature)`.
LLM_CHAT_REQUEST = f"(uint8,string,{CHAT_MESSAGE}[],{TOOL_DEFINITION}[],string,uint32,string[],uint32)"
#: `LLMChatResponse(string finish_reason, ChatMessage message)`.
LLM_CHAT_RESPONSE = f"(string,{CHAT_MESSAGE})"
#: `LLMCompletionRequest(uint8 mode, string modelCID, string prompt, uint32 max_tokens,
#: string[] stop_sequence, uint32 temperature)`.
LLM_COMPLETION_REQUEST = "(uint8,string,string,uint32,string[],uint32)"
#: `LLMCompletionResponse(string answer)`.
LLM_COMPLETION_RESPONSE = "(string)"

RUN_LLM_CHAT_SIGNATURE = f"runLLMChat({LLM_CHAT_REQUEST})"
RUN_LLM_CHAT_SELECTOR = bytes.fromhex("e39aa7e7")
RUN_LLM_COMPLETION_SIGNATURE = f"runLLMCompletion({LLM_COMPLETION_REQUEST})"
RUN_LLM_COMPLETION_SELECTOR = bytes.fromhex("14800c61")

LLM_CHAT_RESULT_EVENT = f"LLMChatResult({LLM_CHAT_RESPONSE})"
LLM_CHAT_RESULT_TOPIC = "0x53fcd580be8545626a896d86eb76e16597d793de715dda5d21df71d303d1ff96"
LLM_COMPLETION_RESULT_EVENT = f"LLMCompletionResult({LLM_COMPLETION_RESPONSE})"
LLM_COMPLETION_RESULT_TOPIC = "0xe522a1a92cb132ca102e36a004efceb8c83284b64164e0d128ddce12e86cab7b"

#: On chain, temperature is a uint32 holding temperature × 100.
TEMPERATURE_SCALE = 100
_UINT32_MAX = 2**32 - 1


# ---- arguments -----------------------------------------------------------------------------------


def parse_llm_mode(mode: Any) -> LlmInferenceMode:
    """Accept `og.LlmInferenceMode`, its value or name, or `og.InferenceMode.VANILLA`/`TEE`."""
    if isinstance(mode, LlmInferenceMode):
        return mode
    if isinstance(mode, InferenceMode):
        if mode.name in LlmInferenceMode.__members__:
            return LlmInferenceMode[mode.name]
    elif isinstance(mode, str) and mode.strip().upper() in LlmInferenceMode.__members__:
        return LlmInferenceMode[mode.strip().upper()]
    elif isinstance(mode, int) and not isinstance(mode, bool) and mode in {m.value for m in LlmInferenceMode}:
        return LlmInferenceMode(mode)
    raise InvalidInputError(f"unknown LLM inference mode {mode!r}",
                            hint="use og.LlmInferenceMode.VANILLA or og.LlmInferenceMode.TEE")


def resolve_settlement_mode(x402_settlement_mode: x402SettlementMode | str | None,
                            settlement_mode: x402SettlementMode | str | None) -> x402SettlementMode | str | None:
    """`settlement_mode=` (the guide's spelling) is an alias of `x402_settlement_mode=`."""
    if x402_settlement_mode is not None and settlement_mode is not None and (
            str(x402_settlement_mode) != str(settlement_mode)):
        raise InvalidInputError("x402_settlement_mode and settlement_mode disagree",
                                hint="pass one of them (settlement_mode is an alias)")
    return x402_settlement_mode if x402_settlement_mode is not None else settlement_mode


def _ignored_settlement(mode: x402SettlementMode | str | None) -> None:
    if mode is not None:
        warnings.warn(f"settlement mode {str(mode)!r} is ignored: settlement modes apply to x402-paid TEE "
                      "requests, and a VANILLA request is settled by its own Alpha-chain transaction. Pass "
                      "inference_mode=og.LlmInferenceMode.TEE to use it.", UserWarning, stacklevel=4)


def _text(content: Any, where: str) -> str:
    """Message content as the chain carries it: plain text (text parts are joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        pieces = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                pieces.append(part["text"])
            else:
                raise InvalidInputError(f"{where} has a content part on-chain chat cannot carry: {part!r}",
                                        hint="VANILLA chat takes text only; use TEE mode for other content")
        return "".join(pieces)
    raise InvalidInputError(f"{where} content must be a string, got {type(content).__name__}")


def _optional_str(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"{where} must be a string, got {type(value).__name__}")
    return value


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return "{}"
    return arguments if isinstance(arguments, str) else json.dumps(arguments, sort_keys=True)


def message_tuple(message: Mapping[str, Any], index: int) -> tuple[Any, ...]:
    """One OpenAI-shaped message as the chain's `ChatMessage` tuple."""
    where = f"messages[{index}]"
    calls = []
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidInputError(f"{where}.tool_calls[{j}] must look like {{'id': …, 'type': 'function', "
                                    "'function': {'name': …, 'arguments': …}}")
        calls.append((_optional_str(call.get("id"), f"{where}.tool_calls[{j}].id"), function["name"],
                      _arguments_text(function.get("arguments"))))
    return (str(message["role"]), _text(message.get("content"), where),
            _optional_str(message.get("name"), f"{where}.name"),
            _optional_str(message.get("tool_call_id"), f"{where}.tool_call_id"), calls)


def _tool_tuple(tool: Mapping[str, Any]) -> tuple[str, str, str]:
    function = tool["function"]
    parameters = function.get("parameters")
    text = parameters if isinstance(parameters, str) else json.dumps(parameters or {}, sort_keys=True)
    return (_optional_str(function.get("description"), "a tool's description"), function["name"], text)


def _tool_choice_text(choice: Any) -> str:
    if choice is None:
        return ""
    if isinstance(choice, str):
        return choice
    return str(((choice.get("function") or {}) if isinstance(choice, Mapping) else {}).get("name") or "")


def _scaled(temperature: float, max_tokens: int) -> tuple[int, int]:
    if max_tokens > _UINT32_MAX:
        raise InvalidInputError(f"max_tokens must fit in a uint32, got {max_tokens}")
    return round(float(temperature) * TEMPERATURE_SCALE), max_tokens


def chat_request_tuple(model: TEE_LLM | str, messages: Any, *, max_tokens: int = 100, temperature: float = 0.0,
                       stop_sequence: Any = None, tools: Any = None, tool_choice: Any = None,
                       mode: LlmInferenceMode = LlmInferenceMode.VANILLA) -> tuple[Any, ...]:
    """Validate chat arguments (the same rules as `client.llm.chat`) and build `LLMChatRequest`."""
    body = chat_body(model, messages, max_tokens=max_tokens, stop_sequence=stop_sequence,
                     temperature=temperature, tools=tools, tool_choice=tool_choice)
    scaled_temperature, tokens = _scaled(body["temperature"], body["max_tokens"])
    return (int(mode), body["model"], [message_tuple(m, i) for i, m in enumerate(body["messages"])],
            [_tool_tuple(t) for t in body.get("tools") or []], _tool_choice_text(body.get("tool_choice")),
            tokens, list(body.get("stop") or []), scaled_temperature)


def completion_request_tuple(model: TEE_LLM | str, prompt: Any, *, max_tokens: int = 100,
                             temperature: float = 0.0, stop_sequence: Any = None,
                             mode: LlmInferenceMode = LlmInferenceMode.VANILLA) -> tuple[Any, ...]:
    """Validate completion arguments and build `LLMCompletionRequest`."""
    body = completion_body(model, prompt, max_tokens=max_tokens, stop_sequence=stop_sequence,
                           temperature=temperature)
    scaled_temperature, tokens = _scaled(body["temperature"], body["max_tokens"])
    return (int(mode), body["model"], body["prompt"], tokens, list(body.get("stop") or []), scaled_temperature)


def chat_output_message(message: tuple[Any, ...], finish_reason: str) -> dict[str, Any]:
    """A decoded `ChatMessage` as OpenAI's assistant message (`content` None when it only calls tools)."""
    role, content, name, tool_call_id, calls = message
    out: dict[str, Any] = {"role": role or "assistant", "content": content}
    if name:
        out["name"] = name
    if tool_call_id:
        out["tool_call_id"] = tool_call_id
    if calls:
        out["tool_calls"] = [{"id": call_id, "type": "function", "function": {"name": fn, "arguments": args}}
                             for call_id, fn, args in calls]
        if not content:
            out["content"] = None
    return out


# ---- the chain flow ------------------------------------------------------------------------------


def _hex_bytes(data: str) -> bytes:
    return bytes.fromhex(data[2:] if data.startswith("0x") else data)


def _event_data(receipt: Mapping[str, Any], contract: str, topic: str) -> bytes | None:
    for log in receipt.get("logs") or []:
        topics = log.get("topics") or []
        if topics and str(topics[0]).lower() == topic and str(log.get("address", "")).lower() == contract.lower():
            return _hex_bytes(str(log["data"]))
    return None


class LegacyLLM:
    """`llm_completion` / `llm_chat` of one client: VANILLA on chain, TEE through `client.llm`."""

    def __init__(self, *, http: HttpCore, network: Network, wallet: Wallet | None, llm: Any,
                 max_retries: int = 2) -> None:
        self._network = network
        self._llm_source = llm  # a zero-argument callable returning the client's `LLM` namespace
        self._sync = SyncDriver(http, network.rpc_url, wallet, chain_id=network.alpha_chain_id,
                                max_retries=max_retries)
        self._async = AsyncDriver(http, network.rpc_url, wallet, chain_id=network.alpha_chain_id,
                                  max_retries=max_retries)

    @property
    def _llm(self) -> LLM:
        llm: LLM = self._llm_source()
        return llm

    # -- completion

    def completion(self, model_cid: TEE_LLM | str, prompt: str,
                   inference_mode: LlmInferenceMode | int | str = LlmInferenceMode.VANILLA,
                   max_tokens: int = 100, temperature: float = 0.0, stop_sequence: str | list[str] | None = None,
                   x402_settlement_mode: x402SettlementMode | str | None = None,
                   settlement_mode: x402SettlementMode | str | None = None) -> TextGenerationOutput:
        """See `Client.llm_completion`."""
        mode = parse_llm_mode(inference_mode)
        settlement = resolve_settlement_mode(x402_settlement_mode, settlement_mode)
        if mode is LlmInferenceMode.TEE:
            return self._llm.completion(model_cid, prompt, max_tokens, stop_sequence, temperature,
                                        settlement or x402SettlementMode.SETTLE)
        request = completion_request_tuple(model_cid, prompt, max_tokens=max_tokens, temperature=temperature,
                                           stop_sequence=stop_sequence, mode=mode)
        _ignored_settlement(settlement)
        return self._sync.run(self._completion_flow(request))

    async def acompletion(self, model_cid: TEE_LLM | str, prompt: str,
                          inference_mode: LlmInferenceMode | int | str = LlmInferenceMode.VANILLA,
                          max_tokens: int = 100, temperature: float = 0.0,
                          stop_sequence: str | list[str] | None = None,
                          x402_settlement_mode: x402SettlementMode | str | None = None,
                          settlement_mode: x402SettlementMode | str | None = None) -> TextGenerationOutput:
        """Async twin of `completion`."""
        mode = parse_llm_mode(inference_mode)
        settlement = resolve_settlement_mode(x402_settlement_mode, settlement_mode)
        if mode is LlmInferenceMode.TEE:
            return await self._llm.acompletion(model_cid, prompt, max_tokens, stop_sequence, temperature,
                                               settlement or x402SettlementMode.SETTLE)
        request = completion_request_tuple(model_cid, prompt, max_tokens=max_tokens, temperature=temperature,
                                           stop_sequence=stop_sequence, mode=mode)
        _ignored_settlement(settlement)
        return await self._async.run(self._completion_flow(request))

    # -- chat

    def chat(self, model_cid: TEE_LLM | str, messages: Sequence[Mapping[str, Any]],
             inference_mode: LlmInferenceMode | int | str = LlmInferenceMode.VANILLA, max_tokens: int = 100,
             temperature: float = 0.0, stop_sequence: str | list[str] | None = None,
             tools: list[dict[str, Any]] | None = None, tool_choice: str | dict[str, Any] | None = None,
             x402_settlement_mode: x402SettlementMode | str | None = None,
             settlement_mode: x402SettlementMode | str | None = None) -> TextGenerationOutput:
        """See `Client.llm_chat`."""
        mode = parse_llm_mode(inference_mode)
        settlement = resolve_settlement_mode(x402_settlement_mode, settlement_mode)
        if mode is LlmInferenceMode.TEE:
            result = self._llm.chat(model_cid, messages, max_tokens, stop_sequence, temperature, tools or None,
                                    tool_choice, settlement or x402SettlementMode.SETTLE)
            assert isinstance(result, TextGenerationOutput)  # stream=False
            return result
        request = chat_request_tuple(model_cid, messages, max_tokens=max_tokens, temperature=temperature,
                                     stop_sequence=stop_sequence, tools=tools, tool_choice=tool_choice, mode=mode)
        _ignored_settlement(settlement)
        return self._sync.run(self._chat_flow(request))

    async def achat(self, model_cid: TEE_LLM | str, messages: Sequence[Mapping[str, Any]],
                    inference_mode: LlmInferenceMode | int | str = LlmInferenceMode.VANILLA, max_tokens: int = 100,
                    temperature: float = 0.0, stop_sequence: str | list[str] | None = None,
                    tools: list[dict[str, Any]] | None = None, tool_choice: str | dict[str, Any] | None = None,
                    x402_settlement_mode: x402SettlementMode | str | None = None,
                    settlement_mode: x402SettlementMode | str | None = None) -> TextGenerationOutput:
        """Async twin of `chat`."""
        mode = parse_llm_mode(inference_mode)
        settlement = resolve_settlement_mode(x402_settlement_mode, settlement_mode)
        if mode is LlmInferenceMode.TEE:
            result = await self._llm.achat(model_cid, messages, max_tokens, stop_sequence, temperature,
                                           tools or None, tool_choice, settlement or x402SettlementMode.SETTLE)
            assert isinstance(result, TextGenerationOutput)  # stream=False
            return result
        request = chat_request_tuple(model_cid, messages, max_tokens=max_tokens, temperature=temperature,
                                     stop_sequence=stop_sequence, tools=tools, tool_choice=tool_choice, mode=mode)
        _ignored_settlement(settlement)
        return await self._async.run(self._chat_flow(request))

    # -- flows

    def _transact(self, calldata: bytes, topic: str, what: str) -> Flow[tuple[str, bytes]]:
        """Estimate (a revert fails here, before anything is sent), send, wait, and read the event."""
        contract = self._network.contract_address
        call = {"from": self._sync._wallet().address, "to": contract, "data": "0x" + calldata.hex()}
        gas = int((yield Rpc("eth_estimateGas", (call,))), 16)
        tx_hash = yield SendTx(contract, calldata, gas + gas // 10)
        receipt = yield from wait_for_receipt(tx_hash)
        if int(str(receipt.get("status", "0x1")), 16) == 0:
            try:
                yield Rpc("eth_call", (call, receipt.get("blockNumber", "latest")))
            except Exception as exc:
                raise revert_error(str(exc), getattr(exc, "data", None), transaction_hash=tx_hash) from exc
            raise revert_error("execution reverted", None, transaction_hash=tx_hash)
        data = _event_data(receipt, contract, topic)
        if data is None:
            raise InferenceError(f"transaction {tx_hash} emitted no {what} event",
                                 hint="check that contract_address points at the inference contract")
        return tx_hash, data

    def _completion_flow(self, request: tuple[Any, ...]) -> Flow[TextGenerationOutput]:
        from eth_abi import decode, encode

        calldata = RUN_LLM_COMPLETION_SELECTOR + encode([LLM_COMPLETION_REQUEST], [request])
        tx_hash, data = yield from self._transact(calldata, LLM_COMPLETION_RESULT_TOPIC, "LLMCompletionResult")
        ((answer,),) = decode([LLM_COMPLETION_RESPONSE], data)
        return TextGenerationOutput(transaction_hash=tx_hash, completion_output=answer, payment_hash=tx_hash,
                                    model=request[1])

    def _chat_flow(self, request: tuple[Any, ...]) -> Flow[TextGenerationOutput]:
        from eth_abi import decode, encode

        calldata = RUN_LLM_CHAT_SELECTOR + encode([LLM_CHAT_REQUEST], [request])
        tx_hash, data = yield from self._transact(calldata, LLM_CHAT_RESULT_TOPIC, "LLMChatResult")
        ((finish_reason, message),) = decode([LLM_CHAT_RESPONSE], data)
        return TextGenerationOutput(transaction_hash=tx_hash, finish_reason=finish_reason or None,
                                    chat_output=chat_output_message(message, finish_reason),
                                    payment_hash=tx_hash, model=request[1])


def new_client(email: str | None, password: str | None, private_key: str | None,
               rpc_url: str | None = None, api_url: str | None = None, contract_address: str | None = None,
               **kwargs: Any) -> Client:
    """The guide's way to build a client: `og.new_client(email, password, private_key)`.

    Returns a `Client` (the same object `og.init` builds; `kwargs` such as `network=`,
    `alpha_private_key=` or `twins_api_key=` go to it). Unlike `og.init` it does not replace
    `og.global_client`.
    """
    from opengradient.client.client import Client

    return Client(private_key, email=email, password=password, rpc_url=rpc_url, api_url=api_url,
                  contract_address=contract_address, **kwargs)


__all__ = [
    "LLM_CHAT_RESULT_TOPIC", "LLM_COMPLETION_RESULT_TOPIC", "RUN_LLM_CHAT_SELECTOR", "RUN_LLM_COMPLETION_SELECTOR",
    "LegacyLLM", "chat_request_tuple", "completion_request_tuple", "new_client", "parse_llm_mode",
]
