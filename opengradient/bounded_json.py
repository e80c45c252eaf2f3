"""JSON parsing with a bound on nesting, for every document that comes from outside.

Python's `json` decoder recurses once per level of nesting. Its guard is the interpreter's
recursion limit, and a dependency of the SDK (py_ecc, imported by eth_account) raises that limit
to 100,000 at import: a body of 100,000 `[` then overflows the C stack and kills the process
instead of raising. So every JSON text the SDK or the devnet receives — HTTP bodies, headers,
JSON-RPC replies, strings read from chain — is parsed here, refused beyond `MAX_DEPTH` levels
before the decoder sees it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_DEPTH", "JSONNestingError", "loads", "response_json", "too_deep"]

#: Deepest nesting accepted (objects and arrays). Real requests — chat messages with tool
#: schemas, JSON-RPC, x402 headers — stay far below it.
MAX_DEPTH = 128

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class JSONNestingError(json.JSONDecodeError):
    """A JSON document nested deeper than `MAX_DEPTH`: a decode error, so handlers of malformed
    JSON handle it too."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "", 0)
        self.msg = message

    def __str__(self) -> str:
        return self.msg


def too_deep(data: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether `data` opens more than `max_depth` arrays/objects at once (brackets inside strings
    do not count). Linear in the size, and free for documents with few brackets."""
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b"", data)):
        depth += 1 if bracket in (b"[", b"{") else -1
        if depth > max_depth:
            return True
    return False


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing documents nested deeper than `max_depth` with `JSONNestingError`."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if too_deep(raw, max_depth):
        raise JSONNestingError(f"the JSON document is nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except RecursionError:  # only reachable with a max_depth above the interpreter's limit
        raise JSONNestingError("the JSON document is nested too deeply to parse") from None


def response_json(response: httpx.Response, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON body of an httpx response, parsed with the nesting bound (raises ValueError)."""
    return loads(response.content, max_depth=max_depth)
