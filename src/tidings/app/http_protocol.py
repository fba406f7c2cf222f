"""uvicorn's httptools protocol, with a bounded request head and the connection guard.

uvicorn's HTTP protocol reads a request head of any size (httptools hands over each
header only when its line ends, holding the line until then) and any number of header
lines, and waits for it forever: a connection that never sends one is never closed.
Here, a head larger than `max_header_bytes` or with more than `max_header_count` lines
is answered `431` (`too_large`, the error shape of the API) and the connection closed,
before the application sees it; and every connection is counted and timed by the
server's `ConnectionGuard` (app/connections.py).

A request answered before its body is all in (refused by a limit, or by authentication
before the route reads the body) is answered with `connection: close` and the connection
lingers (`_linger`) instead of being kept alive: uvicorn would go on reading the body it
paused, and a client that reused the connection meanwhile would lose its next request.
While the body streams in, the cycle's `keep_alive` is off (uvicorn then writes
`connection: close` in the answer), and back to what uvicorn decided once the body is in;
the cycle's `transport.close()` after such an answer lingers rather than closing at
once (which would reset the connection and lose the answer). Everything else is
uvicorn's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tidings.api.errors import error_body
from tidings.app.connections import ConnectionGuard
from tidings.core.errors import ErrorCode

# A connection answered before its request was all in (a refused head or body) is
# closed this long after the answer, or as soon as the client sends this much more.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_bytes: int
    max_lines: int


class HeadTooLarge(Exception):
    """Raised from the parser's callbacks: httptools stops parsing, and feed_data raises
    HttpParserCallbackError with this as its context."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


class GuardedHttpProtocol(HttpToolsProtocol):
    guard: ClassVar[ConnectionGuard]
    head: ClassVar[HeadLimits]

    # Per connection, in slots: uvicorn's own attributes stay in an instance dict that
    # shares its keys with the others' (about 0.3 KiB; with these in it too, 1.6 KiB).
    __slots__ = (
        "_counted",
        "_head_bytes",
        "_head_lines",
        "_heads",
        "_in_head",
        "_keep_alive",
        "_lingering",
        "_unparsed",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the head's bytes and lines seen in the parser's callbacks; bytes received while
        # a head was incomplete (what httptools may hold of a line not yet ended)
        self._head_bytes = self._head_lines = self._unparsed = 0
        self._in_head = True
        self._heads = 0  # request heads completed on this connection
        self._counted = False  # admitted by the guard, not yet released
        self._lingering: int | None = None  # answered and closing: what it may still drop
        # the cycle's keep_alive as uvicorn decided it, while its body is not all in
        self._keep_alive: bool | None = None

    @classmethod
    def configured(cls, guard: ConnectionGuard, head: HeadLimits) -> type[GuardedHttpProtocol]:
        return type(cls.__name__, (cls,), {"guard": guard, "head": head})

    # --- the guard ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.guard.admit(self, self._host):
            self._counted = True
        else:
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        super().connection_lost(exc)

    def expire(self) -> None:
        """Closed by the guard: no head in time, or its place taken by a newcomer."""
        self._release()
        self.transport.close()

    def _release(self) -> None:
        if self._counted:
            self._counted = False
            self.guard.release(self._host, self)

    @property
    def _host(self) -> str | None:
        return self.client[0] if self.client else None

    # --- the head ----------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """uvicorn's, answering a head over the limits with 431 (and checking after each
        read how much of an unfinished head httptools may be holding)."""
        if self._lingering is not None:
            self._lingering -= len(data)  # dropped unread
            if self._lingering < 0:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        was_in_head = self._in_head
        heads = self._heads
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._refuse_head(exc.__context__)
            else:
                self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                # Done with: the parser and this protocol refer to each other, and would
                # wait for the garbage collector (uvicorn breaks the cycle in
                # connection_lost, which an upgraded connection never calls here).
                self.parser = None  # type: ignore[assignment]
            else:
                self._unsupported_upgrade_warning()
            return
        if was_in_head and self._heads == heads:
            # (A read in which a head ended is not counted: most of it was that
            # request's head and body, and httptools holds no more of the next head
            # than one read. Counted whole, a request that came in one read, or the
            # last read of a large body, was a "head" over the limit.)
            self._unparsed += len(data)
            limit = self.head.max_bytes
            if self._unparsed > limit:
                self._refuse_head(HeadTooLarge(f"request head over {limit} bytes", limit))

    def _invalid(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def _count(self, size: int, lines: int) -> None:
        self._head_bytes += size
        self._head_lines += lines
        if self._head_bytes > self.head.max_bytes:
            limit = self.head.max_bytes
            raise HeadTooLarge(f"request head over {limit} bytes", limit)
        if self._head_lines > self.head.max_lines:
            limit = self.head.max_lines
            raise HeadTooLarge(f"more than {limit} header lines", limit)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._head_lines = 0
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 1)  # with ": " and the line's end
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads += 1
        self._unparsed = 0
        self.guard.started(self)
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle is before:
            return  # an upgrade: no request cycle
        # Until the body is in (a request without one ends in this same feed_data,
        # before the application runs), an answer closes the connection.
        self._keep_alive = cycle.keep_alive
        cycle.keep_alive = False
        cycle.transport = _CycleTransport(self)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what follows is the next request's head
        self._unparsed = 0
        cycle = self.cycle
        if self._keep_alive is not None and cycle is not None and not cycle.response_started:
            cycle.keep_alive = self._keep_alive  # the body is in: uvicorn's decision
        self._keep_alive = None

    def shutdown(self) -> None:
        self._keep_alive = None  # uvicorn's "not kept alive" is not undone by the body
        super().shutdown()

    def on_response_complete(self) -> None:
        idle = not self.pipeline
        super().on_response_complete()
        if self.transport.is_closing() or self._lingering is not None:
            return
        if idle and self._counted:
            self.guard.wait(self)  # until its next head: timed, and may make room

    def _close_after_answer(self) -> None:
        """The cycle closes the connection (an answer with `connection: close`, or an
        error): at once if the request is all in, else by lingering."""
        if self._in_head:
            self.transport.close()
        else:
            self._linger()  # the rest of the body is not read

    def _linger(self) -> None:
        """Close, after giving the client time to read the answer: closing at once with
        its data unread would reset the connection, and the client would lose the answer
        (it is still sending). Until then, what arrives is dropped unparsed."""
        if self._lingering is not None:
            return
        self._in_head = False
        self._lingering = LINGER_BYTES
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client reads the answer, then the end
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _refuse_head(self, exc: HeadTooLarge) -> None:
        self._in_head = False
        if self.cycle is not None and not self.cycle.response_complete:
            # a pipelined request's head, while the one before is being answered: an
            # answer now would land inside that one's
            self.transport.abort()
            return
        body = error_body(ErrorCode.TOO_LARGE, exc.message, {"limit": exc.limit})
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self._linger()


class _CycleTransport:
    """The transport as a request's cycle sees it: uvicorn's, except that its close()
    after an answer lingers while the request's body is still coming in."""

    __slots__ = ("_protocol", "is_closing", "write")

    def __init__(self, protocol: GuardedHttpProtocol) -> None:
        self._protocol = protocol
        self.write = protocol.transport.write
        self.is_closing = protocol.transport.is_closing

    def close(self) -> None:
        self._protocol._close_after_answer()
