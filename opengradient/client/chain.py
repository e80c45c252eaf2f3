"""Chain work written once, run sync or async.

An operation (an inference, a workflow deployment) is a generator that yields *steps* — a
JSON-RPC call, a transaction to send, an HTTP GET, a pause — and receives their results. A
`SyncDriver` and an `AsyncDriver` execute the steps, so every operation has native sync and
async forms without a second copy of its logic.

Transactions from one key are serialised by a per-(node, address) lock held across choosing the
nonce, signing and sending: concurrent calls never reuse or skip a nonce, and a send that fails
resynchronises the nonce from the node.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opengradient.client._http import HttpCore, raise_for_status, read_json, transport_errors
from opengradient.client.rpc import AsyncJsonRpc, JsonRpc
from opengradient.client.wallet import Wallet
from opengradient.errors import (
    ConfigurationError,
    NetworkError,
    PinnedCertificateError,
    RPCError,
    TransactionError,
    UnconfirmedTransactionError,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Rpc:
    """Call a JSON-RPC method; the result is sent back into the flow."""

    method: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class SendTx:
    """Sign and send a transaction from the driver's wallet; the tx hash is sent back."""

    to: str | None
    data: bytes
    gas: int
    value: int = 0


@dataclass(frozen=True)
class HttpGetJson:
    """GET a URL and send back its JSON body."""

    url: str


@dataclass(frozen=True)
class HttpSend:
    """Send an HTTP request; the `httpx.Response` is sent back (body read unless `stream`).

    With `tls_pin` (a DER certificate) the request goes over a connection that trusts only it."""

    method: str
    url: str
    headers: dict[str, str]
    json: Any = None
    stream: bool = False
    tls_pin: bytes | None = field(default=None, repr=False)
    content: bytes | None = field(default=None, repr=False)  # a raw body (sent instead of `json`)


@dataclass(frozen=True)
class Sleep:
    """Pause between polls."""

    seconds: float


Step = Rpc | SendTx | HttpGetJson | HttpSend | Sleep
Flow = Generator[Step, Any, T]


@dataclass
class _NonceState:
    next_nonce: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    async_locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    def async_lock(self) -> asyncio.Lock:
        """One asyncio lock per event loop, in front of the thread lock."""
        loop_id = id(asyncio.get_running_loop())
        lock = self.async_locks.get(loop_id)
        if lock is None:
            lock = self.async_locks[loop_id] = asyncio.Lock()
        return lock


_nonces: dict[tuple[str, str], _NonceState] = {}
_nonces_guard = threading.Lock()


def _nonce_state(url: str, address: str) -> _NonceState:
    with _nonces_guard:
        return _nonces.setdefault((url, address.lower()), _NonceState())


def _is_nonce_error(exc: RPCError) -> bool:
    text = exc.message.lower()
    return "nonce" in text and ("too low" in text or "too high" in text or "invalid" in text)


def _unconfirmed(tx_hash: str, exc: NetworkError) -> UnconfirmedTransactionError:
    return UnconfirmedTransactionError(f"could not confirm that transaction {tx_hash} reached the node: {exc.message}",
                            transaction_hash=tx_hash,
                            hint="look the hash up before retrying: a retry could pay twice")


def _already_known(exc: RPCError) -> bool:
    text = exc.message.lower()
    return "already known" in text or "already imported" in text


class _DriverBase:
    """What both drivers share: settings, the wallet, the nonce state, the chain id."""

    def __init__(self, http: HttpCore, rpc_url: str, wallet: Wallet | None, *,
                 chain_id: int | None = None, max_retries: int = 2) -> None:
        self.http = http
        self.rpc_url = rpc_url
        self.wallet = wallet
        self.chain_id = chain_id
        self.max_retries = max_retries

    def _wallet(self) -> Wallet:
        if self.wallet is None:
            raise ConfigurationError("this operation sends a transaction and needs a private key",
                                     hint="pass private_key= (or alpha_private_key=) to og.init, or set OG_PRIVATE_KEY",
                                     arguments=("private_key",))
        return self.wallet

    def _tx_fields(self, step: SendTx, nonce: int, gas_price: int) -> dict[str, Any]:
        assert self.chain_id is not None
        tx: dict[str, Any] = {"nonce": nonce, "gas": step.gas, "gasPrice": gas_price,
                              "value": step.value, "data": step.data, "chainId": self.chain_id}
        if step.to is not None:
            tx["to"] = step.to
        return tx

    def _status_delay(self, response: Any, attempt: int) -> float | None:
        """Seconds to wait before sending again a request answered `response`, or None to keep the
        answer: 408, 429 and 5xx are retried as OpenAI's clients do, after the server's
        `Retry-After` (up to a minute) or the usual backoff. Resending is safe for paid requests:
        the request carries the same payment authorization, which settles at most once."""
        status = getattr(response, "status_code", 0)
        if status not in (408, 429) and status < 500:
            return None
        headers = response.headers
        for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            try:
                wait = float(headers.get(name, "")) * scale
            except ValueError:
                continue
            if 0 <= wait <= 60:
                return wait
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        """Seconds before retry `attempt`: exponential up to 2 s, with jitter (between half and all of
        it) so that clients failing together do not retry in lockstep."""
        ceiling = min(0.2 * 2**attempt, 2.0)
        return random.uniform(ceiling / 2, ceiling)


class SyncDriver(_DriverBase):
    """Runs flows with blocking I/O."""

    def __init__(self, http: HttpCore, rpc_url: str, wallet: Wallet | None, **kw: Any) -> None:
        super().__init__(http, rpc_url, wallet, **kw)
        self.rpc = JsonRpc(http, rpc_url)

    def run(self, flow: Flow[T], *, max_retries: int | None = None) -> T:
        """Drive `flow` to completion and return its value."""
        retries = self.max_retries if max_retries is None else max_retries
        try:
            step = next(flow)
            while True:
                try:
                    result = self._execute(step, retries)
                except Exception as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
        except StopIteration as stop:
            return stop.value

    def _execute(self, step: Step, retries: int) -> Any:
        if isinstance(step, Rpc):
            return self._retrying(lambda: self.rpc.call(step.method, *step.params), retries)
        if isinstance(step, SendTx):
            return self._send(step, retries)
        if isinstance(step, HttpGetJson):
            def get() -> Any:
                with transport_errors(f"GET {step.url}"):
                    response = self.http.sync.get(step.url)
                raise_for_status(response)
                return read_json(response, f"GET {step.url}")
            return self._retrying(get, retries)
        if isinstance(step, HttpSend):
            def send() -> Any:
                client = self.http.pinned_sync(step.tls_pin)
                request = client.build_request(step.method, step.url, headers=step.headers, json=step.json,
                                               content=step.content)
                with transport_errors(f"{step.method} {step.url}"):
                    response = client.send(request, stream=step.stream)
                    if step.stream and response.status_code >= 400:
                        response.read()  # errors are small JSON bodies: read them, free the connection
                        response.close()
                    return response
            return self._retrying(send, retries, statuses=True)
        time.sleep(step.seconds)
        return None

    def _retrying(self, fn: Any, retries: int, *, statuses: bool = False) -> Any:
        """`fn()`, tried again on network errors (and, with `statuses`, on retryable statuses)."""
        for attempt in range(retries + 1):
            try:
                result = fn()
            except PinnedCertificateError:
                raise  # the same server presents the same certificate again
            except NetworkError:
                if attempt == retries:
                    raise
                time.sleep(self._backoff(attempt))
                continue
            delay = self._status_delay(result, attempt) if statuses and attempt < retries else None
            if delay is None:
                return result
            result.close()
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _send(self, step: SendTx, retries: int) -> str:
        wallet = self._wallet()
        if self.chain_id is None:
            self.chain_id = int(self._retrying(lambda: self.rpc.call("eth_chainId"), retries), 16)
        gas_price = int(self._retrying(lambda: self.rpc.call("eth_gasPrice"), retries), 16)
        state = _nonce_state(self.rpc_url, wallet.address)
        with state.lock:
            for resync in (False, True):
                if state.next_nonce is None or resync:
                    state.next_nonce = int(self._retrying(lambda: self.rpc.call(
                        "eth_getTransactionCount", wallet.address, "pending"), retries), 16)
                raw, tx_hash = wallet.sign_transaction(self._tx_fields(step, state.next_nonce, gas_price))
                try:
                    self._send_raw(raw, tx_hash, retries)
                except RPCError as exc:
                    if _is_nonce_error(exc) and not resync:
                        continue
                    state.next_nonce = None
                    raise TransactionError(f"the node refused the transaction: {exc.message}") from exc
                except BaseException:
                    state.next_nonce = None
                    raise
                state.next_nonce += 1
                return tx_hash
        raise AssertionError("unreachable")

    def _send_raw(self, raw: bytes, tx_hash: str, retries: int) -> None:
        """Send signed bytes; resending the same bytes is idempotent, so transport errors retry."""
        for attempt in range(retries + 1):
            try:
                self.rpc.call("eth_sendRawTransaction", "0x" + raw.hex())
                return
            except RPCError as exc:
                if _already_known(exc):
                    return
                raise
            except NetworkError as exc:
                if self._known(tx_hash):
                    return
                if attempt == retries:
                    raise _unconfirmed(tx_hash, exc) from exc
                time.sleep(self._backoff(attempt))

    def _known(self, tx_hash: str) -> bool:
        try:
            return self.rpc.call("eth_getTransactionByHash", tx_hash) is not None
        except NetworkError:
            return False


class AsyncDriver(_DriverBase):
    """Runs flows with non-blocking I/O."""

    def __init__(self, http: HttpCore, rpc_url: str, wallet: Wallet | None, **kw: Any) -> None:
        super().__init__(http, rpc_url, wallet, **kw)
        self.rpc = AsyncJsonRpc(http, rpc_url)

    async def run(self, flow: Flow[T], *, max_retries: int | None = None) -> T:
        """Drive `flow` to completion and return its value."""
        retries = self.max_retries if max_retries is None else max_retries
        try:
            step = next(flow)
            while True:
                try:
                    result = await self._execute(step, retries)
                except Exception as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
        except StopIteration as stop:
            return stop.value

    async def _execute(self, step: Step, retries: int) -> Any:
        if isinstance(step, Rpc):
            return await self._retrying(lambda: self.rpc.call(step.method, *step.params), retries)
        if isinstance(step, SendTx):
            return await self._send(step, retries)
        if isinstance(step, HttpGetJson):
            async def get() -> Any:
                with transport_errors(f"GET {step.url}"):
                    response = await self.http.async_.get(step.url)
                raise_for_status(response)
                return read_json(response, f"GET {step.url}")
            return await self._retrying(get, retries)
        if isinstance(step, HttpSend):
            async def send() -> Any:
                client = self.http.pinned_async(step.tls_pin)
                request = client.build_request(step.method, step.url, headers=step.headers, json=step.json,
                                               content=step.content)
                with transport_errors(f"{step.method} {step.url}"):
                    response = await client.send(request, stream=step.stream)
                    if step.stream and response.status_code >= 400:
                        await response.aread()
                        await response.aclose()
                    return response
            return await self._retrying(send, retries, statuses=True)
        await asyncio.sleep(step.seconds)
        return None

    async def _retrying(self, fn: Any, retries: int, *, statuses: bool = False) -> Any:
        """Async twin of `SyncDriver._retrying`."""
        for attempt in range(retries + 1):
            try:
                result = await fn()
            except PinnedCertificateError:
                raise  # the same server presents the same certificate again
            except NetworkError:
                if attempt == retries:
                    raise
                await asyncio.sleep(self._backoff(attempt))
                continue
            delay = self._status_delay(result, attempt) if statuses and attempt < retries else None
            if delay is None:
                return result
            await result.aclose()
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _send(self, step: SendTx, retries: int) -> str:
        wallet = self._wallet()
        if self.chain_id is None:
            self.chain_id = int(await self._retrying(lambda: self.rpc.call("eth_chainId"), retries), 16)
        gas_price = int(await self._retrying(lambda: self.rpc.call("eth_gasPrice"), retries), 16)
        state = _nonce_state(self.rpc_url, wallet.address)
        async with state.async_lock():
            await asyncio.to_thread(state.lock.acquire)
            try:
                for resync in (False, True):
                    if state.next_nonce is None or resync:
                        state.next_nonce = int(await self._retrying(lambda: self.rpc.call(
                            "eth_getTransactionCount", wallet.address, "pending"), retries), 16)
                    raw, tx_hash = wallet.sign_transaction(
                        self._tx_fields(step, state.next_nonce, gas_price))
                    try:
                        await self._send_raw(raw, tx_hash, retries)
                    except RPCError as exc:
                        if _is_nonce_error(exc) and not resync:
                            continue
                        state.next_nonce = None
                        raise TransactionError(
                            f"the node refused the transaction: {exc.message}") from exc
                    except BaseException:
                        state.next_nonce = None
                        raise
                    state.next_nonce += 1
                    return tx_hash
            finally:
                state.lock.release()
        raise AssertionError("unreachable")

    async def _send_raw(self, raw: bytes, tx_hash: str, retries: int) -> None:
        """Async twin of `SyncDriver._send_raw`."""
        for attempt in range(retries + 1):
            try:
                await self.rpc.call("eth_sendRawTransaction", "0x" + raw.hex())
                return
            except RPCError as exc:
                if _already_known(exc):
                    return
                raise
            except NetworkError as exc:
                if await self._known(tx_hash):
                    return
                if attempt == retries:
                    raise _unconfirmed(tx_hash, exc) from exc
                await asyncio.sleep(self._backoff(attempt))

    async def _known(self, tx_hash: str) -> bool:
        try:
            return await self.rpc.call("eth_getTransactionByHash", tx_hash) is not None
        except NetworkError:
            return False


def wait_for_receipt(tx_hash: str, *, timeout: float = 120.0) -> Flow[dict[str, Any]]:
    """Poll for a receipt with a short, growing delay (the devnet mines at once)."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        receipt = yield Rpc("eth_getTransactionReceipt", (tx_hash,))
        if receipt is not None:
            return dict(receipt)
        if time.monotonic() > deadline:
            raise TransactionError(f"transaction {tx_hash} was not mined within {timeout:.0f} s",
                                   hint="it may still be mined; look it up in the explorer")
        yield Sleep(delay)
        delay = min(delay * 2, 1.0)
