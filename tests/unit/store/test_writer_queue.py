"""The in-process writers' turn (store/sql/engines/base.py WriterQueue): the send path's
group commit goes before the background writes waiting, ordinary writers keep their
order and are never starved, and a cancelled waiter neither keeps nor loses the turn."""

from __future__ import annotations

import asyncio

from tidings.store.sql.engines.base import WriterQueue


async def _writer(queue: WriterQueue, name: str, order: list[str], urgent: bool = False) -> None:
    await queue.acquire(urgent)
    try:
        order.append(name)
        await asyncio.sleep(0)
    finally:
        queue.release()


async def test_an_urgent_writer_goes_before_every_ordinary_one_waiting() -> None:
    queue, order = WriterQueue(), []
    await queue.acquire()  # a background transaction in progress
    tasks = [asyncio.create_task(_writer(queue, f"job{i}", order)) for i in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(_writer(queue, "send", order, urgent=True)))
    await asyncio.sleep(0)
    assert queue.waiting() == 4
    queue.release()
    await asyncio.gather(*tasks)
    assert order == ["send", "job0", "job1", "job2"]
    assert not queue.locked()


async def test_ordinary_writers_keep_their_order_and_are_not_starved() -> None:
    queue, order = WriterQueue(), []
    await queue.acquire()
    jobs = [asyncio.create_task(_writer(queue, f"job{i}", order)) for i in range(2)]
    await asyncio.sleep(0)
    queue.release()  # no urgent writer waits: the oldest ordinary one has the turn
    sends = asyncio.create_task(_writer(queue, "send", order, urgent=True))
    await asyncio.gather(*jobs, sends)
    # job0 was handed the turn before the send asked: no barging in between
    assert order[0] == "job0" and order.index("send") < order.index("job1")


async def test_a_free_turn_is_taken_without_waiting() -> None:
    queue = WriterQueue()
    await queue.acquire(urgent=False)
    assert queue.locked() and queue.waiting() == 0
    queue.release()
    assert not queue.locked()


async def test_a_waiter_cancelled_before_its_turn_leaves_the_queue() -> None:
    queue, order = WriterQueue(), []
    await queue.acquire()
    gone = asyncio.create_task(_writer(queue, "gone", order, urgent=True))
    kept = asyncio.create_task(_writer(queue, "kept", order))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    queue.release()
    await kept
    assert order == ["kept"] and not queue.locked()


async def test_a_waiter_cancelled_after_it_was_handed_the_turn_passes_it_on() -> None:
    queue, order = WriterQueue(), []
    await queue.acquire()
    handed = asyncio.create_task(_writer(queue, "handed", order))
    nxt = asyncio.create_task(_writer(queue, "next", order))
    await asyncio.sleep(0)
    queue.release()  # `handed` owns the turn now, but has not run yet
    handed.cancel()
    await nxt
    assert order == ["next"] and not queue.locked()


async def test_timing_out_while_waiting_gives_the_turn_to_no_one() -> None:
    queue = WriterQueue()
    await queue.acquire()
    try:
        async with asyncio.timeout(0.01):
            await queue.acquire(urgent=True)
    except TimeoutError:
        pass
    assert queue.waiting() == 0
    queue.release()
    assert not queue.locked()
