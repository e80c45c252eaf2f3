"""MkDocs hooks: pages made from the repository itself, so nothing is written twice.

`index.md` is the README, `changelog.md` the CHANGELOG, `cli.md` the help of every command, and
`examples/` one page per script in `examples/` (its docstring, then its source).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import click
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _example_page(script: Path) -> str:
    source = script.read_text()
    summary = ast.get_docstring(ast.parse(source)) or ""
    return (f"# {script.name}\n\n{summary}\n\nRun it with `python examples/{script.name}`.\n\n"
            f"```python\n{source}```\n")


def _examples_index(scripts: list[Path]) -> str:
    rows = []
    for script in scripts:
        summary = (ast.get_docstring(ast.parse(script.read_text())) or "").split("\n\n")[0]
        rows.append(f"| [{script.name}]({script.stem}.md) | {' '.join(summary.split())} |")
    return ("# Examples\n\nEach script runs as it is, offline, against its own in-process devnet (the tests run\n"
            "every one of them).\n\n| script | what it shows |\n|---|---|\n" + "\n".join(rows) + "\n")


def _cli_page() -> str:
    from opengradient.cli import main

    sections = ["# The `opengradient` command line\n"]

    def walk(command: click.Command, parent: click.Context | None, name: str) -> None:
        context = click.Context(command, info_name=name, parent=parent)
        sections.append(f"## `{context.command_path}`\n\n```text\n{command.get_help(context)}\n```\n")
        if isinstance(command, click.Group):
            for child in command.list_commands(context):
                sub = command.get_command(context, child)
                if sub is not None:
                    walk(sub, context, child)

    walk(main, None, "opengradient")
    return "\n".join(sections)


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    """Add the generated pages to the site."""
    scripts = sorted(EXAMPLES.glob("*.py"))
    pages = {"index.md": (ROOT / "README.md").read_text(), "changelog.md": (ROOT / "CHANGELOG.md").read_text(),
             "cli.md": _cli_page(), "examples/index.md": _examples_index(scripts)}
    pages.update({f"examples/{script.stem}.md": _example_page(script) for script in scripts})
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files
