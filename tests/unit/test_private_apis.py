"""The private internals of dependencies that Tidings relies on, checked against the
versions pinned exactly in pyproject.toml. When an upgrade changes one of these shapes,
this fails here, loudly, before the server misbehaves.

- aiosqlite: store/sql/engines/sqlite.py `_InlineSqlite` subclasses `aiosqlite.Connection`
  and replaces its worker thread (`_tx`, `_connect`, `_execute`, `_connection`, `stop`).
- uvicorn: app/ws_protocol.py subclasses `WebSocketsSansIOProtocol`, uses its state
  (`conn`, `transport`, `scope`, ...) and replaces some of it (`queue`, `writable`,
  `logger`); app/http_protocol.py subclasses `HttpToolsProtocol` (its `data_received`
  is a copy of uvicorn's with one more case) and extends its parser callbacks;
  app/server.py and ws_protocol.py import the private `uvicorn._types`, app/server.py
  the private `_TrustedHosts`; app/server.py overrides `Server.shutdown`.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import re
import sqlite3
import threading
import tomllib
from pathlib import Path

import aiosqlite
import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from tidings.app.ws_protocol import RawSocketProtocol
from tidings.store.sql.engines import sqlite as sqlite_engine

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pins() -> dict[str, str]:
    """Exact pins (`name==version`, extras dropped) among the project's dependencies."""
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^,;\s]+)", dep)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize("name", ["aiosqlite", "uvicorn"])
def test_a_dependency_used_privately_is_pinned_and_installed_as_pinned(name: str) -> None:
    pins = _pins()
    assert name in pins, f"{name} is used through private internals: pin it with == in pyproject"
    assert importlib.metadata.version(name) == pins[name]


def _params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def _uses(cls: type, attribute: str) -> set[str]:
    """The methods the class's own source calls on `self.<attribute>`."""
    return set(re.findall(rf"self\.{attribute}\.(\w+)", inspect.getsource(cls)))


# --- aiosqlite -------------------------------------------------------------------
def test_aiosqlite_connection_has_the_shape_the_inline_driver_replaces() -> None:
    cls = aiosqlite.Connection
    assert _params(cls.__init__) == ["self", "connector", "iter_chunk_size", "loop"]
    assert _params(cls._execute) == ["self", "fn", "args", "kwargs"]
    assert _params(cls._connect) == ["self"]
    assert _params(cls.stop) == ["self"]
    assert inspect.iscoroutinefunction(cls._execute)
    assert inspect.iscoroutinefunction(cls._connect)
    assert isinstance(inspect.getattr_static(cls, "_conn"), property)
    # The worker queue is only ever fed (future, function) pairs with put_nowait, which
    # is all `_RunNow` implements.
    assert _uses(cls, "_tx") == {"put_nowait"}
    source = inspect.getsource(cls)
    assert "self._tx.put_nowait((future, function))" in source
    # Every public statement method goes through `_execute` (run inline, then).
    for name in ("execute", "executemany", "commit", "rollback", "close"):
        assert "self._execute(" in inspect.getsource(getattr(cls, name)), name
    connection = cls(lambda: sqlite3.connect(":memory:"), 64)
    for attribute in ("_running", "_connection", "_connector", "_tx", "_thread"):
        assert hasattr(connection, attribute), attribute
    assert connection._connection is None


async def test_the_inline_driver_runs_on_the_loops_thread_without_a_worker() -> None:
    """aiosqlite's own API on `_InlineSqlite`: every call runs at once on this thread."""
    threads: list[int] = []

    def connector() -> sqlite3.Connection:
        threads.append(threading.get_ident())
        return sqlite3.connect(":memory:", check_same_thread=False)

    before = threading.active_count()
    db = await sqlite_engine._InlineSqlite(connector)
    assert threading.active_count() == before  # no worker thread started
    await db.execute("CREATE TABLE t (x INTEGER)")
    await db.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    await db.commit()
    async with db.execute("SELECT sum(x) FROM t") as cursor:
        assert await cursor.fetchone() == (3,)
    assert sqlite_engine.inline_sqlite_of(db) is db._conn
    assert threads == [threading.get_ident()]
    await db.close()
    assert db._connection is None
    with pytest.raises(ValueError):
        await db.execute("SELECT 1")


# --- uvicorn ---------------------------------------------------------------------
def test_uvicorn_private_types_exist() -> None:
    from uvicorn import _types

    for name in ("ASGIApplication", "ASGI3Application", "ASGISendEvent"):
        assert hasattr(_types, name), name
    assert _params(uvicorn.Server.shutdown) == ["self", "sockets"]
    assert inspect.iscoroutinefunction(uvicorn.Server.shutdown)


def test_uvicorn_sansio_protocol_has_the_shape_raw_sockets_use() -> None:
    cls = WebSocketsSansIOProtocol
    assert _params(cls.__init__) == ["self", "config", "server_state", "app_state", "_loop"]
    assert _params(cls.handle_connect) == ["self", "event"]
    assert _params(cls.send) == ["self", "message"]
    # `_Inbox` stands in for the asyncio.Queue, `_Writable` for the asyncio.Event of the
    # transport's flow control: they offer these only.
    assert _uses(cls, "queue") <= {"put_nowait", "get", "empty"}
    assert _uses(cls, "writable") <= {"set", "clear", "wait", "is_set"}
    # RawSocketProtocol.receive is uvicorn's, without the queue's own coroutine.
    receive = inspect.getsource(cls.receive)
    assert "await self.queue.get()" in receive
    assert "if self.read_paused and self.queue.empty():" in receive
    assert "self.transport.resume_reading()" in receive
    # The listening address it keeps per connection, shared (connection_made).
    assert "self.server = get_local_addr(transport)" in inspect.getsource(cls.connection_made)
    # Once the connection is accepted, uvicorn reads only these of the scope (for its log
    # lines): gateway/ws.py keeps only what is read later.
    from uvicorn.protocols import utils

    from tidings.gateway.ws import SCOPE_READ_LATER

    send = inspect.getsource(cls.send)
    read = {"type"}  # Starlette's WebSocket checks it
    for helper in ("get_client_addr", "get_path_with_query_string"):
        assert f"{helper}(self.scope)" in send
        read |= set(
            re.findall(r"scope(?:\[|\.get\()\"(\w+)\"", inspect.getsource(getattr(utils, helper)))
        )
    assert re.findall(r"self\.scope\[", send) == []
    assert read == set(SCOPE_READ_LATER), read
    # Its own logger, replaced by one of our own (app/ws_protocol.py PROTOCOL_LOGGER).
    assert "self.logger = " in inspect.getsource(cls.__init__)
    # The handshake's request and response are dropped after it: uvicorn reads them only
    # while handling the connect and the accept.
    assert "self.request" in inspect.getsource(cls.handle_connect)

    async def app(scope: object, receive: object, send: object) -> None:
        return None

    config = uvicorn.Config(app, ws=RawSocketProtocol, log_level="warning")
    config.load()
    loop = asyncio.new_event_loop()
    try:
        protocol = RawSocketProtocol(config, ServerState(), {}, _loop=loop)
        for attribute in (
            "app",
            "loop",
            "queue",
            "conn",
            "handshake_complete",
            "close_sent",
            "disconnected",
            "writable",
            "logger",
        ):
            assert hasattr(protocol, attribute), attribute
        assert "self.writable = asyncio.Event()" in inspect.getsource(cls.__init__)
        # Every attribute uvicorn's protocol sets is one of our slots: the connection's
        # instance dict stays empty (app/ws_protocol.py RawSocketProtocol.__slots__).
        assigned = set(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=(?!=)", inspect.getsource(cls)))
        assert {"scope", "request", "response", "transport", "queue"} <= assigned
        assert assigned <= set(RawSocketProtocol.__slots__), assigned
        assert vars(protocol) == {}
        assert hasattr(protocol.conn, "extensions")
        assert "self.transport = transport" in inspect.getsource(cls.connection_made)
        # The ASGI scope (and its "extensions") is made in handle_connect, before the
        # task that reads it runs.
        assert "self.scope: WebSocketScope = {" in inspect.getsource(cls.handle_connect)
    finally:
        loop.close()


def test_uvicorn_httptools_protocol_has_the_shape_the_guarded_protocol_uses() -> None:
    """app/http_protocol.py subclasses HttpToolsProtocol: its data_received is uvicorn's
    with one more error case (a head over the limits), so uvicorn's must still read as
    it did; the parser callbacks it extends, the state it reads, and the 431 it writes
    like uvicorn's 400 must be there."""
    import httptools
    from uvicorn.protocols.http import httptools_impl
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from tidings.app.http_protocol import GuardedHttpProtocol

    cls = HttpToolsProtocol
    received = inspect.getsource(cls.data_received)
    for line in (
        "self._unset_keepalive_if_required()",
        "self.parser.feed_data(data)",
        "except httptools.HttpParserError:",
        'msg = "Invalid HTTP request received."',
        "self.send_400_response(msg)",
        "except httptools.HttpParserUpgrade:",
        "if self._should_upgrade():",
        "self.handle_websocket_upgrade()",
        "self._unsupported_upgrade_warning()",
    ):
        assert line in received, line
    # exactly these statements: nothing of uvicorn's is left out by the copy
    assert len([ln for ln in received.splitlines() if ln.strip()]) == 14, received
    for name in (
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_message_complete",
        "on_response_complete",
        "connection_made",
        "connection_lost",
        "shutdown",
    ):
        assert getattr(GuardedHttpProtocol, name) is not getattr(cls, name), name
        assert _params(getattr(cls, name)) == _params(getattr(GuardedHttpProtocol, name)), name
    # A pipelined request waits in `pipeline`; on_response_complete starts it (so the
    # guard's "idle" is an empty pipeline before it runs); the cycle calls it after the
    # response's last byte, on a connection kept alive (closed ones return first).
    complete = inspect.getsource(cls.on_response_complete)
    assert "if self.transport.is_closing():" in complete and "self.pipeline.pop()" in complete
    assert "self.on_response()" in inspect.getsource(httptools_impl.RequestResponseCycle.send)
    # The cycle's keep_alive and transport, replaced while a body streams in: the cycle
    # is made in on_headers_complete (not for an upgrade, which returns first), says
    # `connection: close` and closes after an answer when not kept alive, and uses
    # nothing of its transport but write, is_closing and close.
    headers_complete = inspect.getsource(cls.on_headers_complete)
    assert headers_complete.index("self._should_upgrade():\n            return") < (
        headers_complete.index("self.cycle = RequestResponseCycle(")
    )
    cycle_send = inspect.getsource(httptools_impl.RequestResponseCycle.send)
    assert "if not self.keep_alive and not has_connection_close:" in cycle_send
    assert 'content.append(b"connection: close\\r\\n")' in cycle_send
    assert "if not self.keep_alive:\n                    self.transport.close()" in cycle_send
    cycle_source = inspect.getsource(httptools_impl.RequestResponseCycle)
    used = set(re.findall(r"self\.transport\.(\w+)", cycle_source))
    assert used == {"write", "is_closing", "close"}, used
    assert "self.cycle.keep_alive = False" in inspect.getsource(cls.shutdown)
    assert "self.client = get_remote_addr(transport)" in inspect.getsource(cls.connection_made)
    assert "self.server_state.default_headers" in inspect.getsource(cls.send_400_response)
    assert 431 in httptools_impl.STATUS_LINE
    # uvicorn takes a protocol class for `http`, not only a name
    assert "self.http_protocol_class = self.http" in inspect.getsource(uvicorn.Config.load)

    # httptools: an exception raised in a callback stops the parser and comes back as the
    # context of HttpParserCallbackError
    class Stop(Exception):
        pass

    class Callbacks:
        def on_header(self, name: bytes, value: bytes) -> None:
            raise Stop

    parser = httptools.HttpRequestParser(Callbacks())
    with pytest.raises(httptools.HttpParserCallbackError) as raised:
        parser.feed_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(raised.value.__context__, Stop)


def test_uvicorn_trusted_hosts_answer_membership() -> None:
    """app/server.py gives uvicorn's `_TrustedHosts` (the proxy-headers middleware's
    own) to the connection guard and the gateway, as their set of trusted proxies."""
    from uvicorn.middleware.proxy_headers import _TrustedHosts

    trusted = _TrustedHosts("127.0.0.1, 10.0.0.0/8")
    assert "127.0.0.1" in trusted and "10.1.2.3" in trusted
    assert "127.0.0.2" not in trusted and "" not in trusted
    assert "anything" in _TrustedHosts("*")


def test_uvicorn_websocket_protocol_releases_once() -> None:
    """RawSocketProtocol.connection_lost releases the connection's place in the guard
    under `self.client`, which uvicorn sets when the upgraded connection is made."""
    source = inspect.getsource(WebSocketsSansIOProtocol.connection_made)
    assert "self.client = get_remote_addr(transport)" in source
    assert _params(WebSocketsSansIOProtocol.connection_lost) == ["self", "exc"]
