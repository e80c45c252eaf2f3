"""The devnet's Model Hub: a content-addressed file store, the hub's REST routes and its sign-in.

Files are stored under their real IPFS CID (CIDv1, raw codec, sha2-256), so a CID the devnet hands
out is the CID `ipfs add --cid-version 1 --raw-leaves` gives for a file that fits in one block.
Auth speaks the wire format of Firebase Identity Toolkit and Secure Token, so a client written for
the public hub signs in here unchanged. Mount the two apps at the public prefixes:

    Mount("/api/v0", hub.hub_app()), Mount("/auth/v1", hub.auth_app())
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from opengradient import bounded_json
from opengradient.client.model_hub import VERSION_PATTERN, model_name_problem
from opengradient.devnet.services.http_errors import JSON_ERRORS
from opengradient.devnet.services.limits import BodyTooLargeError

logger = logging.getLogger("opengradient.devnet.services.hub")

DEV_EMAIL = "dev@opengradient.local"
DEV_PASSWORD = "devnet-password"

#: CIDv1 prefix of one raw block hashed with sha2-256: version 1, codec raw (0x55), sha2-256 (0x12),
#: digest length 32 (0x20).
_CID_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])
_CID_PATTERN = re.compile(r"^b[a-z2-7]{58}$")
_CHUNK = 1024 * 1024
#: Version of the hub index file's layout (`HubService(index_path=…)`).
_INDEX_FORMAT = 1


def cid_from_sha256(digest: bytes) -> str:
    """The CIDv1 (raw, sha2-256, base32 multibase) of a block with this sha256 digest."""
    if len(digest) != 32:
        raise ValueError("a sha256 digest is 32 bytes")
    encoded = base64.b32encode(_CID_PREFIX + digest).decode("ascii").lower().rstrip("=")
    return "b" + encoded


def cid_of(data: bytes) -> str:
    """The IPFS CIDv1 of `data` as one raw block (starts with `bafkrei`)."""
    return cid_from_sha256(hashlib.sha256(data).digest())


def is_cid(value: str) -> bool:
    """Whether `value` has the shape of the CIDs this store hands out (and so is safe as a file name)."""
    return bool(_CID_PATTERN.match(value))


class ModelStore:
    """Content-addressed bytes, on disk under `directory` or in memory when it is None.

    Writes go to a temporary file that is renamed to its CID, so readers never see half a file and
    concurrent writers of the same content both succeed. Only well-formed CIDs are ever turned into
    paths, so a CID from a request cannot escape the directory.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._memory: dict[str, bytes] = {}
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"ModelStore({str(self.directory) if self.directory else 'in-memory'})"

    def put(self, data: bytes) -> str:
        """Store `data`; returns its CID."""
        cid = cid_of(data)
        if self.directory is None:
            with self._lock:
                self._memory[cid] = bytes(data)
            return cid
        if not self._file(cid).exists():
            self.put_stream(io.BytesIO(data))
        return cid

    def put_stream(self, source: IO[bytes]) -> tuple[str, int]:
        """Store everything readable from `source`, hashing while copying; returns (cid, size)."""
        digest = hashlib.sha256()
        size = 0
        if self.directory is None:
            buffer = bytearray()
            for chunk in _chunks(source):
                digest.update(chunk)
                buffer += chunk
                size += len(chunk)
            cid = cid_from_sha256(digest.digest())
            with self._lock:
                self._memory[cid] = bytes(buffer)
            return cid, size
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _chunks(source):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            cid = cid_from_sha256(digest.digest())
            os.replace(tmp, self._file(cid))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return cid, size

    def put_file(self, path: Path | str) -> tuple[str, int]:
        """Store a file by streaming it (never read whole); returns (cid, size)."""
        with open(path, "rb") as source:
            return self.put_stream(source)

    def get(self, cid: str) -> bytes:
        """The bytes stored under `cid`; KeyError when unknown."""
        if self.directory is None:
            with self._lock:
                try:
                    return self._memory[cid]
                except KeyError:
                    raise KeyError(cid) from None
        if not is_cid(cid):
            raise KeyError(cid)
        try:
            return self._file(cid).read_bytes()
        except FileNotFoundError:
            raise KeyError(cid) from None

    def has(self, cid: str) -> bool:
        """Whether `cid` is stored."""
        if self.directory is None:
            with self._lock:
                return cid in self._memory
        return is_cid(cid) and self._file(cid).is_file()

    def path(self, cid: str) -> Path | None:
        """The file holding `cid` (for onnxruntime to load without a copy); None in memory.

        KeyError when the CID is unknown.
        """
        if not self.has(cid):
            raise KeyError(cid)
        return None if self.directory is None else self._file(cid)

    def size(self, cid: str) -> int:
        """Size in bytes of a stored CID; KeyError when unknown."""
        if self.directory is None:
            return len(self.get(cid))
        if not self.has(cid):
            raise KeyError(cid)
        return self._file(cid).stat().st_size

    def _file(self, cid: str) -> Path:
        assert self.directory is not None and is_cid(cid)
        return self.directory / cid


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(_CHUNK):
        yield chunk


# --------------------------------------------------------------------------------------------
# Hub state


@dataclass
class _User:
    email: str
    salt: bytes
    password_hash: bytes
    local_id: str


@dataclass
class _Session:
    email: str
    expires_at: float


@dataclass
class _File:
    name: str
    size: int
    cid: str
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "ipfsCid": self.cid,
                "createdAt": self.created_at}


@dataclass
class _Version:
    version: str
    notes: str
    is_major: bool
    created_at: str
    files: dict[str, _File] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"versionString": self.version, "notes": self.notes, "is_major": self.is_major,
                "createdAt": self.created_at}


@dataclass
class _Model:
    name: str
    description: str
    owner: str
    created_at: str
    versions: dict[str, _Version] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        versions = sorted(self.versions.values(), key=lambda v: _version_key(v.version))
        return {"name": self.name, "description": self.description, "owner": self.owner,
                "createdAt": self.created_at, "versions": [v.to_json() for v in versions]}


def _version_key(version: str) -> int:
    """A version string as hundredths ("1.05" → 105), for ordering and bumping."""
    major, minor = version.split(".")
    return int(major) * 100 + int(minor)


def _version_string(hundredths: int) -> str:
    return f"{hundredths // 100}.{hundredths % 100:02d}"


class _HubError(Exception):
    """An error answer of the hub routes: `{"error": {"message", "type", "code"}}`."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse({"error": {"message": self.message, "type": self.kind,
                                       "code": self.status}},
                            status_code=self.status, headers=headers)


class _AuthError(Exception):
    """A Firebase-style auth error: 400 with an upper-case code as the message."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"code": self.status, "message": self.code,
                                       "errors": [{"message": self.code, "domain": "global",
                                                   "reason": "invalid"}]}},
                            status_code=self.status)


def _bad_request(message: str) -> _HubError:
    return _HubError(400, message, "invalid_request_error")


def _not_found(message: str) -> _HubError:
    return _HubError(404, message, "not_found_error")


Endpoint = Callable[[Request], Awaitable[Response]]


def _logged(endpoint: Endpoint) -> Endpoint:
    """Log each request (method, path, status, time) and turn errors into JSON answers.

    Only the path is logged: no query string (it may carry an API key), headers or bodies.
    """

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await endpoint(request)
        except (_HubError, _AuthError) as exc:
            response = exc.response()
        except HTTPException as exc:  # 413 from the body limits, raised while a body streams in
            kind = "request_too_large" if exc.status_code == 413 else "invalid_request_error"
            response = _HubError(exc.status_code, str(exc.detail), kind).response()
        except Exception:
            logger.exception("%s %s failed", request.method, request.url.path)
            response = _HubError(500, "internal error of the devnet hub (see its log)",
                                 "server_error").response()
        logger.info("%s %s -> %d (%.1f ms)", request.method, request.url.path,
                    response.status_code, (time.perf_counter() - started) * 1000)
        return response

    return wrapper


class HubService:
    """Users, tokens, models, versions and files of the devnet's Model Hub.

    `users` maps email to password; None gives the one development user (`DEV_EMAIL` /
    `DEV_PASSWORD`). `clock` decides token expiry and timestamps, so tests move time without
    sleeping. State lives in memory (file bytes live in `store`) and is guarded by one lock; with
    `index_path` the users, models, versions and file listings are also kept in that file (written
    atomically on every change, read back at start), so a restart finds them again. Sign-in
    tokens are not kept: sign in again after a restart.
    """

    def __init__(self, store: ModelStore, *, users: dict[str, str] | None = None,
                 token_ttl: int = 3600, clock: Callable[[], float] = time.time,
                 index_path: Path | None = None) -> None:
        self.store = store
        self.token_ttl = token_ttl
        self.clock = clock
        self.index_path = index_path
        self._lock = threading.Lock()
        self._users: dict[str, _User] = {}
        self._id_tokens: dict[str, _Session] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._models: dict[str, _Model] = {}
        if index_path is not None and index_path.exists():
            self._load(index_path)
        for email, password in (users if users is not None else {DEV_EMAIL: DEV_PASSWORD}).items():
            if email.lower() not in self._users:
                self.add_user(email, password)

    def __repr__(self) -> str:
        return f"HubService(store={self.store!r}, users={len(self._users)}, models={len(self._models)})"

    # ---- direct (in-process) API, used by the devnet to seed the hub

    def add_user(self, email: str, password: str) -> str:
        """Create a user (or reset its password); returns its `localId`."""
        user = _new_user(email, password)
        with self._lock:
            self._users[email.lower()] = user
            self._save()
        return user.local_id

    def publish(self, model_name: str, data: bytes | Path, *, filename: str | None = None,
                description: str = "", version: str = "1.00", owner: str = DEV_EMAIL) -> str:
        """Create the model and version if needed and store one file in it; returns its CID.

        This is how the devnet preloads its shipped models without going through HTTP.
        """
        if problem := model_name_problem(model_name):
            raise ValueError(problem)
        if not VERSION_PATTERN.match(version):
            raise ValueError(f"version {version!r} is not of the form <int>.<2 digits>")
        if isinstance(data, Path):
            cid, size = self.store.put_file(data)
            filename = filename or data.name
        else:
            cid, size = self.store.put(data), len(data)
            filename = filename or "model.onnx"
        now = self._now_iso()
        with self._lock:
            model = self._models.setdefault(model_name, _Model(model_name, description, owner, now))
            entry = model.versions.setdefault(version, _Version(version, "", False, now))
            entry.files[filename] = _File(filename, size, cid, now)
            self._save()
        return cid

    def model_names(self) -> list[str]:
        """Names of every model, sorted."""
        with self._lock:
            return sorted(self._models)

    # ---- the index on disk (users, models, versions, files; file bytes live in the store)

    def _save(self) -> None:
        """Write the index atomically (caller holds the lock): a crash mid-write keeps the last one."""
        if self.index_path is None:
            return
        document = {
            "format": _INDEX_FORMAT,
            "users": [{"email": u.email, "salt": u.salt.hex(), "password_hash": u.password_hash.hex(),
                       "local_id": u.local_id} for u in self._users.values()],
            "models": [{"name": m.name, "description": m.description, "owner": m.owner,
                        "created_at": m.created_at, "versions": [
                            {"version": v.version, "notes": v.notes, "is_major": v.is_major,
                             "created_at": v.created_at,
                             "files": [{"name": f.name, "size": f.size, "cid": f.cid, "created_at": f.created_at}
                                       for f in v.files.values()]}
                            for v in m.versions.values()]}
                       for m in self._models.values()],
        }
        tmp = self.index_path.with_name(self.index_path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(document, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.index_path)

    def _load(self, path: Path) -> None:
        """Read the index written by `_save`; refuse (never overwrite) one this devnet cannot read."""
        try:
            document = bounded_json.loads(path.read_bytes())
            if not isinstance(document, dict) or document.get("format") != _INDEX_FORMAT:
                raise ValueError(f"not a hub index of format {_INDEX_FORMAT}")
            users = {u["email"].lower(): _User(u["email"], bytes.fromhex(u["salt"]),
                                               bytes.fromhex(u["password_hash"]), u["local_id"])
                     for u in document["users"]}
            models: dict[str, _Model] = {}
            for m in document["models"]:
                model = _Model(m["name"], m["description"], m["owner"], m["created_at"])
                for v in m["versions"]:
                    version = _Version(v["version"], v["notes"], bool(v["is_major"]), v["created_at"])
                    version.files = {f["name"]: _File(f["name"], int(f["size"]), f["cid"], f["created_at"])
                                     for f in v["files"]}
                    model.versions[version.version] = version
                models[model.name] = model
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"the Model Hub index {path} cannot be read ({exc}); it was left as it is: "
                             "move it away (or start with another --data-dir) to start afresh") from None
        self._users, self._models = users, models

    # ---- Starlette wiring

    def hub_app(self) -> Starlette:
        """The hub routes, to mount at `/api/v0`."""
        return Starlette(routes=self.hub_routes(), exception_handlers=JSON_ERRORS)

    def auth_app(self) -> Starlette:
        """The sign-in routes, to mount at `/auth/v1`."""
        return Starlette(routes=self.auth_routes(), exception_handlers=JSON_ERRORS)

    def routes(self) -> list[BaseRoute]:
        """Both apps mounted at their public prefixes, for an app that wants them in one list."""
        return [Mount("/api/v0", app=self.hub_app()), Mount("/auth/v1", app=self.auth_app())]

    def hub_routes(self) -> list[BaseRoute]:
        """The `/api/v0` routes (relative paths)."""
        return [
            Route("/models", _logged(self._create_model), methods=["POST"]),
            Route("/models/", _logged(self._create_model), methods=["POST"]),
            Route("/models/{name}", _logged(self._get_model), methods=["GET"]),
            Route("/models/{name}/versions", _logged(self._create_version), methods=["POST"]),
            Route("/models/{name}/versions/{version}/files", _logged(self._upload),
                  methods=["POST"]),
            Route("/models/{name}/versions/{version}/files", _logged(self._list_files),
                  methods=["GET"]),
        ]

    def auth_routes(self) -> list[BaseRoute]:
        """The `/auth/v1` routes (relative paths); the v3 names are kept for older clients."""
        return [
            Route("/accounts:signInWithPassword", _logged(self._sign_in), methods=["POST"]),
            Route("/verifyPassword", _logged(self._sign_in), methods=["POST"]),
            Route("/accounts:signUp", _logged(self._sign_up), methods=["POST"]),
            Route("/signupNewUser", _logged(self._sign_up), methods=["POST"]),
            Route("/token", _logged(self._refresh), methods=["POST"]),
        ]

    # ---- auth routes

    async def _sign_in(self, request: Request) -> Response:
        email, password = await _credentials(request)
        with self._lock:
            user = self._users.get(email.lower())
            if user is None:
                raise _AuthError("EMAIL_NOT_FOUND")
            if not hmac.compare_digest(user.password_hash, _hash_password(password, user.salt)):
                raise _AuthError("INVALID_PASSWORD")
            return JSONResponse(self._sign_in_answer(user, "identitytoolkit#VerifyPasswordResponse"))

    async def _sign_up(self, request: Request) -> Response:
        email, password = await _credentials(request)
        if len(password) < 6:
            raise _AuthError("WEAK_PASSWORD : Password should be at least 6 characters")
        user = _new_user(email, password)
        with self._lock:
            if email.lower() in self._users:
                raise _AuthError("EMAIL_EXISTS")
            self._users[email.lower()] = user
            self._save()
            return JSONResponse(self._sign_in_answer(user, "identitytoolkit#SignupNewUserResponse"))

    async def _refresh(self, request: Request) -> Response:
        fields = await _form_or_json(request)
        if fields.get("grant_type") != "refresh_token":
            raise _AuthError("INVALID_GRANT_TYPE")
        refresh_token = fields.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise _AuthError("MISSING_REFRESH_TOKEN")
        with self._lock:
            email = self._refresh_tokens.get(refresh_token)
            user = self._users.get(email) if email else None
            if user is None:
                raise _AuthError("INVALID_REFRESH_TOKEN")
            id_token = self._issue_id_token(user)
            return JSONResponse({"id_token": id_token, "access_token": id_token,
                                 "refresh_token": refresh_token, "expires_in": str(self.token_ttl),
                                 "token_type": "Bearer", "user_id": user.local_id,
                                 "project_id": "opengradient-devnet"})

    def _sign_in_answer(self, user: _User, kind: str) -> dict[str, Any]:
        """Caller holds the lock."""
        refresh_token = secrets.token_urlsafe(32)
        self._refresh_tokens[refresh_token] = user.email.lower()
        return {"kind": kind, "localId": user.local_id, "email": user.email, "displayName": "",
                "idToken": self._issue_id_token(user), "registered": True,
                "refreshToken": refresh_token, "expiresIn": str(self.token_ttl)}

    def _issue_id_token(self, user: _User) -> str:
        """Caller holds the lock. Also forgets tokens that expired more than a TTL ago."""
        now = self.clock()
        stale = [t for t, s in self._id_tokens.items() if s.expires_at + self.token_ttl < now]
        for token in stale:
            del self._id_tokens[token]
        token = secrets.token_urlsafe(32)
        self._id_tokens[token] = _Session(user.email.lower(), now + self.token_ttl)
        return token

    def _authenticate(self, request: Request) -> str:
        """The signed-in user's email, or a 401 saying why not."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _HubError(401, "missing bearer token: sign in and send 'Authorization: Bearer "
                                 "<idToken>'", "authentication_error")
        with self._lock:
            session = self._id_tokens.get(token)
            if session is None:
                raise _HubError(401, "invalid token", "authentication_error")
            if self.clock() >= session.expires_at:
                raise _HubError(401, "token expired: refresh it or sign in again",
                                "authentication_error")
            return session.email

    # ---- hub routes

    async def _create_model(self, request: Request) -> Response:
        owner = self._authenticate(request)
        body = await _json_object(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise _bad_request("'name' is required and must be a string")
        if problem := model_name_problem(name):
            raise _bad_request(problem)
        description = body.get("description", "")
        if not isinstance(description, str):
            raise _bad_request("'description' must be a string")
        if "version" in body:
            raise _bad_request("the hub numbers versions itself: create the model, then its first "
                               "version (1.00) with POST /models/{name}/versions")
        now = self._now_iso()
        with self._lock:
            if name in self._models:
                raise _HubError(409, f"model '{name}' already exists", "conflict_error")
            self._models[name] = _Model(name, description, owner, now)
            self._save()
        return JSONResponse({"name": name, "description": description}, status_code=201)

    async def _get_model(self, request: Request) -> Response:
        self._authenticate(request)
        with self._lock:
            return JSONResponse(self._model(request).to_json())

    async def _create_version(self, request: Request) -> Response:
        user = self._authenticate(request)
        with self._lock:
            self._owned(request, user, "add versions to")  # 403 before reading the body
        body = await _json_object(request)
        notes = body.get("notes", "")
        if notes is None:
            notes = ""
        if not isinstance(notes, str):
            raise _bad_request("'notes' must be a string")
        is_major = body.get("is_major", False)
        if not isinstance(is_major, bool):
            raise _bad_request("'is_major' must be true or false")
        now = self._now_iso()
        with self._lock:
            model = self._owned(request, user, "add versions to")
            latest = max((_version_key(v) for v in model.versions), default=None)
            if latest is None:
                bumped = 100  # a model's first version is 1.00
            else:
                bumped = (latest // 100 + 1) * 100 if is_major else latest + 1
            version = _Version(_version_string(bumped), notes, is_major, now)
            model.versions[version.version] = version
            self._save()
        return JSONResponse({"versionString": version.version, "notes": notes,
                             "is_major": is_major}, status_code=201)

    async def _upload(self, request: Request) -> Response:
        user = self._authenticate(request)
        with self._lock:
            self._owned(request, user, "upload files to")  # 403 or 404 before reading a large body
            self._version(request)
        try:
            form = await request.form(max_files=1, max_fields=10)
        except BodyTooLargeError:
            raise
        except HTTPException as exc:  # malformed multipart, too many parts
            raise _bad_request(f"bad multipart body: {exc.detail}") from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise _bad_request("multipart field 'file' (a file part) is required")
            name = os.path.basename((upload.filename or "").replace("\\", "/")).strip()
            if not name or name in (".", ".."):
                raise _bad_request("the 'file' part needs a file name")
            # Starlette has spooled the part (to disk when large): hash it from there.
            cid, size = await run_in_threadpool(_store_upload, self.store, upload)
        finally:
            await form.close()
        now = self._now_iso()
        with self._lock:
            self._owned(request, user, "upload files to")
            version = self._version(request)
            version.files[name] = _File(name, size, cid, now)
            self._save()
        return JSONResponse({"ipfsCid": cid, "size": size, "name": name}, status_code=201)

    async def _list_files(self, request: Request) -> Response:
        self._authenticate(request)
        with self._lock:
            files = [f.to_json() for f in self._version(request).files.values()]
        return JSONResponse(files)

    def _model(self, request: Request) -> _Model:
        """Caller holds the lock."""
        name = request.path_params["name"]
        model = self._models.get(name)
        if model is None:
            raise _not_found(f"model '{name}' not found")
        return model

    def _owned(self, request: Request, user: str, action: str) -> _Model:
        """The request's model if `user` owns it; 403 otherwise. Caller holds the lock.

        Only a model's owner writes to it (versions, files): nobody can repoint another user's
        listing at other bytes. The hub's rules for shared models are not public, so owner-only
        is the devnet's rule.
        """
        model = self._model(request)
        if model.owner.lower() != user.lower():
            raise _HubError(403, f"model '{model.name}' belongs to another user: only its owner can "
                                 f"{action} it; create a model of your own", "permission_error")
        return model

    def _version(self, request: Request) -> _Version:
        """Caller holds the lock."""
        model = self._model(request)
        version = request.path_params["version"]
        entry = model.versions.get(version)
        if entry is None:
            raise _not_found(f"version '{version}' of model '{model.name}' not found")
        return entry

    def _now_iso(self) -> str:
        return datetime.fromtimestamp(self.clock(), tz=UTC).isoformat(timespec="seconds").replace(
            "+00:00", "Z")


def _store_upload(store: ModelStore, upload: UploadFile) -> tuple[str, int]:
    upload.file.seek(0)
    return store.put_stream(upload.file)


def _new_user(email: str, password: str) -> _User:
    salt = secrets.token_bytes(16)
    return _User(email=email, salt=salt, password_hash=_hash_password(password, salt),
                 local_id=hashlib.sha256(email.lower().encode()).hexdigest()[:28])


def _hash_password(password: str, salt: bytes) -> bytes:
    """A salted hash: the devnet never keeps passwords as given (cheap: it is a local dev server)."""
    return hashlib.sha256(salt + password.encode("utf-8")).digest()


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = bounded_json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad_request("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad_request("the request body must be a JSON object")
    return body


async def _form_or_json(request: Request) -> dict[str, Any]:
    """Secure Token takes form fields; JSON bodies are accepted too."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            return await _json_object(request)
        except _HubError:
            raise _AuthError("INVALID_JSON") from None
    try:
        form = await request.form(max_files=0, max_fields=10)
    except HTTPException:
        raise _AuthError("INVALID_REQUEST") from None
    try:
        return {k: v for k, v in form.items() if isinstance(v, str)}
    finally:
        await form.close()


async def _credentials(request: Request) -> tuple[str, str]:
    try:
        body = await _json_object(request)
    except _HubError:
        raise _AuthError("INVALID_JSON") from None
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not email:
        raise _AuthError("MISSING_EMAIL")
    if "@" not in email:
        raise _AuthError("INVALID_EMAIL")
    if not isinstance(password, str) or not password:
        raise _AuthError("MISSING_PASSWORD")
    return email, password


__all__ = ["DEV_EMAIL", "DEV_PASSWORD", "HubService", "ModelStore", "cid_from_sha256", "cid_of",
           "is_cid"]
