"""Committed events in position order, with no gap, whatever the bus did.

Positions are consecutive: each is taken under the store's write lock in the committing
transaction, so every position at or below the stream head is committed. Nodes publish
after their commits, so envelopes can arrive out of order, and a node that dies between
its commit and its publish (or a bus reconnect) loses some. The sequencer holds early
arrivals, and fills a gap that lasts from the store, so the hub (and every connection's
position) only ever moves forward over a complete stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from tidings.bus.ports import Envelope

log = structlog.get_logger(__name__)

Fetch = Callable[[int, int], Awaitable[list[Envelope]]]
Sleep = Callable[[float], Awaitable[None]]


class Sequencer:
    def __init__(
        self,
        deliver: Callable[[Envelope], None],
        fetch: Fetch,
        head: Callable[[], Awaitable[int]],
        *,
        hole_timeout: float = 0.1,
        poll_interval: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`sleep` waits out the hole timeout, the retry backoff and the poll interval
        (tests pass one on a clock they move)."""
        self.deliver = deliver
        self.fetch = fetch  # events with after < position <= until, from the primary
        self.head = head
        self.hole_timeout = hole_timeout
        self.poll_interval = poll_interval
        self.sleep = sleep
        self.upto: int | None = None
        self.pending: dict[int, Envelope] = {}
        self.filled = 0  # events recovered from the store (a metric)
        self._filler: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Call after subscribing: what committed before is the connections' replay."""
        self.upto = await self.head()
        self._drain()
        if self.poll_interval:
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    def on_envelope(self, _topic: str, envelope: Envelope) -> None:
        position = envelope.position
        assert position is not None
        if self.upto is not None and position <= self.upto:
            return  # already delivered (or committed before this node started)
        self.pending[position] = envelope
        if self.upto is not None:
            self._drain()

    def catch_up(self) -> None:
        """The bus reconnected: fetch whatever was committed meanwhile."""
        self._schedule_fill(delay=0.0, to_head=True)

    def _drain(self) -> None:
        assert self.upto is not None
        for stale in [p for p in self.pending if p <= self.upto]:
            del self.pending[stale]
        while self.upto + 1 in self.pending:
            self.upto += 1
            self.deliver(self.pending.pop(self.upto))
        if self.pending:
            self._schedule_fill(delay=self.hole_timeout)

    def _schedule_fill(self, delay: float, to_head: bool = False) -> None:
        if self._filler is not None and not self._filler.done():
            return
        self._filler = asyncio.get_running_loop().create_task(self._fill(delay, to_head))

    async def _fill(self, delay: float, to_head: bool) -> None:
        await self.sleep(delay)
        backoff = 0.1
        while self.upto is not None:
            try:
                if self.pending:
                    until = min(self.pending) - 1
                elif to_head:
                    until = await self.head()
                else:
                    return
                if until <= self.upto:
                    self._drain()
                    if not self.pending:
                        return
                    continue
                for envelope in await self.fetch(self.upto, until):
                    assert envelope.position is not None
                    if envelope.position > self.upto:
                        self.upto = envelope.position
                        self.filled += 1
                        self.deliver(envelope)
                self.upto = max(self.upto, until)
                to_head = False
                self._drain()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store is down: try again later
                log.warning("sequencer_fill_failed", error=str(exc), upto=self.upto)
                await self.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _poll(self) -> None:
        """A cheap safety net: a publish lost with nothing after it is found by this."""
        assert self.poll_interval is not None
        while True:
            await self.sleep(self.poll_interval)
            with contextlib.suppress(Exception):
                if self.upto is not None and await self.head() > self.upto:
                    self.catch_up()

    async def close(self) -> None:
        for task in (self._filler, self._poller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
