"""The benchmark harness: runner arithmetic, predicates, registry, output (no timing asserts)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path

import pytest

from bench.harness import (
    Benchmark,
    Elapsed,
    Registry,
    Result,
    at_most,
    baseline_plus,
    format_seconds,
    print_json,
    print_plain,
    print_table,
    ratio_at_most,
    rows,
    run,
)

REPO = Path(__file__).resolve().parents[1]


def durations(values: Iterable[float]) -> Callable[[], object]:
    """A timed function that reports the given durations in turn (deterministic 'timings')."""
    it = iter(values)
    return lambda: Elapsed(next(it))


def test_runner_median_ratio_and_met() -> None:
    bench = Benchmark("x", durations([0.9, 0.3, 0.1, 0.2, 0.5]), durations([0.1, 0.1, 0.2, 0.1, 0.1]),
                      "≤ 2.5× baseline", ratio_at_most(2.5))
    result = run(bench, repeat=4, warmup=1)  # the warm-up consumes 0.9 and the first 0.1
    assert result.samples == [0.3, 0.1, 0.2, 0.5]
    assert result.baseline_samples == [0.1, 0.2, 0.1, 0.1]
    assert result.median == pytest.approx(0.25)
    assert result.baseline_median == pytest.approx(0.1)
    assert result.ratio == pytest.approx(2.5)
    assert result.met is True
    assert result.error is None


def test_runner_without_baseline_and_wall_time() -> None:
    calls: list[int] = []
    bench = Benchmark("wall", lambda: calls.append(1), None, "≤ 1 h", at_most(3600.0), repeat=3,
                      warmup=2)
    result = run(bench)  # the benchmark's own counts apply
    assert len(calls) == 5
    assert len(result.samples) == 3 and all(s >= 0 for s in result.samples)
    assert result.baseline_samples is None and result.baseline_median is None
    assert result.ratio is None
    assert result.met is True
    assert result.to_json()["ratio"] is None


def test_missed_target_is_reported_not_raised() -> None:
    result = run(Benchmark("slow", durations([1.0] * 3), None, "≤ 0.5 s", at_most(0.5)),
                 repeat=3, warmup=0)
    assert result.met is False
    assert rows([result])[0][3] == "—"
    assert rows([result])[0][5] == "NOT MET"


def test_predicates() -> None:
    assert at_most(0.3)(0.3, None) and not at_most(0.3)(0.31, 0.01)
    assert ratio_at_most(1.3)(1.3, 1.0) and not ratio_at_most(1.3)(1.31, 1.0)
    assert baseline_plus(0.005)(0.015, 0.010) and not baseline_plus(0.005)(0.016, 0.010)
    with pytest.raises(ValueError):
        ratio_at_most(2.0)(1.0, None)


def test_registry_selects_and_captures_errors() -> None:
    registry = Registry()

    @registry.register("ok", "≤ 1 s")
    def ok(stack: ExitStack) -> Benchmark:
        return Benchmark("ok", durations([0.5] * 4), None, "≤ 1 s", at_most(1.0))

    @registry.register("broken", "≤ 1 s")
    def broken(stack: ExitStack) -> Benchmark:
        raise RuntimeError("no devnet here")

    assert registry.select(None) == ["ok", "broken"]
    assert registry.select(["brok"]) == ["broken"]
    with pytest.raises(KeyError):
        registry.select(["nothing"])
    with pytest.raises(ValueError):
        registry.register("ok", "again")(ok)

    results = registry.run(["ok", "broken"], repeat=3, warmup=1, progress=None)
    assert results[0].met is True and results[0].median == pytest.approx(0.5)
    assert results[1].met is None and results[1].error == "RuntimeError: no devnet here"

    for printer in (print_table, lambda r, out: print_plain(rows(r), out)):
        out = io.StringIO()
        printer(results, out)
        text = out.getvalue()
        assert "ok" in text and "ERROR RuntimeError: no devnet here" in text

    out = io.StringIO()
    print_json(results, out, quick=True)
    document = json.loads(out.getvalue())
    assert document["quick"] is True
    assert [b["name"] for b in document["benchmarks"]] == ["ok", "broken"]


def test_format_seconds() -> None:
    assert format_seconds(None) == "—"
    assert format_seconds(2.5) == "2.50 s"
    assert format_seconds(0.0405) == "40.5 ms"
    assert format_seconds(0.000012) == "12 µs"


def test_cli_json_quick_import() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "import", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["quick"] is True
    (entry,) = document["benchmarks"]
    assert entry["name"] == "import"
    assert entry["error"] is None
    assert isinstance(entry["target"], str) and entry["target"]
    assert isinstance(entry["met"], bool)
    assert entry["repeat"] == 3
    assert len(entry["samples_s"]) == 3 and len(entry["baseline_samples_s"]) == 3
    for key in ("median_s", "baseline_median_s", "ratio"):
        assert isinstance(entry[key], float) and entry[key] > 0
    assert entry["ratio"] == pytest.approx(entry["median_s"] / entry["baseline_median_s"])


def test_cli_rejects_unknown_benchmark() -> None:
    completed = subprocess.run([sys.executable, "-m", "bench", "--only", "no-such-benchmark"],
                               cwd=REPO, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert "no benchmark matches" in completed.stderr


def test_result_json_round_trip() -> None:
    result = Result("r", "t", [0.1, 0.3], [0.1, 0.1], True)
    assert json.loads(json.dumps(result.to_json()))["median_s"] == pytest.approx(0.2)
