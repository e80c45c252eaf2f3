"""A small benchmark harness: each figure is timed against a baseline measured in the same run.

A `Benchmark` is a function to time, an optional baseline function, the target it is held to and
a predicate that says whether the target is met. Benchmarks that need a fixture (a running
devnet) are registered as factories that enter it on an `ExitStack`, so `--only` starts nothing
it does not run. A timed function may return a float: its own measurement of the duration in
seconds wrapped in `Elapsed` (for work timed inside a child process); anything else means "use
the wall time".
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TextIO

#: A function to time; returning an `Elapsed` reports its own duration instead of the wall time.
Timed = Callable[[], object]
#: (median, baseline median or None) -> target met?
Predicate = Callable[[float, float | None], bool]
#: Builds a benchmark, entering whatever fixtures it needs on the stack.
Factory = Callable[[ExitStack], "Benchmark"]

DEFAULT_REPEAT = 20
DEFAULT_WARMUP = 2


class Elapsed(float):
    """A duration in seconds that a timed function measured itself (e.g. inside a child process)."""


@dataclass(frozen=True)
class Benchmark:
    """One figure: what to time, what to compare it with, and the target it is held to."""

    name: str
    fn: Timed
    baseline: Timed | None
    target: str
    met: Predicate
    #: Repetitions and warm-up calls for this benchmark when the run does not fix them.
    repeat: int = DEFAULT_REPEAT
    warmup: int = DEFAULT_WARMUP


@dataclass(frozen=True)
class Result:
    """The measurements of one benchmark."""

    name: str
    target: str
    samples: list[float]
    baseline_samples: list[float] | None
    met: bool | None
    error: str | None = None

    @property
    def median(self) -> float | None:
        """Median of the samples, in seconds."""
        return statistics.median(self.samples) if self.samples else None

    @property
    def baseline_median(self) -> float | None:
        """Median of the baseline samples, in seconds (None without a baseline)."""
        return statistics.median(self.baseline_samples) if self.baseline_samples else None

    @property
    def ratio(self) -> float | None:
        """Median over baseline median (None without a baseline)."""
        median, base = self.median, self.baseline_median
        if median is None or base is None or base == 0:
            return None
        return median / base

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON form of the result (times in seconds)."""
        return {"name": self.name, "target": self.target, "median_s": self.median,
                "baseline_median_s": self.baseline_median, "ratio": self.ratio, "met": self.met,
                "repeat": len(self.samples), "samples_s": self.samples,
                "baseline_samples_s": self.baseline_samples, "error": self.error}


# --- predicates ---------------------------------------------------------------------------------

def at_most(seconds: float) -> Predicate:
    """Met when the median is at most `seconds` (absolute target)."""
    return lambda median, _baseline: median <= seconds


def ratio_at_most(factor: float) -> Predicate:
    """Met when the median is at most `factor` times the baseline median."""
    def met(median: float, baseline: float | None) -> bool:
        if baseline is None:
            raise ValueError("a ratio target needs a baseline")
        return median <= factor * baseline
    return met


def baseline_plus(seconds: float) -> Predicate:
    """Met when the median exceeds the baseline median by at most `seconds`."""
    def met(median: float, baseline: float | None) -> bool:
        if baseline is None:
            raise ValueError("a baseline-plus target needs a baseline")
        return median <= baseline + seconds
    return met


# --- running ------------------------------------------------------------------------------------

def time_once(fn: Timed) -> float:
    """Call `fn` once; its duration in seconds (its own report if it returns an `Elapsed`)."""
    started = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - started
    if isinstance(value, Elapsed):
        return float(value)
    return elapsed


def run(bench: Benchmark, *, repeat: int | None = None, warmup: int | None = None) -> Result:
    """Warm up, then time `bench.fn` and its baseline `repeat` times, interleaved.

    `repeat` and `warmup` override the benchmark's own counts (as `--quick` does).

    Interleaving (fn, baseline, fn, baseline…) exposes both to the same drift in machine load,
    so their ratio stays meaningful on a noisy machine.
    """
    n = max(1, bench.repeat if repeat is None else repeat)
    for _ in range(bench.warmup if warmup is None else warmup):
        bench.fn()
        if bench.baseline is not None:
            bench.baseline()
    gc.collect()
    samples: list[float] = []
    baseline_samples: list[float] | None = [] if bench.baseline is not None else None
    for _ in range(n):
        samples.append(time_once(bench.fn))
        if bench.baseline is not None and baseline_samples is not None:
            baseline_samples.append(time_once(bench.baseline))
    base = statistics.median(baseline_samples) if baseline_samples else None
    met = bench.met(statistics.median(samples), base)
    return Result(bench.name, bench.target, samples, baseline_samples, met)


@dataclass
class Registry:
    """Named benchmark factories, built and run one at a time (fixtures closed after each)."""

    factories: dict[str, Factory] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)

    def register(self, name: str, target: str) -> Callable[[Factory], Factory]:
        """Decorator: register a factory under `name` (used by `--only`)."""
        def add(factory: Factory) -> Factory:
            if name in self.factories:
                raise ValueError(f"benchmark {name!r} is registered twice")
            self.factories[name] = factory
            self.targets[name] = target
            return factory
        return add

    def select(self, only: Iterable[str] | None) -> list[str]:
        """Names matching `only` (exact name, else substring); every name when `only` is empty."""
        names = list(self.factories)
        if not only:
            return names
        chosen: list[str] = []
        for wanted in only:
            matches = [n for n in names if n == wanted] or [n for n in names if wanted in n]
            if not matches:
                raise KeyError(f"no benchmark matches {wanted!r}; known: {', '.join(names)}")
            chosen.extend(m for m in matches if m not in chosen)
        return chosen

    def run(self, names: Iterable[str], *, repeat: int | None = None, warmup: int | None = None,
            progress: TextIO | None = sys.stderr) -> list[Result]:
        """Build and run each named benchmark; a failure becomes an error result, not a crash."""
        results: list[Result] = []
        for name in names:
            if progress is not None:
                print(f"running {name} …", file=progress, flush=True)
            try:
                with ExitStack() as stack:
                    results.append(run(self.factories[name](stack), repeat=repeat, warmup=warmup))
            except Exception as exc:  # a report: show what broke and go on with the others
                results.append(Result(name, self.targets[name], [], None, None,
                                      error=f"{type(exc).__name__}: {exc}"))
        return results


# --- reporting ----------------------------------------------------------------------------------

def format_seconds(value: float | None) -> str:
    """Seconds in a readable unit."""
    if value is None:
        return "—"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def rows(results: list[Result]) -> list[tuple[str, str, str, str, str, str]]:
    """Table rows: name, median, baseline median, ratio, target, verdict."""
    table = []
    for r in results:
        if r.error is not None:
            verdict = f"ERROR {r.error}"
        else:
            verdict = "met" if r.met else "NOT MET"
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}×"
        table.append((r.name, format_seconds(r.median), format_seconds(r.baseline_median), ratio,
                      r.target, verdict))
    return table


HEADERS = ("benchmark", "median", "baseline", "ratio", "target", "verdict")


def print_table(results: list[Result], out: TextIO = sys.stdout, *, title: str = "") -> None:
    """Print the results as one table (rich when available, plain text otherwise)."""
    body = rows(results)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print_plain(body, out, title=title)
        return
    table = Table(title=title or None)
    for header in HEADERS:
        table.add_column(header, justify="right" if header in {"median", "baseline", "ratio"}
                         else "left")
    for row in body:
        style = "green" if row[5] == "met" else "bold red"
        table.add_row(*row[:5], f"[{style}]{row[5]}[/{style}]")
    Console(file=out, width=max(120, len(title))).print(table)


def print_plain(body: list[tuple[str, str, str, str, str, str]], out: TextIO, *, title: str = "") -> None:
    """Plain-text table."""
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
              for i, h in enumerate(HEADERS)]
    if title:
        print(title, file=out)
    for row in (HEADERS, tuple("-" * w for w in widths), *body):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)


def print_json(results: list[Result], out: TextIO = sys.stdout, **meta: Any) -> None:
    """Machine-readable results: `{"benchmarks": [...], **meta}`."""
    json.dump({**meta, "benchmarks": [r.to_json() for r in results]}, out, indent=2,
              ensure_ascii=False)
    print(file=out)
