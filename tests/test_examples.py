"""Every script in examples/ runs as a user runs it (`python examples/<name>.py`) and says what it should.

Scripts are discovered, so an example added later is run too: it must exit 0, print something and
write no traceback; `EXPECTED` adds the key lines of the ones known here. A script that needs an
optional package which is not installed fails with a message naming it. The selected scripts run
concurrently (each starts its own devnet), a few at a time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))
TIMEOUT = 300

#: Lines (substrings of stdout) each known example must print.
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": ["OPG allowance for Permit2: 5 OPG", "{'role': 'assistant', 'content': 'Hello! How can I help you",
                      "Noted: TEE and paragraph.", "{'output': array([2., 4., 6.])}"],
    "quickstart_devnet.py": ["Uploaded: model CID ", "transaction: 0x", "proof verified against the chain"],
    "separate_keys.py": ["private_key        0x70997970C51812dc3A010C7d01b50e0d17dc79C8: spent 0.",
                         "OPG, 0.000000 Alpha gas token",
                         "alpha_private_key  0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC: spent 0 OPG, 0.0"],
    "model_hub.py": ["created 'my-model' version 1.00; uploaded model.onnx as bafk", "added version 1.01",
                     "  model.onnx  240 bytes  bafk", "on chain: {'Y': [[11.125]]}"],
    "llm_chat.py": ["answer:   12 * 7 = 84.", "paid:     ", "verified: True (enclave 0x",
                    "proof re-checked from JSON: True"],
    "llm_streaming.py": ["Noted: TEE and paragraph. This is a deterministic reply", "finish: stop, paid in 0x",
                         "TEE verified: True"],
    "llm_tools.py": ["finish reason: tool_calls (verified: True)",
                     "tool call:     get_current_weather({'city': 'Paris', 'unit': 'celsius'})",
                     "answer:        The result of get_current_weather is: "],
    "onchain_inference.py": ["price-regression {'Y': [[11.125]]}", "text-normalizer  {'normalized': ['hello world'",
                             "proof verified: True", "TEE mode         [[",
                             "unknown model    refused before sending: model not found: no-such-model"],
    "settlement_modes.py": ["SETTLE           paid in 0x", "SETTLE_METADATA  paid in 0x", "SETTLE_BATCH     paid in 0x",
                            "SETTLE           recorded on chain in block ",
                            "SETTLE_METADATA  recorded on chain in block ", "member True"],
    "legacy_completion.py": ["Response:  The text goes on about translate, following, English, text and French",
                             "Payment hash: 0x", "Answered on chain in transaction 0x"],
    "legacy_chat.py": ["Response: Hello! I'm doing well, thanks for asking. Your name is HAL.", "Payment hash: 0x",
                       "Finish reason: stop"],
    "legacy_chat_tools.py": ["Response: None", "Payment hash: 0x",
                             "Tool call: get_current_weather({'city': 'Dallas', 'state': 'TX', 'unit': 'fahrenheit'})",
                             "Final answer: The result of get_current_weather is: 72 degrees fahrenheit"],
    "tee_defi_contract_analysis.py": ["Response: The text goes on about analyze, Solidity", "Payment hash: 0x",
                                      "TEE verified: True (enclave 0x"],
    "tee_healthcare_chat.py": ["Response: You asked about patient, 45", "Payment hash: 0x",
                               "TEE verified: True; proof re-checked: True"],
    "tee_loan_assessment.py": ["Response:  The text goes on about assess, loan", "Payment hash: 0x",
                               "Signed request hash: 0x"],
    "twins_chat.py": ["satoshi: I am the digital twin of Satoshi Nakamoto",
                      "ada: I am the digital twin of Ada Lovelace", "ada: 3 * 14 = 42.",
                      "wrong key refused: HTTP 401", "no key: twins chat needs a twins API key"],
    "langchain_chain.py": ["answer:", "paid in:  0x", "verified: True", "re-check: True", "stream:"],
    "langgraph_agent.py": ["model called: get_weather({'city': 'Paris'})", "tool said:    It is sunny", "answer:",
                           "all verified: True"],
    "zkml_inference.py": ["output:            [[11.125]]", "proof:             zkml, zero-knowledge proof hash 0x",
                          "verified off chain: True", "verified on chain:  True", "re-checked from JSON: True",
                          "changed output refused: proof of 0x"],
    "openai_agents_handoff.py": ["handed off to: Weather agent", "[tool call get_weather]", "answer:        ",
                                 "verified True"],
    "image_input.py": ["I received a PNG image, 16x8 pixels, whose mean colour is #ffa500", "verified: True",
                       "remote URL refused: HTTP 400"],
    "image_generation.py": ["answer:   Here is the image I generated for your prompt: a PNG image, 64x64 pixels",
                            "verified: True", "image:    data:image/png;base64, 610 bytes", "PNG:      True"],
    "web_search.py": ["Web search (the devnet's local corpus, not the internet) found: [x402: payments over HTTP 402]"
                      "(devnet-corpus://x402-payments)", "verified: True"],
    "confidential_chat.py": ["answer:   You asked about blood, test", "verified: True (enclave 0x",
                             "plaintext among them: False", "streamed: You asked about", "verified: True"],
}

_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'|needs extra packages \((\S+) is missing\)")
_EXTRAS = {"langchain": "langchain", "langgraph": "langchain", "agents": "agents", "openai": "agents",
           "onnx": "devnet", "onnxruntime": "devnet", "eth": "devnet", "eth_tester": "devnet", "web3": "devnet",
           "starlette": "devnet", "uvicorn": "devnet", "ezkl": "zkml"}


def _environment() -> dict[str, str]:
    """The user's environment without settings that would send an example elsewhere (keys, upstreams);
    `OG_CONFIG_FILE` stays, pointing at the test session's empty settings."""
    return {k: v for k, v in os.environ.items()
            if (not k.startswith("OG_") or k == "OG_CONFIG_FILE") and k != "OPENAI_API_KEY"}


def _run(name: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True,
                              timeout=TIMEOUT, cwd=EXAMPLES.parent, env=_environment())
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, -9, str(exc.stdout or ""), f"timed out after {TIMEOUT} s")


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> dict[str, Future[subprocess.CompletedProcess[str]]]:
    """Start every selected example at once (a few at a time); each test waits for its own."""
    selected = [str(item.callspec.params["name"]) for item in request.session.items
                if isinstance(item, pytest.Function) and item.module is request.module
                and hasattr(item, "callspec") and "name" in item.callspec.params]
    pool = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2)))
    futures = {name: pool.submit(_run, name) for name in dict.fromkeys(selected)}
    request.addfinalizer(lambda: pool.shutdown(wait=True, cancel_futures=True))
    return futures


def test_examples_are_discovered() -> None:
    assert len(SCRIPTS) >= len(EXPECTED), "an example listed in EXPECTED is missing from examples/"
    assert set(EXPECTED) <= set(SCRIPTS), sorted(set(EXPECTED) - set(SCRIPTS))


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs(name: str, runs: dict[str, Future[subprocess.CompletedProcess[str]]]) -> None:
    done = (runs[name] if name in runs else None)
    result = done.result() if done is not None else _run(name)
    if result.returncode != 0:
        missing = _MISSING_MODULE.search(result.stderr)
        if missing:
            module = (missing.group(1) or missing.group(2)).split(".")[0]
            extra = _EXTRAS.get(module)
            hint = f"pip install 'opengradient[{extra}]'" if extra else f"install {module}"
            pytest.fail(f"examples/{name} needs {module!r}, which is not installed here ({hint})", pytrace=False)
        pytest.fail(f"examples/{name} exited with {result.returncode}:\n{result.stderr[-4000:]}", pytrace=False)
    assert result.stdout.strip(), f"examples/{name} printed nothing"
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    for expected in EXPECTED.get(name, []):
        assert expected in result.stdout, f"{expected!r} not in the output of examples/{name}:\n{result.stdout}"
