"""The ONLY module that knows SQLite from PostgreSQL (cf. Synapse storage engines)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
from sqlalchemy import event, make_url, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.store.sql.schema import counters


def async_url(url: str) -> str:
    """Map a plain URL (sqlite:///path, postgresql://...) to its asyncio driver."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


@dataclass
class Engines:
    """A write engine and a read engine. SQLite has one writer: writes are serialized
    in-process with a lock, so that commit order is publish order."""

    write: AsyncEngine
    read: AsyncEngine
    is_sqlite: bool
    replicas: list[AsyncEngine] = field(default_factory=list)
    _write_lock: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def write_slot(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            yield

    async def lock_writes(self, conn: AsyncConnection) -> None:
        """Serialize write transactions across every node: SQLite has one writer
        (BEGIN IMMEDIATE); on PostgreSQL each write transaction first locks the stream
        counter row, so positions and seqs commit in order and no two writers can
        deadlock over rows taken in different orders."""
        if not self.is_sqlite:
            await conn.execute(
                select(counters.c.value).where(counters.c.name == "events").with_for_update()
            )

    async def dispose(self) -> None:
        await self.write.dispose()
        if self.read is not self.write:
            await self.read.dispose()
        for replica in self.replicas:
            await replica.dispose()


def _sqlite_pragmas(immediate: bool, synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return on_connect, on_begin


def make_engines(
    url: str,
    *,
    pool_size: int = 5,
    sqlite_synchronous: str = "FULL",
    replica_urls: list[str] | None = None,
) -> Engines:
    engines = _make_engines(url, pool_size, sqlite_synchronous)
    for replica in replica_urls or []:
        engines.replicas.append(_make_engines(replica, pool_size, sqlite_synchronous).read)
    return engines


# The one thread that waits for SQLite's commits (one writer, so one thread is enough).
_COMMITS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")


class _RunNow:
    """Stands in for aiosqlite's queue to its worker thread: runs the call at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class _InlineSqlite(aiosqlite.Connection):
    """aiosqlite's interface, run on the event loop's own thread.

    A statement on the embedded database takes microseconds and a commit one fsync: less
    than a hop to aiosqlite's worker thread and back, which also makes the two threads
    fight over the GIL (the event loop waited milliseconds per statement under load).
    The cost: a statement blocks the loop while it runs, so long scans do not belong on
    the server's paths; and if another process (the admin CLI) holds the write lock, a
    write waits for it (busy_timeout) with the loop blocked: CLI writes are short."""

    def __init__(
        self, connector: Callable[[], sqlite3.Connection], commit_in: Executor | None = None
    ) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]  # some callers use the queue
        self._commit_in = commit_in

    async def commit(self) -> None:
        """A write transaction's commit waits for its fsync in `commit_in`'s thread
        (sqlite3 lets go of the GIL meanwhile): the loop goes on serving connections."""
        if self._commit_in is None:
            await super().commit()
            return
        await asyncio.get_running_loop().run_in_executor(self._commit_in, self._conn.commit)

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no worker thread to start

    async def _connect(self) -> aiosqlite.Connection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _inline_sqlite(
    path: str, commit_in: Executor | None = None
) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    async def connect() -> aiosqlite.Connection:
        connector = functools.partial(sqlite3.connect, path, check_same_thread=False)
        return await _InlineSqlite(connector, commit_in)

    return connect


def _make_engines(url: str, pool_size: int, sqlite_synchronous: str) -> Engines:
    full = async_url(url)
    if full.startswith("sqlite"):
        path = make_url(full).database or ":memory:"
        # Every use ends its transaction itself (commit, or rollback on error): the pool
        # need not roll back again on every return, one statement less per transaction.
        write = create_async_engine(
            full,
            pool_size=1,
            max_overflow=0,
            async_creator=_inline_sqlite(path, _COMMITS),
            pool_reset_on_return=None,
        )
        read = create_async_engine(
            full,
            pool_size=max(1, pool_size),
            max_overflow=0,
            async_creator=_inline_sqlite(path),
            pool_reset_on_return=None,
        )
        for engine, immediate in ((write, True), (read, False)):
            on_connect, on_begin = _sqlite_pragmas(immediate, sqlite_synchronous)
            event.listen(engine.sync_engine, "connect", on_connect)
            event.listen(engine.sync_engine, "begin", on_begin)
        return Engines(write=write, read=read, is_sqlite=True)
    engine = create_async_engine(
        full,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # a connection lost with the server is replaced, not reused
        pool_recycle=1800,
        connect_args={"timeout": 5, "command_timeout": 30},
    )
    return Engines(write=engine, read=engine, is_sqlite=False)


def migration_lock(connection: Connection) -> None:
    """Hold a cluster-wide lock for the rest of the migration transaction (PostgreSQL);
    SQLite needs none (one file, one writer)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7135024051)")
