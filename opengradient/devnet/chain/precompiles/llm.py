"""The devnet's LLM precompile at `0x…F6`: the legacy on-chain LLM entry points, answered offline.

The inference contract's `runLLMChat` / `runLLMCompletion` forward their request here (the ONNX
precompile at `0x…F4` is unchanged). The request is turned into an OpenAI-shaped one and answered
by the devnet's deterministic reference model — the same model behind the devnet's LLM gateway —
so the answer depends only on the request: a node that re-executes the transaction gets the same
output, tool-call ids included (they are derived from the request, not random).

Both LLM modes run the same way here: VANILLA is what the devnet honestly offers (the node ran
the model; the request and the answer are on chain in the transaction and its `LLMChatResult` /
`LLMCompletionResult` event). TEE on chain is accepted for compatibility but, as there is no
enclave on a developer machine, it is not attested; the SDK sends TEE requests to the gateway
instead, whose answers are signed.

An unknown model, a malformed request or tool parameters that are not JSON revert with a
readable reason, which the contract passes on unchanged.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any, Protocol, TypeVar

from opengradient import bounded_json
from opengradient.devnet.chain.evm import PrecompileCall, PrecompileResult, PrecompileRevert
from opengradient.legacy import (
    LLM_CHAT_REQUEST,
    LLM_CHAT_RESPONSE,
    LLM_COMPLETION_REQUEST,
    LLM_COMPLETION_RESPONSE,
    RUN_LLM_CHAT_SELECTOR,
    RUN_LLM_COMPLETION_SELECTOR,
    TEMPERATURE_SCALE,
)

#: Where the devnet's Alpha chain answers the legacy LLM entry points.
LLM_PRECOMPILE_ADDRESS = "0x00000000000000000000000000000000000000F6"

_BASE_GAS = 30_000
_MODES = {0: "VANILLA", 1: "TEE"}
T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the reference model's) from synchronous EVM code.

    The EVM may run on a thread that already has an event loop, so no loop is used: one `send`
    finishes the coroutine.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the LLM precompile's model suspended; it must answer synchronously")


class Answer(Protocol):
    """What the model answers: text or tool calls (OpenAI's message form), and why it stopped."""

    @property
    def content(self) -> str | None: ...

    @property
    def tool_calls(self) -> list[dict[str, Any]] | None: ...

    @property
    def finish_reason(self) -> str: ...


class OfflineModel(Protocol):
    """A model that answers OpenAI-shaped requests without suspending (the devnet's reference
    model); an unknown model is a `LookupError`."""

    def chat(self, request: dict[str, Any]) -> Coroutine[Any, Any, Answer]:
        """Answer a chat request."""
        ...

    def complete(self, request: dict[str, Any]) -> Coroutine[Any, Any, Answer]:
        """Continue a prompt."""
        ...


class LLMPrecompile:
    """Callable precompile answering `runLLMChat` and `runLLMCompletion` with an offline model
    (the node gives it the reference model and the names it serves)."""

    def __init__(self, model: OfflineModel, known_models: Sequence[str]) -> None:
        self.model = model
        self.known_models = tuple(known_models)

    def __call__(self, call: PrecompileCall) -> PrecompileResult:
        from eth_abi import decode, encode

        selector = call.data[:4]
        if selector == RUN_LLM_CHAT_SELECTOR:
            request_type, kind = LLM_CHAT_REQUEST, "chat"
        elif selector == RUN_LLM_COMPLETION_SELECTOR:
            request_type, kind = LLM_COMPLETION_REQUEST, "completion"
        else:
            raise PrecompileRevert("unknown function: the LLM precompile has runLLMChat and runLLMCompletion")
        try:
            (request,) = decode([request_type], call.data[4:])
        except Exception as exc:
            raise PrecompileRevert(f"malformed LLM {kind} request: {exc}") from exc
        mode = request[0]
        if mode not in _MODES:
            raise PrecompileRevert(f"invalid LLM inference mode {mode}: expected 0 (VANILLA) or 1 (TEE)")
        seed = call.origin.encode() + call.block_number.to_bytes(8, "big") + call.data
        if kind == "chat":
            answer = self._answer(self.model.chat(chat_request(request)))
            output = encode([LLM_CHAT_RESPONSE], [chat_response(answer, seed)])
        else:
            answer = self._answer(self.model.complete(completion_request(request)))
            output = encode([LLM_COMPLETION_RESPONSE], [(answer.content or "",)])
        return PrecompileResult(output=output, gas=_BASE_GAS + 16 * len(call.data) + 16 * len(output))

    def _answer(self, coro: Coroutine[Any, Any, Answer]) -> Answer:
        try:
            return _run(coro)
        except LookupError:
            raise PrecompileRevert(self.known_models_reason()) from None

    def known_models_reason(self) -> str:
        """The revert reason for a model the precompile does not serve."""
        return "model not found: the devnet's on-chain LLMs are " + ", ".join(self.known_models)


def _checked_model(name: str) -> str:
    if not name.strip():
        raise PrecompileRevert("modelCID is empty")
    return name.strip()


def _common(request: dict[str, Any], max_tokens: int, stops: list[str], temperature: int) -> dict[str, Any]:
    if max_tokens:
        request["max_tokens"] = max_tokens
    if stops:
        request["stop"] = list(stops)
    request["temperature"] = temperature / TEMPERATURE_SCALE
    return request


def _parameters(text: str, index: int) -> Any:
    if not text.strip():
        return {"type": "object", "properties": {}}
    try:
        return bounded_json.loads(text)
    except ValueError as exc:
        raise PrecompileRevert(f"tools[{index}].parameters is not valid JSON: {exc}") from None


def chat_request(request: tuple[Any, ...]) -> dict[str, Any]:
    """A decoded `LLMChatRequest` as the OpenAI-shaped request the reference model takes."""
    _, model, messages, tools, tool_choice, max_tokens, stops, temperature = request
    out_messages = []
    for role, content, name, tool_call_id, tool_calls in messages:
        message: dict[str, Any] = {"role": role, "content": content}
        if name:
            message["name"] = name
        if tool_call_id:
            message["tool_call_id"] = tool_call_id
        if tool_calls:
            message["tool_calls"] = [{"id": call_id, "type": "function",
                                      "function": {"name": fn, "arguments": args}}
                                     for call_id, fn, args in tool_calls]
        out_messages.append(message)
    body: dict[str, Any] = {"model": _checked_model(model), "messages": out_messages}
    if tools:
        body["tools"] = [{"type": "function", "function": {"name": name, "description": description,
                                                           "parameters": _parameters(parameters, i)}}
                         for i, (description, name, parameters) in enumerate(tools)]
        if tool_choice in ("auto", "none", "required"):
            body["tool_choice"] = tool_choice
        elif tool_choice:
            body["tool_choice"] = {"type": "function", "function": {"name": tool_choice}}
    return _common(body, max_tokens, stops, temperature)


def completion_request(request: tuple[Any, ...]) -> dict[str, Any]:
    """A decoded `LLMCompletionRequest` as the OpenAI-shaped request the reference model takes."""
    _, model, prompt, max_tokens, stops, temperature = request
    return _common({"model": _checked_model(model), "prompt": prompt}, max_tokens, stops, temperature)


def chat_response(answer: Answer, seed: bytes) -> tuple[Any, ...]:
    """The `LLMChatResponse` tuple of an answer; tool-call ids are derived from `seed`."""
    from eth_utils import keccak

    calls = []
    for i, call in enumerate(answer.tool_calls or []):
        function = call.get("function") or {}
        call_id = "call_" + keccak(seed + i.to_bytes(4, "big")).hex()[:24]
        calls.append((call_id, str(function.get("name") or ""), str(function.get("arguments") or "{}")))
    return (answer.finish_reason, ("assistant", answer.content or "", "", "", calls))


__all__ = ["LLM_PRECOMPILE_ADDRESS", "LLMPrecompile", "chat_request", "chat_response", "completion_request"]
