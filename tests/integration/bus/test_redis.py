"""The Redis bus between two nodes: pub/sub, presence that expires with a dead node,
and shared rate-limit counters. Real Redis, a fresh key prefix per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.conftest import REDIS_URL, _redis_clear, require
from tidings.bus.ports import Envelope, EnvelopeKind
from tidings.bus.redis import RedisBus


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    require("Redis", REDIS_URL)
    name = f"tidings-test-bus-{uuid.uuid4().hex[:10]}"
    yield name
    await asyncio.to_thread(_redis_clear, name)


async def two_nodes(prefix: str, ttl: float = 60) -> tuple[RedisBus, RedisBus]:
    a, b = RedisBus(REDIS_URL, prefix, ttl), RedisBus(REDIS_URL, prefix, ttl)
    await a.start()
    await b.start()
    return a, b


async def wait_for(condition: object, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110 - polls Redis state
            await asyncio.sleep(0.02)


async def test_publish_reaches_the_other_node_byte_for_byte(prefix: str) -> None:
    a, b = await two_nodes(prefix)
    got: list[tuple[str, Envelope]] = []
    b.subscribe("events", lambda topic, e: got.append((topic, e)))
    await wait_for(lambda: b.connected)
    await asyncio.sleep(0.1)
    sent = Envelope(
        kind=EnvelopeKind.EVENT,
        frame='{"type":"event","x":"中文"}',
        position=7,
        conversation_id="c1",
        added_user_ids=("u1", "u2"),
        sender_id="u1",
        client_msg_id="m1",
    )
    await a.publish("events", sent)
    await wait_for(lambda: got)
    assert got == [("events", sent)]
    await a.close()
    await b.close()


async def test_presence_is_shared_and_expires_with_a_dead_node(prefix: str) -> None:
    a, b = await two_nodes(prefix, ttl=1)
    assert await a.set_presence("u1", "conn-a", "away") == "away"
    assert await b.set_presence("u1", "conn-b", "online") == "online"
    assert await a.get_presence(["u1", "u2"]) == {"u1": "online", "u2": "offline"}
    await b.close()  # node b dies: its heartbeat stops, its entry expires
    await asyncio.sleep(1.3)
    assert await a.get_presence(["u1"]) == {"u1": "away"}  # a's entry is refreshed
    assert await a.set_presence("u1", "conn-a", None) == "offline"
    await a.close()


async def test_rate_counters_are_shared_between_nodes(prefix: str) -> None:
    a, b = await two_nodes(prefix)
    assert (await a.count_hit("k", 10))[0] == 1
    assert (await b.count_hit("k", 10))[0] == 2
    hits, remaining = await a.count_hit("k", 10)
    assert hits == 3 and 0 < remaining <= 10
    assert (await a.count_hit("other", 10))[0] == 1
    await a.close()
    await b.close()
