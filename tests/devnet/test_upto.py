"""The metered `upto` scheme: Permit2 on the devnet, gateway sessions, and `payment_scheme="upto"`.

Contracts: the devnet's Permit2 (SignatureTransfer) and x402's upto proxy at their canonical
addresses, driven with payloads signed by the `x402` package's own upto client. Gateway: one upto
payment opens a session (`X-Upto-Session`), later requests are charged to it without paying, and
it settles once — one Permit2 transfer of the sum of their prices, never more than the cap.
SDK: `og.Client(..., payment_scheme="upto")` pays once, then rides the session.

Every payer here is a fresh account (funded by dev account 0, approved Permit2 as needed), so
balances and allowances are this test's alone; each test ends with the gateway's sessions settled.
Nothing here sends a transaction from the gateway's operator or facilitator accounts: their
transaction senders keep nonce counters that a transaction behind their back would invalidate.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from eth_abi import decode as abi_decode
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from x402.http.clients import x402_httpx_transport
from x402.mechanisms.evm.types import UptoPermit2Payload
from x402.mechanisms.evm.upto.permit2_utils import _build_upto_permit2_settle_args
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, SettleResponse

import opengradient as og
from opengradient.devnet.chain.deploy import PERMIT2_ADDRESS, UPTO_PERMIT2_PROXY_ADDRESS, Deployer, DeployerError
from opengradient.devnet.node import OPERATOR_ACCOUNT, Devnet
from opengradient.devnet.services.llm.completions import Delta, UpstreamError
from opengradient.devnet.services.llm.settlement import SettlementRecord
from opengradient.devnet.services.llm.upstream import UpstreamRouter
from opengradient.devnet.services.llm.upto import UptoSession, UptoSessions
from tests.payers import (
    CHAT,
    COMPLETIONS,
    OPG,
    PRICE,
    Payer,
    Recorder,
    balance,
    chat_body,
    client_for,
    header_json,
    messages,
    new_payer,
    offer_of,
    sign_permit,
    transfers,
    tx_receipt,
    upto_header,
    upto_option,
    x402_upto_client,
)

# ----------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def settle_everything(devnet: Devnet) -> Iterator[None]:
    """Leave no open session (and no queued record) behind for the tests that follow."""
    yield
    devnet.gateway.flush_sessions()
    devnet.gateway.settlements.wait_idle()


@pytest.fixture(scope="module")
def http(devnet: Devnet) -> Iterator[httpx.Client]:
    with httpx.Client(transport=devnet._bridge.transport, base_url=devnet.url, timeout=30) as client:
        yield client


# ----------------------------------------------------------------------------------------------
# contracts
# ----------------------------------------------------------------------------------------------


def test_permit2_domain_separator_is_the_eip712_one(devnet: Devnet) -> None:
    deployer = Deployer(devnet.payments_chain, devnet.accounts[0])
    separator = deployer.call(PERMIT2_ADDRESS, "Permit2", "DOMAIN_SEPARATOR")
    typed = encode_typed_data(full_message={
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}], "Empty": []},
        "primaryType": "Empty", "domain": {"name": "Permit2", "chainId": devnet.payments_chain.chain_id,
                                           "verifyingContract": PERMIT2_ADDRESS}, "message": {}})
    assert separator == typed.header
    assert deployer.call(UPTO_PERMIT2_PROXY_ADDRESS, "X402UptoPermit2Proxy", "PERMIT2") == PERMIT2_ADDRESS
    assert deployer.call(UPTO_PERMIT2_PROXY_ADDRESS, "X402UptoPermit2Proxy", "WITNESS_TYPE_STRING") == (
        "Witness witness)TokenPermissions(address token,uint256 amount)"
        "Witness(address to,address facilitator,uint256 validAfter)")
    assert devnet.gateway.contracts.permit2 == PERMIT2_ADDRESS
    assert devnet.gateway.contracts.upto_proxy == UPTO_PERMIT2_PROXY_ADDRESS


def _settle_args(net: Devnet, payer: Payer, cap: int, amount: int, *, facilitator: str,
                 timeout: int = 600) -> tuple[Any, ...]:
    option = PaymentRequirements(scheme="upto", network=net.network.payments.network,
                                 asset=net.gateway.contracts.opg_token, amount=str(cap),
                                 pay_to=net.accounts[OPERATOR_ACCOUNT].address, max_timeout_seconds=timeout,
                                 extra={"facilitatorAddress": facilitator})
    payload = x402_upto_client(net, payer).create_payment_payload(PaymentRequired(accepts=[option]))
    return _build_upto_permit2_settle_args(UptoPermit2Payload.from_dict(payload.payload), amount)


def test_proxy_settles_up_to_the_cap_once(devnet: Devnet) -> None:
    payer = new_payer(devnet)
    facilitator = Deployer(devnet.payments_chain, new_payer(devnet, opg=0, approve=None).account)  # the witness's
    pay_to = devnet.accounts[OPERATOR_ACCOUNT].address
    before, before_to = balance(devnet, payer.address), balance(devnet, pay_to)
    args = _settle_args(devnet, payer, cap=1000, amount=999, facilitator=facilitator.address)
    receipt = facilitator.transact(UPTO_PERMIT2_PROXY_ADDRESS, "X402UptoPermit2Proxy", "settle", *args)
    assert transfers(devnet, receipt["transactionHash"]) == [(payer.address, pay_to, 999)]
    assert balance(devnet, payer.address) == before - 999 and balance(devnet, pay_to) == before_to + 999
    nonce = args[0][1]
    bitmap = Deployer(devnet.payments_chain, devnet.accounts[0]).call(
        PERMIT2_ADDRESS, "Permit2", "nonceBitmap", payer.address, nonce >> 8)
    assert bitmap >> (nonce & 0xFF) & 1 == 1
    # Permit2's allowance shrank by what moved
    assert Deployer(devnet.payments_chain, devnet.accounts[0]).call(
        devnet.gateway.contracts.opg_token, "OPGToken", "allowance", payer.address, PERMIT2_ADDRESS) == 5 * OPG - 999
    with pytest.raises(DeployerError) as replay:  # the same signature never settles twice
        facilitator.transact(UPTO_PERMIT2_PROXY_ADDRESS, "X402UptoPermit2Proxy", "settle", *args)
    assert replay.value.data is not None
    assert replay.value.data.startswith("0x" + keccak(text="InvalidNonce()")[:4].hex())


@pytest.mark.parametrize(("case", "error"), [
    ("over_cap", "AmountExceedsPermitted()"),
    ("other_sender", "UnauthorizedFacilitator()"),
    ("tampered_witness", "InvalidSigner()"),
    ("expired", "SignatureExpired(uint256)"),
    ("burnt_nonce", "InvalidNonce()"),
])
def test_proxy_refusals(devnet: Devnet, case: str, error: str) -> None:
    payer = new_payer(devnet)
    facilitator = new_payer(devnet, opg=0, approve=None)
    sender = new_payer(devnet, opg=0, approve=None) if case == "other_sender" else facilitator
    permit, amount, owner, witness, signature = _settle_args(
        devnet, payer, cap=1000, amount=1001 if case == "over_cap" else 10, facilitator=facilitator.address)
    if case == "tampered_witness":
        witness = (devnet.accounts[1].address, witness[1], witness[2])
    if case == "expired":
        permit = (permit[0], permit[1], int(time.time()) - 10)
    if case == "burnt_nonce":
        payer.deployer.transact(PERMIT2_ADDRESS, "Permit2", "invalidateUnorderedNonces", permit[1] >> 8,
                                1 << (permit[1] & 0xFF))
    before = balance(devnet, payer.address)
    with pytest.raises(DeployerError) as refused:
        Deployer(devnet.payments_chain, sender.account).transact(
            UPTO_PERMIT2_PROXY_ADDRESS, "X402UptoPermit2Proxy", "settle", permit, amount, owner, witness, signature)
    assert refused.value.data is not None and refused.value.data[2:10] == keccak(text=error)[:4].hex()
    assert balance(devnet, payer.address) == before


# ----------------------------------------------------------------------------------------------
# the SDK with payment_scheme="upto"
# ----------------------------------------------------------------------------------------------


def test_upto_client_pays_once_and_the_gateway_settles_once(devnet: Devnet) -> None:
    payer = new_payer(devnet)
    client = client_for(devnet, payer)
    recorder = Recorder(client)
    before = balance(devnet, payer.address)
    n = 6
    try:
        outputs = [client.llm.chat(og.TEE_LLM.GPT_4O, messages(i), max_tokens=20) for i in range(n)]
    finally:
        recorder.close()
    # only the first request carried a payment (after the cold 402); the others sent the session
    assert recorder.sent[0] == (CHAT, False, False) and recorder.sent[1] == (CHAT, True, False)
    assert recorder.sent[2:] == [(CHAT, False, True)] * (n - 1)
    sessions = {o.upto_session for o in outputs}
    assert len(sessions) == 1 and None not in sessions
    for output in outputs:
        assert isinstance(output, og.TextGenerationOutput) and output.tee_verified
        assert output.payment_hash is None and output.amount_paid == PRICE
    assert balance(devnet, payer.address) == before  # nothing on chain yet
    [session_id] = sessions
    assert session_id is not None
    assert devnet.gateway.sessions.get(session_id).state == "open"  # type: ignore[union-attr]

    [closed] = client.llm.close_sessions()
    assert closed["session"] == session_id and closed["status"] == "settled"
    assert closed["requests"] == n and int(closed["amount"]) == n * PRICE <= int(closed["cap"])
    tx = closed["transaction"]
    assert tx_receipt(devnet, tx)["status"] == "0x1"
    assert to_checksum_address(tx_receipt(devnet, tx)["from"]) == devnet.gateway.facilitator.address
    assert tx_receipt(devnet, tx)["to"].lower() == UPTO_PERMIT2_PROXY_ADDRESS.lower()
    # one settlement transaction moved exactly the sum of the prices
    assert transfers(devnet, tx) == [(payer.address, devnet.gateway.pay_to, n * PRICE)]
    assert balance(devnet, payer.address) == before - n * PRICE
    assert [t for s, t in devnet.gateway.sessions.settlements if s == session_id] == [tx]
    # closing again settles nothing more
    assert client.llm.close_sessions() == []
    status = httpx.Client(transport=devnet._bridge.transport, base_url=devnet.url).get(f"/upto/sessions/{session_id}")
    assert status.json()["status"] == "settled" and status.json()["transaction"] == tx
    # the requests' OGSettlement records name the session's settlement transaction
    devnet.gateway.settlements.wait_idle()
    assert balance(devnet, payer.address) == before - n * PRICE


def test_a_settled_session_makes_the_client_pay_afresh(devnet: Devnet, monkeypatch: pytest.MonkeyPatch) -> None:
    payer = new_payer(devnet)
    client = client_for(devnet, payer)
    first = client.llm.chat("gpt-4o", messages(1), max_tokens=20)
    monkeypatch.setattr(devnet.gateway.sessions, "idle_seconds", 0.2)
    with devnet.gateway.sessions._cond:
        devnet.gateway.sessions._cond.notify_all()  # re-evaluate the idle timers
    deadline = time.monotonic() + 10
    session = devnet.gateway.sessions.get(first.upto_session or "")
    assert session is not None
    assert session.done.wait(10), "the idle session was not settled"
    assert time.monotonic() < deadline and session.state == "settled" and session.closed_because == "idle"
    assert transfers(devnet, session.transaction) == [(payer.address, devnet.gateway.pay_to, PRICE)]
    recorder = Recorder(client)
    try:
        second = client.llm.chat("gpt-4o", messages(2), max_tokens=20)
    finally:
        recorder.close()
    # the settled session got a 402; the client paid afresh and opened a new session
    assert recorder.sent == [(CHAT, False, True), (CHAT, True, False)]
    assert second.upto_session not in (None, first.upto_session) and second.tee_verified


def test_exceeding_the_cap_settles_the_session_and_pays_afresh(devnet: Devnet,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devnet.gateway, "upto_session_cap", 3 * PRICE)
    payer = new_payer(devnet)
    client = client_for(devnet, payer)
    before = balance(devnet, payer.address)
    recorder = Recorder(client)
    try:
        outputs = [client.llm.chat("gpt-4o", messages(i), max_tokens=20) for i in range(5)]
    finally:
        recorder.close()
    first, second = outputs[0].upto_session, outputs[3].upto_session
    assert [o.upto_session for o in outputs] == [first] * 3 + [second] * 2 and first != second
    # request 4 found the cap used up: the client knew what remained and paid afresh up front
    paid = [i for i, (_, is_paid, _) in enumerate(recorder.sent) if is_paid]
    assert len(paid) == 2
    session = devnet.gateway.sessions.get(first or "")
    # used up: the gateway settled it at once (nothing fits in what remains)
    assert session is not None and session.done.wait(10) and session.closed_because == "cap used up"
    assert session.state == "settled" and session.charged == session.cap == 3 * PRICE
    assert transfers(devnet, session.transaction) == [(payer.address, devnet.gateway.pay_to, 3 * PRICE)]
    devnet.gateway.flush_sessions()
    assert balance(devnet, payer.address) == before - 5 * PRICE


def test_a_session_over_its_cap_is_refused_with_a_402(devnet: Devnet, http: httpx.Client,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devnet.gateway, "upto_session_cap", 5 * PRICE // 2)  # two and a half requests
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    opened = http.post(CHAT, json=chat_body("one"), headers={"PAYMENT-SIGNATURE": upto_header(devnet, payer, option)})
    assert opened.status_code == 200, opened.text
    session_id = opened.headers["x-upto-session"]
    receipt = header_json(opened, "PAYMENT-RESPONSE")
    assert receipt == {"success": True, "transaction": "", "network": devnet.gateway.network,
                       "payer": payer.address, "amount": str(PRICE), "price": str(PRICE), "session": session_id,
                       "sessionStatus": "open", "cap": str(5 * PRICE // 2), "remaining": str(3 * PRICE // 2)}
    second = http.post(CHAT, json=chat_body("two"), headers={"X-Upto-Session": session_id})
    assert second.status_code == 200 and header_json(second, "PAYMENT-RESPONSE")["remaining"] == str(PRICE // 2)
    third = http.post(CHAT, json=chat_body("three"), headers={"X-Upto-Session": session_id})
    assert offer_of(third).error == "upto_session_cap_exhausted"
    session = devnet.gateway.sessions.get(session_id)
    assert session is not None and session.done.wait(10) and session.charged == 2 * PRICE
    again = http.post(CHAT, json=chat_body("four"), headers={"X-Upto-Session": session_id})
    assert offer_of(again).error == "upto_session_cap_exhausted"  # settled: never charged again
    assert len([s for s, _ in devnet.gateway.sessions.settlements if s == session_id]) == 1


async def test_async_client_streams_and_concurrent_calls_share_the_session(devnet: Devnet) -> None:
    payer = new_payer(devnet)
    client = client_for(devnet, payer)
    first = await client.llm.achat("gpt-4o", messages(0), max_tokens=20)
    stream = await client.llm.achat("gpt-4o", messages(1), max_tokens=20, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert stream.result is not None and stream.result.tee_verified and text
    assert stream.result.upto_session == first.upto_session and stream.result.amount_paid == PRICE
    results = await asyncio.gather(*(client.llm.achat("gpt-4o", messages(i), max_tokens=20) for i in range(2, 14)))
    assert all(r.tee_verified for r in results)
    sessions = {r.upto_session for r in results} | {first.upto_session}
    closed = await client.llm.aclose_sessions()
    settled = [devnet.gateway.sessions.get(s or "") for s in sessions]
    assert all(s is not None and s.done.wait(10) and s.state == "settled" for s in settled)
    total = sum(s.charged for s in settled if s is not None)
    assert total == 14 * PRICE  # every request charged once, across however many sessions
    assert all(s.charged <= s.cap for s in settled if s is not None)
    assert {c["session"] for c in closed} <= sessions
    await client.aclose()


async def test_sessions_opened_by_a_concurrent_burst_are_all_used(devnet: Devnet,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devnet.gateway, "upto_session_cap", 3 * PRICE)
    payer = new_payer(devnet)
    client = client_for(devnet, payer)
    paid: list[bool] = []
    transport = client._http.async_._transport
    original = transport.handle_async_request

    async def counting(request: httpx.Request) -> httpx.Response:
        if request.url.path == CHAT:
            paid.append("payment-signature" in request.headers)
        return await original(request)

    transport.handle_async_request = counting  # type: ignore[method-assign]
    try:
        first = await client.llm.achat("gpt-4o", messages(0), max_tokens=20)  # a session with 2 requests left
        burst = await asyncio.gather(*(client.llm.achat("gpt-4o", messages(i), max_tokens=20) for i in range(8)))
        opened = {r.upto_session for r in burst}
        paid.clear()
        after = [await client.llm.achat("gpt-4o", messages(i), max_tokens=20) for i in range(6)]
    finally:
        transport.handle_async_request = original  # type: ignore[method-assign]
    # the burst: 2 fitted the open session, 6 paid and opened one each; the 6 calls after it were
    # served by those sessions' remaining caps, paying nothing
    assert len(opened) == 7
    assert paid == [False] * 6 and {r.upto_session for r in after} <= opened
    devnet.gateway.flush_sessions()
    settled = [devnet.gateway.sessions.get(i or "") for i in opened | {first.upto_session}]
    assert all(s is not None and s.state == "settled" and s.charged <= s.cap for s in settled)
    assert sum(s.charged for s in settled if s is not None) == 15 * PRICE
    await client.aclose()


def test_completion_route_has_its_own_session(devnet: Devnet) -> None:
    payer = new_payer(devnet)
    client = client_for(devnet, payer)
    chat = client.llm.chat("gpt-4o", messages(0), max_tokens=20)
    completion = client.llm.completion("gpt-4o", "Say hi", max_tokens=20)
    assert chat.upto_session and completion.upto_session and chat.upto_session != completion.upto_session
    closed = client.llm.close_sessions()
    assert sorted(c["requests"] for c in closed) == [1, 1]


def test_upto_needs_the_permit2_allowance_first(devnet: Devnet) -> None:
    payer = new_payer(devnet, approve=None)
    client = client_for(devnet, payer)
    before = balance(devnet, payer.address)
    with pytest.raises(og.PaymentRequiredError) as caught:
        client.llm.chat("gpt-4o", messages(0), max_tokens=20)
    assert caught.value.reason == "permit2_allowance_required" and "ensure_opg_approval" in str(caught.value)
    approval = client.llm.ensure_opg_approval(opg_amount=1)
    assert approval.transaction_hash is not None
    result = client.llm.chat("gpt-4o", messages(0), max_tokens=20)
    assert result.upto_session and result.tee_verified
    client.llm.close_sessions()
    assert balance(devnet, payer.address) == before - PRICE


def test_an_upto_cap_above_the_spend_cap_falls_back_to_exact(devnet: Devnet) -> None:
    payer = new_payer(devnet)
    client = client_for(devnet, payer, max_payment_per_request=2 * PRICE)  # below the 20x cap
    result = client.llm.chat("gpt-4o", messages(0), max_tokens=20)
    assert result.upto_session is None and result.payment_hash and result.amount_paid == PRICE


def test_exact_clients_are_unchanged(devnet: Devnet) -> None:
    payer = new_payer(devnet, approve=None)
    client = devnet.new_client(payer.account.private_key)
    assert client.llm.payment_scheme == "exact"
    result = client.llm.chat("gpt-4o", messages(0), max_tokens=20)
    assert result.upto_session is None and result.payment_hash and result.amount_paid == PRICE
    assert transfers(devnet, result.payment_hash) == [(payer.address, devnet.gateway.pay_to, PRICE)]
    with pytest.raises(og.ConfigurationError):
        devnet.new_client(payer.account.private_key, payment_scheme="metered")


# ----------------------------------------------------------------------------------------------
# the gateway: refusals, replays, sessions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "code"), [
    ("expired", "permit2_deadline_expired"),
    ("bad_signature", "invalid_permit2_signature"),
    ("other_facilitator", "upto_facilitator_mismatch"),
    ("other_recipient", "invalid_permit2_recipient_mismatch"),
    ("cap_changed", "permit2_amount_mismatch"),
    ("no_allowance", "permit2_allowance_required"),
    ("poor", "permit2_insufficient_balance"),
])
def test_refused_upto_payments_settle_nothing(devnet: Devnet, http: httpx.Client, case: str, code: str) -> None:
    payer = new_payer(devnet, opg=1000 if case == "poor" else 10 * OPG,
                      approve=None if case == "no_allowance" else 5 * OPG)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    if case == "expired":
        header = sign_permit(devnet, payer, option, deadline=int(time.time()) - 5)
    elif case == "bad_signature":
        header = upto_header(devnet, payer, option, nonce="12345")
    elif case == "other_facilitator":
        header = sign_permit(devnet, payer, option, deadline=int(time.time()) + 600,
                             facilitator=devnet.accounts[0].address)
    elif case == "other_recipient":
        header = upto_header(devnet, payer, option.model_copy(update={"pay_to": devnet.accounts[0].address}))
    elif case == "cap_changed":
        header = upto_header(devnet, payer, option.model_copy(update={"amount": str(int(option.amount) // 2)}))
    else:
        header = upto_header(devnet, payer, option)
    before, live = balance(devnet, payer.address), devnet.gateway.exposure.exposure(payer.address).total
    response = http.post(CHAT, json=chat_body(), headers={"PAYMENT-SIGNATURE": header})
    assert offer_of(response).error == code
    assert "x-upto-session" not in response.headers
    assert devnet.gateway.exposure.exposure(payer.address).total == live == 0
    devnet.gateway.flush_sessions()
    assert balance(devnet, payer.address) == before


def test_a_permit_opens_one_session_and_a_retry_replays(devnet: Devnet, http: httpx.Client) -> None:
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    header = upto_header(devnet, payer, option)
    first = http.post(CHAT, json=chat_body("same"), headers={"PAYMENT-SIGNATURE": header})
    retry = http.post(CHAT, json=chat_body("same"), headers={"PAYMENT-SIGNATURE": header})
    assert first.status_code == retry.status_code == 200
    assert retry.content == first.content and retry.headers["x-upto-session"] == first.headers["x-upto-session"]
    other = http.post(CHAT, json=chat_body("different"), headers={"PAYMENT-SIGNATURE": header})
    assert offer_of(other).error == "permit2_invalid_nonce"
    [session] = devnet.gateway.flush_sessions()
    assert session.requests == 1 and session.charged == PRICE  # the retry was not charged again
    # settled on chain now: presenting the permit again is refused, whatever the body
    late = http.post(CHAT, json=chat_body("same again"), headers={"PAYMENT-SIGNATURE": header})
    assert offer_of(late).error == "permit2_invalid_nonce"


def test_unknown_and_misrouted_sessions_are_402(devnet: Devnet, http: httpx.Client) -> None:
    unknown = http.post(CHAT, json=chat_body(), headers={"X-Upto-Session": "ups_nope"})
    offer = offer_of(unknown)
    assert offer.error == "upto_session_unknown" and [a.scheme for a in offer.accepts] == ["exact", "upto"]
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    opened = http.post(CHAT, json=chat_body(), headers={"PAYMENT-SIGNATURE": upto_header(devnet, payer, option)})
    session_id = opened.headers["x-upto-session"]
    body = {"model": "gpt-4o", "prompt": "Say hi", "max_tokens": 20}
    assert offer_of(http.post(COMPLETIONS, json=body, headers={"X-Upto-Session": session_id})).error == \
        "upto_session_route_mismatch"
    status = http.get(f"/upto/sessions/{session_id}").json()
    assert status["status"] == "open" and status["requests"] == 1 and status["transaction"] is None
    assert http.get("/upto/sessions/ups_nope").status_code == 404
    assert http.delete("/upto/sessions/ups_nope").status_code == 404


class _DownUpstream:
    def supports(self, model: str) -> bool:
        return True

    async def chat(self, request: dict[str, Any]) -> Any:
        raise UpstreamError("connection refused", status=None)

    complete = chat

    async def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        raise UpstreamError("connection refused")
        yield Delta()  # pragma: no cover

    stream_complete = stream_chat


def test_a_failed_model_is_not_charged_to_the_session(devnet: Devnet, http: httpx.Client,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    opened = http.post(CHAT, json=chat_body(), headers={"PAYMENT-SIGNATURE": upto_header(devnet, payer, option)})
    session_id = opened.headers["x-upto-session"]
    with monkeypatch.context() as patch:
        patch.setattr(devnet.gateway, "router", UpstreamRouter(_DownUpstream()))
        for stream in (False, True):
            failed = http.post(CHAT, json=chat_body("fails", stream=stream), headers={"X-Upto-Session": session_id})
            assert failed.status_code == 503
    assert devnet.gateway.sessions.get(session_id).charged == PRICE  # type: ignore[union-attr]
    served = http.post(CHAT, json=chat_body("works"), headers={"X-Upto-Session": session_id})
    assert served.status_code == 200 and header_json(served, "PAYMENT-RESPONSE")["amount"] == str(2 * PRICE)
    closed = http.delete(f"/upto/sessions/{session_id}").json()
    assert closed["status"] == "settled" and closed["amount"] == str(2 * PRICE) and closed["requests"] == 2


def test_other_open_sessions_count_against_allowance_and_balance(devnet: Devnet, http: httpx.Client) -> None:
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    cap = int(option.amount)
    payer = new_payer(devnet, approve=cap + cap // 2)  # covers one session's cap, not two
    first = http.post(CHAT, json=chat_body(), headers={"PAYMENT-SIGNATURE": upto_header(devnet, payer, option)})
    assert first.status_code == 200
    second = http.post(CHAT, json=chat_body(), headers={"PAYMENT-SIGNATURE": upto_header(devnet, payer, option)})
    assert offer_of(second).error == "permit2_allowance_required"
    devnet.gateway.flush_sessions()  # the first settles; the allowance left covers another cap
    third = http.post(CHAT, json=chat_body(), headers={"PAYMENT-SIGNATURE": upto_header(devnet, payer, option)})
    assert third.status_code == 200, third.text


def test_facilitator_http_settles_an_upto_payment_below_its_cap(devnet: Devnet, http: httpx.Client) -> None:
    payer = new_payer(devnet)
    option = upto_option(offer_of(http.post(CHAT, json=chat_body())))
    payload = x402_upto_client(devnet, payer).create_payment_payload(PaymentRequired(accepts=[option]))
    requirements = option.model_dump(by_alias=True)
    request = {"x402Version": 2, "paymentPayload": payload.model_dump(by_alias=True),
               "paymentRequirements": requirements}
    assert http.post("/facilitator/verify", json=request).json() == {"isValid": True, "payer": payer.address}
    before = balance(devnet, payer.address)
    charge = {**request, "paymentRequirements": {**requirements, "amount": "777"}}
    settled = http.post("/facilitator/settle", json=charge).json()
    assert settled["success"] is True and settled["amount"] == "777"
    assert transfers(devnet, settled["transaction"]) == [(payer.address, option.pay_to, 777)]
    assert balance(devnet, payer.address) == before - 777
    again = http.post("/facilitator/settle", json=charge).json()
    assert again["success"] is False and again["errorReason"] == "permit2_invalid_nonce"
    too_much = {**request, "paymentRequirements": {**requirements, "amount": str(int(option.amount) + 1)}}
    assert http.post("/facilitator/settle", json=too_much).json()["success"] is False


async def test_x402s_own_upto_client_pays_the_gateway(devnet: Devnet) -> None:
    payer = new_payer(devnet)
    before = balance(devnet, payer.address)
    transport = x402_httpx_transport(x402_upto_client(devnet, payer, sync=False), devnet._bridge.async_transport)
    async with httpx.AsyncClient(transport=transport, base_url=devnet.url, timeout=30) as client:
        response = await client.post(CHAT, json=chat_body("interop"))
    assert response.status_code == 200, response.text
    receipt = header_json(response, "PAYMENT-RESPONSE")
    assert receipt["success"] is True and receipt["sessionStatus"] == "open" and receipt["transaction"] == ""
    session = devnet.gateway.sessions.get(response.headers["x-upto-session"])
    assert session is not None and session.payer == payer.address
    devnet.gateway.flush_sessions()
    assert session.state == "settled"
    assert transfers(devnet, session.transaction) == [(payer.address, devnet.gateway.pay_to, PRICE)]
    assert balance(devnet, payer.address) == before - PRICE


def test_gateway_close_settles_open_sessions() -> None:
    """A devnet of its own: closing it settles its sessions before the chain goes away."""
    with og.devnet.start() as net:
        payer = new_payer(net)
        client = client_for(net, payer)
        outputs = [client.llm.chat("gpt-4o", messages(i), max_tokens=20) for i in range(3)]
        session = net.gateway.sessions.get(outputs[0].upto_session or "")
        assert session is not None and session.state == "open"
        before = balance(net, payer.address)
        net.gateway.close()
        assert session.state == "settled" and session.charged == 3 * PRICE
        assert balance(net, payer.address) == before - 3 * PRICE
        raw = net.payments_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [
            {"to": net.gateway.contracts.opg_token,
             "data": "0x70a08231" + bytes(12).hex() + net.gateway.pay_to[2:].lower()}, "latest"]})
        assert isinstance(raw, dict) and abi_decode(["uint256"], bytes.fromhex(raw["result"][2:]))[0] >= 3 * PRICE


# ----------------------------------------------------------------------------------------------
# the session book on its own (no chain: a fake settlement)
# ----------------------------------------------------------------------------------------------


class _Book:
    def __init__(self, **kwargs: Any) -> None:
        self.calls: list[tuple[str, int]] = []
        self.recorded: list[SettlementRecord] = []
        self.sessions = UptoSessions(self._settle, self.recorded.append, **kwargs)

    def _settle(self, session: UptoSession, amount: int) -> SettleResponse:
        self.calls.append((session.id, amount))
        return SettleResponse(success=True, transaction="0x" + f"{len(self.calls):064x}", network="eip155:1",
                              payer=session.payer, amount=str(amount))

    def open(self, *, cap: int = 100, price: int = 10, deadline_in: float = 3600) -> UptoSession:
        requirements = PaymentRequirements(scheme="upto", network="eip155:1", asset="0x" + "11" * 20,
                                           amount=str(cap), pay_to="0x" + "22" * 20, max_timeout_seconds=3600)
        payload = PaymentPayload(x402_version=2, accepted=requirements, payload={})
        return self.sessions.open(payer="0x" + "33" * 20, nonce=time.time_ns(), payload=payload,
                                  requirements=requirements, price=price, method="POST", path=CHAT,
                                  deadline=int(time.time() + deadline_in))


def test_session_book_idle_refund_and_records() -> None:
    book = _Book(idle_seconds=0.2)
    session = book.open()
    reserved, error = book.sessions.reserve(session.id, 10, "POST", CHAT)
    assert reserved is session and error is None and session.charged == 20
    book.sessions.refund(session, 10)  # the model failed: not charged
    reserved, _ = book.sessions.reserve(session.id, 15, "POST", CHAT)
    assert reserved is session
    book.sessions.commit(session)
    record = SettlementRecord(mode="private", payment_tx="", request_hash=b"\1" * 32, output_hash=b"\2" * 32,
                              payer=session.payer, amount=15)
    book.sessions.add_record(session, record)
    assert session.done.wait(5) and session.closed_because == "idle"
    assert book.calls == [(session.id, 25)] and session.requests == 2
    assert [r.payment_tx for r in book.recorded] == [session.transaction]
    book.sessions.add_record(session, record)  # a late record names the settlement at once
    assert [r.payment_tx for r in book.recorded] == [session.transaction] * 2
    assert book.sessions.reserve(session.id, 1, "POST", CHAT) == (None, "upto_session_ended")
    book.sessions.shutdown()
    assert book.calls == [(session.id, 25)]  # settled once


def test_session_book_expiry_waits_for_requests_in_flight() -> None:
    book = _Book(idle_seconds=60, expiry_margin_seconds=60)
    session = book.open(deadline_in=61.5)
    reserved, _ = book.sessions.reserve(session.id, 10, "POST", CHAT)
    assert reserved is session
    assert not session.done.wait(2.0)  # past the margin, but a request is in flight
    assert session.state == "closing" and session.closed_because == "expiring"
    assert book.sessions.reserve(session.id, 10, "POST", CHAT) == (None, "upto_session_expired")
    book.sessions.commit(session)
    assert session.done.wait(5) and book.calls == [(session.id, 20)]
    book.sessions.shutdown()


def test_session_book_never_charges_past_the_cap_under_contention() -> None:
    book = _Book(idle_seconds=60)
    session = book.open(cap=1000, price=7)
    served: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            reserved, error = book.sessions.reserve(session.id, 7, "POST", CHAT)
            if reserved is None:
                assert error in ("upto_session_cap_exhausted", "upto_session_ended")
                return
            book.sessions.commit(reserved)
            with lock:
                served.append(7)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert session.done.wait(5)
    assert book.calls == [(session.id, 7 + sum(served))] and 7 + sum(served) <= 1000
    assert 1000 - (7 + sum(served)) < 7  # filled up to what the cap allows
    book.sessions.shutdown()
