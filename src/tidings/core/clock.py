"""Time and identifiers, injected so services never call now() themselves."""

from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class IdGenerator(Protocol):
    def new_id(self) -> str: ...


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


class TimeOrderedIds:
    """26-character, time-ordered, random-tailed ids (ULID layout, lower case)."""

    def new_id(self) -> str:
        value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
        chars = []
        for _ in range(26):
            chars.append(_ALPHABET[value & 31])
            value >>= 5
        return "".join(reversed(chars))


def new_token() -> str:
    """An opaque bearer token: 256 bits of randomness."""
    return secrets.token_urlsafe(32)


_last_rfc3339: tuple[datetime | None, str] = (None, "")


def rfc3339(moment: datetime) -> str:
    """`2026-11-29T05:31:17.123456Z`. A group commit formats one `now` for each of its
    messages and events: the last answer is kept."""
    global _last_rfc3339
    last, text = _last_rfc3339
    if moment is last:
        return text
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    text = utc.isoformat().replace("+00:00", "Z")
    _last_rfc3339 = (moment, text)
    return text
