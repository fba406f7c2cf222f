"""Exceptions raised by the SDK.

The server answers errors as ``{"error": {"code", "message", "details"}}``; the SDK
raises :class:`APIError` (or the subclass for its ``code``) carrying all of it.
Switch on :attr:`APIError.code`, never on the message text.
"""

from __future__ import annotations

from typing import Any


class TidingsError(Exception):
    """Base of every exception the SDK raises."""


class ConnectionFailed(TidingsError):
    """The server could not be reached (or kept failing with 5xx) within the retry budget."""


class StreamClosed(TidingsError):
    """The live event stream was closed (by :meth:`EventStream.aclose` or a fatal close code)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        """The WebSocket close code that ended the stream, if the server closed it."""


class APIError(TidingsError):
    """The server answered with an error object."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        """HTTP status (0 for an ``error`` frame on the WebSocket)."""
        self.code = code
        """The stable, snake_case error code, e.g. ``not_found``."""
        self.message = message
        self.details: dict[str, Any] = details or {}
        self.retry_after = retry_after
        """Seconds to wait, for ``rate_limited``."""


class InvalidRequest(APIError):
    """400: bad input (``invalid_request``, ``invalid_body``, ``edit_window_passed``, …)."""


class Unauthenticated(APIError):
    """401: missing, unknown, revoked or expired token, or wrong credentials at login."""


class Forbidden(APIError):
    """403: the caller may not do this (``forbidden``, ``user_disabled``)."""


class NotFound(APIError):
    """404: missing or not visible to the caller (the two are never told apart)."""


class Conflict(APIError):
    """409: e.g. the username is taken, or a ``client_msg_id`` was reused elsewhere."""


class RefusedByPolicy(Forbidden):
    """403 ``refused_by_policy``: a server plugin (e.g. the sensitive-word filter)
    refused the message; :attr:`reason` says why, :attr:`plugin` which one."""

    @property
    def reason(self) -> str:
        return str(self.details.get("reason", ""))

    @property
    def plugin(self) -> str:
        return str(self.details.get("plugin", ""))

    @property
    def rule(self) -> str | None:
        rule = self.details.get("rule")
        return None if rule is None else str(rule)


class TooLarge(APIError):
    """413: message or request body over the server's limit."""


class RateLimited(APIError):
    """429: slow down; :attr:`retry_after` says for how long."""


class ServerError(APIError):
    """5xx that persisted through the retries."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: InvalidRequest,
    429: RateLimited,
}


_BY_CODE: dict[str, type[APIError]] = {
    "rate_limited": RateLimited,
    "refused_by_policy": RefusedByPolicy,
}


def error_for(
    status: int,
    body: object,
    *,
    retry_after: float | None = None,
) -> APIError:
    """Build the fitting :class:`APIError` subclass from a status and a decoded body."""
    code = "http_error"
    message = ""
    details: dict[str, Any] = {}
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code = str(err.get("code") or code)
            message = str(err.get("message") or "")
            raw_details = err.get("details")
            if isinstance(raw_details, dict):
                details = raw_details
        elif "detail" in body:  # a framework-level error that escaped the envelope
            message = str(body["detail"])
    if retry_after is None and isinstance(details.get("retry_after"), int | float):
        retry_after = float(details["retry_after"])  # an `error` frame's only wait
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)  # an `error` frame has no status
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(status, code, message or f"HTTP {status}", details, retry_after=retry_after)
