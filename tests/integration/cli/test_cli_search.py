"""`tidings search reindex` and `tidings search status`, in-process (typer's CliRunner),
on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from tests.integration.cli.conftest import Cli, json, ok, run
from tidings.app.container import Container
from tidings.core.models import ConversationKind, OrgRole
from tidings.services.audit import AuditFilters


async def test_reindex_and_status(container: Container, cli: Cli) -> None:
    svc = container.services
    alice = await svc.users.create(None, "alice", "plum-orbit-123-cli", role=OrgRole.ADMIN)
    conv, _ = await svc.conversations.create(alice, ConversationKind.CHANNEL, [], "room")
    for i in range(7):
        await svc.messages.send(alice, conv.id, uuid.uuid4().hex, f"olive {i}")
    before = await json(cli, "search", "status")
    assert before["documents"] == 0 and before["last_indexed_at"] is None
    done = await ok(cli, "search", "reindex")
    assert "indexed 7 message(s)" in done.stdout
    after = await json(cli, "search", "status")
    assert after["documents"] == 7 and after["last_indexed_at"] is not None
    plain = await ok(cli, "search", "status")
    assert "documents: 7" in plain.stdout
    page = await svc.search.search(alice, "olive", limit=10)
    assert len(page.results) == 7
    audit = await svc.audit.page(alice, filters=AuditFilters(action="search_reindexed"))
    assert [(e.actor_id, e.details["indexed"]) for e in audit] == [(None, 7)]
    helped = await run(cli, "search", "--help")
    assert "reindex" in helped.stdout and "status" in helped.stdout
