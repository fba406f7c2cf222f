"""The relevance set of issue 16 (tests/search/relevance.json, written with the text
pipeline) through the real index, on SQLite FTS5 and on PostgreSQL: every message sent
through the services and indexed by the search jobs, every query asked of the search
service. Targets (issue 16): recall of the must-find set >= 95%, no must-not result."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tidings.app.container import Container
from tidings.core.models import ConversationKind, OrgRole

DATA = Path(__file__).resolve().parents[2] / "search" / "relevance.json"


@pytest.fixture
def container_settings() -> dict[str, object]:
    return {"rate_search_per_user": 0, "rate_send_per_user": 0, "search_page_max": 1000}


async def test_the_relevance_set_through_the_index(container: Container) -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    svc = container.services
    alice = await svc.users.create(None, "alice", "plum-orbit-123-relevance", role=OrgRole.MEMBER)
    conv, _ = await svc.conversations.create(alice, ConversationKind.CHANNEL, [], "corpus")
    id_of: dict[int, str] = {}
    for doc in data["corpus"]:
        sent, _ = await svc.messages.send(alice, conv.id, uuid.uuid4().hex, str(doc["text"]))
        id_of[sent.seq] = str(doc["id"])
    await svc.jobs.drain()
    assert (await svc.search.status(None)).documents == len(data["corpus"])
    found = total = 0
    missed: list[str] = []
    wrong: list[str] = []
    for q in data["queries"]:
        page = await svc.search.search(alice, str(q["q"]), limit=1000)
        hits = {id_of[r.message.seq] for r in page.results}
        for mid in q["must"]:
            total += 1
            if mid in hits:
                found += 1
            else:
                missed.append(f"{q['q']!r} misses {mid}")
        wrong += [f"{q['q']!r} finds {mid}" for mid in q["must_not"] if mid in hits]
    recall = found / total
    print(f"\nrelevance through the index: recall {found}/{total} = {recall:.1%}")
    assert not wrong, wrong
    assert recall >= 0.95, missed
