"""Time and ids a test controls, for the container (`Container(clock=, ids=)`) and the
in-process server (`make_server(clock=, ids=)`)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Stands still unless moved (`advance`), or moves `tick` per reading so that order
    by time is defined."""

    def __init__(
        self,
        start: datetime = datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
        tick: timedelta = timedelta(0),
    ) -> None:
        self.moment = start
        self.tick = tick

    def now(self) -> datetime:
        self.moment += self.tick
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


class CountingIds:
    """`<prefix>00000000000000000000001`, `…2`, …: 26 characters like the real ids, in
    the order they were made."""

    def __init__(self, prefix: str = "t") -> None:
        self.prefix = prefix
        self._next = itertools.count(1)

    def new_id(self) -> str:
        return f"{self.prefix}{next(self._next):0{26 - len(self.prefix)}d}"
