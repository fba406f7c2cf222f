"""The ONLY module that knows SQLite from PostgreSQL (cf. Synapse storage engines)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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
    _write_lock: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def write_slot(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            yield

    async def dispose(self) -> None:
        await self.write.dispose()
        if self.read is not self.write:
            await self.read.dispose()


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


def make_engines(url: str, *, pool_size: int = 5, sqlite_synchronous: str = "FULL") -> Engines:
    full = async_url(url)
    if full.startswith("sqlite"):
        write = create_async_engine(full, pool_size=1, max_overflow=0)
        read = create_async_engine(full, pool_size=max(1, pool_size), max_overflow=0)
        for engine, immediate in ((write, True), (read, False)):
            on_connect, on_begin = _sqlite_pragmas(immediate, sqlite_synchronous)
            event.listen(engine.sync_engine, "connect", on_connect)
            event.listen(engine.sync_engine, "begin", on_begin)
        return Engines(write=write, read=read, is_sqlite=True)
    engine = create_async_engine(full, pool_size=pool_size, max_overflow=pool_size)
    return Engines(write=engine, read=engine, is_sqlite=False)


def sync_url(url: str) -> str:
    """A URL for a blocking engine (tooling only, never on the serving path)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url
