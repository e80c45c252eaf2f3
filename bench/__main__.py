"""`python -m bench`: time each performance target against a baseline measured in the same run.

Options: `--quick` (few repetitions), `--only NAME` (repeatable; exact name or substring),
`--repeat N`, `--json`. The exit code is 0 when every benchmark ran, whether or not its target
was met (this is a report); it is 1 only when a benchmark could not be measured.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack

import opengradient as og
from bench import llm, zkml
from bench.harness import Benchmark, Elapsed, Registry, at_most, print_json, print_table

registry = Registry()

_COLD_START = """
import time
started = time.perf_counter()
import opengradient as og
net = og.devnet.start()
elapsed = time.perf_counter() - started
net.close()
print(repr(elapsed))
"""


def python(code: str) -> Callable[[], object]:
    """A function that runs `python -c code` in a fresh interpreter and waits for it."""
    def call() -> object:
        return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return call


@registry.register("import", "≤ 0.3 s median (subprocess total)")
def import_opengradient(stack: ExitStack) -> Benchmark:
    """`python -c "import opengradient"` against `python -c "pass"`."""
    return Benchmark("import", python("import opengradient"), python("pass"),
                     "≤ 0.3 s median (subprocess total)", at_most(0.3))


def _alpha_infer(stack: ExitStack, *, http: bool, name: str, target: str, limit: float) -> Benchmark:
    """`alpha.infer` on the small model against a bare `eth_call` of the same `run(...)` calldata."""
    from opengradient.client.alpha import prepare_inference

    net = stack.enter_context(og.devnet.start(http=http))
    model = net.model("price-regression")
    client = net.client
    prepared = prepare_inference(model.cid, og.InferenceMode.VANILLA, model.example_input)
    call = {"from": net.accounts[0].address, "to": net.network.contract_address,
            "data": "0x" + prepared.calldata.hex()}

    def infer() -> object:
        return client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)

    def eth_call() -> object:
        return client.alpha._sync.rpc.call("eth_call", call, "latest")

    return Benchmark(name, infer, eth_call, target, at_most(limit), repeat=30, warmup=3)


@registry.register("alpha.infer", "≤ 40 ms median, in-process")
def alpha_infer(stack: ExitStack) -> Benchmark:
    """In-process devnet (transports, no sockets)."""
    return _alpha_infer(stack, http=False, name="alpha.infer", target="≤ 40 ms median, in-process",
                        limit=0.040)


@registry.register("alpha.infer.http", "≤ 100 ms median, over HTTP (loopback)")
def alpha_infer_http(stack: ExitStack) -> Benchmark:
    """Devnet served by uvicorn on loopback; the client goes through real sockets."""
    return _alpha_infer(stack, http=True, name="alpha.infer.http",
                        target="≤ 100 ms median, over HTTP (loopback)", limit=0.100)


@registry.register("devnet.start", "≤ 2 s (fresh process, incl. lazy imports)")
def devnet_start_cold(stack: ExitStack) -> Benchmark:
    """`og.devnet.start()` to ready in a fresh interpreter: what a test run or a script waits for."""
    run_child = python(_COLD_START)

    def cold() -> object:
        completed = run_child()
        assert isinstance(completed, subprocess.CompletedProcess)
        return Elapsed(float(completed.stdout.decode().strip().splitlines()[-1]))

    return Benchmark("devnet.start", cold, None, "≤ 2 s (fresh process, incl. lazy imports)",
                     at_most(2.0), repeat=5, warmup=1)


@registry.register("devnet.start.warm", "≤ 2 s (again in the same process)")
def devnet_start_warm(stack: ExitStack) -> Benchmark:
    """`og.devnet.start()` to ready when its modules are already loaded (e.g. per-test fixtures)."""
    def warm() -> object:
        og.devnet.start().close()
        return None

    return Benchmark("devnet.start.warm", warm, None, "≤ 2 s (again in the same process)",
                     at_most(2.0), repeat=10, warmup=1)


llm.register(registry)
zkml.register(registry)


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the selected benchmarks, print one table (or JSON)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time each performance target against a baseline measured in the same run.")
    parser.add_argument("--quick", action="store_true", help="few repetitions (for tests)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(registry.factories)}")
    parser.add_argument("--repeat", type=int, metavar="N", help="repetitions per benchmark")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    args = parser.parse_args(argv)
    try:
        names = registry.select(args.only)
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    llm.SETTINGS.quick = args.quick
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else None)
    warmup = 1 if args.quick else None
    results = registry.run(names, repeat=repeat, warmup=warmup)
    meta = {"python": platform.python_version(), "platform": platform.platform(),
            "quick": args.quick}
    if args.json:
        print_json(results, **meta)
    else:
        print_table(results, title=f"opengradient benchmarks — Python {meta['python']}"
                                   f"{' (quick)' if args.quick else ''}")
        measured = [r for r in results if r.error is None]
        missed = [r.name for r in measured if not r.met]
        print(f"{len(measured) - len(missed)} of {len(results)} targets met"
              + (f"; NOT MET: {', '.join(missed)}" if missed else "")
              + (f"; could not measure: {', '.join(r.name for r in results if r.error)}"
                 if len(measured) < len(results) else ""))
    return 1 if any(r.error is not None for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
