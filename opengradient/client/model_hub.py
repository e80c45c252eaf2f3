"""The Model Hub namespace: create models and versions, upload files, list them.

Every operation is written once, as a generator that yields the HTTP calls it needs and receives
their responses; `_run` drives it with the sync client and `_arun` with the async one. So the
sync method and its `a`-prefixed twin share validation, sign-in, token refresh, the retry after a
401 and error mapping, and differ only in how bytes are sent.

Sign-in speaks Firebase Identity Toolkit (email/password → id token + refresh token); the token is
refreshed shortly before it expires. Passwords and tokens never appear in reprs, logs or errors.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from opengradient.bounded_json import response_json
from opengradient.client._http import HttpCore, raise_for_status, transport_errors
from opengradient.errors import (
    AuthenticationError,
    ConfigurationError,
    HTTPStatusError,
    InvalidInputError,
    OpenGradientError,
    RateLimitError,
)
from opengradient.types import FileUploadResult, ModelFileInfo, ModelRepository, ModelVersion

logger = logging.getLogger("opengradient.client.model_hub")

T = TypeVar("T")

#: Model names: 1–100 characters of letters, digits, `.`, `_` and `-` (the hub's own rule).
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
#: Version strings: `<int>.<2 digits>`, e.g. `1.00`, `2.13`.
VERSION_PATTERN = re.compile(r"^[0-9]+\.[0-9]{2}$")
#: The version the hub gives a model's first version.
FIRST_VERSION = "1.00"
#: Refresh the id token when it has less than this many seconds left.
REFRESH_MARGIN = 60.0
#: Upload chunk size: large enough for throughput, small enough for smooth progress reports.
UPLOAD_CHUNK = 256 * 1024

_CREDENTIALS_HINT = "pass email= and password= to og.init, or set OG_EMAIL and OG_PASSWORD"
_SECURE_TOKEN_URL = "https://securetoken.googleapis.com/v1/token"


def model_name_problem(name: object) -> str | None:
    """Why `name` is not a valid model name, or None when it is (shared with the devnet hub)."""
    if not isinstance(name, str):
        return f"model name must be a string, not {type(name).__name__}"
    if not MODEL_NAME_PATTERN.match(name):
        return (f"invalid model name {name!r}: use 1-100 characters of letters, digits, "
                "'.', '_' and '-'")
    if set(name) == {"."}:
        return f"invalid model name {name!r}: a name cannot be only dots"
    return None


@dataclass
class _Call:
    """One HTTP request, described independently of the sync or async client that sends it."""

    method: str
    url: str
    what: str
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    data: dict[str, str] | None = None
    upload: _MultipartFile | None = None


_Flow = Generator[_Call, httpx.Response, T]


class _MultipartFile(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A `multipart/form-data` body with one file part, streamed from disk chunk by chunk.

    The length is known up front (so the request has a Content-Length, not chunked encoding) and
    the body can be iterated again, which the retry after a 401 needs; each pass reports progress
    from zero. A file that changes size while it is sent fails instead of corrupting the body.
    """

    def __init__(self, path: Path, size: int,
                 progress: Callable[[int, int], None] | None) -> None:
        self.path = path
        self.size = size
        self.progress = progress
        self.boundary = secrets.token_hex(16)
        filename = path.name.replace("\\", "\\\\").replace('"', "%22")
        filename = filename.replace("\r", "").replace("\n", "")
        self._head = (f"--{self.boundary}\r\n"
                      f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n").encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int:
        return len(self._head) + self.size + len(self._tail)

    def _next_read(self, sent: int) -> int:
        return min(UPLOAD_CHUNK, self.size - sent)

    def _check(self, chunk: bytes, sent: int) -> None:
        if not chunk and sent < self.size:
            raise InvalidInputError(f"{self.path} shrank while it was being uploaded "
                                    f"({sent} of {self.size} bytes sent)")

    def _report(self, sent: int) -> None:
        if self.progress is not None:
            self.progress(sent, self.size)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        sent = 0
        with open(self.path, "rb") as source:
            while sent < self.size:
                chunk = source.read(self._next_read(sent))
                self._check(chunk, sent)
                yield chunk
                sent += len(chunk)
                self._report(sent)
        yield self._tail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import anyio.to_thread  # httpx's own dependency; disk reads stay off the event loop

        yield self._head
        sent = 0
        source = await anyio.to_thread.run_sync(open, self.path, "rb")
        try:
            while sent < self.size:
                chunk = await anyio.to_thread.run_sync(source.read, self._next_read(sent))
                self._check(chunk, sent)
                yield chunk
                sent += len(chunk)
                self._report(sent)
        finally:
            source.close()
        yield self._tail


class ModelHub:
    """The Model Hub: `create_model`, `create_version`, `upload`, `list_files` and async twins.

    Built by the client with its shared `HttpCore`. Signs in on first need with `email` and
    `password`; `auth_api_key` is sent as `?key=` on sign-in calls (the public Identity Toolkit
    needs it, the devnet ignores it). `token_url` defaults to Secure Token for the public Identity
    Toolkit and to `{auth_url}/token` otherwise. `clock` exists so tests can expire tokens.
    """

    def __init__(self, http: HttpCore, *, hub_url: str, auth_url: str, email: str | None,
                 password: str | None, auth_api_key: str | None = None,
                 token_url: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self._http = http
        self.hub_url = hub_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        if token_url is None:
            token_url = (_SECURE_TOKEN_URL if "identitytoolkit.googleapis.com" in self.auth_url
                         else f"{self.auth_url}/token")
        self.token_url = token_url
        self.email = email
        self._password = password
        self._api_key = auth_api_key
        self._clock = clock
        self._id_token: str | None = None
        self._refresh_token: str | None = None
        self._expires_at = 0.0

    def __repr__(self) -> str:
        state = "signed in" if self._id_token else "not signed in"
        return f"ModelHub(hub_url={self.hub_url!r}, email={self.email!r}, {state})"

    # ---- public API

    def create_model(self, name: str, desc: str | None, version: str = "1.00") -> ModelRepository:
        """Create a model and its first version; returns `ModelRepository(name, initialVersion)`.

        Two requests, as the hub wants them: the model (`POST /models/`), then its first version
        (`POST /models/{name}/versions`), which the hub numbers 1.00. `version` is there for
        0.7.4's signature: anything but "1.00" is refused before a request is made.
        """
        return self._run(self._create_model(name, desc, version))

    async def acreate_model(self, name: str, desc: str | None,
                            version: str = "1.00") -> ModelRepository:
        """Async `create_model`."""
        return await self._arun(self._create_model(name, desc, version))

    def create_version(self, name: str, notes: str = "", is_major: bool = False) -> ModelVersion:
        """Add a version (minor bump, or the next major with `is_major`); returns the hub's dict."""
        return self._run(self._create_version(name, notes, is_major))

    async def acreate_version(self, name: str, notes: str = "",
                              is_major: bool = False) -> ModelVersion:
        """Async `create_version`."""
        return await self._arun(self._create_version(name, notes, is_major))

    def upload(self, model_path: str | os.PathLike[str], model_name: str, version: str, *,
               progress: Callable[[int, int], None] | None = None) -> FileUploadResult:
        """Stream a file into a version; `modelCid` of the result is what `alpha.infer` runs.

        `progress(sent_bytes, total_bytes)` is called as chunks go out and once more with
        `(total, total)` after the hub accepted the file.
        """
        return self._run(self._upload(model_path, model_name, version, progress))

    async def aupload(self, model_path: str | os.PathLike[str], model_name: str, version: str, *,
                      progress: Callable[[int, int], None] | None = None) -> FileUploadResult:
        """Async `upload` (disk reads run in a worker thread)."""
        return await self._arun(self._upload(model_path, model_name, version, progress))

    def list_files(self, model_name: str, version: str) -> list[ModelFileInfo]:
        """The files of one version: `{name, size, ipfsCid, createdAt}` each."""
        return self._run(self._list_files(model_name, version))

    async def alist_files(self, model_name: str, version: str) -> list[ModelFileInfo]:
        """Async `list_files`."""
        return await self._arun(self._list_files(model_name, version))

    # ---- operations, written once

    def _create_model(self, name: str, desc: str | None, version: str) -> _Flow[ModelRepository]:
        if problem := model_name_problem(name):
            raise InvalidInputError(problem)
        desc = "" if desc is None else desc
        if not isinstance(desc, str):
            raise InvalidInputError(f"model description must be a string, not {type(desc).__name__}")
        _check_version(version)
        if version != FIRST_VERSION:
            raise InvalidInputError(f"a new model's first version is {FIRST_VERSION}, not {version}: the hub "
                                    "numbers versions itself", hint="add later versions with create_version")
        body = {"name": name, "description": desc}
        response = yield from self._authed(
            lambda: _Call("POST", f"{self.hub_url}/models/", "create model", json=body))
        data = _json_object(response, "create model")
        created = data.get("name")
        if not isinstance(created, str) or not created:
            raise OpenGradientError("the hub's create-model answer has no name")
        first = yield from self._create_version(created, "", False)
        return ModelRepository(name=created, initialVersion=first["versionString"])

    def _create_version(self, name: str, notes: str, is_major: bool) -> _Flow[ModelVersion]:
        _check_text("model name", name)
        if not isinstance(notes, str):
            raise InvalidInputError(f"notes must be a string, not {type(notes).__name__}")
        body = {"notes": notes, "is_major": bool(is_major)}
        response = yield from self._authed(
            lambda: _Call("POST", f"{self._model_url(name)}/versions", "create version", json=body))
        data = _json_object(response, "create version")
        version = data.get("versionString")
        if not isinstance(version, str):
            raise OpenGradientError("the hub's create-version answer has no versionString")
        return ModelVersion(versionString=version, notes=str(data.get("notes", notes)),
                            is_major=bool(data.get("is_major", is_major)))

    def _upload(self, model_path: str | os.PathLike[str], model_name: str, version: str,
                progress: Callable[[int, int], None] | None) -> _Flow[FileUploadResult]:
        path, size = _readable_file(model_path)
        _check_text("model name", model_name)
        _check_text("version", version)
        url = f"{self._model_url(model_name)}/versions/{quote(version, safe='')}/files"

        def call() -> _Call:
            return _Call("POST", url, "upload", upload=_MultipartFile(path, size, progress))

        response = yield from self._authed(call)
        data = _json_object(response, "upload")
        cid = data.get("ipfsCid")
        if not isinstance(cid, str):
            raise OpenGradientError("the hub's upload answer has no ipfsCid")
        if progress is not None:
            progress(size, size)
        return FileUploadResult(modelCid=cid, size=int(data.get("size", size)))

    def _list_files(self, model_name: str, version: str) -> _Flow[list[ModelFileInfo]]:
        _check_text("model name", model_name)
        _check_text("version", version)
        url = f"{self._model_url(model_name)}/versions/{quote(version, safe='')}/files"
        response = yield from self._authed(lambda: _Call("GET", url, "list files"))
        data = _json(response, "list files")
        if not isinstance(data, list):
            raise OpenGradientError("the hub's file list is not a JSON list")
        return [ModelFileInfo(name=str(item.get("name", "")), size=int(item.get("size", 0)),
                              ipfsCid=str(item.get("ipfsCid", "")),
                              createdAt=str(item.get("createdAt", "")))
                for item in data if isinstance(item, dict)]

    def _model_url(self, name: str) -> str:
        return f"{self.hub_url}/models/{quote(name, safe='')}"

    # ---- auth

    def _authed(self, build: Callable[[], _Call]) -> _Flow[httpx.Response]:
        """Send a hub call with a valid token; after a 401, refresh (or sign in) and retry once."""
        token = yield from self._token(force=False)
        call = build()
        call.headers["Authorization"] = f"Bearer {token}"
        response = yield call
        if response.status_code == 401:
            logger.debug("hub answered 401 to %s; renewing the token and retrying", call.what)
            token = yield from self._token(force=True)
            call = build()
            call.headers["Authorization"] = f"Bearer {token}"
            response = yield call
        raise_for_status(response, hint=_hint(response.status_code))
        return response

    def _token(self, *, force: bool) -> _Flow[str]:
        """A valid id token: the cached one, a refreshed one, or one from a new sign-in."""
        if (not force and self._id_token is not None
                and self._clock() < self._expires_at - REFRESH_MARGIN):
            return self._id_token
        if self._refresh_token is not None:
            response = yield _Call("POST", self.token_url, "token refresh", params=self._key(),
                                   data={"grant_type": "refresh_token",
                                         "refresh_token": self._refresh_token})
            if response.is_success:
                data = _json_object(response, "token refresh")
                return self._keep_tokens(data.get("id_token"), data.get("refresh_token"),
                                         data.get("expires_in"), response)
            logger.debug("token refresh refused (HTTP %d); signing in again", response.status_code)
            self._refresh_token = None
        if not self.email or not self._password:
            raise ConfigurationError("the Model Hub needs an account's email and password",
                                     hint=_CREDENTIALS_HINT, arguments=("email", "password"))
        response = yield _Call("POST", f"{self.auth_url}/accounts:signInWithPassword", "sign-in",
                               params=self._key(),
                               json={"email": self.email, "password": self._password,
                                     "returnSecureToken": True})
        if not response.is_success:
            raise _auth_failure(response)
        data = _json_object(response, "sign-in")
        logger.debug("signed in to the Model Hub")
        return self._keep_tokens(data.get("idToken"), data.get("refreshToken"),
                                 data.get("expiresIn"), response)

    def _keep_tokens(self, id_token: object, refresh_token: object, expires_in: object,
                     response: httpx.Response) -> str:
        if not isinstance(id_token, str) or not id_token:
            raise AuthenticationError("the sign-in answer carries no id token",
                                      status_code=response.status_code, url=_public_url(response))
        try:
            lifetime = float(expires_in) if expires_in is not None else 3600.0  # type: ignore[arg-type]
        except (TypeError, ValueError):
            lifetime = 3600.0
        self._id_token = id_token
        if isinstance(refresh_token, str) and refresh_token:
            self._refresh_token = refresh_token
        self._expires_at = self._clock() + lifetime
        return id_token

    def _key(self) -> dict[str, str] | None:
        return {"key": self._api_key} if self._api_key else None

    # ---- drivers

    def _run(self, flow: _Flow[T]) -> T:
        """Drive an operation with the sync client."""
        client = self._http.sync
        try:
            call = next(flow)
            while True:
                request = _build(client, call)
                with transport_errors(f"Model Hub {call.what}"):
                    response = client.send(request)
                call = flow.send(response)
        except StopIteration as done:
            return done.value

    async def _arun(self, flow: _Flow[T]) -> T:
        """Drive an operation with the async client."""
        client = self._http.async_
        try:
            call = next(flow)
            while True:
                request = _build(client, call)
                with transport_errors(f"Model Hub {call.what}"):
                    response = await client.send(request)
                call = flow.send(response)
        except StopIteration as done:
            return done.value


def _build(client: httpx.Client | httpx.AsyncClient, call: _Call) -> httpx.Request:
    """An httpx request with the client's defaults (headers, timeout) for one call."""
    headers = dict(call.headers)
    if call.upload is not None:
        headers["Content-Type"] = call.upload.content_type
        headers["Content-Length"] = str(call.upload.content_length)
    request = client.build_request(call.method, call.url, params=call.params, headers=headers,
                                   json=call.json, data=call.data)
    if call.upload is None:
        return request
    # build_request cannot take a stream object: rebuild with the merged headers and extensions.
    return httpx.Request(request.method, request.url, headers=request.headers,
                         stream=call.upload, extensions=request.extensions)


def _check_version(version: object) -> None:
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        raise InvalidInputError(f"invalid version {version!r}: use <int>.<2 digits>, e.g. '1.00'")


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty string, got {value!r}")


def _readable_file(model_path: str | os.PathLike[str]) -> tuple[Path, int]:
    """The path and size of a regular, readable file, or an InvalidInputError naming the path."""
    try:
        path = Path(model_path)
    except TypeError:
        raise InvalidInputError(f"model_path must be a path, not {type(model_path).__name__}") from None
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InvalidInputError(f"model file not found: {path}") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInputError(f"{path} is a directory; upload a file (e.g. model.onnx)")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInputError(f"{path} is not a regular file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InvalidInputError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    return path, info.st_size


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response_json(response)
    except ValueError:
        raise OpenGradientError(f"the Model Hub's {what} answer is not JSON "
                                f"(HTTP {response.status_code})") from None


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    data = _json(response, what)
    if not isinstance(data, dict):
        raise OpenGradientError(f"the Model Hub's {what} answer is not a JSON object")
    return data


def _public_url(response: httpx.Response) -> str:
    """The request URL without its query (which may carry the API key)."""
    return str(response.request.url.copy_with(query=None))


def _hint(status: int) -> str | None:
    if status == 401:
        return "the hub refused a freshly issued token; check that the account may use the hub"
    if status == 403:
        return "only a model's owner can change it: sign in as its owner, or create a model of your own"
    if status == 404:
        return "check the model name and version (create them with create_model/create_version)"
    if status == 409:
        return "choose another model name, or add a version to the existing model"
    return None


def _auth_failure(response: httpx.Response) -> HTTPStatusError:
    """Sign-in errors: Firebase answers 400 with a code such as INVALID_PASSWORD."""
    try:
        body: Any = response_json(response)
        message = str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        body, message = None, response.reason_phrase or "sign-in failed"
    url = _public_url(response)
    if response.status_code == 429:
        return RateLimitError(message, status_code=429, url=url, body=body)
    if response.status_code >= 500:
        return HTTPStatusError(message, status_code=response.status_code, url=url, body=body,
                               hint="the sign-in service failed; retry later")
    return AuthenticationError(f"sign-in failed: {message}", status_code=response.status_code,
                               url=url, body=body, hint="check the email and password given to og.init",
                               arguments=("email", "password"))


__all__ = ["MODEL_NAME_PATTERN", "VERSION_PATTERN", "ModelHub", "model_name_problem"]
