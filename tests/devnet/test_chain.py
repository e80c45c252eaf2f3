"""The devnet chain engine: keys, JSON-RPC shapes, precompiles, reverts, HTTP, concurrency."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import rlp
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.middleware import SignAndSendRawMiddlewareBuilder

import opengradient.devnet.chain.evm as chain_module
from opengradient.devnet.chain.evm import (
    DevChain,
    PrecompileCall,
    PrecompileResult,
    PrecompileRevert,
    encode_error_string,
)
from opengradient.devnet.chain.keys import DEV_MNEMONIC, dev_accounts
from opengradient.devnet.chain.rpc_server import RpcServer

CHAIN_ID = 31_999
ETHER = 10**18
ECHO = to_checksum_address("0x00000000000000000000000000000000000000F5")
REVERTER = to_checksum_address("0x00000000000000000000000000000000000000F6")
CRASHER = to_checksum_address("0x00000000000000000000000000000000000000F7")
CLOCK = to_checksum_address("0x00000000000000000000000000000000000000F8")
ECHO_TOPIC = b"\xee" * 32
SINK = to_checksum_address("0x000000000000000000000000000000000000dEaD")

# Runtime code: CALL the echo precompile with calldata, bubble its revert data or return its
# output. Hand-assembled so the tests need no compiler.
#   calldatacopy(0, 0, calldatasize)
#   ok := call(gas, 0xF6-or-F5 (patched), 0, 0, calldatasize, 0, 0)
#   returndatacopy(0, 0, returndatasize)
#   if ok { return(0, returndatasize) } revert(0, returndatasize)
_FORWARDER_TEMPLATE = (
    "36600060003760006000"  # calldatasize, 0, 0, calldatacopy; push 0 (out size), 0 (out off)
    "3660006000"  # in size = calldatasize, in off 0, value 0
    "73{target}"  # push20 target
    "5af1"  # gas, call
    "3d600060003e"  # returndatacopy(0, 0, returndatasize)
    "603357"  # jumpi to success (0x33)
    "3d6000fd"  # revert(0, returndatasize)
    "5b3d6000f3"  # jumpdest; return(0, returndatasize)
)
FORWARDER = to_checksum_address("0x0000000000000000000000000000000000C0FFEE")


def _forwarder(target: str) -> bytes:
    code = bytes.fromhex(_FORWARDER_TEMPLATE.format(target=target[2:].lower()))
    assert code[0x33] == 0x5B, "jump target must be the JUMPDEST"
    return code


def echo(call: PrecompileCall) -> PrecompileResult:
    return PrecompileResult(output=call.data[::-1], logs=[([ECHO_TOPIC], call.data)], gas=500)


def reverter(call: PrecompileCall) -> PrecompileResult:
    raise PrecompileRevert("model not found: QmNope")


def crasher(call: PrecompileCall) -> PrecompileResult:
    missing: dict[str, PrecompileResult] = {}
    return missing["absent"]


seen_calls: list[PrecompileCall] = []


def clock(call: PrecompileCall) -> PrecompileResult:
    seen_calls.append(call)
    return PrecompileResult(output=call.timestamp.to_bytes(32, "big"))


def make_chain() -> DevChain:
    accounts = dev_accounts(10)
    return DevChain(
        CHAIN_ID,
        funded={a.address: 10_000 * ETHER for a in accounts},
        code={FORWARDER: _forwarder(REVERTER)},
        storage={FORWARDER: {7: 42}},
        precompiles={ECHO: echo, REVERTER: reverter, CRASHER: crasher, CLOCK: clock},
        name="test",
    )


@pytest.fixture
def chain() -> DevChain:
    return make_chain()


@pytest.fixture
def server(chain: DevChain) -> Iterator[RpcServer]:
    with RpcServer(chain) as srv:
        yield srv


def rpc(chain: DevChain, method: str, *params: Any) -> Any:
    response = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert isinstance(response, dict)
    if "error" in response:
        raise AssertionError(f"{method} failed: {response['error']}")
    return response["result"]


def rpc_error(chain: DevChain, method: str, *params: Any) -> dict[str, Any]:
    response = chain.rpc({"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)})
    assert isinstance(response, dict) and response["id"] == 7
    assert "result" not in response, response
    return dict(response["error"])


def signed_raw(key: str, nonce: int, to: str, value: int = 0, data: bytes = b"", gas: int = 100_000,
               chain_id: int = CHAIN_ID) -> str:
    tx = {
        "type": 2, "chainId": chain_id, "nonce": nonce, "to": to, "value": value, "data": data,
        "gas": gas, "maxFeePerGas": 50 * 10**9, "maxPriorityFeePerGas": 10**9,
    }
    return "0x" + Account.sign_transaction(tx, key).raw_transaction.hex()


# ---- keys --------------------------------------------------------------------------------------


def test_dev_accounts_are_the_published_test_keys() -> None:
    accounts = dev_accounts()
    assert DEV_MNEMONIC.split()[-1] == "junk"
    assert len(accounts) == 10
    assert accounts[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert accounts[1].address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert Account.from_key(accounts[0].private_key).address == accounts[0].address
    assert dev_accounts(3) == accounts[:3]
    assert len({a.address for a in dev_accounts(12)}) == 12
    assert accounts[0].private_key not in repr(accounts[0])


# ---- basics ------------------------------------------------------------------------------------


def test_chain_id_and_identity(chain: DevChain) -> None:
    assert chain.chain_id == CHAIN_ID
    assert rpc(chain, "eth_chainId") == hex(CHAIN_ID)
    assert rpc(chain, "net_version") == str(CHAIN_ID)
    assert "devnet" in rpc(chain, "web3_clientVersion")
    assert rpc(chain, "eth_accounts") == []
    assert rpc(chain, "eth_blockNumber") == "0x0"


def test_chainid_opcode_matches(chain: DevChain) -> None:
    target = "0x00000000000000000000000000000000000000c4"
    chain.set_code(target, bytes.fromhex("4660005260206000f3"))  # mstore(0, chainid); return(0, 32)
    assert int(rpc(chain, "eth_call", {"to": target}), 16) == CHAIN_ID


def test_contract_deployment_by_raw_transaction(chain: DevChain) -> None:
    a = dev_accounts()[0]
    runtime = _forwarder(ECHO)
    init = bytes.fromhex(f"60{len(runtime):02x}80600b6000396000f3") + runtime  # codecopy + return
    tx = {"type": 2, "chainId": CHAIN_ID, "nonce": 0, "data": init, "gas": 200_000,
          "maxFeePerGas": 50 * 10**9, "maxPriorityFeePerGas": 10**9}
    raw = "0x" + Account.sign_transaction(tx, a.private_key).raw_transaction.hex()
    receipt = rpc(chain, "eth_getTransactionReceipt", rpc(chain, "eth_sendRawTransaction", raw))
    assert receipt["status"] == "0x1" and receipt["to"] is None
    created = receipt["contractAddress"]
    expected = keccak(rlp.encode([bytes.fromhex(a.address[2:]), 0]))[12:]
    assert created == "0x" + expected.hex()
    assert rpc(chain, "eth_getCode", created, "latest") == "0x" + runtime.hex()
    assert rpc(chain, "eth_call", {"to": created, "data": "0x0a0b"}) == "0x0b0a"


def test_genesis_funds_code_and_storage(chain: DevChain) -> None:
    acct = dev_accounts()[4].address
    assert int(rpc(chain, "eth_getBalance", acct, "latest"), 16) == 10_000 * ETHER
    assert rpc(chain, "eth_getCode", FORWARDER, "latest") == "0x" + _forwarder(REVERTER).hex()
    assert int(rpc(chain, "eth_getStorageAt", FORWARDER, "0x7", "latest"), 16) == 42
    assert rpc(chain, "eth_getTransactionCount", acct, "pending") == "0x0"
    genesis = rpc(chain, "eth_getBlockByNumber", "earliest", False)
    assert genesis["number"] == "0x0" and genesis["transactions"] == []


def test_value_transfer_in_process(chain: DevChain) -> None:
    a, b = dev_accounts()[:2]
    before_a = int(rpc(chain, "eth_getBalance", a.address, "latest"), 16)
    before_b = int(rpc(chain, "eth_getBalance", b.address, "latest"), 16)
    raw = signed_raw(a.private_key, 0, b.address, value=12345, gas=21_000)
    tx_hash = rpc(chain, "eth_sendRawTransaction", raw)
    receipt = rpc(chain, "eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1"
    assert receipt["blockNumber"] == "0x1" and rpc(chain, "eth_blockNumber") == "0x1"
    assert receipt["gasUsed"] == hex(21_000)
    assert receipt["from"] == a.address.lower() and receipt["to"] == b.address.lower()
    fee = 21_000 * int(receipt["effectiveGasPrice"], 16)
    assert int(rpc(chain, "eth_getBalance", b.address, "latest"), 16) == before_b + 12345
    assert int(rpc(chain, "eth_getBalance", a.address, "latest"), 16) == before_a - 12345 - fee
    assert rpc(chain, "eth_getTransactionCount", a.address, "latest") == "0x1"
    tx = rpc(chain, "eth_getTransactionByHash", tx_hash)
    assert tx["hash"] == tx_hash and tx["value"] == hex(12345) and tx["chainId"] == hex(CHAIN_ID)
    block = rpc(chain, "eth_getBlockByNumber", "latest", True)
    assert block["transactions"][0]["hash"] == tx_hash
    assert rpc(chain, "eth_getBlockByHash", block["hash"], False)["transactions"] == [tx_hash]
    assert rpc(chain, "eth_getTransactionReceipt", "0x" + "ab" * 32) is None
    receipt["status"] = "0x0"  # results are copies: mutating one must not corrupt the chain's index
    assert rpc(chain, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"


def test_legacy_eip155_transaction_accepted(chain: DevChain) -> None:
    a = dev_accounts()[0]
    tx = {"chainId": CHAIN_ID, "nonce": 0, "to": SINK, "value": 1, "gas": 21_000, "gasPrice": 10**10}
    raw = "0x" + Account.sign_transaction(tx, a.private_key).raw_transaction.hex()
    receipt = rpc(chain, "eth_getTransactionReceipt", rpc(chain, "eth_sendRawTransaction", raw))
    assert receipt["status"] == "0x1" and receipt["type"] == "0x0"


def test_wrong_chain_id_rejected(chain: DevChain) -> None:
    a = dev_accounts()[0]
    err = rpc_error(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 0, SINK, chain_id=1))
    assert err["code"] == -32000 and "chain id" in err["message"]
    unprotected = {"nonce": 0, "to": SINK, "value": 1, "gas": 21_000, "gasPrice": 10**10}
    raw = "0x" + Account.sign_transaction(unprotected, a.private_key).raw_transaction.hex()
    assert "replay-protected" in rpc_error(chain, "eth_sendRawTransaction", raw)["message"]
    assert rpc(chain, "eth_blockNumber") == "0x0"


def test_bad_nonce_is_a_clear_error_and_leaves_no_gap(chain: DevChain) -> None:
    a = dev_accounts()[0]
    for nonce in range(2):
        rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, nonce, SINK, value=1))
    low = rpc_error(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 0, SINK, value=2))
    assert low["code"] == -32000
    assert low["message"] == "nonce too low: next nonce 2, tx nonce 0"
    high = rpc_error(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 5, SINK, value=3))
    assert high["message"].startswith("nonce too high: next nonce 2, tx nonce 5")
    assert rpc(chain, "eth_getTransactionCount", a.address, "pending") == "0x2"
    tx_hash = rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 2, SINK, value=4))
    assert rpc(chain, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"
    assert rpc(chain, "eth_blockNumber") == "0x3"


def test_other_send_errors(chain: DevChain) -> None:
    a = dev_accounts()[0]
    poor = Account.create()
    raw = signed_raw(poor.key.hex(), 0, SINK, value=1)
    assert "insufficient funds" in rpc_error(chain, "eth_sendRawTransaction", raw)["message"]
    low_gas = signed_raw(a.private_key, 0, SINK, gas=20_000)
    assert "intrinsic gas too low" in rpc_error(chain, "eth_sendRawTransaction", low_gas)["message"]
    assert rpc_error(chain, "eth_sendRawTransaction", "0xdeadbeef")["code"] == -32000
    assert rpc_error(chain, "eth_sendRawTransaction", "nothex")["code"] == -32602
    raw = signed_raw(a.private_key, 0, SINK)
    rpc(chain, "eth_sendRawTransaction", raw)
    assert rpc_error(chain, "eth_sendRawTransaction", raw)["message"] == "already known"


# ---- precompiles -------------------------------------------------------------------------------


def test_precompile_via_eth_call(chain: DevChain) -> None:
    assert rpc(chain, "eth_call", {"to": ECHO, "data": "0x010203"}, "latest") == "0x030201"
    assert rpc(chain, "eth_call", {"to": ECHO, "data": "0xaabbcc"}) == "0xccbbaa"  # no block param


def test_precompile_via_transaction_emits_log(chain: DevChain) -> None:
    a = dev_accounts()[0]
    tx_hash = rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 0, ECHO, data=b"\x01\x02\x03"))
    receipt = rpc(chain, "eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1"
    assert int(receipt["gasUsed"], 16) == 21_000 + 3 * 16 + 500  # intrinsic + calldata + precompile gas
    (entry,) = receipt["logs"]
    assert entry["address"] == ECHO.lower()
    assert entry["topics"] == ["0x" + ECHO_TOPIC.hex()]
    assert entry["data"] == "0x010203"
    assert entry["transactionHash"] == tx_hash and entry["removed"] is False
    logs = rpc(chain, "eth_getLogs", {"fromBlock": "0x0", "address": ECHO})
    assert logs == [entry]
    assert rpc(chain, "eth_getLogs", {"fromBlock": "0x0", "topics": [["0x" + "00" * 32]]}) == []
    assert rpc(chain, "eth_getLogs", {"blockHash": receipt["blockHash"], "topics": [None]}) == [entry]


def test_precompile_called_by_a_contract_logs_from_its_own_address(chain: DevChain) -> None:
    a = dev_accounts()[0]
    relay = to_checksum_address("0x00000000000000000000000000000000000000c5")
    chain.set_code(relay, _forwarder(CLOCK))
    chain.set_code(FORWARDER, _forwarder(ECHO))
    seen_calls.clear()
    rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 0, relay))
    assert seen_calls[-1].caller == relay and seen_calls[-1].origin == a.address
    tx_hash = rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 1, FORWARDER, data=b"\x09"))
    receipt = rpc(chain, "eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1" and receipt["to"] == FORWARDER.lower()
    assert [(entry["address"], entry["data"]) for entry in receipt["logs"]] == [(ECHO.lower(), "0x09")]


def test_precompile_sees_caller_origin_time_and_static_flag(chain: DevChain) -> None:
    a = dev_accounts()[0]
    seen_calls.clear()
    out = rpc(chain, "eth_call", {"from": a.address, "to": CLOCK})
    rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 0, CLOCK))
    sim, sent = seen_calls[-2:]
    assert sim.is_static and not sent.is_static
    assert sim.caller == sent.caller == sent.origin == a.address
    head = rpc(chain, "eth_getBlockByNumber", "latest", False)
    assert sent.timestamp == int(head["timestamp"], 16) and sent.block_number == 1
    genesis_time = int(rpc(chain, "eth_getBlockByNumber", "earliest", False)["timestamp"], 16)
    assert int(out, 16) == sim.timestamp >= genesis_time


def test_reverting_precompile_gives_code_3_with_reason_and_data(chain: DevChain) -> None:
    expected_data = "0x" + encode_error_string("model not found: QmNope").hex()
    for method in ("eth_call", "eth_estimateGas"):
        err = rpc_error(chain, method, {"to": REVERTER, "data": "0x00"})
        assert err == {
            "code": 3,
            "message": "execution reverted: model not found: QmNope",
            "data": expected_data,
        }
    # Through a contract that bubbles the revert data up: the reason survives.
    err = rpc_error(chain, "eth_call", {"to": FORWARDER, "data": "0x1234"}, "latest")
    assert err["code"] == 3 and err["data"] == expected_data
    assert abi_decode(["string"], bytes.fromhex(err["data"][10:]))[0] == "model not found: QmNope"
    assert rpc(chain, "eth_blockNumber") == "0x0"


def test_crashing_precompile_reverts_readably(chain: DevChain) -> None:
    err = rpc_error(chain, "eth_call", {"to": CRASHER})
    assert err["code"] == 3 and "KeyError" in err["message"]
    a = dev_accounts()[0]
    tx_hash = rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 0, CRASHER))
    assert rpc(chain, "eth_getTransactionReceipt", tx_hash)["status"] == "0x0"
    assert rpc(chain, "eth_chainId") == hex(CHAIN_ID)  # still alive


def test_custom_error_and_empty_revert(chain: DevChain) -> None:
    # revert(0, 4) with a custom selector in memory / revert(0, 0)
    custom = "0x" + "63deadbeef60e01b600052" + "60046000fd"
    empty = "0x" + "60006000fd"
    chain.set_code("0x00000000000000000000000000000000000000c1", bytes.fromhex(custom[2:]))
    chain.set_code("0x00000000000000000000000000000000000000c2", bytes.fromhex(empty[2:]))
    err = rpc_error(chain, "eth_call", {"to": "0x00000000000000000000000000000000000000c1"})
    assert err == {"code": 3, "message": "execution reverted", "data": "0xdeadbeef"}
    err = rpc_error(chain, "eth_estimateGas", {"to": "0x00000000000000000000000000000000000000c2"})
    assert err == {"code": 3, "message": "execution reverted", "data": "0x"}


def test_builtin_precompile_addresses_refused() -> None:
    with pytest.raises(ValueError):
        DevChain(1, funded={}, code={}, precompiles={"0x0000000000000000000000000000000000000001": echo})
    with pytest.raises(ValueError):
        DevChain(1, funded={}, code={}, precompiles={"0x0000000000000000000000000000000000000100": echo})


# ---- gas estimation ----------------------------------------------------------------------------


def test_estimate_gas_is_close_and_sufficient(chain: DevChain) -> None:
    a = dev_accounts()[0]
    assert rpc(chain, "eth_estimateGas", {"from": a.address, "to": SINK, "value": "0x1"}) == hex(21_000)
    estimate = int(rpc(chain, "eth_estimateGas", {"from": a.address, "to": ECHO, "data": "0x0102"}), 16)
    used = 21_000 + 2 * 16 + 500
    assert used < estimate <= used + max(used // 4, 5_000)
    raw = signed_raw(a.private_key, 0, ECHO, data=b"\x01\x02", gas=estimate)
    tx_hash = rpc(chain, "eth_sendRawTransaction", raw)
    assert rpc(chain, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"


def test_web3_estimate_first_mines_nothing_on_revert(server: RpcServer) -> None:
    a = dev_accounts()[0]
    w3 = Web3(Web3.HTTPProvider(server.url))
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(a.private_key), layer=0)
    sender = to_checksum_address(a.address)
    with pytest.raises(ContractLogicError) as info:
        w3.eth.send_transaction({"from": sender, "to": REVERTER, "data": b"\x00"})
    assert "model not found: QmNope" in str(info.value)
    assert "execution reverted: execution reverted" not in str(info.value)
    assert w3.eth.block_number == 0
    with pytest.raises(ContractLogicError):
        w3.eth.call({"to": FORWARDER, "data": b"\x01"})
    # And the same client succeeds with a working target, gas filled in by one estimate.
    tx_hash = w3.eth.send_transaction({"from": sender, "to": ECHO, "data": b"\x0a\x0b"})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=5)
    assert receipt["status"] == 1 and receipt["logs"][0]["address"] == Web3.to_checksum_address(ECHO)


# ---- JSON-RPC plumbing -------------------------------------------------------------------------


def test_batch_requests(chain: DevChain) -> None:
    a = dev_accounts()[0]
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "two", "method": "eth_getBalance", "params": [a.address, "latest"]},
        {"jsonrpc": "2.0", "id": 3, "method": "no_such_method", "params": []},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_call", "params": [{"to": ECHO, "data": "0x0102"}]},
    ]
    out = chain.rpc(batch)
    assert isinstance(out, list) and [r["id"] for r in out] == [1, "two", 3, 4]
    assert out[0]["result"] == hex(CHAIN_ID)
    assert int(out[1]["result"], 16) == 10_000 * ETHER
    assert out[2]["error"]["code"] == -32601
    assert out[3]["result"] == "0x0201"
    empty = chain.rpc([])
    assert isinstance(empty, dict) and empty["error"]["code"] == -32600


def test_protocol_errors(chain: DevChain) -> None:
    assert rpc_error(chain, "eth_fooBar")["code"] == -32601
    parsed = json.loads(chain.rpc_bytes(b'{"jsonrpc": "2.0", "id": 1, "method": '))
    assert parsed["error"]["code"] == -32700 and parsed["id"] is None
    assert json.loads(chain.rpc_bytes(b"42"))["error"]["code"] == -32600
    assert json.loads(chain.rpc_bytes(b"\xff\xfe"))["error"]["code"] == -32700
    # py-evm lifts the recursion limit to 100000; a deeply nested body must not crash the process.
    assert json.loads(chain.rpc_bytes(b"[" * 200_000))["error"]["code"] == -32700
    bad = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": {"a": 1}})
    assert isinstance(bad, dict) and bad["error"]["code"] == -32602
    assert rpc_error(chain, "eth_getBalance", "0x1234", "latest")["code"] == -32602
    assert rpc_error(chain, "eth_getBlockByNumber", "0xzz", False)["code"] == -32602
    not_a_request: Any = "not a request"
    assert chain.rpc(not_a_request) == {
        "jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}
    }
    ok = json.loads(chain.rpc_bytes(b'{"jsonrpc":"2.0","id":9,"method":"eth_blockNumber"}'))
    assert ok == {"jsonrpc": "2.0", "id": 9, "result": "0x0"}


def test_fee_endpoints_and_blocks(chain: DevChain) -> None:
    assert int(rpc(chain, "eth_gasPrice"), 16) > 0
    assert rpc(chain, "eth_maxPriorityFeePerGas") == hex(10**9)
    chain.mine()
    chain.mine()
    history = rpc(chain, "eth_feeHistory", "0x2", "latest", [25, 75])
    assert history["oldestBlock"] == "0x1"
    assert len(history["baseFeePerGas"]) == 3 and len(history["gasUsedRatio"]) == 2
    assert len(history["reward"]) == 2 and len(history["reward"][0]) == 2
    assert rpc(chain, "eth_getBlockByNumber", "0x64", False) is None
    latest = rpc(chain, "eth_getBlockByNumber", "latest", False)
    assert latest["number"] == "0x2" and latest["baseFeePerGas"].startswith("0x")
    parent = rpc(chain, "eth_getBlockByHash", latest["parentHash"], False)
    assert parent["number"] == "0x1" and int(latest["timestamp"], 16) >= int(parent["timestamp"], 16)


def test_block_clock_follows_wall_clock(chain: DevChain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many blocks within one second share it: the chain clock never runs ahead of real time."""
    a = dev_accounts()[0]
    frozen = int(rpc(chain, "eth_getBlockByNumber", "latest", False)["timestamp"], 16) + 100
    monkeypatch.setattr(chain_module, "_now", lambda: frozen)
    for nonce in range(30):
        rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, nonce, SINK, gas=21_000))
    stamps = {int(rpc(chain, "eth_getBlockByNumber", hex(n), False)["timestamp"], 16) for n in range(1, 31)}
    assert stamps == {frozen}


def test_calls_see_current_time_not_last_block_time(
    chain: DevChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stale-timestamp trap: after idle time eth_call must run at 'now', not at the head's time."""
    a = dev_accounts()[0]
    rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 0, SINK, gas=21_000))
    head_time = int(rpc(chain, "eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    later = head_time + 37
    monkeypatch.setattr(chain_module, "_now", lambda: later)
    seen_calls.clear()
    assert int(rpc(chain, "eth_call", {"to": CLOCK}), 16) == later
    assert int(rpc(chain, "eth_call", {"to": CLOCK}, "latest"), 16) == later
    assert int(rpc(chain, "eth_call", {"to": CLOCK}, "pending"), 16) == later
    assert int(rpc(chain, "eth_call", {"to": CLOCK}, "0x1"), 16) == head_time  # explicit block: its time
    rpc(chain, "eth_estimateGas", {"to": CLOCK})
    assert [c.timestamp for c in seen_calls] == [later, later, later, head_time, later]
    rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 1, CLOCK))
    assert int(rpc(chain, "eth_getBlockByNumber", "latest", False)["timestamp"], 16) == later
    assert seen_calls[-1].timestamp == later


def test_estimate_for_thinly_funded_sender(chain: DevChain) -> None:
    """With a fee cap, gas is capped at what the sender can afford (geth's rule), not the block limit."""
    user = Account.create()
    chain.set_balance(user.address, 10**16)  # 0.01 ether: 200k gas at 50 gwei, not 30M
    call = {"from": user.address, "to": ECHO, "data": "0x01", "maxFeePerGas": hex(50 * 10**9)}
    estimate = int(rpc(chain, "eth_estimateGas", call), 16)
    assert 21_000 < estimate < 40_000
    chain.set_balance(user.address, 10**15)  # 20k gas: not even the intrinsic cost
    err = rpc_error(chain, "eth_estimateGas", call)
    assert err == {"code": -32000, "message": "gas required exceeds allowance (20000)"}
    low = rpc_error(chain, "eth_call", {"to": ECHO, "gas": "0x5000"})
    assert low["message"].startswith("intrinsic gas too low")
    assert rpc(chain, "eth_call", {"from": user.address, "to": ECHO, "data": "0x0102"}) == "0x0201"


def test_set_code_after_genesis(chain: DevChain) -> None:
    target = "0x00000000000000000000000000000000000000c3"
    chain.set_code(target, _forwarder(ECHO))
    assert rpc(chain, "eth_getCode", target, "latest") == "0x" + _forwarder(ECHO).hex()
    assert rpc(chain, "eth_call", {"to": target, "data": "0x0102"}) == "0x0201"


def test_filters(chain: DevChain) -> None:
    a = dev_accounts()[0]
    log_filter = rpc(chain, "eth_newFilter", {"address": ECHO})
    block_filter = rpc(chain, "eth_newBlockFilter")
    rpc(chain, "eth_sendRawTransaction", signed_raw(a.private_key, 0, ECHO, data=b"\x05"))
    changes = rpc(chain, "eth_getFilterChanges", log_filter)
    assert [c["data"] for c in changes] == ["0x05"]
    assert rpc(chain, "eth_getFilterChanges", log_filter) == []
    assert len(rpc(chain, "eth_getFilterChanges", block_filter)) == 1
    assert rpc(chain, "eth_uninstallFilter", log_filter) is True
    assert rpc_error(chain, "eth_getFilterChanges", log_filter)["code"] == -32000


# ---- HTTP ------------------------------------------------------------------------------------


def test_value_transfer_over_http_with_web3(server: RpcServer) -> None:
    a, b = dev_accounts()[2:4]
    a_addr, b_addr = to_checksum_address(a.address), to_checksum_address(b.address)
    w3 = Web3(Web3.HTTPProvider(server.url))
    assert w3.eth.chain_id == CHAIN_ID
    before = w3.eth.get_balance(b_addr)
    tx = {
        "type": 2, "chainId": CHAIN_ID, "nonce": w3.eth.get_transaction_count(a_addr),
        "to": b.address, "value": 10**15, "gas": 21_000,
        "maxFeePerGas": w3.eth.gas_price * 2, "maxPriorityFeePerGas": w3.eth.max_priority_fee,
    }
    signed = Account.sign_transaction(tx, a.private_key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=5)
    assert receipt["status"] == 1
    assert w3.eth.get_balance(b_addr) == before + 10**15
    block = w3.eth.get_block("latest", full_transactions=True)
    first: Any = block["transactions"][0]
    assert first["hash"] == tx_hash
    assert w3.eth.call({"to": ECHO, "data": b"\x01\x02"}) == bytes.fromhex("0201")


def test_value_transfer_over_http_with_raw_httpx(server: RpcServer) -> None:
    a, b = dev_accounts()[4:6]
    with httpx.Client(base_url=server.url) as client:
        def call(method: str, *params: Any) -> Any:
            request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
            body = client.post("/", json=request)
            assert body.status_code == 200
            return body.json()

        assert call("eth_chainId")["result"] == hex(CHAIN_ID)
        before = int(call("eth_getBalance", b.address, "latest")["result"], 16)
        tx_hash = call("eth_sendRawTransaction", signed_raw(a.private_key, 0, b.address, value=777))["result"]
        receipt = call("eth_getTransactionReceipt", tx_hash)["result"]
        assert receipt["status"] == "0x1" and receipt["transactionHash"] == tx_hash
        assert int(call("eth_getBalance", b.address, "latest")["result"], 16) == before + 777
        err = call("eth_estimateGas", {"to": REVERTER})["error"]
        assert err["code"] == 3 and err["message"] == "execution reverted: model not found: QmNope"
        batch = client.post("/", json=[
            {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"},
            {"jsonrpc": "2.0", "id": 2, "method": "net_version"},
        ]).json()
        assert [r["result"] for r in batch] == ["0x1", str(CHAIN_ID)]
        malformed = client.post("/", content=b"{not json", headers={"Content-Type": "application/json"})
        assert malformed.json()["error"]["code"] == -32700
        assert client.get("/").json()["chainId"] == CHAIN_ID


def test_concurrent_senders(server: RpcServer) -> None:
    accounts = dev_accounts(8)
    per_thread = 5
    errors: list[BaseException] = []
    start = threading.Barrier(len(accounts))

    def worker(index: int) -> None:
        try:
            acct = accounts[index]
            with httpx.Client(base_url=server.url) as client:
                start.wait(timeout=10)
                for nonce in range(per_thread):
                    raw = signed_raw(acct.private_key, nonce, SINK, value=index + 1, gas=21_000)
                    send = {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [raw]}
                    reply = client.post("/", json=send).json()
                    assert "result" in reply, reply
                    get = {"jsonrpc": "2.0", "id": 0, "method": "eth_getTransactionReceipt",
                           "params": [reply["result"]]}
                    receipt = client.post("/", json=get).json()["result"]
                    assert receipt["status"] == "0x1"
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(accounts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    chain = server.chain
    # every send answered with its receipt; concurrent ones shared blocks (never more blocks than txs)
    assert 1 <= int(rpc(chain, "eth_blockNumber"), 16) <= len(accounts) * per_thread
    expected = sum((i + 1) * per_thread for i in range(len(accounts)))
    assert int(rpc(chain, "eth_getBalance", SINK, "latest"), 16) == expected
    for acct in accounts:
        assert rpc(chain, "eth_getTransactionCount", acct.address, "latest") == hex(per_thread)


def test_concurrent_senders_in_process() -> None:
    chain = make_chain()
    accounts = dev_accounts(8)
    results: list[str] = []
    lock = threading.Lock()

    def worker(acct_index: int) -> None:
        acct = accounts[acct_index]
        for nonce in range(3):
            reply = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                               "params": [signed_raw(acct.private_key, nonce, SINK, gas=21_000)]})
            with lock:
                ok = isinstance(reply, dict) and "result" in reply
                results.append(reply["result"] if ok else repr(reply))  # type: ignore[call-overload]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 24 and all(r.startswith("0x") for r in results)
    assert 1 <= int(rpc(chain, "eth_blockNumber"), 16) <= 24  # concurrent sends share blocks


def test_server_close_releases_port(chain: DevChain) -> None:
    server = RpcServer(chain)
    with httpx.Client() as client:  # keep-alive connection open while closing
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}
        assert client.post(server.url, json=request).status_code == 200
        server.close()
        with pytest.raises(httpx.TransportError):
            client.post(server.url, json=request)
    server.close()  # idempotent
