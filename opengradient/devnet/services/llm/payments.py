"""What an LLM request costs on the devnet, what the gateway asks for, and the x402 header codec.

The price table lives here and only here. A price is known before the model runs — a per-model
base fee plus a per-token rate times the request's token budget (`max_tokens`, 100 when absent) —
so two requests with the same model and `max_tokens` cost the same, and a client that cached the
requirements of one can pay the next in a single round trip.

The gateway offers two ways to pay, in this order: `exact` (EIP-3009, the price, settled per
request) and `upto` (Permit2, a cap of `UPTO_CAP_MULTIPLE` × the price, opening a session that
later requests are charged to and that settles once; see `opengradient.devnet.services.llm.upto`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, ResourceInfo
from x402.schemas.v1 import PaymentPayloadV1

from opengradient import bounded_json

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MAX_TIMEOUT_SECONDS",
    "OPG",
    "UPTO_CAP_MULTIPLE",
    "UPTO_TIMEOUT_SECONDS",
    "PRICES",
    "ModelPrice",
    "PaymentHeaderError",
    "SettlementMode",
    "build_upto_requirements",
    "decode_header_json",
    "decode_payment_header",
    "encode_header_json",
    "parse_settlement_mode",
    "price_of",
]

#: One OPG in atomic units (18 decimals).
OPG = 10**18
#: The token budget a request is priced at when it does not say `max_tokens`.
DEFAULT_MAX_TOKENS = 100
#: How long a signed payment stays valid (the `exact` scheme's `maxTimeoutSeconds`).
MAX_TIMEOUT_SECONDS = 300
#: An `upto` offer's cap, in multiples of the request's price: how much one session may charge.
UPTO_CAP_MULTIPLE = 20
#: How long an `upto` permit stays valid (its `maxTimeoutSeconds`): the longest a session can live.
UPTO_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class ModelPrice:
    """Price of one model: `base_fee + per_token × max_tokens`, in OPG atomic units."""

    base_fee: int
    per_token: int

    def price(self, max_tokens: int) -> int:
        """Atomic units for a request with this token budget."""
        return self.base_fee + self.per_token * max_tokens


#: The devnet's price list, keyed by model name without its provider prefix (lower case).
#: Models the gateway serves but this table does not name cost `PRICES["*"]`.
_MICRO = OPG // 1_000_000  # 0.000001 OPG
PRICES: dict[str, ModelPrice] = {
    "*": ModelPrice(base_fee=100 * _MICRO, per_token=1 * _MICRO),
    # OpenAI
    "gpt-4o": ModelPrice(base_fee=200 * _MICRO, per_token=5 * _MICRO),
    "gpt-4.1": ModelPrice(base_fee=200 * _MICRO, per_token=4 * _MICRO),
    "gpt-4.1-2025-04-14": ModelPrice(base_fee=200 * _MICRO, per_token=4 * _MICRO),
    "o4-mini": ModelPrice(base_fee=100 * _MICRO, per_token=2 * _MICRO),
    # Anthropic
    "claude-3.5-haiku": ModelPrice(base_fee=100 * _MICRO, per_token=2 * _MICRO),
    "claude-3.7-sonnet": ModelPrice(base_fee=300 * _MICRO, per_token=6 * _MICRO),
    "claude-4.0-sonnet": ModelPrice(base_fee=300 * _MICRO, per_token=6 * _MICRO),
    # Google
    "gemini-2.0-flash": ModelPrice(base_fee=50 * _MICRO, per_token=1 * _MICRO),
    "gemini-2.5-flash": ModelPrice(base_fee=50 * _MICRO, per_token=1 * _MICRO),
    "gemini-2.5-flash-lite": ModelPrice(base_fee=25 * _MICRO, per_token=1 * _MICRO),
    "gemini-2.5-pro": ModelPrice(base_fee=200 * _MICRO, per_token=5 * _MICRO),
    # xAI
    "grok-3-beta": ModelPrice(base_fee=300 * _MICRO, per_token=6 * _MICRO),
    "grok-3-mini-beta": ModelPrice(base_fee=50 * _MICRO, per_token=1 * _MICRO),
}


def price_of(model: str, max_tokens: int | None) -> int:
    """Atomic OPG units for a request to `model` (bare or `provider/model`) with `max_tokens`."""
    bare = model.split("/", 1)[1] if "/" in model else model
    entry = PRICES.get(bare.lower(), PRICES["*"])
    return entry.price(DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens)


class SettlementMode:
    """How a paid request is recorded on `OGSettlement` (values of later servers)."""

    PRIVATE = "private"  # input/output hashes only (`settle`)
    INDIVIDUAL = "individual"  # full input, output and model (`settle-metadata`)
    BATCH = "batch"  # Merkle batches of hashes (`settle-batch`)


_SETTLEMENT_MODES = {
    "settle": SettlementMode.PRIVATE,
    "private": SettlementMode.PRIVATE,
    "settlemetadata": SettlementMode.INDIVIDUAL,
    "individual": SettlementMode.INDIVIDUAL,
    "settlebatch": SettlementMode.BATCH,
    "batch": SettlementMode.BATCH,
}


def parse_settlement_mode(header: str | None) -> str:
    """Normalise `X-SETTLEMENT-TYPE` (lower case; `_`, `-`, spaces dropped); absent → private.

    Raises ValueError for a value that names no mode.
    """
    if header is None or not header.strip():
        return SettlementMode.PRIVATE
    key = header.lower()
    for ch in "_- \t":
        key = key.replace(ch, "")
    mode = _SETTLEMENT_MODES.get(key)
    if mode is None:
        raise ValueError(f"unknown X-SETTLEMENT-TYPE {header!r}; use settle, settle-metadata or "
                         "settle-batch (or private, individual, batch)")
    return mode


def build_requirements(*, network: str, amount: int, asset: str, pay_to: str,
                       token_name: str, token_version: str) -> PaymentRequirements:
    """The one payment option the gateway offers: `exact` (EIP-3009) in OPG."""
    return PaymentRequirements(
        scheme="exact", network=network, asset=asset, amount=str(amount), pay_to=pay_to,
        max_timeout_seconds=MAX_TIMEOUT_SECONDS,
        extra={"name": token_name, "version": token_version},
    )


def build_upto_requirements(*, network: str, cap: int, asset: str, pay_to: str, facilitator: str,
                            token_name: str, token_version: str) -> PaymentRequirements:
    """The `upto` option: a Permit2 cap, to be signed for x402's upto proxy with `facilitator` as the
    witness's facilitator (the only account that may settle it)."""
    return PaymentRequirements(
        scheme="upto", network=network, asset=asset, amount=str(cap), pay_to=pay_to,
        max_timeout_seconds=UPTO_TIMEOUT_SECONDS,
        extra={"name": token_name, "version": token_version, "assetTransferMethod": "permit2",
               "facilitatorAddress": facilitator},
    )


def build_payment_required(requirements: PaymentRequirements | Sequence[PaymentRequirements], *, url: str,
                           description: str, error: str) -> PaymentRequired:
    """The body of a `PAYMENT-REQUIRED` header (the options in order of preference)."""
    accepts = [requirements] if isinstance(requirements, PaymentRequirements) else list(requirements)
    return PaymentRequired(
        x402_version=2, error=error,
        resource=ResourceInfo(url=url, description=description, mime_type="application/json"),
        accepts=accepts, extensions={})


def v1_requirements_json(requirements: PaymentRequirements, *, network: str, url: str,
                         description: str) -> dict[str, Any]:
    """The same offer in x402 v1's shape (for a 402 body answering a v1 client)."""
    return {
        "scheme": requirements.scheme, "network": network,
        "maxAmountRequired": requirements.amount, "resource": url, "description": description,
        "mimeType": "application/json", "payTo": requirements.pay_to,
        "maxTimeoutSeconds": requirements.max_timeout_seconds, "asset": requirements.asset,
        "extra": dict(requirements.extra),
    }


def encode_header_json(value: dict[str, Any]) -> str:
    """Standard base64 (with padding) of compact UTF-8 JSON."""
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def decode_header_json(value: str) -> Any:
    """Inverse of `encode_header_json` (accepts URL-safe base64 and missing padding too)."""
    text = value.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raw = base64.urlsafe_b64decode(padded)
    return bounded_json.loads(raw.decode("utf-8"))


class PaymentHeaderError(ValueError):
    """A payment header that is not base64 JSON of an x402 payment payload."""


def decode_payment_header(value: str) -> PaymentPayload | PaymentPayloadV1:
    """Parse `PAYMENT-SIGNATURE` / `X-PAYMENT` into x402's payload model (v1 or v2)."""
    try:
        data = decode_header_json(value)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise PaymentHeaderError(f"the payment header is not base64 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PaymentHeaderError("the payment header must hold a JSON object")
    try:
        if data.get("x402Version") == 1:
            return PaymentPayloadV1.model_validate(data)
        if data.get("x402Version", 2) == 2:
            return PaymentPayload.model_validate(data)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise PaymentHeaderError(f"the payment payload is malformed: {exc}") from None
    raise PaymentHeaderError(f"unsupported x402Version {data.get('x402Version')!r}")
