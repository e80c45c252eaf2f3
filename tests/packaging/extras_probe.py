"""Reach every optional feature and report the `MissingExtraError` each raises, as JSON on stdout.

Run as a script (`python extras_probe.py [MODULE ...]`): the named top-level modules are hidden
first, as if they were not installed, so the same probe serves a full environment and a bare one.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any


class _Hidden(importlib.abc.MetaPathFinder):
    """Fails imports of some top-level packages exactly as Python does when they are not installed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top in self.names:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        return None


def _cases() -> dict[str, Callable[[], Any]]:
    import opengradient as og
    from opengradient import agents
    from opengradient.alphasense import ToolType, create_run_model_tool
    from opengradient.client.zkml import require_ezkl

    def tool(kind: ToolType) -> Any:
        return create_run_model_tool(kind, "bafkqaaa", "probe", dict, tool_description="probe")

    return {
        "langchain": lambda: agents.OpenGradientChatModel,
        "agents": lambda: agents.OpenGradientModel,
        "alphasense-langchain": lambda: tool(ToolType.LANGCHAIN),
        "alphasense-agents": lambda: tool(ToolType.OPENAI_AGENTS),
        "devnet": lambda: og.devnet.start,
        "zkml": require_ezkl,
    }


def main() -> None:
    sys.meta_path.insert(0, _Hidden(sys.argv[1:]))
    import opengradient as og

    report: dict[str, Any] = {}
    for name, reach in _cases().items():
        try:
            reach()
        except og.MissingExtraError as exc:
            report[name] = {"message": str(exc), "extra": exc.extra, "import_error": isinstance(exc, ImportError)}
        else:
            report[name] = None
    print(json.dumps(report))


if __name__ == "__main__":
    main()
