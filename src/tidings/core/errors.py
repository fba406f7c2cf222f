"""Errors with codes and typed fields. No HTTP status here: api/errors.py maps codes."""

from __future__ import annotations

from enum import StrEnum
from typing import TypedDict, Unpack


class ErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"
    INVALID_BODY = "invalid_body"
    INVALID_POSITION = "invalid_position"
    EDIT_WINDOW_PASSED = "edit_window_passed"
    INVALID_OPERATION = "invalid_operation"
    UNAUTHENTICATED = "unauthenticated"
    INVALID_CREDENTIALS = "invalid_credentials"
    TOTP_REQUIRED = "totp_required"
    INVALID_TOTP = "invalid_totp"
    SECOND_FACTOR_REQUIRED = "second_factor_required"
    FORBIDDEN = "forbidden"
    USER_DISABLED = "user_disabled"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"


class FieldError(TypedDict):
    """One problem of a malformed request: where (`body.name`) and what."""

    loc: str
    msg: str


class ErrorDetails(TypedDict, total=False):
    """Every key an error's `details` may carry, with its type: the JSON `details`
    object is exactly these keys (those given)."""

    field: str  # the request field at fault
    errors: list[FieldError]  # a malformed request or frame: each problem
    ref: str | int | float | None  # a frame's `ref`, echoed by the error frame
    position: str  # a resume position the server refused
    retry_after: float  # rate_limited: seconds to wait
    limit: int  # too_large: the limit in bytes
    size: int  # too_large: the size given
    window_seconds: int  # edit_window_passed: the edit window
    conversation_id: str
    user_id: str
    user_ids: list[str]
    username: str
    department_id: str
    session_id: str
    seq: int
    reply_to_seq: int


class TidingsError(Exception):
    """Base of every error a client may see; `code` is what clients switch on."""

    code: ErrorCode = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str, **details: Unpack[ErrorDetails]) -> None:
        super().__init__(message)
        self.message = message
        self.details: ErrorDetails = details


class InvalidRequest(TidingsError):
    code = ErrorCode.INVALID_REQUEST


class InvalidBody(TidingsError):
    code = ErrorCode.INVALID_BODY


class InvalidPosition(TidingsError):
    code = ErrorCode.INVALID_POSITION


class EditWindowPassed(TidingsError):
    code = ErrorCode.EDIT_WINDOW_PASSED


class InvalidOperation(TidingsError):
    code = ErrorCode.INVALID_OPERATION


class Unauthenticated(TidingsError):
    code = ErrorCode.UNAUTHENTICATED


class InvalidCredentials(TidingsError):
    code = ErrorCode.INVALID_CREDENTIALS


class TotpRequired(TidingsError):
    """The password was right; the account has a second factor: send `totp` too."""

    code = ErrorCode.TOTP_REQUIRED


class InvalidTotp(TidingsError):
    code = ErrorCode.INVALID_TOTP


class SecondFactorRequired(TidingsError):
    """The organization requires a second factor and this account has none yet: the
    session may only enrol one (and log out)."""

    code = ErrorCode.SECOND_FACTOR_REQUIRED


class Forbidden(TidingsError):
    code = ErrorCode.FORBIDDEN


class UserDisabled(TidingsError):
    code = ErrorCode.USER_DISABLED


class NotFound(TidingsError):
    """Missing or not visible to the caller: the two are never told apart."""

    code = ErrorCode.NOT_FOUND


class Conflict(TidingsError):
    code = ErrorCode.CONFLICT


class TooLarge(TidingsError):
    code = ErrorCode.TOO_LARGE


class RateLimited(TidingsError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class MethodNotAllowed(TidingsError):
    code = ErrorCode.METHOD_NOT_ALLOWED


class Internal(TidingsError):
    """A failure of the server itself (a bug, an unexpected exception): logged with its
    context on the server; the client is told only that it happened."""

    code = ErrorCode.INTERNAL


class Unavailable(TidingsError):
    code = ErrorCode.UNAVAILABLE
