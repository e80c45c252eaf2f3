"""The price-history precompile at `0x…F5`: the Alpha chain's own OHLCV price feed.

The network's `PriceHistoryInference` contract does not read candles itself: it asks this
precompile to run its model on them, with
`runInferenceOnPriceFeed(string modelId, string inputName, HistoricalInputQuery query) returns
(ModelOutput)` (selector `0xa192a0f9`); `queryHistoricalCandles(HistoricalInputQuery) returns
(Number[])` (selector `0xf2f08e63`) serves the candles alone. Both were read off the public
contract's bytecode (it calls 0x…F5 with exactly these arguments and decodes a `ModelOutput`).

On the devnet the feed is `PriceFeed`: the reproducible synthetic candles of
`opengradient.devnet.chain.precompiles.candles` (BTC, ETH, SOL and SUI against USDT at 30, 60 and 360 minutes). The
newest `HISTORY_CANDLES` candles of each series are dated to have closed just before the feed was
made; afterwards a candle becomes available when the feed is advanced past its close (the
devnet's scheduler loop does that as time passes, as a node ingests prices). The model input is
tensor `inputName` of shape `[1, total_candles, len(candle_types)]`, row-major (one value per
candle type per candle), each value `Number(value, decimals)` exactly as the series stores it,
decoded by the inference precompile's own codec and run by its onnxruntime sessions. Each run
emits the inference precompile's `ModelInferenceEvent` (from `0x…F5`), so the input the model saw
is on record next to the workflow's result.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opengradient.client.abi import MODEL_INFERENCE_ARGS, MODEL_INFERENCE_TOPIC
from opengradient.client.codec import MODEL_OUTPUT, encode_model_output
from opengradient.devnet.chain.evm import PrecompileCall, PrecompileResult, PrecompileRevert
from opengradient.devnet.chain.precompiles.candles import DURATIONS, MARKETS, VOLUME_DECIMALS, Candle, SyntheticSeries
from opengradient.errors import OpenGradientError
from opengradient.networks import PRICE_HISTORY_PRECOMPILE_ADDRESS

if TYPE_CHECKING:
    from opengradient.devnet.chain.precompiles.inference import InferencePrecompile

__all__ = [
    "HISTORICAL_INPUT_QUERY",
    "HISTORY_CANDLES",
    "PRICE_HISTORY_PRECOMPILE_ADDRESS",
    "QUERY_HISTORICAL_CANDLES_SELECTOR",
    "RUN_INFERENCE_ON_PRICE_FEED_SELECTOR",
    "PriceFeed",
    "PriceHistoryPrecompile",
]

#: `(string base, string quote, uint32 total_candles, uint32 candle_duration_in_mins, uint8 order,
#: uint8[] candle_types)`
HISTORICAL_INPUT_QUERY = "(string,string,uint32,uint32,uint8,uint8[])"
#: `queryHistoricalCandles(HistoricalInputQuery)`
QUERY_HISTORICAL_CANDLES_SELECTOR = bytes.fromhex("f2f08e63")
#: `runInferenceOnPriceFeed(string,string,HistoricalInputQuery)`
RUN_INFERENCE_ON_PRICE_FEED_SELECTOR = bytes.fromhex("a192a0f9")
#: Candles of each series available when the feed starts.
HISTORY_CANDLES = 32
#: Candle types in `HistoricalInputQuery.candle_types`: HIGH 0, LOW 1, OPEN 2, CLOSE 3, VOLUME 4.
_FIELDS = ("high", "low", "open", "close", "volume")
_BASE_GAS = 20_000
_GAS_PER_CANDLE_VALUE = 200


@dataclass
class _Series:
    """One market at one candle duration: its generator, when candle 0 opened, what has closed."""

    series: SyntheticSeries
    origin: int
    closed: int = 0

    @property
    def period(self) -> int:
        return self.series.duration_mins * 60

    def closed_by(self, now: float) -> int:
        return max(0, math.floor((now - self.origin) / self.period))


class PriceFeed:
    """The candles the price-history precompile serves, advanced by `advance(now)`."""

    def __init__(self, now: float) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str, int], _Series] = {}
        for market in MARKETS:
            for duration in DURATIONS:
                period = duration * 60
                origin = math.floor(now / period) * period - HISTORY_CANDLES * period
                self._series[(market.base, market.quote, duration)] = _Series(SyntheticSeries(market, duration),
                                                                              origin)
        self.advance(now)

    def advance(self, now: float) -> int:
        """Make every candle closed by `now` available; returns how many became available."""
        added = 0
        with self._lock:
            for entry in self._series.values():
                closed = entry.closed_by(now)
                if closed > entry.closed:
                    added += closed - entry.closed
                    entry.closed = closed
        return added

    def available(self, base: str, quote: str, duration_mins: int) -> int:
        """How many candles of a series have closed (KeyError for a series the feed lacks)."""
        with self._lock:
            return self._entry(base, quote, duration_mins).closed

    def last_close(self, base: str, quote: str, duration_mins: int) -> int:
        """Unix time at which the newest available candle of a series closed."""
        with self._lock:
            entry = self._entry(base, quote, duration_mins)
            return entry.origin + entry.closed * entry.period

    def candles(self, base: str, quote: str, duration_mins: int, count: int) -> list[Candle]:
        """The newest `count` available candles of a series, oldest first."""
        with self._lock:
            entry = self._entry(base, quote, duration_mins)
            end = entry.closed
        return entry.series.candles(end - count, end)

    def query(self, query: tuple[Any, ...]) -> list[tuple[int, int]]:
        """The numbers `queryHistoricalCandles` returns; `PrecompileRevert` for a bad query."""
        base, quote, total, duration, order, types = query
        if total <= 0:
            raise PrecompileRevert("price history: total_candles must be positive")
        if not types:
            raise PrecompileRevert("price history: candle_types is empty")
        if order not in (0, 1):
            raise PrecompileRevert("price history: order must be 0 (ASCENDING) or 1 (DESCENDING)")
        if any(t >= len(_FIELDS) for t in types):
            raise PrecompileRevert("price history: unknown candle type (HIGH 0, LOW 1, OPEN 2, CLOSE 3, VOLUME 4)")
        try:
            available = self.available(base, quote, duration)
        except KeyError:
            raise PrecompileRevert(f"no price history for {base}/{quote} at {duration} minutes") from None
        if total > available:
            raise PrecompileRevert(f"price history: {base}/{quote} at {duration} minutes has {available} "
                                   f"candles, asked for {total}")
        series = self._series[(base.upper(), quote.upper(), duration)].series
        price_decimals = series.market.price_decimals
        rows = self.candles(base, quote, duration, total)
        if order == 1:
            rows = rows[::-1]
        fields = [_FIELDS[t] for t in types]
        return [(getattr(c, f), VOLUME_DECIMALS if f == "volume" else price_decimals) for c in rows for f in fields]

    def _entry(self, base: str, quote: str, duration_mins: int) -> _Series:
        """Caller holds the lock; markets are matched case-insensitively."""
        return self._series[(base.upper(), quote.upper(), duration_mins)]


class PriceHistoryPrecompile:
    """Callable precompile over a `PriceFeed`, running models with the inference precompile."""

    def __init__(self, feed: PriceFeed, inference: InferencePrecompile) -> None:
        self.feed = feed
        self.inference = inference

    def __call__(self, call: PrecompileCall) -> PrecompileResult:
        from eth_abi import encode
        from eth_utils import keccak

        selector, body = call.data[:4], call.data[4:]
        if selector == QUERY_HISTORICAL_CANDLES_SELECTOR:
            (query,) = self._decode([HISTORICAL_INPUT_QUERY], body)
            numbers = self.feed.query(query)
            return PrecompileResult(output=encode(["(int128,int128)[]"], [numbers]), gas=self._gas(numbers))
        if selector == RUN_INFERENCE_ON_PRICE_FEED_SELECTOR:
            model_id, input_name, query = self._decode(["string", "string", HISTORICAL_INPUT_QUERY], body)
            if not input_name:
                raise PrecompileRevert("price history: inputName is empty")
            numbers = self.feed.query(query)
            model_input: tuple[list[Any], list[Any]] = ([(input_name, numbers, [1, query[2], len(query[5])])], [])
            compute_gas = 0
            try:  # bounded as any inference: outside the chain's lock, within the call's gas
                outputs, compute_gas = self.inference.bounded_run(call, model_id, model_input)
                output = encode_model_output(outputs, is_simulation_result=call.is_static)
            except OpenGradientError as exc:
                raise PrecompileRevert(exc.message, gas=compute_gas) from exc
            encoded = encode([MODEL_OUTPUT], [output])
            inference_id = "0x" + keccak(call.origin.encode() + call.block_number.to_bytes(8, "big")
                                         + call.data).hex()
            event = encode(MODEL_INFERENCE_ARGS, [inference_id, (0, model_id, model_input), output])
            return PrecompileResult(output=encoded, logs=[([bytes.fromhex(MODEL_INFERENCE_TOPIC[2:])], event)],
                                    gas=self._gas(numbers) + 16 * (len(encoded) + len(event)) + compute_gas)
        raise PrecompileRevert("unknown function: the price-history precompile has queryHistoricalCandles "
                               "and runInferenceOnPriceFeed")

    @staticmethod
    def _decode(types: list[str], body: bytes) -> Any:
        from eth_abi import decode

        try:
            return decode(types, body)
        except Exception as exc:
            raise PrecompileRevert(f"price history: malformed call data: {exc}") from exc

    @staticmethod
    def _gas(numbers: list[tuple[int, int]]) -> int:
        return _BASE_GAS + _GAS_PER_CANDLE_VALUE * len(numbers)
