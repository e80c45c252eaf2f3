"""Paying for requests with x402 (version 2), signing through the `x402` package.

On top of the package the SDK adds what OpenGradient needs: choosing the offer on the
configured payments network and token, a per-request spend cap checked before anything is
signed, and a cache of requirements so a warm client signs up front and pays in one round trip.
A retried request resends the same signed header, so it can never be settled twice.

Schemes: `exact` (the default; EIP-3009, one settlement per request) and, opted into with
`scheme="upto"`, x402's metered `upto` (a Permit2 signature for a cap, signed by the `x402`
package's upto client). With `upto` the gateway opens a session on the first paid request and
answers `X-Upto-Session: <id>`; the payer keeps the sessions of each (host, path), and later
requests send one whose remaining cap covers them instead of a payment, until a 402 says it
ended. Concurrent requests that find no such session each open one; all are used afterwards.
The gateway settles a session once, on chain, when it is idle, used up or closed
(`LLM.close_sessions`). When a server offers no `upto` option (or its cap is above the spend
cap), an `upto` payer pays `exact`.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from opengradient import bounded_json
from opengradient.bounded_json import response_json
from opengradient.errors import PaymentDeclinedError, PaymentRequiredError, SpendCapExceededError

if TYPE_CHECKING:
    import httpx

    from opengradient.client.wallet import Wallet
    from opengradient.networks import PaymentNetwork

PAYMENT_REQUIRED = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE = "PAYMENT-SIGNATURE"
PAYMENT_RESPONSE = "PAYMENT-RESPONSE"
LEGACY_PAYMENT_RESPONSE = "X-PAYMENT-RESPONSE"
UPTO_SESSION = "X-Upto-Session"

PaymentScheme = Literal["exact", "upto"]
PAYMENT_SCHEMES = ("exact", "upto")

#: Default per-request spend cap: 0.05 OPG (18 decimals).
DEFAULT_MAX_PAYMENT = 5 * 10**16
#: The longest a signed payment stays valid, whatever the server's offer asks (`maxTimeoutSeconds`):
#: a signature is a bearer instrument, so a leaked or withheld one must expire soon.
MAX_PAYMENT_VALIDITY_SECONDS = 3600


def decode_b64_json(value: str) -> Any:
    """Decode the base64 JSON of an x402 header."""
    try:
        return bounded_json.loads(base64.b64decode(value))
    except (binascii.Error, ValueError) as exc:
        raise PaymentRequiredError(f"the server sent an unreadable x402 header: {exc}") from exc


def describe_offer(offer: Any, limit: int = 4000) -> str:
    """The decoded `PAYMENT-REQUIRED` document as compact JSON, for error messages (offers hold
    no secret: amounts, addresses, the resource)."""
    text = json.dumps(offer, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def payment_required_of(response: httpx.Response) -> dict[str, Any]:
    """The decoded 402 offer: the `PAYMENT-REQUIRED` header (v2) or the JSON body (v1)."""
    header = response.headers.get(PAYMENT_REQUIRED)
    if header:
        document = decode_b64_json(header)
    else:
        try:
            document = response_json(response)
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
    """A payment ready to send: the header, what it pays, and the offer it accepts.

    For `upto`, `amount` is the cap the signature allows; what a request costs is in its receipt.
    """

    header: str
    amount: int
    requirements: dict[str, Any]

    @property
    def scheme(self) -> str:
        """The x402 scheme of the option paid (`exact` or `upto`)."""
        return str(self.requirements.get("scheme", "exact"))


@dataclass(eq=False)
class UptoSession:
    """An open upto session the gateway granted: sent as `X-Upto-Session` instead of paying."""

    id: str
    remaining: int | None = None  # what is left of the cap, less requests in flight (None: unknown)
    last_used: float = 0.0
    inflight: int = 0


#: Open sessions kept per route: concurrent requests that found none open several at once.
_MAX_SESSIONS_PER_ROUTE = 16


class Payer:
    """Signs x402 payments for one wallet on one payments network."""

    def __init__(self, wallet: Wallet | None, network: PaymentNetwork, *,
                 max_payment: int = DEFAULT_MAX_PAYMENT, scheme: PaymentScheme = "exact") -> None:
        if scheme not in PAYMENT_SCHEMES:
            from opengradient.errors import ConfigurationError

            raise ConfigurationError(f"unknown payment_scheme {scheme!r}", hint="use 'exact' or 'upto'")
        self.wallet = wallet
        self.network = network
        self.max_payment = max_payment
        self.scheme: PaymentScheme = scheme
        self._cache: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._x402: Any = None
        #: Open upto sessions by (host, path), and the last price charged per request kind.
        self._sessions: dict[Any, list[UptoSession]] = {}
        self._prices: dict[Any, int] = {}
        #: The payer's Permit2 allowance as last read (upto checks it before signing).
        self.permit2_allowance: int | None = None

    def choose(self, offer: dict[str, Any]) -> dict[str, Any]:
        """The offer this client pays: its scheme on its payments network (and token).

        An `upto` payer takes the `upto` option (Permit2), unless its cap is above the spend cap,
        and falls back to `exact`.
        """
        accepts = [a for a in offer.get("accepts", []) if isinstance(a, dict)]
        token = self.network.token_address.lower()
        ours = [a for a in accepts if a.get("network") == self.network.network
                and str(a.get("asset", "")).lower() == token]
        over_cap: dict[str, Any] | None = None
        if self.scheme == "upto":
            for option in ours:
                extra = option.get("extra") or {}
                if (option.get("scheme") == "upto" and isinstance(extra, dict)
                        and extra.get("assetTransferMethod", "permit2") == "permit2"
                        and extra.get("facilitatorAddress")):
                    cap = _int_or_none(option.get("amount"))
                    if cap is not None and cap <= self.max_payment:
                        return option
                    over_cap = over_cap or option
        for option in ours:
            if option.get("scheme") == "exact":
                return option
        if over_cap is not None:
            return over_cap  # `sign` refuses it with the spend-cap error
        offered = ", ".join(f"{a.get('scheme')} on {a.get('network')} in {a.get('asset')}" for a in accepts)
        raise PaymentRequiredError(
            f"no payment option this client can pay (it pays {' or '.join(map(repr, self._schemes()))} on "
            f"{self.network.network} in {self.network.token_address}; the server offers {offered or 'nothing'}). "
            f"PAYMENT-REQUIRED: {describe_offer(offer)}",
            requirements=offer, hint="point the client at the network the server charges on")

    def _schemes(self) -> tuple[str, ...]:
        return ("upto", "exact") if self.scheme == "upto" else ("exact",)

    def sign(self, offer: dict[str, Any], *, already_signed: int = 0) -> SignedPayment:
        """Choose, check the spend cap, and sign; nothing is signed above the cap.

        The cap is per call: `already_signed` is what this call has signed before (a server that
        answers a signed payment with another 402 could settle both), and the two together must
        stay within it. The signature is valid for the offer's `maxTimeoutSeconds`, but never for
        more than `MAX_PAYMENT_VALIDITY_SECONDS`.
        """
        if self.wallet is None:
            raise PaymentRequiredError("this request must be paid and the client has no private key",
                                       requirements=offer, hint="pass private_key= to og.init, or set OG_PRIVATE_KEY",
                                       arguments=("private_key",))
        option = self.choose(offer)
        try:
            amount = int(option["amount"])
        except (KeyError, TypeError, ValueError):
            raise PaymentRequiredError(f"the payment offer has no valid amount: {option!r}",
                                       requirements=offer) from None
        if amount > self.max_payment:
            what = "an upto session cap of " if option.get("scheme") == "upto" else ""
            raise SpendCapExceededError(
                f"the server asks {what}{amount} base units of OPG, above this client's cap of "
                f"{self.max_payment}. PAYMENT-REQUIRED: {describe_offer(offer)}", amount=amount,
                cap=self.max_payment, requirements=offer)
        if amount + already_signed > self.max_payment:
            raise SpendCapExceededError(
                f"this call already signed a payment of {already_signed} base units of OPG and the server asks "
                f"another {amount}: together above this client's cap of {self.max_payment} per call. "
                f"PAYMENT-REQUIRED: {describe_offer(offer)}",
                amount=amount + already_signed, cap=self.max_payment, requirements=offer)
        signed = {**option, "maxTimeoutSeconds": _validity(option)}
        try:
            payload = self._signer().create_payment_payload(self._payment_required(offer, signed))
        except (ValueError, TypeError, KeyError) as exc:
            raise PaymentRequiredError(f"this client cannot sign the server's payment offer: {exc}",
                                       requirements=offer) from None
        from x402.schemas import PaymentRequirements

        payload.accepted = PaymentRequirements.model_validate(option)  # the offer verbatim, as x402 requires
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

    def cached(self, key: Any) -> dict[str, Any] | None:
        """The cached offer for `key`, if any."""
        with self._lock:
            cached = self._cache.get(key)
        return cached[0] if cached is not None else None

    def sign_cached(self, key: Any) -> SignedPayment | None:
        """Sign up front from a cached offer (fresh nonce each time), if one is cached."""
        cached = self.cached(key)
        return self.sign(cached) if cached is not None else None

    # -- upto sessions ------------------------------------------------------------------------

    def session_for(self, route: Any, price_key: Any) -> UptoSession | None:
        """An open session of `route` whose remaining cap covers the last known price of this kind
        of request (reserved locally until its answer says what remains); None: pay afresh."""
        with self._lock:
            price = self._prices.get(price_key)
            for session in self._sessions.get(route, ()):
                if price is None or session.remaining is None or session.remaining >= price:
                    if price is not None and session.remaining is not None:
                        session.remaining -= price
                    session.inflight += 1
                    return session
            return None

    def keep_session(self, route: Any, price_key: Any, receipt: dict[str, Any] | None,
                     session_id: str | None, used: UptoSession | None) -> None:
        """Remember the session an answer opened or charged (`used`: the one that was sent), with
        what the gateway says remains of its cap."""
        receipt = receipt or {}
        remaining = _int_or_none(receipt.get("remaining"))
        price = _int_or_none(receipt.get("price"))
        with self._lock:
            if price is not None:
                self._prices[price_key] = price
            if used is not None:
                used.inflight -= 1
            if not session_id:
                return
            pool = self._sessions.setdefault(route, [])
            session = next((s for s in pool if s.id == session_id), None)
            if session is None:
                session = UptoSession(session_id, remaining)
                pool.append(session)
                del pool[:-_MAX_SESSIONS_PER_ROUTE]
            elif remaining is not None:
                # the gateway's figure is exact unless other requests are still in flight
                exact = session.inflight == 0 or session.remaining is None
                session.remaining = remaining if exact else min(session.remaining or 0, remaining)
            session.last_used = time.monotonic()

    def release_session(self, session: UptoSession) -> None:
        """A request sent with `session` got no answer to learn from (it failed)."""
        with self._lock:
            session.inflight -= 1

    def drop_session(self, route: Any, session: UptoSession, reason: str | None) -> None:
        """Forget a session the gateway no longer charges (a 402 answered it). A session that was
        settled when idle takes the route's other idle sessions with it."""
        with self._lock:
            pool = self._sessions.get(route, [])
            if reason in ("upto_session_ended", "upto_session_unknown"):
                pool[:] = [s for s in pool if s.last_used > session.last_used]
            pool[:] = [s for s in pool if s is not session]
            if not pool:
                self._sessions.pop(route, None)

    def take_sessions(self) -> list[tuple[Any, UptoSession]]:
        """Forget and return every open session (to close them)."""
        with self._lock:
            sessions, self._sessions = self._sessions, {}
        return [(route, session) for route, pool in sessions.items() for session in pool]

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
            signer = EthAccountSigner(self.wallet._account)
            client.register(self.network.network, ExactEvmScheme(signer))
            if self.scheme == "upto":
                from x402.mechanisms.evm.upto import UptoEvmClientScheme

                client.register(self.network.network, UptoEvmClientScheme(signer))
            client.set_spend_controls({"allowed_assets": [{
                "network": self.network.network, "asset": self.network.token_address,
                "max_amount_per_payment": str(self.max_payment)}]})
            self._x402 = client
        return self._x402


def _validity(option: dict[str, Any]) -> int:
    """How long to make a signature for `option` valid: its timeout, within the client's bound."""
    offered = _int_or_none(option.get("maxTimeoutSeconds"))
    if offered is None or offered <= 0:
        raise PaymentRequiredError("the payment offer has no valid maxTimeoutSeconds: "
                                   f"{option.get('maxTimeoutSeconds')!r}")
    return min(offered, MAX_PAYMENT_VALIDITY_SECONDS)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def declined(response: httpx.Response, offer: dict[str, Any] | None) -> PaymentDeclinedError:
    """The typed error for a 402 that answered a payment."""
    reason = None
    receipt = settlement_of(response)
    if receipt is not None:
        reason = receipt.get("errorReason")
    if reason is None and offer is not None:
        reason = offer.get("error")
    required = f". PAYMENT-REQUIRED: {describe_offer(offer)}" if offer is not None else ""
    return PaymentDeclinedError(f"the server refused the payment: {reason or 'no reason given'}{required}",
                                requirements=offer, reason=reason,
                                hint="check the payer's OPG balance and the client's payments network")
