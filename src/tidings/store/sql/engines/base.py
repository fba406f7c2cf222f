"""What an SQL engine must provide, and what the engines share (cf. Synapse's
storage/engines/_base.py). Every difference between SQLite and PostgreSQL lives in
sqlite.py or postgres.py behind this interface; the store modules never ask which
engine they run on.

The interface, for the store:
- `write_slot()`: this process's writers one at a time (commit order is publish order),
  the send path's first (`urgent`); it gives the deadline by which the write must have
  its lock (`write_lock_timeout`);
- `write_transaction(deadline)`: a write transaction's connection, committed when the
  block ends, rolled back when it raises; `WriteLockTimeout` when another process or
  session holds the database's write lock past the deadline (nothing written);
- `lock_writes(conn)`: serialize write transactions across every node;
- `send_batch(conn)`: a `BatchRunner`, the send path's statements straight to the driver;
- `lookup()`: a `BatchRunner` outside any transaction, for the reads of every new
  connection (one statement each, each its own snapshot);
- `is_outage(exc)`: whether an error means the database cannot be reached (503, retry);
  `is_lock_timeout(exc)`: whether it means the write lock was not granted in time.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.store.sql import schema as t
from tidings.store.sql.engines.dumps import DumpCheck, DumpFacts, Progress

Row = tuple[Any, ...]


class BatchRunner(Protocol):
    """Runs the send path's statements on one connection's driver, with no statement
    compilation or result proxy in between (see sqlite.py for what that saves).

    Statements are written once, with `?` placeholders (the store's own modules hold
    them); each engine's runner adapts the placeholders to its driver. Values are plain:
    str, int, None, and timestamps passed through `timestamp` first."""

    def timestamp(self, value: datetime) -> object:
        """A timestamp as this driver stores it (exactly as SQLAlchemy would)."""
        ...

    def read_timestamp(self, value: object) -> datetime:
        """A timestamp column's value as read by `fetch` (exactly as SQLAlchemy reads it;
        without a zone where the engine keeps none)."""
        ...

    async def fetch(self, sql: str, params: Sequence[object]) -> list[Row]: ...

    async def run(self, sql: str, params: Sequence[object]) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


def marks(count: int) -> str:
    """`count` placeholders for an IN list or a VALUES row."""
    return ", ".join("?" * count)


_QMARK = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`?` placeholders as `$1, $2, …` (the statements hold no `?` in literals)."""
    counter = iter(range(1, 1 << 30))
    return _QMARK.sub(lambda _m: f"${next(counter)}", sql)


class DriverSqlRunner:
    """A BatchRunner through SQLAlchemy's `exec_driver_sql`: the statement goes to the
    DBAPI as written (placeholders adapted by `adapt`), values bound by the driver."""

    __slots__ = ("_adapt", "_conn", "_read_timestamp", "_timestamp")

    def __init__(
        self,
        conn: AsyncConnection,
        adapt: Callable[[str], str],
        timestamp: Callable[[datetime], object],
        read_timestamp: Callable[[object], datetime],
    ) -> None:
        self._conn = conn
        self._adapt = adapt
        self._timestamp = timestamp
        self._read_timestamp = read_timestamp

    def timestamp(self, value: datetime) -> object:
        return self._timestamp(value)

    def read_timestamp(self, value: object) -> datetime:
        return self._read_timestamp(value)

    async def fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        result = await self._conn.exec_driver_sql(self._adapt(sql), tuple(params))
        return [tuple(row) for row in result]

    async def run(self, sql: str, params: Sequence[object]) -> int:
        result = await self._conn.exec_driver_sql(self._adapt(sql), tuple(params))
        return int(result.rowcount)

    async def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            await self._conn.exec_driver_sql(self._adapt(sql), [tuple(r) for r in rows])


# How long a write waits for the database's write lock by default (the setting
# write_lock_timeout_seconds): in this process's queue of writers and in the database.
WRITE_LOCK_TIMEOUT_S = 5.0


class WriteLockTimeout(TimeoutError):
    """The write lock was not granted by the deadline: another process (SQLite) or
    session (PostgreSQL) holds it. Nothing of the write was done; retry later."""


class UnusableDatabase(ValueError):
    """The database cannot be used as configured; the message is one line that says what
    is wrong and what to do."""


class WriterQueue:
    """The in-process writers' turn: one at a time, first come first served, except
    that an urgent writer (the send path's group commit) goes before every ordinary
    one waiting. With SQLite's single writer, a send otherwise queued behind every
    upload and job transaction waiting (each with its fsync): `tidings bench files`
    measured a send p99 of 74-92 ms during 1,000 image uploads against 1.9-3.4 ms idle
    (docs/benchmarks.md). Ordinary writers are not starved: the send path asks again
    only after it has settled its batch, and a release while no urgent writer waits
    hands the turn to the oldest ordinary one.

    The turn is handed over on release (the woken waiter owns it at once), so no
    newcomer can barge in between; a waiter cancelled after it was handed the turn
    passes it on."""

    __slots__ = ("_held", "_ordinary", "_urgent")

    def __init__(self) -> None:
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ordinary: collections.deque[asyncio.Future[None]] = collections.deque()

    def locked(self) -> bool:
        return self._held

    def waiting(self) -> int:
        return len(self._urgent) + len(self._ordinary)

    async def acquire(self, urgent: bool = False) -> None:
        if not self._held and not self._urgent and not self._ordinary:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._ordinary
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the turn, then cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._ordinary):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the turn passes; `_held` stays True
                    return
        self._held = False


class Engine(abc.ABC):
    """A database: its write and read SQLAlchemy engines (the same one where a pool
    serves both), read replicas, and the engine's special cases."""

    name: ClassVar[str]
    search_index: ClassVar[str]  # which search/ adapter indexes messages on this engine
    # Alembic: recreate tables to alter them (SQLite cannot ALTER most things).
    render_as_batch: ClassVar[bool] = False
    # one row, one column: the database's size in bytes (usage statistics)
    database_size_sql: ClassVar[str]

    def __init__(
        self,
        write: AsyncEngine,
        read: AsyncEngine,
        *,
        write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
    ) -> None:
        self.write = write
        self.read = read
        self.replicas: list[Engine] = []
        self.write_lock_timeout = write_lock_timeout
        self._write_lock = WriterQueue()
        # transactions that failed for the database (for /metrics): unreachable, or its
        # write lock not granted in time
        self.errors = {"unreachable": 0, "lock_timeout": 0}

    # --- URLs and migrations (class-level: no engine is built for them) -----------
    @classmethod
    def missing(cls, url: str) -> str | None:
        """Why there is no database at `url` yet (None: there is one, or it cannot be told
        without connecting)."""
        return None

    @classmethod
    def explain(cls, exc: BaseException) -> str | None:
        """One line for the operator when `exc`, raised connecting to or migrating the
        database, is a known misconfiguration (None: it is not)."""
        return None

    @classmethod
    @abc.abstractmethod
    def handles(cls, url: str) -> bool:
        """Whether `url` (plain or with its asyncio driver) names this engine."""

    @classmethod
    @abc.abstractmethod
    def async_url(cls, url: str) -> str:
        """The URL with this engine's asyncio driver."""

    @classmethod
    @abc.abstractmethod
    def create(
        cls,
        url: str,
        *,
        pool_size: int,
        synchronous: str,
        write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
    ) -> Engine:
        """The primary's engine (`synchronous`: SQLite's fsync setting, FULL or NORMAL;
        `write_lock_timeout`: seconds a write waits for the write lock)."""

    @classmethod
    def create_replica(
        cls,
        url: str,
        *,
        pool_size: int,
        synchronous: str,
        write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
    ) -> Engine:
        """A read replica's engine: only its `read` is used (by default, built like the
        primary's)."""
        return cls.create(
            url, pool_size=pool_size, synchronous=synchronous, write_lock_timeout=write_lock_timeout
        )

    @classmethod
    def prepare(cls, url: str) -> None:
        """Whatever must exist before the first connection (nothing, by default)."""
        return None

    @classmethod
    def migration_lock(cls, connection: Connection) -> None:
        """Hold a cluster-wide lock for the rest of the migration transaction."""
        return None

    # --- backups (engines/dumps.py; app/backup.py) ---------------------------------
    # The name of the database's file in a backup archive (database/<dump_name>).
    dump_name: ClassVar[str] = "database"

    @classmethod
    async def dump(cls, url: str, dest: Path, progress: Progress) -> DumpFacts:
        """A consistent copy of the database at `url` into the file `dest`, made while
        the server writes; the facts are read in the copy's own snapshot."""
        raise NotImplementedError(f"{cls.name}: no backups")

    @classmethod
    async def check_dump(cls, path: Path) -> DumpCheck:
        """Whether the dump at `path` opens (DumpFailed: why not), and what it holds."""
        raise NotImplementedError(f"{cls.name}: no backups")

    @classmethod
    async def contents(cls, url: str) -> str | None:
        """What the database at `url` holds, in one line (None: nothing, or no
        database yet): a restore refuses a database that holds anything."""
        raise NotImplementedError(f"{cls.name}: no backups")

    @classmethod
    async def load_dump(cls, url: str, path: Path, *, replace: bool, progress: Progress) -> None:
        """Load the dump at `path` into the database at `url` (empty; `replace`: what
        it holds is dropped first), all or nothing."""
        raise NotImplementedError(f"{cls.name}: no backups")

    # --- writes -----------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def write_slot(
        self, waiting_since: float | None = None, *, urgent: bool = False
    ) -> AsyncIterator[float]:
        """This process's write transactions one at a time, with what runs after each
        commit: commit order is publish order. An `urgent` write (the send path's
        batch) goes before every background write waiting (uploads, jobs): it waits at
        most for the one transaction in progress (`WriterQueue`). Gives the deadline
        (the loop's clock) by which the write must have the database's write lock:
        `write_lock_timeout` after `waiting_since` (when the write was asked for;
        default now), the wait for this slot included. Raises WriteLockTimeout if the
        slot is not free by then (the writer ahead waits for a lock another process
        holds)."""
        loop = asyncio.get_running_loop()
        deadline = (loop.time() if waiting_since is None else waiting_since) + (
            self.write_lock_timeout
        )
        lock = self._write_lock
        try:
            # Free, the lock is taken without waiting and the timer never fires.
            async with asyncio.timeout_at(deadline):
                await lock.acquire(urgent)
        except TimeoutError:
            raise WriteLockTimeout("waited for the writer ahead") from None
        try:
            yield deadline
        finally:
            lock.release()

    @abc.abstractmethod
    def write_transaction(
        self, deadline: float
    ) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction (inside `write_slot`): committed when the block ends,
        rolled back when it raises. Raises WriteLockTimeout if the database's write lock
        is not granted by `deadline` (the loop's clock: what `write_slot` gave)."""

    @abc.abstractmethod
    async def lock_writes(self, conn: AsyncConnection) -> None:
        """Serialize write transactions across every node, first thing in each."""

    @abc.abstractmethod
    def send_batch(self, conn: AsyncConnection) -> BatchRunner:
        """The send path's statement runner on `conn` (a transaction begun on it)."""

    @contextlib.asynccontextmanager
    async def lookup(self) -> AsyncIterator[BatchRunner]:
        """A runner for reads outside any transaction: each statement is its own snapshot
        (so a read of several tables that must agree is one statement). What every new
        connection reads (its token, the stream head and its conversations, presence
        contacts) goes through here: through a SQLAlchemy read transaction each of those
        single SELECTs cost about 0.2 ms of the event loop, nearly all of it SQLAlchemy's.
        By default, a pooled connection's driver (the engines may do better)."""
        async with self.read.connect() as conn:
            yield self.send_batch(conn)

    # --- errors -----------------------------------------------------------------
    def is_outage(self, exc: BaseException) -> bool:
        """Whether `exc` means the database cannot be reached (lost or refused
        connection, timeout): the request may be retried later, nothing was written."""
        if isinstance(exc, (OperationalError, InterfaceError, OSError, TimeoutError)):
            return True
        return isinstance(exc, DBAPIError) and exc.connection_invalidated

    def outage_message(self, exc: BaseException) -> str:
        """What the client is told of an outage (`is_outage(exc)`)."""
        return "the database is unreachable; retry later"

    def is_lock_timeout(self, exc: BaseException) -> bool:
        """Whether `exc` means the write lock (or a row's) was not granted in time:
        another writer holds it; nothing was written."""
        return isinstance(exc, WriteLockTimeout)

    async def dispose(self) -> None:
        await self.write.dispose()
        if self.read is not self.write:
            await self.read.dispose()
        for replica in self.replicas:
            await replica.dispose()


@functools.lru_cache(maxsize=16)  # one per engine's dialect
def timestamp_processor(dialect: Any) -> Callable[[datetime], object]:
    """SQLAlchemy's own conversion of the schema's timestamps for `dialect`, so that
    rows written by a BatchRunner read back exactly like rows written through it."""
    column_type = t.messages.c.created_at.type
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return _same
    return process


@functools.lru_cache(maxsize=16)  # one per engine's dialect
def timestamp_reader(dialect: Any) -> Callable[[Any], datetime]:
    """SQLAlchemy's own conversion of the schema's timestamps as read back for `dialect`
    (SQLite keeps them as text), for the rows a BatchRunner fetches."""
    column_type = t.messages.c.created_at.type
    process = column_type.dialect_impl(dialect).result_processor(dialect, None)
    if process is None:
        return _same
    return process  # type: ignore[return-value]


def _same(value: Any) -> Any:
    return value
