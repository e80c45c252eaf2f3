"""The CLI end to end, in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import opengradient

PROBE_DIR = Path(__file__).resolve().parent / "packaging"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opengradient.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_version() -> None:
    out = _cli("version")
    assert out.returncode == 0 and out.stdout.strip() == opengradient.__version__


def test_unknown_command_exits_non_zero() -> None:
    assert _cli("no-such-command").returncode != 0


def test_devnet_up_serves_until_terminated() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "opengradient.cli", "--json", "devnet", "up", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["alpha"]["chain_id"] == 910010
        assert {m["name"] for m in info["models"]} >= {"price-regression", "risk-classifier"}
        body = httpx.post(info["alpha"]["rpc_url"],
                          json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).json()
        assert int(body["result"], 16) == 910010
        assert httpx.get(info["url"] + "/").json()["url"] == info["url"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_devnet_up_on_a_taken_port_fails_with_a_reason() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = _cli("devnet", "up", "--port", str(port))
    assert out.returncode == 1
    assert out.stderr.startswith("error: could not start the devnet")
    assert out.stderr.rstrip().endswith("(pick another --port (0 picks a free one))")


# ---- errors that speak CLI ------------------------------------------------------------------------------

CHAT = ("chat", "--model", "openai/gpt-4o", "--messages", '[{"role": "user", "content": "Hi"}]')
PYTHON_ADVICE = ("og.init", "og.Client", "private_key=", "email=", "create_model", "create_version", "client.")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI with no settings but `env` (HOME and the config file point at nothing)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OG_")}
    return subprocess.run([sys.executable, "-m", "opengradient.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**base, "OG_CONFIG_FILE": os.devnull + ".missing", **(env or {})})


def _closed_port_url() -> str:
    """A loopback URL nothing listens on: any request to it fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _error_line(out: subprocess.CompletedProcess[str], code: int) -> str:
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert out.stdout == "" and out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    assert not any(advice in out.stderr for advice in PYTHON_ADVICE), out.stderr
    return out.stderr


def _json_error(out: subprocess.CompletedProcess[str], code: int) -> dict[str, Any]:
    assert out.returncode == code and out.stdout == "", (out.returncode, out.stdout, out.stderr)
    document = json.loads(out.stderr)
    assert list(document) == ["error"] and set(document["error"]) == {"type", "message", "hint", "exit_code"}
    assert document["error"]["exit_code"] == code
    error: dict[str, Any] = document["error"]
    return error


def test_version_flag() -> None:
    out = _run("--version")
    assert out.returncode == 0 and out.stdout == f"opengradient {opengradient.__version__}\n"


def test_chat_without_a_key_fails_before_the_network() -> None:
    devnet = {"OG_DEVNET_URL": _closed_port_url()}  # reaching it would fail with a network error instead
    line = _error_line(_run(*CHAT, env=devnet), 1)
    assert line == ("error: opengradient chat needs a private key and none is set "
                    "(set OG_PRIVATE_KEY, or run `opengradient config init`)\n")
    error = _json_error(_run("--json", *CHAT, env=devnet), 1)
    assert error == {"type": "ConfigurationError", "message": "opengradient chat needs a private key and none is set",
                     "hint": "set OG_PRIVATE_KEY, or run `opengradient config init`", "exit_code": 1}
    for command in (("completion", "-m", "gpt-4o", "-p", "Hi"), ("completion", "-m", "gpt-4o", "-p", "Hi",
                                                                 "--mode", "vanilla"),
                    ("infer", "-m", "cid", "--input", '{"X": [[1.0]]}'), (*CHAT, "--mode", "VANILLA")):
        assert "needs a private key" in _error_line(_run(*command, env=devnet), 1)


def test_model_hub_without_credentials_names_the_variables() -> None:
    line = _error_line(_run("list-files", "--repo", "m", "--version", "1.00"), 1)
    assert line.endswith("(set OG_EMAIL and OG_PASSWORD, or run `opengradient config init`)\n"), line
    error = _json_error(_run("--json", "list-files", "--repo", "m", "--version", "1.00"), 1)
    assert error["type"] == "ConfigurationError" and error["message"].startswith("the Model Hub needs")


def test_usage_errors_exit_2_with_the_help_command() -> None:
    assert _error_line(_run("no-such-command"), 2) == \
        "error: No such command 'no-such-command'. (see `opengradient --help`)\n"
    assert "(see `opengradient infer --help`)" in _error_line(_run("infer", "--input", "{}"), 2)
    assert "is not a positive amount of OPG" in _error_line(_run(*CHAT, "--max-payment", "-1"), 2)
    error = _json_error(_run("--json", "infer", "-m", "cid", "--input", "{bad"), 2)
    assert error["type"] == "UsageError" and error["message"].startswith("--input is not valid JSON")
    assert error["hint"] == "see `opengradient infer --help`"
    assert _json_error(_run("--json", "--devnet", "http://x", "--bogus"), 2)["message"] == "No such option '--bogus'."


def test_sdk_errors_under_json_keep_their_type() -> None:
    error = _json_error(_run("--json", "config", "init", "--private-key", "0x1234"), 1)
    assert error["type"] == "ConfigurationError" and "private_key is not a valid private key" in error["message"]
    error = _json_error(_run("--json", "list-files", "--repo", "m", "--version", "1.00",
                             env={"OG_DEVNET_URL": _closed_port_url()}), 1)
    assert error["type"] == "NetworkError" and "reaching the devnet" in error["message"]


def test_infer_help_shows_mode_choices_and_default_in_one_case() -> None:
    out = _run("infer", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "--mode [VANILLA|ZKML|TEE]" in text and "[default: VANILLA]" in text
    assert "--input-file FILE A file holding the input tensors as JSON (instead of --input)." in text
    chat_help = " ".join(_run("chat", "--help").stdout.split())
    assert "--mode [TEE|VANILLA]" in chat_help and "[default: TEE]" in chat_help


def test_a_missing_extra_names_its_pip_command() -> None:
    hide = (f"import sys; sys.path.insert(0, {str(PROBE_DIR)!r}); import extras_probe; "
            "sys.meta_path.insert(0, extras_probe._Hidden(['eth'])); sys.argv[0] = 'opengradient'; "
            "from opengradient.cli import main; main()")
    out = subprocess.run([sys.executable, "-c", hide, "devnet", "up", "--port", "0"], capture_output=True,
                         text=True, timeout=120)
    assert _error_line(out, 1) == ("error: the devnet needs extra packages (eth is missing): "
                                   "pip install 'opengradient[devnet]'\n")


def test_an_interruption_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from opengradient import cli, config

    def interrupted(settings: Any) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setenv("OG_CONFIG_FILE", str(tmp_path / "config.json"))
    monkeypatch.setattr(config, "save", interrupted)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--json", "config", "init", "--private-key", "0x" + "11" * 32])
    assert stopped.value.code == 130
