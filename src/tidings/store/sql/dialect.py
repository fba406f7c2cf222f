"""The ONLY module that knows SQLite from PostgreSQL (cf. Synapse storage engines)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
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
    checkpointer: Checkpointer | None = None
    sqlite_writer: SqliteWriter | None = None
    _write_lock: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def write_slot(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            yield

    @contextlib.asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (inside `write_slot`): committed when the block ends,
        rolled back when it raises."""
        if self.sqlite_writer is not None:
            async with self.sqlite_writer.transaction() as conn:
                yield conn
        else:
            async with self.write.connect() as conn, conn.begin():
                yield conn

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
        if self.sqlite_writer is not None:
            await self.sqlite_writer.close()
        if self.checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.checkpointer.stop)
        await self.write.dispose()
        if self.read is not self.write:
            await self.read.dispose()
        for replica in self.replicas:
            await replica.dispose()


def _sqlite_pragmas(immediate: bool, synchronous: str, autocheckpoint: bool = True) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's job
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def on_begin(conn: Connection) -> None:
        db = inline_sqlite_of(conn.connection.driver_connection)
        if db is not None:
            if not db.in_transaction:  # the SqliteWriter has begun it on the driver
                db.execute(begin)  # on the loop's thread anyway: no statement machinery
        else:
            conn.exec_driver_sql(begin)

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


class Checkpointer:
    """Copies the write-ahead log into the database file from a thread of its own.

    By default SQLite does this inside the commit that takes the log past 1,000 pages:
    that commit (and every send waiting for it) then also writes back and fsyncs the
    database file, about ten times a normal commit's time. Here the server's writer
    never checkpoints (`wal_autocheckpoint=0`); after commits this thread runs a PASSIVE
    checkpoint (it blocks no reader and no writer) at most every `interval` seconds.
    Once a checkpoint has copied everything, the next write starts the log over at its
    beginning, so the log stays as large as what a few intervals write."""

    def __init__(self, path: str, interval: float = 0.25) -> None:
        self.path = path
        self.interval = interval
        self.runs = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def committed(self) -> None:
        """A write committed: a checkpoint is due within `interval`."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="sqlite-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            while True:
                self._wake.wait()
                if self._stop.is_set():
                    return
                self._wake.clear()
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error:
                    pass  # busy or locked: the next commit asks again
                if self._stop.wait(self.interval):  # what commits meanwhile waits
                    return
        finally:
            db.close()

    def stop(self) -> None:
        """Stop the thread (the last connection to close checkpoints what is left)."""
        with self._lock:
            self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)


class SqliteWriter:
    """The embedded database's write transactions, on one connection kept open.

    A write transaction through SQLAlchemy costs the event loop about 120 µs beyond its
    statements (check a connection out of the pool, begin, commit through a greenlet,
    check it back in), and the send path commits one every few milliseconds. Here the
    connection stays checked out and the transaction is begun and committed on the
    driver (`_InlineSqlite.commit`: the fsync in the commit thread); SQLAlchemy takes
    part only when a statement goes through it: it then begins its own transaction on
    top of ours (`on_begin` sees the driver's) and commits or rolls back the one
    transaction. Callers serialize transactions (`Engines.write_slot`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.opened = 0  # connections opened: one, unless a failure discarded one
        self._conn: AsyncConnection | None = None
        self._driver: _InlineSqlite | None = None

    async def _open(self) -> tuple[AsyncConnection, _InlineSqlite, sqlite3.Connection]:
        conn, driver = self._conn, self._driver
        if conn is None or driver is None or conn.closed or conn.invalidated:
            await self.close()
            conn = await self.engine.connect()
            driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            if not isinstance(driver, _InlineSqlite):  # not ours to drive
                await conn.close()
                raise RuntimeError("SqliteWriter needs the inline SQLite driver")
            self._conn, self._driver = conn, driver
            self.opened += 1
        return conn, driver, driver._conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        conn, driver, db = await self._open()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            if conn.in_transaction():  # a statement went through SQLAlchemy: it commits
                await conn.commit()
            else:
                await driver.commit()
        except BaseException:
            await self._rollback(conn, db)
            raise

    async def _rollback(self, conn: AsyncConnection, db: sqlite3.Connection) -> None:
        """Undo what the failed transaction wrote; a connection that cannot is replaced.
        (A commit cut short by cancellation goes on in its thread: the driver's own lock
        makes this wait for it, and then finds nothing left to undo.)"""
        try:
            if conn.in_transaction():
                await conn.rollback()
            if db.in_transaction:
                db.rollback()
        except Exception:  # noqa: BLE001 - the next transaction opens a fresh connection
            with contextlib.suppress(Exception):
                await conn.invalidate()
            await self.close()

    async def close(self) -> None:
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


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
        self,
        connector: Callable[[], sqlite3.Connection],
        commit_in: Executor | None = None,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]  # some callers use the queue
        self._commit_in = commit_in
        self._checkpointer = checkpointer

    async def commit(self) -> None:
        """A write transaction's commit waits for its fsync in `commit_in`'s thread
        (sqlite3 lets go of the GIL meanwhile): the loop goes on serving connections."""
        if self._commit_in is None:
            await super().commit()
        else:
            await asyncio.get_running_loop().run_in_executor(self._commit_in, self._conn.commit)
        if self._checkpointer is not None:
            self._checkpointer.committed()

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


def inline_sqlite_of(driver_connection: object) -> sqlite3.Connection | None:
    """The sqlite3 connection under an `_InlineSqlite` (statements on it run on the
    loop's thread, like the wrapper's own); None for any other driver connection."""
    if isinstance(driver_connection, _InlineSqlite) and driver_connection._connection:
        return driver_connection._connection
    return None


def _inline_sqlite(
    path: str, commit_in: Executor | None = None, checkpointer: Checkpointer | None = None
) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    async def connect() -> aiosqlite.Connection:
        connector = functools.partial(sqlite3.connect, path, check_same_thread=False)
        return await _InlineSqlite(connector, commit_in, checkpointer)

    return connect


def _make_engines(url: str, pool_size: int, sqlite_synchronous: str) -> Engines:
    full = async_url(url)
    if full.startswith("sqlite"):
        path = make_url(full).database or ":memory:"
        in_file = path != ":memory:" and not path.startswith("file:")
        checkpointer = Checkpointer(path) if in_file else None
        # Every use ends its transaction itself (commit, or rollback on error): the pool
        # need not roll back again on every return, one statement less per transaction.
        # Two connections: the SqliteWriter's, kept checked out, and one for the rest
        # (the readiness ping, the admin tools).
        write = create_async_engine(
            full,
            pool_size=2,
            max_overflow=0,
            async_creator=_inline_sqlite(path, _COMMITS, checkpointer),
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
            on_connect, on_begin = _sqlite_pragmas(
                immediate, sqlite_synchronous, autocheckpoint=not immediate or checkpointer is None
            )
            event.listen(engine.sync_engine, "connect", on_connect)
            event.listen(engine.sync_engine, "begin", on_begin)
        return Engines(
            write=write,
            read=read,
            is_sqlite=True,
            checkpointer=checkpointer,
            sqlite_writer=SqliteWriter(write),
        )
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
