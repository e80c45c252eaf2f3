"""Secrets never show: the SDK fails in every way it can, and nothing it leaves behind holds a secret.

With every logger at DEBUG, the test drives the SDK into each failure it has (a bad key, a wrong
password, a declined payment, the spend cap, a revert, a timeout, a verification failure, network
errors, a broken stream, bad input, twins without or with a wrong key…) next to successful calls,
then scans:

- every log record (message, arguments, formatted traceback), devnet side included;
- `repr()`/`str()` of every public object: the client and its namespaces, the wallet, the network,
  results, chunks, proofs, and each error;
- each error's text, its attributes, and `traceback.format_exception` of it (causes included);
- every file under `tests/cassettes/`.

The secrets: all development private keys (and a fresh random key used here), whole or in halves;
the exact payment headers the SDK sent (captured by a transport wrapper) and the EIP-712
signatures inside them; the hub passwords (right and wrong); the id and refresh tokens the hub
issued; the twins API keys (right and wrong).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

import opengradient as og
from opengradient.client.llm import TextGenerationStream
from opengradient.devnet.chain.keys import dev_accounts
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.hub import DEV_EMAIL, DEV_PASSWORD
from opengradient.devnet.services.twins import DEVNET_TWINS_API_KEY
from opengradient.errors import (
    AuthenticationError,
    ConfigurationError,
    ContractRevertError,
    InvalidInputError,
    ModelNotFoundError,
    NetworkError,
    OpenGradientError,
    PaymentDeclinedError,
    PaymentRequiredError,
    RequestTimeoutError,
    SpendCapExceededError,
    VerificationError,
)

pytestmark = pytest.mark.timeout(300)

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"
WRONG_PASSWORD = "wrong-password-7c1d9e"
WRONG_TWINS_KEY = "og-wrong-twins-key-4b2a"
SECRET_HEADERS = ("payment-signature", "x-payment", "x-api-key", "authorization")
TOKEN_KEYS = ("idToken", "refreshToken", "id_token", "refresh_token", "access_token")


class Vault:
    """Every secret value this test knows of."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str | None, *, halves: bool = False) -> None:
        if not value or len(value) < 8 or value.lower().startswith("bearer 0x") or value == "REDACTED":
            return
        self.values.add(value)
        if halves:
            mid = len(value) // 2
            self.values.update({value[:mid], value[mid:]})

    def add_key(self, key: str) -> None:
        bare = key.lower().removeprefix("0x")
        self.add(bare, halves=True)

    def add_payment_header(self, header: str) -> None:
        self.add(header)
        try:
            document = json.loads(base64.b64decode(header))
        except (binascii.Error, ValueError):
            return
        payload = document.get("payload") if isinstance(document, dict) else None
        signature = payload.get("signature") if isinstance(payload, dict) else None
        if isinstance(signature, str):
            self.add(signature.lower().removeprefix("0x"))

    def find(self, text: str) -> list[str]:
        lowered = text.lower()
        return sorted(s[:12] + "…" for s in self.values if s.lower() in lowered)


class Recorder(httpx.BaseTransport):
    """Passes requests through, noting every secret sent or issued; can fail or tamper on demand."""

    def __init__(self, inner: httpx.BaseTransport, vault: Vault) -> None:
        self.inner, self.vault = inner, vault
        self.fail: Callable[[httpx.Request], Exception | None] = lambda _request: None
        self.mutate: Callable[[httpx.Request, bytes], bytes] | None = None
        self.break_stream = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for name in SECRET_HEADERS:
            value = request.headers.get(name)
            if value:
                if name in ("payment-signature", "x-payment"):
                    self.vault.add_payment_header(value)
                else:
                    self.vault.add(value.removeprefix("Bearer ").strip())
        problem = self.fail(request)
        if problem is not None:
            raise problem
        response = self.inner.handle_request(request)
        if "/auth/v1/" in request.url.path:
            body = response.read()
            try:
                data = json.loads(body)
            except ValueError:
                data = {}
            for key in TOKEN_KEYS:
                if isinstance(data, dict) and isinstance(data.get(key), str):
                    self.vault.add(data[key])
        if self.mutate is not None and response.status_code == 200 and request.url.path.startswith("/v1/"):
            content = self.mutate(request, response.read())
            headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-length"]
            return httpx.Response(200, headers=headers, content=content)
        if self.break_stream and response.headers.get("content-type", "").startswith("text/event-stream"):
            return httpx.Response(200, headers=response.headers, stream=_Broken(response))
        return response


class _Broken(httpx.SyncByteStream):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.response.iter_raw()):
            if i == 1:
                raise httpx.ReadError("connection reset by peer")
            yield chunk


class LogSink(logging.Handler):
    """Every record of every logger, at DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.texts.append(self.format(record))
        except Exception as exc:  # a record that cannot be formatted is still scanned raw
            self.texts.append(f"{record.msg!r} {record.args!r} ({exc})")
        self.texts.append(repr(record.args))
        extras = {k: v for k, v in vars(record).items() if k not in logging.LogRecord(
            "", 0, "", 0, "", (), None).__dict__}
        if extras:
            self.texts.append(repr(extras))


@pytest.fixture
def all_logs() -> Iterator[LogSink]:
    sink = LogSink()
    root = logging.getLogger()
    saved = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
             if isinstance(lg, logging.Logger)}
    saved_root = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(sink)
    isolated = []
    for name in saved:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            logger.addHandler(sink)
            isolated.append(logger)
    try:
        yield sink
    finally:
        root.removeHandler(sink)
        root.setLevel(saved_root)
        for logger in isolated:
            logger.removeHandler(sink)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


class Evidence:
    """Objects, errors and texts to scan."""

    def __init__(self) -> None:
        self.objects: list[tuple[str, Any]] = []
        self.errors: list[tuple[str, BaseException]] = []

    def keep(self, label: str, *objects: Any) -> None:
        self.objects.extend((label, o) for o in objects)

    def fails(self, label: str, expected: type[BaseException] | tuple[type[BaseException], ...],
              call: Callable[[], Any]) -> BaseException:
        try:
            value = call()
            if isinstance(value, TextGenerationStream):
                for _ in value:
                    pass
        except BaseException as exc:
            if not isinstance(exc, expected):
                raise AssertionError(f"{label}: expected {expected}, got {type(exc).__name__}: {exc}") from exc
            self.errors.append((label, exc))
            return exc
        raise AssertionError(f"{label}: did not fail")

    def texts(self) -> Iterator[tuple[str, str]]:
        for label, obj in self.objects:
            yield f"repr of {label}", repr(obj)
            yield f"str of {label}", str(obj)
        for label, exc in self.errors:
            yield f"error text of {label}", f"{exc!s} {exc!r}"
            yield f"error attributes of {label}", repr(vars(exc))
            yield f"traceback of {label}", "".join(traceback.format_exception(exc))


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flip_content(_request: httpx.Request, body: bytes) -> bytes:
    data = json.loads(body)
    choice = data["choices"][0]
    if "message" in choice:
        choice["message"]["content"] = (choice["message"]["content"] or "") + "!"
    return json.dumps(data).encode()


def test_no_secret_in_logs_reprs_errors_tracebacks_or_cassettes(devnet: Devnet, all_logs: LogSink, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    vault = Vault()
    for account in dev_accounts(10):
        vault.add_key(account.private_key)
    stranger = Account.create()  # holds no OPG and no gas
    stranger_key = "0x" + bytes(stranger.key).hex()
    vault.add_key(stranger_key)
    for secret in (DEV_PASSWORD, WRONG_PASSWORD, DEVNET_TWINS_API_KEY, WRONG_TWINS_KEY):
        vault.add(secret)

    recorder = Recorder(devnet._bridge.transport, vault)
    evidence = Evidence()
    key = devnet.accounts[6].private_key

    def client(private_key: str | None = key, **kwargs: Any) -> og.Client:
        made = devnet.new_client(private_key, transport=recorder, **kwargs) if private_key else og.Client(
            None, network=devnet.network, transport=recorder, **kwargs)
        evidence.keep("client", made, made.llm, made.alpha, made.model_hub, made.twins, made.network)
        if made._wallet is not None:
            evidence.keep("wallet", made._wallet)
        return made

    messages = [{"role": "user", "content": "Say something short."}]
    model = devnet.model("price-regression")

    # ---- successes, so results are scanned too -------------------------------------------------------
    main = client()
    chat = main.llm.chat("gpt-4o", messages, max_tokens=20)
    stream = main.llm.chat("gpt-4o", messages, max_tokens=20, stream=True)
    assert isinstance(stream, TextGenerationStream)
    chunks = list(stream)
    completion = main.llm.completion("gpt-4o", "Once upon a time", max_tokens=10)
    inference = main.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input)
    approval = main.llm.ensure_opg_approval(0)
    repository = main.model_hub.create_model(f"secrets-{stranger.address[2:10].lower()}", "a model")
    twin = main.twins.chat("ada", "openai/gpt-4o", messages) if hasattr(main, "twins") else None
    evidence.keep("results", chat, stream, stream.result, *chunks, completion, inference, approval, repository,
                  twin, getattr(chat, "proof", None), inference.proof)
    assert isinstance(chat, og.TextGenerationOutput) and chat.proof is not None
    assert chat.proof.verify(main) and inference.proof is not None and inference.proof.verify(main)
    monkeypatch.setattr(og, "global_client", og.global_client)  # restored after the test
    global_client = og.init(private_key=key, email=DEV_EMAIL, password=DEV_PASSWORD, network=devnet.network,
                            transport=recorder)
    evidence.keep("og.global_client", global_client)

    # ---- every way to fail ---------------------------------------------------------------------------
    bare = key.removeprefix("0x")
    evidence.fails("bad key (not hex)", ConfigurationError, lambda: og.Client("0x" + "g" * 64))
    evidence.fails("bad key (one digit short)", ConfigurationError, lambda: og.Client(key[:-1]))
    evidence.fails("bad key (one byte long)", ConfigurationError, lambda: og.Client(key + "00"))
    evidence.fails("bad key (zero)", ConfigurationError, lambda: og.Client("0x" + "00" * 32))
    evidence.fails("bad key (out of range)", ConfigurationError, lambda: og.Client("0x" + "ff" * 32))
    evidence.fails("bad alpha key", ConfigurationError, lambda: og.Client(key, alpha_private_key=bare[:40]))
    evidence.fails("bad key (not a string)", ConfigurationError, lambda: og.Client(int(bare, 16)))  # type: ignore[arg-type]
    evidence.fails("wrong password", AuthenticationError,
                   lambda: client(password=WRONG_PASSWORD).model_hub.create_model("never-made", "x"))
    evidence.fails("unknown user", AuthenticationError,
                   lambda: client(email="nobody@example.org", password=WRONG_PASSWORD).model_hub.list_files(
                       "never-made", "1.00"))
    evidence.fails("duplicate model", OpenGradientError,
                   lambda: main.model_hub.create_model(repository.name, "again"))
    evidence.fails("missing upload", (OpenGradientError, FileNotFoundError),
                   lambda: main.model_hub.upload(tmp_path / "missing.onnx", repository.name, "1.00"))
    evidence.fails("declined payment (no OPG)", PaymentDeclinedError,
                   lambda: client(stranger_key).llm.chat("gpt-4o", messages, max_tokens=20))
    evidence.fails("spend cap", SpendCapExceededError,
                   lambda: client(max_payment_per_request=1).llm.chat("gpt-4o", messages, max_tokens=20))
    evidence.fails("no key to pay with", PaymentRequiredError,
                   lambda: client(None).llm.chat("gpt-4o", messages, max_tokens=20))
    evidence.fails("approval without gas", OpenGradientError,
                   lambda: client(stranger_key).llm.ensure_opg_approval(1))
    evidence.fails("inference without gas", OpenGradientError,
                   lambda: client(stranger_key).alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input))
    evidence.fails("revert: unknown model", ModelNotFoundError,
                   lambda: main.alpha.infer("bafkreiunknownmodel", og.InferenceMode.VANILLA, model.example_input))
    evidence.fails("revert: input that does not fit", ContractRevertError,
                   lambda: main.alpha.infer(model.cid, og.InferenceMode.VANILLA, {"nope": [1.0]}))
    evidence.fails("invalid input", InvalidInputError, lambda: main.llm.chat("gpt-4o", [{"role": "robot"}]))
    evidence.fails("invalid tensor", InvalidInputError,
                   lambda: main.alpha.infer(model.cid, og.InferenceMode.VANILLA, {"x": [float("nan")]}))
    evidence.fails("input the SDK does not check (known bug: bare TypeError)", Exception,
                   lambda: main.llm.chat("gpt-4o", [{"role": "user", "content": b"bytes"}]))
    evidence.fails("twins without a key", ConfigurationError,
                   lambda: og.Client(key, network=devnet.network, transport=recorder).twins.chat(
                       "ada", "openai/gpt-4o", messages))
    evidence.fails("twins with a wrong key", AuthenticationError,
                   lambda: client(twins_api_key=WRONG_TWINS_KEY).twins.chat("ada", "openai/gpt-4o", messages))
    evidence.fails("a pinned TEE key that is not a key", Exception,
                   lambda: client(tee_public_key="-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----").llm)

    recorder.mutate = _flip_content
    evidence.fails("verification failure", VerificationError,
                   lambda: main.llm.chat("gpt-4o", messages, max_tokens=20))
    recorder.mutate = None

    recorder.break_stream = True
    evidence.fails("stream broken mid-way", NetworkError,
                   lambda: main.llm.chat("gpt-4o", messages, max_tokens=20, stream=True))
    recorder.break_stream = False

    recorder.fail = lambda request: httpx.ReadTimeout("timed out", request=request) if request.url.path.startswith(
        "/v1/") else None
    evidence.fails("timeout", RequestTimeoutError,
                   lambda: client(max_retries=0).llm.chat("gpt-4o", messages, max_tokens=20))
    recorder.fail = lambda request: httpx.ConnectError("refused", request=request) if "/rpc/" in request.url.path \
        else None
    evidence.fails("network error (chain)", NetworkError,
                   lambda: client(max_retries=0).alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input))
    recorder.fail = lambda _request: None

    dead = f"http://127.0.0.1:{_closed_port()}"
    offline = og.Client(key, email=DEV_EMAIL, password=DEV_PASSWORD, network=og.networks.devnet_network(
        dead, opg_token=devnet.network.payments.token_address), timeout=2, max_retries=0)
    evidence.keep("offline client", offline)
    evidence.fails("connection refused (LLM)", NetworkError, lambda: offline.llm.chat("gpt-4o", messages))
    evidence.fails("connection refused (hub)", NetworkError, lambda: offline.model_hub.create_model("x-y", "z"))
    evidence.fails("connection refused (chain)", NetworkError,
                   lambda: offline.alpha.infer(model.cid, og.InferenceMode.VANILLA, model.example_input))
    offline.close()

    # ---- the scan ----------------------------------------------------------------------------------------
    headers = [s for s in vault.values if s.startswith("eyJ")]
    assert len(headers) >= 5, "the payment headers were not captured"
    assert vault.find(f"log line with {headers[0]} in it") and vault.find(key.upper()), "the scanner is blind"
    assert len(evidence.errors) >= 30
    found: list[str] = []
    for where, text in evidence.texts():
        if hits := vault.find(text):
            found.append(f"{where}: {hits}")
    for text in all_logs.texts:
        if hits := vault.find(text):
            found.append(f"log record {text[:120]!r}: {hits}")
    for path in sorted(CASSETTES.rglob("*")):
        if path.is_file() and (hits := vault.find(path.read_text(errors="replace"))):
            found.append(f"cassette {path.relative_to(CASSETTES)}: {hits}")
    assert len(all_logs.texts) > 100, "logging was not captured"
    assert not found, "secrets leaked:\n" + "\n".join(found)


def test_cassettes_carry_no_payment_authorization() -> None:
    """Any x402 document recorded in a cassette is an offer or a redacted header, never a signed payload."""
    for path in sorted(CASSETTES.rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for token in text.replace('"', " ").replace("'", " ").split():
            if not token.startswith("eyJ"):
                continue
            try:
                document = json.loads(base64.b64decode(token + "=" * (-len(token) % 4)))
            except (binascii.Error, ValueError, UnicodeDecodeError):
                continue
            payload = document.get("payload") if isinstance(document, dict) else None
            assert not (isinstance(payload, dict) and payload.get("signature")), f"a signed payment in {path.name}"


def test_bad_pinned_tee_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        og.Client("0x" + "11" * 32, tee_public_key="not a PEM key").llm  # noqa: B018 - the property builds LLM
