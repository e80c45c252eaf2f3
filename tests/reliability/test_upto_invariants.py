"""Money invariants of the gateway's payments, each held against the attack that broke it.

1. A permit backing an open session can be settled only by the gateway that holds it; a session
   whose permit is gone stops serving at once. (Attack: settle the opening payload through the
   public `/facilitator/settle` for 1 wei — 14 requests served, 1 wei paid.)
2. At any instant, a payer's open exposure (session caps) plus its pending settlements never
   exceed what its balance and allowance cover: reserved at verify, released on settle or
   failure. (Attack: 8 concurrent openings from a wallet covering 2.5 caps opened 4 sessions.)
3. A permit opens one session however its nonce is spelled: keys are built from the number.
   (Attack: "N", "0N", "00N" opened three sessions from one signature.)
4. A session stops serving as soon as its payer revokes or shrinks the allowance it rests on,
   and settles at once what the payer still covers. (Attack: it kept serving after a revoke.)
5. Property: wallets with random balances pay with `upto` and `exact` at once, streamed and not;
   what was served equals what was paid, to the wei; nothing settles twice.

Balances are read on chain before and after, to the wei.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import opengradient as og
from opengradient.devnet.chain.deploy import PERMIT2_ADDRESS
from opengradient.devnet.node import Devnet
from tests.payers import (
    CHAT,
    PRICE,
    balance,
    chat_body,
    client_for,
    messages,
    new_payer,
    offer_of,
    transfers,
    upto_header,
    upto_option,
)


@pytest.fixture(autouse=True)
def settle_everything(devnet: Devnet) -> Iterator[None]:
    yield
    devnet.gateway.flush_sessions()
    devnet.gateway.settlements.wait_idle()


@pytest.fixture(scope="module")
def http(devnet: Devnet) -> Iterator[httpx.Client]:
    with httpx.Client(transport=devnet._bridge.transport, base_url=devnet.url, timeout=30) as client:
        yield client


def _open(http: httpx.Client, header: str, text: str = "open") -> httpx.Response:
    return http.post(CHAT, json=chat_body(text), headers={"PAYMENT-SIGNATURE": header})


def _on_session(http: httpx.Client, session_id: str, text: str) -> httpx.Response:
    return http.post(CHAT, json=chat_body(text), headers={"X-Upto-Session": session_id})


# ---- 1. only the gateway settles the permit of its session ---------------------------------------


def test_the_public_facilitator_cannot_settle_a_permit_that_backs_a_session(devnet: Devnet,
                                                                          http: httpx.Client) -> None:
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    header = upto_header(devnet, payer, option)
    before, pay_to_before = balance(devnet, payer.address), balance(devnet, devnet.gateway.pay_to)
    opened = _open(http, header)
    assert opened.status_code == 200, opened.text
    session_id = opened.headers["x-upto-session"]
    for i in range(10):
        assert _on_session(http, session_id, f"request {i}").status_code == 200

    payload = json.loads(base64.b64decode(header))
    attack = http.post("/facilitator/settle", json={
        "x402Version": 2, "paymentPayload": payload,
        "paymentRequirements": {**option.model_dump(by_alias=True), "amount": "1"}})
    assert attack.status_code == 200
    assert attack.json()["success"] is False
    assert attack.json()["errorReason"] == "authorization_held_by_gateway"
    assert balance(devnet, payer.address) == before  # the 1 wei did not move

    for i in range(3):
        assert _on_session(http, session_id, f"after {i}").status_code == 200
    [session] = [s for s in devnet.gateway.flush_sessions() if s.id == session_id]
    assert session.state == "settled" and session.requests == 14
    assert transfers(devnet, session.transaction) == [(payer.address, devnet.gateway.pay_to, 14 * PRICE)]
    assert balance(devnet, payer.address) == before - 14 * PRICE
    assert balance(devnet, devnet.gateway.pay_to) == pay_to_before + 14 * PRICE


def test_a_permit_not_backing_a_session_can_still_be_settled_publicly(devnet: Devnet, http: httpx.Client) -> None:
    """The hold is the gateway's, not a ban: the facilitator route works for what it does not hold."""
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    payload = json.loads(base64.b64decode(upto_header(devnet, payer, option)))
    before = balance(devnet, payer.address)
    settled = http.post("/facilitator/settle", json={
        "x402Version": 2, "paymentPayload": payload,
        "paymentRequirements": {**option.model_dump(by_alias=True), "amount": "7"}}).json()
    assert settled["success"] is True, settled
    assert balance(devnet, payer.address) == before - 7


def test_a_session_whose_permit_nonce_is_burnt_stops_at_once(devnet: Devnet, http: httpx.Client) -> None:
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    header = upto_header(devnet, payer, option)
    before = balance(devnet, payer.address)
    session_id = _open(http, header).headers["x-upto-session"]
    assert _on_session(http, session_id, "one").status_code == 200
    nonce = int(json.loads(base64.b64decode(header))["payload"]["permit2Authorization"]["nonce"])
    payer.deployer.transact(PERMIT2_ADDRESS, "Permit2", "invalidateUnorderedNonces", nonce >> 8, 1 << (nonce & 0xFF))

    refused = _on_session(http, session_id, "two")
    assert offer_of(refused).error == "upto_session_revoked"
    status = http.get(f"/upto/sessions/{session_id}").json()
    assert status["status"] == "failed" and status["errorReason"] == "upto_permit_used_elsewhere"
    assert status["requests"] == 2  # what was served before the burn is the gateway's loss, and no more
    assert balance(devnet, payer.address) == before
    assert devnet.gateway.exposure.exposure(payer.address).total == 0  # released


# ---- 2. exposure is reserved at verify ---------------------------------------------------------


async def test_concurrent_openings_never_exceed_what_the_wallet_covers(devnet: Devnet, http: httpx.Client) -> None:
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    cap = int(option.amount)
    payer = new_payer(devnet, opg=5 * cap // 2, approve=100 * cap)  # covers two and a half caps
    headers = [upto_header(devnet, payer, option) for _ in range(8)]
    before = balance(devnet, payer.address)
    async with httpx.AsyncClient(transport=devnet._bridge.async_transport, base_url=devnet.url,
                                 timeout=30) as client:
        answers = await asyncio.gather(*(client.post(CHAT, json=chat_body(f"burst {i}"),
                                                     headers={"PAYMENT-SIGNATURE": h})
                                         for i, h in enumerate(headers)))
    opened = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 402]
    assert len(opened) == 2 and len(refused) == 6
    assert {offer_of(a).error for a in refused} == {"insufficient_funds"}
    sessions = [devnet.gateway.sessions.get(a.headers["x-upto-session"]) for a in opened]
    devnet.gateway.flush_sessions()
    assert all(s is not None and s.state == "settled" for s in sessions)
    assert balance(devnet, payer.address) == before - 2 * PRICE  # served two, paid two


# ---- 3. one permit, one session ------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["0{n}", "00{n}", "000000{n}"])
def test_a_permit_opens_one_session_however_its_nonce_is_spelled(devnet: Devnet, http: httpx.Client,
                                                                 spelling: str) -> None:
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    header = upto_header(devnet, payer, option)
    nonce = json.loads(base64.b64decode(header))["payload"]["permit2Authorization"]["nonce"]
    assert _open(http, header, "first").status_code == 200
    payload = json.loads(base64.b64decode(header))
    payload["payload"]["permit2Authorization"]["nonce"] = spelling.format(n=nonce)
    again = _open(http, base64.b64encode(json.dumps(payload).encode()).decode(), "second")
    assert again.status_code == 402 and offer_of(again).error == "permit2_invalid_nonce"
    assert len(devnet.gateway.sessions.live_of(payer.address)) == 1


@pytest.mark.parametrize("nonce", ["0x10", " 16", "1_6", "-16", "1e3", ""])
def test_nonces_in_other_spellings_are_refused(devnet: Devnet, http: httpx.Client, nonce: str) -> None:
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    refused = _open(http, upto_header(devnet, payer, option, nonce=nonce))
    assert offer_of(refused).error == "invalid_payload"


# ---- 4. a revoked allowance ends the session ---------------------------------------------------------


def test_revoking_the_allowance_stops_the_session(devnet: Devnet, http: httpx.Client) -> None:
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    before = balance(devnet, payer.address)
    session_id = _open(http, upto_header(devnet, payer, option)).headers["x-upto-session"]
    assert _on_session(http, session_id, "one").status_code == 200
    payer.deployer.transact(devnet.gateway.contracts.opg_token, "OPGToken", "approve", PERMIT2_ADDRESS, 0)
    refused = _on_session(http, session_id, "two")
    assert refused.status_code == 402
    session = devnet.gateway.sessions.get(session_id)
    assert session is not None and session.done.wait(10) and session.requests == 2
    assert session.state == "failed"  # nothing it can take: served two, the payer revoked
    assert balance(devnet, payer.address) == before


def test_shrinking_the_allowance_settles_what_is_covered_at_once(devnet: Devnet, http: httpx.Client) -> None:
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    before = balance(devnet, payer.address)
    session_id = _open(http, upto_header(devnet, payer, option)).headers["x-upto-session"]
    for i in range(2):
        assert _on_session(http, session_id, f"r{i}").status_code == 200
    payer.deployer.transact(devnet.gateway.contracts.opg_token, "OPGToken", "approve", PERMIT2_ADDRESS, 3 * PRICE)
    assert _on_session(http, session_id, "after").status_code == 402
    session = devnet.gateway.sessions.get(session_id)
    assert session is not None and session.done.wait(10)
    assert session.state == "settled" and session.closed_because == "coverage reduced"
    assert balance(devnet, payer.address) == before - 3 * PRICE  # all three served, all paid


# ---- 5. property: served == paid ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_wallets_are_never_served_more_than_they_pay(devnet: Devnet, seed: int) -> None:
    rng = random.Random(seed)
    cap = 20 * PRICE  # the gateway's default upto cap for these requests
    wallets = [new_payer(devnet, opg=rng.randint(cap // 2, 7 * cap // 2), approve=100 * cap) for _ in range(5)]
    before = {w.address: balance(devnet, w.address) for w in wallets}
    sessions_before = len(devnet.gateway.sessions.settlements)

    async def use(wallet: Any, scheme: str, n: int) -> int:
        client = client_for(devnet, wallet) if scheme == "upto" else devnet.new_client(wallet.account.private_key)
        served = 0

        async def one(i: int) -> int:
            try:
                if rng.random() < 0.4:
                    stream = await client.llm.achat("gpt-4o", messages(i), max_tokens=20, stream=True)
                    async for _ in stream:
                        pass
                    assert stream.result is not None and stream.result.tee_verified
                else:
                    output = await client.llm.achat("gpt-4o", messages(i), max_tokens=20)
                    assert output.tee_verified
                return PRICE
            except og.PaymentError:
                return 0

        try:
            for burst in range(2):
                served += sum(await asyncio.gather(*(one(burst * n + i) for i in range(n))))
        finally:
            await client.aclose()
        return served

    served = sum(await asyncio.gather(*(use(w, scheme, rng.randint(2, 6))
                                        for w in wallets for scheme in ("upto", "exact"))))
    devnet.gateway.flush_sessions()
    paid = sum(before[w.address] - balance(devnet, w.address) for w in wallets)
    assert served > 0
    assert paid == served  # to the wei: nothing served unpaid, nothing paid unserved
    settled = devnet.gateway.sessions.settlements[sessions_before:]
    assert len({s for s, _ in settled}) == len(settled) and len({t for _, t in settled}) == len(settled)
    for wallet in wallets:
        assert devnet.gateway.exposure.exposure(wallet.address).total == 0
    assert all(balance(devnet, w.address) >= 0 for w in wallets)
