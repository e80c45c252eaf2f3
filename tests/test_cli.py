"""The CLI end to end, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

import opengradient


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
