"""PostgreSQL, the scale-out engine: one pool for reads and writes, replicas for reads,
every node writing to the same primary.

A write waits for a lock another session holds (the stream counter's row that every
write transaction locks first, or any other row or table) at most
`write_lock_timeout` seconds: PostgreSQL's `lock_timeout`, set once per connection
(no statement per transaction), then SQLSTATE 55P03 -> WriteLockTimeout's answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.store.sql.engines.base import (
    WRITE_LOCK_TIMEOUT_S,
    BatchRunner,
    DriverSqlRunner,
    Engine,
    numbered,
    timestamp_processor,
    timestamp_reader,
)
from tidings.store.sql.schema import counters

# The key of the advisory lock that nodes starting together migrate under.
_MIGRATION_LOCK = 7135024051
# SQLSTATE lock_not_available: `lock_timeout` passed while another session held a lock.
_LOCK_NOT_AVAILABLE = "55P03"


def _with_sqlstate(exc: BaseException) -> BaseException | None:
    """asyncpg's error (or the wrapper that copies its SQLSTATE) under SQLAlchemy's
    wrappers (None: none)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(getattr(seen, "sqlstate", None), str):
            return seen
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return None


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(_with_sqlstate(exc), "sqlstate", None)


class PostgresEngine(Engine):
    name = "postgresql"

    @classmethod
    def handles(cls, url: str) -> bool:
        return url.startswith(("postgresql:", "postgres:", "postgresql+"))

    @classmethod
    def async_url(cls, url: str) -> str:
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        return url

    @classmethod
    def explain(cls, exc: BaseException) -> str | None:
        error = _with_sqlstate(exc)
        if _sqlstate(exc) != "3D000":  # invalid_catalog_name
            return None
        return (
            f"PostgreSQL: {error}: create it first (createdb, or CREATE DATABASE)"
            " or fix database_url"
        )

    @classmethod
    def migration_lock(cls, connection: Connection) -> None:
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")

    @classmethod
    def create(
        cls,
        url: str,
        *,
        pool_size: int,
        synchronous: str,
        write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
    ) -> PostgresEngine:
        engine = cls._pool(url, pool_size, write_lock_timeout)
        return cls(engine, engine, write_lock_timeout=write_lock_timeout)

    @classmethod
    def _pool(cls, url: str, pool_size: int, write_lock_timeout: float) -> AsyncEngine:
        return create_async_engine(
            cls.async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,  # a connection lost with the server is replaced, not reused
            pool_recycle=1800,
            connect_args={
                "timeout": 5,
                "command_timeout": 30,
                "server_settings": {"lock_timeout": f"{_millis(write_lock_timeout)}ms"},
            },
            hide_parameters=True,  # bodies, hashes: never in an error text or a log
        )

    @contextlib.asynccontextmanager
    async def write_transaction(self, deadline: float) -> AsyncIterator[AsyncConnection]:
        async with self.write.connect() as conn, conn.begin():
            left = deadline - asyncio.get_running_loop().time()
            if left < 0.9 * self.write_lock_timeout:
                # Waited long for the slot (the writer ahead waited for a lock): what is
                # left of this write's bound, for this transaction only (one statement
                # more, only then); past it, a lock free now is still taken.
                await conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_millis(left)}ms'")
            yield conn

    async def lock_writes(self, conn: AsyncConnection) -> None:
        """Each write transaction first locks the stream counter row, so positions and
        seqs commit in order across nodes and no two writers can deadlock over rows
        taken in different orders."""
        await conn.execute(
            select(counters.c.value).where(counters.c.name == "events").with_for_update()
        )

    def is_outage(self, exc: BaseException) -> bool:
        return self.is_lock_timeout(exc) or super().is_outage(exc)

    def is_lock_timeout(self, exc: BaseException) -> bool:
        return super().is_lock_timeout(exc) or _sqlstate(exc) == _LOCK_NOT_AVAILABLE

    def send_batch(self, conn: AsyncConnection) -> BatchRunner:
        """asyncpg numbers its placeholders ($1, $2, …); it binds datetimes itself."""
        dialect = conn.dialect
        return DriverSqlRunner(
            conn, numbered, timestamp_processor(dialect), timestamp_reader(dialect)
        )


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))  # 0 would mean no timeout at all
