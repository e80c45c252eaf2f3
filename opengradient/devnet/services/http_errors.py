"""JSON bodies for Starlette's own 404/405 answers, so every devnet error has the same shape."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_KINDS = {404: "not_found", 405: "method_not_allowed"}


async def _json_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = f"{request.method} {request.url.path}: " + (
        "no such route" if status == 404 else "method not allowed" if status == 405 else "error")
    headers = getattr(exc, "headers", None)
    return JSONResponse({"error": {"message": message, "type": _KINDS.get(status, "error"), "code": status}},
                        status, headers=headers)


#: Pass as `Starlette(exception_handlers=JSON_ERRORS)`.
JSON_ERRORS = {404: _json_error, 405: _json_error}
