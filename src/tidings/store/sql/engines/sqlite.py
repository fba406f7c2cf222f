"""SQLite, the embedded default: one file in WAL mode, one writer, statements on the
event loop's own thread.

What is special here, and why:
- one writer: writes are serialized in-process (`Engine.write_slot`), and the write
  transaction begins with BEGIN IMMEDIATE, so no other process can write in between;
  while another process holds that lock, the writer waits for it on the loop's clock,
  never in SQLite's busy handler on the loop's thread (`_begin_immediate`), and gives
  up at the write's deadline; reads go on meanwhile (WAL readers wait for no writer);
- the driver runs statements inline (`_InlineSqlite`) and the writer's connection stays
  open (`SqliteWriter`); a commit waits for its fsync in a thread of its own;
- the write-ahead log is checkpointed by a thread of its own (`Checkpointer`), never
  inside a send's commit;
- the send path's statements go to sqlite3 directly (`SqliteRunner`), and so do the
  reads of every new connection, on a connection kept for them (`lookup`).
The measurements behind each choice are in the docstrings below and docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.store.sql.engines.base import (
    WRITE_LOCK_TIMEOUT_S,
    BatchRunner,
    DriverSqlRunner,
    Engine,
    Row,
    UnusableDatabase,
    WriteLockTimeout,
    timestamp_processor,
    timestamp_reader,
)
from tidings.store.sql.engines.dumps import (
    FACT_QUERIES,
    KEY_ID_QUERY,
    DumpCheck,
    DumpFacts,
    DumpFailed,
    Progress,
)


def _check_writable(path: Path) -> None:
    """The database's folder and files must be writable (SQLite writes its journal
    beside the file): refused at start with one line, not a traceback on first write."""
    for each in (path.parent, path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if each.exists() and not os.access(each, os.W_OK):
            raise UnusableDatabase(
                f"{each} is not writable (read-only file system, immutable or permissions):"
                " the server writes its data directory; make it writable or choose another"
                " --data-dir"
            )


class SqliteEngine(Engine):
    name = "sqlite"
    search_index = "fts5"  # the search index adapter (search/fts5.py)
    render_as_batch = True
    database_size_sql = (
        "SELECT p.page_count * s.page_size FROM pragma_page_count() AS p, pragma_page_size() AS s"
    )

    def __init__(
        self,
        write: AsyncEngine,
        read: AsyncEngine,
        *,
        checkpointer: Checkpointer | None = None,
        writer: SqliteWriter | None = None,
        lookups: Callable[[], sqlite3.Connection] | None = None,
        write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
    ) -> None:
        super().__init__(write, read, write_lock_timeout=write_lock_timeout)
        self.checkpointer = checkpointer
        self.writer = writer
        self._open_lookups = lookups
        self._lookups: SqliteRunner | None = None

    @classmethod
    def handles(cls, url: str) -> bool:
        return url.startswith(("sqlite:", "sqlite+"))

    @classmethod
    def async_url(cls, url: str) -> str:
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        return url

    @classmethod
    def missing(cls, url: str) -> str | None:
        path = make_url(cls.async_url(url)).database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return None if Path(path).is_file() else f"no database at {path}"

    @classmethod
    def prepare(cls, url: str) -> None:
        """The database file's folder (SQLite creates the file, not its folder)."""
        path = make_url(cls.async_url(url)).database
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _check_writable(Path(path))

    @classmethod
    def create(
        cls,
        url: str,
        *,
        pool_size: int,
        synchronous: str,
        write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
    ) -> SqliteEngine:
        full = cls.async_url(url)
        path = make_url(full).database or ":memory:"
        in_file = path != ":memory:" and not path.startswith("file:")
        checkpointer = Checkpointer(path) if in_file else None
        # Every use ends its transaction itself (commit, or rollback on error): the pool
        # need not roll back again on every return, one statement less per transaction.
        # Two connections: the SqliteWriter's, kept checked out, and one for the rest
        # (the admin tools). Neither has a busy_timeout (see `_begin_immediate`).
        write = create_async_engine(
            full,
            pool_size=2,
            max_overflow=0,
            async_creator=_inline_sqlite(path, _COMMITS, checkpointer),
            pool_reset_on_return=None,
            hide_parameters=True,  # bodies, hashes: never in an error text or a log
        )
        read = cls._read_engine(full, path, pool_size)
        on_connect, on_begin = _sqlite_pragmas(
            True, synchronous, autocheckpoint=checkpointer is None, busy_timeout_ms=0
        )
        event.listen(write.sync_engine, "connect", on_connect)
        event.listen(write.sync_engine, "begin", on_begin)
        cls._listen_read(read, synchronous)
        lookups = _lookup_connection(path, synchronous) if in_file else None
        return cls(
            write,
            read,
            checkpointer=checkpointer,
            writer=SqliteWriter(write),
            lookups=lookups,
            write_lock_timeout=write_lock_timeout,
        )

    @classmethod
    def create_replica(
        cls,
        url: str,
        *,
        pool_size: int,
        synchronous: str,
        write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
    ) -> SqliteEngine:
        """A read-only copy's engine: reads only, no writer."""
        full = cls.async_url(url)
        read = cls._read_engine(full, make_url(full).database or ":memory:", pool_size)
        cls._listen_read(read, synchronous)
        return cls(read, read, write_lock_timeout=write_lock_timeout)

    @staticmethod
    def _read_engine(full: str, path: str, pool_size: int) -> AsyncEngine:
        return create_async_engine(
            full,
            pool_size=max(1, pool_size),
            max_overflow=0,
            async_creator=_inline_sqlite(path),
            pool_reset_on_return=None,
            hide_parameters=True,  # bodies, hashes: never in an error text or a log
        )

    @staticmethod
    def _listen_read(read: AsyncEngine, synchronous: str) -> None:
        on_connect, on_begin = _sqlite_pragmas(False, synchronous)
        event.listen(read.sync_engine, "connect", on_connect)
        event.listen(read.sync_engine, "begin", on_begin)

    @contextlib.asynccontextmanager
    async def write_transaction(self, deadline: float) -> AsyncIterator[AsyncConnection]:
        if self.writer is None:
            raise RuntimeError("a replica's engine does not write")
        async with self.writer.transaction(deadline) as conn:
            yield conn

    async def lock_writes(self, conn: AsyncConnection) -> None:
        """Nothing more: the transaction began with BEGIN IMMEDIATE, SQLite's one
        writer's lock, across every process using the file."""
        return None

    def send_batch(self, conn: AsyncConnection) -> BatchRunner:
        sync = conn.sync_connection  # begun: its driver connection is at hand
        timestamp = timestamp_processor(conn.dialect)
        if sync is not None:
            db = inline_sqlite_of(sync.connection.driver_connection)
            if db is not None:
                return SqliteRunner(db, timestamp, timestamp_reader(conn.dialect))
        # not our driver: via SQLAlchemy
        return DriverSqlRunner(conn, _as_written, timestamp, timestamp_reader(conn.dialect))

    @contextlib.asynccontextmanager
    async def lookup(self) -> AsyncIterator[BatchRunner]:
        """One sqlite3 connection kept for these reads, in autocommit (each statement its
        own snapshot), run on the loop's thread like every statement here: no pool, no
        transaction, no greenlet. A database in memory has no second connection to the
        same data: there, a pooled one."""
        runner = self._lookups
        if runner is None:
            if self._open_lookups is None:
                async with super().lookup() as pooled:
                    yield pooled
                return
            dialect = self.read.dialect
            runner = self._lookups = SqliteRunner(
                self._open_lookups(), timestamp_processor(dialect), timestamp_reader(dialect)
            )
        yield runner

    def is_outage(self, exc: BaseException) -> bool:
        # sqlite3's own errors come from the send path's direct statements (SqliteRunner).
        return isinstance(exc, sqlite3.OperationalError) or super().is_outage(exc)

    def outage_message(self, exc: BaseException) -> str:
        """The disk's failures by name: the operator reads them in the client's error."""
        error = exc if isinstance(exc, sqlite3.Error) else getattr(exc, "orig", None)
        sqlite_code = getattr(error, "sqlite_errorcode", None)
        reason = None if sqlite_code is None else _DISK_FAILURES.get(sqlite_code & 0xFF)
        if reason is None:
            return super().outage_message(exc)
        return f"the database {reason}: nothing was written; retry later"

    async def dispose(self) -> None:
        runner, self._lookups = self._lookups, None
        if runner is not None:
            runner.db.close()
        if self.writer is not None:
            await self.writer.close()
        if self.checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.checkpointer.stop)
        await super().dispose()

    # --- backups -------------------------------------------------------------------
    dump_name = "tidings.sqlite3"

    @classmethod
    def _path(cls, url: str) -> Path:
        path = make_url(cls.async_url(url)).database
        if not path or path == ":memory:" or path.startswith("file:"):
            raise DumpFailed(f"no database file to back up or restore at {url!r}")
        return Path(path)

    @classmethod
    async def dump(cls, url: str, dest: Path, progress: Progress) -> DumpFacts:
        """SQLite's online backup API (`sqlite3.Connection.backup`), from a connection of
        its own while the server writes (WAL: readers never wait for the writer). The
        copy runs in steps of `_BACKUP_PAGES` pages inside ONE read transaction held on
        the source: every step reads the same snapshot, so the copy is consistent and a
        write meanwhile never restarts it (the WAL grows until the copy is done). The
        facts are read in that same transaction."""
        source = cls._path(url)
        if not source.is_file():
            raise DumpFailed(f"no database at {source}")
        return await asyncio.to_thread(_sqlite_dump, source, dest, progress)

    @classmethod
    async def check_dump(cls, path: Path) -> DumpCheck:
        return await asyncio.to_thread(_sqlite_check, path)

    @classmethod
    async def contents(cls, url: str) -> str | None:
        path = cls._path(url)
        if not path.exists():
            return None
        return await asyncio.to_thread(_sqlite_contents, path)

    @classmethod
    async def load_dump(cls, url: str, path: Path, *, replace: bool, progress: Progress) -> None:
        """The copy becomes the database file: written beside it, then renamed over it
        (a crash leaves the old file or the new one, never half of one)."""
        target = cls._path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        _check_writable(target)
        await asyncio.to_thread(_sqlite_load, path, target, replace, progress)


_BACKUP_PAGES = 1024  # pages copied per step of the online backup (4 MiB of 4 KiB pages)


def _sqlite_facts(db: sqlite3.Connection) -> DumpFacts:
    values = {name: db.execute(sql).fetchone()[0] for name, sql in FACT_QUERIES.items()}
    return DumpFacts.of(values, [str(r[0]) for r in db.execute(KEY_ID_QUERY)])


def _sqlite_dump(source: Path, dest: Path, progress: Progress) -> DumpFacts:
    src = sqlite3.connect(source, isolation_level=None, timeout=30)
    try:
        src.execute("BEGIN")  # one read snapshot for the facts and every backup step
        try:
            facts = _sqlite_facts(src)
        except sqlite3.Error as exc:
            raise DumpFailed(f"{source} is not a Tidings database: {exc}") from exc
        page = int(src.execute("PRAGMA page_size").fetchone()[0])
        dst = sqlite3.connect(dest, isolation_level=None)
        try:
            src.backup(
                dst,
                pages=_BACKUP_PAGES,
                progress=lambda _status, left, total: progress((total - left) * page, total * page),
            )
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
        src.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise DumpFailed(f"the online backup of {source} failed: {exc}") from exc
    finally:
        src.close()
    return facts


def _sqlite_check(path: Path) -> DumpCheck:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise DumpFailed(f"the database does not open: {exc}") from exc
    try:
        found = [str(r[0]) for r in db.execute("PRAGMA integrity_check")]
        if found != ["ok"]:
            raise DumpFailed(f"integrity_check: {'; '.join(found[:3])}")
        facts = _sqlite_facts(db)
    except sqlite3.Error as exc:
        raise DumpFailed(f"the database does not open: {exc}") from exc
    finally:
        db.close()
    return DumpCheck("SQLite database, integrity_check ok", facts)


def _sqlite_contents(path: Path) -> str | None:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        try:
            tables = [
                str(r[0])
                for r in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"{path} is there but is not a database SQLite can read ({exc})"
    if not tables:
        return None
    return f"{path} holds a database ({len(tables)} tables)"


def _sqlite_load(path: Path, target: Path, replace: bool, progress: Progress) -> None:
    temp = target.with_name(f".{target.name}.restoring")
    total = path.stat().st_size
    with path.open("rb") as src, temp.open("wb") as out:
        done = 0
        while chunk := src.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            progress(done, total)
        out.flush()
        os.fsync(out.fileno())
    for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
        if stale.exists():
            if not replace:
                temp.unlink()
                raise DumpFailed(f"{stale} is there: the target is not empty")
            stale.unlink()
    os.replace(temp, target)


_DISK_FAILURES = {
    sqlite3.SQLITE_FULL: "disk is full",
    sqlite3.SQLITE_IOERR: "disk failed (I/O error)",
    sqlite3.SQLITE_READONLY: "files are not writable",
}


def _as_written(sql: str) -> str:
    return sql  # sqlite3 takes `?` placeholders


class SqliteRunner:
    """The send path's statements on sqlite3 directly (a BatchRunner).

    A batch of sends costs a fixed handful of statements (see store/sql/messages.py), but
    through SQLAlchemy each of them also costs compiling its parameters, one Python dict
    per row, a bind processor per value and a result proxy: measured on this path, about
    1.5 ms of the event loop per batch of 17 sends against 0.5 ms for SQLite's own work.
    Here the same statements, with the same values in the same formats, go to the driver
    at once. Used only where statements run on the loop's thread (`_InlineSqlite`), so
    nothing here blocks longer than SQLAlchemy's path would have; inside a transaction
    begun on the same connection (by the SqliteWriter, or SQLAlchemy's `on_begin`)."""

    __slots__ = ("db", "read_timestamp", "timestamp")

    def __init__(
        self,
        db: sqlite3.Connection,
        timestamp: Callable[[datetime], object],
        read_timestamp: Callable[[object], datetime],
    ) -> None:
        self.db = db
        self.timestamp = timestamp
        self.read_timestamp = read_timestamp

    async def fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        return self.db.execute(sql, params).fetchall()

    async def run(self, sql: str, params: Sequence[object]) -> int:
        return self.db.execute(sql, params).rowcount

    async def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            self.db.executemany(sql, rows)


# A WAL reader waits for no writer, another process's included; SQLite makes it wait
# only in rare moments (another connection recovering the log after a crash, or
# switching the journal mode), and then briefly.
READ_BUSY_TIMEOUT_MS = 10_000


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def _begin_immediate(db: sqlite3.Connection, deadline: float) -> None:
    """BEGIN IMMEDIATE (SQLite's one writer's lock, across every process using the
    file), waiting for it until `deadline` (the loop's clock).

    The writer's connection has no busy_timeout: SQLite's busy handler would sleep on
    the loop's thread while another process (an admin's sqlite3 shell, a backup) holds
    the lock, and the whole server with it (a 20 s lock made /healthz take 20 s).
    Here each attempt fails at once and the loop sleeps between attempts, serving
    everything else; the first attempt costs what it always did."""
    pause = 0.001
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise WriteLockTimeout("another process holds the SQLite database's write lock")
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)  # soon after a short lock; 20 tries a second after


def _sqlite_pragmas(
    immediate: bool,
    synchronous: str,
    autocheckpoint: bool = True,
    busy_timeout_ms: int = READ_BUSY_TIMEOUT_MS,
) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        # Read and write the database file, never map it: a mapped file that fails or
        # shrinks kills the process (SIGBUS) where a read() answers an error. (The WAL
        # index, -shm, is always mapped: see app/fatal.py.)
        cursor.execute("PRAGMA mmap_size=0")
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


def _lookup_connection(path: str, synchronous: str) -> Callable[[], sqlite3.Connection]:
    """Opens the connection of `SqliteEngine.lookup`, set up like the read pool's."""

    def connect() -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False)
        on_connect, _on_begin = _sqlite_pragmas(False, synchronous)
        on_connect(db, None)
        return db

    return connect


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
            db.execute("PRAGMA mmap_size=0")
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
    transaction. Callers serialize transactions (`Engine.write_slot`)."""

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
    async def transaction(self, deadline: float) -> AsyncIterator[AsyncConnection]:
        conn, driver, db = await self._open()
        await _begin_immediate(db, deadline)
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
    the server's paths; and a statement must never wait for a lock in SQLite's busy
    handler: the writer waits for another process's lock on the loop's clock instead
    (`_begin_immediate`), and WAL readers wait for no writer."""

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
