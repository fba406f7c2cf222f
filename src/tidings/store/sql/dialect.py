"""The ONLY module that knows SQLite from PostgreSQL (cf. Synapse storage engines)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
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


def _make_engines(url: str, pool_size: int, sqlite_synchronous: str) -> Engines:
    full = async_url(url)
    if full.startswith("sqlite"):
        write = create_async_engine(full, pool_size=1, max_overflow=0)
        read = create_async_engine(full, pool_size=max(1, pool_size), max_overflow=0)
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
