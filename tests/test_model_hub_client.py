"""The Model Hub client against the devnet hub, in-process (no sockets), sync and async."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from opengradient.client._http import HttpCore
from opengradient.client.model_hub import ModelHub
from opengradient.devnet.services.hub import DEV_EMAIL, DEV_PASSWORD, HubService, ModelStore, cid_of
from opengradient.devnet.transport import ASGIBridge
from opengradient.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OpenGradientError,
)

HUB_URL = "http://devnet.test/api/v0"
AUTH_URL = "http://devnet.test/auth/v1"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SwappableApp:
    """An ASGI app whose hub can be replaced mid-test (a devnet restart forgets every token)."""

    def __init__(self, service: HubService) -> None:
        self.swap(service)

    def swap(self, service: HubService) -> None:
        self.service = service
        self.app = Starlette(routes=service.routes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps a transport and remembers each request's method, path and status."""

    def __init__(self, sync: httpx.BaseTransport | None = None,
                 async_: httpx.AsyncBaseTransport | None = None) -> None:
        self._sync, self._async = sync, async_
        self.calls: list[tuple[str, str, int]] = []
        self.urls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert self._sync is not None
        response = self._sync.handle_request(request)
        self._record(request, response)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self._async is not None
        response = await self._async.handle_async_request(request)
        self._record(request, response)
        return response

    def _record(self, request: httpx.Request, response: httpx.Response) -> None:
        self.calls.append((request.method, request.url.path, response.status_code))
        self.urls.append(str(request.url))

    def paths(self) -> list[str]:
        return [path.rsplit("/", 1)[-1] if "/auth/" in path else path for _, path, _ in self.calls]


class Devnet:
    """The hub mounted at both prefixes, with a client-side and a server-side fake clock."""

    def __init__(self, *, email: str | None = DEV_EMAIL, password: str | None = DEV_PASSWORD,
                 auth_api_key: str | None = None) -> None:
        self.server_clock = FakeClock()
        self.client_clock = FakeClock()
        self.app = SwappableApp(self.new_service())
        self.bridge = ASGIBridge(self.app)
        self.recorder = Recorder(self.bridge.transport, self.bridge.async_transport)
        self.http = HttpCore(transport=self.recorder, async_transport=self.recorder)
        self.hub = ModelHub(self.http, hub_url=HUB_URL, auth_url=AUTH_URL, email=email,
                            password=password, auth_api_key=auth_api_key, clock=self.client_clock)

    def new_service(self) -> HubService:
        return HubService(ModelStore(None), token_ttl=3600, clock=self.server_clock)

    def advance(self, seconds: float) -> None:
        self.server_clock.now += seconds
        self.client_clock.now += seconds

    def close(self) -> None:
        self.http.close()
        self.bridge.close()


@pytest.fixture
def devnet() -> Iterator[Devnet]:
    net = Devnet()
    yield net
    net.close()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(bytes(range(256)) * 4000)  # 1,024,000 bytes: several 256 KiB chunks
    return path


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, sent: int, total: int) -> None:
        self.calls.append((sent, total))

    def check(self, size: int) -> None:
        assert self.calls, "progress never called"
        assert self.calls[-1] == (size, size)
        sent = [s for s, _ in self.calls]
        assert sent == sorted(sent) and all(total == size for _, total in self.calls)
        assert len(self.calls) >= 2


# ---- the whole flow


def test_create_version_upload_list_sync(devnet: Devnet, model_file: Path) -> None:
    hub = devnet.hub
    repo = hub.create_model("price-model", "predicts prices")
    assert (repo.name, repo.initialVersion) == ("price-model", "1.00")
    version = hub.create_version("price-model", notes="retrained")
    assert version == {"versionString": "1.01", "notes": "retrained", "is_major": False}
    assert version["versionString"] == "1.01"
    assert hub.create_version("price-model", is_major=True)["versionString"] == "2.00"

    progress = Progress()
    result = hub.upload(model_file, "price-model", "1.01", progress=progress)
    data = model_file.read_bytes()
    assert result.modelCid == cid_of(data) and result.size == len(data)
    progress.check(len(data))
    assert devnet.app.service.store.get(result.modelCid) == data

    files = hub.list_files("price-model", "1.01")
    assert len(files) == 1
    assert files[0]["name"] == "model.onnx" and files[0]["ipfsCid"] == result.modelCid
    assert files[0]["size"] == len(data) and files[0]["createdAt"]
    assert hub.list_files("price-model", "2.00") == []
    # one sign-in for the whole session
    assert devnet.recorder.paths().count("accounts:signInWithPassword") == 1


async def test_create_version_upload_list_async(model_file: Path) -> None:
    clock = FakeClock()
    service = HubService(ModelStore(None), clock=clock)
    app = Starlette(routes=service.routes())
    http = HttpCore(async_transport=httpx.ASGITransport(app=app))
    hub = ModelHub(http, hub_url=HUB_URL, auth_url=AUTH_URL, email=DEV_EMAIL,
                   password=DEV_PASSWORD, clock=clock)
    try:
        repo = await hub.acreate_model("async-model", "d")
        assert repo.initialVersion == "1.00"
        assert (await hub.acreate_version("async-model", "n"))["versionString"] == "1.01"
        progress = Progress()
        result = await hub.aupload(str(model_file), "async-model", "1.01", progress=progress)
        assert result.modelCid == cid_of(model_file.read_bytes())
        progress.check(model_file.stat().st_size)
        files = await hub.alist_files("async-model", "1.01")
        assert [f["ipfsCid"] for f in files] == [result.modelCid]
    finally:
        await http.aclose()


async def test_async_through_the_bridge(devnet: Devnet, model_file: Path) -> None:
    await devnet.hub.acreate_model("bridged", "")
    result = await devnet.hub.aupload(model_file, "bridged", "1.00")
    assert result.modelCid == cid_of(model_file.read_bytes())
    await devnet.http.aclose()


def test_empty_file_upload_reports_progress_once(devnet: Devnet, tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    devnet.hub.create_model("empty", "")
    progress = Progress()
    result = devnet.hub.upload(empty, "empty", "1.00", progress=progress)
    assert result.modelCid == cid_of(b"") and result.size == 0
    assert progress.calls == [(0, 0)]


# ---- tokens


def test_token_near_expiry_is_refreshed_before_the_call(devnet: Devnet) -> None:
    devnet.hub.create_model("m", "")
    devnet.advance(3600 - 30)  # inside the 60 s margin
    devnet.hub.create_version("m")
    assert devnet.recorder.paths() == ["accounts:signInWithPassword", "/api/v0/models/",
                                       "/api/v0/models/m/versions", "token", "/api/v0/models/m/versions"]
    assert all(status < 400 for _, _, status in devnet.recorder.calls)


def test_token_expired_mid_session_is_refreshed_after_401(devnet: Devnet, model_file: Path) -> None:
    """The server's clock runs ahead of the client's: the hub answers 401, the client refreshes."""
    devnet.hub.create_model("m", "")
    devnet.server_clock.now += 3600
    progress = Progress()
    result = devnet.hub.upload(model_file, "m", "1.00", progress=progress)
    assert result.modelCid == cid_of(model_file.read_bytes())
    calls = devnet.recorder.calls
    assert [(p.rsplit("/", 1)[-1], s) for _, p, s in calls[3:]] == [
        ("files", 401), ("token", 200), ("files", 201)]
    assert progress.calls[-1] == (result.size, result.size)


def test_devnet_restart_forces_a_new_sign_in(devnet: Devnet) -> None:
    devnet.hub.create_model("m", "")
    devnet.app.swap(devnet.new_service())  # every token and refresh token is forgotten
    assert devnet.hub.create_model("m", "").name == "m"
    assert [(p, s) for p, (_, _, s) in zip(devnet.recorder.paths(), devnet.recorder.calls,
                                           strict=True)][3:] == [
        ("/api/v0/models/", 401), ("token", 400), ("accounts:signInWithPassword", 200),
        ("/api/v0/models/", 201), ("/api/v0/models/m/versions", 201)]


def test_hub_refusing_even_a_fresh_token_is_an_authentication_error(devnet: Devnet) -> None:
    devnet.hub.create_model("m", "")
    devnet.server_clock.now += 3600  # the client's token is expired for the server...
    devnet.app.service.token_ttl = -1  # ...and so is every token it issues from now on
    with pytest.raises(AuthenticationError, match="token expired") as info:
        devnet.hub.create_version("m")
    assert info.value.status_code == 401


# ---- errors before any request


def test_missing_file_fails_before_any_request(devnet: Devnet, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.onnx"
    with pytest.raises(InvalidInputError, match="model file not found") as info:
        devnet.hub.upload(missing, "m", "1.00")
    assert str(missing) in str(info.value)
    with pytest.raises(InvalidInputError, match="is a directory"):
        devnet.hub.upload(tmp_path, "m", "1.00")
    assert devnet.recorder.calls == []


async def test_missing_file_fails_before_any_request_async(devnet: Devnet, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        await devnet.hub.aupload(tmp_path / "x.onnx", "m", "1.00")
    assert devnet.recorder.calls == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads every file")
def test_unreadable_file_fails_before_any_request(devnet: Devnet, tmp_path: Path) -> None:
    locked = tmp_path / "locked.onnx"
    locked.write_bytes(b"x")
    locked.chmod(0)
    with pytest.raises(InvalidInputError, match="cannot read"):
        devnet.hub.upload(locked, "m", "1.00")
    assert devnet.recorder.calls == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_special_file_fails_before_any_request(devnet: Devnet, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        devnet.hub.upload(fifo, "m", "1.00")
    assert devnet.recorder.calls == []


@pytest.mark.parametrize("name", ["", "has space", "x" * 101, "a/b", "..", None])
def test_bad_model_name_fails_before_any_request(devnet: Devnet, name: Any) -> None:
    with pytest.raises(InvalidInputError, match="model name"):
        devnet.hub.create_model(name, "d")
    assert devnet.recorder.calls == []


@pytest.mark.parametrize("version", ["1", "1.0", "v1.00", "", "3.00"])
def test_bad_initial_version_fails_before_any_request(devnet: Devnet, version: str) -> None:
    with pytest.raises(InvalidInputError, match="version"):
        devnet.hub.create_model("m", "d", version=version)
    assert devnet.recorder.calls == []


def test_no_credentials_is_a_configuration_error() -> None:
    net = Devnet(email=None, password=None)
    try:
        with pytest.raises(ConfigurationError, match="pass email= and password= to og.init"):
            net.hub.create_model("m", "d")
        assert net.recorder.calls == []
    finally:
        net.close()


# ---- errors from the hub


def test_duplicate_name_is_a_conflict(devnet: Devnet) -> None:
    devnet.hub.create_model("dup", "")
    with pytest.raises(ConflictError, match="model 'dup' already exists") as info:
        devnet.hub.create_model("dup", "")
    assert info.value.status_code == 409


def test_unknown_model_or_version_is_not_found(devnet: Devnet, model_file: Path) -> None:
    with pytest.raises(NotFoundError, match="model 'ghost' not found"):
        devnet.hub.create_version("ghost")
    devnet.hub.create_model("m", "")
    with pytest.raises(NotFoundError):
        devnet.hub.upload(model_file, "m", "7.00")
    with pytest.raises(NotFoundError):
        devnet.hub.list_files("m", "7.00")


def test_wrong_password_is_an_authentication_error(tmp_path: Path) -> None:
    net = Devnet(password="not-the-password")
    try:
        with pytest.raises(AuthenticationError, match="INVALID_PASSWORD"):
            net.hub.create_model("m", "d")
    finally:
        net.close()


# ---- secrets


def test_password_and_tokens_never_leak(model_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "hunter2-super-secret"
    net = Devnet(password=secret)
    net.app.service.add_user(DEV_EMAIL, secret)
    errors: list[BaseException] = []

    def collect(action: Callable[[], object]) -> None:
        try:
            action()
        except OpenGradientError as exc:
            errors.append(exc)

    try:
        hub = net.hub
        hub.create_model("m", "")
        tokens = [hub._id_token, hub._refresh_token]
        assert all(tokens)
        assert secret not in repr(hub) and DEV_EMAIL in repr(hub)
        collect(lambda: hub.create_model("m", ""))
        collect(lambda: hub.create_version("ghost"))
        collect(lambda: hub.upload(model_file.parent / "missing", "m", "1.00"))
        net.app.swap(net.new_service())  # forgets the tokens; the password is the default again
        collect(lambda: hub.create_version("m"))  # 401, refresh refused, sign-in refused
        assert len(errors) == 4
        assert isinstance(errors[-1], AuthenticationError)
        for exc in errors:
            texts = [str(exc), repr(exc), json.dumps(getattr(exc, "body", None), default=str),
                     str(getattr(exc, "hint", ""))]
            for text in texts:
                assert secret not in text
                assert all(str(token) not in text for token in tokens)
        assert secret not in repr(hub)
        assert secret not in caplog.text
        assert all(str(token) not in caplog.text for token in tokens)
    finally:
        net.close()


def test_api_key_goes_only_to_auth_calls_and_not_into_errors() -> None:
    net = Devnet(auth_api_key="web-api-key", password="wrong-password")
    try:
        with pytest.raises(AuthenticationError) as info:
            net.hub.create_model("m", "")
        assert "web-api-key" not in str(info.value) and "key=" not in info.value.url
        assert net.recorder.urls == [f"{AUTH_URL}/accounts:signInWithPassword?key=web-api-key"]
    finally:
        net.close()
    net = Devnet(auth_api_key="web-api-key")
    try:
        net.hub.create_model("m", "")
        net.advance(3590)
        net.hub.create_version("m")
        assert net.recorder.urls == [f"{AUTH_URL}/accounts:signInWithPassword?key=web-api-key",
                                     f"{HUB_URL}/models/", f"{HUB_URL}/models/m/versions",
                                     f"{AUTH_URL}/token?key=web-api-key", f"{HUB_URL}/models/m/versions"]
    finally:
        net.close()


def test_public_identity_toolkit_refreshes_through_secure_token() -> None:
    public = ModelHub(HttpCore(), hub_url="https://api.opengradient.ai/api/v0",
                      auth_url="https://identitytoolkit.googleapis.com/v1", email=None, password=None)
    assert public.token_url == "https://securetoken.googleapis.com/v1/token"
    local = ModelHub(HttpCore(), hub_url=HUB_URL, auth_url=AUTH_URL + "/", email=None, password=None)
    assert local.token_url == f"{AUTH_URL}/token"


def test_hub_without_version_in_create_answer_gets_a_version_created() -> None:
    """A hub whose POST /models/ creates the model alone: the client adds the first version."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("accounts:signInWithPassword"):
            return httpx.Response(200, json={"idToken": "t", "refreshToken": "r", "expiresIn": "3600"})
        assert request.headers["Authorization"] == "Bearer t"
        if request.url.path == "/api/v0/models/":
            return httpx.Response(201, json={"name": "m", "id": 1})
        return httpx.Response(201, json={"versionString": "0.01", "notes": "", "is_major": False})

    http = HttpCore(transport=httpx.MockTransport(handler))
    hub = ModelHub(http, hub_url=HUB_URL, auth_url=AUTH_URL, email="a@b.c", password="pw")
    assert hub.create_model("m", "d").initialVersion == "0.01"
    assert seen == ["POST /auth/v1/accounts:signInWithPassword", "POST /api/v0/models/",
                    "POST /api/v0/models/m/versions"]


def test_transport_failure_is_a_network_error() -> None:
    from opengradient.errors import NetworkError

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    hub = ModelHub(HttpCore(transport=httpx.MockTransport(handler)), hub_url=HUB_URL,
                   auth_url=AUTH_URL, email="a@b.c", password="pw")
    with pytest.raises(NetworkError, match="Model Hub sign-in failed"):
        hub.create_model("m", "d")
