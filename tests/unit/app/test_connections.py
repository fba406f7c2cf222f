"""The connection guard's accounting (app/connections.py), without sockets: caps per
address and in all, the oldest connection still waiting for its head making room for a
newcomer, nothing left counted once everything closed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tidings.app.connections import ConnectionGuard, connection_cap


class Conn:
    """A connection as the guard sees it: closing it releases it, as the protocol does."""

    def __init__(self, guard: ConnectionGuard, loop: asyncio.AbstractEventLoop, host: str) -> None:
        self.guard = guard
        self.loop = loop
        self.host = host
        self.closed = False

    def expire(self) -> None:
        self.closed = True
        self.guard.release(self.host, self)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def guard(**kw: object) -> ConnectionGuard:
    options: dict[str, object] = {
        "max_connections": 100,
        "per_address": 100,
        "header_timeout": 10.0,
        "exempt": {"127.0.0.1"},
        **kw,
    }
    return ConnectionGuard(**options)  # type: ignore[arg-type]  # checked by the tests


def test_the_cap_is_the_open_files_limit_less_the_reserve() -> None:
    assert connection_cap(0, 128, 1024) == 896
    assert connection_cap(500, 128, 1024) == 500  # a lower setting wins
    assert connection_cap(5000, 128, 1024) == 896  # never beyond the descriptors
    assert connection_cap(0, 128, 100) == 8  # a limit under the reserve: a few still


def test_an_address_over_its_cap_is_refused_and_counts_again_after_a_close(
    loop: asyncio.AbstractEventLoop,
) -> None:
    g = guard(per_address=2)
    a, b = Conn(g, loop, "10.0.0.1"), Conn(g, loop, "10.0.0.1")
    assert g.admit(a, a.host) and g.admit(b, b.host)
    assert not g.admit(Conn(g, loop, "10.0.0.1"), "10.0.0.1")
    assert g.admit(Conn(g, loop, "10.0.0.2"), "10.0.0.2")  # another address
    for _ in range(5):  # a trusted proxy is not capped
        assert g.admit(Conn(g, loop, "127.0.0.1"), "127.0.0.1")
    g.release(a.host, a)
    assert g.admit(Conn(g, loop, "10.0.0.1"), "10.0.0.1")
    assert g.open == 8 and g.by_address == {"10.0.0.1": 2, "10.0.0.2": 1}


def test_when_full_the_oldest_waiting_connection_makes_room(
    loop: asyncio.AbstractEventLoop,
) -> None:
    g = guard(max_connections=3)
    first, second, third = (Conn(g, loop, f"10.0.0.{i}") for i in (1, 2, 3))
    for conn in (first, second, third):
        assert g.admit(conn, conn.host)
    g.started(first)  # its head is in: not taken
    newcomer = Conn(g, loop, "10.0.0.4")
    assert g.admit(newcomer, newcomer.host)
    assert second.closed and not first.closed and not third.closed
    assert g.open == 3 and "10.0.0.2" not in g.by_address
    g.started(third)
    g.started(newcomer)
    assert not g.admit(Conn(g, loop, "10.0.0.5"), "10.0.0.5")  # nothing waits: refused
    assert g.open == 3 and "10.0.0.5" not in g.by_address
    for conn in (first, third, newcomer):
        g.release(conn.host, conn)
    assert g.open == 0 and g.by_address == {}
