"""PostgreSQL, the scale-out engine: one pool for reads and writes, replicas for reads,
every node writing to the same primary."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.store.sql.engines.base import (
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
        seen: BaseException | None = exc
        while seen is not None:  # asyncpg's error, under SQLAlchemy's wrappers
            if getattr(seen, "sqlstate", None) == "3D000":  # invalid_catalog_name
                return (
                    f"PostgreSQL: {seen}: create it first (createdb, or CREATE DATABASE)"
                    " or fix database_url"
                )
            seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
        return None

    @classmethod
    def migration_lock(cls, connection: Connection) -> None:
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")

    @classmethod
    def create(cls, url: str, *, pool_size: int, synchronous: str) -> PostgresEngine:
        engine = cls._pool(url, pool_size)
        return cls(engine, engine)

    @classmethod
    def create_replica(cls, url: str, *, pool_size: int, synchronous: str) -> PostgresEngine:
        engine = cls._pool(url, pool_size)
        return cls(engine, engine)

    @classmethod
    def _pool(cls, url: str, pool_size: int) -> AsyncEngine:
        return create_async_engine(
            cls.async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,  # a connection lost with the server is replaced, not reused
            pool_recycle=1800,
            connect_args={"timeout": 5, "command_timeout": 30},
            hide_parameters=True,  # bodies, hashes: never in an error text or a log
        )

    @contextlib.asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.write.connect() as conn, conn.begin():
            yield conn

    async def lock_writes(self, conn: AsyncConnection) -> None:
        """Each write transaction first locks the stream counter row, so positions and
        seqs commit in order across nodes and no two writers can deadlock over rows
        taken in different orders."""
        await conn.execute(
            select(counters.c.value).where(counters.c.name == "events").with_for_update()
        )

    def send_batch(self, conn: AsyncConnection) -> BatchRunner:
        """asyncpg numbers its placeholders ($1, $2, …); it binds datetimes itself."""
        dialect = conn.dialect
        return DriverSqlRunner(
            conn, numbered, timestamp_processor(dialect), timestamp_reader(dialect)
        )
