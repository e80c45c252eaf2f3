"""The devnet Model Hub: CIDs, the content-addressed store, and the hub and auth routes over ASGI."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from opengradient.devnet.services.hub import DEV_EMAIL, DEV_PASSWORD, HubService, ModelStore, cid_of, is_cid

BASE = "http://hub.test"


class FakeClock:
    """A clock tests move by hand, so token expiry needs no sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(clock: FakeClock) -> HubService:
    return HubService(ModelStore(None), token_ttl=3600, clock=clock)


@pytest.fixture
async def client(service: HubService) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=service.routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def sign_in(client: httpx.AsyncClient, email: str = DEV_EMAIL,
                  password: str = DEV_PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/v1/accounts:signInWithPassword",
                                 json={"email": email, "password": password,
                                       "returnSecureToken": True})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await sign_in(client))["idToken"])


# ---- CIDs


def test_cid_of_empty_string_is_the_known_ipfs_cid() -> None:
    assert cid_of(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@pytest.mark.parametrize("data", [b"", b"hello world\n", bytes(range(256)) * 10])
def test_cid_decodes_to_raw_sha256_multihash(data: bytes) -> None:
    cid = cid_of(data)
    assert cid.startswith("bafkrei") and cid == cid.lower() and "=" not in cid and is_cid(cid)
    raw = base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8))
    assert raw == bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()


# ---- store


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ModelStore:
    return ModelStore(None if request.param == "memory" else tmp_path / "blobs")


def test_store_put_get_has(store: ModelStore) -> None:
    cid = store.put(b"model bytes")
    assert cid == cid_of(b"model bytes")
    assert store.has(cid) and store.get(cid) == b"model bytes" and store.size(cid) == 11
    assert store.put(b"model bytes") == cid  # idempotent
    unknown = cid_of(b"never stored")
    assert not store.has(unknown)
    with pytest.raises(KeyError):
        store.get(unknown)
    with pytest.raises(KeyError):
        store.path(unknown)


def test_store_path_is_the_file_on_disk_and_none_in_memory(store: ModelStore) -> None:
    cid = store.put(b"abc")
    path = store.path(cid)
    if store.directory is None:
        assert path is None
    else:
        assert path is not None and path.read_bytes() == b"abc" and path.parent == store.directory


def test_store_rejects_cids_that_would_escape_the_directory(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "blobs")
    (tmp_path / "secret").write_bytes(b"x")
    for bad in ["../secret", "/etc/passwd", "", "bafkrei" + "A" * 52]:
        assert not store.has(bad)
        with pytest.raises(KeyError):
            store.get(bad)


class BoundedReader(io.RawIOBase):
    """A file object that fails if asked for everything at once (read() or read(-1))."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        assert size is not None and 0 < size <= 4 * 1024 * 1024, "whole-file read"
        self.reads += 1
        return self._data.read(size)


def test_store_put_stream_hashes_in_chunks(store: ModelStore) -> None:
    data = bytes(range(256)) * 12_000  # ~3 MB: several chunks
    reader = BoundedReader(data)
    cid, size = store.put_stream(reader)  # type: ignore[arg-type]
    assert (cid, size) == (cid_of(data), len(data))
    assert reader.reads > 2
    assert store.get(cid) == data


def test_store_put_file(store: ModelStore, tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"\x08\x08" * 1000)
    assert store.put_file(source) == (cid_of(source.read_bytes()), 2000)
    if store.directory is not None:  # no temporary files left behind
        assert sorted(p.name for p in store.directory.iterdir()) == [cid_of(source.read_bytes())]


def test_store_is_thread_safe(store: ModelStore) -> None:
    blobs = [f"blob {i % 10}".encode() for i in range(200)]
    errors: list[BaseException] = []

    def worker(chunk: list[bytes]) -> None:
        try:
            for blob in chunk:
                assert store.get(store.put(blob)) == blob
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(blobs[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(store.has(cid_of(f"blob {i}".encode())) for i in range(10))


# ---- auth


async def test_sign_in_returns_firebase_shaped_tokens(client: httpx.AsyncClient) -> None:
    body = await sign_in(client)
    assert body["email"] == DEV_EMAIL and body["expiresIn"] == "3600"
    assert body["idToken"] and body["refreshToken"] and body["localId"]
    assert body["idToken"] != body["refreshToken"]


@pytest.mark.parametrize(("email", "password", "code"), [
    (DEV_EMAIL, "wrong-password", "INVALID_PASSWORD"),
    ("nobody@example.com", DEV_PASSWORD, "EMAIL_NOT_FOUND"),
    ("", DEV_PASSWORD, "MISSING_EMAIL"),
    (DEV_EMAIL, "", "MISSING_PASSWORD"),
    ("not-an-email", DEV_PASSWORD, "INVALID_EMAIL"),
])
async def test_sign_in_errors(client: httpx.AsyncClient, email: str, password: str,
                              code: str) -> None:
    response = await client.post("/auth/v1/accounts:signInWithPassword",
                                 json={"email": email, "password": password,
                                       "returnSecureToken": True})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
    assert response.json()["error"]["message"] == code


async def test_v3_route_names_are_aliases(client: httpx.AsyncClient) -> None:
    creds = {"email": "v3@example.com", "password": "pw-123456", "returnSecureToken": True}
    assert (await client.post("/auth/v1/signupNewUser", json=creds)).status_code == 200
    response = await client.post("/auth/v1/verifyPassword", json=creds)
    assert response.status_code == 200 and response.json()["idToken"]


async def test_sign_up_creates_a_user_once(client: httpx.AsyncClient) -> None:
    creds = {"email": "alice@example.com", "password": "s3cret-pw", "returnSecureToken": True}
    response = await client.post("/auth/v1/accounts:signUp", json=creds)
    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com" and response.json()["idToken"]
    assert (await sign_in(client, "alice@example.com", "s3cret-pw"))["idToken"]
    again = await client.post("/auth/v1/accounts:signUp", json=creds)
    assert again.status_code == 400 and again.json()["error"]["message"] == "EMAIL_EXISTS"
    weak = await client.post("/auth/v1/accounts:signUp",
                             json={"email": "bob@example.com", "password": "123"})
    assert weak.status_code == 400 and weak.json()["error"]["message"].startswith("WEAK_PASSWORD")


async def test_custom_users_replace_the_dev_user(clock: FakeClock) -> None:
    service = HubService(ModelStore(None), users={"x@y.z": "pw-123456"}, clock=clock)
    app = Starlette(routes=service.routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await sign_in(c, "x@y.z", "pw-123456"))["idToken"]
        response = await c.post("/auth/v1/accounts:signInWithPassword",
                                json={"email": DEV_EMAIL, "password": DEV_PASSWORD})
        assert response.json()["error"]["message"] == "EMAIL_NOT_FOUND"


async def test_token_expires_and_refresh_gives_a_working_token(client: httpx.AsyncClient,
                                                               clock: FakeClock) -> None:
    body = await sign_in(client)
    headers = bearer(body["idToken"])
    assert (await client.post("/api/v0/models/", json={"name": "m", "description": ""},
                              headers=headers)).status_code == 201
    clock.advance(3599)
    assert (await client.get("/api/v0/models/m", headers=headers)).status_code == 200
    clock.advance(1)
    expired = await client.get("/api/v0/models/m", headers=headers)
    assert expired.status_code == 401
    assert "token expired" in expired.json()["error"]["message"]
    assert expired.json()["error"]["code"] == 401

    refreshed = await client.post("/auth/v1/token", data={"grant_type": "refresh_token",
                                                          "refresh_token": body["refreshToken"]})
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["expires_in"] == "3600" and new["user_id"] == body["localId"]
    assert new["refresh_token"] == body["refreshToken"] and new["id_token"] != body["idToken"]
    assert (await client.get("/api/v0/models/m", headers=bearer(new["id_token"]))).status_code == 200


async def test_refresh_errors(client: httpx.AsyncClient) -> None:
    bad = await client.post("/auth/v1/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "INVALID_REFRESH_TOKEN"
    grant = await client.post("/auth/v1/token", data={"grant_type": "password"})
    assert grant.json()["error"]["message"] == "INVALID_GRANT_TYPE"


async def test_refresh_accepts_json_too(client: httpx.AsyncClient) -> None:
    body = await sign_in(client)
    response = await client.post("/auth/v1/token", json={"grant_type": "refresh_token",
                                                         "refresh_token": body["refreshToken"]})
    assert response.status_code == 200 and response.json()["id_token"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer not-a-token"}])
async def test_hub_routes_need_a_valid_token(client: httpx.AsyncClient,
                                             headers: dict[str, str]) -> None:
    for method, path in [("POST", "/api/v0/models/"), ("GET", "/api/v0/models/m"),
                         ("POST", "/api/v0/models/m/versions"),
                         ("POST", "/api/v0/models/m/versions/1.00/files"),
                         ("GET", "/api/v0/models/m/versions/1.00/files")]:
        response = await client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path)
        error = response.json()["error"]
        assert error["code"] == 401 and error["type"] == "authentication_error" and error["message"]


# ---- models and versions


async def test_create_model_and_get_it(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post("/api/v0/models/", json={"name": "price-model",
                                                          "description": "predicts"}, headers=auth)
    assert response.status_code == 201
    assert response.json() == {"name": "price-model", "description": "predicts"}
    model = (await client.get("/api/v0/models/price-model", headers=auth)).json()
    assert model["name"] == "price-model" and model["owner"] == DEV_EMAIL
    assert model["versions"] == []  # the first version is created on its own, as 1.00
    first = await client.post("/api/v0/models/price-model/versions", json={"notes": "1.00", "is_major": False},
                              headers=auth)
    assert first.status_code == 201 and first.json()["versionString"] == "1.00"
    model = (await client.get("/api/v0/models/price-model", headers=auth)).json()
    assert [v["versionString"] for v in model["versions"]] == ["1.00"]


async def test_create_model_without_trailing_slash(client: httpx.AsyncClient,
                                                   auth: dict[str, str]) -> None:
    response = await client.post("/api/v0/models", json={"name": "m2", "description": ""}, headers=auth)
    assert response.status_code == 201 and response.json()["name"] == "m2"


async def test_duplicate_model_is_409(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {"name": "dup", "description": ""}
    assert (await client.post("/api/v0/models/", json=body, headers=auth)).status_code == 201
    again = await client.post("/api/v0/models/", json=body, headers=auth)
    assert again.status_code == 409
    assert again.json()["error"] == {"message": "model 'dup' already exists",
                                     "type": "conflict_error", "code": 409}


@pytest.mark.parametrize("name", ["", "has space", "x" * 101, "slash/name", "ünïcode", "..", 7, None])
async def test_bad_model_names_are_400(client: httpx.AsyncClient, auth: dict[str, str],
                                       name: object) -> None:
    response = await client.post("/api/v0/models/", json={"name": name, "description": ""},
                                 headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("name", ["a", "A.b_c-9", "x" * 100])
async def test_good_model_names(client: httpx.AsyncClient, auth: dict[str, str], name: str) -> None:
    response = await client.post("/api/v0/models/", json={"name": name, "description": ""},
                                 headers=auth)
    assert response.status_code == 201


@pytest.mark.parametrize("version", ["1.00", "3.07", 1.0])
async def test_a_version_in_create_model_is_400(client: httpx.AsyncClient, auth: dict[str, str],
                                                version: object) -> None:
    """The hub numbers versions itself; a create-model body naming one is refused, not ignored."""
    response = await client.post("/api/v0/models/", json={"name": "m", "description": "",
                                                          "version": version}, headers=auth)
    assert response.status_code == 400 and "numbers versions itself" in response.json()["error"]["message"]
    assert (await client.get("/api/v0/models/m", headers=auth)).status_code == 404


async def test_bad_json_is_400(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for content in [b"{not json", b"[1, 2]"]:
        response = await client.post("/api/v0/models/", content=content,
                                     headers={**auth, "Content-Type": "application/json"})
        assert response.status_code == 400


async def test_versions_bump_minor_and_major(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await client.post("/api/v0/models/", json={"name": "v", "description": ""}, headers=auth)
    await client.post("/api/v0/models/v/versions", json={"notes": "", "is_major": True}, headers=auth)  # 1.00

    async def bump(is_major: bool, notes: str = "") -> dict[str, Any]:
        response = await client.post("/api/v0/models/v/versions",
                                     json={"notes": notes, "is_major": is_major}, headers=auth)
        assert response.status_code == 201
        body: dict[str, Any] = response.json()
        return body

    assert await bump(False, "first fix") == {"versionString": "1.01", "notes": "first fix",
                                              "is_major": False}
    assert (await bump(False))["versionString"] == "1.02"
    assert (await bump(True))["versionString"] == "2.00"
    assert (await bump(False))["versionString"] == "2.01"
    model = (await client.get("/api/v0/models/v", headers=auth)).json()
    assert [v["versionString"] for v in model["versions"]] == ["1.00", "1.01", "1.02", "2.00", "2.01"]


async def test_minor_bump_rolls_over_to_next_major(client: httpx.AsyncClient,
                                                   auth: dict[str, str]) -> None:
    await client.post("/api/v0/models/", json={"name": "r", "description": ""}, headers=auth)
    for _ in range(100):  # 1.00 … 1.99
        response = await client.post("/api/v0/models/r/versions", json={}, headers=auth)
    assert response.json()["versionString"] == "1.99"
    response = await client.post("/api/v0/models/r/versions", json={}, headers=auth)
    assert response.json()["versionString"] == "2.00"


async def test_version_errors(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    missing = await client.post("/api/v0/models/nope/versions", json={"notes": ""}, headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    await client.post("/api/v0/models/", json={"name": "m", "description": ""}, headers=auth)
    bad = await client.post("/api/v0/models/m/versions", json={"is_major": "yes"}, headers=auth)
    assert bad.status_code == 400
    assert (await client.get("/api/v0/models/nope", headers=auth)).status_code == 404


# ---- files


async def new_model(client: httpx.AsyncClient, auth: dict[str, str], name: str) -> None:
    """A model and its first version (1.00), in the two requests the official clients send."""
    assert (await client.post("/api/v0/models/", json={"name": name, "description": ""},
                              headers=auth)).status_code == 201
    assert (await client.post(f"/api/v0/models/{name}/versions", json={"notes": "", "is_major": False},
                              headers=auth)).json()["versionString"] == "1.00"


async def upload(client: httpx.AsyncClient, auth: dict[str, str], model: str, version: str,
                 name: str, data: bytes) -> httpx.Response:
    return await client.post(f"/api/v0/models/{model}/versions/{version}/files",
                             files={"file": (name, data, "application/octet-stream")}, headers=auth)


async def test_upload_stores_by_cid_and_lists_files(client: httpx.AsyncClient, auth: dict[str, str],
                                                    service: HubService) -> None:
    await new_model(client, auth, "m")
    data = b"\x08\x07onnx-ish bytes" * 100
    response = await upload(client, auth, "m", "1.00", "model.onnx", data)
    assert response.status_code == 201
    assert response.json() == {"ipfsCid": cid_of(data), "size": len(data), "name": "model.onnx"}
    assert service.store.get(cid_of(data)) == data

    await upload(client, auth, "m", "1.00", "weights.bin", b"w")
    files = (await client.get("/api/v0/models/m/versions/1.00/files", headers=auth)).json()
    assert [(f["name"], f["size"], f["ipfsCid"]) for f in files] == [
        ("model.onnx", len(data), cid_of(data)), ("weights.bin", 1, cid_of(b"w"))]
    assert all(f["createdAt"] == "2023-11-14T22:13:20Z" for f in files)  # the fake clock's time


async def test_reupload_replaces_the_file(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await new_model(client, auth, "m")
    await upload(client, auth, "m", "1.00", "model.onnx", b"old")
    await upload(client, auth, "m", "1.00", "model.onnx", b"new!")
    files = (await client.get("/api/v0/models/m/versions/1.00/files", headers=auth)).json()
    assert [(f["name"], f["ipfsCid"], f["size"]) for f in files] == [
        ("model.onnx", cid_of(b"new!"), 4)]


async def test_large_upload_to_disk_store(tmp_path: Path, clock: FakeClock) -> None:
    """Bigger than Starlette's 1 MiB spool: the part goes to disk and is hashed from there."""
    service = HubService(ModelStore(tmp_path / "blobs"), clock=clock)
    app = Starlette(routes=service.routes())
    data = bytes(range(256)) * 10_000  # 2.56 MB
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        headers = bearer((await sign_in(c))["idToken"])
        await new_model(c, headers, "big")
        response = await upload(c, headers, "big", "1.00", "big.onnx", data)
    assert response.status_code == 201 and response.json()["ipfsCid"] == cid_of(data)
    path = service.store.path(cid_of(data))
    assert path is not None and path.read_bytes() == data


async def test_upload_errors(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert (await upload(client, auth, "nope", "1.00", "a", b"x")).status_code == 404
    await new_model(client, auth, "m")
    assert (await upload(client, auth, "m", "9.00", "a", b"x")).status_code == 404
    no_file = await client.post("/api/v0/models/m/versions/1.00/files",
                                files={"other": ("a", b"x")}, headers=auth)
    assert no_file.status_code == 400 and "'file'" in no_file.json()["error"]["message"]
    not_a_file = await client.post("/api/v0/models/m/versions/1.00/files",
                                   data={"file": "just text"}, headers=auth)
    assert not_a_file.status_code == 400
    not_multipart = await client.post("/api/v0/models/m/versions/1.00/files", content=b"raw",
                                      headers=auth)
    assert not_multipart.status_code == 400
    assert (await client.get("/api/v0/models/m/versions/9.00/files", headers=auth)).status_code == 404
    assert (await client.get("/api/v0/models/x/versions/1.00/files", headers=auth)).status_code == 404


async def test_upload_keeps_only_the_base_name(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await new_model(client, auth, "m")
    response = await upload(client, auth, "m", "1.00", "../../etc/model.onnx", b"x")
    assert response.status_code == 201 and response.json()["name"] == "model.onnx"


async def test_unexpected_failure_is_a_json_500(client: httpx.AsyncClient, auth: dict[str, str],
                                                service: HubService,
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    await new_model(client, auth, "m")

    def broken(source: object) -> tuple[str, int]:
        raise OSError("disk full")

    monkeypatch.setattr(service.store, "put_stream", broken)
    response = await upload(client, auth, "m", "1.00", "a.onnx", b"x")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "disk full" in caplog.text


def test_publish_preloads_a_model(service: HubService, tmp_path: Path) -> None:
    source = tmp_path / "price.onnx"
    source.write_bytes(b"weights")
    assert service.publish("price", source, description="d") == cid_of(b"weights")
    assert service.publish("price", b"more", filename="extra.bin") == cid_of(b"more")
    assert service.model_names() == ["price"]
    with pytest.raises(ValueError):
        service.publish("bad name", b"x")


# ---- logging


async def test_requests_are_logged_without_secrets(client: httpx.AsyncClient,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="opengradient.devnet.services.hub")
    body = await sign_in(client)
    headers = bearer(body["idToken"])
    await client.post("/api/v0/models/", json={"name": "logged", "description": ""}, headers=headers)
    await client.post("/auth/v1/token", data={"grant_type": "refresh_token",
                                              "refresh_token": body["refreshToken"]})
    records = [r for r in caplog.records if r.name == "opengradient.devnet.services.hub"]
    messages = [r.getMessage() for r in records]
    assert all(r.levelno == logging.INFO for r in records)
    assert any("POST /auth/v1/accounts:signInWithPassword -> 200" in m for m in messages)
    assert any("POST /api/v0/models/ -> 201" in m for m in messages)
    text = caplog.text
    for secret in (DEV_PASSWORD, body["idToken"], body["refreshToken"]):
        assert secret not in text
