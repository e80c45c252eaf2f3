"""A loopback HTTP/1.1 proxy that cuts connections at a chosen stage of a request.

It runs an asyncio server on its own thread (the SDK's sync calls block the test's thread), relays
one request per connection (it asks both sides for `Connection: close`, so nothing depends on
keep-alive state) and applies the first matching `Rule` to each request:

- `PASS`: relay both ways.
- `DROP_REQUEST`: read the request and close the client's connection; nothing reaches the server.
- `DROP_AFTER_FORWARD`: forward the request, close the client's connection before any response byte,
  and keep reading the server's answer in the background (the server runs the request to the end:
  for a paid request, the payment is verified and settled).
- `DROP_RESPONSE`: forward, read the server's whole answer, and close the client's connection
  without relaying any of it.
- `CUT_AFTER`: relay the response head and the first `cut_bytes` bytes of its body (raw, chunk
  framing included), then close both connections (the server sees its client leave).
- `STALL_AFTER`: like `CUT_AFTER`, but then keep both connections open and silent until the proxy
  stops (a server that hangs mid-stream, for read timeouts).
- `HOLD`: read the request and never answer until the proxy stops (a black hole, for timeouts).

Every request is recorded (method, path, headers, body, the action applied), so a test can check
what the SDK sent on each attempt. Loopback only; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

PASS = "pass"
DROP_REQUEST = "drop_request"
DROP_AFTER_FORWARD = "drop_after_forward"
DROP_RESPONSE = "drop_response"
CUT_AFTER = "cut_after"
STALL_AFTER = "stall_after"
HOLD = "hold"

#: No single read or write of the proxy waits longer than this.
IO_TIMEOUT = 30.0
_MAX_HEAD = 64 * 1024


@dataclass
class ProxiedRequest:
    """One request as it reached the proxy."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    action: str = PASS
    #: Bytes of the response body relayed to the client (raw, chunk framing included).
    response_bytes: int = 0

    @property
    def rpc_method(self) -> str | None:
        """The JSON-RPC method of the body, when it is a JSON-RPC call."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data.get("method") if isinstance(data, dict) else None

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive name)."""
        return self.headers.get(name.lower())


@dataclass
class Rule:
    """Apply `action` to the first `times` requests `match` accepts (every one when None)."""

    match: Callable[[ProxiedRequest], bool]
    action: str
    times: int | None = 1
    cut_bytes: int = 0
    applied: int = 0

    def take(self, request: ProxiedRequest) -> bool:
        if self.times is not None and self.applied >= self.times:
            return False
        if not self.match(request):
            return False
        self.applied += 1
        return True


def on_path(path: str, *, paid: bool | None = None) -> Callable[[ProxiedRequest], bool]:
    """Requests to `path`; with `paid`, only those that carry (or lack) a payment header."""
    def match(request: ProxiedRequest) -> bool:
        if request.path.split("?")[0] != path:
            return False
        return paid is None or (request.header("payment-signature") is not None) == paid
    return match


def on_rpc(method: str) -> Callable[[ProxiedRequest], bool]:
    """JSON-RPC requests calling `method`."""
    return lambda request: request.rpc_method == method


@dataclass
class FaultProxy:
    """The proxy in front of `upstream_host:upstream_port`. Use as a context manager."""

    upstream_host: str
    upstream_port: int
    rules: list[Rule] = field(default_factory=list)
    requests: list[ProxiedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- control, from the test's thread -------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if not self._loop.is_running():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, match: Callable[[ProxiedRequest], bool], action: str, *, times: int | None = 1,
            cut_bytes: int = 0) -> Rule:
        """Add a rule (rules are tried in the order they were added)."""
        rule = Rule(match, action, times, cut_bytes)
        with self._lock:
            self.rules.append(rule)
        return rule

    def reset(self) -> None:
        """Forget the rules and the recorded requests."""
        with self._lock:
            self.rules.clear()
            self.requests.clear()

    def seen(self, match: Callable[[ProxiedRequest], bool] | None = None) -> list[ProxiedRequest]:
        """The recorded requests (that `match` accepts)."""
        with self._lock:
            return [r for r in self.requests if match is None or match(r)]

    def drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until every connection the proxy handles has finished."""
        async def wait() -> None:
            pending = [t for t in self._tasks if not t.done() and t is not asyncio.current_task()]
            if pending:
                await asyncio.wait(pending, timeout=timeout)
        asyncio.run_coroutine_threadsafe(wait(), self._loop).result(timeout=timeout + 5)

    # ---- the server, on the proxy's loop ----------------------------------------------------------

    async def _start(self) -> None:
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._stopping is not None
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            await _close(writer)

    def _choose(self, request: ProxiedRequest) -> Rule | None:
        with self._lock:
            self.requests.append(request)
            for rule in self.rules:
                if rule.take(request):
                    request.action = rule.action
                    return rule
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
        if len(head) > _MAX_HEAD:
            return
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        lower = {k.lower(): v for k, v in headers}
        if lower.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
            headers.append(("Content-Length", str(len(body))))
        else:
            body = await asyncio.wait_for(reader.readexactly(int(lower.get("content-length", "0"))), IO_TIMEOUT)
        request = ProxiedRequest(method, target, lower, body)
        rule = self._choose(request)
        action = rule.action if rule is not None else PASS

        if action == DROP_REQUEST:
            return
        if action == HOLD:
            await self._hold()
            return

        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(self.upstream_host, self.upstream_port), IO_TIMEOUT)
        try:
            out = [f"{method} {target} HTTP/1.1"]
            out += [f"{k}: {v}" for k, v in headers if k.lower() not in ("connection", "keep-alive")]
            out.append("Connection: close")
            up_writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
            await asyncio.wait_for(up_writer.drain(), IO_TIMEOUT)

            if action == DROP_AFTER_FORWARD:
                await _close(writer)  # the client sees the connection end before any response byte
                await _read_to_end(up_reader)  # the server finishes undisturbed
                return

            response_head = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
            if action == DROP_RESPONSE:
                await _read_to_end(up_reader)  # the server answered in full; the client gets nothing
                return
            writer.write(_with_connection_close(response_head))
            budget = rule.cut_bytes if rule is not None and action in (CUT_AFTER, STALL_AFTER) else None
            for _ in range(1_000_000):  # bounded: at most this many reads, each within IO_TIMEOUT
                want = 65536 if budget is None else min(65536, budget)
                if want == 0:
                    await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
                    if action == STALL_AFTER:
                        await self._hold()
                    return  # cut: both connections close in `finally`
                chunk = await asyncio.wait_for(up_reader.read(want), IO_TIMEOUT)
                if not chunk:
                    break
                writer.write(chunk)
                request.response_bytes += len(chunk)
                await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
                if budget is not None:
                    budget -= len(chunk)
        finally:
            await _close(up_writer)

    async def _hold(self) -> None:
        """Stay silent until the proxy stops (bounded)."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), 120)


def _with_connection_close(head: bytes) -> bytes:
    lines = head[:-4].split(b"\r\n")
    kept = [lines[0]] + [line for line in lines[1:]
                         if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n"


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    for _ in range(1_000_000):
        size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), IO_TIMEOUT)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            await asyncio.wait_for(reader.readuntil(b"\r\n"), IO_TIMEOUT)
            return bytes(body)
        body += await asyncio.wait_for(reader.readexactly(size + 2), IO_TIMEOUT)
        del body[-2:]
    raise ValueError("too many chunks")


async def _read_to_end(reader: asyncio.StreamReader) -> None:
    for _ in range(1_000_000):
        if not await asyncio.wait_for(reader.read(65536), IO_TIMEOUT):
            return


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)


def proxy_for(url: str) -> FaultProxy:
    """A proxy (not started) in front of the host and port of `url`."""
    import httpx

    parsed = httpx.URL(url)
    assert parsed.host in ("127.0.0.1", "localhost", "::1"), "the proxy only relays to loopback"
    return FaultProxy(parsed.host, parsed.port or 80)


__all__ = ["CUT_AFTER", "DROP_AFTER_FORWARD", "DROP_REQUEST", "DROP_RESPONSE", "HOLD", "PASS", "STALL_AFTER",
           "FaultProxy", "ProxiedRequest", "Rule", "on_path", "on_rpc", "proxy_for"]
