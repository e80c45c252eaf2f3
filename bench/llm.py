"""LLM benchmarks: `client.llm` on the devnet gateway against raw httpx on the same server.

The performance targets, each timed against its baseline in the same run:

- `llm.chat.warm[.inproc]` — a warm paid `client.llm.chat` (x402 signed up front, TEE verified)
  against the same request unpaid with raw httpx: ≤ 1.3×.
- `llm.chat.warm.upto[.inproc]` — the same with `payment_scheme="upto"`: a warm client holding an
  upto session sends `X-Upto-Session` instead of a payment, so nothing is signed or settled per
  request (the gateway settles each session once, in the background): ≤ 1.3×.
- `llm.chat.round_trips` — HTTP requests per warm paid call, counted with an httpx event hook: 1.
- `llm.achat.concurrent` — 256 concurrent `client.llm.achat` calls (spread over the eight funded
  dev accounts' clients, one event loop) against 256 concurrent raw async httpx posts, unpaid:
  ≥ 0.8× the throughput, i.e. ≤ 1.25× the time. `llm.achat.concurrent.upto`: the same with
  `payment_scheme="upto"` clients (a session covers 20 requests, so a burst opens new ones).
- `llm.stream.ttft[.inproc]` — time to the first content chunk of `client.llm.chat(stream=True)`
  against a raw httpx SSE read of the same request, unpaid: ≤ raw + 5 ms.

And two diagnostics that split the gap: `llm.chat.sdk_overhead` and `llm.stream.sdk_overhead`
time the same SDK calls against raw httpx sending an equally valid payment, signed before the
clock starts; the server does the same work for both, so the ratio is the SDK's own cost.

Rig: "HTTP" benchmarks run the devnet in a child process (as `opengradient devnet up` does), so
the server and the client do not share one GIL — with the server on a thread of the benchmark
process, every request waits on GIL hand-offs and both sides look slower than they are. The
parent steers the child over a pipe (payments on/off, wait until the settlement recorder is
idle) between samples, outside the timed region. `.inproc` benchmarks use the in-process devnet
(httpx transports into the ASGI app, no sockets). Every timed function first waits for the
devnet's background settlement recorder to go idle (untimed), so the on-chain bookkeeping of
one paid sample does not slow the next sample of either side.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx

import opengradient as og
from bench.harness import Benchmark, Elapsed, Registry, baseline_plus, ratio_at_most

MODEL = "gpt-4o"
MESSAGES = [{"role": "user", "content": "Say hello in one short sentence."}]
STREAM_MESSAGES = [{"role": "user", "content": "Tell me about verifiable inference."}]
MAX_TOKENS = 20
STREAM_MAX_TOKENS = 60
HEADERS = {"Content-Type": "application/json", "X-SETTLEMENT-TYPE": "settle"}
USER_ACCOUNTS = 8


@dataclass
class Settings:
    """Run-wide settings `python -m bench` sets from its options."""

    quick: bool = False

    @property
    def concurrency(self) -> int:
        """Concurrent chats per burst (256; 32 with `--quick`, to stay fast)."""
        return 32 if self.quick else 256


SETTINGS = Settings()


# --- the devnet under test --------------------------------------------------------------------------

_CHILD = r"""
import json, sys
import opengradient as og
net = og.devnet.start(http=True)
print(json.dumps({"url": net.url, "opg_token": net.network.payments.token_address,
                  "tee_registry": net.network.tee_registry_address}), flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "paid":
        net.gateway.require_payment = True
    elif command == "unpaid":
        net.gateway.require_payment = False
    elif command == "idle":
        net.gateway.settlements.wait_idle()
    print("ok", flush=True)
net.close()
"""


class Devnet:
    """A devnet to benchmark against: clients, raw httpx, and the switches the baselines need."""

    url: str
    network: og.Network
    #: Where the clients of the benchmark being built are closed.
    stack: ExitStack

    def client(self, index: int, **kwargs: Any) -> og.Client:
        """A client paying with dev account `index` (`kwargs` go to `og.Client`)."""
        raise NotImplementedError

    def raw(self) -> httpx.Client:
        """A bare httpx client on the same network path as the SDK's."""
        raise NotImplementedError

    def raw_async(self) -> httpx.AsyncClient:
        """A bare async httpx client on the same network path as the SDK's."""
        raise NotImplementedError

    def set_paid(self, paid: bool) -> None:
        """Make the gateway demand payment (True) or serve unpaid (False)."""
        raise NotImplementedError

    def idle(self) -> None:
        """Wait until the background settlement recorder has nothing queued."""
        raise NotImplementedError


class InProcessDevnet(Devnet):
    """`og.devnet.start()`: the client reaches the ASGI app through httpx transports."""

    def __init__(self, stack: ExitStack) -> None:
        self.net = stack.enter_context(og.devnet.start())
        self.url, self.network = self.net.url, self.net.network
        self.stack = stack

    def client(self, index: int, **kwargs: Any) -> og.Client:
        client = self.net.new_client(self.net.accounts[index].private_key, **kwargs)
        self.stack.callback(client.close)
        return client

    def raw(self) -> httpx.Client:
        return self.stack.enter_context(httpx.Client(transport=self.net._bridge.transport))

    def raw_async(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.net._bridge.async_transport)

    def set_paid(self, paid: bool) -> None:
        self.net.gateway.require_payment = paid

    def idle(self) -> None:
        self.net.gateway.settlements.wait_idle()


class ChildDevnet(Devnet):
    """The devnet served over loopback HTTP by a child process, steered over its stdin.

    One child serves every HTTP benchmark of a run (started by the first, stopped at exit; it also
    ends by itself when the parent's end of its stdin closes), so a run pays its start-up once.
    """

    def __init__(self) -> None:
        from opengradient.devnet.chain.keys import dev_accounts
        from opengradient.networks import devnet_network

        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._log, text=True)
        atexit.register(self.stop)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the devnet child process did not start: {self._tail()}")
        info = json.loads(line)
        self.url = info["url"]
        self.network = devnet_network(self.url, opg_token=info["opg_token"], tee_registry=info["tee_registry"])
        self._keys = [a.private_key for a in dev_accounts(USER_ACCOUNTS)]

    def _tail(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def _command(self, command: str) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        if self._process.stdout.readline().strip() != "ok":
            raise RuntimeError(f"the devnet child process failed on {command!r}: {self._tail()}")

    def alive(self) -> bool:
        """The child still runs."""
        return self._process.poll() is None

    def stop(self) -> None:
        """Close the child's stdin and wait for it to shut the devnet down."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()

    def client(self, index: int, **kwargs: Any) -> og.Client:
        client = og.Client(self._keys[index], network=self.network, **kwargs)
        self.stack.callback(client.close)
        return client

    def raw(self) -> httpx.Client:
        return self.stack.enter_context(httpx.Client())

    def raw_async(self) -> httpx.AsyncClient:
        return httpx.AsyncClient()

    def set_paid(self, paid: bool) -> None:
        self._command("paid" if paid else "unpaid")

    def idle(self) -> None:
        self._command("idle")


_child: ChildDevnet | None = None


def _devnet(stack: ExitStack, http: bool) -> Devnet:
    """The devnet for one benchmark: the shared child (HTTP) or a fresh in-process one."""
    global _child
    if not http:
        return InProcessDevnet(stack)
    if _child is None or not _child.alive():
        _child = ChildDevnet()
    _child.stack = stack
    _child.set_paid(True)
    _child.idle()
    return _child


# --- timed pieces -----------------------------------------------------------------------------------

def _chat_body(messages: list[dict[str, str]], max_tokens: int, stream: bool = False) -> dict[str, Any]:
    from opengradient.client.llm import chat_body

    return chat_body(MODEL, messages, max_tokens=max_tokens, stream=stream)


def _timed(prepare: Callable[[], object], measure: Callable[[], object],
           after: Callable[[], object] | None = None) -> Callable[[], object]:
    """A timed function: `prepare` (untimed), `measure` (timed), `after` (untimed)."""
    def call() -> object:
        prepare()
        started = time.perf_counter()
        value = measure()
        elapsed = time.perf_counter() - started
        if after is not None:
            after()
        return Elapsed(value if isinstance(value, Elapsed) else elapsed)
    return call


def _first_content_line(lines: Iterator[str]) -> None:
    """Read SSE lines until one carries content (raw httpx's time to first token)."""
    for line in lines:
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            delta = (json.loads(line[5:]).get("choices") or [{}])[0].get("delta") or {}
            if delta.get("content"):
                return
    raise RuntimeError("the stream ended without content")


def _signer(net: Devnet, index: int, url: str, body: dict[str, Any]) -> Callable[[], str]:
    """Fresh x402 payment headers for `body` at `url` (dev account `index` pays), for raw httpx."""
    from opengradient.client.payments import Payer, payment_required_of
    from opengradient.client.wallet import Wallet
    from opengradient.devnet.chain.keys import dev_accounts

    offer = payment_required_of(net.raw().post(url, json=body, headers=HEADERS))  # the 402
    payer = Payer(Wallet(dev_accounts(index + 1)[index].private_key), net.network.payments)
    return lambda: payer.sign(offer).header


class _RawBaseline:
    """How a raw httpx baseline is served: unpaid (the targets' baselines) or with a pre-signed payment."""

    def __init__(self, net: Devnet, url: str, body: dict[str, Any], *, paid: bool, payer_index: int) -> None:
        self.net, self.paid = net, paid
        self.sign = _signer(net, payer_index, url, body) if paid else None
        self.headers = dict(HEADERS)

    def prepare(self) -> None:
        """Untimed: drain the recorder; then sign a payment, or switch payments off."""
        self.net.idle()
        if self.sign is not None:
            self.headers = {**HEADERS, "PAYMENT-SIGNATURE": self.sign()}
        else:
            self.net.set_paid(False)

    def after(self) -> None:
        """Untimed: payments back on."""
        if self.sign is None:
            self.net.set_paid(True)

    @property
    def label(self) -> str:
        return "raw httpx paid (pre-signed)" if self.paid else "raw httpx unpaid"


def _upto_client(net: Devnet, index: int) -> og.Client:
    """A `payment_scheme="upto"` client whose Permit2 allowance covers many sessions."""
    client = net.client(index, payment_scheme="upto")
    client.llm.ensure_opg_approval(opg_amount=1000)
    return client


def _warm_chat(stack: ExitStack, *, http: bool, name: str, raw_paid: bool = False,
               upto: bool = False) -> Benchmark:
    net = _devnet(stack, http)
    client = _upto_client(net, 7 if http else 6) if upto else net.client(1)
    client.llm.chat(MODEL, MESSAGES, max_tokens=MAX_TOKENS)  # cold: 402, pay, read the registry
    raw = net.raw()
    url, body = f"{net.url}/v1/chat/completions", _chat_body(MESSAGES, MAX_TOKENS)
    baseline = _RawBaseline(net, url, body, paid=raw_paid, payer_index=3)

    def paid() -> object:
        return client.llm.chat(MODEL, MESSAGES, max_tokens=MAX_TOKENS)

    def raw_post() -> object:
        response = raw.post(url, json=body, headers=baseline.headers)
        response.raise_for_status()
        return response.json()

    target = f"{'diagnostic: ' if raw_paid else ''}≤ 1.3× {baseline.label}"
    return Benchmark(name, _timed(net.idle, paid), _timed(baseline.prepare, raw_post, baseline.after),
                     target, ratio_at_most(1.3), repeat=20, warmup=2)


def _stream_ttft(stack: ExitStack, *, http: bool, name: str, raw_paid: bool = False) -> Benchmark:
    from opengradient.client.llm import TextGenerationStream

    net = _devnet(stack, http)
    client = net.client(2)
    client.llm.chat(MODEL, STREAM_MESSAGES, max_tokens=STREAM_MAX_TOKENS)  # warm
    raw = net.raw()
    url, body = f"{net.url}/v1/chat/completions", _chat_body(STREAM_MESSAGES, STREAM_MAX_TOKENS, stream=True)
    baseline = _RawBaseline(net, url, body, paid=raw_paid, payer_index=5)
    state: dict[str, Any] = {}

    def sdk_first_token() -> object:
        stream = client.llm.chat(MODEL, STREAM_MESSAGES, max_tokens=STREAM_MAX_TOKENS, stream=True)
        assert isinstance(stream, TextGenerationStream)
        chunks = iter(stream)
        for chunk in chunks:
            if chunk.choices[0].delta.content:
                break
        state["rest"] = chunks
        return None

    def sdk_drain() -> None:  # untimed: read the rest (the final chunk's signature is verified here)
        for _ in state.pop("rest"):
            pass

    def raw_first_token() -> object:
        response = raw.send(raw.build_request("POST", url, json=body, headers=baseline.headers), stream=True)
        response.raise_for_status()
        state["response"] = response
        lines = response.iter_lines()
        _first_content_line(lines)
        state["rest"] = lines
        return None

    def raw_drain() -> None:
        for _ in state.pop("rest"):
            pass
        state.pop("response").close()
        baseline.after()

    target = f"{'diagnostic: ' if raw_paid else ''}≤ {baseline.label} SSE + 5 ms"
    return Benchmark(name, _timed(net.idle, sdk_first_token, sdk_drain),
                     _timed(baseline.prepare, raw_first_token, raw_drain),
                     target, baseline_plus(0.005), repeat=20, warmup=2)


def register(registry: Registry) -> None:
    """Add the LLM benchmarks to `registry`."""

    @registry.register("llm.chat.warm", "≤ 1.3× raw httpx unpaid")
    def warm_chat_http(stack: ExitStack) -> Benchmark:
        """Warm paid chat over loopback HTTP (devnet in a child process)."""
        return _warm_chat(stack, http=True, name="llm.chat.warm")

    @registry.register("llm.chat.warm.inproc", "≤ 1.3× raw httpx unpaid")
    def warm_chat_inproc(stack: ExitStack) -> Benchmark:
        """Warm paid chat on the in-process devnet."""
        return _warm_chat(stack, http=False, name="llm.chat.warm.inproc")

    @registry.register("llm.chat.warm.upto", "≤ 1.3× raw httpx unpaid")
    def warm_chat_upto_http(stack: ExitStack) -> Benchmark:
        """Warm chat on an upto session over loopback HTTP (devnet in a child process)."""
        return _warm_chat(stack, http=True, name="llm.chat.warm.upto", upto=True)

    @registry.register("llm.chat.warm.upto.inproc", "≤ 1.3× raw httpx unpaid")
    def warm_chat_upto_inproc(stack: ExitStack) -> Benchmark:
        """Warm chat on an upto session on the in-process devnet."""
        return _warm_chat(stack, http=False, name="llm.chat.warm.upto.inproc", upto=True)

    @registry.register("llm.chat.sdk_overhead", "diagnostic: ≤ 1.3× raw httpx paid (pre-signed)")
    def chat_sdk_overhead(stack: ExitStack) -> Benchmark:
        """The SDK's warm paid chat against raw httpx sending a payment signed before the clock starts."""
        return _warm_chat(stack, http=True, name="llm.chat.sdk_overhead", raw_paid=True)

    @registry.register("llm.chat.round_trips", "1 HTTP request per warm paid call")
    def round_trips(stack: ExitStack) -> Benchmark:
        """Time of a warm paid call; met only when every warm call made exactly one HTTP request."""
        net = _devnet(stack, True)
        client = net.client(4)
        client.llm.chat(MODEL, MESSAGES, max_tokens=MAX_TOKENS)  # cold
        counts: list[int] = []
        requests: list[str] = []
        client._http.sync.event_hooks = {"request": [lambda request: requests.append(request.url.path)]}

        def counted() -> object:
            requests.clear()
            client.llm.chat(MODEL, MESSAGES, max_tokens=MAX_TOKENS)
            counts.append(len(requests))
            return None

        counted()
        target = f"1 HTTP request per warm paid call (counted: {counts[0]})"
        return Benchmark("llm.chat.round_trips", _timed(net.idle, counted), None, target,
                         lambda _median, _base: bool(counts) and set(counts) == {1}, repeat=10, warmup=1)

    @registry.register("llm.achat.concurrent", "≥ 0.8× raw httpx unpaid async throughput")
    def concurrent(stack: ExitStack) -> Benchmark:
        """N concurrent `achat`s over eight payers' clients against N concurrent raw async posts, unpaid."""
        return _concurrent(stack, upto=False)

    @registry.register("llm.achat.concurrent.upto", "≥ 0.8× raw httpx unpaid async throughput")
    def concurrent_upto(stack: ExitStack) -> Benchmark:
        """The concurrent burst with `payment_scheme="upto"` clients (sessions instead of payments)."""
        return _concurrent(stack, upto=True)

    def _concurrent(stack: ExitStack, *, upto: bool) -> Benchmark:
        name = "llm.achat.concurrent" + (".upto" if upto else "")
        net = _devnet(stack, True)
        n = SETTINGS.concurrency
        loop = asyncio.new_event_loop()
        stack.callback(loop.close)
        clients = [_upto_client(net, i) if upto else net.client(i) for i in range(USER_ACCOUNTS)]
        raw = net.raw_async()
        stack.callback(loop.run_until_complete, raw.aclose())
        for client in clients:
            stack.callback(loop.run_until_complete, client.aclose())
        url, body = f"{net.url}/v1/chat/completions", _chat_body(MESSAGES, MAX_TOKENS)
        baseline = _RawBaseline(net, url, body, paid=False, payer_index=0)

        async def sdk_burst() -> None:
            await asyncio.gather(*(clients[i % len(clients)].llm.achat(MODEL, MESSAGES, max_tokens=MAX_TOKENS)
                                   for i in range(n)))

        async def raw_one() -> None:
            response = await raw.post(url, json=body, headers=HEADERS)
            response.raise_for_status()
            response.json()

        async def raw_burst() -> None:
            await asyncio.gather(*(raw_one() for _ in range(n)))

        async def cold() -> None:  # every client pays once and reads the registry
            await asyncio.gather(*(c.llm.achat(MODEL, MESSAGES, max_tokens=MAX_TOKENS) for c in clients))

        loop.run_until_complete(cold())
        target = f"{n} chats: ≥ 0.8× raw httpx unpaid async throughput (≤ 1.25× time)"
        return Benchmark(name,
                         _timed(net.idle, lambda: loop.run_until_complete(sdk_burst())),
                         _timed(baseline.prepare, lambda: loop.run_until_complete(raw_burst()), baseline.after),
                         target, ratio_at_most(1 / 0.8), repeat=2, warmup=0)

    @registry.register("llm.stream.ttft", "≤ raw httpx unpaid SSE + 5 ms")
    def ttft_http(stack: ExitStack) -> Benchmark:
        """Stream time to first token over loopback HTTP (devnet in a child process)."""
        return _stream_ttft(stack, http=True, name="llm.stream.ttft")

    @registry.register("llm.stream.sdk_overhead", "diagnostic: ≤ raw httpx paid (pre-signed) SSE + 5 ms")
    def ttft_sdk_overhead(stack: ExitStack) -> Benchmark:
        """Time to first token against raw httpx SSE with a payment signed before the clock starts."""
        return _stream_ttft(stack, http=True, name="llm.stream.sdk_overhead", raw_paid=True)

    @registry.register("llm.stream.ttft.inproc", "≤ raw httpx unpaid SSE + 5 ms")
    def ttft_inproc(stack: ExitStack) -> Benchmark:
        """Stream time to first token on the in-process devnet."""
        return _stream_ttft(stack, http=False, name="llm.stream.ttft.inproc")
