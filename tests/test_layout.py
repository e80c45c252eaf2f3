"""The devnet is laid out by what it is, and its imports point one way.

`opengradient.devnet.chain` (EVM, JSON-RPC, mempool, precompiles, deployment, contracts) imports
nothing of the services or the node; `opengradient.devnet.services` (LLM gateway and payments, hub,
twins, workflows, ZKML) imports the chain but not the node; the node (`node`, `app`, `transport`,
and `tls` for the enclaves' certificates) wires both and serves them. The SDK
(`opengradient.client`) imports nothing of the devnet. Checked on the source, so a lazy import
inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "opengradient"
NODE_MODULES = ("opengradient.devnet.node", "opengradient.devnet.app", "opengradient.devnet.transport",
                "opengradient.devnet.tls")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("devnet/chain", ("opengradient.devnet.services", *NODE_MODULES)),
    ("devnet/services", NODE_MODULES),
    ("client", ("opengradient.devnet",)),
])
def test_imports_point_one_way(folder: str, forbidden: tuple[str, ...]) -> None:
    wrong = {f"{path.relative_to(PACKAGE)} imports {name}"
             for path in _modules(folder) for name in _imports(path)
             if any(name == f or name.startswith(f + ".") for f in forbidden)}
    assert not wrong, sorted(wrong)


def test_the_devnet_has_no_loose_modules() -> None:
    loose = {p.name for p in (PACKAGE / "devnet").glob("*.py")}
    assert loose == {"__init__.py", "node.py", "app.py", "transport.py", "tls.py"}, loose
