"""Deploy and drive the devnet's contracts on a `DevChain`, from the committed artifacts.

`Deployer` signs EIP-155 (type-2) transactions with a development account and sends them through
the chain's in-process JSON-RPC handler, so it behaves exactly as a remote client would, but
without a socket. `deploy_payment_contracts` and `deploy_tee_registry` set up what the devnet
needs at start: the OPG token (ERC-20 + EIP-2612 + EIP-3009), the settlement recorder, Multicall3
at its canonical address (payments chain), and the TEE registry at the public registry's address
(Alpha chain).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from opengradient.devnet.chain.evm import DevChain, decode_revert_reason
from opengradient.devnet.chain.keys import DevAccount
from opengradient.networks import TEE_REGISTRY_ADDRESS

__all__ = [
    "ARTIFACTS_DIR",
    "MULTICALL3_ADDRESS",
    "PERMIT2_ADDRESS",
    "UPTO_PERMIT2_PROXY_ADDRESS",
    "Deployer",
    "DeployerError",
    "PaymentContracts",
    "artifact",
    "deploy_payment_contracts",
    "deploy_tee_registry",
    "runtime_code",
]

ARTIFACTS_DIR = Path(__file__).resolve().parent / "contracts" / "artifacts"

#: Where every chain keeps Multicall3; x402 facilitators call `tryAggregate` there.
MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
#: The canonical Permit2 and x402's `upto` Permit2 proxy, at their public addresses, placed at genesis.
PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
UPTO_PERMIT2_PROXY_ADDRESS = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"

#: Gas limit for transactions sent without an estimate (well under the devnet's block gas limit).
DEFAULT_GAS_LIMIT = 10_000_000


class DeployerError(RuntimeError):
    """A deployment, transaction or call failed; `reason` is the revert reason when there is one."""

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        data: str | None = None,
        receipt: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.data = data
        self.receipt = receipt


# --------------------------------------------------------------------------------------------
# Artifacts
# --------------------------------------------------------------------------------------------


@cache
def _artifact_text(contract_name: str) -> str:
    path = ARTIFACTS_DIR / f"{contract_name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in ARTIFACTS_DIR.glob("*.json")))
        raise DeployerError(f"no artifact for contract {contract_name!r} (known: {known})")
    return path.read_text(encoding="utf-8")


def artifact(contract_name: str) -> dict[str, Any]:
    """The compiled artifact (`abi`, `bytecode`, `deployedBytecode`, …) of a devnet contract."""
    return cast(dict[str, Any], json.loads(_artifact_text(contract_name)))


@cache
def _abi(contract_name: str) -> tuple[dict[str, Any], ...]:
    return tuple(artifact(contract_name)["abi"])


def runtime_code(contract_name: str) -> bytes:
    """Deployed (runtime) bytecode of a compiled contract, for placing it at genesis."""
    return bytes.fromhex(artifact(contract_name)["deployedBytecode"].removeprefix("0x"))


def _creation_code(contract_name: str) -> bytes:
    return bytes.fromhex(artifact(contract_name)["bytecode"].removeprefix("0x"))


# --------------------------------------------------------------------------------------------
# ABI helpers
# --------------------------------------------------------------------------------------------


def _abi_type(item: dict[str, Any]) -> str:
    """Canonical ABI type of an input/output entry; tuples become `(t1,t2,…)` plus array suffix."""
    kind = cast(str, item["type"])
    if not kind.startswith("tuple"):
        return kind
    inner = ",".join(_abi_type(c) for c in item["components"])
    return f"({inner}){kind[len('tuple') :]}"


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(_abi_type(i) for i in entry.get('inputs', []))})"


def _to_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise DeployerError(f"{what}: not a hex string: {value!r}") from None
    raise DeployerError(f"{what}: bytes or hex string expected, got {type(value).__name__}")


def _normalize(item: dict[str, Any], value: Any) -> Any:
    """Accept hex strings for bytes/bytesN (eth_abi wants bytes), recursively through arrays and tuples."""
    kind = cast(str, item["type"])
    name = item.get("name") or kind
    if kind.endswith("]"):
        element = dict(item, type=kind[: kind.rindex("[")])
        if not isinstance(value, (list, tuple)):
            raise DeployerError(f"{name}: list expected for {kind}, got {type(value).__name__}")
        return [_normalize(element, v) for v in value]
    if kind == "tuple":
        components = item["components"]
        if isinstance(value, dict):
            value = [value[c["name"]] for c in components]
        if not isinstance(value, (list, tuple)) or len(value) != len(components):
            raise DeployerError(f"{name}: tuple of {len(components)} fields expected")
        return tuple(_normalize(c, v) for c, v in zip(components, value, strict=True))
    if kind.startswith("bytes"):
        return _to_bytes(value, name)
    if kind == "address" and isinstance(value, str):
        return to_checksum_address(value)
    return value


def _encode_args(inputs: Sequence[dict[str, Any]], args: Sequence[Any]) -> bytes:
    types = [_abi_type(i) for i in inputs]
    values = [_normalize(i, a) for i, a in zip(inputs, args, strict=True)]
    try:
        return abi_encode(types, values)
    except Exception as exc:
        raise DeployerError(f"cannot ABI-encode arguments {types}: {exc}") from exc


def _find_function(contract_name: str, function_name: str, n_args: int) -> dict[str, Any]:
    """A function entry by name (and argument count for overloads), or by full signature."""
    functions = [e for e in _abi(contract_name) if e.get("type") == "function"]
    if "(" in function_name:
        wanted = function_name.replace(" ", "")
        matches = [e for e in functions if _signature(e) == wanted]
    else:
        matches = [e for e in functions if e["name"] == function_name]
        if len(matches) > 1:
            matches = [e for e in matches if len(e.get("inputs", [])) == n_args]
    if not matches:
        raise DeployerError(f"{contract_name} has no function {function_name!r} taking {n_args} arguments")
    if len(matches) > 1:
        options = ", ".join(_signature(e) for e in matches)
        raise DeployerError(f"{contract_name}.{function_name} is ambiguous; pass the signature: {options}")
    entry = matches[0]
    if len(entry.get("inputs", [])) != n_args:
        raise DeployerError(f"{_signature(entry)} takes {len(entry.get('inputs', []))} arguments, got {n_args}")
    return entry


def encode_call(contract_name: str, function_name: str, *args: Any) -> bytes:
    """Call data (selector + ABI-encoded arguments) for a function of a devnet contract."""
    entry = _find_function(contract_name, function_name, len(args))
    return keccak(text=_signature(entry))[:4] + _encode_args(entry.get("inputs", []), args)


def _checksummed(item: dict[str, Any], value: Any) -> Any:
    """Decoded value with addresses checksummed (eth_abi returns them lower-case)."""
    kind = cast(str, item["type"])
    if kind.endswith("]"):
        element = dict(item, type=kind[: kind.rindex("[")])
        return tuple(_checksummed(element, v) for v in value)
    if kind == "tuple":
        return tuple(_checksummed(c, v) for c, v in zip(item["components"], value, strict=True))
    if kind == "address":
        return to_checksum_address(value)
    return value


def _decode_outputs(entry: dict[str, Any], data: bytes) -> Any:
    """A function's return data: one value, or a tuple of values for several outputs; structs are
    tuples in field order and addresses are checksummed."""
    outputs = entry.get("outputs", [])
    if not outputs:
        return None
    decoded = abi_decode([_abi_type(o) for o in outputs], data)
    values = tuple(_checksummed(o, v) for o, v in zip(outputs, decoded, strict=True))
    return values[0] if len(values) == 1 else values


# --------------------------------------------------------------------------------------------
# Deployer
# --------------------------------------------------------------------------------------------


class Deployer:
    """Deploys and calls devnet contracts from one account, through `chain.rpc`.

    Keeps the account's nonce locally (the devnet mines each transaction at once, so the next
    nonce is always the last plus one); a failed send resynchronises it from the chain. With
    ``estimate_gas`` (the default) every transaction is estimated first, which also surfaces a
    revert reason before anything is sent; without it transactions use ``DEFAULT_GAS_LIMIT``
    and a failed one is replayed as an ``eth_call`` to recover its reason.
    """

    def __init__(self, chain: DevChain, account: DevAccount, *, estimate_gas: bool = True) -> None:
        self.chain = chain
        self.account = account
        self.address = to_checksum_address(account.address)
        self.estimate_gas = estimate_gas
        self._signer = Account.from_key(account.private_key)
        self._nonce: int | None = None

    def __repr__(self) -> str:
        return f"Deployer(chain={self.chain.name!r}, account={self.address})"

    # ---- JSON-RPC ----------------------------------------------------------------------------

    def _rpc(self, method: str, *params: Any) -> Any:
        response = self.chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        assert isinstance(response, dict)
        if "error" in response:
            error = response["error"]
            data = error.get("data")
            reason = None
            if isinstance(data, str) and data.startswith("0x"):
                reason = decode_revert_reason(bytes.fromhex(data[2:]))
            raise DeployerError(f"{method} failed: {error.get('message')}", reason=reason, data=data)
        return response.get("result")

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = int(self._rpc("eth_getTransactionCount", self.address, "pending"), 16)
        return self._nonce

    # ---- transactions ------------------------------------------------------------------------

    def send(
        self, to: str | None, data: bytes, *, value: int = 0, gas: int | None = None, what: str = "transaction"
    ) -> dict[str, Any]:
        """Sign and send one transaction; return its receipt, raising DeployerError unless it succeeded."""
        call: dict[str, Any] = {"from": self.address, "data": "0x" + data.hex(), "value": hex(value)}
        if to is not None:
            call["to"] = to_checksum_address(to)
        if gas is None:
            if self.estimate_gas:
                try:
                    gas = int(self._rpc("eth_estimateGas", call, "pending"), 16)
                except DeployerError as exc:
                    raise DeployerError(
                        f"{what} would fail: {exc.reason or exc}", reason=exc.reason, data=exc.data
                    ) from None
            else:
                gas = DEFAULT_GAS_LIMIT
        gas_price = int(self._rpc("eth_gasPrice"), 16)
        priority = min(10**9, gas_price)
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain.chain_id,
            "nonce": self._next_nonce(),
            "gas": gas,
            "maxFeePerGas": 2 * gas_price,
            "maxPriorityFeePerGas": priority,
            "value": value,
            "data": data,
        }
        if to is not None:
            tx["to"] = call["to"]
        signed = self._signer.sign_transaction(tx)
        try:
            tx_hash = self._rpc("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
        except DeployerError:
            self._nonce = None  # resynchronise from the chain next time
            raise
        self._nonce = cast(int, tx["nonce"]) + 1
        dropped = self.chain.wait_mined(tx_hash)  # at once with automine; the next block otherwise
        if dropped is not None:
            self._nonce = None
            raise DeployerError(f"{what}: {tx_hash} was dropped: {dropped}")
        receipt = cast(dict[str, Any], self._rpc("eth_getTransactionReceipt", tx_hash))
        if receipt is None:
            raise DeployerError(f"{what}: no receipt for {tx_hash}")
        if int(receipt["status"], 16) != 1:
            reason = self._replay_reason(call, int(receipt["blockNumber"], 16) - 1)
            raise DeployerError(
                f"{what} reverted in {tx_hash}" + (f": {reason}" if reason else ""),
                reason=reason,
                receipt=receipt,
            )
        return receipt

    def _replay_reason(self, call: dict[str, Any], block: int) -> str | None:
        """Best effort: rerun a failed transaction as eth_call on its parent block to get the reason."""
        try:
            self._rpc("eth_call", call, hex(block))
        except DeployerError as exc:
            return exc.reason or str(exc)
        return None

    def deploy(self, contract_name: str, *constructor_args: Any, gas: int | None = None) -> str:
        """Deploy a contract by creation transaction; return its checksummed address."""
        constructor = next((e for e in _abi(contract_name) if e.get("type") == "constructor"), None)
        inputs = constructor.get("inputs", []) if constructor else []
        if len(inputs) != len(constructor_args):
            raise DeployerError(
                f"{contract_name} constructor takes {len(inputs)} arguments, got {len(constructor_args)}"
            )
        data = _creation_code(contract_name) + (_encode_args(inputs, constructor_args) if inputs else b"")
        receipt = self.send(None, data, gas=gas, what=f"deploying {contract_name}")
        address = receipt.get("contractAddress")
        if not address:
            raise DeployerError(f"deploying {contract_name}: the receipt has no contract address", receipt=receipt)
        return to_checksum_address(address)

    def transact(
        self, address: str, contract_name: str, function_name: str, *args: Any, value: int = 0, gas: int | None = None
    ) -> dict[str, Any]:
        """Call a state-changing function in a transaction; return the (successful) receipt.

        ``function_name`` is a name, or a full signature such as ``"permit(address,…)"`` to pick
        one of several overloads taking the same number of arguments.
        """
        data = encode_call(contract_name, function_name, *args)
        return self.send(address, data, value=value, gas=gas, what=f"{contract_name}.{function_name}")

    def call(self, address: str, contract_name: str, function_name: str, *args: Any, block: str = "pending") -> Any:
        """Run a function with eth_call and return its decoded result (one value, or a tuple)."""
        entry = _find_function(contract_name, function_name, len(args))
        data = keccak(text=_signature(entry))[:4] + _encode_args(entry.get("inputs", []), args)
        request = {"from": self.address, "to": to_checksum_address(address), "data": "0x" + data.hex()}
        try:
            result = self._rpc("eth_call", request, block)
        except DeployerError as exc:
            raise DeployerError(
                f"{contract_name}.{function_name} reverted: {exc.reason or exc}", reason=exc.reason, data=exc.data
            ) from None
        return _decode_outputs(entry, bytes.fromhex(cast(str, result).removeprefix("0x")))


# --------------------------------------------------------------------------------------------
# What the devnet deploys at start
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentContracts:
    """Addresses (checksummed) of the payments chain's contracts."""

    opg_token: str
    settlement: str
    multicall: str
    permit2: str = PERMIT2_ADDRESS
    upto_proxy: str = UPTO_PERMIT2_PROXY_ADDRESS


def deploy_payment_contracts(
    chain: DevChain,
    operator: DevAccount,
    holders: Sequence[str],
    *,
    mint_each: int = 1_000_000 * 10**18,
    token_name: str = "OPG",
    token_version: str = "2",
    token_address: str | None = None,
) -> PaymentContracts:
    """Set up the payments chain: Multicall3, Permit2 and x402's upto Permit2 proxy at their canonical
    addresses, the OPG token (owned by
    ``operator``, ``mint_each`` minted to every holder in one transaction; at ``token_address``
    when given, as on a public chain) and OGSettlement (recorder ``operator``)."""
    chain.set_code(MULTICALL3_ADDRESS, runtime_code("Multicall3"))
    chain.set_code(PERMIT2_ADDRESS, runtime_code("Permit2"))
    chain.set_code(UPTO_PERMIT2_PROXY_ADDRESS, runtime_code("X402UptoPermit2Proxy"))
    deployer = Deployer(chain, operator, estimate_gas=False)
    token = deployer.deploy("OPGToken", token_name, "OPG", token_version, operator.address)
    if token_address is not None:
        token = _relocate(chain, deployer, token, to_checksum_address(token_address), _OPG_TOKEN_SLOTS)
    recipients = [to_checksum_address(h) for h in holders]
    if recipients and mint_each:
        deployer.transact(token, "OPGToken", "mintBatch", recipients, [mint_each] * len(recipients))
    settlement = deployer.deploy("OGSettlement", operator.address)
    return PaymentContracts(opg_token=token, settlement=settlement, multicall=MULTICALL3_ADDRESS)


#: Storage the OPGToken constructor writes: name, symbol, version (short strings), owner.
_OPG_TOKEN_SLOTS = 4


def _relocate(chain: DevChain, deployer: Deployer, source: str, target: str, slots: int) -> str:
    """Move a freshly deployed contract to a fixed address: its runtime code (immutables included)
    and the first `slots` storage words its constructor wrote; the source is emptied."""
    code = bytes.fromhex(str(deployer._rpc("eth_getCode", source, "latest"))[2:])
    words = [int(str(deployer._rpc("eth_getStorageAt", source, hex(slot), "latest")), 16) for slot in range(slots)]
    chain.set_code(target, code)
    for slot, word in enumerate(words):
        chain.set_storage(target, slot, word)
        chain.set_storage(source, slot, 0)
    chain.set_code(source, b"")
    return target


#: Storage the TEERegistry constructor writes: the admin.
_TEE_REGISTRY_SLOTS = 1


def deploy_tee_registry(chain: DevChain, operator: DevAccount, *, address: str | None = TEE_REGISTRY_ADDRESS) -> str:
    """Deploy the TEE registry on the Alpha chain with ``operator`` as its admin, at the public
    registry's address (or where the deployment puts it with ``address=None``); return its address."""
    deployer = Deployer(chain, operator, estimate_gas=False)
    registry = deployer.deploy("TEERegistry", operator.address)
    if address is None:
        return registry
    return _relocate(chain, deployer, registry, to_checksum_address(address), _TEE_REGISTRY_SLOTS)


def _main() -> None:  # pragma: no cover - a quick timing check: python -m opengradient.devnet.chain.deploy
    from opengradient.devnet.chain.keys import dev_accounts

    accounts = dev_accounts(10)
    funded = {a.address: 10_000 * 10**18 for a in accounts}
    payments = DevChain(31_337, funded=funded, name="payments")
    alpha = DevChain(31_338, funded=funded, name="alpha")
    started = time.perf_counter()
    contracts = deploy_payment_contracts(payments, accounts[0], [a.address for a in accounts])
    middle = time.perf_counter()
    registry = deploy_tee_registry(alpha, accounts[0])
    done = time.perf_counter()
    print(contracts, registry)
    print(f"payments {1000 * (middle - started):.1f} ms, TEE registry {1000 * (done - middle):.1f} ms")


if __name__ == "__main__":  # pragma: no cover
    _main()
