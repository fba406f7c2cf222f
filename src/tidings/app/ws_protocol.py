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

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from tidings.gateway.ws import RAW_SOCKET


class RawSocketProtocol(WebSocketsSansIOProtocol):
    """Satisfies gateway.ws.RawSocket."""

    def handle_connect(self, event: Request) -> None:
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
