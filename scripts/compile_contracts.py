#!/usr/bin/env python3
"""Compile the devnet's Solidity contracts into committed JSON artifacts.

The devnet installs contracts at genesis from ``opengradient/devnet/chain/contracts/artifacts/``, so the
SDK never needs a Solidity compiler at run time. This script regenerates those artifacts with the
compiler pinned in ``package.json`` (npm ``solc@0.8.28``, i.e. solc-js run by ``node``)::

    npm install                                     # once, installs node_modules/solc
    python scripts/compile_contracts.py             # rewrite artifacts/
    python scripts/compile_contracts.py --check     # exit 1 if artifacts/ is stale

Output is deterministic (sorted keys, fixed indentation, metadata from relative source names), so
rerunning on unchanged sources yields byte-identical files. Artifacts the client needs at run time
(`CLIENT_ARTIFACTS`: the workflow contract it deploys) are also copied into
``opengradient/client/artifacts/``, and ``--check`` checks those copies too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "opengradient" / "devnet" / "chain" / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
SOLC_MODULE = REPO_ROOT / "node_modules" / "solc"
# Artifacts the client itself needs (it deploys workflows) are also copied into the client
# package, so the SDK never imports the devnet.
CLIENT_ARTIFACTS_DIR = REPO_ROOT / "opengradient" / "client" / "artifacts"
CLIENT_ARTIFACTS = ("PriceHistoryInference.json",)
SOLC_VERSION = "0.8.28"

# viaIR is required: the nested dynamic arrays of ModelOutput hit "stack too deep" otherwise.
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
    "evmVersion": "cancun",
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
    },
}

# Node truncates large piped output, so the driver reads and writes temporary files instead.
_NODE_DRIVER = r"""
const fs = require("fs");
const [solcPath, inputPath, outputPath, wantVersion] = process.argv.slice(1);
const solc = require(solcPath);
const version = solc.version();
if (!version.startsWith(wantVersion + "+")) {
  process.stderr.write(`expected solc ${wantVersion}, found ${version}\n`);
  process.exit(3);
}
const output = solc.compile(fs.readFileSync(inputPath, "utf8"));
fs.writeFileSync(outputPath, output);
"""


class CompileError(RuntimeError):
    """The compiler could not run or reported errors."""


def source_files(contracts_dir: Path = CONTRACTS_DIR) -> list[Path]:
    """The Solidity sources to compile, sorted by file name so every step is order-stable."""
    return sorted(contracts_dir.glob("*.sol"), key=lambda p: p.name)


def source_hash(contracts_dir: Path = CONTRACTS_DIR) -> str:
    """sha256 over the sources in sorted order, so artifacts can be checked without a compiler.

    Each file contributes ``name NUL content NUL`` (bytes), so a rename also changes the hash.
    """
    digest = hashlib.sha256()
    for path in source_files(contracts_dir):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _standard_json_input(sources: list[Path]) -> dict[str, Any]:
    """solc standard JSON with relative source names, keeping metadata machine-independent."""
    return {
        "language": "Solidity",
        "sources": {
            p.name: {"content": p.read_text(encoding="utf-8")} for p in sources
        },
        "settings": COMPILER_SETTINGS,
    }


def run_solc(standard_input: dict[str, Any]) -> dict[str, Any]:
    """Run solc-js on a standard JSON input and return its parsed output."""
    node = shutil.which("node")
    if node is None:
        raise CompileError("node is not installed; solc-js needs Node.js")
    if not (SOLC_MODULE / "package.json").exists():
        raise CompileError(
            f"{SOLC_MODULE} is missing; run `npm install` in {REPO_ROOT}"
        )
    with tempfile.TemporaryDirectory(prefix="og-solc-") as tmp:
        in_path, out_path = Path(tmp) / "input.json", Path(tmp) / "output.json"
        in_path.write_text(json.dumps(standard_input), encoding="utf-8")
        proc = subprocess.run(
            [
                node,
                "-e",
                _NODE_DRIVER,
                str(SOLC_MODULE),
                str(in_path),
                str(out_path),
                SOLC_VERSION,
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise CompileError(
                f"solc-js failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    return result


def build_artifacts(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, str]:
    """Compile every source and return ``{file name: exact artifact text}``."""
    sources = source_files(contracts_dir)
    if not sources:
        raise CompileError(f"no .sol files in {contracts_dir}")
    output = run_solc(_standard_json_input(sources))
    diagnostics = output.get("errors", [])
    errors = [d for d in diagnostics if d.get("severity") == "error"]
    for diag in diagnostics:
        if diag.get("severity") != "error":
            print(diag.get("formattedMessage", diag.get("message")), file=sys.stderr)
    if errors:
        raise CompileError(
            "\n".join(d.get("formattedMessage", d.get("message", "")) for d in errors)
        )

    digest = source_hash(contracts_dir)
    artifacts: dict[str, str] = {}
    for source_name in sorted(output.get("contracts", {})):
        for name, compiled in sorted(output["contracts"][source_name].items()):
            file_name = f"{name}.json"
            if file_name in artifacts:
                raise CompileError(f"contract name {name} is defined twice")
            artifact = {
                "contractName": name,
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x"
                + compiled["evm"]["deployedBytecode"]["object"],
                "sourceHash": digest,
            }
            artifacts[file_name] = json.dumps(artifact, indent=2, sort_keys=True) + "\n"
    return artifacts


def stale_files(
    expected: dict[str, str], artifacts_dir: Path = ARTIFACTS_DIR
) -> list[str]:
    """Artifact files that differ from, are missing from, or are not in the fresh build."""
    on_disk = (
        {p.name for p in artifacts_dir.glob("*.json")}
        if artifacts_dir.is_dir()
        else set()
    )
    stale = [
        name
        for name, text in expected.items()
        if name not in on_disk
        or (artifacts_dir / name).read_text(encoding="utf-8") != text
    ]
    stale.extend(sorted(on_disk - expected.keys()))
    return sorted(stale)


def stale_client_copies(
    expected: dict[str, str], client_dir: Path = CLIENT_ARTIFACTS_DIR
) -> list[str]:
    """Client copies of artifacts that are missing or differ from the fresh build."""
    return [
        f"client/{name}"
        for name in CLIENT_ARTIFACTS
        if not (client_dir / name).is_file()
        or (client_dir / name).read_text(encoding="utf-8") != expected[name]
    ]


def write_client_copies(
    expected: dict[str, str], client_dir: Path = CLIENT_ARTIFACTS_DIR
) -> None:
    """Copy the artifacts the client needs into the client package."""
    client_dir.mkdir(parents=True, exist_ok=True)
    for name in CLIENT_ARTIFACTS:
        (client_dir / name).write_text(expected[name], encoding="utf-8")


def write_artifacts(
    expected: dict[str, str], artifacts_dir: Path = ARTIFACTS_DIR
) -> None:
    """Write the fresh artifacts and delete ones whose contract no longer exists."""
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    for path in artifacts_dir.glob("*.json"):
        if path.name not in expected:
            path.unlink()
    for name, text in expected.items():
        (artifacts_dir / name).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the artifacts are stale",
    )
    args = parser.parse_args(argv)
    try:
        expected = build_artifacts()
    except CompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = stale_files(expected) + stale_client_copies(expected)
    if args.check:
        if stale:
            print(
                "stale artifacts (run `python scripts/compile_contracts.py`): "
                + ", ".join(stale),
                file=sys.stderr,
            )
            return 1
        print(f"artifacts up to date: {', '.join(sorted(expected))}")
        return 0
    write_artifacts(expected)
    write_client_copies(expected)
    print(
        f"wrote {len(expected)} artifacts to {ARTIFACTS_DIR.relative_to(REPO_ROOT)}"
        + (f" (changed: {', '.join(stale)})" if stale else " (unchanged)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
