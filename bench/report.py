"""`python -m bench.report`: every benchmark registered in `bench/`, run once, printed as one table.

It imports every module of the `bench` package (so a benchmark module added later is picked up
without touching this file), collects every harness `Registry` those modules define, and runs all
their benchmarks with the harness: one row each with the median, the same-run baseline's median,
their ratio, the target and whether it was met. Nothing here times anything itself.

Options: `--quick` (3 repetitions, 1 warm-up), `--repeat N`, `--only NAME` (repeatable; exact name
or substring), `--json`. Exit code 0 when every benchmark could be measured (met or not: this is a
report), 1 when one could not.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import sys
from collections.abc import Iterable
from typing import TextIO

from bench.harness import Registry, Result, print_json, print_table

#: Modules of the package that hold no benchmarks of their own.
_NOT_BENCHMARKS = {"harness", "report"}


def bench_modules() -> list[str]:
    """Names of the `bench` modules that may register benchmarks (`bench.__main__` first)."""
    import bench

    names = [m.name for m in pkgutil.iter_modules(bench.__path__) if m.name not in _NOT_BENCHMARKS]
    names.sort(key=lambda n: (n != "__main__", n))
    return [f"bench.{n}" for n in names]


def collect(modules: Iterable[str] | None = None) -> Registry:
    """One registry holding every benchmark of every registry the modules define, in order."""
    loaded = [importlib.import_module(name) for name in (bench_modules() if modules is None else modules)]
    merged = Registry()
    seen: set[int] = set()
    for module in loaded:  # registries are read after every import: a module may add to another's
        for value in vars(module).values():
            if not isinstance(value, Registry) or id(value) in seen:
                continue
            seen.add(id(value))
            for name, factory in value.factories.items():
                if merged.factories.get(name) is factory:
                    continue
                merged.register(name, value.targets[name])(factory)
    return merged


def report(registry: Registry, argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Run the selected benchmarks of `registry` and print them; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Run every registered benchmark and print one table: median, same-run baseline, "
                    "ratio, target, met or not.")
    parser.add_argument("--quick", action="store_true", help="3 repetitions and 1 warm-up per benchmark")
    parser.add_argument("--repeat", type=int, metavar="N", help="repetitions per benchmark")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(registry.factories)}")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        names = registry.select(args.only)
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else None)
    results = registry.run(names, repeat=repeat, warmup=1 if args.quick else None)
    meta = {"python": platform.python_version(), "platform": platform.platform(), "quick": args.quick}
    if args.json:
        print_json(results, out, **meta)
    else:
        print_table(results, out, title=f"opengradient — performance targets, Python {meta['python']}"
                                        f"{' (quick)' if args.quick else ''}")
        print(summary(results), file=out)
    return 1 if any(r.error is not None for r in results) else 0


def summary(results: list[Result]) -> str:
    """One line: how many targets were met, which were not, which could not be measured."""
    measured = [r for r in results if r.error is None]
    missed = [r.name for r in measured if not r.met]
    line = f"{len(measured) - len(missed)} of {len(results)} targets met"
    if missed:
        line += f"; NOT MET: {', '.join(missed)}"
    if len(measured) < len(results):
        line += f"; could not measure: {', '.join(r.name for r in results if r.error is not None)}"
    return line


def main(argv: list[str] | None = None) -> int:
    """Collect every registered benchmark and report on all of them."""
    return report(collect(), argv)


if __name__ == "__main__":
    sys.exit(main())
