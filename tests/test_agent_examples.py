"""The agent examples run as a user runs them (`python examples/<name>.py`) and say what they should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = {
    "langchain_chain.py": ["answer:", "paid in:  0x", "verified: True", "re-check: True", "stream:"],
    "langgraph_agent.py": ["model called: get_weather({'city': 'Paris'})", "tool said:    It is sunny",
                           "answer:", "all verified: True"],
    "openai_agents_handoff.py": ["handed off to: Weather agent", "[tool call get_weather]",
                                 "answer:        ", "verified True"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=300,
                          cwd=EXAMPLES.parent, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for expected in CASES[name]:
        assert expected in done.stdout, f"{expected!r} not in the output of {name}:\n{done.stdout}"
    assert "Traceback" not in done.stderr
    assert "Warning" not in done.stderr, done.stderr[-3000:]
