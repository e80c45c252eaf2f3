"""Today's network on the devnet: enclaves found in the TEE registry, reached over pinned TLS.

Served over HTTP, the devnet registers each enclave with an HTTPS endpoint of its own and the DER of
the self-signed certificate that endpoint presents. The client reads `getActiveTEEs(0)`, sends to
one enclave, trusts only its registered certificate, checks the enclave's own key signed the answer
and pays only its registered address; it re-reads the registry after 300 s (an injected clock
here), leaves an enclave the registry no longer lists, and sends once elsewhere a request that could
not reach its enclave at all. In-process the registered endpoint is the in-process URL.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_abi import decode, encode
from eth_utils import keccak

import opengradient as og
from opengradient.client._http import pinned_context
from opengradient.client.llm import TextGenerationStream
from opengradient.client.registry import REFRESH_SECONDS, RegisteredEnclave
from opengradient.devnet.chain.deploy import Deployer
from opengradient.devnet.node import IN_PROCESS_URL, OPERATOR_ACCOUNT, Devnet
from opengradient.devnet.services.hub import cid_of
from opengradient.devnet.services.llm.enclave import PCR_HASH, Enclave
from opengradient.devnet.services.llm.settlement import merkle_leaf
from opengradient.devnet.tls import self_signed
from opengradient.errors import PinnedCertificateError
from opengradient.networks import TEE_REGISTRY_ADDRESS
from tests.payers import new_payer

HELLO = [{"role": "user", "content": "Hello! My name is Ada."}]


def chat(client: og.Client, **kwargs: Any) -> og.TextGenerationOutput:
    result = client.llm.chat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=20, **kwargs)
    assert isinstance(result, og.TextGenerationOutput)
    return result


def fake_clock(client: og.Client) -> list[float]:
    """Make `client`'s registry refresh run on a clock the test moves."""
    now = [0.0]
    client.llm.enclaves.clock = lambda: now[0]
    return now


def signatures(client: og.Client) -> list[int]:
    """Every payment the client signs from now on, by amount (the real signer still signs)."""
    payer = client.llm._payer
    signed: list[int] = []
    real_sign = payer.sign

    def counted(offer: dict[str, Any], **kwargs: Any) -> Any:
        payment = real_sign(offer, **kwargs)
        signed.append(payment.amount)
        return payment

    payer.sign = counted  # type: ignore[method-assign]
    return signed


def opg_balance(net: Devnet, address: str) -> int:
    data = bytes.fromhex("70a08231") + encode(["address"], [address])
    reply: Any = net.payments_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [
        {"to": net.network.payments.token_address, "data": "0x" + data.hex()}, "latest"]})
    return int(decode(["uint256"], bytes.fromhex(reply["result"][2:]))[0])


def register(net: Devnet, *, endpoint: str, certificate: bytes, pay_to: str | None = None) -> str:
    """Register a new enclave key at `endpoint` straight in the registry (the gateway does not sign
    with it): an impostor for the tests below. Returns its tee id."""
    impostor = Enclave()
    Deployer(net.alpha_chain, net.accounts[OPERATOR_ACCOUNT], estimate_gas=False).transact(
        TEE_REGISTRY_ADDRESS, "TEERegistry", "registerTEE", pay_to or net.gateway.pay_to, endpoint,
        impostor.public_key_der, certificate, PCR_HASH, 0)
    return impostor.tee_id


def registered(net: Devnet) -> list[RegisteredEnclave]:
    client = net.new_client()
    client.llm._sync.run(client.llm._read_registry_flow())
    return list(client.llm.enclaves.active)


@pytest.fixture(scope="module", params=["devnet", "base-sepolia", "base"])
def served(request: pytest.FixtureRequest) -> Iterator[Devnet]:
    """A devnet over HTTP with two HTTPS enclaves, in each payments-chain mode."""
    with og.devnet.start(http=True, payments_chain=request.param) as net:
        yield net


def test_discovery_over_https_with_the_registered_certificate(served: Devnet) -> None:
    net = served
    client = net.new_client(net.accounts[5].private_key)
    before = opg_balance(net, client.address or "")
    result = chat(client)
    enclave = client.llm.enclaves.current
    assert enclave is not None and enclave.endpoint.startswith("https://127.0.0.1:")
    assert {e["endpoint"] for e in net.gateway.registered} == {e.endpoint for e in client.llm.enclaves.active}
    assert (result.tee_endpoint, result.tee_id, result.tee_payment_address) == (
        enclave.base_url, enclave.tee_id, net.gateway.pay_to)
    assert result.tee_verified and result.payment_hash and result.proof is not None
    assert before - opg_balance(net, client.address or "") == result.amount_paid

    # What the endpoint presents is the registered DER; no public CA vouches for it, only the pin does.
    host, port = httpx.URL(enclave.endpoint).host, httpx.URL(enclave.endpoint).port
    assert ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((host, port or 443))) == enclave.tls_certificate
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(enclave.base_url + "/signing-key")
    other = next(e for e in client.llm.enclaves.active if e.tee_id != enclave.tee_id)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(enclave.base_url + "/signing-key", verify=pinned_context(other.tls_certificate))
    published = httpx.get(enclave.base_url + "/signing-key", verify=pinned_context(enclave.tls_certificate))
    assert published.json()["tee_id"] == enclave.tee_id  # each endpoint is its own enclave

    stream = client.llm.chat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=20, stream=True)
    assert isinstance(stream, TextGenerationStream)
    assert "".join(c.choices[0].delta.content or "" for c in stream)
    assert stream.result is not None and stream.result.tee_verified
    assert (stream.result.tee_endpoint, stream.result.tee_payment_address) == (enclave.base_url, net.gateway.pay_to)
    completion = client.llm.completion(og.TEE_LLM.GPT_4O, "Say hello.", max_tokens=20)
    assert completion.tee_verified and completion.tee_id == enclave.tee_id


async def test_async_discovery_over_https(served: Devnet) -> None:
    async with served.new_client(served.accounts[6].private_key) as client:
        result = await client.llm.achat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=20)
        assert isinstance(result, og.TextGenerationOutput) and result.tee_verified
        enclave = client.llm.enclaves.current
        assert enclave is not None and result.tee_endpoint == enclave.base_url
        assert result.tee_endpoint.startswith("https://") and result.tee_payment_address == served.gateway.pay_to


def test_upto_sessions_ride_a_discovered_enclave_and_close_over_its_pinned_tls(devnet_http: Devnet) -> None:
    payer = new_payer(devnet_http)
    client = devnet_http.new_client(payer.account.private_key, payment_scheme="upto")
    outputs = [chat(client) for _ in range(3)]
    assert len({o.upto_session for o in outputs}) == 1 and all(o.tee_verified for o in outputs)
    assert {o.tee_endpoint for o in outputs} == {client.llm.enclaves.current.base_url}  # type: ignore[union-attr]
    [closed] = client.llm.close_sessions()  # DELETE at the enclave, over its pinned certificate
    assert closed["status"] == "settled" and closed["requests"] == 3 and closed["transaction"]


def test_gateway_trust_takes_the_discovered_enclaves_own_key(devnet_http: Devnet) -> None:
    client = devnet_http.new_client(devnet_http.accounts[3].private_key, tee_trust="gateway")
    client.llm.enclaves.choose = lambda options: options[-1]  # not the devnet's first enclave
    result = chat(client)
    assert result.tee_verified and result.tee_id == devnet_http.gateway.registered[-1]["tee_id"]


def test_a_pinned_gateway_is_not_discovered(devnet_http: Devnet) -> None:
    client = devnet_http.new_client(og_llm_server_url=devnet_http.url)
    result = chat(client)
    assert (result.tee_endpoint, result.tee_payment_address) == (devnet_http.url, None)
    assert result.tee_verified and result.tee_id == devnet_http.gateway.enclave.tee_id  # the registry's key
    assert client.llm.enclaves.current is None


def test_an_http_error_is_not_sent_to_another_enclave(devnet_http: Devnet) -> None:
    client = devnet_http.new_client(devnet_http.accounts[3].private_key)
    first = chat(client)
    with pytest.raises(og.HTTPStatusError, match="HTTP 400"):
        client.llm.chat("nobody/no-such-model", HELLO, max_tokens=20)
    current = client.llm.enclaves.current
    assert current is not None and current.tee_id == first.tee_id  # two are active: a failover would move


def test_a_wrong_certificate_is_refused_before_any_payment_is_signed() -> None:
    with og.devnet.start(http=True, enclaves=1) as net:
        client = net.new_client(net.accounts[1].private_key)
        now = fake_clock(client)
        signed = signatures(client)
        chat(client)  # warm: this enclave's offer is cached, the next call would sign up front
        assert len(signed) == 1
        [real] = client.llm.enclaves.active
        impostor = register(net, endpoint=real.endpoint,
                            certificate=self_signed("impostor", "127.0.0.1").certificate_der)
        net.disable_enclave(real.tee_id)
        balance = opg_balance(net, client.address or "")
        now[0] += REFRESH_SECONDS
        with pytest.raises(PinnedCertificateError, match="not the one trusted for it"):
            chat(client)
        current = client.llm.enclaves.current
        assert current is not None and current.tee_id == impostor
        assert len(signed) == 1 and opg_balance(net, client.address or "") == balance


def test_an_offer_to_pay_an_unregistered_address_is_refused_before_signing() -> None:
    with og.devnet.start(http=True, enclaves=1) as net:
        [real] = registered(net)
        stranger = net.accounts[7].address
        register(net, endpoint=real.endpoint, certificate=real.tls_certificate, pay_to=stranger)
        net.disable_enclave(real.tee_id)
        client = net.new_client(net.accounts[2].private_key)
        signed = signatures(client)
        with pytest.raises(og.PaymentRequiredError) as caught:
            chat(client)
        assert caught.value.reason == "pay_to_not_registered" and signed == []
        message = str(caught.value)
        assert stranger in message and net.gateway.pay_to in message
        offer = json.JSONDecoder().raw_decode(message.split("PAYMENT-REQUIRED: ", 1)[1])[0]
        assert offer == caught.value.requirements


def test_the_client_leaves_an_enclave_the_registry_no_longer_lists() -> None:
    with og.devnet.start(http=True, enclaves=2) as net:
        client = net.new_client(net.accounts[1].private_key)
        now = fake_clock(client)
        first = chat(client)
        net.disable_enclave(str(first.tee_id))
        now[0] += REFRESH_SECONDS - 1  # the last reading is still fresh: same enclave, still trusted
        same = chat(client)
        assert same.tee_id == first.tee_id and same.tee_verified
        now[0] += 1
        moved = chat(client)
        assert moved.tee_id != first.tee_id and moved.tee_endpoint != first.tee_endpoint and moved.tee_verified
        assert [e.tee_id for e in client.llm.enclaves.active] == [moved.tee_id]
        stream = client.llm.chat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=20, stream=True)
        assert isinstance(stream, TextGenerationStream)
        list(stream)
        assert stream.result is not None and stream.result.tee_id == moved.tee_id


async def test_a_request_that_cannot_reach_its_enclave_goes_once_to_another() -> None:
    with og.devnet.start(http=True, enclaves=2) as net:
        client = net.new_client(net.accounts[1].private_key)
        signed = signatures(client)
        before = opg_balance(net, client.address or "")
        first = chat(client)
        net.stop_enclave(str(first.tee_id))  # still listed, but nobody answers there
        moved = chat(client)
        assert moved.tee_id != first.tee_id and moved.tee_verified and moved.payment_hash
        # paid once each: the warm signature for the dead enclave was never sent (and counts toward the cap)
        assert before - opg_balance(net, client.address or "") == (first.amount_paid or 0) + (moved.amount_paid or 0)
        assert len(signed) == 3
        async with net.new_client(net.accounts[2].private_key) as other:
            # first pick the dead enclave, whatever a random choice would be
            other.llm.enclaves.choose = lambda options: next((e for e in options if e.tee_id == first.tee_id),
                                                             options[0])
            result = await other.llm.achat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=20)
            assert isinstance(result, og.TextGenerationOutput) and result.tee_id == moved.tee_id
        net.stop_enclave(str(moved.tee_id))
        with pytest.raises(og.NetworkError):  # one more try, not a loop
            chat(client)


def test_in_process_discovery_uses_the_in_process_url(devnet: Devnet) -> None:
    client = devnet.new_client(devnet.accounts[4].private_key)
    result = chat(client)
    assert (result.tee_endpoint, result.tee_payment_address) == (IN_PROCESS_URL, devnet.gateway.pay_to)
    [entry] = client.llm.enclaves.active
    assert entry.endpoint == IN_PROCESS_URL and entry.tls_pin is None and entry.tls_certificate == b""
    over_sockets = og.Client(devnet.accounts[4].private_key, network=devnet.network)  # no transport
    assert not over_sockets.llm.enclaves.usable(entry)  # plain http is only for the in-process transport


def test_in_process_enclaves_sign_with_their_own_keys_and_fail_over() -> None:
    with og.devnet.start(enclaves=2) as net:
        client = net.new_client()
        now = fake_clock(client)
        first = chat(client)
        net.disable_enclave(str(first.tee_id))
        now[0] += REFRESH_SECONDS
        moved = chat(client)
        assert {first.tee_endpoint, moved.tee_endpoint} == {IN_PROCESS_URL, "http://enclave-1.devnet.local"}
        assert moved.tee_verified and moved.tee_id != first.tee_id


def test_data_settlement_is_reported_on_the_output(devnet: Devnet) -> None:
    client = devnet.new_client(devnet.accounts[4].private_key)
    private = chat(client, x402_settlement_mode=og.x402SettlementMode.PRIVATE)
    assert private.data_settlement_transaction_hash is None and private.data_settlement_blob_id is None

    individual = chat(client, x402_settlement_mode=og.x402SettlementMode.INDIVIDUAL)
    tx = individual.data_settlement_transaction_hash
    receipt: Any = devnet.payments_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt",
                                              "params": [tx]})
    event = "SettledWithMetadata(bytes32,bytes32,address,bytes32,uint256,string,string,string)"
    topic = "0x" + keccak(text=event).hex()
    [log] = [entry for entry in receipt["result"]["logs"] if entry["topics"][0] == topic]
    assert log["topics"][2] == "0x" + str(individual.tee_request_hash)

    http = httpx.Client(transport=devnet._bridge.transport, base_url=devnet.url)
    for streamed in (False, True):
        if streamed:
            stream = client.llm.chat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=20, stream=True,
                                     x402_settlement_mode=og.x402SettlementMode.BATCH_HASHED)
            assert isinstance(stream, TextGenerationStream)
            list(stream)
            assert stream.result is not None
            batch = stream.result
        else:
            batch = chat(client, x402_settlement_mode="settle-batch")
        assert batch.data_settlement_transaction_hash is None  # its leaf waits for the Merkle batch
        blob = http.get(f"/settlement/blobs/{batch.data_settlement_blob_id}")
        assert blob.status_code == 200 and cid_of(blob.content) == batch.data_settlement_blob_id
        data = blob.json()
        leaf = merkle_leaf(bytes.fromhex(str(batch.tee_request_hash)), bytes.fromhex(str(batch.tee_output_hash)))
        assert (data["leaf"], data["tee_signature"], data["tee_id"]) == (leaf.hex(), batch.tee_signature, batch.tee_id)
        assert data["payment_transaction"] and data["mode"] == "batch"
    assert http.get("/settlement/blobs/" + cid_of(b"not stored by the gateway")).status_code == 404

    stream = client.llm.chat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=20, stream=True, x402_settlement_mode="individual")
    assert isinstance(stream, TextGenerationStream)
    list(stream)
    assert stream.result is not None and str(stream.result.data_settlement_transaction_hash).startswith("0x")


def test_payment_errors_carry_the_decoded_payment_required(devnet: Devnet) -> None:
    client = devnet.new_client(devnet.accounts[4].private_key, max_payment_per_request=1)
    with pytest.raises(og.SpendCapExceededError) as caught:
        chat(client)
    text = str(caught.value).split("PAYMENT-REQUIRED: ", 1)[1]
    offer = json.JSONDecoder().raw_decode(text)[0]
    assert offer == caught.value.requirements and offer["accepts"][0]["payTo"] == devnet.gateway.pay_to
    assert base64.b64encode(json.dumps(offer).encode()).decode() not in str(caught.value)  # decoded, not raw
