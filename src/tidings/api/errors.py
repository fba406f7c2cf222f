"""The only code -> HTTP status table, and the error shape of PROTOCOL.md."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.core.errors import ErrorCode, RateLimited, TidingsError

log = structlog.get_logger(__name__)

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
    ErrorCode.REFUSED_BY_POLICY: 403,
    ErrorCode.USER_DISABLED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
}

# Starlette's own HTTP errors (no route, wrong method, ...): the code for their status.
_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    412: ErrorCode.PRECONDITION_FAILED,
    413: ErrorCode.TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}

INTERNAL_MESSAGE = "internal error: the server failed; retry later"

# Paths whose last segment is a secret (an incoming webhook's URL, a command's response
# URL): logged without it.
SECRET_PATHS = ("/api/v1/hooks/", "/api/v1/command-responses/")


def loggable_path(path: str) -> str:
    if path.startswith(SECRET_PATHS):
        return path.rsplit("/", 1)[0] + "/(secret)"
    return path


def http_code(status: int) -> ErrorCode:
    """The code of an HTTP error Starlette raised itself, by its status."""
    found = _HTTP_CODES.get(status)
    if found is not None:
        return found
    return ErrorCode.INTERNAL if status >= 500 else ErrorCode.INVALID_REQUEST


def error_body(code: ErrorCode, message: str, details: Mapping[str, object] | None) -> bytes:
    return orjson.dumps(
        {"error": {"code": code.value, "message": message, "details": dict(details or {})}}
    )


def error_response(
    status: int, code: ErrorCode, message: str, details: Mapping[str, object] | None = None
) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(
        error_body(code, message, details), status, headers=headers, media_type="application/json"
    )


class CatchAll:
    """The last boundary of one HTTP request: an exception nothing else answered is
    logged with the request's method and path (never its query, headers or body: they
    may carry secrets), and the client gets `500 internal` without a traceback. Outside
    the routes' own handlers, inside Starlette's ServerErrorMiddleware (which would log
    the traceback a second time and re-raise)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # one request's boundary: logged, answered
            log.exception(
                "request_failed",
                method=scope.get("method", ""),
                path=loggable_path(str(scope.get("path", ""))),
                error_type=type(exc).__name__,
            )
            if started:  # the status is out already: all we can do is end the response
                return
            body = error_body(ErrorCode.INTERNAL, INTERNAL_MESSAGE, None)
            await send(
                {
                    "type": "http.response.start",
                    "status": STATUS[ErrorCode.INTERNAL],
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TidingsError)
    async def tidings_error(_request: Request, exc: TidingsError) -> Response:
        response = error_response(STATUS[exc.code], exc.code, exc.message, exc.details)
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
        return error_response(400, ErrorCode.INVALID_REQUEST, message, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = http_code(exc.status_code)
        return error_response(exc.status_code, code, str(exc.detail))

    app.add_middleware(CatchAll)
