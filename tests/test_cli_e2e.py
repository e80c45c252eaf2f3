"""Every CLI command end to end: `opengradient` in a subprocess against a devnet served over HTTP.

The devnet is itself started by the CLI (`opengradient --json devnet up --port 0`). Each command
runs as a user runs it, with `OG_CONFIG_FILE` pointing at a temporary file, `OG_DEVNET_URL` at the
devnet and `HOME` at a temporary directory (so no real config file is read). Successes are
checked by their output; failures must exit 1 (2 for a wrong command line) with one `error: …` line
on stderr.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

import opengradient
from opengradient.devnet.chain.keys import dev_accounts
from opengradient.devnet.services.twins import DEVNET_TWINS_API_KEY

USER_KEY = dev_accounts(5)[4].private_key  # a funded dev account no other test in this module uses
PRICE_INPUT = '{"X": [[1.0, 2.0, 3.0, 4.0]]}'
HAL = [{"role": "system", "content": "You are a helpful AI assistant.", "name": "HAL"},
       {"role": "user", "content": "Hello! How are you doing? Can you repeat my name?"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}]
WEATHER = [{"role": "user", "content": "What is the weather in Dallas in fahrenheit?"}]


def _read_line(stream: Any, timeout: float) -> str:
    """One line from a pipe, or '' after `timeout` seconds."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0] if line else ""


@pytest.fixture(scope="module")
def devnet_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`opengradient --json devnet up --port 0` in a subprocess; yields the JSON line it prints."""
    home = tmp_path_factory.mktemp("devnet-home")
    env = {**_clean_environ(), "HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "opengradient.cli", "--json", "devnet", "up", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = _read_line(proc.stdout, 120)
        if not line:
            proc.terminate()
            _, stderr = proc.communicate(timeout=60)
            pytest.fail(f"devnet up printed nothing; stderr: {stderr}")
        yield json.loads(line)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OG_")}


class Cli:
    """Runs `opengradient` with its own config file, home directory and devnet."""

    def __init__(self, tmp: Path, devnet_url: str | None) -> None:
        self.tmp = tmp
        self.config_file = tmp / "config" / "settings.json"
        self.env = {**_clean_environ(), "HOME": str(tmp), "OG_CONFIG_FILE": str(self.config_file)}
        if devnet_url:
            self.env["OG_DEVNET_URL"] = devnet_url

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "opengradient.cli", *args], capture_output=True, text=True,
                              timeout=180, cwd=self.tmp, env={**self.env, **(env or {})})

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = self(*args, env=env)
        assert done.returncode == 0, f"opengradient {' '.join(args)} failed:\n{done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok("--json", *args))

    def fails(self, *args: str, env: dict[str, str] | None = None, code: int = 1) -> str:
        """Run a command that must fail: exit `code`, nothing on stdout, and on stderr one `error:` line
        (under `--json`, one JSON error document)."""
        done = self(*args, env=env)
        assert done.returncode == code, f"exit {done.returncode}; stdout {done.stdout!r}; stderr {done.stderr!r}"
        assert "Traceback" not in done.stderr and not done.stdout.strip()
        if args[:1] == ("--json",):
            assert json.loads(done.stderr)["error"]["exit_code"] == code, done.stderr
        else:
            assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        return done.stderr

    def misuse(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run a command whose command line is wrong: like `fails`, with exit code 2."""
        return self.fails(*args, env=env, code=2)

    def write(self, name: str, content: Any) -> str:
        path = self.tmp / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)


@pytest.fixture(scope="module")
def cli(devnet_up: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A configured CLI: the user's key saved with `config init`; hub and twins credentials from the devnet."""
    runner = Cli(tmp_path_factory.mktemp("cli"), devnet_up["url"])
    runner.ok("config", "init", "--private-key", USER_KEY)
    return runner


@pytest.fixture
def fresh(devnet_up: dict[str, Any], tmp_path: Path) -> Cli:
    """A CLI with no settings at all."""
    return Cli(tmp_path, devnet_up["url"])


# ---- version, devnet up -----------------------------------------------------------------------------


def test_version(fresh: Cli) -> None:
    assert fresh.ok("version").strip() == opengradient.__version__
    assert fresh.json("version") == {"version": opengradient.__version__}


def test_devnet_up_reports_everything_a_user_needs(devnet_up: dict[str, Any]) -> None:
    assert devnet_up["url"].startswith("http://127.0.0.1:")
    assert devnet_up["model_hub"]["email"] and devnet_up["model_hub"]["password"]
    assert devnet_up["twins"]["api_key"] == DEVNET_TWINS_API_KEY
    assert {m["name"] for m in devnet_up["models"]} >= {"price-regression"}


@pytest.mark.parametrize("payments_chain", ["devnet", "base"])
def test_devnet_up_text_output(fresh: Cli, payments_chain: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "opengradient.cli", "devnet", "up", "--port", "0",
                             "--payments-chain", payments_chain],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fresh.env)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while not lines or not lines[-1].startswith("Use it:"):
            line = _read_line(proc.stdout, 120)
            assert line, "devnet up stopped printing: " + "".join(lines)
            lines.append(line)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    text = "".join(lines)
    assert "OpenGradient devnet at http://127.0.0.1:" in text
    assert "password devnet-password" in text and f"X-API-Key {DEVNET_TWINS_API_KEY}" in text
    assert "price-regression" in text and "development accounts" in text
    assert text.count("  LLM enclave     https://127.0.0.1:") == 2  # each behind its own pinned certificate
    if payments_chain == "devnet":
        assert "(chain id 910020; OPG 0x" in text and "WARNING" not in text
    else:
        assert "(chain id 8453, base in form; OPG 0xFbC2051AE2265686a469421b2C5A2D5462FbF5eB)" in text
        assert "WARNING: payments signed in the base-sepolia and base modes are valid in form" in text
        assert "development keys only" in text


def test_devnet_up_help_says_what_the_payments_modes_sign(fresh: Cli) -> None:
    proc = subprocess.run([sys.executable, "-m", "opengradient.cli", "devnet", "up", "--help"],
                          capture_output=True, text=True, env=fresh.env, timeout=60, check=True)
    text = " ".join(proc.stdout.split())
    assert "--payments-chain [devnet|base-sepolia|base]" in text
    assert "valid in form on the public chain's domain, so use the development keys only" in text


# ---- config ----------------------------------------------------------------------------------------------


def test_config_init_show_clear(fresh: Cli) -> None:
    key, password = dev_accounts(1)[0].private_key, "s3cret-password"
    out = fresh.ok("config", "init", "--private-key", key, "--email", "me@example.com", "--password", password,
                   "--twins-api-key", "twins-secret-key-123")
    assert str(fresh.config_file) in out
    assert stat.S_IMODE(fresh.config_file.stat().st_mode) == 0o600
    assert json.loads(fresh.config_file.read_text())["private_key"] == key

    shown = fresh.ok("config", "show")
    assert key not in shown and password not in shown and "twins-secret-key-123" not in shown
    assert f"private_key: {key[:4]}…{key[-4:]}" in shown and "email: me@example.com" in shown
    as_json = fresh.json("config", "show")
    assert as_json["private_key"] == f"{key[:4]}…{key[-4:]}" and as_json["password"] != password
    assert as_json["devnet_url"] == fresh.env["OG_DEVNET_URL"]  # the environment shows through

    override = dev_accounts(2)[1].private_key
    assert override[-4:] in fresh.ok("config", "show", env={"OG_PRIVATE_KEY": override})

    assert fresh.json("config", "clear") == {"removed": True}
    assert not fresh.config_file.exists()
    assert fresh.ok("config", "clear").strip() == "no settings to remove"
    assert "devnet_url" in fresh.ok("config", "show")  # only the environment is left


def test_config_file_is_rewritten_owner_only(fresh: Cli) -> None:
    fresh.config_file.parent.mkdir(parents=True)
    fresh.config_file.write_text("{}")
    os.chmod(fresh.config_file, 0o644)
    fresh.ok("config", "init", "--private-key", USER_KEY)
    assert stat.S_IMODE(fresh.config_file.stat().st_mode) == 0o600


def test_config_init_rejects_bad_values(fresh: Cli) -> None:
    assert "private_key is not a valid private key" in fresh.fails("config", "init", "--private-key", "0x1234")
    assert "unknown network" in fresh.misuse("config", "init", "--private-key", USER_KEY, "--network", "moon")
    assert not fresh.config_file.exists()


def test_legacy_config_file_is_read(fresh: Cli) -> None:
    legacy = fresh.tmp / ".opengradient_config.json"
    legacy.write_text(json.dumps({"private_key": USER_KEY, "email": "old@example.com"}))
    os.chmod(legacy, 0o600)
    assert "email: old@example.com" in fresh.ok("config", "show")


def test_create_account(fresh: Cli) -> None:
    made = fresh.json("create-account")
    assert Account.from_key(made["private_key"]).address == made["address"] and made["saved"] is False
    assert not fresh.config_file.exists()

    saved = fresh.json("create-account", "--save")
    assert stat.S_IMODE(fresh.config_file.stat().st_mode) == 0o600
    stored = json.loads(fresh.config_file.read_text())
    assert stored == {"private_key": saved["private_key"]}  # environment values are not written into the file

    assert "--force" in fresh.misuse("create-account", "--save")  # a saved key is never silently replaced
    assert json.loads(fresh.config_file.read_text())["private_key"] == saved["private_key"]
    replaced = fresh.json("create-account", "--save", "--force")
    assert json.loads(fresh.config_file.read_text())["private_key"] == replaced["private_key"]
    text = fresh.ok("create-account")
    assert text.startswith("address: 0x") and "not saved" in text


# ---- Model Hub --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uploaded(cli: Cli) -> dict[str, Any]:
    """A model repository made through the CLI, with the shipped price-regression model uploaded."""
    from opengradient.devnet.services.models import PRICE_REGRESSION

    out = cli.ok("create-model-repo", "--repo", "cli-model", "--description", "made by the CLI test")
    assert out.strip() == "created model 'cli-model' with version 1.00"
    path = cli.tmp / "model.onnx"
    path.write_bytes(PRICE_REGRESSION.read_bytes())
    upload = cli.json("upload-file", str(path), "--repo", "cli-model", "--version", "1.00")
    assert upload["size"] == path.stat().st_size and upload["modelCid"].startswith("bafk")
    return {"cid": upload["modelCid"], "path": str(path)}


def test_model_hub_commands(cli: Cli, uploaded: dict[str, Any]) -> None:
    assert cli.json("create-version", "--repo", "cli-model", "--notes", "minor")["versionString"] == "1.01"
    assert cli.ok("create-version", "--repo", "cli-model", "--major").strip() == \
        "created version 2.00 of 'cli-model'"
    text = cli.ok("upload-file", uploaded["path"], "--repo", "cli-model", "--version", "2.00")
    assert text == f"uploaded model.onnx: CID {uploaded['cid']} (240 bytes)\n"  # stdout holds the result only

    listed = cli.json("list-files", "--repo", "cli-model", "--version", "1.00")
    assert [(f["name"], f["ipfsCid"]) for f in listed] == [("model.onnx", uploaded["cid"])]
    assert f"model.onnx  240 bytes  {uploaded['cid']}" in cli.ok("list-files", "--repo", "cli-model",
                                                                  "--version", "1.00")
    assert cli.ok("list-files", "--repo", "cli-model", "--version", "1.01").strip() == "no files"


def test_model_hub_failures(cli: Cli, uploaded: dict[str, Any]) -> None:
    assert "already exists" in cli.fails("create-model-repo", "--repo", "cli-model")
    assert "not found" in cli.fails("create-version", "--repo", "no-such-model")
    assert "not found" in cli.fails("upload-file", str(cli.tmp / "missing.onnx"), "--repo", "cli-model",
                                    "--version", "1.00")
    assert "not found" in cli.fails("list-files", "--repo", "cli-model", "--version", "9.00")
    assert "Missing option '--repo'" in cli.misuse("list-files", "--version", "1.00")


# ---- infer and verify -----------------------------------------------------------------------------------


def test_infer_inline_and_from_file(cli: Cli, uploaded: dict[str, Any]) -> None:
    text = cli.ok("infer", "--model", uploaded["cid"], "--input", PRICE_INPUT)
    assert text.startswith("transaction: 0x") and 'output: {"Y": [[11.125]]}' in text
    short = cli.ok("infer", "-m", uploaded["cid"], "--mode", "tee", "-d", PRICE_INPUT)
    assert '"Y": [[11.125]]' in short

    saved = cli.ok("--json", "infer", "--model", uploaded["cid"], "--input-file", cli.write("input.json", PRICE_INPUT))
    result = json.loads(saved)
    assert result["model_output"] == {"Y": [[11.125]]} and result["proof"]["kind"] == "onchain"
    assert result["proof"]["transaction_hash"] == result["transaction_hash"]

    path = cli.write("infer-result.json", saved)
    assert cli.ok("verify", path).strip() == (f"verified: onchain proof {result['transaction_hash']} on the devnet "
                                              f"at {cli.env['OG_DEVNET_URL']} (chain id 910010)")
    assert cli.json("verify", path)["verified"] is True
    tampered = {**result, "proof": {**result["proof"], "output_hash": "0x" + "00" * 32}}
    assert "does not verify" in cli.fails("verify", cli.write("tampered.json", tampered))


def test_verify_picks_the_devnet_from_the_proofs_chain_id(cli: Cli, uploaded: dict[str, Any], tmp_path: Path) -> None:
    saved = cli.ok("--json", "infer", "--model", uploaded["cid"], "--input", PRICE_INPUT)
    path = cli.write("verify-choice.json", saved)
    url = cli.env["OG_DEVNET_URL"]
    unset = Cli(tmp_path, None)  # no OG_DEVNET_URL, no settings: the devnet comes from --devnet
    named = unset.ok("--devnet", url, "verify", path)
    assert named.strip().endswith(f"on the devnet at {url} (chain id 910010)")
    assert unset.json("--devnet", url, "verify", path)["network"] == f"the devnet at {url} (chain id 910010)"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    refused = unset.fails("--devnet", dead, "verify", path)
    assert f"the proof is from a devnet (chain id 910010) and no devnet answers at {dead}" in refused


def test_infer_failures(cli: Cli, uploaded: dict[str, Any], fresh: Cli) -> None:
    assert "--input is not valid JSON" in cli.misuse("infer", "--model", uploaded["cid"], "--input", "{bad")
    assert "does not exist" in cli.misuse("infer", "--model", uploaded["cid"], "--input-file", "missing.json")
    assert "model not found: no-such-model" in cli.fails("infer", "--model", "no-such-model", "--input", PRICE_INPUT)
    assert "unknown input 'Y'" in cli.fails("infer", "--model", uploaded["cid"], "--input", '{"Y": [[1.0]]}')
    assert "--input or --input-file" in cli.misuse("infer", "--model", uploaded["cid"])
    assert "needs a private key" in fresh.fails("infer", "--model", uploaded["cid"], "--input", PRICE_INPUT)


def test_verify_failures(cli: Cli) -> None:
    assert "is not valid JSON" in cli.misuse("verify", cli.write("not-json.txt", "hello"))
    assert "holds no proof" in cli.misuse("verify", cli.write("no-proof.json", {"model_output": {}}))
    assert "does not exist" in cli.misuse("verify", "missing.json")


# ---- LLM: completion and chat ----------------------------------------------------------------------------


def test_completion(cli: Cli) -> None:
    text = cli.ok("completion", "--model", "openai/gpt-4o", "--prompt", "What is 2 + 2?")
    lines = text.splitlines()
    assert lines[0] == " The question is about 2; the devnet reference model answers it deterministically."
    assert lines[-1].startswith("[payment 0x") and lines[-1].endswith("TEE verified: True]")

    seed = cli.json("completion", "--model", "gpt-4", "--prompt", "Hello there", "--max-tokens", "50",
                    "--settlement-mode", "settle-batch", "--mode", "TEE")
    assert seed["tee_verified"] is True and seed["payment_hash"].startswith("0x") and seed["completion"]
    assert seed["proof"]["kind"] == "tee" and seed["usage"]["total_tokens"] > 0
    metadata = cli.json("completion", "-m", "gpt-4", "-p", "Hello there", "--x402-settlement-mode",
                        "settle-metadata", "--stop-sequence", "model", "--temperature", "0.5")
    assert "model" not in metadata["completion"] and metadata["finish_reason"] == "stop"


def test_completion_vanilla_on_chain(cli: Cli) -> None:
    onchain = cli.json("completion", "--model", "gpt-4", "--prompt", "Hello there", "--mode", "VANILLA")
    tee = cli.json("completion", "--model", "gpt-4", "--prompt", "Hello there")
    assert onchain["mode"] == "VANILLA" and onchain["transaction_hash"].startswith("0x")
    assert onchain["completion"] == tee["completion"]  # the same reference model on both paths
    assert "[on chain, transaction 0x" in cli.ok("completion", "-m", "gpt-4", "-p", "Hi", "--mode", "vanilla")


def test_chat_plain_and_from_file(cli: Cli) -> None:
    text = cli.ok("chat", "--model", "openai/gpt-4o", "--messages", json.dumps(HAL))
    assert text.startswith("Hello! I'm doing well, thanks for asking. Your name is HAL.\n[payment 0x")
    from_file = cli.json("chat", "--model", "anthropic/claude-3.5-haiku", "--messages-file",
                         cli.write("messages.json", HAL), "--max-tokens", "50", "--mode", "TEE",
                         "--settlement-mode", "settle-batch")
    assert from_file["message"] == {"role": "assistant",
                                    "content": "Hello! I'm doing well, thanks for asking. Your name is HAL."}
    assert from_file["tee_verified"] is True


def test_chat_stream(cli: Cli) -> None:
    text = cli.ok("chat", "--model", "openai/gpt-4o", "--messages", json.dumps(HAL), "--stream")
    assert text.startswith("Hello! I'm doing well, thanks for asking. Your name is HAL.\n[payment 0x")
    assert text.rstrip().endswith("TEE verified: True]")
    saved = cli.ok("--json", "chat", "--model", "openai/gpt-4o", "--messages", json.dumps(HAL), "--stream")
    result = json.loads(saved)  # --json prints one document, no streamed text
    assert result["message"]["content"].endswith("Your name is HAL.") and result["tee_verified"] is True
    path = cli.write("stream-result.json", saved)
    assert cli.ok("verify", path).strip() == (f"verified: tee proof {result['payment_hash']} on the devnet "
                                              f"at {cli.env['OG_DEVNET_URL']} (chain id 910020)")


def test_chat_tools(cli: Cli) -> None:
    tools_file = cli.write("tools.json", TOOLS)
    text = cli.ok("chat", "--model", "openai/gpt-4o", "--messages", json.dumps(WEATHER), "--tools-file", tools_file)
    calls = json.loads(text.splitlines()[0])
    assert calls[0]["function"]["name"] == "get_current_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Dallas", "unit": "fahrenheit"}
    streamed = cli.ok("chat", "--model", "openai/gpt-4o", "--messages", json.dumps(WEATHER), "--tools-file",
                      tools_file, "--stream")
    assert "get_current_weather" in streamed.splitlines()[0]  # a streamed tool call is shown too
    declined = cli.json("chat", "--model", "openai/gpt-4o", "--messages", json.dumps(WEATHER), "--tools",
                        json.dumps(TOOLS), "--tool-choice", "none")
    assert declined["finish_reason"] == "stop" and "tool_calls" not in declined["message"]
    onchain = cli.json("chat", "--model", "mistralai/Mistral-7B-Instruct-v0.3", "--messages", json.dumps(WEATHER),
                       "--tools-file", tools_file, "--mode", "VANILLA")
    assert onchain["finish_reason"] == "tool_calls" and onchain["transaction_hash"].startswith("0x")
    assert onchain["message"]["tool_calls"][0]["function"]["name"] == "get_current_weather"


def test_chat_saved_output_verifies(cli: Cli) -> None:
    saved = cli.ok("--json", "chat", "--model", "openai/gpt-4o", "--messages", json.dumps(HAL))
    path = cli.write("chat-result.json", saved)
    assert cli.json("verify", path)["proof"]["kind"] == "tee"
    result = json.loads(saved)
    tampered = {**result, "proof": {**result["proof"], "output_hash": "0x" + "11" * 32}}
    cli.fails("verify", cli.write("chat-tampered.json", tampered))


def test_llm_failures(cli: Cli, fresh: Cli) -> None:
    assert "unknown model 'acme/nothing'" in cli.fails("completion", "--model", "acme/nothing", "--prompt", "Hi")
    assert "unknown model" in cli.fails("chat", "--model", "acme/nothing", "--messages", json.dumps(HAL))
    assert "model not found" in cli.fails("completion", "--model", "acme/nothing", "--prompt", "Hi",
                                          "--mode", "VANILLA")
    assert "--messages is not valid JSON" in cli.misuse("chat", "--model", "gpt-4o", "--messages", "[{")
    assert "--tools is not valid JSON" in cli.misuse("chat", "--model", "gpt-4o", "--messages", json.dumps(HAL),
                                                    "--tools", "nope")
    assert "does not exist" in cli.misuse("chat", "--model", "gpt-4o", "--messages-file", "missing.json")
    assert "--messages or --messages-file" in cli.misuse("chat", "--model", "gpt-4o")
    assert "role" in cli.fails("chat", "--model", "gpt-4o", "--messages", '[{"role": "robot", "content": "x"}]')
    assert "--stream needs --mode TEE" in cli.misuse("chat", "--model", "gpt-4o", "--messages", json.dumps(HAL),
                                                    "--stream", "--mode", "VANILLA")
    assert "'settle-everything' is not one of" in cli.misuse("completion", "-m", "gpt-4o", "-p", "Hi",
                                                            "--settlement-mode", "settle-everything")
    assert "needs a private key" in fresh.fails("completion", "--model", "gpt-4o", "--prompt", "Hi")
    assert "needs a private key" in fresh.fails("chat", "--model", "gpt-4o", "--messages", json.dumps(HAL),
                                                "--mode", "VANILLA")


def test_usage_errors_are_one_line(fresh: Cli) -> None:
    assert "No such command 'no-such-command'" in fresh.misuse("no-such-command")
    assert "No such option" in fresh.misuse("version", "--bogus")
    assert "Missing option '--model'" in fresh.misuse("infer", "--input", PRICE_INPUT)
    help_text = fresh.ok("infer", "--help")
    assert "--input-file" in help_text


def test_unreachable_devnet_fails_cleanly(fresh: Cli) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = fresh.fails("list-files", "--repo", "x", "--version", "1.00",
                        env={"OG_DEVNET_URL": f"http://127.0.0.1:{port}"})
    assert "devnet" in error


# ---- advice in CLI terms ---------------------------------------------------------------------------------


def test_model_hub_errors_name_cli_commands_and_variables(cli: Cli, uploaded: dict[str, Any]) -> None:
    missing = cli.fails("list-files", "--repo", "cli-model", "--version", "9.00")
    assert missing.rstrip().endswith("(check --repo and --version; `opengradient create-model-repo` and "
                                     "`opengradient create-version` create them)"), missing
    error = json.loads(cli.fails("--json", "create-version", "--repo", "no-such-model"))["error"]
    assert error["type"] == "NotFoundError" and "opengradient create-model-repo" in error["hint"]
    refused = cli.fails("list-files", "--repo", "cli-model", "--version", "1.00", env={"OG_PASSWORD": "wrong"})
    assert "sign-in failed" in refused
    assert refused.rstrip().endswith("(set OG_EMAIL and OG_PASSWORD, or run `opengradient config init`)"), refused


def test_llm_payment_cap_and_tee_trust_options(cli: Cli) -> None:
    capped = cli.fails("chat", "--model", "openai/gpt-4o", "--messages", json.dumps(HAL),
                       "--max-payment", "0.000000000000000001")
    assert capped.rstrip().endswith("(pass --max-payment with the most OPG you will pay per request)"), capped
    error = json.loads(cli.fails("--json", "completion", "-m", "gpt-4o", "-p", "Hi", "--max-payment", "1e-18"))
    assert error["error"]["type"] == "SpendCapExceededError"
    trusted = cli.json("chat", "--model", "openai/gpt-4o", "--messages", json.dumps(HAL), "--tee-trust", "gateway",
                       "--max-payment", "0.05")
    assert trusted["tee_verified"] is True
