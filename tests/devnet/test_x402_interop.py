"""Interoperability with the official `x402` package, both ways, over real HTTP.

(a) x402's own httpx client pays the devnet gateway end to end.
(b) A resource server built from x402's own server side (`x402ResourceServer` +
    `x402HTTPResourceServer`, with x402's `HTTPFacilitatorClient`) uses the devnet's facilitator
    over HTTP (`/facilitator/*`); x402's client pays it and the payment settles on the devnet chain.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from x402 import x402Client, x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.clients import x402_httpx_transport, x402HttpxClient
from x402.http.types import HTTPRequestContext, PaymentOption, RouteConfig
from x402.http.x402_http_server import x402HTTPResourceServer
from x402.mechanisms.evm.exact.register import register_exact_evm_client, register_exact_evm_server
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import AssetAmount

from opengradient.client.tee import (
    TeeAttestation,
    TeeKey,
    canonical_chat_request,
    output_hash,
    request_hash,
    verify_tee_signature,
)
from opengradient.devnet.chain.deploy import Deployer
from opengradient.devnet.node import Devnet


def _x402_client(net: Devnet, index: int) -> x402Client:
    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(net.accounts[index].private_key)))
    client.set_spend_controls({"allowed_assets": [{
        "network": net.network.payments.network, "asset": net.network.payments.token_address,
        "max_amount_per_payment": str(10**18)}]})
    return client


def _balance(net: Devnet, address: str) -> int:
    return int(Deployer(net.payments_chain, net.accounts[0]).call(
        net.network.payments.token_address, "OPGToken", "balanceOf", address))


def _receipt(response: httpx.Response) -> dict[str, Any]:
    return json.loads(base64.b64decode(response.headers["PAYMENT-RESPONSE"]))


def _tx_receipt(net: Devnet, tx_hash: str) -> dict[str, Any]:
    response = net.payments_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt",
                                       "params": [tx_hash]})
    assert isinstance(response, dict)
    return response["result"]


async def test_official_httpx_client_pays_the_gateway(devnet_http: Devnet) -> None:
    net = devnet_http
    payer = net.accounts[1].address
    before = _balance(net, payer)
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hello over HTTP"}],
            "max_tokens": 64}
    async with x402HttpxClient(_x402_client(net, 1), base_url=net.url, timeout=30) as http:
        response = await http.post("/v1/chat/completions", json=body,
                                   headers={"X-SETTLEMENT-TYPE": "settle-metadata"})
    assert response.status_code == 200, response.text
    receipt = _receipt(response)
    assert receipt["success"] is True and to_checksum_address(receipt["payer"]) == payer
    assert _balance(net, payer) == before - int(receipt["amount"])
    assert _tx_receipt(net, receipt["transaction"])["status"] == "0x1"
    data = response.json()
    key = TeeKey.from_pem(httpx.get(f"{net.url}/signing-key").json()["public_key"])
    verify_tee_signature(TeeAttestation.from_fields(data), key=key,
                         expected_request_hash=request_hash(canonical_chat_request(body)),
                         expected_output_hash=output_hash(data["choices"][0]["message"]["content"]))


async def test_official_httpx_client_pays_a_stream(devnet_http: Devnet) -> None:
    net = devnet_http
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Stream over HTTP"}],
            "max_tokens": 32, "stream": True}
    async with x402HttpxClient(_x402_client(net, 2), base_url=net.url, timeout=30) as http:
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            assert _receipt(response)["success"] is True
            lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert "tee_signature" in json.loads(lines[-2][len("data: "):])


class _StarletteAdapter:
    """x402's `HTTPAdapter` protocol for a Starlette request (x402 ships FastAPI's only)."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def get_header(self, name: str) -> str | None:
        return self._request.headers.get(name)

    def get_method(self) -> str:
        return self._request.method

    def get_path(self) -> str:
        return self._request.url.path

    def get_url(self) -> str:
        return str(self._request.url)

    def get_accept_header(self) -> str:
        return self._request.headers.get("accept", "")

    def get_user_agent(self) -> str:
        return self._request.headers.get("user-agent", "")

    def get_query_params(self) -> dict[str, str | list[str]]:
        return dict(self._request.query_params)

    def get_query_param(self, name: str) -> str | None:
        return self._request.query_params.get(name)

    def get_body(self) -> Any:
        return None


@pytest.fixture
async def x402_protected_app(devnet_http: Devnet) -> AsyncIterator[tuple[Starlette, str, int]]:
    """A Starlette app whose `GET /weather` costs 1234 OPG units, settled by our facilitator."""
    net = devnet_http
    facilitator = HTTPFacilitatorClient(FacilitatorConfig(url=f"{net.url}/facilitator", timeout=30))
    server = x402ResourceServer(facilitator)
    register_exact_evm_server(server, net.network.payments.network)
    pay_to, price = net.accounts[7].address, 1234
    routes: dict[str, Any] = {"GET /weather": RouteConfig(
        accepts=PaymentOption(scheme="exact", pay_to=pay_to, network=net.network.payments.network,
                              price=AssetAmount(amount=str(price), asset=net.network.payments.token_address,
                                                extra={"name": "OPG", "version": "2"}),
                              max_timeout_seconds=300),
        description="Today's weather")}
    http_server = x402HTTPResourceServer(server, routes)
    http_server.initialize()  # GET /facilitator/supported

    async def weather(request: Request) -> Response:
        adapter = _StarletteAdapter(request)
        context = HTTPRequestContext(adapter=adapter, path=request.url.path, method=request.method,
                                     payment_header=adapter.get_header("payment-signature"))
        result = await http_server.process_http_request(context)
        if result.type != "payment-verified":
            assert result.response is not None
            return JSONResponse(result.response.body or {}, result.response.status,
                                headers=result.response.headers)
        assert result.payment_payload is not None and result.payment_requirements is not None
        settled = await http_server.process_settlement(result.payment_payload,
                                                       result.payment_requirements, context=context)
        if not settled.success:
            assert settled.response is not None
            return JSONResponse(settled.response.body or {}, settled.response.status,
                                headers=settled.response.headers)
        return JSONResponse({"weather": "sunny"}, headers=settled.headers)

    yield Starlette(routes=[Route("/weather", weather)]), pay_to, price
    await facilitator.aclose()


async def test_x402_resource_server_settles_through_our_facilitator(
        devnet_http: Devnet, x402_protected_app: tuple[Starlette, str, int]) -> None:
    net = devnet_http
    app, pay_to, price = x402_protected_app
    payer = net.accounts[6].address
    before, before_to = _balance(net, payer), _balance(net, pay_to)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop") as plain:
        unpaid = await plain.get("/weather")
    assert unpaid.status_code == 402 and "payment-required" in unpaid.headers

    transport = x402_httpx_transport(_x402_client(net, 6), httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
        response = await http.get("/weather")
    assert response.status_code == 200, response.text
    assert response.json() == {"weather": "sunny"}
    receipt = _receipt(response)
    assert receipt["success"] is True and receipt["network"] == net.network.payments.network
    tx = _tx_receipt(net, receipt["transaction"])
    assert tx["status"] == "0x1"
    assert to_checksum_address(tx["from"]) == net.gateway.facilitator.address
    assert _balance(net, payer) == before - price
    assert _balance(net, pay_to) == before_to + price
