"""The devnet's Oblivious HTTP relay: it pays for confidential chat and forwards what it cannot read.

`POST /api/v1/chat/ohttp` takes a sealed request (`message/ohttp-req`) from a caller holding the
relay's API key (`Authorization: Bearer <key>`, or `X-API-Key`), and the enclave it is sealed to
(`X-TEE-ID`, a registered tee id). The relay forwards the bytes to that enclave's OHTTP route;
when the enclave answers 402 (the price of the request it opened — the only thing the relay
learns of it), the relay pays with its own x402 account and forwards them again. The sealed
answer goes back unread, streamed as it comes for `X-OHTTP-Stream: true`.

It never holds a key that opens a request or an answer: it has none. `seen` keeps, for tests, the
bytes it forwarded and received, to show they are ciphertext.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from opengradient.client.payments import PAYMENT_SIGNATURE, Payer, payment_required_of
from opengradient.errors import OpenGradientError

if TYPE_CHECKING:
    from opengradient.client.wallet import Wallet
    from opengradient.networks import PaymentNetwork

__all__ = ["ENCLAVE_OHTTP_PATH", "OhttpRelay", "RELAY_PATH"]

log = logging.getLogger("opengradient.devnet.relay")

RELAY_PATH = "/api/v1/chat/ohttp"
#: The enclave's route for sealed chat (inside the devnet: the relay reaches it directly).
ENCLAVE_OHTTP_PATH = "/v1/ohttp/chat"
_FORWARDED = ("content-type", "accept", "x-ohttp-stream")
_KEEP_SEEN = 64

#: Calls the enclave's route with (headers, sealed body, the enclave's authority) and returns its
#: Starlette response (the gateway's handler, reached in-process).
EnclaveCall = Callable[[dict[str, str], bytes, str], Any]


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)


class OhttpRelay:
    """The relay: `api_key` authenticates callers; `wallet` pays enclaves on `payments`."""

    def __init__(self, *, wallet: Wallet, payments: PaymentNetwork, enclave_call: EnclaveCall,
                 authority_of: Callable[[str], str | None], api_key: str | None = None) -> None:
        self.api_key = api_key or "devnet-relay-" + secrets.token_hex(8)
        self._payer = Payer(wallet, payments)
        self._call = enclave_call
        self._authority_of = authority_of
        #: (direction, bytes) of what crossed the relay, newest last (for tests).
        self.seen: list[tuple[str, bytes]] = []

    def routes(self) -> list[Route]:
        """The relay's route, for the devnet app."""
        return [Route(RELAY_PATH, self._relay, methods=["POST"])]

    def info(self) -> dict[str, Any]:
        """What `GET /` reports: where the relay is and the key it takes (a development key)."""
        return {"path": RELAY_PATH, "api_key": self.api_key}

    def _note(self, direction: str, data: bytes) -> None:
        self.seen.append((direction, bytes(data)))
        del self.seen[:-_KEEP_SEEN]

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key", "")
        return bool(given) and secrets.compare_digest(given, self.api_key)

    async def _relay(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, "the relay needs its API key: 'Authorization: Bearer <key>' (see GET / → relay)",
                          "authentication_error")
        if request.headers.get("content-type", "").split(";")[0].strip() != "message/ohttp-req":
            return _error(415, "the relay forwards sealed requests only (Content-Type: message/ohttp-req)",
                          "invalid_request_error")
        tee_id = request.headers.get("x-tee-id", "").strip().lower()
        authority = self._authority_of(tee_id) if tee_id else None
        if authority is None:
            return _error(404, f"no registered enclave {tee_id or '(X-TEE-ID missing)'}", "not_found")
        sealed = await request.body()
        self._note("request", sealed)
        headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
        response = await self._call(headers, sealed, authority)
        if response.status_code == 402:  # the enclave priced what it opened: pay, forward again
            try:
                payment = self._payer.sign(payment_required_of(_as_httpx(response)))
            except OpenGradientError as exc:
                log.warning("the relay could not pay enclave %s: %s", tee_id[:12], exc.message)
                return _error(502, f"the relay could not pay the enclave: {exc.message}", "payment_failed")
            response = await self._call({**headers, PAYMENT_SIGNATURE: payment.header}, sealed, authority)
        if response.status_code == 402:
            return _error(502, "the enclave refused the relay's payment", "payment_failed")
        kept = {k: v for k, v in response.headers.items() if k.lower() in ("content-type", "cache-control")}
        if isinstance(response, StreamingResponse):
            return StreamingResponse(self._passthrough(response), response.status_code, headers=kept)
        body = bytes(response.body)
        self._note("response", body)
        return Response(body, response.status_code, headers=kept)

    async def _passthrough(self, response: StreamingResponse) -> Any:
        async for piece in response.body_iterator:
            data = piece.encode() if isinstance(piece, str) else bytes(piece)
            self._note("response", data)
            yield data


def _as_httpx(response: Response) -> Any:
    """The enclave's 402 as an httpx response (what the SDK's offer parser reads)."""
    import httpx

    return httpx.Response(response.status_code, headers=dict(response.headers), content=bytes(response.body))
