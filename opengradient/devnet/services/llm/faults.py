"""Failures the devnet's gateway produces on purpose, so that clients' retries and timeouts can be
tested against the real flow (payments, signatures) rather than a mock.

A fault strikes a request after its payment was verified, where an upstream model fails or is slow:

- `gateway.faults.fail(count, status=503)` — the next `count` requests get that status (503: the
  upstream is unavailable; 429: it is rate limited, with `Retry-After` when given). Nothing is
  charged: the payment is neither settled nor used up, so the same authorization may be sent again.
- `release = gateway.faults.stall(count)` — the next `count` requests wait, before the model
  answers, until `release.set()` (or two minutes). A client whose timeout is shorter gives up.

Faults are taken in order, one per request, by whichever requests come next.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

__all__ = ["Failure", "Faults"]


@dataclass(frozen=True)
class Failure:
    """One injected failure: the status to answer and its `Retry-After` (seconds), if any."""

    status: int
    retry_after: float | None = None


class Faults:
    """The gateway's queue of injected failures and stalls (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: deque[Failure] = deque()
        self._stalls: deque[threading.Event] = deque()
        #: How many failures and stalls have struck so far.
        self.struck = 0

    def fail(self, count: int = 1, *, status: int = 503, retry_after: float | None = None) -> None:
        """Make the next `count` requests fail with `status` (429 or a 5xx)."""
        if status != 429 and not 500 <= status <= 599:
            raise ValueError(f"a fault's status is 429 or 5xx, not {status}")
        with self._lock:
            self._failures.extend([Failure(status, retry_after)] * count)

    def stall(self, count: int = 1) -> threading.Event:
        """Make the next `count` requests wait until the returned event is set."""
        release = threading.Event()
        with self._lock:
            self._stalls.extend([release] * count)
        return release

    def clear(self) -> None:
        """Drop the faults that have not struck (stalled requests go on)."""
        with self._lock:
            stalls = list(self._stalls)
            self._failures.clear()
            self._stalls.clear()
        for release in stalls:
            release.set()

    def next_stall(self) -> threading.Event | None:
        """The stall for the request being served, if one is queued."""
        with self._lock:
            if not self._stalls:
                return None
            self.struck += 1
            return self._stalls.popleft()

    def next_failure(self) -> Failure | None:
        """The failure for the request being served, if one is queued."""
        with self._lock:
            if not self._failures:
                return None
            self.struck += 1
            return self._failures.popleft()
