"""`opengradient devnet up` as anvil users drive it: web3.py and foundry's `cast` send a transfer,
make a call and take a snapshot and revert over HTTP; the banner names every service and each
HTTP call gets a request log line.

`cast` comes from npm (`@foundry-rs/cast`) into this test's own folder; without npm or the package
the cast test is skipped with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_typing import HexStr
from web3 import Web3
from web3.types import RPCEndpoint, TxParams, Wei

from opengradient.devnet.chain.keys import dev_accounts

ACCOUNTS = 12
KEYS = dev_accounts(ACCOUNTS)
#: An account only `--accounts 12` funds and unlocks.
EXTRA = KEYS[11]
RECIPIENT = Web3.to_checksum_address("0x000000000000000000000000000000000000beef")
BALANCE_OF = "0x70a08231"


@dataclass
class Up:
    proc: subprocess.Popen[str]
    banner: str
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        found = re.search(r"OpenGradient devnet at (\S+)", self.banner)
        assert found, self.banner
        return found.group(1)

    def rpc_url(self, chain: str) -> str:
        return f"{self.url}/rpc/{chain}"


def _read_until(stream: Any, marker: str, timeout: float) -> str:
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in stream:
            lines.append(line)
            if line.startswith(marker):
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    return "".join(lines)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    home = tmp_path_factory.mktemp("anvil-home")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OG_")}, "HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "opengradient.cli", "devnet", "up", "--port", "0",
                             "--accounts", str(ACCOUNTS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        banner = _read_until(proc.stdout, "Use it:", 180)
        if "Use it:" not in banner:
            proc.terminate()
            pytest.fail(f"devnet up printed no banner: {banner}{proc.communicate(timeout=60)[1]}")
        running = Up(proc, banner)
        stderr = proc.stderr
        threading.Thread(target=lambda: running.log.extend(stderr), daemon=True).start()
        yield running
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_the_banner_names_every_service(up: Up) -> None:
    for name in ("Alpha chain", "payments chain", "LLM gateway", "LLM enclave", "OHTTP relay",
                 "Model Hub", "Twins", "ZKML proofs"):
        assert f"  {name}" in up.banner, name
    assert f"{up.url}/v1/chat/completions" in up.banner
    assert EXTRA.address in up.banner  # --accounts 12


def test_web3_transfer_call_snapshot_and_revert(up: Up) -> None:
    w3 = Web3(Web3.HTTPProvider(up.rpc_url("payments")))

    def raw(method: str, *params: Any) -> Any:
        return w3.provider.make_request(RPCEndpoint(method), list(params))["result"]

    assert EXTRA.address in w3.eth.accounts
    start = w3.eth.get_balance(RECIPIENT)
    snapshot = raw("evm_snapshot")
    transfer: TxParams = {"from": Web3.to_checksum_address(EXTRA.address), "to": RECIPIENT, "value": Wei(10**18)}
    tx_hash = w3.eth.send_transaction(transfer)
    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    assert w3.eth.get_balance(RECIPIENT) == start + 10**18
    opg = re.search(r"OPG (0x[0-9a-fA-F]{40})", up.banner)
    assert opg
    query: TxParams = {"to": Web3.to_checksum_address(opg.group(1)),
                       "data": HexStr(BALANCE_OF + KEYS[0].address[2:].lower().rjust(64, "0"))}
    held = w3.eth.call(query)
    assert int.from_bytes(held, "big") > 0  # user accounts hold OPG
    assert raw("evm_revert", snapshot) is True
    assert w3.eth.get_balance(RECIPIENT) == start
    assert raw("eth_getTransactionReceipt", tx_hash.to_0x_hex()) is None  # the transfer is undone
    alpha = Web3(Web3.HTTPProvider(up.rpc_url("alpha")))
    before = alpha.eth.get_block("latest")["timestamp"]
    alpha.provider.make_request(RPCEndpoint("evm_increaseTime"), [3600])
    alpha.provider.make_request(RPCEndpoint("evm_mine"), [])
    assert alpha.eth.get_block("latest")["timestamp"] >= before + 3600
    assert any("POST /rpc/payments -> 200" in line and "evm_snapshot" in line for line in list(up.log))


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: foundry's cast comes from npm (@foundry-rs/cast)")
    folder = tmp_path_factory.mktemp("foundry-cast")
    proc = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder),
                           "@foundry-rs/cast"], capture_output=True, text=True, timeout=300)
    binary = folder / "node_modules" / ".bin" / "cast"
    if proc.returncode != 0 or not binary.exists():
        pytest.skip(f"npm could not install @foundry-rs/cast: {(proc.stderr or proc.stdout).strip()[-300:]}")
    check = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        pytest.skip(f"@foundry-rs/cast installed but does not run here: {check.stderr.strip()[-300:]}")
    return binary


def _cast(binary: Path, *args: str) -> str:
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"cast {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def test_cast_transfer_call_snapshot_and_revert(up: Up, cast: Path) -> None:
    rpc = up.rpc_url("payments")
    assert int(_cast(cast, "chain-id", "--rpc-url", rpc)) == Web3(Web3.HTTPProvider(rpc)).eth.chain_id
    start = int(_cast(cast, "balance", RECIPIENT, "--rpc-url", rpc))
    snapshot = _cast(cast, "rpc", "evm_snapshot", "--rpc-url", rpc).strip('"')
    _cast(cast, "send", RECIPIENT, "--value", "2ether", "--private-key", KEYS[1].private_key, "--rpc-url", rpc)
    assert int(_cast(cast, "balance", RECIPIENT, "--rpc-url", rpc)) == start + 2 * 10**18
    _cast(cast, "send", RECIPIENT, "--value", "1ether", "--unlocked", "--from", EXTRA.address, "--rpc-url", rpc)
    assert int(_cast(cast, "balance", RECIPIENT, "--rpc-url", rpc)) == start + 3 * 10**18
    opg = re.search(r"OPG (0x[0-9a-fA-F]{40})", up.banner)
    assert opg
    held = _cast(cast, "call", opg.group(1), "balanceOf(address)(uint256)", KEYS[0].address, "--rpc-url", rpc)
    assert int(held.split()[0]) > 0
    assert _cast(cast, "rpc", "evm_revert", snapshot, "--rpc-url", rpc) == "true"
    assert int(_cast(cast, "balance", RECIPIENT, "--rpc-url", rpc)) == start
    stranger = "0x00000000000000000000000000000000000cafe1"
    _cast(cast, "rpc", "anvil_setBalance", stranger, "0x56bc75e2d63100000", "--rpc-url", rpc)
    _cast(cast, "rpc", "anvil_impersonateAccount", stranger, "--rpc-url", rpc)
    _cast(cast, "send", RECIPIENT, "--value", "1", "--unlocked", "--from", stranger, "--rpc-url", rpc)
    assert int(_cast(cast, "balance", RECIPIENT, "--rpc-url", rpc)) == start + 1
