"""app/ws_protocol.py's lighter stand-ins for what uvicorn's WebSocket protocol uses of
asyncio (an idle connection holds less)."""

from __future__ import annotations

import asyncio

import pytest

from tidings.app.ws_protocol import _Keepalive, _Writable


async def test_writers_pass_until_paused_then_all_wake_when_resumed() -> None:
    writable = _Writable(asyncio.get_running_loop())
    assert writable.is_set() and await writable.wait()
    writable.clear()
    waits = [asyncio.ensure_future(writable.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waits)
    writable.set()
    writable.clear()  # cleared again before they run: they were woken, they go on
    assert await asyncio.gather(*waits) == [True, True, True]


async def test_a_cancelled_writer_leaves_the_others_waiting() -> None:
    writable = _Writable(asyncio.get_running_loop())
    writable.clear()
    gone, stays = asyncio.ensure_future(writable.wait()), asyncio.ensure_future(writable.wait())
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert not stays.done()
    writable.set()
    assert await stays


class _Pinged:
    """Stands in for a connection's protocol: its loop, and a count of its pings."""

    def __init__(self, loop: _Clock) -> None:
        self.loop = loop
        self.pings = 0

    def send_keepalive_ping(self) -> None:
        self.pings += 1


class _Clock:
    """What _Keepalive uses of a loop: its time, and call_at (recorded, not run)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.timers: list[tuple[float, int]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: object, tick: int) -> None:
        self.timers.append((when, tick))


def test_keepalive_pings_due_in_one_tick_share_one_timer() -> None:
    clock = _Clock(100.2)
    keepalive = _Keepalive()
    a, b, c = _Pinged(clock), _Pinged(clock), _Pinged(clock)
    due_a = keepalive.schedule(a, 20)  # type: ignore[arg-type]
    clock.now = 100.7  # within the same tick
    keepalive.schedule(b, 20)  # type: ignore[arg-type]
    keepalive.schedule(c, 40)  # type: ignore[arg-type]
    assert clock.timers == [(121.0, 121), (141.0, 141)]  # one timer per tick
    due_a.cancel()  # its connection closed: no ping for it
    keepalive._fire(121)
    assert (a.pings, b.pings, c.pings) == (0, 1, 0)
    keepalive._fire(141)
    assert c.pings == 1 and keepalive._ticks == {}
    due_a.cancel()  # its tick is gone: nothing to do
