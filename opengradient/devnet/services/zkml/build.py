"""Build the ZKML verifier contract offline: ezkl writes it, solc-js 0.8.20 compiles it.

    npm install                                           # once: node_modules/solc-0820
    python -m opengradient.devnet.services.zkml.build              # rewrite contracts/ and artifacts/
    python -m opengradient.devnet.services.zkml.build --check      # exit 1 if either is stale

ezkl's `create_evm_verifier(..., reusable=True)` renders the reusable Halo2 verifier for a
throwaway circuit (a 2→1 linear model set up with a throwaway testing SRS): the source does not
depend on the circuit, which `--check` also confirms by rendering it for a second one. ezkl then
wants solc 0.8.20 under ``~/.svm`` and tries to download it; that step is not needed, the source
is already written, and this script compiles it with npm ``solc@0.8.20`` (package.json alias
``solc-0820``) through temporary files (node truncates large piped output). The devnet only reads
the committed artifact, so neither node nor solc is needed at run or test time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from opengradient.devnet.services.zkml.verifier import ARTIFACT_PATH, CONTRACT_NAME, SOURCE_PATH
from opengradient.devnet.services.zkml.worker import ezkl_module, run_args

REPO_ROOT = Path(__file__).resolve().parents[4]
SOLC_MODULE = REPO_ROOT / "node_modules" / "solc-0820"
SOLC_VERSION = "0.8.20"
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 1},
    "evmVersion": "shanghai",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

_NODE_DRIVER = r"""
const fs = require("fs");
const [solcPath, inputPath, outputPath, wantVersion] = process.argv.slice(1);
const solc = require(solcPath);
const version = solc.version();
if (!version.startsWith(wantVersion + "+")) {
  process.stderr.write(`expected solc ${wantVersion}, found ${version}\n`);
  process.exit(3);
}
fs.writeFileSync(outputPath, solc.compile(fs.readFileSync(inputPath, "utf8")));
"""


class BuildError(RuntimeError):
    """ezkl or the compiler failed."""


def _tiny_model(path: Path, weights: list[float]) -> None:
    import onnx
    from onnx import TensorProto, helper

    n = len(weights)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor("W", TensorProto.FLOAT, [n, 1], weights)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def render_source(weights: list[float]) -> str:
    """The reusable verifier ezkl renders for a throwaway circuit with these weights."""
    ezkl = ezkl_module()


    with tempfile.TemporaryDirectory(prefix="og-zkml-build-") as tmp:
        d = Path(tmp)
        _tiny_model(d / "m.onnx", weights)
        (d / "cal.json").write_text(json.dumps({"input_data": [[0.5, -1.0] * len(weights)]}))
        ezkl.gen_settings(str(d / "m.onnx"), str(d / "settings.json"), run_args(12))
        ezkl.calibrate_settings(str(d / "cal.json"), str(d / "m.onnx"), str(d / "settings.json"), "resources",
                                max_logrows=12)
        logrows = json.loads((d / "settings.json").read_text())["run_args"]["logrows"]
        ezkl.compile_circuit(str(d / "m.onnx"), str(d / "m.compiled"), str(d / "settings.json"))
        ezkl.gen_srs(str(d / "kzg.srs"), logrows)
        ezkl.setup(str(d / "m.compiled"), str(d / "vk.key"), str(d / "pk.key"), str(d / "kzg.srs"))
        sol = d / "Verifier.sol"

        async def render() -> None:
            await ezkl.create_evm_verifier(str(d / "vk.key"), str(d / "settings.json"), str(sol),
                                           str(d / "Verifier.abi"), str(d / "kzg.srs"), True)

        try:
            asyncio.run(render())
        except RuntimeError as exc:  # it wrote the source, then wanted to fetch solc: expected here
            if not sol.exists():
                raise BuildError(f"ezkl did not write the verifier: {exc}") from exc
        return sol.read_text(encoding="utf-8")


def compile_source(source: str) -> dict[str, Any]:
    """Compile with solc-js 0.8.20; returns the artifact (abi, bytecode, deployedBytecode, …)."""
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not installed; solc-js needs Node.js")
    if not (SOLC_MODULE / "package.json").exists():
        raise BuildError(f"{SOLC_MODULE} is missing; run `npm install` in {REPO_ROOT}")
    standard_input = {"language": "Solidity",
                      "sources": {f"{CONTRACT_NAME}.sol": {"content": source}},
                      "settings": COMPILER_SETTINGS}
    with tempfile.TemporaryDirectory(prefix="og-solc-") as tmp:
        in_path, out_path = Path(tmp) / "input.json", Path(tmp) / "output.json"
        in_path.write_text(json.dumps(standard_input), encoding="utf-8")
        proc = subprocess.run([node, "-e", _NODE_DRIVER, str(SOLC_MODULE), str(in_path), str(out_path),
                               SOLC_VERSION], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(f"solc-js failed ({proc.returncode}): {proc.stderr.strip()}")
        output = json.loads(out_path.read_text(encoding="utf-8"))
    errors = [d for d in output.get("errors", []) if d.get("severity") == "error"]
    if errors:
        raise BuildError("\n".join(d.get("formattedMessage", d.get("message", "")) for d in errors))
    compiled = output["contracts"][f"{CONTRACT_NAME}.sol"][CONTRACT_NAME]
    ezkl = ezkl_module()

    return {
        "contractName": CONTRACT_NAME,
        "abi": compiled["abi"],
        "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
        "compiler": f"solc-js {SOLC_VERSION}",
        "compilerSettings": COMPILER_SETTINGS,
        "generator": f"ezkl {ezkl.__version__} create_evm_verifier(reusable=True)",
        "sourceHash": hashlib.sha256(source.encode("utf-8")).hexdigest(),
    }


def _artifact_text(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if stale")
    args = parser.parse_args(argv)
    # ezkl keeps caches under ~/.ezkl and its solc manager makes ~/.svm: keep them out of the home.
    scratch = tempfile.mkdtemp(prefix="og-zkml-build-home-")
    os.environ["HOME"] = scratch
    os.environ["EZKL_REPO_PATH"] = os.path.join(scratch, ".ezkl")
    try:
        source = render_source([0.25, -0.5])
        if args.check and render_source([1.5, 2.0, -3.0]) != source:
            print("ezkl rendered different verifiers for two circuits: the reusable verifier is not "
                  "circuit-independent with this ezkl", file=sys.stderr)
            return 1
        artifact_text = _artifact_text(compile_source(source))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    current_source = SOURCE_PATH.read_text(encoding="utf-8") if SOURCE_PATH.exists() else None
    current_artifact = ARTIFACT_PATH.read_text(encoding="utf-8") if ARTIFACT_PATH.exists() else None
    stale = [p.name for p, old, new in ((SOURCE_PATH, current_source, source),
                                        (ARTIFACT_PATH, current_artifact, artifact_text)) if old != new]
    if args.check:
        if stale:
            print(f"stale (run `python -m opengradient.devnet.services.zkml.build`): {', '.join(stale)}",
                  file=sys.stderr)
            return 1
        print(f"{CONTRACT_NAME} is up to date")
        return 0
    SOURCE_PATH.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT_PATH.parent.mkdir(parents=True, exist_ok=True)
    SOURCE_PATH.write_text(source, encoding="utf-8")
    ARTIFACT_PATH.write_text(artifact_text, encoding="utf-8")
    print(f"wrote {SOURCE_PATH.name} and {ARTIFACT_PATH.name}" + (f" (changed: {', '.join(stale)})" if stale
                                                                   else " (unchanged)"))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # ezkl's async runtime can crash the interpreter's teardown: skip it
