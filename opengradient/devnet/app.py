"""The devnet's HTTP surface: one ASGI app serving every service under one base URL.

Routes: `POST /rpc/alpha` and `POST /rpc/payments` (Ethereum JSON-RPC), `/api/v0/…` (Model Hub),
`/auth/v1/…` (sign-in), `GET /artela-network/artela-rollkit/inference/tx/{id}` (inference
results), the LLM gateway (`/v1/chat/completions`, `/v1/completions`, `/signing-key`,
`/enclave/attestation`, `/facilitator/…`), the twins API (`/twins/api/v1/…`), ZKML proofs and
keys (`GET /zkml/proof/{inference_id}`, `GET /zkml/vk/{model_cid}`), `GET /` (what is running).
Every request body is held to its route's size limit first (`opengradient.devnet.services.limits`).
The same app is served by uvicorn over HTTP and reached in-process through `ASGIBridge`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opengradient.devnet.services.http_errors import JSON_ERRORS
from opengradient.devnet.services.limits import BodyLimits

if TYPE_CHECKING:
    from opengradient.devnet.chain.evm import DevChain
    from opengradient.devnet.chain.precompiles.inference import InferencePrecompile
    from opengradient.devnet.services.hub import HubService
    from opengradient.devnet.services.llm.gateway import LLMGateway
    from opengradient.devnet.services.llm.relay import OhttpRelay
    from opengradient.devnet.services.twins import TwinsService
    from opengradient.devnet.services.zkml.service import ZkmlService

log = logging.getLogger("opengradient.devnet")


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)


def _rpc_endpoint(chain: DevChain) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        body = await request.body()
        result = await run_in_threadpool(chain.rpc_bytes, body)
        return Response(result, media_type="application/json")

    return endpoint


#: The request log: one line per HTTP call (`opengradient devnet up` shows it unless `-q`).
access_log = logging.getLogger("opengradient.devnet.access")
_RPC_BODY_PEEK = 64 * 1024  # JSON-RPC method names are read from bodies up to this size


class AccessLog:
    """Pure-ASGI access log (keeps streaming responses streaming, unlike BaseHTTPMiddleware): method,
    path, status, time, and for JSON-RPC the called methods, as anvil prints them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        body = bytearray()
        peek = scope["path"].startswith("/rpc/")

        async def receive_and_note() -> Message:
            message = await receive()
            if peek and message["type"] == "http.request" and len(body) < _RPC_BODY_PEEK:
                body.extend(message.get("body", b"")[: _RPC_BODY_PEEK - len(body)])
            return message

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_and_note if peek else receive, send_and_note)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("%s %s -> %d (%.1f ms)%s", scope["method"], scope["path"], status,
                                (time.perf_counter() - started) * 1000, _rpc_methods(bytes(body)))


def _rpc_methods(body: bytes) -> str:
    """` eth_call, eth_getBalance` for a JSON-RPC body (empty when there is none to name)."""
    if not body:
        return ""
    try:
        request = json.loads(body)
    except ValueError:
        return ""
    items = request if isinstance(request, list) else [request]
    names = [str(item.get("method")) for item in items if isinstance(item, dict)]
    return (" " + ", ".join(names[:8]) + (" …" if len(names) > 8 else "")) if names else ""


def build_app(*, alpha: DevChain, payments: DevChain, hub: HubService,
              precompile: InferencePrecompile, info: Callable[[], dict[str, Any]],
              llm: LLMGateway | None = None, twins: TwinsService | None = None,
              zkml: ZkmlService | None = None, relay: OhttpRelay | None = None) -> ASGIApp:
    """Compose the devnet's services into one app."""

    async def inference_result(request: Request) -> Response:
        document = precompile.result(request.path_params["inference_id"])
        if document is None:
            return _error(404, f"no inference with id {request.path_params['inference_id']}",
                          "not_found")
        return JSONResponse(document)

    async def index(request: Request) -> Response:
        return JSONResponse(info())

    async def zkml_proof(request: Request) -> Response:
        inference_id = request.path_params["inference_id"]
        document = None if zkml is None else await run_in_threadpool(zkml.proof_document, inference_id)
        if document is None:
            return _error(404, f"no ZKML proof for inference {inference_id}", "not_found")
        return JSONResponse(document)

    async def zkml_key(request: Request) -> Response:
        model_cid = request.path_params["model_cid"]
        document = None if zkml is None else await run_in_threadpool(zkml.key_document, model_cid)
        if document is None:
            return _error(404, f"no ZKML circuit for model {model_cid}: it has not run in ZKML mode on "
                               "this devnet", "not_found")
        return JSONResponse(document)

    app = Starlette(exception_handlers=JSON_ERRORS, routes=[
        Route("/", index, methods=["GET"]),
        Route("/rpc/alpha", _rpc_endpoint(alpha), methods=["POST"]),
        Route("/rpc/payments", _rpc_endpoint(payments), methods=["POST"]),
        Route("/artela-network/artela-rollkit/inference/tx/{inference_id}", inference_result,
              methods=["GET"]),
        Route("/zkml/proof/{inference_id}", zkml_proof, methods=["GET"]),
        Route("/zkml/vk/{model_cid}", zkml_key, methods=["GET"]),
        *(llm.routes() if llm is not None else []),
        *(twins.routes() if twins is not None else []),
        *(relay.routes() if relay is not None else []),
        Mount("/api/v0", hub.hub_app()),
        Mount("/auth/v1", hub.auth_app()),
    ])
    return AccessLog(BodyLimits(app))
