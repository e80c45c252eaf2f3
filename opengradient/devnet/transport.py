"""Reach an ASGI app from sync and async httpx clients without a socket.

The app runs on one private event-loop thread, so sync callers (which have no loop) and async
callers (on any loop) talk to the same app instance, and responses stream chunk by chunk — an
SSE stream arrives as it is produced, unlike `httpx.ASGITransport`, which buffers whole bodies.

The client's read timeout holds as over a socket: waiting longer than it for the response's head
or for its next chunk raises `httpx.ReadTimeout`. A client that gives up (a timeout, or closing a
response before its end) disconnects: the app's `receive()` then says `http.disconnect`, as a
server's would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from concurrent.futures import Future
from typing import Any, TypeVar

import httpx

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]
T = TypeVar("T")
_END = object()


class _Exchange:
    """One request's response as it is produced on the app's loop."""

    def __init__(self) -> None:
        self.head: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future())
        self.chunks: asyncio.Queue[Any] = asyncio.Queue()
        self.disconnected = asyncio.Event()  # the client gave up: `receive()` says so
        self.task: asyncio.Task[None] | None = None  # keeps the app task referenced


RawHandler = Callable[[bytes], bytes]


class ASGIBridge:
    """Runs `app` on a daemon loop thread and offers httpx transports into it.

    `direct` maps POST paths to plain `bytes -> bytes` handlers (the chains' JSON-RPC) that are
    called straight from the caller's thread: the same handler the app serves, without two
    thread hops per call.
    """

    def __init__(self, app: ASGIApp, *, direct: dict[str, RawHandler] | None = None) -> None:
        self.app = app
        self.direct = dict(direct or {})
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="og-devnet-asgi",
                                        daemon=True)
        self._thread.start()
        self.transport = _SyncTransport(self)
        self.async_transport = _AsyncTransport(self)

    def submit(self, coro: Awaitable[T]) -> Future[T]:
        """Schedule a coroutine on the app's loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the loop thread."""
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()

    async def start_exchange(self, request: httpx.Request, body: bytes) -> _Exchange:
        """Start the app on one request; the caller then reads head and chunks."""
        exchange = _Exchange()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 0),
            "server": (request.url.host, request.url.port or 80),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await exchange.disconnected.wait()
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                exchange.head.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await exchange.chunks.put(bytes(message["body"]))
                if not message.get("more_body", False):
                    await exchange.chunks.put(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:  # surface app crashes to the caller instead of hanging
                if not exchange.head.done():
                    exchange.head.set_exception(exc)
                else:
                    await exchange.chunks.put(exc)
            else:
                if not exchange.head.done():
                    exchange.head.set_exception(RuntimeError("ASGI app sent no response"))
            await exchange.chunks.put(_END)

        exchange.task = asyncio.get_running_loop().create_task(run())
        return exchange

    def disconnect(self, exchange: _Exchange) -> None:
        """Tell the app the client left (thread-safe)."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(exchange.disconnected.set)

    def wait(self, exchange: _Exchange, coro: Awaitable[T], timeout: float | None, request: httpx.Request) -> T:
        """Block on `coro` for at most `timeout` seconds; past it the client disconnects and
        `httpx.ReadTimeout` is raised, as from a socket."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            self.disconnect(exchange)
            raise httpx.ReadTimeout(f"the devnet did not answer within {timeout} s", request=request) from None

    async def await_(self, exchange: _Exchange, coro: Awaitable[T], timeout: float | None,
                     request: httpx.Request) -> T:
        """Async twin of `wait`."""
        future = asyncio.wrap_future(self.submit(coro))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.disconnect(exchange)
            raise httpx.ReadTimeout(f"the devnet did not answer within {timeout} s", request=request) from None


def _read_timeout(request: httpx.Request) -> float | None:
    """The read timeout the client set for `request` (None: wait as long as it takes)."""
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if value is not None else None


def _chunk_or_raise(item: Any) -> bytes | None:
    if item is _END:
        return None
    if isinstance(item, BaseException):
        raise httpx.ReadError(f"devnet app failed mid-response: {item}") from item
    return bytes(item)


class _SyncStream(httpx.SyncByteStream):
    def __init__(self, bridge: ASGIBridge, exchange: _Exchange, request: httpx.Request) -> None:
        self._bridge, self._exchange, self._request = bridge, exchange, request
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        timeout = _read_timeout(self._request)
        while True:
            item = self._bridge.wait(self._exchange, self._exchange.chunks.get(), timeout, self._request)
            chunk = _chunk_or_raise(item)
            if chunk is None:
                self._ended = True
                return
            yield chunk

    def close(self) -> None:
        if not self._ended:  # closed before the end: the client left
            self._bridge.disconnect(self._exchange)


class _AsyncStream(httpx.AsyncByteStream):
    def __init__(self, bridge: ASGIBridge, exchange: _Exchange, request: httpx.Request) -> None:
        self._bridge, self._exchange, self._request = bridge, exchange, request
        self._ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        timeout = _read_timeout(self._request)
        while True:
            item = await self._bridge.await_(self._exchange, self._exchange.chunks.get(), timeout, self._request)
            chunk = _chunk_or_raise(item)
            if chunk is None:
                self._ended = True
                return
            yield chunk

    async def aclose(self) -> None:
        if not self._ended:
            self._bridge.disconnect(self._exchange)


async def _head(exchange: _Exchange) -> tuple[int, list[tuple[bytes, bytes]]]:
    return await asyncio.shield(exchange.head)  # a client's timeout must not cancel the app's answer


class _SyncTransport(httpx.BaseTransport):
    def __init__(self, bridge: ASGIBridge) -> None:
        self._bridge = bridge

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        handler = self._bridge.direct.get(request.url.path) if request.method == "POST" else None
        if handler is not None:
            return httpx.Response(200, headers={"content-type": "application/json"}, content=handler(body))
        exchange = self._bridge.submit(self._bridge.start_exchange(request, body)).result()
        status, headers = self._bridge.wait(exchange, _head(exchange), _read_timeout(request), request)
        return httpx.Response(status, headers=headers, stream=_SyncStream(self._bridge, exchange, request))


class _AsyncTransport(httpx.AsyncBaseTransport):
    def __init__(self, bridge: ASGIBridge) -> None:
        self._bridge = bridge

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        handler = self._bridge.direct.get(request.url.path) if request.method == "POST" else None
        if handler is not None:
            content = await asyncio.to_thread(handler, body)
            return httpx.Response(200, headers={"content-type": "application/json"}, content=content)
        exchange = await asyncio.wrap_future(
            self._bridge.submit(self._bridge.start_exchange(request, body)))
        status, headers = await self._bridge.await_(exchange, _head(exchange), _read_timeout(request), request)
        return httpx.Response(status, headers=headers, stream=_AsyncStream(self._bridge, exchange, request))
