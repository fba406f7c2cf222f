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
    PRECONDITION_FAILED = "precondition_failed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    REFUSED_BY_POLICY = "refused_by_policy"


class FieldError(TypedDict):
    """One problem of a malformed request: where (`body.name`) and what."""

    loc: str
    msg: str


class FieldDetails(TypedDict, total=False):
    field: str  # the request field at fault
    # SCIM (RFC 7644 3.12): the scimType of the error (invalidFilter, uniqueness, ...)
    scim_type: str


class RequestDetails(FieldDetails, total=False):
    errors: list[FieldError]  # a malformed request or frame: each problem
    characters: list[str]  # a name's refused characters, as "U+202E"
    ref: str | int | float | None  # a frame's `ref`, echoed by the error frame


class PasswordFeedback(TypedDict):
    """The strength estimator's advice (English), when it has some."""

    warning: str
    suggestions: list[str]


class PasswordDetails(FieldDetails, total=False):
    """Why a new password is refused: `reason` is one of too_short, too_long, blank,
    contains_username, too_common, too_weak; `min_length` / `min_score` are the policy,
    `score` the estimate (0-4)."""

    reason: str
    min_length: int
    min_score: int
    score: int
    feedback: PasswordFeedback


class PositionDetails(TypedDict):
    position: str  # the resume position refused


class SizeDetails(TypedDict, total=False):
    limit: int  # bytes allowed
    size: int  # bytes given
    used: int  # bytes of the quota used already (an upload over the user's quota)


class CapDetails(TypedDict):
    field: str  # the request field at fault
    limit: int  # how many are allowed


class WindowDetails(TypedDict):
    window_seconds: int  # how long after sending a message may be edited


class SubjectDetails(TypedDict, total=False):
    user_id: str  # the user the operation is about


class NotFoundDetails(TypedDict, total=False):
    """What was not found (or is not visible): one of these."""

    conversation_id: str
    user_id: str
    user_ids: list[str]
    username: str
    department_id: str
    session_id: str
    seq: int
    reply_to_seq: int
    thread_root_seq: int
    job_id: str
    webhook_id: str
    file_id: str
    file_ids: list[str]
    scheduled_id: str


class PolicyDetails(TypedDict, total=False):
    plugin: str  # the plugin that refused (its entry point name)
    reason: str  # why, as the plugin says it (never the matched text)
    rule: str  # which of its rules matched, if it names them


class ThreadRootDetails(FieldDetails, total=False):
    thread_root_seq: int  # the root a reply named


class MentionDetails(TypedDict, total=False):
    mention: str  # all, channel or here
    min_role: str  # the conversation role it takes there (member, moderator, owner)
    member_count: int  # the conversation's members


class ErrorDetails(
    MentionDetails,
    ThreadRootDetails,
    RequestDetails,
    PasswordDetails,
    SizeDetails,
    SubjectDetails,
    NotFoundDetails,
    PolicyDetails,
    total=False,
):
    """Every key an error's `details` may carry, with its type (each error takes only
    its own: the `*Details` of its class). The JSON `details` object is exactly the keys
    given."""

    position: str
    window_seconds: int
    retry_after: float


class TidingsError(Exception):
    """Base of every error a client may see; `code` is what clients switch on."""

    code: ErrorCode = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str, **details: Unpack[ErrorDetails]) -> None:
        super().__init__(message)
        self.message = message
        self.details: ErrorDetails = details


class InvalidRequest(TidingsError):
    code = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str, **details: Unpack[RequestDetails]) -> None:
        super().__init__(message, **details)


class InvalidInput(InvalidRequest):
    """A value a client typed that cannot be read (a search query's malformed filter, a
    bad cursor): on the wire `invalid_request`, with `field` naming it."""


class WeakPassword(InvalidRequest):
    """A new password the policy refuses (services/password_policy.py): `reason` says why."""

    def __init__(self, message: str, **details: Unpack[PasswordDetails]) -> None:
        TidingsError.__init__(self, message, **details)


class InvalidBody(TidingsError):
    code = ErrorCode.INVALID_BODY

    def __init__(self, message: str) -> None:
        super().__init__(message)


class InvalidPosition(TidingsError):
    code = ErrorCode.INVALID_POSITION

    def __init__(self, message: str, **details: Unpack[PositionDetails]) -> None:
        super().__init__(message, **details)


class EditWindowPassed(TidingsError):
    code = ErrorCode.EDIT_WINDOW_PASSED

    def __init__(self, message: str, **details: Unpack[WindowDetails]) -> None:
        super().__init__(message, **details)


class InvalidOperation(TidingsError):
    code = ErrorCode.INVALID_OPERATION

    def __init__(self, message: str, **details: Unpack[SubjectDetails]) -> None:
        super().__init__(message, **details)


class InvalidThreadRoot(TidingsError):
    """A reply names a root that cannot have a thread: a reply itself, or recalled."""

    code = ErrorCode.INVALID_OPERATION

    def __init__(self, message: str, **details: Unpack[ThreadRootDetails]) -> None:
        super().__init__(message, **details)


class CapReached(TidingsError):
    """A well-formed request over a count cap (e.g. reactions on one message): it is an
    `invalid_operation` whose `details` say which field and the cap."""

    code = ErrorCode.INVALID_OPERATION

    def __init__(self, message: str, **details: Unpack[CapDetails]) -> None:
        super().__init__(message, **details)


class Unauthenticated(TidingsError):
    code = ErrorCode.UNAUTHENTICATED

    def __init__(self, message: str) -> None:
        super().__init__(message)


class InvalidCredentials(TidingsError):
    code = ErrorCode.INVALID_CREDENTIALS

    def __init__(self, message: str, **details: Unpack[FieldDetails]) -> None:
        super().__init__(message, **details)


class TotpRequired(TidingsError):
    """The password was right; the account has a second factor: send `totp` too."""

    code = ErrorCode.TOTP_REQUIRED

    def __init__(self, message: str) -> None:
        super().__init__(message)


class InvalidTotp(TidingsError):
    code = ErrorCode.INVALID_TOTP

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SecondFactorRequired(TidingsError):
    """The organization requires a second factor and this account has none yet: the
    session may only enrol one (and log out)."""

    code = ErrorCode.SECOND_FACTOR_REQUIRED

    def __init__(self, message: str) -> None:
        super().__init__(message)


class Forbidden(TidingsError):
    code = ErrorCode.FORBIDDEN

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ArchivedDetails(TypedDict, total=False):
    conversation_id: str  # the archived conversation


class ConversationArchived(Forbidden):
    """A change to an archived (read-only) conversation: `forbidden` with the
    conversation's id in details, until an owner or an admin unarchives it."""

    def __init__(self, message: str, **details: Unpack[ArchivedDetails]) -> None:
        TidingsError.__init__(self, message, **details)


class MentionNotAllowed(Forbidden):
    """`@all`, `@channel` or `@here` from someone whose role in the conversation is
    below what it takes there (core/rules.py:check_can_mention_everyone)."""

    def __init__(self, message: str, **details: Unpack[MentionDetails]) -> None:
        TidingsError.__init__(self, message, **details)


class UserDisabled(TidingsError):
    code = ErrorCode.USER_DISABLED

    def __init__(self, message: str) -> None:
        super().__init__(message)


class NotFound(TidingsError):
    """Missing or not visible to the caller: the two are never told apart."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, message: str, **details: Unpack[NotFoundDetails]) -> None:
        super().__init__(message, **details)


class Conflict(TidingsError):
    code = ErrorCode.CONFLICT

    def __init__(self, message: str, **details: Unpack[FieldDetails]) -> None:
        super().__init__(message, **details)


class TooLarge(TidingsError):
    code = ErrorCode.TOO_LARGE

    def __init__(self, message: str, **details: Unpack[SizeDetails]) -> None:
        super().__init__(message, **details)


class MethodNotAllowed(TidingsError):
    code = ErrorCode.METHOD_NOT_ALLOWED

    def __init__(self, message: str) -> None:
        super().__init__(message)


class PreconditionFailed(TidingsError):
    """The resource changed since the version the client names (If-Match: SCIM ETags)."""

    code = ErrorCode.PRECONDITION_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)


class UnsupportedMediaType(TidingsError):
    """A request body of a content type the endpoint does not take."""

    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RateLimited(TidingsError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class Internal(TidingsError):
    """A failure of the server itself (a bug, an unexpected exception): logged with its
    context on the server; the client is told only that it happened."""

    code = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)


class Unavailable(TidingsError):
    code = ErrorCode.UNAVAILABLE

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RefusedByPolicy(TidingsError):
    """A server plugin's policy (e.g. the sensitive-word filter) refused the message."""

    code = ErrorCode.REFUSED_BY_POLICY

    def __init__(self, message: str, **details: Unpack[PolicyDetails]) -> None:
        super().__init__(message, **details)
