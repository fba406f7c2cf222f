"""The SQL engines: every difference between SQLite and PostgreSQL is in one of these
modules, behind `base.Engine` (cf. Synapse's storage/engines/). `create_engine` picks
one by URL, once, at start-up."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from tidings.store.sql.engines.base import (
    WRITE_LOCK_TIMEOUT_S,
    BatchRunner,
    Engine,
    UnusableDatabase,
    WriteLockTimeout,
)
from tidings.store.sql.engines.postgres import PostgresEngine
from tidings.store.sql.engines.sqlite import SqliteEngine

__all__ = [
    "BatchRunner",
    "Engine",
    "UnusableDatabase",
    "WriteLockTimeout",
    "create_engine",
    "engine_class",
    "for_connection",
]

_ENGINES: tuple[type[Engine], ...] = (SqliteEngine, PostgresEngine)


def engine_class(url: str) -> type[Engine]:
    for cls in _ENGINES:
        if cls.handles(url):
            return cls
    scheme = url.split(":", 1)[0] if ":" in url else url[:20]
    raise UnusableDatabase(
        f"database_url: unsupported scheme {scheme!r}: use postgresql://USER@HOST:PORT/NAME,"
        " or sqlite:///PATH, or leave it unset for SQLite in the data directory"
    )


def for_connection(connection: Connection) -> type[Engine]:
    """The engine of an open (synchronous) connection, e.g. Alembic's."""
    for cls in _ENGINES:
        if cls.name == connection.dialect.name:
            return cls
    raise ValueError(f"no SQL engine for the dialect {connection.dialect.name}")


def async_url(url: str) -> str:
    """A plain URL (sqlite:///path, postgresql://...) with its asyncio driver."""
    return engine_class(url).async_url(url)


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    sqlite_synchronous: str = "FULL",
    replica_urls: list[str] | None = None,
    write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
) -> Engine:
    engine = engine_class(url).create(
        url,
        pool_size=pool_size,
        synchronous=sqlite_synchronous,
        write_lock_timeout=write_lock_timeout,
    )
    for replica in replica_urls or []:
        engine.replicas.append(
            engine_class(replica).create_replica(
                replica,
                pool_size=pool_size,
                synchronous=sqlite_synchronous,
                write_lock_timeout=write_lock_timeout,
            )
        )
    return engine
