"""Run the adapters' tests against the lowest and the newest supported framework versions.

Each profile in `compat/` (`lowest.txt`, `newest.txt`) pins langchain-core and openai-agents; it
gets its own virtual environment under `.venv/compat-<profile>`, with the SDK installed editable
with its `devnet`, `langchain` and `agents` extras, and runs langchain-tests' standard suites (unit,
and integration against the in-process devnet and cassettes) and the adapters' offline tests there. A venv is reused
while its pins and `pyproject.toml` are unchanged, so only the first run needs the package index;
without the index and without a ready venv, the profile is skipped with a message saying so.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("lowest", "newest")
TESTS = ["tests/agents/test_langchain_unit_standard.py", "tests/agents/test_langchain_integration_standard.py",
         "tests/agents/test_adapters_offline.py"]
#: What the tests themselves need besides the SDK and the pinned frameworks.
TEST_TOOLS = ["langchain-tests==1.1.9", "pytest>=8", "pytest-asyncio>=0.24", "pytest-socket>=0.7",
              "pytest-timeout>=2.3", "pytest-recording>=0.13", "vcrpy>=8.5,<9", "pyyaml"]
#: pip's words when the package index cannot be reached (as opposed to a resolution failure).
OFFLINE = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
           "Network is unreachable", "No route to host")


def _pins(profile: str) -> list[str]:
    lines = (ROOT / "compat" / f"{profile}.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _prepare(profile: str) -> Path | None:
    """The profile's venv, installed if needed; None when the index is unreachable."""
    home = ROOT / ".venv" / f"compat-{profile}"
    python = home / "bin" / "python"
    requirements = ["-e", f"{ROOT}[devnet,langchain,agents]", *_pins(profile), *TEST_TOOLS]
    digest = hashlib.sha256("\n".join([*requirements, (ROOT / "pyproject.toml").read_text()]).encode()).hexdigest()
    stamp = home / f".installed-{digest[:16]}"
    if stamp.exists():
        return python
    venv.create(home, with_pip=True, clear=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], capture_output=True, text=True)
    if done.returncode != 0:
        if any(marker in done.stderr for marker in OFFLINE):
            return None
        sys.exit(f"compat {profile}: installing failed:\n{done.stderr[-4000:]}")
    stamp.touch()
    return python


def _check_versions(python: Path, profile: str) -> None:
    """The venv holds exactly the pinned versions (pip did not resolve to others)."""
    for pin in _pins(profile):
        name, _, version = pin.partition("==")
        found = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
                               capture_output=True, text=True, check=True).stdout.strip()
        if found != version:
            sys.exit(f"compat {profile}: {name} is {found}, not the pinned {version}")


def main() -> None:
    for profile in PROFILES:
        python = _prepare(profile)
        if python is None:
            print(f"compat {profile}: skipped, the package index is unreachable and no venv is ready")
            continue
        _check_versions(python, profile)
        print(f"compat {profile}: {', '.join(_pins(profile))}", flush=True)
        done = subprocess.run([str(python), "-m", "pytest", *TESTS], cwd=ROOT)
        if done.returncode != 0:
            sys.exit(f"compat {profile}: the adapters' tests failed")


if __name__ == "__main__":
    main()
