"""Request-body limits of the devnet's routes, enforced before any route reads a byte.

A body larger than its route's limit is answered 413 with the limit in the message — before the
gateway prices, verifies or settles anything, before the hub signs anyone in, before a chain
parses JSON-RPC. Bodies that declare their length are refused from the header alone. Bodies sent
without a length (chunked) are read up to the limit and refused past it; on the one streamed
route (hub file uploads) they are counted as they stream and cut off past the limit.

`GET /` reports the table (`limits`), so a client can see what it may send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimits", "RouteLimit", "DEFAULT_LIMITS", "BodyTooLargeError", "limits_table"]

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class RouteLimit:
    """The largest body accepted on paths matching `route` (a regular expression matched at the
    start of the path; `streamed`: counted as it arrives, not buffered)."""

    route: str
    max_bytes: int
    streamed: bool = False
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(self.route))

    def matches(self, path: str) -> bool:
        """Whether this limit applies to `path`."""
        return self._pattern.match(path) is not None


#: The first route that matches applies; the last entry is the default for every other path.
DEFAULT_LIMITS: tuple[RouteLimit, ...] = (
    RouteLimit("/v1/", 8 * MIB),  # chat and completions: room for a few inline images
    RouteLimit("/facilitator/", 64 * KIB),
    RouteLimit("/auth/v1/", 16 * KIB),
    RouteLimit("/twins/", 1 * MIB),
    RouteLimit("/rpc/", 16 * MIB),  # contract deployments
    RouteLimit(r"/api/v0/models/[^/]+/versions/[^/]+/files/?$", 1024 * MIB, streamed=True),  # uploads
    RouteLimit("/", 64 * KIB),  # hub metadata and everything else
)


def limits_table(limits: tuple[RouteLimit, ...] = DEFAULT_LIMITS) -> dict[str, int]:
    """Route pattern → largest body in bytes, as `GET /` reports it."""
    return {limit.route: limit.max_bytes for limit in limits}


class BodyTooLargeError(HTTPException):
    """Raised into a streamed route's body reader when the body passes its limit."""

    def __init__(self, limit: RouteLimit, method: str, path: str) -> None:
        super().__init__(413, _message(limit, method, path))


def _message(limit: RouteLimit, method: str, path: str, size: int | None = None) -> str:
    got = f"of {size} bytes " if size is not None else ""
    return (f"the request body {got}is larger than the {_human(limit.max_bytes)} ({limit.max_bytes} bytes) "
            f"this devnet accepts for {method} {path}; nothing was charged")


def _human(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // KIB} KiB"


def _too_large(message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "request_too_large", "code": 413}}, 413,
                        headers={"Connection": "close"})


class BodyLimits:
    """ASGI middleware applying `limits` (first matching prefix wins) to every HTTP request."""

    def __init__(self, app: ASGIApp, limits: tuple[RouteLimit, ...] = DEFAULT_LIMITS) -> None:
        self.app = app
        self.limits = limits

    def limit_for(self, path: str) -> RouteLimit:
        """The limit that applies to `path` (the last one when none matches)."""
        return next((limit for limit in self.limits if limit.matches(path)), self.limits[-1])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        limit = self.limit_for(path)
        declared = _content_length(scope)
        if declared is not None and declared > limit.max_bytes:
            await _too_large(_message(limit, method, path, declared))(scope, receive, send)
            return
        if declared is not None and not limit.streamed:  # the server holds the client to its length
            await self.app(scope, receive, send)
            return
        if limit.streamed:
            await self.app(scope, _counting(receive, limit, method, path), send)
            return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit.max_bytes:
                await _too_large(_message(limit, method, path))(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _counting(receive: Receive, limit: RouteLimit, method: str, path: str) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit.max_bytes:
                raise BodyTooLargeError(limit, method, path)
        return message

    return counted
