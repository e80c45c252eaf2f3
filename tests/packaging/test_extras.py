"""Each optional feature, with its extra's packages missing, says which `pip install` brings them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

PROBE = Path(__file__).with_name("extras_probe.py")
#: Probe case -> the extra it needs and the top-level module of that extra to hide.
CASES = {"langchain": ("langchain", "langchain_core"), "agents": ("agents", "agents"),
         "alphasense-langchain": ("langchain", "langchain_core"), "alphasense-agents": ("agents", "agents"),
         "devnet": ("devnet", "eth"), "zkml": ("zkml", "ezkl")}


def probe(python: str, *hidden: str) -> dict[str, Any]:
    """Run the probe under `python`, hiding `hidden` modules; its JSON report."""
    out = subprocess.run([python, str(PROBE), *hidden], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def check_missing_extras(report: dict[str, Any], *, hidden: bool = False) -> None:
    """Every case raised a `MissingExtraError` (also an ImportError) naming its extra's pip command;
    with `hidden`, the missing package it names is the one the probe hid."""
    assert set(report) == set(CASES)
    for case, (extra, module) in CASES.items():
        error = report[case]
        assert error is not None, f"{case}: no error although the {extra} extra is not installed"
        assert error["extra"] == extra and error["import_error"] is True
        found = re.search(r"needs extra packages \((\S+) is missing\): pip install '(opengradient\[\w+\])'$",
                          error["message"])
        assert found and found.group(2) == f"opengradient[{extra}]", error["message"]
        assert not hidden or found.group(1) == module, error["message"]


def test_every_feature_names_its_extra_when_its_packages_are_missing() -> None:
    check_missing_extras(probe(sys.executable, *sorted({module for _, module in CASES.values()})), hidden=True)


def test_with_the_extras_installed_every_feature_loads() -> None:
    assert probe(sys.executable) == dict.fromkeys(CASES)
