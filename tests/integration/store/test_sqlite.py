"""The embedded database's own send path and checkpointing: the group commit's rows go
to sqlite3 directly and must read back exactly like SQLAlchemy's; the write-ahead log is
copied into the database file by the checkpoint thread, never inside a send's commit."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tidings.app.container import Container
from tidings.app.settings import Settings
from tidings.core.errors import Conflict
from tidings.core.models import ConversationKind, OrgRole, User
from tidings.services.auth import token_hash
from tidings.store import migrations
from tidings.store.sql import statements
from tidings.store.sql.engines.sqlite import SqliteEngine, SqliteRunner
from tidings.store.sql.store import SqlStore


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    await asyncio.to_thread(migrations.upgrade, settings.db_url)
    c = Container(settings)
    yield c
    await c.close()


# The send path's statements, by the names the tests give them.
_STATEMENTS = {
    "existing_client_ids": statements.CLIENT_IDS.partition("{")[0],
    "send_targets": statements.TARGETS.partition("{")[0],
    "append_messages": statements.INSERT_MESSAGE,
    "insert_events": statements.INSERT_EVENT,
    "session": statements.SESSION,
    "snapshot": statements.SNAPSHOT,
    "contacts": statements.CONTACTS,
}


@pytest.fixture
def hot_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the send path's statements that sqlite3 ran directly (SqliteRunner):
    proof the send path went to the driver."""
    calls: list[str] = []

    def named(sql: str) -> None:
        calls.extend(name for name, start in _STATEMENTS.items() if sql.startswith(start))

    for method in ("fetch", "run", "run_many"):
        original = getattr(SqliteRunner, method)

        async def spy(self: object, sql: str, params: object, _f: Any = original) -> object:
            named(sql)
            return await _f(self, sql, params)

        monkeypatch.setattr(SqliteRunner, method, spy)
    return calls


def _db_path(c: Container) -> Path:
    return Path(c.settings.db_url.removeprefix("sqlite:///"))


async def _people(c: Container) -> tuple[User, User]:
    svc = c.services
    alice = await svc.users.create(None, "alice", "plum-orbit-123", role=OrgRole.MEMBER)
    bob = await svc.users.create(None, "bob", "plum-orbit-123")
    return alice, bob


async def test_rows_of_the_direct_path_read_back_like_sqlalchemy_rows(
    container: Container, hot_calls: list[str]
) -> None:
    svc = container.services
    alice, bob = await _people(container)
    conv, _ = await svc.conversations.create(alice, ConversationKind.GROUP, [bob.id], name="g")
    first, _ = await svc.messages.send(alice, conv.id, "c1", "hello @bob")
    assert {"send_targets", "append_messages", "insert_events"} <= set(hot_calls)
    # Mentions, unread counts and read positions are what the SQLAlchemy path kept.
    (view,) = await svc.conversations.list_for(bob)
    assert (view.conversation.last_seq, view.member.read_seq) == (1, 0)
    assert view.unread_mentions == 1
    second, _ = await svc.messages.send(bob, conv.id, "c2", "a reply", reply_to_seq=first.seq)
    (view,) = await svc.conversations.list_for(bob)
    assert (view.conversation.last_seq, view.member.read_seq) == (2, 2)  # his own: read
    assert view.unread_mentions == 0
    (view,) = await svc.conversations.list_for(alice)
    assert (view.member.read_seq, view.unread) == (1, 1)

    # Read through SQLAlchemy: every field as acknowledged.
    page, _ = await svc.messages.history(bob, conv.id)
    assert page == [first, second]
    assert page[0].mentions == (bob.id,)
    assert page[1].reply_to_seq == first.seq
    # The events were stored with their payloads, in order, for /sync.
    events, _ = await svc.sync.events_since(bob, 0, 100)
    sent = [e.payload["message"] for e in events if e.payload["kind"] == "message"]
    assert [m["seq"] for m in sent] == [1, 2]
    assert sent[0]["mentions"] == [bob.id]

    # The raw timestamps are in SQLAlchemy's format (as the conversation's, written by it).
    with sqlite3.connect(_db_path(container)) as db:
        (by_sqlalchemy,) = db.execute(
            "SELECT created_at FROM conversations WHERE id = ?", (conv.id,)
        ).fetchone()
        rows = db.execute(
            "SELECT m.created_at, e.created_at, c.last_activity_at FROM messages m "
            "JOIN events e ON e.kind = 'message' JOIN conversations c ON c.id = m.conversation_id"
        ).fetchall()
    shape = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
    assert shape.match(by_sqlalchemy)
    assert rows and all(shape.match(value) for row in rows for value in row)


async def test_a_new_connections_reads_go_to_the_driver_and_see_every_commit(
    container: Container, hot_calls: list[str]
) -> None:
    """What a new connection reads (`SqlStore.lookup`: one sqlite3 connection kept open,
    no transaction) reads back like SQLAlchemy's rows and never an old snapshot."""
    svc, store = container.services, container.store
    assert isinstance(store, SqlStore)
    alice, bob = await _people(container)
    dep = await svc.departments.create(None, "Sales")
    await svc.departments.set_member(None, dep.id, alice.id, True)
    token, _ = await svc.auth.login("alice", "plum-orbit-123", "laptop")
    alice = await svc.users.get(alice, alice.id)  # with her department, read by SQLAlchemy
    now = container.deps.clock.now()
    async with store.lookup() as q:
        session = await q.session_for_token(token_hash(token), now)
        before = await q.stream_snapshot(bob.id)
        assert await q.contacts_of(bob.id) == []
    assert session is not None
    assert session.user == alice and session.user.department_ids == (dep.id,)
    assert (session.device, session.enrol_only) == ("laptop", False)
    assert session.last_seen_at is not None and session.last_seen_at.tzinfo is not None
    assert session.last_seen_at <= now < session.expires_at
    assert before.conversation_ids == []
    assert {"session", "snapshot", "contacts"} <= set(hot_calls)

    conv, _ = await svc.conversations.create(alice, ConversationKind.GROUP, [bob.id], name="g")
    await svc.auth.logout(session)
    async with store.lookup() as q:  # the same connection: every commit since is seen
        after = await q.stream_snapshot(bob.id)
        assert await q.contacts_of(bob.id) == [alice.id]
        assert await q.session_for_token(token_hash(token), now) is None
    assert after.head > before.head and after.conversation_ids == [conv.id]
    async with store.read() as tx:  # a transaction's reads: the same statements, rows
        assert await tx.stream_snapshot(bob.id) == after
        assert await tx.contacts_of(bob.id) == [alice.id]


async def test_retries_through_the_direct_path(
    container: Container, hot_calls: list[str]
) -> None:
    svc = container.services
    alice, bob = await _people(container)
    conv, _ = await svc.conversations.create(alice, ConversationKind.DIRECT, [bob.id])
    other, _ = await svc.conversations.create(alice, ConversationKind.GROUP, [bob.id], name="x")
    original, created = await svc.messages.send(alice, conv.id, "same", "first")
    assert created
    again, created = await svc.messages.send(alice, conv.id, "same", "first")
    assert (again, created) == (original, False)
    assert "existing_client_ids" in hot_calls
    # Concurrent duplicates of one batch: one message, both answered with it.
    results = await asyncio.gather(
        *(svc.messages.send(alice, conv.id, "burst", "one") for _ in range(5))
    )
    assert len({m.id for m, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with pytest.raises(Conflict):
        await svc.messages.send(alice, other.id, "same", "first")
    page, _ = await svc.messages.history(alice, conv.id)
    assert [m.client_msg_id for m in page] == ["same", "burst"]


async def test_the_log_is_checkpointed_by_its_own_thread(container: Container) -> None:
    store = container.store
    assert isinstance(store, SqlStore)
    assert isinstance(store.engine, SqliteEngine)
    checkpointer = store.engine.checkpointer
    assert checkpointer is not None
    svc = container.services
    alice, bob = await _people(container)
    conv, _ = await svc.conversations.create(alice, ConversationKind.DIRECT, [bob.id])
    async with store.write() as tx:
        (autocheckpoint,) = (await tx.conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).one()
    assert autocheckpoint == 0  # the server's writer never checkpoints inside a commit
    for i in range(40):
        await svc.messages.send(alice, conv.id, f"m{i}", f"message {i}")
    # Within an interval the thread has copied the log into the database file: a copy of
    # that file alone (no -wal beside it) already holds every message.
    copy = _db_path(container).parent / "copy.db"
    for _ in range(100):
        await asyncio.sleep(checkpointer.interval)
        shutil.copyfile(_db_path(container), copy)
        with sqlite3.connect(copy) as db:
            (count,) = db.execute("SELECT count(*) FROM messages").fetchone()
        if count == 40:
            break
    assert count == 40
    assert checkpointer.runs >= 1
    await container.close()
    assert checkpointer._thread is not None and not checkpointer._thread.is_alive()


async def test_a_failed_batch_is_retried_send_by_send_even_for_a_sender_gone(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault in the batch's write: every send is retried alone, including the one
    whose sender stopped waiting (cancelled): an accepted send is never dropped."""
    svc = container.services
    alice, bob = await _people(container)
    conv, _ = await svc.conversations.create(alice, ConversationKind.DIRECT, [bob.id])
    original = SqliteRunner.run_many
    failed: list[int] = []

    async def flaky(self: SqliteRunner, sql: str, rows: Any) -> None:
        if sql == statements.INSERT_MESSAGE and len(rows) > 1 and not failed:
            failed.append(len(rows))
            raise sqlite3.OperationalError("disk I/O error")
        await original(self, sql, rows)

    monkeypatch.setattr(SqliteRunner, "run_many", flaky)
    sends = [
        asyncio.create_task(svc.messages.send(alice, conv.id, f"k{i}", f"m{i}")) for i in range(5)
    ]
    await asyncio.sleep(0)  # all five are queued; the writer has not run yet
    sends[0].cancel()
    results = await asyncio.gather(*sends, return_exceptions=True)
    assert failed == [5]
    assert isinstance(results[0], asyncio.CancelledError)
    assert all(created for _, created in results[1:])  # type: ignore[misc]
    page, _ = await svc.messages.history(alice, conv.id)
    assert sorted(m.client_msg_id for m in page) == [f"k{i}" for i in range(5)]
    assert [m.seq for m in page] == [1, 2, 3, 4, 5]
    # The one given up on was committed: its retry gets the stored original.
    again, created = await svc.messages.send(alice, conv.id, "k0", "m0")
    assert not created and again.body == "m0"


async def test_writes_keep_one_connection_and_a_failed_one_leaves_nothing(
    container: Container,
) -> None:
    """The writer's connection stays open across transactions, begun and committed on the
    driver; a transaction that raises is undone whether its statements went to the
    driver, through SQLAlchemy, or both, and the next one commits on the same
    connection. The readiness check is not held up by the writer's connection."""
    store = container.store
    assert isinstance(store, SqlStore)
    assert isinstance(store.engine, SqliteEngine)
    writer = store.engine.writer
    assert writer is not None
    alice, bob = await _people(container)
    conv, _ = await container.services.conversations.create(
        alice, ConversationKind.DIRECT, [bob.id]
    )
    for i in range(5):
        await container.services.messages.send(alice, conv.id, f"c{i}", f"body {i}")
    opened = writer.opened

    def driver_insert(tx: Any, key: str) -> None:
        runner = tx._batch()
        assert isinstance(runner, SqliteRunner)
        runner.db.execute("INSERT INTO meta (key, value) VALUES (?, 'written')", (key,))

    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            driver_insert(tx, "driver-only")
            raise RuntimeError("fails after a direct statement")
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            driver_insert(tx, "driver-first")
            await tx.set_meta("sqlalchemy-second", "written")  # SQLAlchemy joins in
            raise RuntimeError("fails after both kinds")
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            await tx.set_meta("sqlalchemy-only", "written")
            raise RuntimeError("fails after a SQLAlchemy statement")
    async with store.write() as tx:
        driver_insert(tx, "kept-driver")
        await tx.set_meta("kept-sqlalchemy", "written")
    async with store.write() as tx:
        driver_insert(tx, "kept-alone")
    await asyncio.wait_for(store.ping(), 5)

    async with store.read() as tx:
        found = {
            key: await tx.get_meta(key)
            for key in (
                "driver-only",
                "driver-first",
                "sqlalchemy-second",
                "sqlalchemy-only",
                "kept-driver",
                "kept-sqlalchemy",
                "kept-alone",
            )
        }
    assert found == {
        "driver-only": None,
        "driver-first": None,
        "sqlalchemy-second": None,
        "sqlalchemy-only": None,
        "kept-driver": "written",
        "kept-sqlalchemy": "written",
        "kept-alone": "written",
    }
    # Committed on disk: another process's connection reads it.
    with sqlite3.connect(_db_path(container)) as db:
        rows = db.execute("SELECT count(*) FROM messages WHERE conversation_id = ?", (conv.id,))
        assert rows.fetchone() == (5,)
    assert writer.opened == opened == 1
    page, _ = await container.services.messages.history(alice, conv.id)
    assert [m.client_msg_id for m in page] == [f"c{i}" for i in range(5)]
