"""Paying for requests with x402 (PROTOCOL.md §3), signing through the `x402` package.

On top of the package the SDK adds what OpenGradient needs: choosing the offer on the
configured payments network and token, a per-request spend cap checked before anything is
signed, and a cache of requirements so a warm client signs up front and pays in one round trip.
A retried request resends the same signed header, so it can never be settled twice.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opengradient.errors import PaymentDeclinedError, PaymentRequiredError, SpendCapExceededError

if TYPE_CHECKING:
    import httpx

    from opengradient.client.wallet import Wallet
    from opengradient.networks import PaymentNetwork

PAYMENT_REQUIRED = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE = "PAYMENT-SIGNATURE"
PAYMENT_RESPONSE = "PAYMENT-RESPONSE"
LEGACY_PAYMENT_RESPONSE = "X-PAYMENT-RESPONSE"

#: Default per-request spend cap: 0.05 OPG (18 decimals).
DEFAULT_MAX_PAYMENT = 5 * 10**16


def decode_b64_json(value: str) -> Any:
    """Decode the base64 JSON of an x402 header."""
    try:
        return json.loads(base64.b64decode(value))
    except (binascii.Error, ValueError) as exc:
        raise PaymentRequiredError(f"the server sent an unreadable x402 header: {exc}") from exc


def payment_required_of(response: httpx.Response) -> dict[str, Any]:
    """The decoded 402 offer: the `PAYMENT-REQUIRED` header (v2) or the JSON body (v1)."""
    header = response.headers.get(PAYMENT_REQUIRED)
    if header:
        document = decode_b64_json(header)
    else:
        try:
            document = response.json()
        except ValueError:
            document = None
    if not isinstance(document, dict) or not document.get("accepts"):
        raise PaymentRequiredError("the server answered 402 without any payment offer")
    return document


def settlement_of(response: httpx.Response) -> dict[str, Any] | None:
    """The decoded `PAYMENT-RESPONSE` (settlement receipt), if the server sent one."""
    header = response.headers.get(PAYMENT_RESPONSE) or response.headers.get(LEGACY_PAYMENT_RESPONSE)
    if not header:
        return None
    receipt = decode_b64_json(header)
    return receipt if isinstance(receipt, dict) else None


@dataclass(frozen=True)
class SignedPayment:
    """A payment ready to send: the header, what it pays, and the offer it accepts."""

    header: str
    amount: int
    requirements: dict[str, Any]


class Payer:
    """Signs x402 payments for one wallet on one payments network."""

    def __init__(self, wallet: Wallet | None, network: PaymentNetwork, *,
                 max_payment: int = DEFAULT_MAX_PAYMENT) -> None:
        self.wallet = wallet
        self.network = network
        self.max_payment = max_payment
        self._cache: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._x402: Any = None

    def choose(self, offer: dict[str, Any]) -> dict[str, Any]:
        """The offer this client pays: `exact` on its payments network (and token, if set)."""
        accepts = [a for a in offer.get("accepts", []) if isinstance(a, dict)]
        token = self.network.token_address.lower()
        for option in accepts:
            if (option.get("scheme") == "exact" and option.get("network") == self.network.network
                    and str(option.get("asset", "")).lower() == token):
                return option
        offered = ", ".join(f"{a.get('scheme')} on {a.get('network')} in {a.get('asset')}" for a in accepts)
        raise PaymentRequiredError(
            f"no payment option this client can pay (it pays 'exact' on {self.network.network} in "
            f"{self.network.token_address}; the server offers {offered or 'nothing'})",
            requirements=offer, hint="point the client at the network the server charges on")

    def sign(self, offer: dict[str, Any]) -> SignedPayment:
        """Choose, check the spend cap, and sign; nothing is signed above the cap."""
        if self.wallet is None:
            raise PaymentRequiredError("this request must be paid and the client has no private key",
                                       requirements=offer, hint="pass private_key= to og.init")
        option = self.choose(offer)
        try:
            amount = int(option["amount"])
        except (KeyError, TypeError, ValueError):
            raise PaymentRequiredError(f"the payment offer has no valid amount: {option!r}",
                                       requirements=offer) from None
        if amount > self.max_payment:
            raise SpendCapExceededError(
                f"the server asks {amount} base units of OPG, above this client's cap of "
                f"{self.max_payment}", amount=amount, cap=self.max_payment, requirements=offer)
        payload = self._signer().create_payment_payload(self._payment_required(offer, option))
        from x402.http.utils import encode_payment_signature_header

        return SignedPayment(encode_payment_signature_header(payload), amount, option)

    def remember(self, key: Any, offer: dict[str, Any]) -> None:
        """Cache an offer for requests with the same key (same route, model and token budget)."""
        with self._lock:
            self._cache[key] = (offer, self.choose(offer))

    def forget(self, key: Any) -> None:
        """Drop a cached offer that the server no longer accepts."""
        with self._lock:
            self._cache.pop(key, None)

    def sign_cached(self, key: Any) -> SignedPayment | None:
        """Sign up front from a cached offer (fresh nonce each time), if one is cached."""
        with self._lock:
            cached = self._cache.get(key)
        return self.sign(cached[0]) if cached is not None else None

    def _payment_required(self, offer: dict[str, Any], option: dict[str, Any]) -> Any:
        from x402.schemas import PaymentRequired

        return PaymentRequired.model_validate({**offer, "accepts": [option]})

    def _signer(self) -> Any:
        if self._x402 is None:
            from x402 import x402ClientSync
            from x402.mechanisms.evm.exact import ExactEvmScheme
            from x402.mechanisms.evm.signers import EthAccountSigner

            assert self.wallet is not None
            client = x402ClientSync()
            client.register(self.network.network, ExactEvmScheme(EthAccountSigner(self.wallet._account)))
            client.set_spend_controls({"allowed_assets": [{
                "network": self.network.network, "asset": self.network.token_address,
                "max_amount_per_payment": str(self.max_payment)}]})
            self._x402 = client
        return self._x402


def declined(response: httpx.Response, offer: dict[str, Any] | None) -> PaymentDeclinedError:
    """The typed error for a 402 that answered a payment."""
    reason = None
    receipt = settlement_of(response)
    if receipt is not None:
        reason = receipt.get("errorReason")
    if reason is None and offer is not None:
        reason = offer.get("error")
    return PaymentDeclinedError(f"the server refused the payment: {reason or 'no reason given'}",
                                requirements=offer, reason=reason,
                                hint="check the payer's OPG balance and the client's payments network")
