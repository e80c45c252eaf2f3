"""The forecast models behind the devnet's seven genesis workflows.

Each is a small linear model fitted by least squares to the devnet's synthetic candles
(`opengradient.devnet.chain.precompiles.candles`) by
`python -m opengradient.devnet.services.models.fit_forecasts`, which
writes the `.onnx` files next to this module (committed; a refit gives identical bytes). The
devnet publishes them to its Model Hub at start and points the workflow contracts at them.

Every model takes one float64 tensor of shape ``[1, total_candles, len(candle_types)]`` (what a
`PriceHistoryInference` workflow builds from its query) and returns one float64 ``[1, 1]``:

* ``volatility``: the next candle's volatility (standard deviation of its log-return), from the
  absolute log-returns of the last 3, 8 and all closes (a HAR-style regression);
* ``return``: the next candle's log-return, from the recent log-returns and the price level;
* ``standardized``: the next candle's log-return from standardized features (log-returns,
  high/low ranges and candle bodies), predicted in standard units and destandardized.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opengradient.types import CandleOrder, CandleType

MODELS_DIR = Path(__file__).resolve().parent

_CLOSE = (CandleType.CLOSE,)
_OHLC = (CandleType.OPEN, CandleType.HIGH, CandleType.LOW, CandleType.CLOSE)


@dataclass(frozen=True)
class ForecastModel:
    """One fitted model and the candles its workflow feeds it."""

    name: str
    kind: str
    base: str
    quote: str
    duration_mins: int
    total_candles: int
    candle_types: tuple[CandleType, ...]
    input_name: str
    output_name: str
    description: str

    @property
    def filename(self) -> str:
        """The committed `.onnx` file's name."""
        return f"{self.name}.onnx"

    @property
    def path(self) -> Path:
        """The committed `.onnx` file."""
        return MODELS_DIR / self.filename

    @property
    def order(self) -> CandleOrder:
        """Candles are fed oldest first."""
        return CandleOrder.ASCENDING


def _return_model(base: str) -> ForecastModel:
    return ForecastModel(
        name=f"{base.lower()}-usdt-1h-return-forecast", kind="return", base=base, quote="USDT",
        duration_mins=60, total_candles=12, candle_types=_CLOSE, input_name="price_history",
        output_name="regression_output",
        description=(f"{base}/USDT next-hour log-return forecast: float64 price_history [1,12,1] (hourly "
                     "closes, oldest first) -> float64 regression_output [1,1]."))


ETH_VOLATILITY = ForecastModel(
    name="eth-usdt-1h-volatility-forecast", kind="volatility", base="ETH", quote="USDT",
    duration_mins=60, total_candles=24, candle_types=_CLOSE, input_name="X", output_name="Y",
    description=("ETH/USDT next-hour volatility forecast: float64 X [1,24,1] (hourly closes, oldest "
                 "first) -> float64 Y [1,1] (standard deviation of the next log-return)."))
BTC_RETURN = _return_model("BTC")
ETH_RETURN = _return_model("ETH")
SOL_RETURN = _return_model("SOL")
SUI_RETURN = _return_model("SUI")
SUI_30M_RETURN = ForecastModel(
    name="sui-usdt-30m-return-forecast", kind="standardized", base="SUI", quote="USDT",
    duration_mins=30, total_candles=16, candle_types=_OHLC, input_name="price_data",
    output_name="destandardized_prediction",
    description=("SUI/USDT next 30-minute log-return forecast: float64 price_data [1,16,4] (open, high, "
                 "low, close; oldest first) -> float64 destandardized_prediction [1,1]."))
SUI_6H_RETURN = ForecastModel(
    name="sui-usdt-6h-return-forecast", kind="standardized", base="SUI", quote="USDT",
    duration_mins=360, total_candles=8, candle_types=_OHLC, input_name="price_data",
    output_name="destandardized_prediction",
    description=("SUI/USDT next 6-hour log-return forecast: float64 price_data [1,8,4] (open, high, "
                 "low, close; oldest first) -> float64 destandardized_prediction [1,1]."))

#: Every forecast model, in the order of the public table of workflow models.
FORECAST_MODELS: tuple[ForecastModel, ...] = (
    ETH_VOLATILITY, BTC_RETURN, ETH_RETURN, SOL_RETURN, SUI_RETURN, SUI_30M_RETURN, SUI_6H_RETURN)

__all__ = ["BTC_RETURN", "ETH_RETURN", "ETH_VOLATILITY", "FORECAST_MODELS", "SOL_RETURN", "SUI_30M_RETURN",
           "SUI_6H_RETURN", "SUI_RETURN", "ForecastModel"]
