#!/usr/bin/env python3
"""Record the LLM cassettes in ``tests/cassettes/llm/`` from a devnet served over HTTP.

    python scripts/record_cassettes.py            # rewrite every cassette
    python scripts/record_cassettes.py chat tools # only these

Each cassette is the real HTTP exchange of ``client.llm`` with the devnet gateway, recorded with
vcrpy at the transport layer (``httpx.HTTPTransport``): the gateway routes, the 402 offer, the
paid requests and the JSON-RPC ``eth_call`` that reads the enclave key from the TEE registry.
``tests/test_cassettes.py`` replays them offline through a real ``og.Client``, verifying the
recorded TEE signatures against the recorded registry key, exactly as a live client does.

What is changed on the way to disk (and nothing else):

* **Payment signatures.** The ``PAYMENT-SIGNATURE`` / ``X-PAYMENT`` request headers become
  ``SCRUBBED_PAYMENT`` (the header stays, so replay can tell a paid request from an unpaid one).
* **Settlement receipts.** The ``PAYMENT-RESPONSE`` / ``X-PAYMENT-RESPONSE`` response headers
  become the base64 JSON of a fake but well-formed receipt: the original ``success``,
  ``network``, ``payer``, ``amount`` (or ``errorReason``), ``"scrubbed": true``, and
  ``transaction`` = ``SCRUBBED_TRANSACTION`` (keccak256 of a fixed phrase). The SDK parses the
  receipt, so a replayed ``payment_hash`` is exactly that placeholder. ``X-Upto-Session`` (not
  sent by the exact scheme, scrubbed should it appear) becomes ``SCRUBBED_SESSION``.
* **Ports.** The devnet is served on ``127.0.0.1:8645`` when that port is free, otherwise on a
  free four-digit port that is rewritten to 8645 in URIs, header values, bodies, base64 JSON
  headers (``PAYMENT-REQUIRED`` names the resource URL) and the hex of ABI-encoded strings; its
  enclaves' HTTPS ports (the registry lists their endpoints) become 8646, 8647, …. Same length,
  so ABI encodings stay valid. The client is pinned to the devnet's plain URL
  (``og_llm_server_url``), so every request goes there; the registry is read for the keys.
* **Noise.** ``Host`` request headers and ``Date``/``Server`` response headers are dropped.

The TEE fields and the ``PAYMENT-REQUIRED`` offers are *not* secrets and stay: replay pays the
recorded offer with a fresh signature and verifies the recorded enclave signatures.
Private keys never reach a cassette (they sign locally; nothing sends them), and the recorder
checks every file for the dev accounts' keys and the hub password before it exits.
``network.json`` next to the cassettes holds the addresses a replay client is built with.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import random
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import vcr  # noqa: E402
from eth_utils import keccak  # noqa: E402

import opengradient as og  # noqa: E402
from opengradient.client.client import Client  # noqa: E402

CASSETTE_DIR = REPO_ROOT / "tests" / "cassettes" / "llm"
HOST = "127.0.0.1"
CANONICAL_PORT = 8645
CANONICAL_URL = f"http://{HOST}:{CANONICAL_PORT}"

SCRUBBED_PAYMENT = "SCRUBBED_PAYMENT"
SCRUBBED_SESSION = "SCRUBBED_SESSION"
SCRUBBED_TRANSACTION = "0x" + keccak(text="opengradient cassette: scrubbed x402 settlement").hex()
PAYMENT_REQUEST_HEADERS = ("payment-signature", "x-payment")
RECEIPT_HEADERS = ("payment-response", "x-payment-response")
B64_JSON_HEADERS = ("payment-required",)

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


# --- scrubbing and normalisation ------------------------------------------------------------------

class Normaliser:
    """Rewrites the recording port to the canonical one, in text, hex and base64 JSON."""

    def __init__(self, port: int, enclave_ports: tuple[int, ...] = ()) -> None:
        self.pairs: list[tuple[bytes, bytes]] = []
        for real_port, canonical_port in [(port, CANONICAL_PORT),
                                          *((p, CANONICAL_PORT + 1 + i) for i, p in enumerate(enclave_ports))]:
            if len(str(real_port)) != len(str(canonical_port)):
                raise ValueError(f"port {real_port} must have {len(str(canonical_port))} digits (ABI lengths)")
            if real_port != canonical_port:
                real, canonical = f"{HOST}:{real_port}".encode(), f"{HOST}:{canonical_port}".encode()
                self.pairs += [(real, canonical), (real.hex().encode(), canonical.hex().encode())]

    def data(self, value: bytes) -> bytes:
        for real, canonical in self.pairs:
            value = value.replace(real, canonical)
        return value

    def text(self, value: str) -> str:
        return self.data(value.encode()).decode()

    def b64_json(self, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return self.text(value)
        fixed = self.data(raw)
        return value if fixed == raw else base64.b64encode(fixed).decode()


def scrubbed_receipt(value: str) -> str:
    """A well-formed receipt in place of the real one (see the module docstring)."""
    try:
        original = json.loads(base64.b64decode(value))
    except (binascii.Error, ValueError):
        original = {}
    if not isinstance(original, dict):
        original = {}
    receipt: dict[str, Any] = {"success": bool(original.get("success")),
                               "transaction": SCRUBBED_TRANSACTION if original.get("transaction") else "",
                               "network": original.get("network"), "payer": original.get("payer")}
    for key in ("amount", "errorReason"):
        if key in original:
            receipt[key] = original[key]
    receipt["scrubbed"] = True
    return base64.b64encode(json.dumps(receipt, separators=(",", ":")).encode()).decode()


def request_filter(normaliser: Normaliser) -> Callable[[Any], Any]:
    """vcr `before_record_request`: scrub payment signatures, drop Host, normalise the port."""
    def scrub(request: Any) -> Any:
        request.uri = normaliser.text(request.uri)
        headers = request.headers
        for name in list(headers):
            lower = name.lower()
            if lower == "host":
                del headers[name]
            elif lower in PAYMENT_REQUEST_HEADERS:
                headers[name] = SCRUBBED_PAYMENT
            elif lower == "x-upto-session":
                headers[name] = SCRUBBED_SESSION
            else:
                headers[name] = normaliser.text(headers[name])
        if request.body:
            request.body = normaliser.data(request.body)
        return request
    return scrub


def response_filter(normaliser: Normaliser) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """vcr `before_record_response`: replace receipts, drop Date/Server, normalise the port."""
    def scrub(response: dict[str, Any]) -> dict[str, Any]:
        headers: dict[str, list[str]] = {}
        for name, values in response["headers"].items():
            lower = name.lower()
            if lower in ("date", "server"):
                continue
            if lower in RECEIPT_HEADERS:
                headers[name] = [scrubbed_receipt(v) for v in values]
            elif lower == "x-upto-session":
                headers[name] = [SCRUBBED_SESSION for _ in values]
            elif lower in B64_JSON_HEADERS:
                headers[name] = [normaliser.b64_json(v) for v in values]
            else:
                headers[name] = [normaliser.text(v) for v in values]
        response["headers"] = headers
        body = response["body"].get("string")
        if isinstance(body, bytes):
            response["body"]["string"] = normaliser.data(body)
        return response
    return scrub


# --- the scenarios ----------------------------------------------------------------------------------

def _chat(client: Client) -> None:
    """A cold chat (402, paid retry, registry read), then a warm one (one paid request)."""
    client.llm.chat(MODEL, [{"role": "user", "content": "Hello! My name is Ada."}], max_tokens=50)
    client.llm.chat(MODEL, [{"role": "user", "content": "What can you do for me?"}], max_tokens=50)


def _stream(client: Client) -> None:
    """A cold non-streamed chat, then the same request streamed by the now warm client."""
    messages = [{"role": "user", "content": "Tell me about verifiable inference."}]
    client.llm.chat(MODEL, messages, max_tokens=60)
    stream = client.llm.chat(MODEL, messages, max_tokens=60, stream=True)
    for _ in stream:
        pass


def _tools(client: Client) -> None:
    """A tool call (cold), the answer after the tool result (warm), the tool call streamed (warm)."""
    first = client.llm.chat(MODEL, [WEATHER_QUESTION], tools=[WEATHER_TOOL], max_tokens=100)
    assert isinstance(first, og.TextGenerationOutput) and first.chat_output is not None
    call = first.chat_output["tool_calls"][0]
    follow_up: list[dict[str, Any]] = [
        WEATHER_QUESTION, {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature": 91, "sky": "clear"}'}]
    client.llm.chat(MODEL, follow_up, tools=[WEATHER_TOOL], max_tokens=100)
    stream = client.llm.chat(MODEL, [WEATHER_QUESTION], tools=[WEATHER_TOOL], max_tokens=100, stream=True)
    for _ in stream:
        pass


def _completion(client: Client) -> None:
    """A cold completion, then a warm one with a stop sequence and metadata settlement."""
    client.llm.completion(MODEL, "The capital of France is", max_tokens=30)
    client.llm.completion(MODEL, "List three primary colours:", max_tokens=30, stop_sequence=["\n\n"],
                          x402_settlement_mode=og.x402SettlementMode.SETTLE_METADATA)


def _payment_402(client: Client) -> None:
    """A cold client's chat: the 402 offer, the paid retry, the registry read."""
    client.llm.chat(MODEL, [{"role": "user", "content": "How much does this answer cost?"}], max_tokens=40)


SCENARIOS: dict[str, Callable[[Client], None]] = {
    "chat": _chat, "stream": _stream, "tools": _tools, "completion": _completion, "payment_402": _payment_402,
}


# --- recording --------------------------------------------------------------------------------------

def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def choose_port() -> int:
    """8645 if free, else a free four-digit port (the rewrite must keep lengths)."""
    candidates = [CANONICAL_PORT] + random.sample(range(2000, 10000), 200)
    for port in candidates:
        if _port_is_free(port):
            return port
    raise RuntimeError("no free four-digit port on 127.0.0.1")


def start_devnet(port: int | None = None) -> Any:
    """An HTTP devnet on a port `Normaliser` can rewrite (retrying if a probed port is taken)."""
    if port is not None:
        Normaliser(port)  # four digits or refuse
        return og.devnet.start(http=True, host=HOST, port=port)
    last: Exception | None = None
    for _ in range(5):
        port = choose_port()
        try:
            return og.devnet.start(http=True, host=HOST, port=port)
        except OSError as exc:  # lost a race for the port
            last = exc
    raise RuntimeError(f"could not start the devnet: {last}")


def check_no_secrets(paths: list[Path]) -> None:
    """Fail loudly if a key or the hub password reached a file."""
    from opengradient.devnet.chain.keys import dev_accounts
    from opengradient.devnet.services.hub import DEV_PASSWORD

    needles = [a.private_key.lower().removeprefix("0x") for a in dev_accounts(20)] + [DEV_PASSWORD.lower()]
    for path in paths:
        text = path.read_text().lower()
        for needle in needles:
            if needle in text:
                raise SystemExit(f"{path}: a secret reached the cassette; not keeping it")


def record(names: list[str], *, port: int | None = None) -> list[Path]:
    """Record the named cassettes (and `network.json`); returns the files written."""
    CASSETTE_DIR.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with start_devnet(port) as net:
        port = int(net.url.rsplit(":", 1)[1])
        # the registry's answer lists the enclaves' HTTPS endpoints (on the ports after the devnet's)
        normaliser = Normaliser(port, tuple(int(e["endpoint"].rsplit(":", 1)[1]) for e in net.gateway.registered))
        recorder = vcr.VCR(
            record_mode="all",  # the recorder always re-records; the tests replay with "none"
            decode_compressed_response=True,
            before_record_request=request_filter(normaliser),
            before_record_response=response_filter(normaliser),
        )
        payer = net.accounts[0]
        for name in names:
            path = CASSETTE_DIR / f"{name}.yaml"
            path.unlink(missing_ok=True)
            # cold: no cached offer, no enclave keys; the devnet's plain URL as a pinned gateway, so
            # every recorded URL is the devnet's own (its enclaves' HTTPS ports are not)
            client = net.new_client(payer.private_key, og_llm_server_url=net.url)
            try:
                with recorder.use_cassette(str(path)) as cassette:
                    SCENARIOS[name](client)
                    count = len(cassette)
            finally:
                client.close()
            print(f"recorded {path.relative_to(REPO_ROOT)}: {count} interactions "
                  f"(served on port {port})")
            written.append(path)
        meta = {
            "base_url": CANONICAL_URL,
            "opg_token": net.network.payments.token_address,
            "tee_registry": net.network.tee_registry_address,
            "payments_chain_id": int(net.network.payments.network.split(":")[-1]),
            "alpha_chain_id": net.network.alpha_chain_id,
            "payer": payer.address,
            "payer_account_index": 0,
            "scrubbed_payment_header": SCRUBBED_PAYMENT,
            "scrubbed_transaction": SCRUBBED_TRANSACTION,
            "model": MODEL.value,
            "note": "written by scripts/record_cassettes.py; replayed by tests/test_cassettes.py",
        }
        meta_path = CASSETTE_DIR / "network.json"
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        written.append(meta_path)
    check_no_secrets(written)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"cassettes to record (default: all of {', '.join(SCENARIOS)})")
    parser.add_argument("--port", type=int, help="serve on this four-digit port (default: 8645 if free, "
                        "else a free one); rewritten to 8645 in the cassettes")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown cassette(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    record(list(args.names) or list(SCENARIOS), port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
