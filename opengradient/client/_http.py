"""The HTTP layer every namespace shares: one connection pool per client, one error mapping.

Transports are the seam for tests and for the in-process devnet, as in httpx: pass
`transport=`/`async_transport=` and no socket is opened.
"""

from __future__ import annotations

import contextlib
import json
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

    def close(self) -> None:
        """Close the sync pool (the async pool is closed by `aclose`)."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        """Close both pools."""
        self.close()
        if self._async is not None:
            await self._async.aclose()
            self._async = None


@contextlib.contextmanager
def transport_errors(what: str) -> Iterator[None]:
    """Turn httpx's transport exceptions into the SDK's `NetworkError` family."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise RequestTimeoutError(f"{what} timed out ({type(exc).__name__})",
                                  hint="raise the client's timeout or retry later", arguments=("timeout",)) from exc
    except httpx.TransportError as exc:
        raise NetworkError(f"{what} failed: {exc}",
                           hint="check the URL and that the service is reachable") from exc


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
