"""Payers for the upto and money tests: fresh funded accounts, x402 upto payloads, chain reads.

Every payer is a fresh account (funded by dev account 0, approved Permit2 as needed), so balances
and allowances are its test's alone. Nothing here sends a transaction from the gateway's operator
or facilitator accounts: their transaction senders keep nonce counters that a transaction behind
their back would invalidate.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from x402 import x402Client, x402ClientSync
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header
from x402.mechanisms.evm.constants import UPTO_PERMIT2_WITNESS_TYPES
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.mechanisms.evm.upto import UptoEvmClientScheme
from x402.schemas import PaymentRequired, PaymentRequirements

import opengradient as og
from opengradient.devnet.chain.deploy import PERMIT2_ADDRESS, UPTO_PERMIT2_PROXY_ADDRESS, Deployer
from opengradient.devnet.chain.keys import DevAccount
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.llm.payments import price_of

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
OPG = 10**18
PRICE = price_of("gpt-4o", 20)  # what each chat below costs (max_tokens=20)


@dataclass
class Payer:
    account: DevAccount
    deployer: Deployer

    @property
    def address(self) -> str:
        return self.account.address


def new_payer(net: Devnet, *, opg: int = 10 * OPG, approve: int | None = 5 * OPG) -> Payer:
    """A fresh account holding `opg` OPG and some gas, with `approve` allowed to Permit2."""
    key = Account.create().key.hex()
    account = DevAccount(address=Account.from_key(key).address, private_key="0x" + key.removeprefix("0x"))
    funder = Deployer(net.payments_chain, net.accounts[0], estimate_gas=False)
    if opg:
        funder.transact(net.gateway.contracts.opg_token, "OPGToken", "transfer", account.address, opg)
    funder.send(account.address, b"", value=10**18, gas=21_000, what="funding")
    payer = Payer(account, Deployer(net.payments_chain, account, estimate_gas=False))
    if approve is not None:
        payer.deployer.transact(net.gateway.contracts.opg_token, "OPGToken", "approve", PERMIT2_ADDRESS, approve)
    return payer


def balance(net: Devnet, address: str) -> int:
    return int(Deployer(net.payments_chain, net.accounts[0]).call(
        net.gateway.contracts.opg_token, "OPGToken", "balanceOf", address))


def tx_receipt(net: Devnet, tx_hash: str) -> dict[str, Any]:
    response = net.payments_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt",
                                       "params": [tx_hash]})
    assert isinstance(response, dict) and response.get("result"), response
    return dict(response["result"])


def transfers(net: Devnet, tx_hash: str) -> list[tuple[str, str, int]]:
    """(from, to, value) of the OPG Transfer logs of a transaction."""
    out: list[tuple[str, str, int]] = []
    for log in tx_receipt(net, tx_hash)["logs"]:
        token = to_checksum_address(log["address"]) == net.gateway.contracts.opg_token
        if log["topics"][0] == TRANSFER_TOPIC and token:
            out.append((to_checksum_address("0x" + log["topics"][1][-40:]),
                        to_checksum_address("0x" + log["topics"][2][-40:]), int(log["data"], 16)))
    return out


def chat_body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}], "max_tokens": 20, **extra}


def header_json(response: httpx.Response, name: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(response.headers[name]))


def offer_of(response: httpx.Response) -> PaymentRequired:
    assert response.status_code == 402, response.text
    decoded = decode_payment_required_header(response.headers["payment-required"])
    assert isinstance(decoded, PaymentRequired)
    return decoded


def upto_option(offer: PaymentRequired) -> PaymentRequirements:
    [option] = [a for a in offer.accepts if a.scheme == "upto"]
    return option


def x402_upto_client(net: Devnet, payer: Payer, *, sync: bool = True) -> Any:
    """x402's own client with only its upto scheme registered (so it must pick the upto offer)."""
    client = x402ClientSync() if sync else x402Client()
    client.register(net.network.payments.network, UptoEvmClientScheme(EthAccountSigner(
        Account.from_key(payer.account.private_key))))
    client.set_spend_controls({"allowed_assets": [{
        "network": net.network.payments.network, "asset": net.network.payments.token_address,
        "max_amount_per_payment": str(10**18)}]})
    return client


def upto_header(net: Devnet, payer: Payer, option: PaymentRequirements, **override: Any) -> str:
    """A PAYMENT-SIGNATURE for `option` signed by x402's upto client, with payload fields overridden."""
    offer = PaymentRequired(accepts=[option])
    payload = x402_upto_client(net, payer).create_payment_payload(offer)
    authorization = payload.payload["permit2Authorization"]
    for key, value in override.items():
        if key in ("to", "facilitator", "validAfter"):
            authorization["witness"][key] = value
        else:
            authorization[key] = value
    return encode_payment_signature_header(payload)


def sign_permit(net: Devnet, payer: Payer, option: PaymentRequirements, *, deadline: int,
                facilitator: str | None = None) -> str:
    """An upto payment signed by hand (x402's client never signs an expired deadline)."""
    nonce = int.from_bytes(keccak(text=f"{payer.address}{deadline}{time.time()}"), "big")
    facilitator = facilitator or str(option.extra["facilitatorAddress"])
    message = {"permitted": {"token": option.asset, "amount": int(option.amount)},
               "spender": UPTO_PERMIT2_PROXY_ADDRESS, "nonce": nonce, "deadline": deadline,
               "witness": {"to": option.pay_to, "facilitator": facilitator, "validAfter": 0}}
    typed = {"types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                        {"name": "chainId", "type": "uint256"},
                                        {"name": "verifyingContract", "type": "address"}],
                       **UPTO_PERMIT2_WITNESS_TYPES},
             "primaryType": "PermitWitnessTransferFrom",
             "domain": {"name": "Permit2", "chainId": net.payments_chain.chain_id,
                        "verifyingContract": PERMIT2_ADDRESS},
             "message": message}
    signature = Account.sign_typed_data(payer.account.private_key, full_message=typed).signature
    payload = {"x402Version": 2, "accepted": option.model_dump(by_alias=True), "payload": {
        "signature": "0x" + bytes(signature).hex(), "permit2Authorization": {
            "from": payer.address, "permitted": {"token": option.asset, "amount": option.amount},
            "spender": UPTO_PERMIT2_PROXY_ADDRESS, "nonce": str(nonce), "deadline": str(deadline),
            "witness": {"to": option.pay_to, "facilitator": facilitator, "validAfter": "0"}}}}
    return base64.b64encode(json.dumps(payload).encode()).decode()


def client_for(net: Devnet, payer: Payer, **kwargs: Any) -> og.Client:
    return net.new_client(payer.account.private_key, payment_scheme="upto", **kwargs)


class Recorder:
    """Counts the LLM requests a client sends and whether each carried a payment or a session."""

    def __init__(self, client: og.Client) -> None:
        self.sent: list[tuple[str, bool, bool]] = []  # (path, paid, session)
        self._transport = client._http.sync._transport
        self._original = self._transport.handle_request

        def counting(request: httpx.Request) -> httpx.Response:
            if request.url.path.startswith("/v1/"):
                self.sent.append((request.url.path, "payment-signature" in request.headers,
                                  "x-upto-session" in request.headers))
            return self._original(request)

        self._transport.handle_request = counting  # type: ignore[method-assign]

    def close(self) -> None:
        self._transport.handle_request = self._original  # type: ignore[method-assign]


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Question number {i}: what is {i} + {i}?"}]
