"""Map the SDK's errors to langchain-core's standard model exceptions.

The raised error is an instance of *both* classes (the SDK's and LangChain's), so code that
catches `og.RateLimitError` and code that catches `langchain_core.exceptions.ModelRateLimitError`
both keep working. Errors without a LangChain counterpart (payments, TEE verification, spend cap)
are raised as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opengradient.errors import (
    AuthenticationError,
    HTTPStatusError,
    InferenceError,
    InvalidInputError,
    NetworkError,
    NotFoundError,
    OpenGradientError,
    RateLimitError,
    RequestTimeoutError,
)

_COMBINED: dict[tuple[type, type], type] = {}


def _langchain_class(exc: OpenGradientError) -> type | None:
    from langchain_core import exceptions as lc

    if isinstance(exc, RequestTimeoutError):
        return lc.ModelTimeoutError
    if isinstance(exc, NetworkError):
        return lc.ModelConnectionError
    if isinstance(exc, InvalidInputError):
        return lc.ModelInvalidRequestError
    if isinstance(exc, RateLimitError):
        return lc.ModelRateLimitError
    if isinstance(exc, AuthenticationError):
        return lc.ModelPermissionDeniedError if exc.status_code == 403 else lc.ModelAuthenticationError
    if isinstance(exc, NotFoundError):
        return lc.ModelNotFoundError
    if isinstance(exc, HTTPStatusError):
        if exc.status_code >= 500:
            return lc.ModelAPIError
        if exc.status_code in (400, 413, 422):
            text = str(exc.message).lower()
            if "unknown model" in text or "model not found" in text or "does not serve" in text:
                return lc.ModelNotFoundError
            if "context" in text and ("length" in text or "window" in text):
                return lc.ContextOverflowError
            return lc.ModelInvalidRequestError
        return None
    if isinstance(exc, InferenceError):
        return lc.ModelAPIError
    return None


def to_langchain_error(exc: OpenGradientError) -> BaseException:
    """The same error, also an instance of the matching langchain-core exception (if any)."""
    target = _langchain_class(exc)
    if target is None or isinstance(exc, target):
        return exc
    key = (type(exc), target)
    combined = _COMBINED.get(key)
    if combined is None:
        combined = type(type(exc).__name__, (type(exc), target), {
            "__module__": type(exc).__module__,
            "__doc__": f"{type(exc).__doc__ or ''} (also a langchain_core {target.__name__})",
        })
        _COMBINED[key] = combined
    error: Any = combined.__new__(combined, *exc.args)
    error.__dict__.update(exc.__dict__)
    error.args = exc.args
    error.__cause__ = exc.__cause__
    error.__traceback__ = exc.__traceback__
    return error


@contextlib.contextmanager
def langchain_errors() -> Iterator[None]:
    """Re-raise SDK errors as their langchain-core counterparts (keeping the SDK class too)."""
    try:
        yield
    except OpenGradientError as exc:
        mapped = to_langchain_error(exc)
        if mapped is exc:
            raise
        if exc.__cause__ is not None:
            raise mapped from exc.__cause__
        raise mapped from None
