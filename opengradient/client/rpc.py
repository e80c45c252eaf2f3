"""Ethereum JSON-RPC over the client's HTTP pool, sync and async over one core.

We speak JSON-RPC directly instead of through web3.py: it keeps `import opengradient` light,
gives sync and async twins for free, and lets revert data reach the user intact.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from opengradient.bounded_json import response_json
from opengradient.client._http import HttpCore, raise_for_status, transport_errors
from opengradient.errors import ContractRevertError, ModelNotFoundError, RPCError

_ERROR_SELECTOR = "08c379a0"  # Error(string)
_PANIC_SELECTOR = "4e487b71"  # Panic(uint256)
_PANIC_CODES = {
    0x01: "assertion failed", 0x11: "arithmetic overflow or underflow", 0x12: "division by zero",
    0x21: "invalid enum value", 0x31: "pop on empty array", 0x32: "array index out of bounds",
    0x41: "out of memory", 0x51: "call to an uninitialised function",
}
_ids = itertools.count(1)


def decode_revert_data(data: str | None) -> str | None:
    """The human reason inside revert data (`Error(string)` or `Panic(uint256)`), if any."""
    if not data or not isinstance(data, str) or len(data) < 10:
        return None
    raw = data[2:] if data.startswith("0x") else data
    try:
        payload = bytes.fromhex(raw[8:])
        if raw[:8] == _ERROR_SELECTOR:
            from eth_abi import decode

            (reason,) = decode(["string"], payload)
            return str(reason)
        if raw[:8] == _PANIC_SELECTOR:
            code = int.from_bytes(payload[:32], "big")
            return f"panic 0x{code:02x} ({_PANIC_CODES.get(code, 'unknown panic')})"
    except Exception:  # malformed revert data is reported raw below, never raised from here
        return None
    return None


def revert_error(message: str, data: Any, *, transaction_hash: str | None = None) -> ContractRevertError:
    """Build the typed revert error, recognising an unknown model."""
    reason = decode_revert_data(data if isinstance(data, str) else None)
    if reason is None:
        reason = message.removeprefix("execution reverted").lstrip(": ") or "no reason given"
    cls = ModelNotFoundError if "model not found" in reason.lower() else ContractRevertError
    return cls(reason, data=data if isinstance(data, str) else None, transaction_hash=transaction_hash)


def _payload(method: str, params: list[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}


def _result(response: httpx.Response, method: str) -> Any:
    raise_for_status(response, hint=f"JSON-RPC {method} failed at the HTTP level")
    try:
        body = response_json(response)
    except ValueError as exc:
        raise RPCError(f"{method}: the node sent a body that is not JSON") from exc
    if not isinstance(body, dict):
        raise RPCError(f"{method}: unexpected JSON-RPC response {str(body)[:200]}")
    error = body.get("error")
    if error:
        if not isinstance(error, dict):
            raise RPCError(f"{method}: {error}")
        message = str(error.get("message", "unknown error"))
        data = error.get("data")
        if error.get("code") == 3 or message.startswith("execution reverted"):
            raise revert_error(message, data)
        raise RPCError(f"{method}: {message}", code=error.get("code"), data=data)
    return body.get("result")


class JsonRpc:
    """Blocking JSON-RPC calls to one node."""

    def __init__(self, http: HttpCore, url: str) -> None:
        self.http = http
        self.url = url

    def call(self, method: str, *params: Any) -> Any:
        """Call `method` and return its result, raising typed errors."""
        with transport_errors(f"JSON-RPC {method} to {self.url}"):
            response = self.http.sync.post(self.url, json=_payload(method, list(params)))
        return _result(response, method)


class AsyncJsonRpc:
    """Non-blocking JSON-RPC calls to one node."""

    def __init__(self, http: HttpCore, url: str) -> None:
        self.http = http
        self.url = url

    async def call(self, method: str, *params: Any) -> Any:
        """Call `method` and return its result, raising typed errors."""
        with transport_errors(f"JSON-RPC {method} to {self.url}"):
            response = await self.http.async_.post(self.url, json=_payload(method, list(params)))
        return _result(response, method)
