"""The gateway's sequencer: events reach the hub in position order with no gap, however
the bus delivered them. Its waits run on a timer the tests move (no real time passes)."""

from __future__ import annotations

import pytest

from tests.fakes import FakeTimer
from tidings.bus.ports import Envelope, EnvelopeKind
from tidings.gateway.sequencer import Sequencer


def env(position: int) -> Envelope:
    return Envelope(kind=EnvelopeKind.EVENT, frame=f"f{position}", position=position)


class Store:
    """What the database holds: every position up to `head` is committed."""

    def __init__(self, head: int) -> None:
        self.head_value = head
        self.fetches: list[tuple[int, int]] = []
        self.fail = 0

    async def head(self) -> int:
        return self.head_value

    async def fetch(self, after: int, until: int) -> list[Envelope]:
        if self.fail:
            self.fail -= 1
            raise OSError("database unreachable")
        self.fetches.append((after, until))
        return [env(p) for p in range(after + 1, until + 1)]


async def make(head: int, timer: FakeTimer, **kw: float) -> tuple[Sequencer, Store, list[int]]:
    store = Store(head)
    got: list[int] = []
    seq = Sequencer(
        lambda e: got.append(e.position or 0),
        store.fetch,
        store.head,
        hole_timeout=0.01,
        sleep=timer.sleep,
        **kw,
    )
    await seq.start()
    return seq, store, got


@pytest.fixture
def timer() -> FakeTimer:
    return FakeTimer()


async def test_in_order_events_pass_straight_through(timer: FakeTimer) -> None:
    seq, store, got = await make(10, timer)
    for p in (11, 12, 13):
        seq.on_envelope("events", env(p))
    assert got == [11, 12, 13] and store.fetches == []


async def test_old_and_duplicate_events_are_dropped(timer: FakeTimer) -> None:
    seq, _store, got = await make(10, timer)
    for p in (9, 10, 11, 11, 12, 11):
        seq.on_envelope("events", env(p))
    assert got == [11, 12]


async def test_out_of_order_arrivals_are_reordered_without_the_store(timer: FakeTimer) -> None:
    seq, store, got = await make(0, timer)
    for p in (2, 3, 1, 5, 4):
        seq.on_envelope("events", env(p))
    assert got == [1, 2, 3, 4, 5]
    await timer.advance(0.05)
    assert store.fetches == []


async def test_a_lost_publish_is_filled_from_the_store(timer: FakeTimer) -> None:
    seq, store, got = await make(0, timer)
    seq.on_envelope("events", env(1))
    seq.on_envelope("events", env(4))  # 2 and 3 were committed, their publish lost
    assert got == [1]
    await timer.advance(0.1)
    assert got == [1, 2, 3, 4] and store.fetches == [(1, 3)]
    assert seq.filled == 2


async def test_a_hole_waits_its_timeout_before_the_store_is_asked(timer: FakeTimer) -> None:
    seq, store, got = await make(0, timer)
    seq.on_envelope("events", env(2))
    await timer.advance(0.009)  # the hole timeout is 0.01: the publish of 1 may come yet
    assert got == [] and store.fetches == []
    await timer.advance(0.002)
    assert got == [1, 2] and store.fetches == [(0, 1)]


async def test_fill_retries_while_the_store_is_down(timer: FakeTimer) -> None:
    seq, store, got = await make(0, timer)
    store.fail = 2
    seq.on_envelope("events", env(3))
    await timer.advance(0.6)
    assert got == [1, 2, 3]
    await seq.close()


async def test_catch_up_after_a_bus_reconnect_reads_to_the_head(timer: FakeTimer) -> None:
    seq, store, got = await make(5, timer)
    store.head_value = 8  # committed while the bus was away; nothing arrives after
    seq.catch_up()
    await timer.advance(0.05)
    assert got == [6, 7, 8]
    seq.on_envelope("events", env(8))  # late duplicate from the bus
    seq.on_envelope("events", env(9))
    assert got == [6, 7, 8, 9]


async def test_the_poll_finds_a_lost_last_publish(timer: FakeTimer) -> None:
    seq, store, got = await make(0, timer, poll_interval=0.02)
    store.head_value = 2  # a node died after committing 1 and 2, before publishing
    await timer.advance(0.15)
    assert got == [1, 2]
    await seq.close()


async def test_events_before_start_wait_for_the_head() -> None:
    store = Store(3)
    got: list[int] = []
    seq = Sequencer(lambda e: got.append(e.position or 0), store.fetch, store.head)
    seq.on_envelope("events", env(3))  # committed before the head was read: replayed
    seq.on_envelope("events", env(4))
    await seq.start()
    assert got == [4]
