"""Reproducible synthetic price candles for the devnet's price-history precompile (`0x…F5`).

Four markets (BTC/USDT, ETH/USDT, SOL/USDT, SUI/USDT), each at three candle durations (30, 60 and
360 minutes): twelve independent series. Candle ``n`` of a series (counted from 0) is a pure
function of the market, the duration and ``n``, so every devnet, and the script that fits the
forecast models, sees the same numbers. Only the times differ: the devnet dates its first
candles just before it starts (see `opengradient.devnet.services.workflows`).

The process, per candle of duration ``d`` minutes, with ``σ_d = σ_1h·√(d/60)``:

* log-volatility ``h_n = 0.95·h_{n-1} + 0.35·√(1-0.95²)·z0`` (volatility clusters; ``h_0 = 0``),
  and ``σ_n = σ_d·exp(h_n)``;
* log-return ``r_n = 0.2·r_{n-1} - κ_d·(x_{n-1} - x̄) + σ_n·z1`` with ``κ_d = 0.02·d/60``: some
  momentum and a slow pull back to the market's anchor price ``exp(x̄)``, so forecasts have
  something to find and prices stay plausible for ever;
* ``open = exp(x_{n-1})``, ``close = exp(x_n)``, ``high = max(open, close)·exp(σ_n·|z2|/2)``,
  ``low = min(open, close)·exp(-σ_n·|z3|/2)``, ``volume = V_d·exp(h_n + 0.25·z4)``;

where ``z0…z4`` are standard normals drawn by numpy's PCG64 seeded with
``[SEED, market number, d, n // 256]`` (row ``n % 256`` of a 256×5 block). Prices are rounded to
the market's price decimals and volumes to two decimals, exactly as the precompile serves them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DURATIONS",
    "MARKETS",
    "SEED",
    "VOLUME_DECIMALS",
    "Candle",
    "Market",
    "SyntheticSeries",
    "market",
]

SEED = 20_250_101
DURATIONS = (30, 60, 360)
VOLUME_DECIMALS = 2

_BLOCK = 256
_PHI_H = 0.95
_S_H = 0.35
_MOMENTUM = 0.2
_REVERSION = 0.02  # per hour


@dataclass(frozen=True)
class Market:
    """One synthetic market: its anchor price, hourly volatility, hourly volume and decimals."""

    number: int
    base: str
    quote: str
    anchor_price: float
    hourly_sigma: float
    hourly_volume: float
    price_decimals: int

    @property
    def pair(self) -> str:
        """``BASE/QUOTE``."""
        return f"{self.base}/{self.quote}"


MARKETS: tuple[Market, ...] = (
    Market(0, "BTC", "USDT", 65_000.0, 0.008, 1_200.0, 4),
    Market(1, "ETH", "USDT", 3_200.0, 0.015, 18_000.0, 5),
    Market(2, "SOL", "USDT", 150.0, 0.018, 250_000.0, 6),
    Market(3, "SUI", "USDT", 3.2, 0.02, 4_000_000.0, 8),
)


def market(base: str, quote: str) -> Market:
    """The market ``base/quote`` (case-insensitive); KeyError names the ones that exist."""
    for m in MARKETS:
        if m.base == base.upper() and m.quote == quote.upper():
            return m
    raise KeyError(f"no synthetic market {base}/{quote}; markets: {', '.join(m.pair for m in MARKETS)}")


@dataclass(frozen=True)
class Candle:
    """One candle: integers scaled by ``10**decimals``."""

    open: int
    high: int
    low: int
    close: int
    volume: int


@dataclass
class SyntheticSeries:
    """The candles of one market at one duration; generated on demand and kept."""

    market: Market
    duration_mins: int
    _candles: list[Candle] = field(default_factory=list, repr=False)
    _state: tuple[float, float, float] = (0.0, 0.0, 0.0)  # h, r, x after the last candle
    _noise: Any = field(default=None, repr=False)
    _noise_block: int = -1

    def __post_init__(self) -> None:
        if self.duration_mins <= 0:
            raise ValueError("duration_mins must be positive")
        self._state = (0.0, 0.0, math.log(self.market.anchor_price))

    @property
    def sigma(self) -> float:
        """Typical per-candle volatility ``σ_d`` of the log-return."""
        return self.market.hourly_sigma * math.sqrt(self.duration_mins / 60)

    def candles(self, start: int, stop: int) -> list[Candle]:
        """Candles ``start … stop-1``."""
        if start < 0 or stop < start:
            raise ValueError(f"bad candle range {start}:{stop}")
        self._extend(stop)
        return self._candles[start:stop]

    def floats(self, start: int, stop: int) -> dict[str, list[float]]:
        """Candles ``start … stop-1`` as the floats a model sees (value / 10**decimals)."""
        price = 10.0 ** self.market.price_decimals
        volume = 10.0 ** VOLUME_DECIMALS
        rows = self.candles(start, stop)
        return {
            "open": [c.open / price for c in rows],
            "high": [c.high / price for c in rows],
            "low": [c.low / price for c in rows],
            "close": [c.close / price for c in rows],
            "volume": [c.volume / volume for c in rows],
        }

    def _z(self, n: int) -> Any:
        block = n // _BLOCK
        if block != self._noise_block:
            import numpy as np

            rng = np.random.default_rng([SEED, self.market.number, self.duration_mins, block])
            self._noise = rng.standard_normal((_BLOCK, 5)).tolist()
            self._noise_block = block
        return self._noise[n % _BLOCK]

    def _extend(self, stop: int) -> None:
        m = self.market
        sigma_d = self.sigma
        volume_d = m.hourly_volume * self.duration_mins / 60
        anchor = math.log(m.anchor_price)
        price_scale = 10**m.price_decimals
        volume_scale = 10**VOLUME_DECIMALS
        reversion = _REVERSION * self.duration_mins / 60
        h, r, x = self._state
        innovation = _S_H * math.sqrt(1 - _PHI_H**2)
        for n in range(len(self._candles), stop):
            z0, z1, z2, z3, z4 = self._z(n)
            h = _PHI_H * h + innovation * z0
            sigma = sigma_d * math.exp(h)
            r = _MOMENTUM * r - reversion * (x - anchor) + sigma * z1
            open_, close = math.exp(x), math.exp(x + r)
            x += r
            high = max(open_, close) * math.exp(sigma * abs(z2) / 2)
            low = min(open_, close) * math.exp(-sigma * abs(z3) / 2)
            volume = volume_d * math.exp(h + 0.25 * z4)
            self._candles.append(Candle(
                open=round(open_ * price_scale), high=round(high * price_scale),
                low=round(low * price_scale), close=round(close * price_scale),
                volume=round(volume * volume_scale)))
        self._state = (h, r, x)
