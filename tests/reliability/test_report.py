"""`python -m bench.report`: collects every registered benchmark and prints one table (no timing asserts)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from contextlib import ExitStack
from pathlib import Path

import pytest

from bench.harness import Benchmark, Elapsed, Registry, at_most, ratio_at_most
from bench.report import bench_modules, collect, report, summary

REPO = Path(__file__).resolve().parents[2]


def test_collect_finds_every_benchmark_of_the_bench_package() -> None:
    import bench.__main__ as cli

    assert bench_modules()[0] == "bench.__main__"
    assert "bench.harness" not in bench_modules() and "bench.report" not in bench_modules()
    collected = collect()
    assert list(cli.registry.factories) == list(collected.factories)[:len(cli.registry.factories)]
    assert collected.targets == {**collected.targets, **cli.registry.targets}


def _fake(name: str, registry: Registry) -> types.ModuleType:
    module = types.ModuleType(name)
    module.registry = registry  # type: ignore[attr-defined]
    sys.modules[name] = module
    return module


def test_collect_merges_registries_of_several_modules_once(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = Registry(), Registry()

    def quick(stack: ExitStack) -> Benchmark:
        return Benchmark("a", lambda: Elapsed(0.01), lambda: Elapsed(0.02), "≤ 1 s", at_most(1.0))

    first.register("a", "≤ 1 s")(quick)
    second.register("b", "≤ 2× baseline")(
        lambda stack: Benchmark("b", lambda: Elapsed(0.03), lambda: Elapsed(0.01), "≤ 2× baseline", ratio_at_most(2)))
    for name, registry in [("fake_bench_one", first), ("fake_bench_two", second)]:
        monkeypatch.setitem(sys.modules, name, _fake(name, registry))
    alias = _fake("fake_bench_alias", first)  # the same registry reached twice counts once
    monkeypatch.setitem(sys.modules, "fake_bench_alias", alias)

    merged = collect(["fake_bench_one", "fake_bench_two", "fake_bench_alias"])

    assert list(merged.factories) == ["a", "b"]
    out = io.StringIO()
    assert report(merged, ["--quick"], out) == 0
    text = out.getvalue()
    for word in ("benchmark", "median", "baseline", "ratio", "target", "verdict", "met", "NOT MET", "3.00×"):
        assert word in text
    assert "1 of 2 targets met; NOT MET: b" in text


def test_a_benchmark_that_cannot_run_is_an_error_row_and_exit_code_one() -> None:
    registry = Registry()

    def broken(stack: ExitStack) -> Benchmark:
        raise RuntimeError("no devnet")

    registry.register("broken", "≤ 1 s")(broken)
    out = io.StringIO()
    assert report(registry, ["--json"], out) == 1
    document = json.loads(out.getvalue())
    assert document["benchmarks"][0]["error"] == "RuntimeError: no devnet"
    table = io.StringIO()
    assert report(registry, [], table) == 1
    assert "0 of 1 targets met; could not measure: broken" in table.getvalue()
    assert summary([]) == "0 of 0 targets met"


def test_the_command_runs_one_benchmark_end_to_end() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.report", "--quick", "--only", "import"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "import" in done.stdout and "targets met" in done.stdout
