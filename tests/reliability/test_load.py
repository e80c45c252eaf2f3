"""Load: 1,000 paid chats from 4 wallets at once, accounted to the wei.

Async clients (one per wallet) share a bound of 16 requests in flight on an in-process devnet of
their own. Afterwards, for each wallet:

- none lost: 250 results, each with a payment hash and an amount;
- none settled twice: exactly 250 OPG `Transfer`s from the wallet to the gateway's payTo since the
  start (read with `eth_getLogs`), and their transactions are exactly the 250 payment hashes;
- to the wei: the wallet's OPG balance fell by the sum of its `PAYMENT-RESPONSE` amounts (decoded
  from the headers the client received), which equals the sum of `result.amount_paid` and the sum
  of the on-chain transfer values; the payTo gained the total of all four;

and the payments chain's clock has not run ahead of the wall clock ("block clock under
load"). It takes about 30 s on two cores, so it runs in CI (it is not marked slow).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest

import opengradient as og
from opengradient.devnet.node import Devnet
from tests.reliability.chainview import ChainView, Settlements

pytestmark = pytest.mark.timeout(600)

REQUESTS = 1000
WALLETS = 4
CONCURRENCY = 16
#: Allowed lead of the payments chain's latest block timestamp over the wall clock.
MAX_DRIFT_SECONDS = 5
#: Token budgets (so prices differ): wallet w uses BUDGETS[w] and BUDGETS[w + 1] in turn.
BUDGETS = [8, 13, 21, 34, 55]


class ReceiptTap(httpx.AsyncBaseTransport):
    """Records the decoded `PAYMENT-RESPONSE` of every response a client receives."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.receipts: list[dict[str, object]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        header = response.headers.get("payment-response")
        if header:
            self.receipts.append(json.loads(base64.b64decode(header)))
        return response


@pytest.fixture(scope="module")
def loaded_devnet() -> Iterator[Devnet]:
    with og.devnet.start() as net:
        yield net


async def test_a_thousand_paid_chats_from_four_wallets_are_accounted_to_the_wei(loaded_devnet: Devnet) -> None:
    net = loaded_devnet
    ledger = Settlements(net)
    wallets = net.accounts[4:4 + WALLETS]
    taps = [ReceiptTap(net._bridge.async_transport) for _ in wallets]
    clients = [net.new_client(w.private_key, async_transport=tap) for w, tap in zip(wallets, taps, strict=True)]
    before = {w.address: ledger.balance(w.address) for w in wallets}
    pay_to_before = ledger.balance(ledger.pay_to)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> tuple[int, og.TextGenerationOutput]:
        w = i % WALLETS
        async with limit:
            result = await clients[w].llm.achat(
                "gpt-4o", [{"role": "user", "content": f"Request {i}: say hello."}],
                max_tokens=BUDGETS[w + (i // WALLETS) % 2])
        assert isinstance(result, og.TextGenerationOutput)
        return w, result

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(i) for i in range(REQUESTS)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.aclose()

    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert not errors, f"{len(errors)} of {REQUESTS} requests failed, e.g. {errors[:3]!r}"
    by_wallet: dict[int, list[og.TextGenerationOutput]] = defaultdict(list)
    for outcome in outcomes:
        assert not isinstance(outcome, BaseException)
        by_wallet[outcome[0]].append(outcome[1])

    total = 0
    for w, wallet in enumerate(wallets):
        results = by_wallet[w]
        assert len(results) == REQUESTS // WALLETS  # none lost
        assert all(r.tee_verified and r.payment_hash and r.amount_paid for r in results)
        hashes = [r.payment_hash for r in results]
        assert len(set(hashes)) == len(hashes)
        receipts = [r for r in taps[w].receipts if r.get("success")]
        assert len(receipts) == len(results)
        assert {r["transaction"] for r in receipts} == set(hashes)
        assert all(str(r["payer"]).lower() == wallet.address.lower() for r in receipts)
        receipt_sum = sum(int(str(r["amount"])) for r in receipts)
        transfers = ledger.since_start(wallet.address)
        assert len(transfers) == len(results)  # none settled twice
        assert {t.tx_hash for t in transfers} == set(hashes)
        assert before[wallet.address] - ledger.balance(wallet.address) == receipt_sum  # to the wei
        assert receipt_sum == sum(r.amount_paid or 0 for r in results) == sum(t.value for t in transfers)
        total += receipt_sum
    assert ledger.balance(ledger.pay_to) - pay_to_before == total
    drift = ChainView(net, "payments").block_timestamp() - time.time()
    assert drift <= MAX_DRIFT_SECONDS, f"the payments chain's clock is {drift:.0f} s ahead of the wall clock"
    print(f"\n{REQUESTS} paid chats from {WALLETS} wallets at concurrency {CONCURRENCY}: {elapsed:.1f} s "
          f"({REQUESTS / elapsed:.0f}/s), {total} base units settled, chain clock drift {drift:+.1f} s")
