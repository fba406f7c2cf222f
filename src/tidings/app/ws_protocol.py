"""uvicorn's sans-I/O WebSocket protocol, with its transport offered to the gateway.

The gateway writes one event to many connections. Through ASGI every write would be a
`websocket.send` message per connection: an await chain, a UTF-8 encode and a frame
header each time. A server frame is never masked, so when a connection negotiated no
extension (no compression) the same framed bytes are valid on every connection: this
protocol puts itself in the ASGI scope under `RAW_SOCKET`, and the gateway writes the
bytes it framed once straight to the transport (see gateway/ws.py `_RawOutbox`).
Everything else (handshake, reading, pings, close) stays uvicorn's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from typing import Any, ClassVar, cast

from uvicorn._types import ASGIApplication, ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from tidings.app.connections import ConnectionGuard
from tidings.gateway.ws import RAW_SOCKET

# uvicorn logs every accepted WebSocket at info level (`... "WebSocket /api/v1/ws"
# [accepted]`), and websockets' protocol "connection open": log lines, a write to the
# log each per connection, while the HTTP access log is off. Both log here instead
# (app/logging.py keeps this logger at warning): warnings and errors still show.
PROTOCOL_LOGGER = "uvicorn.error.websocket"


class _Inbox:
    """What uvicorn uses of asyncio.Queue (put_nowait, get, empty) for its one reader,
    without the Queue's four deques and an Event: about 4 KiB less per connection."""

    __slots__ = ("_items", "_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._items: list[Any] = []
        self._loop = loop  # asking asyncio for the running loop costs a getpid() call
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while (waiter := self.waiter()) is not None:
            await waiter
        return self._items.pop(0)

    def waiter(self) -> asyncio.Future[None] | None:
        """A future to wait on while the inbox is empty; None when an item is there."""
        if self._items:
            return None
        waiter = self._waiter = self._loop.create_future()
        return waiter

    def pop(self) -> Any:
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class _Writable:
    """What uvicorn uses of asyncio.Event for its transport's flow control (set, clear,
    wait), without the Event's deque (about 0.7 KiB per connection): a writer that finds
    the transport paused waits on a future of its own, made only then."""

    __slots__ = ("_loop", "_set", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = self._loop.create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


# Keepalive pings falling due within one tick share a timer, so a ping goes out up to a
# tick late (the interval is 20 s; the pong's deadline is uvicorn's, from the ping).
KEEPALIVE_TICK_SECONDS = 1.0


class _Due:
    """One connection's next keepalive ping, as uvicorn keeps it (`ping_timer`: all it
    calls is cancel())."""

    __slots__ = ("_protocol", "_tick", "_ticks")

    def __init__(
        self, ticks: dict[int, set[RawSocketProtocol]], tick: int, protocol: RawSocketProtocol
    ) -> None:
        self._ticks = ticks
        self._tick = tick
        self._protocol = protocol

    def cancel(self) -> None:
        due = self._ticks.get(self._tick)
        if due is not None:
            due.discard(self._protocol)


class _Keepalive:
    """The keepalive pings of every connection of one loop, on one timer per tick that
    has any: uvicorn arms a timer per connection (a TimerHandle, a libuv timer and a
    context: about 0.5 KiB each, held for the life of the connection)."""

    def __init__(self) -> None:
        # (no reference to the loop: it is the key of _KEEPALIVES, a weak one)
        self._ticks: dict[int, set[RawSocketProtocol]] = {}

    def schedule(self, protocol: RawSocketProtocol, delay: float) -> _Due:
        loop = protocol.loop
        tick = math.ceil((loop.time() + delay) / KEEPALIVE_TICK_SECONDS)
        due = self._ticks.get(tick)
        if due is None:
            due = self._ticks[tick] = set()
            loop.call_at(tick * KEEPALIVE_TICK_SECONDS, self._fire, tick)
        due.add(protocol)
        return _Due(self._ticks, tick, protocol)

    def _fire(self, tick: int) -> None:
        for protocol in self._ticks.pop(tick, ()):
            protocol.send_keepalive_ping()


# The addresses the server listens on (uvicorn makes a tuple per connection).
_LISTENING: dict[tuple[str, int | None] | None, tuple[str, int | None] | None] = {}

_KEEPALIVES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Keepalive] = (
    weakref.WeakKeyDictionary()
)


class RawSocketProtocol(WebSocketsSansIOProtocol):
    """Satisfies gateway.ws.RawSocket. `direct` maps a path to the ASGI application that
    serves its upgrades on its own, without the application's HTTP middleware: an idle
    connection then holds one coroutine, not a suspended stack of twenty."""

    direct: ClassVar[dict[str, ASGIApplication]] = {}
    # The server's connection guard (app/connections.py): the HTTP connection this one
    # was upgraded from was counted there, and this one releases it when it closes.
    guard: ClassVar[ConnectionGuard | None] = None

    # uvicorn's protocol keeps about forty attributes in each connection's instance dict
    # (about 1.7 KiB: too many for a dict sharing its keys with the other instances').
    # Named as slots here they are stored in the object, 8 bytes each; one uvicorn adds
    # in a later version would simply go to the dict (tests/unit/test_private_apis.py
    # checks that none does in the pinned one).
    __slots__ = (
        "app",
        "app_state",
        "asgi_version",
        "client",
        "close_sent",
        "close_timeout",
        "close_timer",
        "config",
        "conn",
        "connections",
        "curr_msg_data_type",
        "default_headers",
        "disconnected",
        "frames",
        "handshake_complete",
        "handshake_initiated",
        "initial_response",
        "last_ping_rtt",
        "logger",
        "loop",
        "pending_ping_payload",
        "ping_interval",
        "ping_sent_at",
        "ping_timeout",
        "ping_timer",
        "pong_timer",
        "queue",
        "read_paused",
        "request",
        "response",
        "root_path",
        "scheme",
        "scope",
        "server",
        "tasks",
        "transport",
        "writable",
    )

    @classmethod
    def routing(
        cls, direct: dict[str, ASGIApplication], guard: ConnectionGuard | None = None
    ) -> type[RawSocketProtocol]:
        return type(cls.__name__, (cls,), {"direct": dict(direct), "guard": guard})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox(self.loop)  # type: ignore[assignment]
        self.writable = _Writable(self.loop)  # type: ignore[assignment]
        self.logger = logging.getLogger(PROTOCOL_LOGGER)
        # websockets' protocol, given uvicorn's error logger (at info), logs "connection
        # open" for every handshake: a log record and a line per connection.
        self.conn.logger = self.logger

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # The listening address: one tuple for every connection it accepts.
        self.server = _LISTENING.setdefault(self.server, self.server)

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            if self.guard is not None:
                self.guard.release(self.client[0] if self.client else None)

    async def receive(self) -> ASGIReceiveEvent:
        """uvicorn's, waiting on the inbox itself: one suspended coroutine (the inbox's
        `get`) less for every idle connection."""
        inbox = cast(_Inbox, self.queue)
        while (waiter := inbox.waiter()) is not None:
            await waiter
        message = inbox.pop()
        if self.read_paused and inbox.empty():
            self.read_paused = False
            self.transport.resume_reading()
        return cast(ASGIReceiveEvent, message)

    def schedule_ping(self) -> None:
        """uvicorn's, on the loop's shared keepalive timers."""
        assert self.ping_interval is not None
        keepalive = _KEEPALIVES.get(self.loop)
        if keepalive is None:
            keepalive = _KEEPALIVES[self.loop] = _Keepalive()
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self.ping_timer = keepalive.schedule(self, delay)  # type: ignore[assignment]

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The handshake is over: its request and response (headers) are not needed.
            self.request = self.response = None  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        app = self.direct.get(event.path.partition("?")[0])
        if app is not None:
            self.app = app  # read when the ASGI task first runs, after this returns
        super().handle_connect(event)
        # websockets' parser keeps the request (a local of its generator) for the whole
        # connection; the scope has its own copy of the headers: free these.
        event.headers.clear()
        if self.response.status_code == 101:
            # The ASGI task was created but has not run yet: it sees the extension.
            extensions: dict[str, object] = self.scope["extensions"]  # type: ignore[assignment]
            extensions[RAW_SOCKET] = self

    @property
    def plain(self) -> bool:
        """No extension negotiated: frames go out as built, the same for every peer."""
        return not self.conn.extensions

    @property
    def open(self) -> bool:
        return not (self.disconnected or self.close_sent or self.transport.is_closing())

    def write_frames(self, data: bytes) -> None:
        self.transport.write(data)

    async def wait_writable(self) -> None:
        await self.writable.wait()
