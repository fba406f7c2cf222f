"""How many connections the server holds, from whom, and how long one may wait before it
says what it wants (docs/security.md, "Request and connection limits").

One `ConnectionGuard` per server counts every open connection (HTTP and the WebSockets
they become) against two caps: all of them (`max_connections`, by default the
open-files limit less `fd_reserve`, so the listener, the database and the logs always
find a file descriptor), and those of one client address (`max_connections_per_address`;
a trusted proxy's own connections are not counted: its clients are, by their forwarded
address, on the WebSocket, see gateway/ws.py). A connection over a cap is closed as soon
as it is accepted, before anything is read or allocated for it.

Connections still waiting for a request head (new ones, and keep-alive ones between
requests) are kept oldest first: one that has not sent a whole head within
`header_timeout_seconds` is closed (slowloris), on one timer for all of them; and when
the server is full, a new connection takes the place of the oldest of them, so that an
idle flood cannot keep real clients out (they send their head at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from typing import Protocol

import structlog

from tidings.gateway.ws import Addresses

log = structlog.get_logger(__name__)

# The guard logs that it is full once; again only after the count has fallen this far
# below the cap.
_RELOG_BELOW = 0.9


class Waiting(Protocol):
    """A connection the guard may close while it waits for a request head."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def expire(self) -> None: ...


def raise_open_files_limit() -> None:
    """Raise the process's soft open-files limit to its hard one (the operator's
    `ulimit -Hn`), so that the connection cap follows what the operator allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def open_files_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(max_connections: int, fd_reserve: int, files: int) -> int:
    """The connections the server holds at most: `max_connections` if set, and never
    more than the open-files limit less the reserve (at least a few)."""
    room = max(files - fd_reserve, 8)
    return min(max_connections, room) if max_connections > 0 else room


class ConnectionGuard:
    def __init__(
        self,
        *,
        max_connections: int,
        per_address: int,
        header_timeout: float,
        exempt: Addresses,
    ) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        self.header_timeout = header_timeout
        self.exempt = exempt  # trusted proxies
        self.open = 0
        self.by_address: dict[str, int] = {}
        self._waiting: dict[Waiting, float] = {}  # oldest first: since when each waits
        self._timer: asyncio.TimerHandle | None = None
        self._full_logged = False
        self._logged_addresses: set[str] = set()

    def admit(self, conn: Waiting, host: str | None) -> bool:
        """Count a connection just accepted; False: close it now (nothing is counted)."""
        if host is not None and host not in self.exempt:
            held = self.by_address.get(host, 0)
            if held >= self.per_address:
                if host not in self._logged_addresses:
                    self._logged_addresses.add(host)
                    log.warning("address_connection_limit", address=host, limit=self.per_address)
                return False
            self.by_address[host] = held + 1
        if self.open >= self.max_connections and not self._make_room():
            if host is not None and host in self.by_address:
                self._uncount(host)
            return False
        self.open += 1
        self.wait(conn)
        return True

    def release(self, host: str | None, conn: Waiting | None = None) -> None:
        """A connection counted by `admit` closed (or was closed by the guard); `conn`
        if it may be waiting for a head still."""
        if conn is not None:
            self._waiting.pop(conn, None)
        self.open -= 1
        if host is not None and host not in self.exempt:
            self._uncount(host)
        if self._full_logged and self.open < self.max_connections * _RELOG_BELOW:
            self._full_logged = False

    def wait(self, conn: Waiting) -> None:
        """The connection waits for a request head from now on."""
        self._waiting.pop(conn, None)
        self._waiting[conn] = conn.loop.time()  # the newest, last
        if self._timer is None:
            self._schedule(conn.loop)

    def started(self, conn: Waiting) -> None:
        """Its request head is in: no longer timed, nor taken for a newcomer."""
        self._waiting.pop(conn, None)

    def _uncount(self, host: str) -> None:
        held = self.by_address.get(host, 0) - 1
        if held > 0:
            self.by_address[host] = held
        else:
            self.by_address.pop(host, None)
        if held < self.per_address:
            self._logged_addresses.discard(host)

    def _make_room(self) -> bool:
        """At the cap: close the connection that has waited longest for its head, if
        any (it is released at once); log the first time."""
        if not self._full_logged:
            self._full_logged = True
            log.warning("connection_limit", limit=self.max_connections, open=self.open)
        for oldest in self._waiting:
            oldest.expire()  # closes it and releases it
            return True
        return False

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        for since in self._waiting.values():  # the oldest's deadline
            self._timer = loop.call_at(since + self.header_timeout, self._expire, loop)
            return
        self._timer = None

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close every connection whose head is overdue, then wait for the next one."""
        deadline = loop.time() - self.header_timeout
        while self._waiting:
            conn, since = next(iter(self._waiting.items()))
            if since > deadline:
                break
            conn.expire()
            self._waiting.pop(conn, None)  # in case expire() released nothing
        self._schedule(loop)
