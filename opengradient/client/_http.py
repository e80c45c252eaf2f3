"""The HTTP layer every namespace shares: one connection pool per client, one error mapping.

Transports are the seam for tests and for the in-process devnet, as in httpx: pass
`transport=`/`async_transport=` and no socket is opened.

Enclaves found in the TEE registry are reached through clients of their own whose only trust
anchor is the enclave's registered certificate (`pinned_sync`/`pinned_async`): a server that
presents any other certificate fails the TLS handshake, before a byte of the request is sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import ssl
from collections.abc import Iterator
from typing import Any

import httpx

from opengradient.bounded_json import response_json
from opengradient.errors import (
    AuthenticationError,
    ConflictError,
    HTTPStatusError,
    InvalidResponseError,
    NetworkError,
    NotFoundError,
    PinnedCertificateError,
    RateLimitError,
    RequestTimeoutError,
)

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
USER_AGENT = "opengradient-python"


class HttpCore:
    """Lazily created sync and async httpx clients with shared settings."""

    def __init__(self, *, timeout: float | httpx.Timeout | None = None,
                 transport: httpx.BaseTransport | None = None,
                 async_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.timeout = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout)
        self._transport = transport
        self._async_transport = async_transport
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._pinned: dict[bytes, httpx.Client] = {}
        self._apinned: dict[bytes, httpx.AsyncClient] = {}

    @property
    def custom_transport(self) -> bool:
        """True when a transport was given: requests never touch a socket of this client's own."""
        return self._transport is not None or self._async_transport is not None

    @property
    def sync(self) -> httpx.Client:
        """The sync client, created on first use."""
        if self._sync is None:
            self._sync = httpx.Client(timeout=self.timeout, transport=self._transport,
                                      headers={"User-Agent": USER_AGENT})
        return self._sync

    @property
    def async_(self) -> httpx.AsyncClient:
        """The async client, created on first use (bound to the loop that first uses it)."""
        if self._async is None:
            self._async = httpx.AsyncClient(timeout=self.timeout, transport=self._async_transport,
                                            headers={"User-Agent": USER_AGENT})
        return self._async

    def pinned_sync(self, certificate: bytes | None) -> httpx.Client:
        """The sync client for a server whose DER `certificate` is the only one to trust (the
        shared client when there is none, or when a transport was given: it does TLS, if any)."""
        if certificate is None or self._transport is not None:
            return self.sync
        key = hashlib.sha256(certificate).digest()
        client = self._pinned.get(key)
        if client is None:
            client = self._pinned[key] = httpx.Client(timeout=self.timeout, verify=pinned_context(certificate),
                                                      headers={"User-Agent": USER_AGENT})
        return client

    def pinned_async(self, certificate: bytes | None) -> httpx.AsyncClient:
        """Async twin of `pinned_sync`."""
        if certificate is None or self._async_transport is not None:
            return self.async_
        key = hashlib.sha256(certificate).digest()
        client = self._apinned.get(key)
        if client is None:
            client = self._apinned[key] = httpx.AsyncClient(
                timeout=self.timeout, verify=pinned_context(certificate), headers={"User-Agent": USER_AGENT})
        return client

    def close(self) -> None:
        """Close the sync pools (the async ones are closed by `aclose`)."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        for client in self._pinned.values():
            client.close()
        self._pinned.clear()

    async def aclose(self) -> None:
        """Close every pool."""
        self.close()
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        for aclient in self._apinned.values():
            await aclient.aclose()
        self._apinned.clear()


def pinned_context(certificate: bytes) -> ssl.SSLContext:
    """A TLS client context whose one trust anchor is `certificate` (DER). Host names are not
    checked: registered enclaves are addressed by bare IP and pinned by certificate instead."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=certificate)
    except (ssl.SSLError, ValueError) as exc:
        raise PinnedCertificateError(f"the registered TLS certificate is not a DER X.509 certificate ({exc})") from None
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@contextlib.contextmanager
def transport_errors(what: str) -> Iterator[None]:
    """Turn httpx's transport exceptions into the SDK's `NetworkError` family."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise RequestTimeoutError(f"{what} timed out ({type(exc).__name__})",
                                  hint="raise the client's timeout or retry later", arguments=("timeout",)) from exc
    except httpx.TransportError as exc:
        if _certificate_refused(exc):
            raise PinnedCertificateError(f"{what} failed: the server's TLS certificate is not the one "
                                         f"trusted for it ({exc})",
                                         hint="the endpoint is not the enclave the registry lists") from exc
        raise NetworkError(f"{what} failed: {exc}",
                           hint="check the URL and that the service is reachable") from exc


def _certificate_refused(exc: BaseException) -> bool:
    """True when a TLS handshake failed because the server's certificate did not verify."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def never_sent(exc: BaseException) -> bool:
    """True when a request failed before any of it reached a server (no connection was made):
    sending it elsewhere cannot make the same request happen twice."""
    cause = exc.__cause__
    return isinstance(exc, PinnedCertificateError) or isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout))


def read_json(response: httpx.Response, what: str) -> Any:
    """The JSON body of a successful answer (bounded nesting); `InvalidResponseError` otherwise."""
    try:
        return response_json(response)
    except ValueError as exc:
        raise InvalidResponseError(f"{what}: the answer is not readable JSON ({exc})") from None


def read_json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """`read_json`, requiring a JSON object."""
    body = read_json(response, what)
    if not isinstance(body, dict):
        raise InvalidResponseError(f"{what}: expected a JSON object, got {type(body).__name__}")
    return body


def first_choice(body: dict[str, Any], what: str) -> dict[str, Any]:
    """`choices[0]` of an OpenAI-shaped answer, checked: `InvalidResponseError` when malformed."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise InvalidResponseError(f"{what}: the answer has no choices[0] object")
    choice = choices[0]
    message = choice.get("message")
    if message is not None and not isinstance(message, dict):
        raise InvalidResponseError(f"{what}: choices[0].message is not an object")
    return choice


def error_message(response: httpx.Response) -> tuple[str, Any]:
    """The server's own explanation of an error response, and the parsed body."""
    try:
        body: Any = response_json(response)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text.strip()
        return (text[:500] or response.reason_phrase or "no message"), text
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or json.dumps(err)
        if err is not None:
            return str(err), body
    return json.dumps(body)[:500], body


def raise_for_status(response: httpx.Response, *, hint: str | None = None) -> None:
    """Raise the typed error for an error status, carrying the server's message."""
    if response.is_success:
        return
    message, body = error_message(response)
    status = response.status_code
    cls: type[HTTPStatusError] = HTTPStatusError
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 404:
        cls = NotFoundError
    elif status == 409:
        cls = ConflictError
    elif status == 429:
        cls = RateLimitError
    raise cls(message, status_code=status, url=str(response.request.url), body=body, hint=hint)
