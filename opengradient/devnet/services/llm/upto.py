"""Upto sessions: one Permit2 signature pays for many requests, settled on chain once.

Upto sessions are OpenGradient's extension of x402's `upto` scheme. A client
pays a request with an `upto` payment — a Permit2 `PermitWitnessTransferFrom` signature for a
*cap* — and the gateway, instead of settling at once, opens a session: the request's price is
charged to it and the response carries `X-Upto-Session: <id>`. Later requests that send that
header (same method and path, no payment) are charged to the session while its remaining cap
covers their price. The gateway settles the session with one `settle` of the cumulative amount
through x402's upto proxy when

- it has been idle for `idle_seconds`,
- what remains of the cap is below `min_price` (the cheapest request there is), or a request's
  price exceeds what remains (that request gets a 402 and pays afresh),
- the permit's deadline is `expiry_margin_seconds` away (a request then gets a 402 too),
- `flush()` or `close()` is called (the devnet shutting down), or the client asks
  (`DELETE /upto/sessions/{id}`).

Invariants: a session is settled at most once (open → closing → settling → settled | failed, each
step under one lock, and only the settler thread settles); the amount settled is the sum of the
prices of the requests it served and never exceeds the cap (a charge that would exceed it is
refused before the model runs); a request whose model fails is not charged; a permit opens one
session however its nonce is spelled (permits are keyed by the nonce's number). A session id is a
bearer credential: whoever holds it spends from the payer's cap, as the payer's own client would.

A session watches its permit: the gateway marks a payer *dirty* when the chain shows it moving
tokens, changing its Permit2 allowance or burning Permit2 nonces (`mark_dirty`); the next request
on the payer's sessions, or the settler thread first, has the gateway re-check the chain
(`recheck`). A session whose permit nonce is used is revoked at once — it serves nothing more —
and sessions whose payer no longer covers them are settled at once, for what they served.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse

from opengradient.devnet.services.llm.settlement import SettlementRecord

__all__ = [
    "SESSION_HEADER",
    "SESSION_CAP_EXHAUSTED",
    "SESSION_ENDED",
    "SESSION_EXPIRED",
    "SESSION_REVOKED",
    "SESSION_ROUTE_MISMATCH",
    "SESSION_UNKNOWN",
    "UptoSession",
    "UptoSessions",
]

log = logging.getLogger("opengradient.devnet.gateway")

SESSION_HEADER = "X-Upto-Session"
#: 402 `error`s of requests that send a session the gateway will not charge (the client pays afresh).
SESSION_UNKNOWN = "upto_session_unknown"  # no such session (never existed, or long forgotten)
SESSION_ENDED = "upto_session_ended"  # settled (or settling) after it went idle or was closed
SESSION_CAP_EXHAUSTED = "upto_session_cap_exhausted"  # the price exceeds what remains of the cap
SESSION_EXPIRED = "upto_session_expired"  # the permit's deadline is too near to serve more
SESSION_ROUTE_MISMATCH = "upto_session_route_mismatch"  # opened for another method or path
SESSION_REVOKED = "upto_session_revoked"  # its permit was used or revoked on chain
REVOKED_BECAUSE = "permit revoked on chain"
_ENDED_BECAUSE = {"cap used up": SESSION_CAP_EXHAUSTED, "cap exhausted": SESSION_CAP_EXHAUSTED,
                  "expiring": SESSION_EXPIRED, REVOKED_BECAUSE: SESSION_REVOKED}

#: Settled sessions kept for `GET /upto/sessions/{id}` (oldest dropped first).
_KEEP_SETTLED = 4096


@dataclass(eq=False)
class UptoSession:
    """One open (or settled) upto session."""

    id: str
    payer: str
    nonce: int  # the permit's Permit2 nonce
    payload: PaymentPayload
    requirements: PaymentRequirements  # the upto offer the payment accepted (amount = the cap)
    cap: int
    method: str
    path: str
    deadline: int  # the permit's deadline (Unix seconds)
    opened_at: float
    last_used: float
    charged: int = 0  # reserved and served; what settles
    requests: int = 0  # requests served
    inflight: int = 0  # requests reserved and not yet served (or refunded)
    state: str = "open"  # open | closing | settling | settled | failed
    closed_because: str | None = None
    transaction: str = ""
    error_reason: str | None = None
    settled_at: float | None = None
    records: list[SettlementRecord] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    #: What the gateway keeps with the session until it ends (its exposure reservation, its hold
    #: on the permit); `on_ended` gives them back.
    reservation: Any = None
    hold: Any = None

    @property
    def remaining(self) -> int:
        """What is left of the cap."""
        return self.cap - self.charged

    @property
    def live(self) -> bool:
        """Open or closing: not yet handed to the settler."""
        return self.state in ("open", "closing")

    def status(self, network: str) -> dict[str, Any]:
        """What `GET /upto/sessions/{id}` answers (amounts as decimal strings)."""
        return {
            "session": self.id, "status": self.state, "payer": self.payer, "network": network,
            "cap": str(self.cap), "amount": str(self.charged), "remaining": str(self.remaining),
            "requests": self.requests, "deadline": self.deadline,
            "transaction": self.transaction or None, "closedBecause": self.closed_because,
            "errorReason": self.error_reason,
        }


class UptoSessions:
    """The gateway's sessions and the background thread that settles them.

    `settle(session, amount)` sends the one settlement (x402's upto facilitator); `record` hands a
    request's `OGSettlement` record on once its payment transaction is known.
    """

    def __init__(self, settle: Callable[[UptoSession, int], SettleResponse],
                 record: Callable[[SettlementRecord], None], *, idle_seconds: float = 30.0,
                 expiry_margin_seconds: float = 60.0, min_price: int = 1,
                 on_ended: Callable[[UptoSession], None] | None = None,
                 recheck: Callable[[str], None] | None = None) -> None:
        self._settle_fn = settle
        self._record_fn = record
        self._on_ended = on_ended
        self._recheck = recheck
        self._dirty: dict[str, int] = {}  # payer → generation of the latest change seen
        self.min_price = min_price
        self.idle_seconds = idle_seconds
        self.expiry_margin_seconds = expiry_margin_seconds
        self._cond = threading.Condition()
        self._live: dict[str, UptoSession] = {}
        self._ended: OrderedDict[str, UptoSession] = OrderedDict()
        self._permits: dict[tuple[str, int], int] = {}  # (payer, nonce) → deadline: opened once only
        self._stopping = False
        #: Settlement transactions sent, in order (session id, tx hash), for tests and benchmarks.
        self.settlements: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self._run, name="og-devnet-upto", daemon=True)
        self._thread.start()

    # ---- the request path ------------------------------------------------------------------------

    def used(self, payer: str, nonce: int) -> bool:
        """True when this permit already opened a session (it backs at most one)."""
        with self._cond:
            return (payer.lower(), nonce) in self._permits

    def live_of(self, payer: str) -> list[UptoSession]:
        """`payer`'s sessions not yet handed to the settler."""
        with self._cond:
            return [s for s in self._live.values() if s.payer.lower() == payer.lower() and s.live]

    # ---- watching the chain ----------------------------------------------------------------------

    def mark_dirty(self, payers: set[str]) -> None:
        """The chain moved these payers' tokens, allowance or nonces: re-check their sessions."""
        with self._cond:
            watched = {s.payer.lower() for s in self._live.values()} & {p.lower() for p in payers}
            for payer in watched:
                self._dirty[payer] = self._dirty.get(payer, 0) + 1
            if watched:
                self._cond.notify_all()

    def dirty(self, payer: str) -> int | None:
        """The generation of `payer`'s latest unchecked change, or None when it needs no re-check."""
        with self._cond:
            return self._dirty.get(payer.lower())

    def checked(self, payer: str, generation: int) -> None:
        """`payer` was re-checked after change `generation` (a later change keeps it dirty)."""
        with self._cond:
            if self._dirty.get(payer.lower()) == generation:
                del self._dirty[payer.lower()]

    def revoke(self, session: UptoSession, reason: str) -> None:
        """End a session whose permit can no longer settle: it serves nothing more, settles nothing."""
        with self._cond:
            if not session.live:
                return
            session.state, session.closed_because, session.error_reason = "failed", REVOKED_BECAUSE, reason
            session.settled_at = time.time()
            self._live.pop(session.id, None)
            self._ended[session.id] = session
            session.records = []  # nothing will name a payment transaction
        session.done.set()
        log.warning("upto session %s revoked (%s) after %d requests: %d charged will not be paid",
                    session.id[:12], reason, session.requests, session.charged)
        self._ended_hook(session)

    def close_payer(self, payer: str, because: str) -> None:
        """Settle every live session of `payer` now (its coverage shrank)."""
        with self._cond:
            for session in self._live.values():
                if session.payer.lower() == payer.lower():
                    self._close(session, because)

    def _ended_hook(self, session: UptoSession) -> None:
        if self._on_ended is not None:
            try:
                self._on_ended(session)
            except Exception:
                log.exception("the end-of-session hook failed for %s", session.id[:12])

    def open(self, *, payer: str, nonce: int, payload: PaymentPayload, requirements: PaymentRequirements,
             price: int, method: str, path: str, deadline: int, reservation: Any = None,
             hold: Any = None) -> UptoSession:
        """A new session, charged the opening request's `price` (already served)."""
        cap = int(requirements.amount)
        if not 0 <= price <= cap:
            raise ValueError(f"the opening price {price} is not within the cap {cap}")
        now = time.time()
        session = UptoSession(id="ups_" + secrets.token_urlsafe(24), payer=payer, nonce=nonce, payload=payload,
                              requirements=requirements, cap=cap, method=method, path=path,
                              deadline=deadline, opened_at=now, last_used=now, charged=price, requests=1,
                              reservation=reservation, hold=hold)
        with self._cond:
            key = (payer.lower(), nonce)
            if key in self._permits:
                raise ValueError("this permit already opened a session")
            if self._stopping:
                raise RuntimeError("the gateway is shutting down")
            self._permits[key] = deadline
            self._live[session.id] = session
            self._close_if_used_up(session)
            self._cond.notify_all()
        return session

    def reserve(self, session_id: str, price: int, method: str, path: str) -> tuple[UptoSession | None, str | None]:
        """Charge `price` to a session before serving: (session, None), or (None, the 402 error)."""
        now = time.time()
        with self._cond:
            session = self._live.get(session_id) or self._ended.get(session_id)
            if session is None:
                return None, SESSION_UNKNOWN
            if session.state != "open":
                return None, _ENDED_BECAUSE.get(session.closed_because or "", SESSION_ENDED)
            if session.method != method or session.path != path:
                return None, SESSION_ROUTE_MISMATCH
            if now >= session.deadline - self.expiry_margin_seconds:
                self._close(session, "expiring")
                return None, SESSION_EXPIRED
            if price > session.remaining:
                self._close(session, "cap exhausted")
                return None, SESSION_CAP_EXHAUSTED
            session.charged += price
            session.inflight += 1
            session.last_used = now
            return session, None

    def commit(self, session: UptoSession) -> None:
        """The reserved request was served: its price stays charged."""
        with self._cond:
            session.inflight -= 1
            session.requests += 1
            session.last_used = time.time()
            self._close_if_used_up(session)
            if session.state == "closing" and session.inflight == 0:
                self._cond.notify_all()  # the settler waits for this (idle timers need no wake-up)

    def refund(self, session: UptoSession, price: int) -> None:
        """The reserved request was not served (the model failed): give its price back."""
        with self._cond:
            session.inflight -= 1
            session.charged -= price
            session.last_used = time.time()
            self._cond.notify_all()

    def add_record(self, session: UptoSession, record: SettlementRecord) -> None:
        """Keep a served request's record until the session's settlement names its transaction."""
        with self._cond:
            if session.state in ("open", "closing", "settling"):
                session.records.append(record)
                return
            transaction = session.transaction
        if transaction:
            self._record_fn(replace(record, payment_tx=transaction))

    # ---- lookups and closing ---------------------------------------------------------------------

    def get(self, session_id: str) -> UptoSession | None:
        """A live or recently settled session."""
        with self._cond:
            return self._live.get(session_id) or self._ended.get(session_id)

    def close(self, session_id: str, because: str = "closed by the client") -> UptoSession | None:
        """Ask for a session's settlement (it happens once its requests in flight are served)."""
        with self._cond:
            session = self._live.get(session_id)
            if session is not None:
                self._close(session, because)
                return session
            return self._ended.get(session_id)

    def flush(self, timeout: float = 30.0) -> list[UptoSession]:
        """Settle every live session now; returns them once settled (or `timeout` passed)."""
        with self._cond:
            sessions = list(self._live.values())
            for session in sessions:
                self._close(session, "flush")
        deadline = time.monotonic() + timeout
        for session in sessions:
            session.done.wait(max(0.0, deadline - time.monotonic()))
        return sessions

    def shutdown(self, timeout: float = 30.0) -> None:
        """Settle every live session and stop the settler."""
        if not self._thread.is_alive():
            return
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=timeout)

    def _close_if_used_up(self, session: UptoSession) -> None:  # holds the lock
        if session.remaining < self.min_price:
            self._close(session, "cap used up")

    def _close(self, session: UptoSession, because: str) -> None:  # holds the lock
        if session.state == "open":
            session.state = "closing"
            session.closed_because = because
            self._cond.notify_all()

    # ---- the settler -----------------------------------------------------------------------------

    def _due(self, now: float) -> tuple[list[UptoSession], float | None]:  # holds the lock
        """Sessions to settle now (marked settling), and how long until the next may be due."""
        due: list[UptoSession] = []
        wait: float | None = None
        for session in list(self._live.values()):
            if session.state == "open":
                expiring_at = session.deadline - self.expiry_margin_seconds
                if now >= expiring_at:
                    session.state, session.closed_because = "closing", "expiring"
                elif session.inflight == 0 and now - session.last_used >= self.idle_seconds:
                    session.state, session.closed_because = "closing", "idle"
                else:  # a request in flight notifies when it ends; only the expiry is a timer then
                    next_at = (expiring_at if session.inflight else
                               min(session.last_used + self.idle_seconds, expiring_at))
                    wait = next_at - now if wait is None else min(wait, next_at - now)
            if session.state == "closing" and session.inflight == 0:
                session.state = "settling"
                due.append(session)
        return due, wait

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    dirty = dict(self._dirty)
                    if dirty:
                        due: list[UptoSession] = []
                        break
                    due, wait = self._due(time.time())
                    if due:
                        break
                    if self._stopping and not self._live:
                        return
                    self._cond.wait(None if wait is None else max(wait, 0.005))
            for payer, generation in sorted(dirty.items()):
                if self._recheck is not None:
                    try:
                        self._recheck(payer)
                    except Exception:
                        log.exception("re-checking payer %s failed", payer)
                self.checked(payer, generation)
            for session in due:
                self._settle(session)

    def _settle(self, session: UptoSession) -> None:
        amount = session.charged
        if amount > session.cap:  # unreachable: reserve() refuses first; never settle above the cap
            result = SettleResponse(success=False, error_reason="upto_session_over_cap", transaction="",
                                    network=str(session.requirements.network), payer=session.payer)
        elif amount == 0:
            result = SettleResponse(success=True, transaction="", network=str(session.requirements.network),
                                    payer=session.payer, amount="0")
        else:
            try:
                result = self._settle_fn(session, amount)
            except Exception as exc:
                log.exception("settling upto session %s failed", session.id)
                result = SettleResponse(success=False, error_reason="unexpected_settle_error",
                                        error_message=str(exc), transaction="",
                                        network=str(session.requirements.network), payer=session.payer)
        with self._cond:
            session.state = "settled" if result.success else "failed"
            session.transaction = result.transaction or ""
            session.error_reason = None if result.success else (result.error_reason or "settlement_failed")
            session.settled_at = time.time()
            records, session.records = session.records, []
            self._live.pop(session.id, None)
            self._ended[session.id] = session
            while len(self._ended) > _KEEP_SETTLED:
                self._ended.popitem(last=False)
            now = time.time()
            for key in [k for k, deadline in self._permits.items() if deadline < now]:
                del self._permits[key]
            if result.success and result.transaction:
                self.settlements.append((session.id, result.transaction))
        session.done.set()
        if result.success:
            log.info("upto session %s settled: %d requests, amount=%d of cap %d, tx=%s (%s)", session.id[:12],
                     session.requests, amount, session.cap, (result.transaction or "-")[:10],
                     session.closed_because)
            if result.transaction:
                for record in records:
                    try:
                        self._record_fn(replace(record, payment_tx=result.transaction))
                    except RuntimeError:  # the recorder is closed (shutting down)
                        log.warning("settlement record dropped: the recorder is closed")
        else:
            log.warning("upto session %s failed to settle %d: %s %s", session.id[:12], amount,
                        session.error_reason, result.error_message or "")
        self._ended_hook(session)
