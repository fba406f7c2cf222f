"""What every aggregate's queries share: one connection in a transaction, its engine,
the callbacks to run after its commit, and the small key-value `meta` table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.ports import AuditSigner
from tidings.store.sql import schema as t
from tidings.store.sql.engines import BatchRunner, Engine

AfterCommit = Callable[[], Awaitable[None]]


def utc(value: datetime) -> datetime:
    """A timestamp read back (SQLite keeps no zone: they are all UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


class TxBase:
    """One transaction's connection. The aggregates' query classes (users.py,
    conversations.py, messages.py, events.py, security.py) extend it, and
    store.py:SqlTx composes them (cf. Synapse's databases/main/__init__.py)."""

    def __init__(
        self, conn: AsyncConnection, engine: Engine, audit_signer: AuditSigner | None = None
    ) -> None:
        self.conn = conn
        self.engine = engine
        self.audit_signer = audit_signer  # write transactions: signs the audit head
        self._after_commit: list[AfterCommit] = []
        self._runner: BatchRunner | None = None

    def _batch(self) -> BatchRunner:
        """The engine's runner of the send path's statements on this connection."""
        if self._runner is None:
            self._runner = self.engine.send_batch(self.conn)
        return self._runner

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` once the transaction has committed (publish after commit)."""
        self._after_commit.append(callback)

    async def get_meta(self, key: str) -> str | None:
        return (await self.conn.execute(select(t.meta.c.value).where(t.meta.c.key == key))).scalar()

    async def set_meta(self, key: str, value: str) -> None:
        done = await self.conn.execute(
            update(t.meta).where(t.meta.c.key == key).values(value=value)
        )
        if done.rowcount == 0:
            await self.conn.execute(insert(t.meta).values(key=key, value=value))
