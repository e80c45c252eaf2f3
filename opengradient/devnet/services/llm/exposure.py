"""What the gateway may still take from each payer, so it never serves more than can be paid.

Invariant: for every payer, at the moment a payment is accepted, the sum of

- the caps of its open upto sessions (each may settle up to its cap), and
- the amounts of its payments verified but not yet settled

never exceeds its token balance on chain, and the upto part never exceeds its Permit2 allowance.
A payment *reserves* its amount (an upto permit: its cap) when it is verified, before the model
runs, under a per-payer lock — so concurrent requests see each other's reservations — and the
reservation is released when the payment has settled or failed (an upto session: once it has
settled). x402's own verification checks each payment alone; this book checks them together.

Balance and allowance are read from the chain when the payer already holds a reservation or the
payment was not simulated (`checked=False`); reads are cached per payer for the chain state they
were made at (the head block's hash), so a burst of requests reads each payer once per block.

A payer whose settlement failed on chain after it was served (the gateway settles without
waiting for the block) is *barred*: every later payment of it is refused, so nobody is served
twice for free.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from eth_utils import keccak
from x402.mechanisms.evm.constants import ERR_INSUFFICIENT_BALANCE, ERR_PERMIT2_ALLOWANCE_REQUIRED

__all__ = ["ERR_INSUFFICIENT_FUNDS", "ERR_UNPAID_SETTLEMENT", "ExposureBook", "Reservation"]

#: x402's code for a payer whose balance does not cover the payment.
ERR_INSUFFICIENT_FUNDS = "insufficient_funds"
#: The payer was served, and its settlement then failed on chain: it is served no more.
ERR_UNPAID_SETTLEMENT = "unpaid_settlement"
_STRIPES = 64


@dataclass(eq=False)
class Reservation:
    """An amount the gateway may still take from `payer` (`permit2`: through an upto permit)."""

    payer: str
    amount: int
    permit2: bool
    released: bool = False


@dataclass(frozen=True)
class Exposure:
    """A payer's open reservations: in all, and those through Permit2."""

    total: int
    permit2: int


class ExposureBook:
    """Reservations by payer. `read_coverage(payer)` answers (balance, Permit2 allowance) on chain;
    `state_id()` names the chain state such a read sees (equal ids, equal answers)."""

    def __init__(self, read_coverage: Callable[[str], tuple[int, int]], state_id: Callable[[], bytes]) -> None:
        self._read_chain = read_coverage
        self._state_id = state_id
        self._lock = threading.Lock()
        self._payer_locks = [threading.Lock() for _ in range(_STRIPES)]
        self._open: dict[str, list[Reservation]] = {}
        self._cached: dict[str, tuple[bytes, int, int]] = {}
        self._barred: dict[str, str] = {}

    def _read(self, payer: str) -> tuple[int, int]:
        """(balance, allowance) at the current chain state, from the cache when it was read there."""
        key = payer.lower()
        before = self._state_id()
        hit = self._cached.get(key)
        if hit is not None and hit[0] == before:
            return hit[1], hit[2]
        balance, allowance = self._read_chain(payer)
        if self._state_id() == before:  # no block in between: the answer belongs to `before`
            self._cached[key] = (before, balance, allowance)
        return balance, allowance

    def bar(self, payer: str, why: str) -> None:
        """`payer` was served and did not pay (`why` names the failed settlement): refuse it from now on."""
        with self._lock:
            self._barred.setdefault(payer.lower(), why)

    def barred(self, payer: str) -> str | None:
        """Why `payer` is refused, if it is."""
        with self._lock:
            return self._barred.get(payer.lower())

    def _payer_lock(self, payer: str) -> threading.Lock:
        return self._payer_locks[keccak(text=payer)[0] % _STRIPES]

    def exposure(self, payer: str) -> Exposure:
        """What `payer`'s open reservations add up to."""
        with self._lock:
            held = list(self._open.get(payer.lower(), ()))
        return Exposure(sum(r.amount for r in held), sum(r.amount for r in held if r.permit2))

    def pending(self, payer: str) -> bool:
        """Whether `payer` holds any reservation (a new one then reads the chain)."""
        with self._lock:
            return bool(self._open.get(payer.lower()))

    def reserve(self, payer: str, amount: int, *, permit2: bool,
                checked: bool = True) -> tuple[Reservation | None, str | None]:
        """Reserve `amount` for `payer`: (reservation, None), or (None, the x402 code of the refusal).

        `checked`: the payment alone was just simulated against the chain (so a first reservation
        needs no read of its own)."""
        key = payer.lower()
        with self._payer_lock(key):
            if self.barred(key) is not None:
                return None, ERR_UNPAID_SETTLEMENT
            before = self.exposure(key)
            if before.total or not checked:
                balance, allowance = self._read(payer)
                if amount > balance and not checked:  # alone: what x402's simulation would have said
                    return None, ERR_INSUFFICIENT_BALANCE
                if before.total + amount > balance:
                    return None, ERR_INSUFFICIENT_FUNDS
                if permit2 and before.permit2 + amount > allowance:
                    return None, ERR_PERMIT2_ALLOWANCE_REQUIRED
            reservation = Reservation(key, amount, permit2)
            with self._lock:
                self._open.setdefault(key, []).append(reservation)
            return reservation, None

    def release(self, reservation: Reservation | None) -> None:
        """The reserved payment settled or failed: it no longer counts (idempotent)."""
        if reservation is None:
            return
        with self._lock:
            if reservation.released:
                return
            reservation.released = True
            held = self._open.get(reservation.payer, [])
            held[:] = [r for r in held if r is not reservation]
            if not held:
                self._open.pop(reservation.payer, None)

    def covered(self, payer: str) -> tuple[bool, int, int]:
        """Whether the chain still covers `payer`'s reservations: (covered, balance, allowance)."""
        balance, allowance = self._read(payer)
        held = self.exposure(payer)
        return held.total <= balance and held.permit2 <= allowance, balance, allowance
