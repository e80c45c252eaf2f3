"""ZKML benchmarks: proven inference and proof checking for the shipped numeric models.

- `zkml.infer.<model>` — `alpha.infer` in ZKML mode (run, prove in the prover process, record the
  hash) against the same call in VANILLA mode, in-process devnet: the proving overhead.
- `zkml.verify.<model>` — `proof.verify()` of a ZKML proof (transaction checks, proof and key
  fetched, public values compared, ezkl verification) against `proof.verify()` of a VANILLA
  on-chain proof (the transaction checks alone).
- `zkml.verify.onchain.<model>` — `proof.verify(onchain=True)`: the above plus an `eth_call` of
  the verifier contract, which py-evm executes in Python (BN254 precompiles from py_ecc).

Each model's circuit is set up (calibration, SRS, keys) once, before any timing, in a data
directory shared by the benchmarks of one run, so the set-up cost is not in the figures.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import opengradient as og
from bench.harness import Benchmark, Registry, at_most

#: The shipped models ZKML can prove (the other two have string tensors).
MODELS = ("price-regression", "multi-io")
_DATA_DIR: Path | None = None


def _data_dir() -> Path:
    """One devnet data directory per benchmark run: circuits set up once are reused."""
    global _DATA_DIR
    if _DATA_DIR is None:
        _DATA_DIR = Path(tempfile.mkdtemp(prefix="og-bench-zkml-"))
        atexit.register(shutil.rmtree, _DATA_DIR, True)
    return _DATA_DIR


def _devnet(stack: ExitStack) -> og.devnet.Devnet:
    return stack.enter_context(og.devnet.start(data_dir=_data_dir()))


def _infer(stack: ExitStack, name: str, model_name: str, target: str, limit: float) -> Benchmark:
    net = _devnet(stack)
    model = net.model(model_name)
    client = net.client
    client.alpha.infer(model.cid, og.InferenceMode.ZKML, model.example_input)  # set-up, untimed

    def zkml() -> object:
        return client.alpha.infer(model.cid, og.InferenceMode.ZKML, model.example_input)

    def vanilla() -> object:
        return client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)

    return Benchmark(name, zkml, vanilla, target, at_most(limit), repeat=10, warmup=1)


def _verify(stack: ExitStack, name: str, model_name: str, target: str, limit: float, *,
            onchain: bool) -> Benchmark:
    net = _devnet(stack)
    model = net.model(model_name)
    client = net.client
    zkml_proof = client.alpha.infer(model.cid, og.InferenceMode.ZKML, model.example_input).proof
    vanilla_proof = client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input).proof
    assert zkml_proof is not None and vanilla_proof is not None

    def check_zkml() -> object:
        return zkml_proof.verify(client, onchain=onchain)

    def check_vanilla() -> object:
        return vanilla_proof.verify(client)

    return Benchmark(name, check_zkml, check_vanilla, target, at_most(limit),
                     repeat=5 if onchain else 20, warmup=1)


def register(registry: Registry) -> None:
    """Add the ZKML benchmarks to `registry`."""
    for model_name in MODELS:
        def add(model_name: str = model_name) -> None:
            infer_target = "≤ 1 s median, in-process (proof included)"
            verify_target = "≤ 0.25 s median (off chain, ezkl)"
            onchain_target = "≤ 5 s median (verifier contract in py-evm)"

            @registry.register(f"zkml.infer.{model_name}", infer_target)
            def infer(stack: ExitStack) -> Benchmark:
                return _infer(stack, f"zkml.infer.{model_name}", model_name, infer_target, 1.0)

            @registry.register(f"zkml.verify.{model_name}", verify_target)
            def verify(stack: ExitStack) -> Benchmark:
                return _verify(stack, f"zkml.verify.{model_name}", model_name, verify_target, 0.25,
                               onchain=False)

            @registry.register(f"zkml.verify.onchain.{model_name}", onchain_target)
            def verify_onchain(stack: ExitStack) -> Benchmark:
                return _verify(stack, f"zkml.verify.onchain.{model_name}", model_name, onchain_target, 5.0,
                               onchain=True)

        add()
