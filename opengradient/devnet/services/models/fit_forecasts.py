"""Fit the genesis workflows' forecast models: `python -m opengradient.devnet.services.models.fit_forecasts`.

Each model (see `forecasts.py`) is a linear regression fitted by numpy least squares on the first
`N_FIT` synthetic candles of its series (`opengradient.devnet.chain.precompiles.candles`, the same candles the
devnet's price-history precompile serves), then written as an ONNX graph built with `onnx.helper`. Parameters are
rounded to 8 significant digits before they are written, so the files are byte-for-byte
reproducible (a BLAS that differs in the last bit cannot change them); a test checks the
committed files against a fresh fit. `--report` prints the in-sample fit of each model.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, checker, helper, numpy_helper

from opengradient.devnet.chain.precompiles.candles import SyntheticSeries, market
from opengradient.devnet.services.models.forecasts import FORECAST_MODELS, MODELS_DIR, ForecastModel
from opengradient.types import CandleType

IR_VERSION = 8
OPSET = 17
PRODUCER = "opengradient-devnet"
#: Bumped by hand when a model or the fit changes.
PRODUCER_VERSION = "1"
#: Candles fitted on, per model.
N_FIT = 20_000
#: Ridge penalty (in standardized units) of the `standardized` models.
RIDGE = 1.0
#: Floor of the volatility forecast.
MIN_VOLATILITY = 1e-4
_HAR_WINDOWS = (3, 8)

_COLUMN = {CandleType.HIGH: "high", CandleType.LOW: "low", CandleType.OPEN: "open",
           CandleType.CLOSE: "close", CandleType.VOLUME: "volume"}


def _round(values: np.ndarray) -> np.ndarray:
    """Round to 8 significant digits (through the decimal text, so the result is exact)."""
    return np.array([float(f"{v:.8g}") for v in np.asarray(values, dtype=np.float64).ravel()]
                    ).reshape(np.shape(values))


def _windows(spec: ForecastModel, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs ``[samples, total_candles, types]`` and next-candle log-returns ``[samples]``."""
    series = SyntheticSeries(market(spec.base, spec.quote), spec.duration_mins)
    columns = series.floats(0, n)
    data = np.stack([np.array(columns[_COLUMN[t]]) for t in spec.candle_types], axis=1)
    closes = np.log(np.array(columns["close"]))
    w = spec.total_candles
    starts = np.arange(0, n - w)  # window [s, s + w), target: return of candle s + w
    inputs = np.stack([data[s:s + w] for s in starts])
    targets = closes[starts + w] - closes[starts + w - 1]
    return inputs, targets


def _lstsq(features: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, float]:
    design = np.hstack([features, np.ones((len(features), 1))])
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return solution[:-1], float(solution[-1])


# ---------------------------------------------------------------------------------------------
# Fits: each returns the parameters its graph needs, and a numpy function of the inputs that the
# graph reproduces (used by --report and by the tests).
# ---------------------------------------------------------------------------------------------

Params = dict[str, np.ndarray]


def _log_returns(inputs: np.ndarray, column: int) -> np.ndarray:
    logs = np.log(inputs[:, :, column])
    return np.asarray(logs[:, 1:] - logs[:, :-1])


def fit_volatility(spec: ForecastModel, inputs: np.ndarray, targets: np.ndarray) -> Params:
    """Y = max(|r|·w + b, floor), where w spreads three HAR weights over the window."""
    absr = np.abs(_log_returns(inputs, 0))
    k = absr.shape[1]
    har = np.stack([absr[:, k - m:].mean(axis=1) for m in _HAR_WINDOWS] + [absr.mean(axis=1)], axis=1)
    # E|r| = σ·√(2/π) for a normal r: scale the target so the forecast is σ itself.
    weights, bias = _lstsq(har, np.abs(targets) * math.sqrt(math.pi / 2))
    full = np.full(k, weights[-1] / k)
    for m, weight in zip(_HAR_WINDOWS, weights[:-1], strict=True):
        full[k - m:] += weight / m
    return {"W": _round(full).reshape(k, 1), "B": _round(np.array([bias]))}


def fit_return(spec: ForecastModel, inputs: np.ndarray, targets: np.ndarray) -> Params:
    """regression_output = [r, log close_last]·w + b."""
    logs = np.log(inputs[:, :, 0])
    features = np.hstack([logs[:, 1:] - logs[:, :-1], logs[:, -1:]])
    weights, bias = _lstsq(features, targets)
    return {"W": _round(weights).reshape(-1, 1), "B": _round(np.array([bias]))}


def _standardized_features(inputs: np.ndarray) -> np.ndarray:
    logs = np.log(inputs)  # columns: open, high, low, close
    close, open_, high, low = logs[:, :, 3], logs[:, :, 0], logs[:, :, 1], logs[:, :, 2]
    return np.asarray(np.hstack([close[:, 1:] - close[:, :-1], high - low, close - open_]))


def fit_standardized(spec: ForecastModel, inputs: np.ndarray, targets: np.ndarray) -> Params:
    """z = (f - μ)/σ; destandardized_prediction = (z·w + b)·σ_y + μ_y, ridge-regularised."""
    features = _standardized_features(inputs)
    mu = _round(features.mean(axis=0))
    sd = _round(features.std(axis=0))
    mu_y = _round(np.array([targets.mean()]))
    sd_y = _round(np.array([targets.std()]))
    z = (features - mu) / sd
    zy = (targets - mu_y[0]) / sd_y[0]
    zc = z - z.mean(axis=0)
    gram = zc.T @ zc + RIDGE * np.eye(z.shape[1])
    weights = np.linalg.solve(gram, zc.T @ (zy - zy.mean()))
    bias = float(zy.mean() - z.mean(axis=0) @ weights)
    return {"MU": mu.reshape(1, -1), "INV_SD": _round(1.0 / sd).reshape(1, -1),
            "W": _round(weights).reshape(-1, 1), "B": _round(np.array([bias])),
            "SD_Y": sd_y, "MU_Y": mu_y}


def predict(spec: ForecastModel, params: Params, inputs: np.ndarray) -> np.ndarray:
    """What the model's graph computes, in numpy: one forecast per input window."""
    if spec.kind == "volatility":
        absr = np.abs(_log_returns(inputs, 0))
        return np.asarray(np.maximum(absr @ params["W"][:, 0] + params["B"][0], MIN_VOLATILITY))
    if spec.kind == "return":
        logs = np.log(inputs[:, :, 0])
        features = np.hstack([logs[:, 1:] - logs[:, :-1], logs[:, -1:]])
        return np.asarray(features @ params["W"][:, 0] + params["B"][0])
    z = (_standardized_features(inputs) - params["MU"][0]) * params["INV_SD"][0]
    return np.asarray((z @ params["W"][:, 0] + params["B"][0]) * params["SD_Y"][0] + params["MU_Y"][0])


FITS: dict[str, Callable[[ForecastModel, np.ndarray, np.ndarray], Params]] = {
    "volatility": fit_volatility, "return": fit_return, "standardized": fit_standardized}


def fit(spec: ForecastModel, n: int = N_FIT) -> Params:
    """Fit one model's parameters on the first `n` candles of its series."""
    inputs, targets = _windows(spec, n)
    return FITS[spec.kind](spec, inputs, targets)


# ---------------------------------------------------------------------------------------------
# Graphs
# ---------------------------------------------------------------------------------------------


def _i64(name: str, values: list[int]) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name=name)


def _f64(name: str, values: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.float64), name=name)


def _column(source: str, index: int, out: str, w: int) -> list[onnx.NodeProto]:
    """logs[:, :, index] as [1, w]."""
    return [
        helper.make_node("Slice", [source, f"c{index}", f"c{index + 1}", "axis2"], [f"{out}_3d"],
                         name=f"slice_{out}"),
        helper.make_node("Reshape", [f"{out}_3d", "row"], [out], name=f"reshape_{out}"),
    ]


def _returns(source: str, out: str, w: int) -> list[onnx.NodeProto]:
    """source[:, 1:] - source[:, :-1] for a [1, w] source."""
    return [
        helper.make_node("Slice", [source, "one", "w", "axis1"], [f"{out}_next"], name=f"{out}_next"),
        helper.make_node("Slice", [source, "zero", "w_1", "axis1"], [f"{out}_prev"], name=f"{out}_prev"),
        helper.make_node("Sub", [f"{out}_next", f"{out}_prev"], [out], name=f"{out}_diff"),
    ]


def build_graph(spec: ForecastModel, params: Params) -> ModelProto:
    """The ONNX model of one fitted forecast."""
    w, k = spec.total_candles, len(spec.candle_types)
    inits = [_i64("zero", [0]), _i64("one", [1]), _i64("w", [w]), _i64("w_1", [w - 1]),
             _i64("axis1", [1]), _i64("axis2", [2]), _i64("row", [1, w])]
    inits += [_i64(f"c{i}", [i]) for i in range(k + 1)]
    nodes = [helper.make_node("Log", [spec.input_name], ["logs"], name="log")]
    out = spec.output_name
    if spec.kind == "volatility":
        nodes += _column("logs", 0, "log_close", w) + _returns("log_close", "r", w)
        nodes += [helper.make_node("Abs", ["r"], ["abs_r"], name="abs"),
                  helper.make_node("MatMul", ["abs_r", "W"], ["linear"], name="har"),
                  helper.make_node("Add", ["linear", "B"], ["raw"], name="bias"),
                  helper.make_node("Max", ["raw", "floor"], [out], name="floor")]
        inits += [_f64("floor", np.array([MIN_VOLATILITY]))]
    elif spec.kind == "return":
        nodes += _column("logs", 0, "log_close", w) + _returns("log_close", "r", w)
        nodes += [helper.make_node("Slice", ["log_close", "w_1", "w", "axis1"], ["level"], name="level"),
                  helper.make_node("Concat", ["r", "level"], ["features"], name="features", axis=1),
                  helper.make_node("MatMul", ["features", "W"], ["linear"], name="regression"),
                  helper.make_node("Add", ["linear", "B"], [out], name="bias")]
    else:
        for index, label in enumerate(("open", "high", "low", "close")):
            nodes += _column("logs", index, f"log_{label}", w)
        nodes += _returns("log_close", "r", w)
        nodes += [helper.make_node("Sub", ["log_high", "log_low"], ["range"], name="range"),
                  helper.make_node("Sub", ["log_close", "log_open"], ["body"], name="body"),
                  helper.make_node("Concat", ["r", "range", "body"], ["features"], name="features", axis=1),
                  helper.make_node("Sub", ["features", "MU"], ["centred"], name="centre"),
                  helper.make_node("Mul", ["centred", "INV_SD"], ["standardized"], name="scale"),
                  helper.make_node("MatMul", ["standardized", "W"], ["z_linear"], name="regression"),
                  helper.make_node("Add", ["z_linear", "B"], ["z_prediction"], name="bias"),
                  helper.make_node("Mul", ["z_prediction", "SD_Y"], ["scaled_prediction"], name="destandardize"),
                  helper.make_node("Add", ["scaled_prediction", "MU_Y"], [out], name="recentre")]
    inits += [_f64(name, value) for name, value in sorted(params.items())]
    graph = helper.make_graph(
        nodes=nodes, name=spec.name.replace("-", "_"),
        inputs=[helper.make_tensor_value_info(spec.input_name, TensorProto.DOUBLE, [1, w, k])],
        outputs=[helper.make_tensor_value_info(out, TensorProto.DOUBLE, [1, 1])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=PRODUCER, producer_version=PRODUCER_VERSION,
                              doc_string=spec.description)
    model.ir_version = IR_VERSION
    model.model_version = 1
    checker.check_model(model, full_check=True)
    return model


def model_bytes(spec: ForecastModel) -> bytes:
    """The serialised model, deterministically (same candles, same bytes)."""
    return build_graph(spec, fit(spec)).SerializeToString(deterministic=True)


def build(directory: Path = MODELS_DIR) -> list[Path]:
    """Fit and write every forecast model into `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in FORECAST_MODELS:
        target = directory / spec.filename
        target.write_bytes(model_bytes(spec))
        written.append(target)
    return written


def report() -> None:
    """Print each model's in-sample fit and the range of its forecasts."""
    for spec in FORECAST_MODELS:
        inputs, targets = _windows(spec, N_FIT)
        forecast = predict(spec, fit(spec), inputs)
        if spec.kind == "volatility":
            actual = np.abs(targets) * math.sqrt(math.pi / 2)
        else:
            actual = targets
        r2 = 1 - np.mean((actual - forecast) ** 2) / np.var(actual)
        print(f"{spec.name:36s} R²={r2:+.4f} forecast p5={np.percentile(forecast, 5):+.5f} "
              f"p50={np.median(forecast):+.5f} p95={np.percentile(forecast, 95):+.5f}")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: refit and rewrite the committed models (or into `--out`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="output directory")
    parser.add_argument("--report", action="store_true", help="print the fit of each model; write nothing")
    args = parser.parse_args(argv)
    if args.report:
        report()
        return
    for path in build(args.out):
        print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
