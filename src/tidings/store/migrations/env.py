"""Alembic environment: runs migrations through the async driver of the URL given."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tidings.store.sql import engines
from tidings.store.sql.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    engine = engines.for_connection(connection)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=engine.render_as_batch,
    )
    with context.begin_transaction():
        engine.migration_lock(connection)  # nodes starting together migrate one at a time
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(engines.async_url(config.attributes["url"]))
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


asyncio.run(_main())
