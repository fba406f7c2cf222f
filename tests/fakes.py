"""Time and ids a test controls, for the container (`Container(clock=, ids=)`) and the
in-process server (`make_server(clock=, ids=)`)."""

from __future__ import annotations

import asyncio
import heapq
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

    def advance_to(self, moment: datetime) -> None:
        """What sleeping until `moment` does to a clock others share: it moves there
        unless it is already past."""
        self.moment = max(self.moment, moment)


class CountingIds:
    """`<prefix>00000000000000000000001`, `…2`, …: 26 characters like the real ids, in
    the order they were made."""

    def __init__(self, prefix: str = "t") -> None:
        self.prefix = prefix
        self._next = itertools.count(1)

    def new_id(self) -> str:
        return f"{self.prefix}{next(self._next):0{26 - len(self.prefix)}d}"


class FakeTimer:
    """`asyncio.sleep` on a clock the test moves: `await timer.sleep(s)` returns when
    `await timer.advance(...)` has moved the clock past it, and never on its own."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), woken))
        await woken

    async def advance(self, seconds: float) -> None:
        """Move the clock by `seconds`, waking each sleeper at its time in order, and let
        what it wakes run (and sleep again) before moving on."""
        until = self.now + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= until:
            at, _, woken = heapq.heappop(self._sleepers)
            self.now = at
            if not woken.done():
                woken.set_result(None)
            await _settle()
        self.now = until


async def _settle(rounds: int = 20) -> None:
    """Let the tasks that are ready run (a few loop iterations, no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
