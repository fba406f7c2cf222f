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
from typing import Any, ClassVar

from uvicorn._types import ASGIApplication, ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from tidings.gateway.ws import RAW_SOCKET


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
        while not self._items:
            self._waiter = self._loop.create_future()
            await self._waiter
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class RawSocketProtocol(WebSocketsSansIOProtocol):
    """Satisfies gateway.ws.RawSocket. `direct` maps a path to the ASGI application that
    serves its upgrades on its own, without the application's HTTP middleware: an idle
    connection then holds one coroutine, not a suspended stack of twenty."""

    direct: ClassVar[dict[str, ASGIApplication]] = {}

    @classmethod
    def routing(cls, direct: dict[str, ASGIApplication]) -> type[RawSocketProtocol]:
        return type(cls.__name__, (cls,), {"direct": dict(direct)})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox(self.loop)  # type: ignore[assignment]

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
