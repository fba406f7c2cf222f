"""Errors with codes and typed fields. No HTTP status here: api/errors.py maps codes."""

from __future__ import annotations

from enum import StrEnum


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
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"


class TidingsError(Exception):
    """Base of every error a client may see; `code` is what clients switch on."""

    code: ErrorCode = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, object] = details


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


class Unavailable(TidingsError):
    code = ErrorCode.UNAVAILABLE
