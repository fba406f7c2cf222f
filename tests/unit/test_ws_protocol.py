"""app/ws_protocol.py's lighter stand-ins for what uvicorn's WebSocket protocol uses of
asyncio (an idle connection holds less)."""

from __future__ import annotations

import asyncio

import pytest

from tidings.app.ws_protocol import _Writable


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
