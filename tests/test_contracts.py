"""Tests of the devnet's Solidity contracts and their committed artifacts.

The SDK and the devnet depend on wire constants (selectors, event topics) and on runtime bytecode
placed at genesis, so these tests pin the artifacts to the public selectors and topics, check they were
built from the current sources, and execute the runtime code in py-evm.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from eth_abi.abi import decode, encode
from eth_utils.address import to_canonical_address
from eth_utils.crypto import keccak

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "opengradient" / "devnet" / "chain" / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
COMPILE_SCRIPT = REPO_ROOT / "scripts" / "compile_contracts.py"

INFERENCE_ADDRESS = "0x8383C9bD7462F12Eb996DD02F78234C0421A6FaE"
PRECOMPILE_ADDRESS = "0x00000000000000000000000000000000000000F4"

RUN_SELECTOR = "cbf09d80"
RUN_MODEL_INFERENCE_SELECTOR = "7289e9c2"
INFERENCE_RESULT_TOPIC = (
    "c1396ff68bc2d8630100df29ce5561fa99078c602e8676ab72a53e37095d7168"
)
MODEL_INFERENCE_EVENT_TOPIC = (
    "1b283af3452f3718585ce100f80d9aa81fc60924db4a582a36db6aae3b109d87"
)

NO_DATA_REASON = "inference precompile returned no data"
INVALID_MODE_REASON = (
    "invalid inference mode: expected 0 (VANILLA), 1 (ZKML) or 2 (TEE)"
)

# Solidity-shaped Python values of ModelInput and ModelOutput (tuples in field order).
SAMPLE_INPUT: tuple[Any, ...] = (
    [("X", [(15, 1), (-1, 3), (120, 0), (1, 7)], [2, 2])],
    [("labels", ["a", "b"])],
)
SAMPLE_OUTPUT: tuple[Any, ...] = (
    [("Y", [(42, 2), (-7, 0)], [2])],
    [("classes", ["cat"])],
    [("meta", '{"ok": true}')],
    False,
)


def _load_artifact(name: str) -> dict[str, Any]:
    """Read one committed artifact."""
    data: dict[str, Any] = json.loads(
        (ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8")
    )
    return data


def _load_compile_script() -> ModuleType:
    """Import scripts/compile_contracts.py (scripts/ is not a package) to share its hash rule."""
    spec = importlib.util.spec_from_file_location("compile_contracts", COMPILE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _abi_type(param: dict[str, Any]) -> str:
    """Canonical ABI type of an ABI parameter, expanding tuples (structs) recursively."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _entry(abi: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The single ABI entry of a given type and name."""
    matches = [e for e in abi if e["type"] == kind and e.get("name") == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def _signature(entry: dict[str, Any]) -> str:
    """Canonical signature text whose keccak gives the selector or topic0."""
    return f"{entry['name']}({','.join(_abi_type(p) for p in entry['inputs'])})"


@pytest.fixture(scope="module")
def inference_abi() -> list[dict[str, Any]]:
    """ABI of the inference contract."""
    abi: list[dict[str, Any]] = _load_artifact("OGInference")["abi"]
    return abi


@pytest.fixture(scope="module")
def precompile_abi() -> list[dict[str, Any]]:
    """ABI of the precompile interface."""
    abi: list[dict[str, Any]] = _load_artifact("IInferencePrecompile")["abi"]
    return abi


# --- (a) wire constants -------------------------------------------------------------------------


def test_run_selector(inference_abi: list[dict[str, Any]]) -> None:
    """The SDK encodes run() with a fixed selector; the contract must expose exactly that."""
    run = _entry(inference_abi, "function", "run")
    assert keccak(text=_signature(run))[:4].hex() == RUN_SELECTOR
    assert [p["name"] for p in run["inputs"]] == [
        "modelId",
        "inferenceMode",
        "modelInput",
    ]
    assert [_abi_type(p) for p in run["outputs"]] == [
        _abi_type(_inference_result_param(inference_abi))
    ]


def _inference_result_param(abi: list[dict[str, Any]]) -> dict[str, Any]:
    """The single ModelOutput parameter of the InferenceResult event."""
    params: list[dict[str, Any]] = _entry(abi, "event", "InferenceResult")["inputs"]
    assert len(params) == 1
    return params[0]


def test_inference_result_topic(inference_abi: list[dict[str, Any]]) -> None:
    """The SDK finds the result log by topic0, and decodes its only field from data."""
    event = _entry(inference_abi, "event", "InferenceResult")
    assert keccak(text=_signature(event)).hex() == INFERENCE_RESULT_TOPIC
    assert not any(p["indexed"] for p in event["inputs"])
    output_fields = [c["name"] for c in event["inputs"][0]["components"]]
    assert output_fields == ["numbers", "strings", "jsons", "is_simulation_result"]


def test_precompile_selector_and_event(precompile_abi: list[dict[str, Any]]) -> None:
    """The native precompile dispatches on this selector and the SDK reads this event."""
    fn = _entry(precompile_abi, "function", "runModelInference")
    assert keccak(text=_signature(fn))[:4].hex() == RUN_MODEL_INFERENCE_SELECTOR
    assert [c["name"] for c in fn["inputs"][0]["components"]] == [
        "mode",
        "modelCID",
        "input",
    ]
    event = _entry(precompile_abi, "event", "ModelInferenceEvent")
    assert keccak(text=_signature(event)).hex() == MODEL_INFERENCE_EVENT_TOPIC
    assert not any(p["indexed"] for p in event["inputs"])


def test_only_expected_entry_points(
    inference_abi: list[dict[str, Any]], precompile_abi: list[dict[str, Any]]
) -> None:
    """Guard against accidental extra (or missing) ABI surface on the genesis contracts."""
    assert sorted((e["type"], e.get("name")) for e in inference_abi) == [
        ("event", "InferenceResult"),
        ("event", "LLMChatResult"),
        ("event", "LLMCompletionResult"),
        ("function", "run"),
        ("function", "runLLMChat"),
        ("function", "runLLMCompletion"),
    ]
    assert sorted((e["type"], e.get("name")) for e in precompile_abi) == [
        ("event", "ModelInferenceEvent"),
        ("function", "runModelInference"),
    ]


# --- (b), (c) artifacts are current -------------------------------------------------------------


def test_artifacts_built_from_current_sources() -> None:
    """Editing a .sol file without rebuilding would silently ship old bytecode."""
    expected = _load_compile_script().source_hash(CONTRACTS_DIR)
    artifacts = sorted(ARTIFACTS_DIR.glob("*.json"))
    assert {p.stem for p in artifacts} >= {"OGInference", "IInferencePrecompile"}
    for path in artifacts:
        artifact = json.loads(path.read_text(encoding="utf-8"))
        assert set(artifact) == {
            "contractName",
            "abi",
            "bytecode",
            "deployedBytecode",
            "sourceHash",
        }
        assert artifact["contractName"] == path.stem
        assert artifact["sourceHash"] == expected, (
            f"{path.name} is stale: run `python scripts/compile_contracts.py`"
        )


def test_compile_check_passes() -> None:
    """Recompiling with the pinned solc must reproduce the committed artifacts byte for byte."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed; solc-js cannot run")
    if not (REPO_ROOT / "node_modules" / "solc" / "package.json").exists():
        pytest.skip("node_modules/solc is missing; run `npm install` at the repo root")
    proc = subprocess.run(
        [sys.executable, str(COMPILE_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- (d) execution in py-evm ---------------------------------------------------------------------

# Hand-assembled stand-ins for the native precompile (0xF4 is not a precompile in py-evm, so
# code placed there runs as an ordinary contract).
# CALLDATASIZE PUSH1 0 PUSH1 0 CALLDATACOPY CALLDATASIZE PUSH1 0 REVERT: revert with the call data.
ECHO_REVERT_CODE = bytes.fromhex("366000600037366000fd")


def _return_constant_code(payload: bytes) -> bytes:
    """Code that returns `payload`: CODECOPY the bytes after a 14-byte header, then RETURN."""
    size = len(payload).to_bytes(2, "big")
    header = b"\x61" + size + b"\x60\x0e\x60\x00\x39" + b"\x61" + size + b"\x60\x00\xf3"
    assert len(header) == 0x0E
    return header + payload


class Chain:
    """A py-evm chain (via eth-tester) with the runtime bytecode of OGInference at genesis."""

    def __init__(self, precompile_code: bytes | None) -> None:
        from eth_tester import EthereumTester, PyEVMBackend

        runtime = bytes.fromhex(_load_artifact("OGInference")["deployedBytecode"][2:])
        state = PyEVMBackend.generate_genesis_state(num_accounts=1)
        state[to_canonical_address(INFERENCE_ADDRESS)] = {
            "balance": 0,
            "nonce": 1,
            "code": runtime,
            "storage": {},
        }
        if precompile_code is not None:
            state[to_canonical_address(PRECOMPILE_ADDRESS)] = {
                "balance": 0,
                "nonce": 1,
                "code": precompile_code,
                "storage": {},
            }
        self.backend = PyEVMBackend(genesis_state=state)
        self.tester = EthereumTester(self.backend)
        self.sender: str = self.tester.get_accounts()[0]

    def call(self, data: bytes) -> bytes:
        """eth_call to the inference contract; raises TransactionFailed with the revert reason."""
        result: str = self.tester.call(
            {
                "from": self.sender,
                "to": INFERENCE_ADDRESS,
                "data": "0x" + data.hex(),
                "gas": 5_000_000,
            }
        )
        return bytes.fromhex(result.removeprefix("0x"))

    def raw_revert_data(self, data: bytes) -> bytes:
        """Revert payload of a call, undecoded (eth-tester only exposes the decoded reason)."""
        from eth.exceptions import Revert
        from eth.vm.spoof import SpoofTransaction

        chain = self.backend.chain
        head = chain.get_canonical_head()
        tx = chain.get_vm(head).create_unsigned_transaction(
            nonce=0,
            gas_price=0,
            gas=5_000_000,
            to=to_canonical_address(INFERENCE_ADDRESS),
            value=0,
            data=data,
        )
        try:
            chain.get_transaction_result(
                SpoofTransaction(tx, from_=to_canonical_address(self.sender)), head
            )
        except Revert as exc:
            payload: bytes = exc.args[0]
            return payload
        raise AssertionError("call did not revert")


def _run_calldata(
    inference_abi: list[dict[str, Any]], model_id: str, mode: int
) -> bytes:
    """ABI-encode run(modelId, mode, SAMPLE_INPUT) from the artifact's own ABI."""
    types = [_abi_type(p) for p in _entry(inference_abi, "function", "run")["inputs"]]
    return bytes.fromhex(RUN_SELECTOR) + encode(types, [model_id, mode, SAMPLE_INPUT])


def _as_decoded(value: Any) -> Any:
    """The value as eth_abi decodes it: every list (dynamic array) becomes a tuple."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_decoded(v) for v in value)
    return value


def _error_string(reason: str) -> bytes:
    """Revert payload of Solidity's require(cond, reason)."""
    return keccak(text="Error(string)")[:4] + encode(["string"], [reason])


@pytest.fixture(scope="module")
def empty_chain() -> Iterator[Chain]:
    """A chain whose 0xF4 has no code, like a devnet without the native precompile."""
    yield Chain(precompile_code=None)


def test_run_without_precompile_reverts_clearly(
    empty_chain: Chain, inference_abi: list[dict[str, Any]]
) -> None:
    """A call to a code-less address succeeds with no data; run() must not return garbage."""
    from eth_tester.exceptions import TransactionFailed

    for mode in (0, 1, 2):
        with pytest.raises(TransactionFailed, match=f"^{NO_DATA_REASON}$"):
            empty_chain.call(_run_calldata(inference_abi, "QmModel", mode))
    raw = empty_chain.raw_revert_data(_run_calldata(inference_abi, "QmModel", 0))
    assert raw == _error_string(NO_DATA_REASON)


def test_run_rejects_invalid_mode(
    empty_chain: Chain, inference_abi: list[dict[str, Any]]
) -> None:
    """Modes above TEE (2) are refused before the precompile is called."""
    from eth_tester.exceptions import TransactionFailed

    for mode in (3, 255):
        with pytest.raises(TransactionFailed, match=r"^invalid inference mode: "):
            empty_chain.call(_run_calldata(inference_abi, "QmModel", mode))
    assert empty_chain.raw_revert_data(
        _run_calldata(inference_abi, "m", 3)
    ) == _error_string(INVALID_MODE_REASON)


def test_precompile_revert_bubbles_up_with_exact_call_data(
    inference_abi: list[dict[str, Any]], precompile_abi: list[dict[str, Any]]
) -> None:
    """The precompile's revert data reaches the caller unchanged, and the request it received
    is runModelInference((mode, modelCID, input)) exactly as the native side will decode it."""
    chain = Chain(precompile_code=ECHO_REVERT_CODE)
    raw = chain.raw_revert_data(_run_calldata(inference_abi, "QmEcho", 2))
    assert raw[:4].hex() == RUN_MODEL_INFERENCE_SELECTOR
    request_type = _abi_type(
        _entry(precompile_abi, "function", "runModelInference")["inputs"][0]
    )
    (request,) = decode([request_type], raw[4:])
    assert request == _as_decoded((2, "QmEcho", SAMPLE_INPUT))
    assert raw == bytes.fromhex(RUN_MODEL_INFERENCE_SELECTOR) + encode(
        [request_type], [(2, "QmEcho", SAMPLE_INPUT)]
    )


def test_run_returns_and_emits_precompile_output(
    inference_abi: list[dict[str, Any]],
) -> None:
    """On success run() returns the decoded ModelOutput and logs it as InferenceResult."""
    output_type = _abi_type(_inference_result_param(inference_abi))
    encoded_output = encode([output_type], [SAMPLE_OUTPUT])
    chain = Chain(precompile_code=_return_constant_code(encoded_output))
    data = _run_calldata(inference_abi, "QmModel", 0)

    returned = chain.call(data)
    assert returned == encoded_output
    assert decode([output_type], returned) == (_as_decoded(SAMPLE_OUTPUT),)

    tx_hash = chain.tester.send_transaction(
        {
            "from": chain.sender,
            "to": INFERENCE_ADDRESS,
            "data": "0x" + data.hex(),
            "gas": 5_000_000,
        }
    )
    receipt = chain.tester.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    [log] = receipt["logs"]
    assert log["address"].lower() == INFERENCE_ADDRESS.lower()
    assert log["topics"] == ["0x" + INFERENCE_RESULT_TOPIC]
    assert log["data"] == "0x" + encoded_output.hex()


def test_creation_code_only_installs_runtime() -> None:
    """Genesis places runtime code directly, which is only sound without constructor logic or
    immutables: deploying the creation code normally must leave exactly the same runtime."""
    chain = Chain(precompile_code=None)
    artifact = _load_artifact("OGInference")
    tx_hash = chain.tester.send_transaction(
        {"from": chain.sender, "data": artifact["bytecode"], "gas": 3_000_000}
    )
    receipt = chain.tester.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    code = chain.tester.get_code(receipt["contract_address"])
    assert code == artifact["deployedBytecode"]
