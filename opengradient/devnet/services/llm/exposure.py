"""What the gateway may still take from each payer, so it never serves more than can be paid.

Invariant: for every payer, at the moment a payment is accepted, the sum of

- the caps of its open upto sessions (each may settle up to its cap), and
- the amounts of its payments verified but not yet settled

never exceeds its token balance on chain, and the upto part never exceeds its Permit2 allowance.
A payment *reserves* its amount (an upto permit: its cap) when it is verified, before the model
runs, under a per-payer lock — so concurrent requests see each other's reservations — and the
reservation is released when the payment has settled or failed (an upto session: once it has
settled). x402's own verification checks each payment alone; this book checks them together.

Balance and allowance are read from the chain only when the payer already holds a reservation
(a payment alone was just checked by x402's verification against the same state).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from eth_utils import keccak
from x402.mechanisms.evm.constants import ERR_PERMIT2_ALLOWANCE_REQUIRED

__all__ = ["ERR_INSUFFICIENT_FUNDS", "ExposureBook", "Reservation"]

#: x402's code for a payer whose balance does not cover the payment.
ERR_INSUFFICIENT_FUNDS = "insufficient_funds"
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
    """Reservations by payer. `read_coverage(payer)` answers (balance, Permit2 allowance) on chain."""

    def __init__(self, read_coverage: Callable[[str], tuple[int, int]]) -> None:
        self._read = read_coverage
        self._lock = threading.Lock()
        self._payer_locks = [threading.Lock() for _ in range(_STRIPES)]
        self._open: dict[str, list[Reservation]] = {}

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

    def reserve(self, payer: str, amount: int, *, permit2: bool) -> tuple[Reservation | None, str | None]:
        """Reserve `amount` for `payer`: (reservation, None), or (None, the x402 code of the refusal)."""
        key = payer.lower()
        with self._payer_lock(key):
            before = self.exposure(key)
            if before.total:
                balance, allowance = self._read(payer)
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
