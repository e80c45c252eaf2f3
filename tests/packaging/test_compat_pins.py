"""The compat profiles test the ends of the ranges the extras declare."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> dict[str, Requirement]:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    requirements = [Requirement(line) for name in ("langchain", "agents") for line in extras[name]]
    return {requirement.name: requirement for requirement in requirements}


def _pins(profile: str) -> dict[str, Version]:
    lines = (ROOT / "compat" / f"{profile}.txt").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {pin.name: Version(str(next(iter(pin.specifier))).removeprefix("==")) for pin in pins}


def test_lowest_pins_are_the_declared_floors() -> None:
    declared = _declared()
    for name, version in _pins("lowest").items():
        floors = [Version(spec.version) for spec in declared[name].specifier if spec.operator == ">="]
        assert floors == [version], (name, declared[name])


def test_newest_pins_are_inside_the_declared_ranges() -> None:
    declared = _declared()
    newest = _pins("newest")
    assert set(newest) == set(_pins("lowest")) == {"langchain-core", "openai-agents"}
    for name, version in newest.items():
        assert declared[name].specifier.contains(version), (name, version, declared[name])
        assert any(spec.operator == "<" for spec in declared[name].specifier), f"{name} has no tested ceiling"
