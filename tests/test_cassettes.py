"""Replay the recorded LLM exchanges offline through a real `og.Client`, and scan them for secrets.

The cassettes in `tests/cassettes/llm/` are written by `scripts/record_cassettes.py` from a devnet
served over HTTP (see its docstring for what is scrubbed). Here no devnet runs and no socket is
opened: vcrpy answers at the httpx transport (`record_mode="none"`, so an unrecorded request
fails instead of reaching a network), and the client does everything else for real — it decodes
the recorded 402 offer and signs a fresh x402 payment for it, reads the enclave key from the
recorded TEE-registry `eth_call`, and verifies the recorded TEE signatures with that key.

Matching: method, scheme, path, query, the JSON body (JSON-RPC `id`s ignored: they come from a
process-wide counter), whether the request carries a payment (the signature itself is ignored —
every signature has a fresh random nonce, and the recorded one is scrubbed), and the settlement
header. Host and port are not matched; the replay client is built against the canonical
`http://127.0.0.1:8645` the recorder rewrites every URL to anyway. Each interaction plays once
and every cassette must be played to its end, so a cold call must make exactly its three
requests (402, paid retry, registry read) and a warm one exactly one.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import vcr
import yaml
from eth_utils import keccak
from pytest_socket import disable_socket, enable_socket
from vcr.cassette import Cassette

import opengradient as og
from opengradient.client.llm import AsyncTextGenerationStream, TextGenerationStream
from opengradient.devnet.chain.keys import dev_accounts
from opengradient.errors import VerificationError
from opengradient.networks import devnet_network

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = Path(__file__).resolve().parent / "cassettes" / "llm"
NAMES = ("chat", "stream", "tools", "completion", "payment_402")
CANONICAL_URL = "http://127.0.0.1:8645"
#: The placeholders of scripts/record_cassettes.py, restated so the test checks the recorder.
SCRUBBED_PAYMENT = "SCRUBBED_PAYMENT"
SCRUBBED_SESSION = "SCRUBBED_SESSION"
SCRUBBED_TRANSACTION = "0x" + keccak(text="opengradient cassette: scrubbed x402 settlement").hex()
PAYMENT_HEADERS = ("payment-signature", "x-payment")
RECEIPT_HEADERS = ("payment-response", "x-payment-response")
MODEL = og.TEE_LLM.GPT_4O
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. 'San Francisco'"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
WEATHER_QUESTION: dict[str, Any] = {"role": "user", "content": "What is the weather in Dallas, in fahrenheit?"}
COLD = 3  # 402, the paid retry, the TEE-registry read
WARM = 1


# --- matching ----------------------------------------------------------------------------------------

def _header(request: Any, name: str) -> str | None:
    for key, value in request.headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None


def _comparable_body(request: Any) -> Any:
    body = request.body or b""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    if isinstance(data, dict) and data.get("jsonrpc"):
        data.pop("id", None)
    return data


def match_body(r1: Any, r2: Any) -> None:
    """Same JSON body (JSON-RPC ids aside), or the same bytes when not JSON."""
    assert _comparable_body(r1) == _comparable_body(r2)


def match_payment(r1: Any, r2: Any) -> None:
    """Both paid or both unpaid (the signature itself differs every time), same settlement mode."""
    assert (any(_header(r1, h) for h in PAYMENT_HEADERS)) == (any(_header(r2, h) for h in PAYMENT_HEADERS))
    assert _header(r1, "x-settlement-type") == _header(r2, "x-settlement-type")


REPLAYER = vcr.VCR(record_mode="none", match_on=("method", "scheme", "path", "query", "og_body", "og_payment"))
REPLAYER.register_matcher("og_body", match_body)
REPLAYER.register_matcher("og_payment", match_payment)


@contextmanager
def replay(path: Path) -> Iterator[Cassette]:
    """Replay one cassette; every recorded interaction must be used."""
    with REPLAYER.use_cassette(str(path), allow_playback_repeats=False) as cassette:
        yield cassette
        assert cassette.all_played, f"{path.name}: {len(cassette) - cassette.play_count} interactions unused"


@contextmanager
def counting(cassette: Cassette, expected: int) -> Iterator[None]:
    """Assert the block makes exactly `expected` HTTP requests (all answered from the cassette)."""
    before = cassette.play_count
    yield
    assert cassette.play_count - before == expected


# --- the replay client -------------------------------------------------------------------------------

@cache
def recorded() -> dict[str, Any]:
    """What `network.json` says about the recording (addresses, chain ids, payer)."""
    return dict(json.loads((CASSETTES / "network.json").read_text()))


def replay_client() -> og.Client:
    """A real client on the recorded network, paying with the recording's dev account."""
    meta = recorded()
    network = devnet_network(meta["base_url"], opg_token=meta["opg_token"], tee_registry=meta["tee_registry"],
                             payments_chain_id=meta["payments_chain_id"], alpha_chain_id=meta["alpha_chain_id"])
    index = int(meta["payer_account_index"])
    account = dev_accounts(index + 1)[index]
    assert account.address == meta["payer"]
    return og.Client(account.private_key, network=network)


def offer_of(path: Path) -> dict[str, Any]:
    """The recorded 402 offer (the first 402 response's `PAYMENT-REQUIRED`)."""
    for interaction in yaml.safe_load(path.read_text())["interactions"]:
        if interaction["response"]["status"]["code"] == 402:
            headers = {k.lower(): v for k, v in interaction["response"]["headers"].items()}
            return dict(json.loads(base64.b64decode(headers["payment-required"][0])))
    raise AssertionError(f"{path.name} holds no 402")


def assert_paid_and_verified(result: og.TextGenerationOutput, amount: int) -> None:
    assert result.tee_verified is True
    assert result.tee_signature and result.tee_id and result.tee_timestamp
    assert result.payment_hash == SCRUBBED_TRANSACTION and result.transaction_hash == SCRUBBED_TRANSACTION
    assert result.amount_paid == amount
    assert result.usage is not None and result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.proof is not None and result.proof.kind == "tee"
    assert result.proof.payment_hash == SCRUBBED_TRANSACTION
    assert result.proof.input_hash == "0x" + (result.tee_request_hash or "")
    assert result.proof.output_hash == "0x" + (result.tee_output_hash or "")


# --- replays -----------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def offline() -> Iterator[None]:
    """No network socket can be made (Unix sockets stay: an asyncio loop needs its self-pipe)."""
    disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        enable_socket()


def test_payment_402_exchange() -> None:
    path = CASSETTES / "payment_402.yaml"
    offer = offer_of(path)
    assert offer["x402Version"] == 2
    option = offer["accepts"][0]
    assert option["scheme"] == "exact" and option["network"] == f"eip155:{recorded()['payments_chain_id']}"
    assert option["asset"] == recorded()["opg_token"]
    assert offer["resource"]["url"] == f"{CANONICAL_URL}/v1/chat/completions"
    with replay(path) as cassette, replay_client() as client:
        with counting(cassette, COLD):
            result = client.llm.chat(MODEL, [{"role": "user", "content": "How much does this answer cost?"}],
                                     max_tokens=40)
        sent = [r for r in cassette.requests if r.path == "/v1/chat/completions"]
    assert isinstance(result, og.TextGenerationOutput)
    assert_paid_and_verified(result, int(option["amount"]))
    assert result.finish_reason == "stop" and result.chat_output is not None
    assert result.chat_output["role"] == "assistant" and "cost" in result.chat_output["content"]
    # what was recorded: first unpaid, then paid (signature scrubbed); the 402 answered the first
    assert [_header(r, "payment-signature") for r in sent] == [None, SCRUBBED_PAYMENT]
    assert cassette.responses[0]["status"]["code"] == 402


def test_chat_cold_then_warm() -> None:
    path = CASSETTES / "chat.yaml"
    amount = int(offer_of(path)["accepts"][0]["amount"])
    with replay(path) as cassette, replay_client() as client:
        with counting(cassette, COLD):
            first = client.llm.chat(MODEL, [{"role": "user", "content": "Hello! My name is Ada."}], max_tokens=50)
        with counting(cassette, WARM):  # the cached offer: signed up front, one round trip
            second = client.llm.chat(MODEL, [{"role": "user", "content": "What can you do for me?"}],
                                     max_tokens=50)
    for result in (first, second):
        assert isinstance(result, og.TextGenerationOutput)
        assert_paid_and_verified(result, amount)
        assert result.finish_reason == "stop" and result.chat_output is not None
        assert result.model == MODEL.value and result.id
    assert isinstance(first, og.TextGenerationOutput) and first.chat_output is not None
    assert "Ada" in first.chat_output["content"]
    assert isinstance(second, og.TextGenerationOutput) and first.id != second.id
    assert second.proof is not None and client.llm.verify_proof(second.proof)  # keys cached: no request


async def test_chat_async_replay() -> None:
    path = CASSETTES / "chat.yaml"
    amount = int(offer_of(path)["accepts"][0]["amount"])
    with replay(path) as cassette:
        client = replay_client()
        try:
            with counting(cassette, COLD):
                first = await client.llm.achat(MODEL, [{"role": "user", "content": "Hello! My name is Ada."}],
                                               max_tokens=50)
            with counting(cassette, WARM):
                second = await client.llm.achat(MODEL, [{"role": "user", "content": "What can you do for me?"}],
                                                max_tokens=50)
        finally:
            await client.aclose()
    for result in (first, second):
        assert isinstance(result, og.TextGenerationOutput)
        assert_paid_and_verified(result, amount)


async def test_stream_async_replay() -> None:
    path = CASSETTES / "stream.yaml"
    messages = [{"role": "user", "content": "Tell me about verifiable inference."}]
    with replay(path) as cassette:
        client = replay_client()
        try:
            with counting(cassette, COLD):
                whole = await client.llm.achat(MODEL, messages, max_tokens=60)
            with counting(cassette, WARM):
                stream = await client.llm.achat(MODEL, messages, max_tokens=60, stream=True)
                assert isinstance(stream, AsyncTextGenerationStream)
                text = "".join([c.choices[0].delta.content or "" async for c in stream])
        finally:
            await client.aclose()
    assert isinstance(whole, og.TextGenerationOutput) and whole.chat_output is not None
    assert text == whole.chat_output["content"]
    assert stream.result is not None and stream.result.tee_verified and stream.result.usage == whole.usage


def test_stream_assembles_the_same_text() -> None:
    path = CASSETTES / "stream.yaml"
    amount = int(offer_of(path)["accepts"][0]["amount"])
    messages = [{"role": "user", "content": "Tell me about verifiable inference."}]
    with replay(path) as cassette, replay_client() as client:
        with counting(cassette, COLD):
            whole = client.llm.chat(MODEL, messages, max_tokens=60)
        with counting(cassette, WARM):
            stream = client.llm.chat(MODEL, messages, max_tokens=60, stream=True)
            assert isinstance(stream, TextGenerationStream)
            chunks = list(stream)
    assert isinstance(whole, og.TextGenerationOutput) and whole.chat_output is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len([c for c in chunks if c.choices[0].delta.content]) > 1  # really streamed in pieces
    assert text == whole.chat_output["content"] and text
    assert any(c.choices[0].finish_reason == "stop" for c in chunks)  # the finish chunk …
    assert any(c.usage is not None for c in chunks)  # … and the usage chunk both reach the user
    assert stream.result is not None and stream.result.chat_output is not None
    assert stream.result.chat_output["content"] == text
    assert stream.result.usage == whole.usage
    assert_paid_and_verified(stream.result, amount)
    assert_paid_and_verified(whole, amount)


def test_tools_call_answer_and_stream() -> None:
    path = CASSETTES / "tools.yaml"
    amount = int(offer_of(path)["accepts"][0]["amount"])
    with replay(path) as cassette, replay_client() as client:
        with counting(cassette, COLD):
            first = client.llm.chat(MODEL, [WEATHER_QUESTION], tools=[WEATHER_TOOL], max_tokens=100)
        assert isinstance(first, og.TextGenerationOutput) and first.chat_output is not None
        call = first.chat_output["tool_calls"][0]
        follow_up: list[dict[str, Any]] = [
            WEATHER_QUESTION, {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature": 91, "sky": "clear"}'}]
        with counting(cassette, WARM):
            answer = client.llm.chat(MODEL, follow_up, tools=[WEATHER_TOOL], max_tokens=100)
        with counting(cassette, WARM):
            stream = client.llm.chat(MODEL, [WEATHER_QUESTION], tools=[WEATHER_TOOL], max_tokens=100, stream=True)
            assert isinstance(stream, TextGenerationStream)
            chunks = list(stream)
    assert first.finish_reason == "tool_calls"
    assert call["type"] == "function" and call["function"]["name"] == "get_current_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Dallas", "unit": "fahrenheit"}
    assert_paid_and_verified(first, amount)
    assert isinstance(answer, og.TextGenerationOutput) and answer.chat_output is not None
    assert answer.finish_reason == "stop" and "91" in answer.chat_output["content"]
    assert_paid_and_verified(answer, amount)
    assert any(c.choices[0].delta.tool_calls for c in chunks)
    assert stream.result is not None and stream.result.chat_output is not None
    assert stream.result.finish_reason == "tool_calls"
    streamed = stream.result.chat_output["tool_calls"][0]
    assert streamed["function"] == call["function"]
    assert_paid_and_verified(stream.result, amount)


def test_completion_cold_then_warm() -> None:
    path = CASSETTES / "completion.yaml"
    amount = int(offer_of(path)["accepts"][0]["amount"])
    with replay(path) as cassette, replay_client() as client:
        with counting(cassette, COLD):
            first = client.llm.completion(MODEL, "The capital of France is", max_tokens=30)
        with counting(cassette, WARM):
            second = client.llm.completion(MODEL, "List three primary colours:", max_tokens=30,
                                           stop_sequence=["\n\n"],
                                           x402_settlement_mode=og.x402SettlementMode.SETTLE_METADATA)
    for result in (first, second):
        assert result.completion_output and result.chat_output is None
        assert result.finish_reason in ("stop", "length")
        assert_paid_and_verified(result, amount)
    assert first.completion_output != second.completion_output


def test_tampered_cassette_fails_verification(tmp_path: Path) -> None:
    """The replayed signatures are really checked: change one word of a signed answer and it fails."""
    original = (CASSETTES / "payment_402.yaml").read_text()
    cassette = yaml.safe_load(original)
    body = cassette["interactions"][1]["response"]["body"]
    assert "deterministic" in body["string"]
    body["string"] = body["string"].replace("deterministic", "Deterministic", 1)
    tampered = tmp_path / "tampered.yaml"
    tampered.write_text(yaml.safe_dump(cassette))
    with REPLAYER.use_cassette(str(tampered)), replay_client() as client, pytest.raises(VerificationError):
        client.llm.chat(MODEL, [{"role": "user", "content": "How much does this answer cost?"}], max_tokens=40)


# --- secrets -----------------------------------------------------------------------------------------

_EVM_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}(?![0-9a-fA-F])")
_LOOPBACK = re.compile(r"127\.0\.0\.1:(\d+)")
_LOOPBACK_HEX = re.compile("(?:" + b"127.0.0.1:".hex() + ")((?:3[0-9])+)")
_B64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")


def _decoded_blobs(text: str) -> list[str]:
    """Every base64 string in `text` that decodes to UTF-8 text (headers such as PAYMENT-REQUIRED)."""
    out = []
    for blob in _B64.findall(text):
        try:
            out.append(base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True).decode())
        except (binascii.Error, ValueError):
            continue
    return out


def _files() -> list[Path]:
    return sorted(p for p in CASSETTES.iterdir() if p.is_file())


def test_all_cassettes_are_there() -> None:
    assert {p.name for p in _files()} >= {f"{n}.yaml" for n in NAMES} | {"network.json"}


def secrets_in(text: str, *, cassette: bool) -> list[str]:
    """What in a cassette file (or `network.json`) would leak: an empty list when it is clean."""
    from opengradient.devnet.services.hub import DEV_PASSWORD

    found: list[str] = []
    views = [text, *_decoded_blobs(text)]
    lowered = [v.lower() for v in views]
    for i, account in enumerate(dev_accounts(20)):
        if any(account.private_key.lower().removeprefix("0x") in v for v in lowered):
            found.append(f"the private key of dev account {i}")
    if any(DEV_PASSWORD.lower() in v or "password" in v for v in lowered):
        found.append("a password")
    for view in views:  # EIP-3009 / EIP-712 signatures (65 bytes) and x402 payloads, also inside base64
        if _EVM_SIGNATURE.search(view):
            found.append("a 65-byte EVM signature")
        if '"payload"' in view or '"authorization"' in view:
            found.append("an x402 payment payload")
        ports = set(_LOOPBACK.findall(view))
        ports |= {bytes.fromhex(h).decode() for h in _LOOPBACK_HEX.findall(view.lower())}
        if not ports <= {"8645", "8646", "8647"}:  # the gateway's and its two enclaves' canonical ports
            found.append(f"loopback ports {sorted(ports)} (not normalised)")
    if not cassette:
        return found
    interactions = yaml.safe_load(text)["interactions"]
    signed = 0
    for interaction in interactions:
        request, response = interaction["request"], interaction["response"]
        if not request["uri"].startswith(CANONICAL_URL + "/"):
            found.append(f"the URI {request['uri']}")
        for name, values in request["headers"].items():
            lower = name.lower()
            if lower in ("host", "authorization", "cookie"):
                found.append(f"a {name} request header")
            if lower in PAYMENT_HEADERS and values != [SCRUBBED_PAYMENT]:
                found.append(f"a payment signature in {name}")
            if lower == "x-upto-session" and values != [SCRUBBED_SESSION]:
                found.append("an upto session id")
        for name, values in response["headers"].items():
            lower = name.lower()
            if lower == "set-cookie":
                found.append("a cookie")
            if lower == "x-upto-session" and values != [SCRUBBED_SESSION]:
                found.append("an upto session id")
            if lower in RECEIPT_HEADERS:
                for value in values:
                    receipt = json.loads(base64.b64decode(value))
                    if receipt.get("scrubbed") is not True or receipt.get("transaction") not in ("",
                                                                                             SCRUBBED_TRANSACTION):
                        found.append(f"a real settlement receipt in {name}")
        signed += "tee_signature" in (response["body"]["string"] or "")
    if not interactions or not signed:
        found.append("no TEE-signed response (the signatures are not secret and must stay for replay)")
    return found


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_cassette_holds_no_secrets(path: Path) -> None:
    assert secrets_in(path.read_text(), cassette=path.suffix == ".yaml") == []


def test_the_scan_finds_what_scrubbing_removes() -> None:
    """An unscrubbed copy — a real signed payment, a real receipt, a key, a raw port — is caught."""
    from opengradient.client.payments import Payer
    from opengradient.client.wallet import Wallet

    meta = recorded()
    account = dev_accounts(1)[0]
    network = replay_client().network
    payment = Payer(Wallet(account.private_key), network.payments).sign(offer_of(CASSETTES / "payment_402.yaml"))
    cassette = yaml.safe_load((CASSETTES / "payment_402.yaml").read_text())
    paid = cassette["interactions"][1]
    paid["request"]["headers"]["payment-signature"] = [payment.header]
    receipt = {"success": True, "transaction": "0x" + "ab" * 32, "network": "x", "payer": meta["payer"]}
    paid["response"]["headers"]["payment-response"] = [base64.b64encode(json.dumps(receipt).encode()).decode()]
    dirty = yaml.safe_dump(cassette)
    found = secrets_in(dirty, cassette=True)
    assert "a payment signature in payment-signature" in found
    assert "a 65-byte EVM signature" in found and "an x402 payment payload" in found  # inside the base64
    assert "a real settlement receipt in payment-response" in found
    assert secrets_in(f"key: {account.private_key}", cassette=False) == ["the private key of dev account 0"]
    assert secrets_in("uri: http://127.0.0.1:5173/rpc", cassette=False) == [
        "loopback ports ['5173'] (not normalised)"]


def _recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("record_cassettes", ROOT / "scripts" / "record_cassettes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recorder_scrubs_and_normalises_without_a_devnet() -> None:
    recorder = _recorder()
    assert recorder.SCRUBBED_TRANSACTION == SCRUBBED_TRANSACTION
    assert recorder.SCRUBBED_PAYMENT == SCRUBBED_PAYMENT
    normaliser = recorder.Normaliser(5173)
    assert normaliser.text("GET http://127.0.0.1:5173/rpc") == "GET http://127.0.0.1:8645/rpc"
    assert normaliser.data(b"127.0.0.1:5173".hex().encode()) == b"127.0.0.1:8645".hex().encode()
    offer = base64.b64encode(b'{"resource":{"url":"http://127.0.0.1:5173/v1/completions"}}').decode()
    assert base64.b64decode(normaliser.b64_json(offer)) == b'{"resource":{"url":"http://127.0.0.1:8645/v1/completions"}}'
    with pytest.raises(ValueError):
        recorder.Normaliser(54321)  # would change ABI string lengths
    real = base64.b64encode(json.dumps({"success": True, "transaction": "0x" + "ab" * 32, "network": "eip155:1",
                                        "payer": "0x" + "11" * 20, "amount": "5"}).encode()).decode()
    receipt = json.loads(base64.b64decode(recorder.scrubbed_receipt(real)))
    assert receipt == {"success": True, "transaction": SCRUBBED_TRANSACTION, "network": "eip155:1",
                       "payer": "0x" + "11" * 20, "amount": "5", "scrubbed": True}
