"""The SQL Store: SqlTx composes one query class per aggregate (users.py,
conversations.py, messages.py, events.py, security.py, webhooks.py), as Synapse's DataStore composes
its stores; SqlStore hands out its transactions. One SQLAlchemy Core implementation for
every engine: what differs between engines is in engines/, nowhere else."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.core.errors import Unavailable
from tidings.core.models import Session, UserId
from tidings.store.ports import AuditSigner, StreamSnapshot
from tidings.store.sql.conversations import ConversationQueries, read_contacts, read_snapshot
from tidings.store.sql.engines import BatchRunner, Engine, WriteLockTimeout, create_engine
from tidings.store.sql.engines.base import WRITE_LOCK_TIMEOUT_S
from tidings.store.sql.events import EventQueries
from tidings.store.sql.files import FileQueries
from tidings.store.sql.identity import IdentityQueries
from tidings.store.sql.integrations import IntegrationQueries
from tidings.store.sql.jobs import JobQueries
from tidings.store.sql.messages import MessageQueries
from tidings.store.sql.notifications import NotificationQueries
from tidings.store.sql.oidc import OidcQueries
from tidings.store.sql.scim import ScimQueries
from tidings.store.sql.security import SecurityQueries, read_session
from tidings.store.sql.threads import ThreadQueries
from tidings.store.sql.users import UserQueries
from tidings.store.sql.webhooks import WebhookQueries

FreshEnough = Callable[["SqlTx"], Awaitable[bool]]


class SqlTx(
    UserQueries,
    ConversationQueries,
    MessageQueries,
    ThreadQueries,
    EventQueries,
    SecurityQueries,
    JobQueries,
    IdentityQueries,
    OidcQueries,
    IntegrationQueries,
    ScimQueries,
    WebhookQueries,
    FileQueries,
    NotificationQueries,
):
    """Queries and writes on one connection, every aggregate's. Obtained from
    SqlStore.read(), .read_replica() or .write()."""


class SqlLookups:
    """A new connection's reads on the engine's `lookup()` runner (one statement each,
    written once in statements.py with the transactions' versions of them)."""

    __slots__ = ("_run",)

    def __init__(self, run: BatchRunner) -> None:
        self._run = run

    async def session_for_token(self, token_hash: str, now: datetime) -> Session | None:
        return await read_session(self._run, token_hash, now)

    async def stream_snapshot(self, user_id: str) -> StreamSnapshot:
        return await read_snapshot(self._run, user_id)

    async def contacts_of(self, user_id: str) -> list[UserId]:
        return await read_contacts(self._run, user_id)


LOCKED_MESSAGE = (
    "the database is busy: another process holds its write lock; nothing was written, retry later"
)


@contextlib.contextmanager
def _unavailable_when_unreachable(engine: Engine) -> Iterator[None]:
    """A lost or refused database connection, or a write lock not granted in time, is
    `Unavailable` (503): the client retries later (a send with the same
    client_msg_id), and nothing was acknowledged."""
    try:
        yield
    except Exception as exc:
        if engine.is_lock_timeout(exc):
            engine.errors["lock_timeout"] += 1
            raise Unavailable(LOCKED_MESSAGE) from exc
        if engine.is_outage(exc):
            engine.errors["unreachable"] += 1
            raise Unavailable(engine.outage_message(exc)) from exc
        raise


class SqlStore:
    """The Store: hands out read and write transactions."""

    def __init__(self, engine: Engine, audit_signer: AuditSigner | None = None) -> None:
        """`audit_signer` signs the audit log's head in every write transaction that
        appends to it (the container gives the keyring's: services/keyring.py)."""
        self.engine = engine
        self.audit_signer = audit_signer
        self._next_replica = -1
        self.replica_reads = 0
        self.primary_fallbacks = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        pool_size: int = 5,
        synchronous: str = "FULL",
        replica_urls: list[str] | None = None,
        write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
        audit_signer: AuditSigner | None = None,
    ) -> SqlStore:
        return cls(
            create_engine(
                url,
                pool_size=pool_size,
                sqlite_synchronous=synchronous,
                replica_urls=replica_urls,
                write_lock_timeout=write_lock_timeout,
            ),
            audit_signer,
        )

    @contextlib.asynccontextmanager
    async def read_replica(self, fresh_enough: FreshEnough) -> AsyncIterator[SqlTx]:
        """A read transaction on a replica when one is configured, reachable and
        `fresh_enough` (it has at least what the client already saw); else on the primary."""
        replicas = self.engine.replicas
        if replicas:
            self._next_replica = (self._next_replica + 1) % len(replicas)
            conn: AsyncConnection | None = None
            try:
                replica = replicas[self._next_replica]
                conn = await replica.read.connect()
                await conn.begin()
                tx = SqlTx(conn, replica)
                usable = await fresh_enough(tx)
            except (OSError, DBAPIError):
                usable = False  # an unreachable replica is skipped, never an error
            if usable and conn is not None:
                self.replica_reads += 1
                try:
                    yield tx
                finally:
                    await conn.close()
                return
            if conn is not None:
                await conn.close()
        self.primary_fallbacks += 1 if replicas else 0
        async with self.read() as tx:
            yield tx

    async def ping(self) -> None:
        """Raise when the primary cannot answer (for readiness). On a read connection:
        while another process holds the write lock the node still serves every read,
        and waits for no write lock to say so."""
        async with self.engine.read.connect() as conn:
            await conn.execute(select(1))

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTx]:
        with _unavailable_when_unreachable(self.engine):
            async with self.engine.read.connect() as conn, conn.begin():
                yield SqlTx(conn, self.engine)

    @contextlib.asynccontextmanager
    async def lookup(self) -> AsyncIterator[SqlLookups]:
        """The reads of a new connection, on the primary, outside any transaction."""
        with _unavailable_when_unreachable(self.engine):
            async with self.engine.lookup() as run:
                yield SqlLookups(run)

    @contextlib.asynccontextmanager
    async def write(
        self, waiting_since: float | None = None, *, urgent: bool = False
    ) -> AsyncIterator[SqlTx]:
        """One write transaction. After-commit callbacks run in commit order, before the
        next writer starts, so that events are published in position order. `urgent`:
        the send path's, before the background writes waiting (Engine.write_slot).
        `Unavailable`, with nothing written, when the write lock is not had within
        `write_lock_timeout` of `waiting_since` (the loop's clock; default now)."""
        engine = self.engine
        try:
            async with engine.write_slot(waiting_since, urgent=urgent) as deadline:
                with _unavailable_when_unreachable(engine):
                    async with engine.write_transaction(deadline) as conn:
                        await engine.lock_writes(conn)
                        tx = SqlTx(conn, engine, self.audit_signer)
                        yield tx
                for callback in tx._after_commit:
                    await callback()
        except WriteLockTimeout as exc:  # only the slot's: the transaction's became 503
            raise Unavailable(LOCKED_MESSAGE) from exc

    async def close(self) -> None:
        await self.engine.dispose()
