"""The API reference site builds with warnings as errors, and a broken reference breaks the build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("mkdocstrings", reason="the docs build needs the dev extra: pip install -e '.[dev]'")


def _site_copy(tmp: Path) -> Path:
    """The docs sources in `tmp` (the pages copied, everything they are made from linked)."""
    for name in ("mkdocs.yml", "README.md", "CHANGELOG.md", "examples", "opengradient"):
        (tmp / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "docs", tmp / "docs")
    return tmp


def _build(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site / "out")],
                          cwd=site, capture_output=True, text=True, timeout=300)


def test_docs_build_and_link_every_example(tmp_path: Path) -> None:
    site = _site_copy(tmp_path)
    built = _build(site)
    assert built.returncode == 0, built.stderr
    index = (site / "out" / "examples" / "index.html").read_text()
    for script in sorted((ROOT / "examples").glob("*.py")):
        page = site / "out" / "examples" / script.stem / "index.html"
        assert page.exists() and f'href="{script.stem}/"' in index, script.name
    assert "OG_PRIVATE_KEY" in (site / "out" / "index.html").read_text()  # the README's settings table


@pytest.mark.parametrize("broken", ["[a type that is gone][opengradient.types.NoSuchType]",
                                    "::: opengradient.no_such_module"])
def test_a_broken_reference_fails_the_build(tmp_path: Path, broken: str) -> None:
    site = _site_copy(tmp_path)
    page = site / "docs" / "reference" / "types.md"
    page.write_text(page.read_text() + f"\n{broken}\n")
    built = _build(site)
    assert built.returncode != 0
    assert "NoSuchType" in built.stderr or "no_such_module" in built.stderr, built.stderr
