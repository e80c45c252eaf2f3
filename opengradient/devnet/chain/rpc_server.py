"""Serve a :class:`DevChain` over HTTP JSON-RPC on loopback with the standard library.

No web framework: the chain handler already speaks JSON bytes, so the stdlib server is the
shortest path. Two details matter for latency: Nagle's algorithm is off (44 ms → ~3 ms per call)
and connections are kept alive (HTTP/1.1), so pooled clients skip the TCP handshake.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opengradient.devnet.chain.evm import DevChain

__all__ = ["RpcServer"]

log = logging.getLogger("opengradient.devnet.rpc")

MAX_BODY_BYTES = 64 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    """POST / → chain.rpc_bytes; GET / → a small status document for readiness probes."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:  # noqa: N802 (stdlib naming)
        try:
            body = self._read_body()
        except ValueError:
            self._send(400, b'{"error":"bad request body"}')
            return
        if body is None:
            self.close_connection = True
            self._send(413, b'{"error":"request body too large"}')
            return
        response = self.server.chain.rpc_bytes(body)
        self._send(200, response)

    def do_GET(self) -> None:  # noqa: N802
        chain = self.server.chain
        status = {"name": chain.name, "chainId": chain.chain_id, "jsonrpc": "POST /"}
        self._send(200, json.dumps(status).encode())

    def do_OPTIONS(self) -> None:  # noqa: N802 (CORS preflight for browser dapps)
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections would otherwise hold close() open

    def __init__(self, address: tuple[str, int], chain: DevChain) -> None:
        self.chain = chain
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-response is routine; log it instead of printing a traceback."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def drop_connections(self) -> None:
        with self._connections_lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class RpcServer:
    """A DevChain on http://127.0.0.1:<port>, served from a daemon thread until close()."""

    def __init__(self, chain: DevChain, host: str = "127.0.0.1", port: int = 0) -> None:
        self.chain = chain
        self._server = _Server((host, port), chain)
        bound_host, bound_port = self._server.server_address[:2]
        shown = bound_host if isinstance(bound_host, str) else bound_host.decode()
        if ":" in shown:
            shown = f"[{shown}]"
        self.host = shown
        self.port = int(bound_port)
        self.url = f"http://{shown}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"og-devnet-rpc-{chain.name}",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    def close(self) -> None:
        """Stop serving, drop open keep-alive connections, release the port."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.drop_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RpcServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RpcServer({self.chain.name!r}, url={self.url!r})"
