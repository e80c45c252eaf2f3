"""The devnet's EVM chain: py-evm (via eth-tester's backend) behind a geth-shaped JSON-RPC handler.

Why not eth-tester's own JSON-RPC layer: it defaults the chain id, drops raw revert data, runs
``eth_call`` at the last mined block's (stale) timestamp, crashes without a block parameter and
re-runs every gas estimate ~13 times. This module keeps eth-tester's ``PyEVMBackend`` for genesis
and mining, and answers Ethereum JSON-RPC itself, with the shapes and error codes geth uses, so a
plain web3.py ``HTTPProvider`` and a raw JSON-RPC client behave as they would against geth.

Custom precompiles (the inference precompile, test helpers) are plain Python callables plugged
into a Prague VM built per chain.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, ComputationAPI, ReceiptAPI, SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import InvalidInstruction, OutOfGas, Revert, WriteProtection
from eth.vm.forks.cancun import get_total_blob_gas
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.constants import STANDARD_TOKEN_COST, TOTAL_COST_FLOOR_PER_TOKEN
from eth.vm.forks.prague.state import PragueState
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_keys import keys
from eth_keys.datatypes import PrivateKey
from eth_tester.backends.pyevm.main import PyEVMBackend
from eth_typing import Address
from eth_utils import keccak, to_canonical_address, to_checksum_address
from eth_utils.exceptions import ValidationError as EthValidationError

from opengradient import bounded_json
from opengradient.devnet.chain.mempool import Mempool, PendingTx, PoolRefusal
from opengradient.devnet.chain.snapshots import ChainImage, ChainImageError, decode_header, encode_header

__all__ = [
    "DevChain",
    "MAX_DEFERRED_WORK",
    "PrecompileCall",
    "PrecompileDeferred",
    "PrecompileFn",
    "PrecompileResult",
    "PrecompileRevert",
    "RpcError",
    "encode_error_string",
    "decode_revert_reason",
]

log = logging.getLogger("opengradient.devnet.chain.evm")

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
ZERO_ADDRESS = b"\x00" * 20
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei, what geth's dev mode suggests
GAS_ESTIMATE_MARGIN_NUM = 5  # estimate = used * 5/4: one execution, a 25% margin
GAS_ESTIMATE_MARGIN_DEN = 4
GAS_ESTIMATE_MIN_MARGIN = 5_000  # absolute floor on the margin for cheap calls
TX_BASE_GAS = 21_000
MAX_LOG_TOPICS = 4
#: Precompile calls of one request whose work may run outside the lock (a precompile refuses more).
MAX_DEFERRED_WORK = 16
MAX_JSON_DEPTH = 64  # JSON-RPC needs a handful of levels
#: How long an automined send waits for its block before answering with an error.
_SEND_WAIT_SECONDS = 120.0
_KEEP_DROPPED = 1024

# Built-in precompile slots a custom precompile must not shadow (0x0100 is P256 on RIP-7212 chains).
_RESERVED_PRECOMPILES = frozenset(
    set(PragueComputation.get_precompiles()) | {b"\x00" * 18 + b"\x01\x00"}
)

_PANIC_REASONS = {
    0x00: "generic panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array",
    0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory",
    0x51: "uninitialized function",
}


def _now() -> int:
    """Wall-clock seconds; one seam so tests can freeze the chain's clock."""
    return int(time.time())


# --------------------------------------------------------------------------------------------
# Precompile interface
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrecompileCall:
    """What a custom precompile sees of the EVM call that reached it.

    `gas_available` is the gas the call may still spend; `prepared` holds the results of work the
    precompile deferred (`PrecompileDeferred`) during this request, by the key it gave.
    """

    data: bytes
    caller: str
    origin: str
    block_number: int
    timestamp: int
    is_static: bool
    gas_available: int = 0
    prepared: Mapping[Hashable, Any] = field(default_factory=dict)


@dataclass
class PrecompileResult:
    """A precompile's answer: return data, logs emitted from its own address, extra gas."""

    output: bytes
    logs: list[tuple[list[bytes], bytes]] = field(default_factory=list)
    gas: int = 0


class PrecompileRevert(Exception):  # noqa: N818 (the name is the public interface)
    """Raised by a precompile to revert; the chain ABI-encodes Error(string) so callers see the reason.

    `gas` is consumed before reverting (at most what is left): work done before the refusal — a
    model that ran out of its time budget — is paid for, as any reverted computation pays.
    """

    def __init__(self, reason: str, *, gas: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.gas = gas


class PrecompileDeferred(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a precompile whose work must not run under the chain's lock (a model run).

    The chain abandons what it was executing (nothing of it is kept), runs `work()` without the
    lock — other requests are served meanwhile — and executes the request again from the start;
    this time the precompile finds `work()`'s result in `PrecompileCall.prepared[key]`. `work`
    must not raise: it returns what the precompile needs, failures included. Work must be a pure
    function of the call (a model run on its input), so the second execution sees what the first
    would have.
    """

    def __init__(self, key: Hashable, work: Callable[[], Any]) -> None:
        super().__init__(f"deferred precompile work {key!r}")
        self.key = key
        self.work = work


PrecompileFn = Callable[[PrecompileCall], PrecompileResult]


def encode_error_string(reason: str) -> bytes:
    """ABI ``Error(string)`` revert payload, what Solidity's ``revert("…")`` produces."""
    return ERROR_SELECTOR + abi_encode(["string"], [reason])


def decode_revert_reason(data: bytes) -> str | None:
    """Human reason from revert data (Error(string) or Panic(uint256)); None for custom errors."""
    try:
        if data[:4] == ERROR_SELECTOR:
            return cast(str, abi_decode(["string"], data[4:])[0])
        if data[:4] == PANIC_SELECTOR:
            code = cast(int, abi_decode(["uint256"], data[4:])[0])
            return _PANIC_REASONS.get(code, f"unknown panic code: {code:#x}")
    except Exception:
        return None
    return None


def _make_precompile(
    address: bytes, fn: PrecompileFn, simulating: Callable[[], bool],
    prepared: Callable[[], Mapping[Hashable, Any]],
) -> Callable[[ComputationAPI], ComputationAPI]:
    """Adapt a PrecompileFn to py-evm's computation protocol.

    Reverts carry ABI Error(string) as output *before* raising Revert, or py-evm drops the reason;
    any other exception becomes a revert too, so a buggy precompile never takes the node down.
    """
    label = to_checksum_address(address)

    def run(computation: ComputationAPI) -> ComputationAPI:
        msg = computation.msg
        call = PrecompileCall(
            data=bytes(msg.data),
            caller=to_checksum_address(msg.sender),
            origin=to_checksum_address(computation.transaction_context.origin),
            block_number=computation.state.block_number,
            timestamp=computation.state.timestamp,
            is_static=bool(msg.is_static) or simulating(),
            gas_available=computation.get_gas_remaining(),
            prepared=prepared(),
        )
        try:
            result = fn(call)
            if not isinstance(result, PrecompileResult):
                raise TypeError(f"returned {type(result).__name__}, not PrecompileResult")
            output = bytes(result.output)
            gas = int(result.gas)
            if gas < 0:
                raise ValueError("negative gas")
            entries = []
            for topics, data in result.logs:
                if len(topics) > MAX_LOG_TOPICS:
                    raise ValueError(f"a log has {len(topics)} topics (max {MAX_LOG_TOPICS})")
                if any(len(t) > 32 for t in topics):
                    raise ValueError("a log topic is longer than 32 bytes")
                entries.append((tuple(int.from_bytes(t, "big") for t in topics), bytes(data)))
        except PrecompileDeferred:
            raise  # out of py-evm (which only handles VMErrors) to the chain's request loop
        except PrecompileRevert as exc:
            if exc.gas:
                computation.consume_gas(min(exc.gas, computation.get_gas_remaining()),
                                        reason=f"precompile {label} (reverted)")
            payload = encode_error_string(exc.reason)
            computation.output = payload
            raise Revert(payload) from None
        except Exception as exc:  # a bug in a precompile must not crash the chain
            log.exception("precompile %s failed", label)
            payload = encode_error_string(f"precompile {label} failed: {type(exc).__name__}: {exc}")
            computation.output = payload
            raise Revert(payload) from None

        if gas:
            computation.consume_gas(gas, reason=f"precompile {label}")  # OutOfGas is a VMError
        if not msg.is_static:  # a STATICCALL cannot change state, so its logs are dropped
            for topics_int, data in entries:
                # From the precompile's own address, even when reached by DELEGATECALL.
                computation.add_log_entry(Address(address), topics_int, data)
        computation.output = output
        return computation

    return run


# --------------------------------------------------------------------------------------------
# VM and backend
# --------------------------------------------------------------------------------------------


class _DevPragueVM(PragueVM):
    """Prague, but a block may share its parent's timestamp.

    One block per transaction with strictly increasing timestamps pushes the chain clock ahead of
    the wall clock under load (+575 s after a few hundred paid calls), which expires payment
    authorizations; allowing equal timestamps keeps block time equal to real time.
    """

    @classmethod
    def validate_header(cls, header: BlockHeaderAPI, parent_header: BlockHeaderAPI) -> None:
        if parent_header is not None and header.timestamp == parent_header.timestamp:
            parent_header = parent_header.copy(timestamp=parent_header.timestamp - 1)
        super().validate_header(header, parent_header)


def _build_vm_class(
    name: str, precompiles: Mapping[bytes, Callable[[ComputationAPI], ComputationAPI]]
) -> type[PragueVM]:
    """A VM class whose computations know this chain's extra precompiles (one set per chain)."""
    all_precompiles: dict[Any, Any] = {**PragueComputation.get_precompiles(), **precompiles}
    computation_cls = type(f"{name}Computation", (PragueComputation,), {"_precompiles": all_precompiles})
    state_cls = type(f"{name}State", (PragueState,), {"computation_class": computation_cls})
    return type(f"{name}VM", (_DevPragueVM,), {"_state_class": state_cls})


class DevBackend(PyEVMBackend):
    """eth-tester's backend plus what the devnet needs from it.

    Simulations keep the computation (so the raw revert data survives), run against the pending
    block with a current timestamp, and gas is estimated in a single pass.
    """

    def __init__(
        self,
        chain_id: int,
        genesis_state: dict[bytes, dict[str, Any]],
        vm_class: type[PragueVM],
    ) -> None:
        super().__init__(genesis_state=genesis_state, vm_configuration=((0, vm_class),))
        self.chain.chain_id = chain_id
        self.account_keys = ()  # eth-tester invents keys for the genesis accounts; we sign nothing

    def simulate(
        self,
        header: BlockHeaderAPI,
        sender: bytes,
        to: bytes,
        value: int,
        data: bytes,
        gas: int | None,
        gas_price: int | None,
        max_fee: int | None,
        max_priority_fee: int | None,
        access_list: Sequence[tuple[bytes, Sequence[int]]],
    ) -> tuple[ComputationAPI, Any]:
        """Run a call on ``header``'s state and throw the state away; returns (computation, tx).

        Without fees (or with zero fees) the base fee is zero for this run, as geth does for
        eth_call, so unfunded senders can call views. With fees and no gas given, gas is capped
        at what the sender can pay for, as geth does, so estimates work for thinly funded keys.
        The returned tx's ``gas`` is the limit the run had.
        """
        chain = self.chain
        priced = any(v for v in (gas_price, max_fee, max_priority_fee))
        base_fee = getattr(header, "base_fee_per_gas", 0)
        if not priced and base_fee:
            header = header.copy(base_fee_per_gas=0)
        vm = chain.get_vm(header)
        state = vm.state
        nonce = state.get_nonce(sender)
        gas_limit = header.gas_limit if gas is None else gas
        legacy = gas_price is not None and max_fee is None and max_priority_fee is None
        prio = max_priority_fee if max_priority_fee is not None else 0
        if not legacy and max_fee is None:
            max_fee = prio + 2 * (base_fee if priced else 0)
        fee_cap = gas_price if legacy else max_fee
        if gas is None and fee_cap:
            affordable = max(state.get_balance(sender) - value, 0) // fee_cap
            gas_limit = min(gas_limit, affordable)
        builder = vm.get_transaction_builder()
        unsigned: Any
        if legacy:
            if access_list:
                unsigned = builder.new_unsigned_access_list_transaction(
                    chain_id=chain.chain_id, nonce=nonce, gas_price=gas_price, gas=gas_limit,
                    to=to, value=value, data=data, access_list=access_list,
                )
            else:
                unsigned = builder.create_unsigned_transaction(
                    nonce=nonce, gas_price=gas_price, gas=gas_limit, to=to, value=value, data=data
                )
        else:
            unsigned = builder.new_unsigned_dynamic_fee_transaction(
                chain_id=chain.chain_id, nonce=nonce, max_priority_fee_per_gas=prio,
                max_fee_per_gas=max_fee, gas=gas_limit, to=to, value=value, data=data,
                access_list=access_list,
            )
        intrinsic = unsigned.intrinsic_gas
        if gas_limit < intrinsic:
            if gas is None:
                raise EthValidationError(f"gas required exceeds allowance ({gas_limit})")
            raise EthValidationError(f"intrinsic gas too low: have {gas_limit}, want {intrinsic}")
        tx = SpoofTransaction(unsigned, from_=sender)
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(tx)
        finally:
            state.revert(snapshot)
        return computation, tx


# --------------------------------------------------------------------------------------------
# JSON-RPC helpers
# --------------------------------------------------------------------------------------------


class RpcError(Exception):
    """A JSON-RPC error object (code, message, optional data) raised inside a handler."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def _invalid(what: str) -> RpcError:
    return RpcError(-32602, f"invalid argument: {what}")


def _hq(n: int) -> str:
    return hex(n)


def _hd(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _haddr(b: bytes | None) -> str | None:
    if not b:
        return None
    return "0x" + bytes(b).hex()


def _h32(n: int) -> str:
    return "0x" + n.to_bytes(32, "big").hex()


def _parse_qty(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _invalid(what)
    if isinstance(value, int):
        if value < 0:
            raise _invalid(what)
        return value
    if isinstance(value, str) and value[:2] in ("0x", "0X") and len(value) > 2:
        try:
            return int(value[2:], 16)
        except ValueError:
            pass
    raise _invalid(f"{what}: hex quantity expected, got {value!r}")


def _parse_data(value: Any, what: str) -> bytes:
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        body = value[2:]
        if len(body) % 2 == 0:
            try:
                return bytes.fromhex(body)
            except ValueError:
                pass
    raise _invalid(f"{what}: 0x-prefixed hex data expected")


def _parse_address(value: Any, what: str) -> bytes:
    raw = _parse_data(value, what) if isinstance(value, str) else None
    if raw is None or len(raw) != 20:
        raise _invalid(f"{what}: 20-byte address expected")
    return raw


def _parse_hash(value: Any, what: str) -> bytes:
    raw = _parse_data(value, what)
    if len(raw) != 32:
        raise _invalid(f"{what}: 32-byte hash expected")
    return raw


def _parse_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(f"{what}: boolean expected")
    return value


def _param(params: list[Any], i: int, default: Any = None) -> Any:
    return params[i] if len(params) > i else default


_BLOCK_TAGS = ("latest", "pending", "earliest", "safe", "finalized")


def _parse_block_ref(value: Any) -> str | int | bytes:
    """A block parameter: a tag, a number, or (EIP-1898) a hash."""
    if value is None:
        return "latest"
    if isinstance(value, str) and value in _BLOCK_TAGS:
        return value
    if isinstance(value, dict):
        if "blockHash" in value:
            return _parse_hash(value["blockHash"], "blockHash")
        if "blockNumber" in value:
            return _parse_block_ref(value["blockNumber"])
        raise _invalid("block: blockHash or blockNumber expected")
    return _parse_qty(value, "block")


def _to_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{what}: object expected")
    return value


def _tx_type(tx: Any) -> int:
    return int(getattr(tx, "type_id", None) or 0)


def _effective_gas_price(tx: Any, base_fee: int) -> int:
    if _tx_type(tx) >= 2:
        return int(min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base_fee))
    return int(tx.gas_price)


def _vm_error_message(error: Exception, gas: int) -> str:
    if isinstance(error, OutOfGas):
        return f"gas required exceeds allowance ({gas})"
    if isinstance(error, InvalidInstruction):
        return f"invalid opcode: {error}"
    if isinstance(error, WriteProtection):
        return "write protection"
    return str(error) or type(error).__name__


# --------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------


class DevChain:
    """One local EVM chain: genesis, automining, custom precompiles, and a JSON-RPC handler.

    Transactions go through a pool (`opengradient.devnet.chain.mempool`): with automine (the default) a
    block is built as soon as one arrives, taking everything that arrived while the previous
    block was built, and ``eth_sendRawTransaction`` answers once its block is mined (as anvil's
    automine does), so a client's receipt is there when the send returns; with `block_time` a
    block is mined every interval and the send answers at once (the receipt is null until then,
    as geth's). All access to py-evm (not thread-safe) goes through one lock.
    """

    def __init__(
        self,
        chain_id: int,
        *,
        funded: Mapping[str, int] | None = None,
        code: Mapping[str, bytes] | None = None,
        storage: Mapping[str, Mapping[int, int]] | None = None,
        precompiles: Mapping[str, PrecompileFn] | None = None,
        name: str = "chain",
        block_time: float | None = None,
    ) -> None:
        if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id <= 0:
            raise ValueError(f"chain_id must be a positive integer, got {chain_id!r}")
        self.chain_id = chain_id
        self.name = name
        self._lock = threading.RLock()
        self._simulating = False
        self._deferred = threading.local()  # results of deferred precompile work, per request
        self._pool = Mempool()
        #: None: automine (a block as soon as a transaction arrives, batching what arrives while one
        #: is built; the send answers once its block is mined). Seconds: a block every interval
        #: (the send answers at once with the hash; receipts follow).
        self.block_time = block_time
        #: anvil's `evm_setAutomine`: with it off (and no `block_time`) transactions wait in the pool
        #: until `evm_mine`, and sends answer at once with the hash.
        self.automine = True
        self._miner_stop = threading.Event()
        self._miner: threading.Thread | None = None
        self._autominer: threading.Thread | None = None
        self._autominer_lock = threading.Lock()
        self._dropped: OrderedDict[bytes, str] = OrderedDict()  # recently dropped: hash → why
        self._log_listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self._filters: dict[str, dict[str, Any]] = {}
        self._next_filter = 1
        #: anvil's controls: seconds added to the wall clock, a fixed timestamp for the next block,
        #: snapshots by id, accounts whose unsigned sends are accepted (and the keys of unlocked ones).
        self._time_offset = 0
        self._next_timestamp: int | None = None
        self._snapshots: dict[int, ChainImage] = {}
        self._next_snapshot = 1
        self._impersonated: set[bytes] = set()
        self._signers: dict[bytes, PrivateKey] = {}

        adapters: dict[bytes, Callable[[ComputationAPI], ComputationAPI]] = {}
        for addr, fn in (precompiles or {}).items():
            canonical = to_canonical_address(addr)
            if canonical in _RESERVED_PRECOMPILES:
                raise ValueError(f"{addr} is a built-in precompile address; pick another")
            adapters[canonical] = _make_precompile(canonical, fn, self._is_simulating, self._prepared)
        self._precompile_addresses = frozenset(adapters)

        genesis: dict[bytes, dict[str, Any]] = {}

        def account(addr: str) -> dict[str, Any]:
            key = to_canonical_address(addr)
            return genesis.setdefault(key, {"balance": 0, "nonce": 0, "code": b"", "storage": {}})

        for addr, wei in (funded or {}).items():
            account(addr)["balance"] = int(wei)
        for addr, runtime in (code or {}).items():
            acct = account(addr)
            acct["code"] = bytes(runtime)
            acct["nonce"] = 1 if runtime else 0  # EIP-161: deployed contracts start at nonce 1
        for addr, slots in (storage or {}).items():
            account(addr)["storage"] = {int(k): int(v) for k, v in slots.items()}
        if not genesis:  # eth-tester would otherwise invent ten funded accounts
            genesis[ZERO_ADDRESS] = {"balance": 0, "nonce": 0, "code": b"", "storage": {}}

        safe = "".join(c for c in name.title() if c.isalnum()) or "Dev"
        vm_class = _build_vm_class(safe, adapters)
        self._backend = DevBackend(chain_id, genesis, vm_class)
        self._chain: Any = self._backend.chain

        genesis_block = self._chain.get_canonical_block_by_number(0)
        self._blocks: list[BlockAPI] = [genesis_block]
        self._block_numbers: dict[bytes, int] = {genesis_block.hash: 0}
        self._block_logs: list[list[dict[str, Any]]] = [[]]
        self._txs: dict[bytes, dict[str, Any]] = {}
        self._receipts: dict[bytes, dict[str, Any]] = {}

        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            "web3_clientVersion": lambda p: f"opengradient-devnet/{self.name}/py-evm",
            "web3_sha3": lambda p: _hd(keccak(_parse_data(_param(p, 0), "data"))),
            "net_version": lambda p: str(self.chain_id),
            "net_listening": lambda p: True,
            "net_peerCount": lambda p: "0x0",
            "eth_chainId": lambda p: _hq(self.chain_id),
            "eth_syncing": lambda p: False,
            "eth_mining": lambda p: False,
            "eth_hashrate": lambda p: "0x0",
            "eth_accounts": lambda p: [to_checksum_address(a) for a in self._impersonated],
            "eth_coinbase": lambda p: _hd(ZERO_ADDRESS),
            "eth_blockNumber": lambda p: _hq(self._head().block_number),
            "eth_gasPrice": self._eth_gas_price,
            "eth_maxPriorityFeePerGas": lambda p: _hq(DEFAULT_PRIORITY_FEE),
            "eth_blobBaseFee": lambda p: "0x1",
            "eth_feeHistory": self._eth_fee_history,
            "eth_getBalance": self._eth_get_balance,
            "eth_getTransactionCount": self._eth_get_transaction_count,
            "eth_getCode": self._eth_get_code,
            "eth_getStorageAt": self._eth_get_storage_at,
            "eth_call": self._eth_call,
            "eth_estimateGas": self._eth_estimate_gas,
            "eth_sendRawTransaction": self._eth_send_raw_transaction,  # handled outside the lock
            "eth_getTransactionByHash": self._eth_get_transaction_by_hash,
            "eth_getTransactionReceipt": self._eth_get_transaction_receipt,
            "eth_getTransactionByBlockNumberAndIndex": self._eth_tx_by_number_and_index,
            "eth_getTransactionByBlockHashAndIndex": self._eth_tx_by_hash_and_index,
            "eth_getBlockByNumber": self._eth_get_block_by_number,
            "eth_getBlockByHash": self._eth_get_block_by_hash,
            "eth_getBlockTransactionCountByNumber": self._eth_block_tx_count_by_number,
            "eth_getBlockTransactionCountByHash": self._eth_block_tx_count_by_hash,
            "eth_getUncleCountByBlockNumber": lambda p: "0x0",
            "eth_getUncleCountByBlockHash": lambda p: "0x0",
            "eth_getLogs": self._eth_get_logs,
            "eth_newFilter": self._eth_new_filter,
            "eth_newBlockFilter": self._eth_new_block_filter,
            "eth_getFilterChanges": self._eth_get_filter_changes,
            "eth_getFilterLogs": self._eth_get_filter_logs,
            "eth_uninstallFilter": self._eth_uninstall_filter,
            "evm_mine": self._evm_mine,
            "evm_setAutomine": self._evm_set_automine,
            **self._anvil_methods(),
        }
        self._tx_decoder = self._chain.get_vm().get_transaction_builder()
        self._refresh_cached_header()
        self._base = self._capture()
        self.block_time = None
        if block_time is not None:
            self.mine_every(block_time)

    # ---- public API -------------------------------------------------------------------------

    def rpc(self, request: dict[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
        """Answer one JSON-RPC 2.0 request or a batch; errors come back as error objects."""
        if isinstance(request, list):
            if not request:
                return _error_response(None, RpcError(-32600, "empty batch"))
            return [self._handle_one(item) for item in request]
        return self._handle_one(request)

    def rpc_bytes(self, body: bytes) -> bytes:
        """Same as :meth:`rpc` on raw JSON bytes; unparseable JSON yields -32700."""
        try:
            request = bounded_json.loads(body, max_depth=MAX_JSON_DEPTH)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError
            response: Any = _error_response(None, RpcError(-32700, f"parse error: {exc}"))
        else:
            if isinstance(request, (dict, list)):
                response = self.rpc(request)
            else:
                response = _error_response(None, RpcError(-32600, "invalid request"))
        return json.dumps(response, separators=(",", ":")).encode()

    def set_code(self, address: str, code: bytes) -> None:
        """Place runtime code at a fixed address after genesis (mines one block)."""
        key = to_canonical_address(address)
        runtime = bytes(code)

        def edit(state: Any) -> None:
            state.set_code(key, runtime)
            if runtime and state.get_nonce(key) == 0:
                state.set_nonce(key, 1)

        self._edit_state(edit)

    def set_balance(self, address: str, wei: int) -> None:
        """Set an account's balance (mines one block); for funding accounts made after genesis."""
        key = to_canonical_address(address)
        self._edit_state(lambda state: state.set_balance(key, int(wei)))

    def set_storage(self, address: str, slot: int, value: int) -> None:
        """Write one storage slot (mines one block)."""
        key = to_canonical_address(address)
        self._edit_state(lambda state: state.set_storage(key, int(slot), int(value)))

    def add_log_listener(self, listener: Callable[[list[dict[str, Any]]], None]) -> None:
        """Call `listener` with each new block's logs (JSON-RPC shaped), as the block is mined.

        It runs under the chain's lock, so it must be quick and must not call the chain: note what
        changed and act on it elsewhere.
        """
        self._log_listeners.append(listener)

    def mine(self) -> None:
        """Mine an empty block at the current time."""
        with self._lock:
            self._bump_pending()
            self._mine([])

    @property
    def pending_transactions(self) -> int:
        """How many transactions wait in the pool for a block."""
        return len(self._pool)

    @property
    def head_hash(self) -> bytes:
        """Hash of the latest mined block: the identity of the state calls read (every state
        change mines a block; the same hash again, as after a revert, means the same state)."""
        with self._lock:
            return bytes(self._head().hash)

    @property
    def block_number(self) -> int:
        """Number of the latest mined block."""
        with self._lock:
            return int(self._head().block_number)

    # ---- chain internals ---------------------------------------------------------------------

    def _is_simulating(self) -> bool:
        return self._simulating

    def _prepared(self) -> Mapping[Hashable, Any]:
        return getattr(self._deferred, "results", None) or {}

    def _head(self) -> BlockHeaderAPI:
        return self._blocks[-1].header

    def _bump_pending(self) -> None:
        """Keep the pending block at the chain's time (never behind its parent): the wall clock plus
        what `evm_increaseTime` added, or the timestamp `evm_setNextBlockTimestamp` fixed."""
        parent_ts = self._head().timestamp
        ts = max(self.now() if self._next_timestamp is None else self._next_timestamp, parent_ts)
        if self._chain.header.timestamp != ts:
            self._chain.header = self._chain.header.copy(timestamp=ts)

    def _edit_state(self, edit: Callable[[Any], None]) -> None:
        with self._lock:
            self._bump_pending()
            chain = self._chain
            saved = chain.header
            try:
                vm = chain.get_vm()
                edit(vm.state)
                vm.state.persist()
                chain.header = chain.header.copy(state_root=vm.state.state_root)
                self._mine([])
            except Exception:
                chain.header = saved
                raise

    def _mine(self, applied: list[tuple[SignedTransactionAPI, ReceiptAPI]]) -> BlockAPI:
        """Seal the pending block and index its transactions, receipts and logs."""
        chain = self._chain
        number = chain.header.block_number
        mix = keccak(chain.header.parent_hash + number.to_bytes(8, "big"))  # reproducible prevrandao
        blob_gas = sum(get_total_blob_gas(tx) for tx, _ in applied)
        block = chain.mine_block(mix_hash=mix, blob_gas_used=blob_gas)
        if self._next_timestamp is not None:  # later blocks continue from the fixed time, as anvil's
            self._time_offset = block.header.timestamp - _now()
            self._next_timestamp = None
        self._blocks.append(block)
        self._block_numbers[block.hash] = block.number
        header = block.header
        base_fee = getattr(header, "base_fee_per_gas", 0) or 0
        block_logs: list[dict[str, Any]] = []
        previous_cumulative = 0
        for index, (tx, receipt) in enumerate(applied):
            sender = tx.sender
            tx_json = self._tx_json(tx, sender, block, index, base_fee)
            logs = []
            for log_entry in receipt.logs:
                entry = {
                    "address": _hd(log_entry.address),
                    "topics": [_h32(t) for t in log_entry.topics],
                    "data": _hd(log_entry.data),
                    "blockNumber": _hq(block.number),
                    "blockHash": _hd(block.hash),
                    "transactionHash": _hd(tx.hash),
                    "transactionIndex": _hq(index),
                    "logIndex": _hq(len(block_logs)),
                    "removed": False,
                }
                logs.append(entry)
                block_logs.append(entry)
            created = None
            if tx.to == CREATE_CONTRACT_ADDRESS:
                created = _hd(keccak(rlp.encode([sender, tx.nonce]))[12:])
            status = 1 if receipt.state_root == b"\x01" else 0
            self._txs[tx.hash] = tx_json
            self._receipts[tx.hash] = {
                "transactionHash": _hd(tx.hash),
                "transactionIndex": _hq(index),
                "blockHash": _hd(block.hash),
                "blockNumber": _hq(block.number),
                "from": _hd(sender),
                "to": _haddr(tx.to),
                "cumulativeGasUsed": _hq(receipt.gas_used),
                "gasUsed": _hq(receipt.gas_used - previous_cumulative),
                "contractAddress": created,
                "logs": logs,
                "logsBloom": _hd(receipt.bloom.to_bytes(256, "big")),
                "status": _hq(status),
                "effectiveGasPrice": _hq(_effective_gas_price(tx, base_fee)),
                "type": _hq(_tx_type(tx)),
            }
            previous_cumulative = receipt.gas_used
        self._block_logs.append(block_logs)
        self._refresh_cached_header()
        if block_logs:
            for listener in self._log_listeners:
                try:
                    listener(block_logs)
                except Exception:  # a watcher's bug must not undo a mined block
                    log.exception("a log listener of %s failed", self.name)
        return block

    def _tx_json(
        self, tx: Any, sender: bytes, block: BlockAPI | None, index: int | None, base_fee: int
    ) -> dict[str, Any]:
        type_id = _tx_type(tx)
        out: dict[str, Any] = {
            "blockHash": _hd(block.hash) if block is not None else None,
            "blockNumber": _hq(block.number) if block is not None else None,
            "transactionIndex": _hq(index) if index is not None else None,
            "hash": _hd(tx.hash),
            "type": _hq(type_id),
            "from": _hd(sender),
            "to": _haddr(tx.to),
            "nonce": _hq(tx.nonce),
            "gas": _hq(tx.gas),
            "value": _hq(tx.value),
            "input": _hd(tx.data),
        }
        if type_id >= 2:
            out["maxFeePerGas"] = _hq(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = _hq(tx.max_priority_fee_per_gas)
            mined = block is not None
            out["gasPrice"] = _hq(_effective_gas_price(tx, base_fee) if mined else tx.max_fee_per_gas)
        else:
            out["gasPrice"] = _hq(tx.gas_price)
        if type_id >= 1:
            out["chainId"] = _hq(tx.chain_id)
            out["accessList"] = [
                {"address": _hd(addr), "storageKeys": [_h32(s) for s in slots]}
                for addr, slots in (tx.access_list or ())
            ]
            out["v"] = _hq(tx.y_parity)
            out["yParity"] = _hq(tx.y_parity)
        else:
            out["v"] = _hq(tx.v)
            if tx.chain_id is not None:
                out["chainId"] = _hq(tx.chain_id)
        if type_id == 3:
            out["maxFeePerBlobGas"] = _hq(tx.max_fee_per_blob_gas)
            out["blobVersionedHashes"] = [_hd(h) for h in tx.blob_versioned_hashes]
        if type_id == 4:
            out["authorizationList"] = [
                {
                    "chainId": _hq(a.chain_id),
                    "address": _hd(a.address),
                    "nonce": _hq(a.nonce),
                    "yParity": _hq(a.y_parity),
                    "r": _hq(a.r),
                    "s": _hq(a.s),
                }
                for a in tx.authorization_list
            ]
        out["r"] = _hq(tx.r)
        out["s"] = _hq(tx.s)
        return out

    def _block_json(self, block: BlockAPI, full: bool, pending: bool = False) -> dict[str, Any]:
        h = block.header
        txs: list[Any]
        if full:
            txs = [self._txs[tx.hash] for tx in block.transactions]
        else:
            txs = [_hd(tx.hash) for tx in block.transactions]
        out: dict[str, Any] = {
            "number": _hq(h.block_number),
            "hash": None if pending else _hd(h.hash),
            "parentHash": _hd(h.parent_hash),
            "nonce": None if pending else _hd(h.nonce),
            "mixHash": _hd(h.mix_hash),
            "sha3Uncles": _hd(h.uncles_hash),
            "logsBloom": _hd(h.bloom.to_bytes(256, "big")),
            "transactionsRoot": _hd(h.transaction_root),
            "stateRoot": _hd(h.state_root),
            "receiptsRoot": _hd(h.receipt_root),
            "miner": _hd(h.coinbase),
            "difficulty": _hq(h.difficulty),
            "extraData": _hd(h.extra_data),
            "size": _hq(len(rlp.encode(block))),
            "gasLimit": _hq(h.gas_limit),
            "gasUsed": _hq(h.gas_used),
            "timestamp": _hq(h.timestamp),
            "transactions": txs,
            "uncles": [],
        }
        optional_quantities = {
            "baseFeePerGas": "base_fee_per_gas",
            "blobGasUsed": "blob_gas_used",
            "excessBlobGas": "excess_blob_gas",
        }
        for key, attr in optional_quantities.items():
            value = getattr(h, attr, None)
            if value is not None:
                out[key] = _hq(value)
        optional_hashes = {
            "withdrawalsRoot": "withdrawals_root",
            "parentBeaconBlockRoot": "parent_beacon_block_root",
            "requestsHash": "requests_hash",
        }
        for key, attr in optional_hashes.items():
            value = getattr(h, attr, None)
            if value is not None:
                out[key] = _hd(value)
        if getattr(h, "withdrawals_root", None) is not None:
            out["withdrawals"] = []
        return out

    def _resolve_number(self, ref: str | int | bytes) -> int | None:
        """Block number for a parsed block parameter; None if it does not exist (yet)."""
        head = self._head().block_number
        if isinstance(ref, bytes):
            return self._block_numbers.get(ref)
        if isinstance(ref, int):
            return ref if ref <= head else None
        if ref == "earliest":
            return 0
        if ref == "pending":
            return head + 1
        return head  # latest / safe / finalized: every block is final here

    def _state_header(self, raw_ref: Any) -> BlockHeaderAPI:
        """Header whose post-state answers a state query at ``raw_ref``."""
        ref = _parse_block_ref(raw_ref)
        number = self._resolve_number(ref)
        if number is None:
            raise RpcError(-32000, "header not found")
        if number > self._head().block_number:
            return cast(BlockHeaderAPI, self._chain.header)
        return self._blocks[number].header

    def _state(self, raw_ref: Any) -> Any:
        return self._chain.get_vm(self._state_header(raw_ref)).state

    # ---- request plumbing --------------------------------------------------------------------

    def _handle_one(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return _error_response(None, RpcError(-32600, "invalid request"))
        req_id = request.get("id")
        method = request.get("method")
        if not isinstance(method, str):
            return _error_response(req_id, RpcError(-32600, "invalid request: method missing"))
        handler = self._methods.get(method)
        if handler is None:
            return _error_response(
                req_id, RpcError(-32601, f"the method {method} does not exist/is not available")
            )
        params = request.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            return _error_response(req_id, RpcError(-32602, "invalid params: array expected"))
        try:
            if method in ("eth_sendRawTransaction", "eth_sendTransaction"):  # the pool has its own lock
                result = handler(params)
            else:
                result = self._locked(handler, params)
        except RpcError as exc:
            return _error_response(req_id, exc)
        except Exception as exc:  # never let a bug kill the node or the connection
            log.exception("%s failed", method)
            return _error_response(req_id, RpcError(-32603, f"internal error: {type(exc).__name__}: {exc}"))
        # Receipts, transactions and logs are cached; in-process callers get their own copy.
        return {"jsonrpc": "2.0", "id": req_id, "result": _copy_json(result)}

    def _locked(self, handler: Callable[[list[Any]], Any], params: list[Any]) -> Any:
        """Run a handler under the lock; deferred precompile work runs between attempts, unlocked."""
        results: dict[Hashable, Any] = {}
        try:
            for _ in range(MAX_DEFERRED_WORK + 1):
                self._deferred.results = results
                try:
                    with self._lock:
                        return handler(params)
                except PrecompileDeferred as deferred:
                    if deferred.key in results:
                        raise RuntimeError(f"precompile work {deferred.key!r} was deferred twice") from None
                    results[deferred.key] = deferred.work()
            raise RpcError(-32000, f"one request may run at most {MAX_DEFERRED_WORK} deferred precompile calls")
        finally:
            self._deferred.results = None

    # ---- eth_* handlers ----------------------------------------------------------------------

    def _pending_base_fee(self) -> int:
        return int(getattr(self._chain.header, "base_fee_per_gas", 0) or 0)

    def _eth_gas_price(self, params: list[Any]) -> str:
        return _hq(self._pending_base_fee() + DEFAULT_PRIORITY_FEE)

    def _eth_fee_history(self, params: list[Any]) -> dict[str, Any]:
        count = _parse_qty(_param(params, 0, "0x1"), "blockCount")
        ref = _parse_block_ref(_param(params, 1, "latest"))
        percentiles = _param(params, 2) or []
        if not isinstance(percentiles, list):
            raise _invalid("rewardPercentiles: array expected")
        head = self._head().block_number
        newest = self._resolve_number(ref)
        if newest is None:
            raise RpcError(-32000, "header not found")
        newest = min(newest, head)
        count = max(1, min(count, 1024, newest + 1))
        oldest = newest - count + 1
        base_fees: list[str] = []
        ratios: list[float] = []
        rewards: list[list[str]] = []
        for n in range(oldest, newest + 1):
            h = self._blocks[n].header
            base_fees.append(_hq(getattr(h, "base_fee_per_gas", 0) or 0))
            ratios.append(h.gas_used / h.gas_limit if h.gas_limit else 0.0)
            if percentiles:
                rewards.append([_hq(DEFAULT_PRIORITY_FEE) for _ in percentiles])
        if newest == head:
            base_fees.append(_hq(self._pending_base_fee()))
        else:
            base_fees.append(_hq(getattr(self._blocks[newest + 1].header, "base_fee_per_gas", 0) or 0))
        out: dict[str, Any] = {"oldestBlock": _hq(oldest), "baseFeePerGas": base_fees, "gasUsedRatio": ratios}
        if percentiles:
            out["reward"] = rewards
        return out

    def _eth_get_balance(self, params: list[Any]) -> str:
        addr = _parse_address(_param(params, 0), "address")
        return _hq(self._state(_param(params, 1)).get_balance(addr))

    def _eth_get_transaction_count(self, params: list[Any]) -> str:
        addr = _parse_address(_param(params, 0), "address")
        mined = int(self._state(_param(params, 1)).get_nonce(addr))
        pending = self._pool.pending_nonce(addr) if _param(params, 1) == "pending" else None
        return _hq(max(mined, pending or 0))

    def _eth_get_code(self, params: list[Any]) -> str:
        addr = _parse_address(_param(params, 0), "address")
        return _hd(self._state(_param(params, 1)).get_code(addr))

    def _eth_get_storage_at(self, params: list[Any]) -> str:
        addr = _parse_address(_param(params, 0), "address")
        raw_slot = _param(params, 1)
        if isinstance(raw_slot, str) and len(raw_slot) == 66:
            slot = int.from_bytes(_parse_hash(raw_slot, "slot"), "big")
        else:
            slot = _parse_qty(raw_slot, "slot")
        return _h32(self._state(_param(params, 2)).get_storage(addr, slot))

    def _simulate(self, params: list[Any]) -> tuple[ComputationAPI, Any, int]:
        """Run eth_call/eth_estimateGas params; returns (computation, tx, gas limit used)."""
        call = _to_dict(_param(params, 0), "transaction")
        if len(params) > 2 and params[2] is not None:
            raise RpcError(-32602, "state overrides are not supported by the devnet")
        ref = _parse_block_ref(_param(params, 1))
        number = self._resolve_number(ref)
        if number is None:
            raise RpcError(-32000, "header not found")
        if isinstance(ref, str) and ref != "earliest":
            # latest/pending/safe/finalized: the pending block at wall-clock time, so time-checked
            # logic (EIP-3009 validAfter, deadlines) sees the same clock the next tx will.
            self._bump_pending()
            header = cast(BlockHeaderAPI, self._chain.header)
        else:
            header = self._blocks[number].header

        sender = _parse_address(call["from"], "from") if call.get("from") is not None else ZERO_ADDRESS
        to = _parse_address(call["to"], "to") if call.get("to") is not None else CREATE_CONTRACT_ADDRESS
        data = b""
        if call.get("input") is not None:
            data = _parse_data(call["input"], "input")
            if call.get("data") is not None and _parse_data(call["data"], "data") != data:
                raise _invalid('both "data" and "input" are set and not equal')
        elif call.get("data") is not None:
            data = _parse_data(call["data"], "data")

        def opt_qty(key: str) -> int | None:
            return _parse_qty(call[key], key) if call.get(key) is not None else None

        value = opt_qty("value") or 0
        gas = opt_qty("gas")
        gas_price = opt_qty("gasPrice")
        max_fee = opt_qty("maxFeePerGas")
        max_prio = opt_qty("maxPriorityFeePerGas")
        if gas_price is not None and (max_fee is not None or max_prio is not None):
            raise _invalid("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
        if gas is not None and gas > header.gas_limit:
            gas = header.gas_limit
        access_list = []
        for item in call.get("accessList") or []:
            item = _to_dict(item, "accessList entry")
            access_list.append(
                (
                    _parse_address(item.get("address"), "accessList address"),
                    tuple(
                        int.from_bytes(_parse_hash(k, "storageKey"), "big")
                        for k in item.get("storageKeys") or []
                    ),
                )
            )
        self._simulating = True
        try:
            computation, tx = self._backend.simulate(
                header, sender, to, value, data, gas, gas_price, max_fee, max_prio, access_list
            )
        except (EthValidationError, ValueError) as exc:
            raise RpcError(-32000, _validation_message(str(exc))) from None
        finally:
            self._simulating = False
        return computation, tx, int(tx.gas)

    @staticmethod
    def _raise_if_failed(computation: ComputationAPI, gas_limit: int) -> None:
        if not computation.is_error:
            return
        error = computation.error
        if isinstance(error, Revert):
            data = bytes(computation.output)
            reason = decode_revert_reason(data)
            message = "execution reverted" + (f": {reason}" if reason is not None else "")
            raise RpcError(3, message, _hd(data))
        raise RpcError(-32000, _vm_error_message(error, gas_limit))

    def _eth_call(self, params: list[Any]) -> str:
        computation, _, gas_limit = self._simulate(params)
        self._raise_if_failed(computation, gas_limit)
        return _hd(computation.output)

    def _eth_estimate_gas(self, params: list[Any]) -> str:
        """One execution at the cap, then gas used plus a margin (never a binary search)."""
        computation, tx, gas_limit = self._simulate(params)
        self._raise_if_failed(computation, gas_limit)
        gross = gas_limit - computation.get_gas_remaining()
        zeros = tx.data.count(0)
        tokens = zeros + (len(tx.data) - zeros) * STANDARD_TOKEN_COST
        floor = TX_BASE_GAS + TOTAL_COST_FLOOR_PER_TOKEN * tokens
        needed = max(gross, floor)
        if gross <= tx.intrinsic_gas:
            return _hq(needed)  # nothing executed (plain transfer): exact, like geth
        margin = max(
            needed * GAS_ESTIMATE_MARGIN_NUM // GAS_ESTIMATE_MARGIN_DEN - needed, GAS_ESTIMATE_MIN_MARGIN
        )
        return _hq(min(needed + margin, gas_limit))

    def _eth_send_raw_transaction(self, params: list[Any]) -> str:
        """Accept a transaction into the pool. Automine: answer once its block is mined (batching
        with whatever else arrives meanwhile). Interval mining: answer at once."""
        return self._await_send(self._accept(_parse_data(_param(params, 0), "transaction")))

    def _await_send(self, entry: PendingTx) -> str:
        if self.block_time is None and self.automine:
            self._build_pending()
            if not self._pool.wait(entry, _SEND_WAIT_SECONDS):
                raise RpcError(-32000, f"transaction {_hd(entry.hash)} was not mined within {_SEND_WAIT_SECONDS} s")
            if entry.error is not None:
                raise RpcError(-32000, entry.error)
        return _hd(entry.hash)

    def submit(self, raw: bytes) -> str:
        """Accept a signed transaction into the pool and answer its hash at once, without waiting
        for its block (an in-process sender that must not hold its own lock while blocks are
        built: the facilitator). `wait_mined` waits for it. Raises `RpcError` when refused."""
        entry = self._accept(raw)
        if self.block_time is None:
            self._start_autominer()
        return _hd(entry.hash)

    def wait_mined(self, tx_hash: str, timeout: float = _SEND_WAIT_SECONDS) -> str | None:
        """Wait for a submitted transaction: None once mined, the reason when it was dropped;
        `TimeoutError` when neither happened within `timeout`."""
        key = _parse_hash(tx_hash, "hash")
        entry = self._pool.get(key)
        if entry is not None and not self._pool.wait(entry, timeout):
            raise TimeoutError(f"transaction {tx_hash} was not mined within {timeout} s")
        if key in self._txs:
            return None
        return (entry.error if entry is not None else None) or self._dropped.get(key) or "unknown transaction"

    def _start_autominer(self) -> None:
        with self._autominer_lock:
            if self._autominer is None:
                self._autominer = threading.Thread(target=self._automine, name=f"og-devnet-{self.name}-automine",
                                                   daemon=True)
                self._autominer.start()

    def _automine(self) -> None:
        """Build blocks for submitted transactions (sends over JSON-RPC build their own)."""
        while not self._miner_stop.is_set():
            if not self.automine:
                self._miner_stop.wait(0.05)
            elif self._pool.wait_for_work(0.5):
                self._build_pending()

    def _accept(self, raw: bytes) -> PendingTx:
        """Check a raw transaction and queue it in the pool (geth's refusals as `RpcError`)."""
        try:
            tx = self._tx_decoder.decode(raw)
        except Exception as exc:
            raise RpcError(-32000, f"invalid transaction: {exc}") from None
        tx_chain_id = tx.chain_id
        if tx_chain_id is None:
            raise RpcError(-32000, "only replay-protected (EIP-155) transactions allowed over RPC")
        if tx_chain_id != self.chain_id:
            raise RpcError(-32000, f"invalid chain id for signer: have {tx_chain_id} want {self.chain_id}")
        try:
            tx.validate()
            sender = tx.sender
        except Exception as exc:
            raise RpcError(-32000, f"invalid transaction: {exc}") from None
        if tx.hash in self._txs:
            raise RpcError(-32000, "already known")
        gas_limit = self._gas_limit
        if tx.gas > gas_limit:
            raise RpcError(-32000, f"exceeds block gas limit: gas {tx.gas}, limit {gas_limit}")
        if tx.gas < tx.intrinsic_gas:
            raise RpcError(-32000, f"intrinsic gas too low: have {tx.gas}, want {tx.intrinsic_gas}")
        base_fee = self._base_fee
        if tx.max_fee_per_gas < base_fee:
            raise RpcError(
                -32000,
                f"max fee per gas less than block base fee: address {to_checksum_address(sender)}, "
                f"maxFeePerGas: {tx.max_fee_per_gas}, baseFee: {base_fee}",
            )
        return self._queue(tx, sender)

    def _queue(self, tx: Any, sender: bytes) -> PendingTx:
        entry = PendingTx(hash=tx.hash, tx=tx, sender=sender, nonce=tx.nonce, gas=tx.gas)
        try:
            self._pool.add(entry, self._state_nonce)
        except PoolRefusal as exc:
            raise RpcError(-32000, str(exc)) from None
        return entry

    def _state_nonce(self, sender: bytes) -> int:
        with self._lock:
            return int(self._chain.get_vm().state.get_nonce(sender))

    def _build_pending(self) -> None:
        """Build blocks until the pool is empty, unless another thread is building (it takes what
        arrived meanwhile into its next block)."""
        if not self._pool.claim_builder():
            return
        while True:
            if self.block_time is None and not self.automine:
                self._pool.stop_builder()  # paused: what is queued waits for `evm_mine`
                return
            try:
                self._build_block()
            except Exception:  # a bug must not leave the pool without a builder
                log.exception("building a block of %s failed", self.name)
            if not self._pool.release_builder():
                return

    def _reapply(self, finished: list[PendingTx]) -> tuple[Any, BlockHeaderAPI,
                                                         list[tuple[SignedTransactionAPI, ReceiptAPI]]]:
        """A fresh VM on the pending header with the applied entries of `finished` re-applied."""
        vm = self._chain.get_vm(self._chain.header)
        header = self._chain.header
        applied: list[tuple[SignedTransactionAPI, ReceiptAPI]] = []
        for entry in finished:
            if entry.error is not None:
                continue
            self._deferred.results = entry.prepared
            try:
                receipt, _ = vm.apply_transaction(header, entry.tx)
            finally:
                self._deferred.results = None
            header = vm.increment_blob_gas_used(vm.add_receipt_to_header(header, receipt), entry.tx)
            applied.append((entry.tx, receipt))
        return vm, header, applied

    def _build_block(self, *, force: bool = False) -> None:
        """Mine one block of pending transactions (or an empty one when `force`).

        A transaction that cannot be applied (it cannot pay) is dropped with the reason. One whose
        precompile work must run outside the lock (`PrecompileDeferred`) ends the block before it:
        the lock is released for the work and the transaction opens the next block.
        """
        deferred: PendingTx | None = None
        work: PrecompileDeferred | None = None
        with self._lock:
            batch = self._pool.take(self._gas_limit)
            if not batch and not force:
                return
            self._bump_pending()
            chain = self._chain
            # One VM for the whole block: py-evm's `Chain.apply_transaction` rebuilds the VM, re-reads
            # the block's receipts and re-hashes its transaction and receipt tries for every
            # transaction (quadratic in the block's size); here the state is persisted and the tries
            # built once per block.
            vm = chain.get_vm(chain.header)
            header = chain.header
            applied: list[tuple[SignedTransactionAPI, ReceiptAPI]] = []
            finished: list[PendingTx] = []
            for index, entry in enumerate(batch):
                if header.gas_used + entry.gas > header.gas_limit:
                    self._pool.put_back(batch[index:])
                    break
                self._deferred.results = entry.prepared
                try:
                    receipt, _ = vm.apply_transaction(header, entry.tx)
                except EthValidationError as exc:
                    # py-evm's journal cannot be reverted from inside `apply_transaction`, so the
                    # block's state is rebuilt from the transactions before this one (rare: a
                    # transaction that cannot pay, or one whose precompile work must run outside
                    # the lock, below).
                    entry.error = _validation_message(str(exc))
                    vm, header, applied = self._reapply(finished)
                    finished.append(entry)
                    continue
                except PrecompileDeferred as exc:
                    deferred, work = entry, exc
                    self._pool.put_back(batch[index:])
                    vm, header, applied = self._reapply(finished)
                    break
                finally:
                    self._deferred.results = None
                header = vm.increment_blob_gas_used(vm.add_receipt_to_header(header, receipt), entry.tx)
                applied.append((entry.tx, receipt))
                finished.append(entry)
            if applied or force or deferred is None:
                saved = chain.header
                try:
                    if applied:
                        vm.state.persist()
                        block = vm.set_block_transactions_and_withdrawals(
                            vm.get_block(), header.copy(state_root=vm.state.state_root),
                            [tx for tx, _ in applied], [r for _, r in applied])
                        chain.header = block.header
                    self._mine(applied)
                except Exception:
                    chain.header = saved
                    raise
        for entry in finished:
            if entry.error is not None:
                self._dropped[entry.hash] = entry.error
                while len(self._dropped) > _KEEP_DROPPED:
                    self._dropped.popitem(last=False)
        self._pool.finish(finished)
        if deferred is not None and work is not None:
            if work.key in deferred.prepared:
                deferred.error = f"precompile work {work.key!r} was deferred twice"
                self._pool.finish([deferred])
            elif len(deferred.prepared) >= MAX_DEFERRED_WORK:
                deferred.error = f"one transaction may run at most {MAX_DEFERRED_WORK} deferred precompile calls"
                self._pool.finish([deferred])
            else:
                deferred.prepared[work.key] = work.work()  # outside the lock; the next block retries it

    def _refresh_cached_header(self) -> None:  # holds the lock
        """What a send checks without the lock: the pending block's gas limit and base fee."""
        self._gas_limit = int(self._chain.header.gas_limit)
        self._base_fee = self._pending_base_fee()

    def mine_every(self, seconds: float) -> None:
        """Switch from automine to interval mining: a block every `seconds` (sends then answer at
        once with the hash, and receipts follow with the next block)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ValueError(f"block_time must be a positive number of seconds, got {seconds!r}")
        if self._miner is not None:
            raise RuntimeError(f"{self.name} already mines every {self.block_time} s")
        self.block_time = float(seconds)
        self._miner = threading.Thread(target=self._mine_every, name=f"og-devnet-{self.name}-miner", daemon=True)
        self._miner.start()

    def _mine_every(self) -> None:
        """Interval mining: a block every `block_time` seconds, with whatever is pending."""
        assert self.block_time is not None
        while not self._miner_stop.wait(self.block_time):
            try:
                if self._pool.claim_builder():
                    try:
                        self._build_block(force=True)
                        while self._pool.release_builder():
                            self._build_block()
                    except Exception:
                        self._pool.release_builder()
                        raise
            except Exception:
                log.exception("interval mining of %s failed", self.name)

    def close(self) -> None:
        """Stop the mining threads."""
        self._miner_stop.set()
        for thread in (self._miner, self._autominer):
            if thread is not None:
                thread.join(timeout=5)

    def _eth_get_transaction_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        tx_hash = _parse_hash(_param(params, 0), "hash")
        found = self._txs.get(tx_hash)
        if found is None and (pending := self._pool.get(tx_hash)) is not None:
            return self._tx_json(pending.tx, pending.sender, None, None, self._pending_base_fee())
        return found

    def _eth_get_transaction_receipt(self, params: list[Any]) -> dict[str, Any] | None:
        return self._receipts.get(_parse_hash(_param(params, 0), "hash"))

    def _block_by_ref(self, raw_ref: Any) -> tuple[BlockAPI, bool] | None:
        ref = _parse_block_ref(raw_ref)
        number = self._resolve_number(ref)
        if number is None:
            return None
        if number > self._head().block_number:
            return self._chain.get_block(), True
        return self._blocks[number], False

    def _eth_get_block_by_number(self, params: list[Any]) -> dict[str, Any] | None:
        if not params:
            raise _invalid("block number expected")
        full = _parse_bool(_param(params, 1, False), "fullTransactions")
        found = self._block_by_ref(params[0])
        if found is None:
            return None
        return self._block_json(found[0], full, pending=found[1])

    def _eth_get_block_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        number = self._block_numbers.get(_parse_hash(_param(params, 0), "hash"))
        full = _parse_bool(_param(params, 1, False), "fullTransactions")
        if number is None:
            return None
        return self._block_json(self._blocks[number], full)

    def _tx_at(self, block: BlockAPI | None, raw_index: Any) -> dict[str, Any] | None:
        index = _parse_qty(raw_index, "index")
        if block is None or index >= len(block.transactions):
            return None
        return self._txs.get(block.transactions[index].hash)

    def _eth_tx_by_number_and_index(self, params: list[Any]) -> dict[str, Any] | None:
        found = self._block_by_ref(_param(params, 0))
        return self._tx_at(found[0] if found else None, _param(params, 1))

    def _eth_tx_by_hash_and_index(self, params: list[Any]) -> dict[str, Any] | None:
        number = self._block_numbers.get(_parse_hash(_param(params, 0), "hash"))
        return self._tx_at(self._blocks[number] if number is not None else None, _param(params, 1))

    def _eth_block_tx_count_by_number(self, params: list[Any]) -> str | None:
        found = self._block_by_ref(_param(params, 0))
        return _hq(len(found[0].transactions)) if found else None

    def _eth_block_tx_count_by_hash(self, params: list[Any]) -> str | None:
        number = self._block_numbers.get(_parse_hash(_param(params, 0), "hash"))
        return _hq(len(self._blocks[number].transactions)) if number is not None else None

    # ---- logs and filters --------------------------------------------------------------------

    def _log_criteria(self, raw: Any) -> dict[str, Any]:
        crit = _to_dict(raw if raw is not None else {}, "filter")
        addresses: set[str] | None = None
        raw_addr = crit.get("address")
        if raw_addr is not None:
            items = raw_addr if isinstance(raw_addr, list) else [raw_addr]
            addresses = {_hd(_parse_address(a, "address")) for a in items}
        topics: list[set[str] | None] = []
        raw_topics = crit.get("topics") or []
        if not isinstance(raw_topics, list) or len(raw_topics) > MAX_LOG_TOPICS:
            raise _invalid("topics: array of at most 4 positions expected")
        for pos in raw_topics:
            if pos is None:
                topics.append(None)
            elif isinstance(pos, list):
                alternatives = {_hd(_parse_hash(t, "topic")) for t in pos if t is not None}
                topics.append(alternatives if alternatives and None not in pos else None)
            else:
                topics.append({_hd(_parse_hash(pos, "topic"))})
        block_hash = None
        if crit.get("blockHash") is not None:
            if crit.get("fromBlock") is not None or crit.get("toBlock") is not None:
                raise _invalid("cannot specify both blockHash and fromBlock/toBlock")
            block_hash = _parse_hash(crit["blockHash"], "blockHash")
        return {
            "addresses": addresses,
            "topics": topics,
            "block_hash": block_hash,
            "from": _parse_block_ref(crit.get("fromBlock")),
            "to": _parse_block_ref(crit.get("toBlock")),
        }

    def _log_range(self, crit: dict[str, Any]) -> tuple[int, int]:
        head = self._head().block_number
        if crit["block_hash"] is not None:
            number = self._block_numbers.get(crit["block_hash"])
            if number is None:
                raise RpcError(-32000, "unknown block")
            return number, number

        def bound(ref: str | int | bytes) -> int:
            if isinstance(ref, bytes):
                found = self._block_numbers.get(ref)
                if found is None:
                    raise RpcError(-32000, "unknown block")
                return found
            if isinstance(ref, int):
                return ref
            return 0 if ref == "earliest" else head

        return bound(crit["from"]), min(bound(crit["to"]), head)

    def _matching_logs(self, crit: dict[str, Any], first: int, last: int) -> list[dict[str, Any]]:
        addresses = crit["addresses"]
        topics = crit["topics"]
        out = []
        for number in range(max(first, 0), min(last, len(self._block_logs) - 1) + 1):
            for entry in self._block_logs[number]:
                if addresses is not None and entry["address"] not in addresses:
                    continue
                entry_topics = entry["topics"]
                if len(topics) > len(entry_topics) and any(t is not None for t in topics[len(entry_topics):]):
                    continue
                if all(
                    want is None or (i < len(entry_topics) and entry_topics[i] in want)
                    for i, want in enumerate(topics)
                ):
                    out.append(entry)
        return out

    def _eth_get_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        crit = self._log_criteria(_param(params, 0))
        first, last = self._log_range(crit)
        if first > last:
            return []
        return self._matching_logs(crit, first, last)

    def _new_filter_id(self, spec: dict[str, Any]) -> str:
        filter_id = _hq(self._next_filter)
        self._next_filter += 1
        self._filters[filter_id] = spec
        return filter_id

    def _eth_new_filter(self, params: list[Any]) -> str:
        crit = self._log_criteria(_param(params, 0))
        self._log_range(crit)  # validate now, like geth
        return self._new_filter_id({"kind": "logs", "crit": crit, "seen": self._head().block_number})

    def _eth_new_block_filter(self, params: list[Any]) -> str:
        return self._new_filter_id({"kind": "blocks", "seen": self._head().block_number})

    def _filter(self, params: list[Any]) -> dict[str, Any]:
        spec = self._filters.get(str(_param(params, 0)))
        if spec is None:
            raise RpcError(-32000, "filter not found")
        return spec

    def _eth_get_filter_changes(self, params: list[Any]) -> list[Any]:
        spec = self._filter(params)
        head = self._head().block_number
        first, spec["seen"] = spec["seen"] + 1, head
        if spec["kind"] == "blocks":
            return [_hd(self._blocks[n].hash) for n in range(first, head + 1)]
        lo, hi = self._log_range(spec["crit"])
        return self._matching_logs(spec["crit"], max(lo, first), hi)

    def _eth_get_filter_logs(self, params: list[Any]) -> list[Any]:
        spec = self._filter(params)
        if spec["kind"] != "logs":
            raise RpcError(-32000, "filter not found")
        lo, hi = self._log_range(spec["crit"])
        return self._matching_logs(spec["crit"], lo, hi)

    def _eth_uninstall_filter(self, params: list[Any]) -> bool:
        return self._filters.pop(str(_param(params, 0)), None) is not None

    def set_automine(self, on: bool) -> None:
        """anvil's `evm_setAutomine`: off, nothing is mined until `evm_mine` (or turning it back
        on, which mines what is pending)."""
        self.automine = bool(on)
        if self.automine and self.block_time is None:
            self._build_pending()
        elif not self.automine:
            while not self._pool.claim_builder():  # let a block being built finish: none follows it
                time.sleep(0.001)
            self._pool.stop_builder()

    def _evm_set_automine(self, params: list[Any]) -> bool:
        self.set_automine(_parse_bool(_param(params, 0), "automine"))
        return True

    # ---- anvil's controls -------------------------------------------------------------------

    def now(self) -> int:
        """The chain's clock: the wall clock plus what `evm_increaseTime` added."""
        return _now() + self._time_offset

    def increase_time(self, seconds: int) -> int:
        """Move the chain's clock forward (the next block is that much later); the total offset."""
        with self._lock:
            if seconds < 0:
                raise ValueError("time only moves forward: use a snapshot to go back")
            self._time_offset += int(seconds)
            return self._time_offset

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """The next block gets exactly `timestamp`; later blocks continue from there."""
        with self._lock:
            head = int(self._head().timestamp)
            if timestamp < head:
                raise ValueError(f"timestamp {timestamp} is before the latest block's ({head})")
            self._next_timestamp = int(timestamp)

    def impersonate(self, address: str) -> None:
        """Accept unsigned `eth_sendTransaction` from `address` (as anvil_impersonateAccount)."""
        with self._lock:
            self._impersonated.add(to_canonical_address(address))

    def stop_impersonating(self, address: str) -> None:
        """Undo `impersonate` (an unlocked account's key stays known)."""
        with self._lock:
            self._impersonated.discard(to_canonical_address(address))

    def unlock(self, private_key: str | bytes) -> str:
        """Sign `eth_sendTransaction` from this key's account (anvil's dev accounts); its address."""
        raw = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else private_key
        key = keys.PrivateKey(raw)
        address = key.public_key.to_canonical_address()
        with self._lock:
            self._signers[address] = key
            self._impersonated.add(address)
        return to_checksum_address(address)

    def snapshot(self) -> int:
        """Remember the whole chain; `revert(id)` comes back to it."""
        with self._lock:
            snap_id = self._next_snapshot
            self._next_snapshot += 1
            self._snapshots[snap_id] = self._capture()
            return snap_id

    def revert(self, snap_id: int) -> bool:
        """Return to snapshot `snap_id`, dropping it and every later one (as anvil); False when
        there is no such snapshot."""
        with self._lock:
            image = self._snapshots.get(snap_id)
            if image is None:
                return False
            self._restore(image)
            for later in [i for i in self._snapshots if i >= snap_id]:
                del self._snapshots[later]
            return True

    def mark_base(self) -> None:
        """Make the current state the one `reset()` returns to (the node calls it once deployed)."""
        with self._lock:
            self._base = self._capture()

    def reset(self) -> None:
        """Back to the base state (genesis, or what `mark_base` saved): blocks, time, snapshots
        and impersonations are forgotten."""
        with self._lock:
            self._restore(self._base)
            self._time_offset = 0
            self._next_timestamp = None
            self._snapshots.clear()
            self._impersonated = set(self._signers)

    def export_state(self) -> dict[str, Any]:
        """The whole chain as a JSON-ready document (`from_state`/`load_state` read it back)."""
        with self._lock:
            if len(self._pool):
                raise RuntimeError(f"{self.name} has pending transactions: mine them before exporting")
            return self._capture().to_json()

    def load_state(self, doc: Any) -> None:
        """Replace this chain's blocks, state and clock by `export_state()`'s document; the base
        state (`reset`) becomes the loaded one. `ChainImageError` when it does not fit this chain."""
        image = ChainImage.from_json(doc)
        with self._lock:
            self._restore(image)
            self._snapshots.clear()
            self._base = image

    @classmethod
    def from_state(cls, doc: Any, chain_id: int, **kwargs: Any) -> DevChain:
        """A chain continued from `export_state()`'s document (a saved devnet, a cached genesis);
        `kwargs` are the constructor's (precompiles must be the same as when it was exported)."""
        chain = cls(chain_id, **kwargs)
        chain.load_state(doc)
        return chain

    def _kv(self) -> dict[bytes, bytes]:
        return cast(dict[bytes, bytes], self._chain.chaindb.db.wrapped_db.kv_store)

    def _capture(self) -> ChainImage:  # holds the lock
        return ChainImage(
            chain_id=self.chain_id, kv=dict(self._kv()), block_hashes=[b.hash for b in self._blocks],
            block_logs=list(self._block_logs), txs=dict(self._txs), receipts=dict(self._receipts),
            pending_header=encode_header(self._chain.header), time_offset=self._time_offset,
            next_timestamp=self._next_timestamp)

    def _restore(self, image: ChainImage) -> None:  # holds the lock
        if image.chain_id != self.chain_id:
            raise ChainImageError(f"the image is of chain {image.chain_id}, not {self.chain_id}")
        if len(self._pool):
            raise RpcError(-32000, f"{self.name} has pending transactions: mine them first (evm_mine)")
        header = decode_header(type(self._chain.header), image.pending_header)
        store = self._kv()
        saved = dict(store)
        store.clear()
        store.update(image.kv)
        try:
            blocks = [self._chain.get_block_by_hash(h) for h in image.block_hashes]
        except Exception as exc:
            store.clear()
            store.update(saved)
            raise ChainImageError(f"the image's blocks are not in its database: {exc}") from None
        self._blocks = blocks
        self._block_numbers = {b.hash: b.number for b in blocks}
        self._block_logs = list(image.block_logs)
        self._txs = dict(image.txs)
        self._receipts = dict(image.receipts)
        self._chain.header = header
        self._time_offset = image.time_offset
        self._next_timestamp = image.next_timestamp
        self._refresh_cached_header()

    def _send_unsigned(self, call: dict[str, Any]) -> PendingTx:
        """An `eth_sendTransaction` from an impersonated or unlocked account, into the pool."""
        sender = _parse_address(call.get("from"), "from")
        if sender not in self._impersonated:
            raise RpcError(-32000, f"no key for {to_checksum_address(sender)}: impersonate it first "
                                   "(anvil_impersonateAccount) or send a signed transaction")

        def opt_qty(key: str, default: int) -> int:
            return _parse_qty(call[key], key) if call.get(key) is not None else default

        to = _parse_address(call["to"], "to") if call.get("to") is not None else CREATE_CONTRACT_ADDRESS
        data = _parse_data(call.get("input") or call.get("data") or "0x", "data")
        gas = opt_qty("gas", 0)
        if not gas:  # through `_locked`: an estimate may defer precompile work (an inference)
            estimate = {k: v for k, v in call.items() if k not in ("gas", "nonce")}
            gas = _parse_qty(self._locked(self._eth_estimate_gas, [estimate, "pending"]), "gas")
        with self._lock:
            nonce = self._pool.pending_nonce(sender)
            nonce = opt_qty("nonce", nonce if nonce is not None else self._state_nonce(sender))
            base_fee = self._pending_base_fee()
            fee_cap = opt_qty("maxFeePerGas", opt_qty("gasPrice", 2 * base_fee + DEFAULT_PRIORITY_FEE))
            tip = min(opt_qty("maxPriorityFeePerGas", DEFAULT_PRIORITY_FEE), fee_cap)
        builder = self._tx_decoder
        unsigned = builder.new_unsigned_dynamic_fee_transaction(
            chain_id=self.chain_id, nonce=nonce, max_priority_fee_per_gas=tip, max_fee_per_gas=fee_cap,
            gas=gas, to=to, value=opt_qty("value", 0), data=data, access_list=[])
        key = self._signers.get(sender)
        if key is not None:
            return self._accept(unsigned.as_signed_transaction(key, chain_id=self.chain_id).encode())
        # The block needs a signed transaction: sign with a key no one holds, and let the pool and the
        # VM see the impersonated sender instead of the one the signature recovers.
        stand_in = keys.PrivateKey(keccak(b"opengradient-devnet-impersonation" + sender))
        tx = SpoofTransaction(unsigned.as_signed_transaction(stand_in, chain_id=self.chain_id), sender=sender)
        return self._queue(tx, sender)

    def _eth_send_transaction(self, params: list[Any]) -> str:
        entry = self._send_unsigned(_to_dict(_param(params, 0), "transaction"))
        return self._await_send(entry)

    def _anvil_methods(self) -> dict[str, Callable[[list[Any]], Any]]:
        def qty(params: list[Any], what: str) -> int:
            value = _param(params, 0)
            return value if isinstance(value, int) and not isinstance(value, bool) else _parse_qty(value, what)

        def checked(fn: Callable[[], Any]) -> Any:
            try:
                return fn()
            except ValueError as exc:
                raise RpcError(-32602, str(exc)) from None

        def set_balance(p: list[Any]) -> None:
            self.set_balance(to_checksum_address(_parse_address(_param(p, 0), "address")),
                             _parse_qty(_param(p, 1), "balance"))

        def set_nonce(p: list[Any]) -> None:
            addr = _parse_address(_param(p, 0), "address")
            nonce = _parse_qty(_param(p, 1), "nonce")
            self._edit_state(lambda state: state.set_nonce(addr, nonce))

        def set_code(p: list[Any]) -> None:
            self.set_code(to_checksum_address(_parse_address(_param(p, 0), "address")),
                          _parse_data(_param(p, 1), "code"))

        def set_storage(p: list[Any]) -> bool:
            addr = to_checksum_address(_parse_address(_param(p, 0), "address"))
            slot = int.from_bytes(_parse_data(_param(p, 1), "slot"), "big")
            self.set_storage(addr, slot, int.from_bytes(_parse_data(_param(p, 2), "value"), "big"))
            return True

        def mine_blocks(p: list[Any]) -> None:
            count = _parse_qty(_param(p, 0, "0x1"), "blocks")
            interval = _parse_qty(_param(p, 1, "0x1"), "interval")
            for i in range(count):
                if i:
                    self.increase_time(interval)
                self._build_block(force=True)

        return {
            "eth_sendTransaction": self._eth_send_transaction,  # handled outside the lock
            "evm_snapshot": lambda p: _hq(self.snapshot()),
            "evm_revert": lambda p: self.revert(qty(p, "snapshot id")),
            "evm_increaseTime": lambda p: _hq(checked(lambda: self.increase_time(qty(p, "seconds")))),
            "evm_setNextBlockTimestamp": lambda p: checked(
                lambda: self.set_next_block_timestamp(qty(p, "timestamp"))),
            "anvil_setBalance": set_balance,
            "hardhat_setBalance": set_balance,
            "anvil_setNonce": set_nonce,
            "anvil_setCode": set_code,
            "anvil_setStorageAt": set_storage,
            "anvil_impersonateAccount": lambda p: self.impersonate(
                to_checksum_address(_parse_address(_param(p, 0), "address"))),
            "anvil_stopImpersonatingAccount": lambda p: self.stop_impersonating(
                to_checksum_address(_parse_address(_param(p, 0), "address"))),
            "anvil_reset": lambda p: self.reset(),
            "anvil_mine": mine_blocks,
            "hardhat_mine": mine_blocks,
        }

    def _evm_mine(self, params: list[Any]) -> str:
        """Mine one block now, with the pending transactions (empty when none); a timestamp (or
        anvil's ``{"timestamp": …, "blocks": …}``) fixes the block's time first."""
        raw = _param(params, 0)
        blocks = 1
        if isinstance(raw, dict):
            blocks = _parse_qty(raw.get("blocks", 1), "blocks")
            raw = raw.get("timestamp")
        if raw is not None:
            ts = raw if isinstance(raw, int) and not isinstance(raw, bool) else _parse_qty(raw, "timestamp")
            try:
                self.set_next_block_timestamp(ts)
            except ValueError as exc:
                raise RpcError(-32602, str(exc)) from None
        for _ in range(max(blocks, 1)):
            self._build_block(force=True)
        return "0x0"


def _validation_message(message: str) -> str:
    """py-evm's validation wording, nudged toward geth's where clients match on it."""
    lowered = message.lower()
    if lowered.startswith(("insufficient funds", "intrinsic gas too low", "gas required exceeds")):
        return message
    if "enough balance" in lowered or "cannot afford" in lowered or "insufficient funds" in lowered:
        return f"insufficient funds for gas * price + value: {message}"
    if "intrinsic gas" in lowered:
        return f"intrinsic gas too low: {message}"
    return message


def _copy_json(value: Any) -> Any:
    """Copy a JSON-shaped value (dicts, lists, scalars) faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _error_response(req_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": error.to_json()}
