"""The devnet chain's transaction pool: accepted in order at once, mined in batches.

A transaction is checked when it arrives (decoding, signature, chain id, nonce against the
sender's pending nonce, gas against the block limit, fee against the base fee) and queued under
its hash. The block builder takes everything queued (up to the block gas limit) into one block,
so many concurrent transactions cost one block, not one each. Balance is checked when the block is
built: a transaction that cannot pay is dropped then, with the reason.

Nonces must follow the sender's pending nonce without gaps (a transaction with a later nonce is
refused, not held back: a devnet client has no reason to send out of order).

The pool keeps no chain state: it is bookkeeping under its own lock, so accepting a transaction
never waits for a block being built.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Mempool", "PendingTx", "PoolRefusal"]


class PoolRefusal(Exception):  # noqa: N818 (a refusal with geth's wording, raised to the caller)
    """A transaction the pool does not accept (geth's wording: "nonce too low", "already known")."""


@dataclass(eq=False)
class PendingTx:
    """One accepted transaction, until it is mined or dropped."""

    hash: bytes
    tx: Any
    sender: bytes
    nonce: int
    gas: int
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None  # why it was dropped at block building (None once mined)
    #: Results of deferred precompile work for this transaction (see `PrecompileDeferred`).
    prepared: dict[Hashable, Any] = field(default_factory=dict)


class Mempool:
    """Pending transactions in arrival order (which is nonce order per sender)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[PendingTx] = deque()
        self._by_hash: dict[bytes, PendingTx] = {}
        self._next_nonce: dict[bytes, int] = {}
        self.building = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def add(self, entry: PendingTx, state_nonce: Callable[[bytes], int]) -> None:
        """Queue `entry`, or raise `PoolRefusal`; `state_nonce(sender)` reads the chain (once per
        sender with nothing pending)."""
        with self._cond:
            if entry.hash in self._by_hash:
                raise PoolRefusal("already known")
            expected = self._next_nonce.get(entry.sender)
        if expected is None:
            expected = state_nonce(entry.sender)
        with self._cond:
            expected = self._next_nonce.get(entry.sender, expected)
            if entry.nonce < expected:
                raise PoolRefusal(f"nonce too low: next nonce {expected}, tx nonce {entry.nonce}")
            if entry.nonce > expected:
                raise PoolRefusal(f"nonce too high: next nonce {expected}, tx nonce {entry.nonce} "
                                  "(the devnet's pool takes each sender's transactions in nonce order)")
            self._next_nonce[entry.sender] = expected + 1
            self._queue.append(entry)
            self._by_hash[entry.hash] = entry
            self._cond.notify_all()

    def get(self, tx_hash: bytes) -> PendingTx | None:
        """A transaction still pending."""
        with self._cond:
            return self._by_hash.get(tx_hash)

    def pending_nonce(self, sender: bytes) -> int | None:
        """The nonce the sender's next transaction must have, when it has some pending."""
        with self._cond:
            return self._next_nonce.get(sender)

    def take(self, gas_limit: int) -> list[PendingTx]:
        """The oldest transactions whose gas fits in one block (at least one, if any is queued)."""
        with self._cond:
            batch: list[PendingTx] = []
            gas = 0
            while self._queue and (not batch or gas + self._queue[0].gas <= gas_limit):
                entry = self._queue.popleft()
                gas += entry.gas
                batch.append(entry)
            return batch

    def put_back(self, entries: list[PendingTx]) -> None:
        """Return transactions not built into this block to the front of the queue, in order."""
        with self._cond:
            self._queue.extendleft(reversed(entries))

    def finish(self, entries: list[PendingTx]) -> None:
        """These were mined or dropped: forget them, wake who waits, and re-read the nonces of
        senders that have nothing left pending (a dropped transaction leaves no gap behind)."""
        with self._cond:
            for entry in entries:
                self._by_hash.pop(entry.hash, None)
                entry.done.set()
            still = {e.sender for e in self._queue}
            dropped = {e.sender for e in entries if e.error is not None}
            for sender in [s for s in self._next_nonce if s not in still or s in dropped]:
                del self._next_nonce[sender]
            if dropped:  # later transactions of a dropped sender can no longer follow it
                for entry in [e for e in self._queue if e.sender in dropped]:
                    self._queue.remove(entry)
                    self._by_hash.pop(entry.hash, None)
                    entry.error = "dropped: an earlier transaction of the same sender was dropped"
                    entry.done.set()
            self._cond.notify_all()

    def claim_builder(self) -> bool:
        """Become the block builder unless one is at work (it will take what is queued now)."""
        with self._cond:
            if self.building:
                return False
            self.building = True
            return True

    def release_builder(self) -> bool:
        """Stop building; True when something was queued meanwhile (the caller builds again)."""
        with self._cond:
            if self._queue:
                return True
            self.building = False
            self._cond.notify_all()
            return False

    def stop_builder(self) -> None:
        """Stop building whatever is queued (mining was paused)."""
        with self._cond:
            self.building = False
            self._cond.notify_all()

    def wait(self, entry: PendingTx, timeout: float) -> bool:
        """Wait until `entry` is mined or dropped."""
        return entry.done.wait(timeout)

    def wait_for_work(self, timeout: float) -> bool:
        """Wait until something is queued and nobody is building it (True), or `timeout` passes."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._queue) and not self.building, timeout)
