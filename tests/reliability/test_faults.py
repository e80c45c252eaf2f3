"""Faults between the SDK and the devnet: no double charge, no duplicate transaction, no hang.

A loopback proxy (tests/reliability/proxy.py) sits between the SDK and the HTTP devnet and cuts the
connection at each stage of a request: before the request reaches the gateway, after it was
forwarded (the gateway verifies and settles the payment) but before any response byte, after the
gateway answered (the answer is dropped), and mid-stream. The ground truth of what was charged is
the payments chain: OPG `Transfer` logs to the gateway's payTo, read with `eth_getLogs`.

Invariants: a retried paid request resends the very same `PAYMENT-SIGNATURE` (so the gateway's
idempotent replay answers it and it settles once); settlements never exceed the requests that
succeeded or were attempted; every wait is bounded by the client's timeout. On the Alpha chain, a
lost `eth_sendRawTransaction` answer never leads to a second transaction: the sender's nonce
advances by exactly one per inference.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import opengradient as og
from opengradient.client.llm import AsyncTextGenerationStream, TextGenerationStream
from opengradient.devnet.chain.keys import DevAccount
from opengradient.devnet.node import Devnet
from opengradient.errors import NetworkError, RequestTimeoutError
from tests.reliability.chainview import ChainView, Settlements
from tests.reliability.conftest import CLIENT_TIMEOUT
from tests.reliability.proxy import (
    CUT_AFTER,
    DROP_AFTER_FORWARD,
    DROP_REQUEST,
    DROP_RESPONSE,
    HOLD,
    PASS,
    STALL_AFTER,
    FaultProxy,
    ProxiedRequest,
    on_path,
    on_rpc,
)

pytestmark = pytest.mark.timeout(120)

CHAT = "/v1/chat/completions"
MODEL = "gpt-4o"
#: The stages at which a connection is cut before the client has any response byte.
BEFORE_FIRST_BYTE = [DROP_REQUEST, DROP_AFTER_FORWARD, DROP_RESPONSE]


def _payer(net: Devnet) -> DevAccount:
    return net.accounts[3]


def llm_client(net: Devnet, proxy: FaultProxy, *, max_retries: int = 2,
               timeout: float = CLIENT_TIMEOUT) -> og.Client:
    """A client whose LLM traffic goes through `proxy` (chain reads go straight to the devnet)."""
    return net.new_client(_payer(net).private_key, og_llm_server_url=proxy.url,
                          og_llm_streaming_server_url=proxy.url, timeout=timeout, max_retries=max_retries)


def warm(client: og.Client, proxy: FaultProxy, max_tokens: int = 24) -> None:
    """One clean call: the offer for `max_tokens` is cached and the enclave key loaded, so the next
    call with the same budget is one paid POST."""
    client.llm.chat(MODEL, [{"role": "user", "content": "warm up"}], max_tokens=max_tokens)
    proxy.reset()


def paid_attempts(proxy: FaultProxy) -> list[ProxiedRequest]:
    return proxy.seen(on_path(CHAT, paid=True))


def messages(tag: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Tell me about reliability ({tag})."}]


# --------------------------------------------------------------------------------------------------
# Paid chat: a cut before the first response byte is retried with the same payment
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", BEFORE_FIRST_BYTE)
def test_chat_cut_is_retried_with_the_same_payment_and_settles_once(devnet_http: Devnet, proxy: FaultProxy,
                                                                    stage: str) -> None:
    client = llm_client(devnet_http, proxy)
    warm(client, proxy)
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT, paid=True), stage)

    result = client.llm.chat(MODEL, messages(stage), max_tokens=24)

    assert isinstance(result, og.TextGenerationOutput) and result.tee_verified
    attempts = paid_attempts(proxy)
    assert [a.action for a in attempts] == [stage, PASS]
    assert attempts[0].header("payment-signature") == attempts[1].header("payment-signature")
    proxy.drain()
    transfers = ledger.since_start(_payer(devnet_http).address)
    assert [t.tx_hash for t in transfers] == [result.payment_hash]
    assert transfers[0].value == result.amount_paid
    client.close()


@pytest.mark.parametrize("stage", BEFORE_FIRST_BYTE)
async def test_async_chat_cut_is_retried_with_the_same_payment_and_settles_once(
        devnet_http: Devnet, proxy: FaultProxy, stage: str) -> None:
    client = llm_client(devnet_http, proxy)
    await client.llm.achat(MODEL, [{"role": "user", "content": "warm up"}], max_tokens=24)
    proxy.reset()
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT, paid=True), stage)

    result = await client.llm.achat(MODEL, messages("async " + stage), max_tokens=24)

    assert isinstance(result, og.TextGenerationOutput) and result.tee_verified
    attempts = paid_attempts(proxy)
    assert [a.action for a in attempts] == [stage, PASS]
    assert len({a.header("payment-signature") for a in attempts}) == 1
    await asyncio.to_thread(proxy.drain)
    assert [t.tx_hash for t in ledger.since_start(_payer(devnet_http).address)] == [result.payment_hash]
    await client.aclose()


def test_cold_client_survives_a_lost_402_and_pays_once(devnet_http: Devnet, proxy: FaultProxy) -> None:
    client = llm_client(devnet_http, proxy)  # cold: no cached offer, so the first POST is unpaid
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT, paid=False), DROP_RESPONSE)

    result = client.llm.chat(MODEL, messages("cold"), max_tokens=24)

    assert isinstance(result, og.TextGenerationOutput) and result.tee_verified
    assert [(a.action, a.header("payment-signature") is None) for a in proxy.seen(on_path(CHAT))] == [
        (DROP_RESPONSE, True), (PASS, True), (PASS, False)]
    assert [t.tx_hash for t in ledger.since_start(_payer(devnet_http).address)] == [result.payment_hash]
    client.close()


@pytest.mark.parametrize("stage", BEFORE_FIRST_BYTE)
def test_persistent_cut_gives_up_with_a_network_error_and_charges_at_most_once(
        devnet_http: Devnet, proxy: FaultProxy, stage: str) -> None:
    client = llm_client(devnet_http, proxy, max_retries=2)
    warm(client, proxy)
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT, paid=True), stage, times=None)

    with pytest.raises(NetworkError):
        client.llm.chat(MODEL, messages("persistent " + stage), max_tokens=24)

    attempts = paid_attempts(proxy)
    assert len(attempts) == 3  # max_retries + 1, then a typed error
    assert len({a.header("payment-signature") for a in attempts}) == 1  # one authorization throughout
    proxy.drain()
    settled = ledger.since_start(_payer(devnet_http).address)
    # The request never reached the gateway: nothing charged. Otherwise it was charged once, however
    # many times the lost answer was asked for again.
    assert len(settled) == (0 if stage == DROP_REQUEST else 1)
    # The client is still usable, and the next call pays a fresh authorization once.
    proxy.reset()
    again = client.llm.chat(MODEL, messages("after " + stage), max_tokens=24)
    assert isinstance(again, og.TextGenerationOutput)
    assert len(ledger.since_start(_payer(devnet_http).address)) == len(settled) + 1
    client.close()


# --------------------------------------------------------------------------------------------------
# Never hangs: a silent server costs the client's timeout, not forever
# --------------------------------------------------------------------------------------------------


def test_black_hole_times_out_and_charges_nothing(devnet_http: Devnet, proxy: FaultProxy) -> None:
    client = llm_client(devnet_http, proxy, max_retries=1)
    warm(client, proxy)
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT), HOLD, times=None)

    with pytest.raises(RequestTimeoutError):
        client.llm.chat(MODEL, messages("black hole"), max_tokens=24)

    assert [a.action for a in paid_attempts(proxy)] == [HOLD, HOLD]
    assert ledger.since_start(_payer(devnet_http).address) == []
    client.close()


def test_stream_that_stalls_mid_way_times_out_and_charges_once(devnet_http: Devnet, proxy: FaultProxy) -> None:
    client = llm_client(devnet_http, proxy, max_retries=0)
    warm(client, proxy, 40)
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT, paid=True), STALL_AFTER, cut_bytes=200)

    stream = client.llm.chat(MODEL, messages("stall"), max_tokens=40, stream=True)
    assert isinstance(stream, TextGenerationStream)
    with pytest.raises(RequestTimeoutError):
        list(stream)
    assert stream.result is None
    assert len(ledger.since_start(_payer(devnet_http).address)) == 1  # settled before the first byte
    client.close()


# --------------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------------


def _stream_text(stream: TextGenerationStream) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream)


@pytest.mark.parametrize("stage", BEFORE_FIRST_BYTE)
def test_stream_cut_before_the_first_byte_is_retried_and_replayed_whole(
        devnet_http: Devnet, proxy: FaultProxy, stage: str) -> None:
    client = llm_client(devnet_http, proxy)
    warm(client, proxy, 40)
    reference = client.llm.chat(MODEL, messages("stream " + stage), max_tokens=40)
    assert isinstance(reference, og.TextGenerationOutput) and reference.chat_output is not None
    proxy.reset()
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT, paid=True), stage)

    stream = client.llm.chat(MODEL, messages("stream " + stage), max_tokens=40, stream=True)
    assert isinstance(stream, TextGenerationStream)
    text = _stream_text(stream)

    assert text == reference.chat_output["content"]
    assert stream.result is not None and stream.result.tee_verified
    attempts = paid_attempts(proxy)
    assert [a.action for a in attempts] == [stage, PASS]
    assert len({a.header("payment-signature") for a in attempts}) == 1
    proxy.drain()
    assert [t.tx_hash for t in ledger.since_start(_payer(devnet_http).address)] == [stream.result.payment_hash]
    client.close()


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9])
def test_stream_cut_mid_way_is_a_typed_error_and_charges_once(devnet_http: Devnet, proxy: FaultProxy,
                                                              fraction: float) -> None:
    client = llm_client(devnet_http, proxy)
    warm(client, proxy, 40)
    clean = client.llm.chat(MODEL, messages(f"mid {fraction}"), max_tokens=40, stream=True)
    assert isinstance(clean, TextGenerationStream)
    list(clean)
    body_bytes = paid_attempts(proxy)[-1].response_bytes
    assert body_bytes > 100
    proxy.reset()
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT, paid=True), CUT_AFTER, cut_bytes=int(body_bytes * fraction))

    stream = client.llm.chat(MODEL, messages(f"mid {fraction} again"), max_tokens=40, stream=True)
    assert isinstance(stream, TextGenerationStream)
    try:  # the SDK reopens the stream with the same payment; either way nothing unverified is handed out
        list(stream)
    except og.OpenGradientError:
        assert stream.result is None
    else:
        assert stream.result is not None and stream.result.tee_verified
    proxy.drain()
    assert len(ledger.since_start(_payer(devnet_http).address)) == 1  # paid once, never twice
    client.close()


def test_stream_cut_mid_way_resumes_with_the_same_payment(devnet_http: Devnet, proxy: FaultProxy) -> None:
    client = llm_client(devnet_http, proxy)
    warm(client, proxy, 40)
    reference = client.llm.chat(MODEL, messages("resume"), max_tokens=40)
    assert isinstance(reference, og.TextGenerationOutput) and reference.chat_output is not None
    proxy.reset()
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT, paid=True), CUT_AFTER, cut_bytes=400)

    stream = client.llm.chat(MODEL, messages("resume"), max_tokens=40, stream=True)
    assert isinstance(stream, TextGenerationStream)
    text = _stream_text(stream)

    assert text == reference.chat_output["content"]
    assert stream.result is not None and stream.result.tee_verified
    assert len({a.header("payment-signature") for a in paid_attempts(proxy)}) == 1
    assert len(ledger.since_start(_payer(devnet_http).address)) == 1
    client.close()


async def test_async_stream_cut_mid_way_charges_once(devnet_http: Devnet, proxy: FaultProxy) -> None:
    client = llm_client(devnet_http, proxy)
    await client.llm.achat(MODEL, [{"role": "user", "content": "warm up"}], max_tokens=40)
    proxy.reset()
    ledger = Settlements(devnet_http)
    proxy.add(on_path(CHAT, paid=True), CUT_AFTER, cut_bytes=300)

    stream = await client.llm.achat(MODEL, messages("async mid"), max_tokens=40, stream=True)
    assert isinstance(stream, AsyncTextGenerationStream)
    try:  # reopened with the same payment; either way nothing unverified is handed out
        async for _ in stream:
            pass
    except og.OpenGradientError:
        assert stream.result is None
    else:
        assert stream.result is not None and stream.result.tee_verified
    await asyncio.to_thread(proxy.drain)
    assert len(ledger.since_start(_payer(devnet_http).address)) == 1
    await client.aclose()


# --------------------------------------------------------------------------------------------------
# alpha.infer over JSON-RPC: a lost eth_sendRawTransaction answer never makes a second transaction
# --------------------------------------------------------------------------------------------------


def alpha_client(net: Devnet, proxy: FaultProxy, account: DevAccount, *, max_retries: int = 2) -> og.Client:
    return net.new_client(account.private_key, rpc_url=f"{proxy.url}/rpc/alpha", timeout=CLIENT_TIMEOUT,
                          max_retries=max_retries)


@pytest.mark.parametrize("times", [1, None], ids=["once", "always"])
@pytest.mark.parametrize("stage", BEFORE_FIRST_BYTE)
def test_infer_send_cut_makes_no_duplicate_transaction(devnet_http: Devnet, proxy: FaultProxy, stage: str,
                                                       times: int | None) -> None:
    account = devnet_http.accounts[6]
    model = devnet_http.model("price-regression")
    view = ChainView(devnet_http, "alpha")
    client = alpha_client(devnet_http, proxy, account)
    before = view.nonce(account.address)
    proxy.add(on_rpc("eth_sendRawTransaction"), stage, times=times)

    if stage == DROP_REQUEST and times is None:  # no send ever reaches the node: a typed error, nothing mined
        with pytest.raises(NetworkError):
            client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)
        proxy.drain()
        assert view.nonce(account.address) == before
        sends = proxy.seen(on_rpc("eth_sendRawTransaction"))
        assert len(sends) == 3 and len({_raw_tx(s) for s in sends}) == 1  # the same signed bytes each time
        client.close()
        return

    result = client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)

    proxy.drain()
    assert view.nonce(account.address) == before + 1
    tx = view.call("eth_getTransactionByHash", result.transaction_hash)
    assert int(tx["nonce"], 16) == before
    raws = {_raw_tx(s) for s in proxy.seen(on_rpc("eth_sendRawTransaction"))}
    assert len(raws) == 1  # a resend is the same signed transaction, never a re-signed one
    assert result.proof is not None and result.proof.verify(client)
    client.close()


def _raw_tx(request: ProxiedRequest) -> str:
    import json

    return str(json.loads(request.body)["params"][0])


@pytest.mark.parametrize("method", ["eth_estimateGas", "eth_getTransactionCount", "eth_getTransactionReceipt"])
def test_infer_retries_lost_reads(devnet_http: Devnet, proxy: FaultProxy, method: str) -> None:
    account = devnet_http.accounts[6]
    model = devnet_http.model("price-regression")
    view = ChainView(devnet_http, "alpha")
    client = alpha_client(devnet_http, proxy, account)
    before = view.nonce(account.address)
    proxy.add(on_rpc(method), DROP_RESPONSE, times=2)

    result = client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)

    assert result.transaction_hash
    assert view.nonce(account.address) == before + 1
    client.close()


def test_infer_error_after_the_send_names_the_transaction(devnet_http: Devnet, proxy: FaultProxy) -> None:
    account = devnet_http.accounts[6]
    model = devnet_http.model("price-regression")
    view = ChainView(devnet_http, "alpha")
    client = alpha_client(devnet_http, proxy, account, max_retries=1)
    before = view.nonce(account.address)
    proxy.add(on_rpc("eth_getTransactionReceipt"), DROP_RESPONSE, times=None)

    with pytest.raises(NetworkError) as caught:
        client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)

    proxy.drain()
    assert view.nonce(account.address) == before + 1  # it was mined
    sent = _raw_tx(proxy.seen(on_rpc("eth_sendRawTransaction"))[0])
    from eth_utils import keccak

    tx_hash = "0x" + keccak(bytes.fromhex(sent[2:])).hex()
    assert tx_hash in str(caught.value) or getattr(caught.value, "transaction_hash", None) == tx_hash
    client.close()


def test_infer_without_retries_does_not_misreport_a_mined_send(devnet_http: Devnet, proxy: FaultProxy) -> None:
    account = devnet_http.accounts[6]
    model = devnet_http.model("price-regression")
    view = ChainView(devnet_http, "alpha")
    client = alpha_client(devnet_http, proxy, account, max_retries=0)
    before = view.nonce(account.address)
    proxy.add(on_rpc("eth_sendRawTransaction"), DROP_RESPONSE)

    try:
        result = client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)
    except NetworkError as exc:
        proxy.drain()
        sent = _raw_tx(proxy.seen(on_rpc("eth_sendRawTransaction"))[0])
        from eth_utils import keccak

        assert view.nonce(account.address) == before + 1  # it was mined
        assert "0x" + keccak(bytes.fromhex(sent[2:])).hex() in str(exc), "the error hides the mined transaction"
    else:
        assert view.nonce(account.address) == before + 1 and result.transaction_hash
    finally:
        client.close()


def test_infer_against_a_silent_node_times_out_without_sending_twice(devnet_http: Devnet,
                                                                     proxy: FaultProxy) -> None:
    account = devnet_http.accounts[6]
    model = devnet_http.model("price-regression")
    view = ChainView(devnet_http, "alpha")
    client = alpha_client(devnet_http, proxy, account, max_retries=1)
    before = view.nonce(account.address)
    proxy.add(on_rpc("eth_sendRawTransaction"), HOLD, times=None)

    with pytest.raises(NetworkError):  # RequestTimeoutError is a NetworkError
        client.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)

    assert view.nonce(account.address) == before
    sends = proxy.seen(on_rpc("eth_sendRawTransaction"))
    assert len(sends) == 2 and len({_raw_tx(s) for s in sends}) == 1
    client.close()


async def test_concurrent_async_infers_with_lost_sends_use_consecutive_nonces(devnet_http: Devnet,
                                                                               proxy: FaultProxy) -> None:
    account = devnet_http.accounts[7]
    model = devnet_http.model("price-regression")
    view = ChainView(devnet_http, "alpha")
    client = alpha_client(devnet_http, proxy, account)
    before = view.nonce(account.address)
    proxy.add(on_rpc("eth_sendRawTransaction"), DROP_RESPONSE, times=2)
    proxy.add(on_rpc("eth_sendRawTransaction"), DROP_REQUEST, times=1)

    results = await asyncio.gather(*(client.alpha.ainfer(model.cid, og.InferenceMode.VANILLA, model.example_input)
                                     for _ in range(4)))

    await asyncio.to_thread(proxy.drain)
    assert view.nonce(account.address) == before + 4
    nonces = sorted(int(view.call("eth_getTransactionByHash", r.transaction_hash)["nonce"], 16) for r in results)
    assert nonces == list(range(before, before + 4))
    await client.aclose()


def test_opg_approval_send_cut_makes_no_duplicate_transaction(devnet_http: Devnet, proxy: FaultProxy) -> None:
    account = devnet_http.accounts[5]
    network = dataclasses.replace(devnet_http.network, payments=dataclasses.replace(
        devnet_http.network.payments, rpc_url=f"{proxy.url}/rpc/payments"))
    client = og.Client(account.private_key, network=network, timeout=CLIENT_TIMEOUT)
    view = ChainView(devnet_http, "payments")
    before = view.nonce(account.address)
    current = client.llm.ensure_opg_approval(0).allowance_after
    proxy.add(on_rpc("eth_sendRawTransaction"), DROP_RESPONSE)

    approval = client.llm.ensure_opg_approval(str_opg(current + 10**18))

    proxy.drain()
    assert approval.transaction_hash is not None and approval.allowance_after == current + 10**18
    assert view.nonce(account.address) == before + 1
    assert len({_raw_tx(s) for s in proxy.seen(on_rpc("eth_sendRawTransaction"))}) == 1
    client.close()


def str_opg(base_units: int) -> str:
    """Base units as an exact decimal OPG string."""
    from decimal import Decimal

    return str(Decimal(base_units) / Decimal(10**18))
