"""Records paid LLM requests on `OGSettlement`, off the request path.

A background thread owns the operator's transactions: the gateway enqueues one record per paid
response and answers at once. Modes (from `X-SETTLEMENT-TYPE`):

- private (`settle`): `recordSettlement(paymentTx, requestHash, outputHash, payer, amount)`;
- individual (`settle-metadata`): `recordSettlementWithMetadata(…, model, input, output)`;
- batch (`settle-batch`): leaves `keccak256(requestHash ‖ outputHash)` accumulate and
  `recordBatch(merkleRoot, count)` is sent when `BATCH_SIZE` are pending, or on `flush()`.

`record_and_wait` queues a record and waits for its transaction, for an answer that reports it
(`x-settlement-tx-hash` of an `individual` request); a batch leaf has no transaction of its own
until its batch is recorded.

The Merkle tree hashes sorted pairs (`keccak256(min ‖ max)`), and an odd node is carried up
unchanged; `merkle_proof` gives the sibling path a client checks a leaf with.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eth_abi import encode as abi_encode
from eth_utils import keccak

from opengradient.devnet.services.llm.facilitator import TxSender
from opengradient.devnet.services.llm.payments import SettlementMode

if TYPE_CHECKING:
    from opengradient.devnet.chain.evm import DevChain

__all__ = ["BATCH_SIZE", "Batch", "SettlementRecord", "SettlementRecorder", "merkle_leaf",
           "merkle_proof", "merkle_root", "verify_merkle_proof"]

log = logging.getLogger("opengradient.devnet.gateway")

BATCH_SIZE = 16
#: Gas limit of a hash record or a batch (each uses well under 100k).
_FIXED_GAS = 200_000

_RECORD = "recordSettlement(bytes32,bytes32,bytes32,address,uint256)"
_RECORD_META = "recordSettlementWithMetadata(bytes32,bytes32,bytes32,address,uint256,string,string,string)"
_RECORD_BATCH = "recordBatch(bytes32,uint256)"


def _selector(signature: str) -> bytes:
    return bytes(keccak(text=signature))[:4]


def merkle_leaf(request_hash: bytes, output_hash: bytes) -> bytes:
    """A batch leaf: keccak256(requestHash ‖ outputHash)."""
    return bytes(keccak(request_hash + output_hash))


def _pair(a: bytes, b: bytes) -> bytes:
    return bytes(keccak(min(a, b) + max(a, b)))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the sorted-pair keccak tree (an odd node is carried up unchanged)."""
    if not leaves:
        raise ValueError("a batch needs at least one leaf")
    level = list(leaves)
    while len(level) > 1:
        level = [_pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes from leaf `index` up to the root."""
    proof: list[bytes] = []
    level = list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        level = [_pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
        index //= 2
    return proof


def verify_merkle_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True when `proof` links `leaf` to `root` (OpenZeppelin's sorted-pair rule)."""
    node = leaf
    for sibling in proof:
        node = _pair(node, sibling)
    return node == root


@dataclass(frozen=True)
class SettlementRecord:
    """One paid response, as the gateway hands it to the recorder."""

    mode: str
    payment_tx: str
    request_hash: bytes
    output_hash: bytes
    payer: str
    amount: int
    model: str = ""
    input: str = ""
    output: str = ""


@dataclass
class Batch:
    """A recorded Merkle batch: its leaves (in order), root and transaction."""

    root: bytes
    leaves: list[bytes]
    tx_hash: str
    records: list[SettlementRecord] = field(default_factory=list)


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


class _Awaited:
    """A record whose sender waits for its transaction."""

    def __init__(self, record: SettlementRecord) -> None:
        self.record = record
        self.done = threading.Event()
        self.tx: str | None = None


class SettlementRecorder:
    """Background worker sending the operator's `OGSettlement` transactions."""

    def __init__(self, chain: DevChain, operator_key: str, settlement_address: str, *,
                 batch_size: int = BATCH_SIZE) -> None:
        self.address = settlement_address
        self.batch_size = batch_size
        self._sender = TxSender(chain, operator_key)
        self._queue: queue.Queue[SettlementRecord | _Awaited | _Flush | None] = queue.Queue()
        self._pending: list[SettlementRecord] = []
        self._idle = threading.Condition()
        self._outstanding = 0
        self.batches: list[Batch] = []
        self.transactions: list[tuple[str, str]] = []  # (mode, tx hash), in order sent
        self.failures = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="og-devnet-settlement", daemon=True)
        self._thread.start()

    @property
    def operator(self) -> str:
        """The account that records settlements."""
        return self._sender.address

    @property
    def pending_batch(self) -> int:
        """Leaves waiting for the next batch."""
        return len(self._pending)

    def record(self, record: SettlementRecord) -> None:
        """Queue one record; returns at once."""
        if self._closed:
            raise RuntimeError("the settlement recorder is closed")
        with self._idle:
            self._outstanding += 1
        self._queue.put(record)

    def record_and_wait(self, record: SettlementRecord, timeout: float = 30.0) -> str | None:
        """Queue one record and wait until it is on chain; its transaction hash (None for a batch
        leaf, which waits for its batch, or when recording failed or took longer than `timeout`)."""
        if self._closed:
            raise RuntimeError("the settlement recorder is closed")
        awaited = _Awaited(record)
        with self._idle:
            self._outstanding += 1
        self._queue.put(awaited)
        awaited.done.wait(timeout)
        return awaited.tx

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every queued record has been processed (a partial batch stays pending)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def flush(self, timeout: float = 30.0) -> None:
        """Record everything queued, including a partial batch, and wait until it is on chain."""
        if not self._thread.is_alive():
            return
        marker = _Flush()
        with self._idle:
            self._outstanding += 1
        self._queue.put(marker)
        if not marker.done.wait(timeout):
            raise TimeoutError(f"settlement recording did not finish within {timeout} s")

    def close(self) -> None:
        """Flush and stop the worker."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=10)

    # ---- worker --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if isinstance(item, _Flush):
                    self._send_batch()
                elif isinstance(item, _Awaited):
                    item.tx = self._handle(item.record)
                else:
                    self._handle(item)
            except Exception:
                self.failures += 1
                log.exception("recording a settlement failed")
            finally:
                if isinstance(item, (_Flush, _Awaited)):
                    item.done.set()
                with self._idle:
                    self._outstanding -= 1
                    self._idle.notify_all()

    def _transact(self, mode: str, data: bytes, *, estimate: bool = False) -> str:
        # Hash records and batches have a known, small cost; only metadata (strings of any
        # length) is estimated, sparing the chain a second execution per record.
        gas = self._sender.estimate_gas(self.address, data) if estimate else _FIXED_GAS
        tx_hash = self._sender.send(self.address, data, gas=gas)
        receipt = self._sender.receipt(tx_hash)
        if int(receipt["status"], 16) != 1:
            raise RuntimeError(f"settlement transaction {tx_hash} reverted")
        self.transactions.append((mode, tx_hash))
        return tx_hash

    def _handle(self, rec: SettlementRecord) -> str | None:
        """Record `rec` (a batch leaf waits for its batch); its own transaction, if it has one."""
        head = [bytes.fromhex(rec.payment_tx.removeprefix("0x")).rjust(32, b"\0"),
                rec.request_hash, rec.output_hash, rec.payer, rec.amount]
        if rec.mode == SettlementMode.BATCH:
            self._pending.append(rec)
            if len(self._pending) >= self.batch_size:
                self._send_batch()
            return None
        if rec.mode == SettlementMode.INDIVIDUAL:
            data = _selector(_RECORD_META) + abi_encode(
                ["bytes32", "bytes32", "bytes32", "address", "uint256", "string", "string", "string"],
                [*head, rec.model, rec.input, rec.output])
            return self._transact(rec.mode, data, estimate=True)
        data = _selector(_RECORD) + abi_encode(
            ["bytes32", "bytes32", "bytes32", "address", "uint256"], head)
        return self._transact(rec.mode, data)

    def _send_batch(self) -> None:
        if not self._pending:
            return
        records, self._pending = self._pending, []
        leaves = [merkle_leaf(r.request_hash, r.output_hash) for r in records]
        root = merkle_root(leaves)
        data = _selector(_RECORD_BATCH) + abi_encode(["bytes32", "uint256"], [root, len(leaves)])
        tx_hash = self._transact(SettlementMode.BATCH, data)
        self.batches.append(Batch(root, leaves, tx_hash, records))
