"""The only code -> HTTP status table, and the error shape of PROTOCOL.md."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tidings.core.errors import ErrorCode, RateLimited, TidingsError

STATUS = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.INVALID_BODY: 400,
    ErrorCode.INVALID_POSITION: 400,
    ErrorCode.EDIT_WINDOW_PASSED: 400,
    ErrorCode.INVALID_OPERATION: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.INVALID_CREDENTIALS: 401,
    ErrorCode.TOTP_REQUIRED: 401,
    ErrorCode.INVALID_TOTP: 401,
    ErrorCode.SECOND_FACTOR_REQUIRED: 403,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.USER_DISABLED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
}

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TidingsError)
    async def tidings_error(_request: Request, exc: TidingsError) -> Response:
        response = error_response(STATUS[exc.code], exc.code.value, exc.message, exc.details)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
        message = "request body is not valid JSON" if malformed else "invalid request"
        return error_response(400, "invalid_request", message, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))
