"""Time and identifiers, injected so services never call now() themselves."""

from __future__ import annotations

import os
import secrets
import threading
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
# Two digits per lookup: an id's 130 bits (two zero bits, then its 128) in 13 steps.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = tuple(range(120, -10, -10))
_RANDOM_BYTES = 10  # 80 random bits per id
_RANDOM_CHUNK = 409 * _RANDOM_BYTES  # read from the OS 4 KiB at a time, not per id
_forks = 0  # bumped in a forked child: it must not hand out its parent's random bytes


def _after_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_after_fork)


class TimeOrderedIds:
    """26-character, time-ordered, random-tailed ids (ULID layout, lower case).

    The random part comes from the OS (`os.urandom`) in chunks for 409 ids: a message
    id costs no system call of its own."""

    def __init__(self) -> None:
        self._random = b""
        self._used = 0
        self._forks = _forks
        self._lock = threading.Lock()

    def _random_tail(self) -> bytes:
        with self._lock:
            used = self._used
            if used >= len(self._random) or self._forks != _forks:
                self._random, used, self._forks = os.urandom(_RANDOM_CHUNK), 0, _forks
            self._used = used + _RANDOM_BYTES
            return self._random[used : used + _RANDOM_BYTES]

    def new_id(self) -> str:
        value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(self._random_tail(), "big")
        pairs = _PAIRS
        return "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS])


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
