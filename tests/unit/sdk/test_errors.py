"""The SDK's errors: a WebSocket `error` frame (no HTTP status) over a rate limit is a
RateLimited whose retry_after comes from `details.retry_after`, as a 429 is."""

from __future__ import annotations

from tidings.sdk import APIError, RateLimited
from tidings.sdk.errors import error_for


def test_a_rate_limited_error_frame_is_rate_limited_with_its_wait() -> None:
    frame = {
        "type": "error",
        "ref": "7",
        "error": {"code": "rate_limited", "message": "slow down", "details": {"retry_after": 2.5}},
    }
    err = error_for(0, frame)
    assert isinstance(err, RateLimited)
    assert (err.status, err.code, err.retry_after) == (0, "rate_limited", 2.5)


def test_a_429_keeps_its_retry_after_header_and_other_frames_stay_api_errors() -> None:
    body = {"error": {"code": "rate_limited", "message": "x", "details": {"retry_after": 9}}}
    assert error_for(429, body, retry_after=3).retry_after == 3
    other = error_for(0, {"type": "error", "error": {"code": "not_found", "message": "x"}})
    assert type(other) is APIError and other.retry_after is None
