"""Read replicas: history and sync may read one, but never give a client less than it
already saw; a replica that is behind (or unreachable) sends the read to the primary."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tidings.app.container import Container
from tidings.app.settings import Settings
from tidings.core.errors import InvalidPosition
from tidings.core.models import ConversationKind, OrgRole
from tidings.store import migrations
from tidings.store.sql.store import SqlStore


async def test_replica_reads_never_go_backwards(tmp_path: Path) -> None:
    primary = Settings(data_dir=tmp_path / "primary")
    primary.data_dir.mkdir()
    await asyncio.to_thread(migrations.upgrade, primary.db_url)
    c = Container(primary)
    svc = c.services
    alice = await svc.users.create(None, "alice", "plum-orbit-123", role=OrgRole.MEMBER)
    bob = await svc.users.create(None, "bob", "plum-orbit-123")
    conv, _ = await svc.conversations.create(alice, ConversationKind.DIRECT, [bob.id])
    for i in range(3):
        await svc.messages.send(alice, conv.id, f"m{i}", f"message {i}")
    # The replica is a consistent copy taken now; the primary then moves on.
    replica_file = tmp_path / "replica.db"
    with (
        sqlite3.connect(primary.db_url.removeprefix("sqlite:///")) as src,
        sqlite3.connect(replica_file) as dst,
    ):
        src.backup(dst)
    for i in range(3, 5):
        await svc.messages.send(alice, conv.id, f"m{i}", f"message {i}")
    primary_head = await svc.sync.head()
    await c.close()

    settings = Settings(data_dir=tmp_path / "primary", replica_urls=[f"sqlite:///{replica_file}"])
    c = Container(settings)
    store = c.store
    assert isinstance(store, SqlStore)
    svc = c.services
    try:
        # A client at position 0 may be served by the replica: it never saw more.
        events, _ = await svc.sync.events_since(bob, 0, 100)
        assert store.replica_reads == 1
        replica_head = max(e.position for e in events)
        assert replica_head < primary_head
        # A client that saw the primary's head must not get less: the primary answers.
        events, more = await svc.sync.events_since(bob, primary_head, 100)
        assert (events, more) == ([], False)
        assert store.primary_fallbacks == 1
        # A resume that must reach a head beyond the replica goes to the primary too.
        events, _ = await svc.sync.events_since(bob, 0, 100, at_least=primary_head)
        assert max(e.position for e in events) == primary_head
        # History: a client that saw seq 4 gets seq 5 from the primary, not nothing.
        page, _ = await svc.messages.history(bob, conv.id, after_seq=4)
        assert [m.seq for m in page] == [5]
        page, _ = await svc.messages.history(bob, conv.id, after_seq=1)
        assert [m.seq for m in page] == [2, 3]  # the replica has those: it may answer
        assert store.replica_reads == 2
        with pytest.raises(InvalidPosition):
            await svc.sync.events_since(bob, primary_head + 10, 100)
    finally:
        await c.close()


async def test_an_unreachable_replica_is_skipped(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "primary",
        replica_urls=["postgresql://nobody@127.0.0.1:1/none"],
    )
    settings.data_dir.mkdir()
    await asyncio.to_thread(migrations.upgrade, settings.db_url)
    c = Container(settings)
    try:
        alice = await c.services.users.create(None, "alice", "plum-orbit-123")
        events, more = await c.services.sync.events_since(alice, 0, 10)
        assert (events, more) == ([], False)
        assert isinstance(c.store, SqlStore) and c.store.primary_fallbacks == 1
    finally:
        await c.close()
