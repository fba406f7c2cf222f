"""Search (services/search.py) through the real index, on SQLite FTS5 and PostgreSQL:
every visibility rule (non-members, members who left, recalls, edits), each filter, both
orders, cursors, counts and highlights; indexing as jobs from the event log, reindex and
status."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.fakes import FakeClock
from tidings.app.container import Container
from tidings.core.errors import Forbidden, InvalidInput, NotFound, RateLimited
from tidings.core.models import Conversation, ConversationKind, Message, OrgRole, User
from tidings.core.search import SearchPage
from tidings.services.audit import AuditFilters
from tidings.services.hub import Services

PASSWORD = "plum-orbit-123-search"


@pytest.fixture
def container_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container_settings() -> dict[str, object]:
    return {"search_page_default": 5, "rate_search_per_user": 1000}


class W:
    def __init__(self, container: Container) -> None:
        self.c = container
        self.svc: Services = container.services
        self.clock: FakeClock = container.deps.clock  # type: ignore[assignment]

    async def user(self, name: str, role: OrgRole = OrgRole.MEMBER) -> User:
        return await self.svc.users.create(None, name, PASSWORD, role=role)

    async def channel(self, owner: User, name: str, *members: User) -> Conversation:
        conv, _ = await self.svc.conversations.create(
            owner, ConversationKind.CHANNEL, [m.id for m in members], name
        )
        return conv

    async def send(self, user: User, conv: Conversation, body: str, files: list[str] | None = None
                   ) -> Message:
        self.clock.advance(1)
        message, _ = await self.svc.messages.send(
            user, conv.id, uuid.uuid4().hex, body, None, files or []
        )
        return message

    async def index(self) -> None:
        await self.svc.jobs.drain()

    async def search(self, user: User, q: str, **kw: object) -> SearchPage:
        return await self.svc.search.search(user, q, **kw)  # type: ignore[arg-type]

    async def bodies(self, user: User, q: str, **kw: object) -> list[str]:
        return [r.message.body for r in (await self.search(user, q, **kw)).results]


@pytest.fixture
async def w(container: Container) -> AsyncIterator[W]:
    yield W(container)


async def test_a_member_finds_chinese_english_and_identifiers(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    general = await w.channel(alice, "general", bob)
    await w.send(alice, general, "分布式数据库迁移方案")
    await w.send(bob, general, "Redis缓存 hit 10.0.3.7 for INC-4521")
    await w.send(bob, general, "nothing to see")
    await w.index()
    assert await w.bodies(bob, "数据库") == ["分布式数据库迁移方案"]
    assert await w.bodies(bob, "redis") == ["Redis缓存 hit 10.0.3.7 for INC-4521"]
    assert await w.bodies(alice, "inc-4521") == ["Redis缓存 hit 10.0.3.7 for INC-4521"]
    assert await w.bodies(alice, "数据库 nothing") == []  # every word must match


async def test_nobody_finds_what_they_may_not_read(w: W) -> None:
    alice, bob, carol = await w.user("alice"), await w.user("bob"), await w.user("carol")
    secret = await w.channel(alice, "secret", bob)
    await w.send(alice, secret, "project zebra launch")
    await w.index()
    assert await w.bodies(bob, "zebra") == ["project zebra launch"]
    assert await w.bodies(carol, "zebra") == []
    page = await w.search(carol, "zebra")
    assert page.counts == [] and page.next_cursor is None
    with pytest.raises(NotFound):
        await w.search(carol, "zebra", conversation_id=secret.id)
    with pytest.raises(InvalidInput) as caught:
        await w.search(carol, "zebra in:#secret")
    assert caught.value.details.get("field") == "q"


async def test_a_member_who_left_finds_only_what_was_sent_while_a_member(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    team = await w.channel(alice, "team", bob)
    await w.send(alice, team, "apple before")
    await w.svc.conversations.remove_member(bob, team.id, bob.id)
    await w.send(alice, team, "apple after")
    await w.index()
    assert await w.bodies(bob, "apple") == ["apple before"]
    assert await w.bodies(alice, "apple") == ["apple after", "apple before"]
    # conversation_id of a conversation one left is readable (up to the leave)
    assert await w.bodies(bob, "apple", conversation_id=team.id) == ["apple before"]


async def test_a_recalled_message_disappears_even_before_its_job_ran(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    room = await w.channel(alice, "room", bob)
    sent = await w.send(alice, room, "banana split")
    await w.index()
    assert await w.bodies(bob, "banana") == ["banana split"]
    await w.svc.messages.recall(alice, room.id, sent.seq)
    assert await w.bodies(bob, "banana") == []  # the index still has it: checked anyway
    await w.index()
    assert await w.bodies(bob, "banana") == []
    assert (await w.svc.search.status(None)).documents == 0


async def test_is_thread_finds_the_replies_in_threads(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    general = await w.channel(alice, "general", bob)
    root = await w.send(alice, general, "report root")
    w.clock.advance(1)
    await w.svc.messages.send(
        bob, general.id, uuid.uuid4().hex, "report reply", thread_root_seq=root.seq
    )
    w.clock.advance(1)
    await w.svc.messages.send(
        alice, general.id, uuid.uuid4().hex, "report shown too", thread_root_seq=root.seq,
        also_to_conversation=True,
    )
    await w.send(bob, general, "report plain")
    await w.index()
    assert await w.bodies(bob, "report is:thread") == ["report shown too", "report reply"]
    assert await w.bodies(bob, "is:thread from:bob") == ["report reply"]
    assert len(await w.bodies(bob, "report")) == 4
    found = (await w.search(bob, "reply is:thread")).results[0].message
    assert found.thread_root_seq == root.seq


async def test_an_edited_message_is_found_by_its_new_text_only(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    room = await w.channel(alice, "room", bob)
    sent = await w.send(alice, room, "cherry pie")
    await w.index()
    await w.svc.messages.edit(alice, room.id, sent.seq, "plum tart")
    assert await w.bodies(bob, "cherry") == []  # before the job: the old text no longer
    await w.index()
    assert await w.bodies(bob, "cherry") == []
    assert await w.bodies(bob, "plum") == ["plum tart"]


async def test_filters(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    general = await w.channel(alice, "general", bob)
    random = await w.channel(alice, "random", bob)
    await w.send(alice, general, "report one")
    await w.send(bob, general, "report two see https://example.org/x")
    await w.send(alice, random, "report three @bob")

    async def content() -> AsyncIterator[bytes]:
        yield b"numbers\n"

    upload = await w.svc.files.upload(alice, "quarterly-numbers.txt", "text/plain", content())
    await w.send(alice, random, "the file", [upload.id])
    await w.index()
    assert await w.bodies(bob, "report from:alice") == ["report three @bob", "report one"]
    assert await w.bodies(bob, "report from:@bob") == ["report two see https://example.org/x"]
    assert await w.bodies(bob, "report in:#general") == [
        "report two see https://example.org/x", "report one"
    ]
    assert await w.bodies(bob, f"report in:{random.id}") == ["report three @bob"]
    assert await w.bodies(bob, "has:link") == ["report two see https://example.org/x"]
    assert await w.bodies(bob, "mentions:me") == ["report three @bob"]
    assert await w.bodies(alice, "mentions:me") == []
    assert await w.bodies(bob, "has:file") == ["the file"]
    # a file's name is searchable; highlights point into the body only
    page = await w.search(bob, "quarterly")
    assert [r.message.body for r in page.results] == ["the file"]
    assert page.results[0].highlights == ()
    assert await w.bodies(bob, "report is:thread") == []  # no replies yet
    today = w.clock.now().date()
    assert await w.bodies(bob, f"report before:{today.isoformat()}") == []
    assert len(await w.bodies(bob, f"report before:{(today + timedelta(days=1)).isoformat()}")) == 3
    assert await w.bodies(bob, f"report after:{today.isoformat()}") == []
    yesterday = (today - timedelta(days=1)).isoformat()
    assert len(await w.bodies(bob, f"report after:{yesterday}")) == 3
    with pytest.raises(InvalidInput, match="unknown user"):
        await w.search(bob, "from:nobody")
    for bad in ("has:nothing", "before:2026-13-45", "", "   "):
        with pytest.raises(InvalidInput) as caught:
            await w.search(bob, bad)
        assert caught.value.details.get("field") == "q"


async def test_phrases_must_be_in_the_body_as_written(w: W) -> None:
    alice = await w.user("alice")
    room = await w.channel(alice, "room")
    await w.send(alice, room, "load balancer config")
    await w.send(alice, room, "config the balancer load")
    await w.index()
    assert await w.bodies(alice, '"load balancer"') == ["load balancer config"]
    assert len(await w.bodies(alice, "load balancer")) == 2


async def test_a_long_query_is_checked_against_all_its_words(w: W) -> None:
    """A pasted paragraph is hundreds of bigrams: the index looks up the longest
    search_max_query_tokens of them; a message with those but not the rest is no match."""
    alice = await w.user("alice")
    room = await w.channel(alice, "room")
    start = 0x4E00 + 300  # common CJK block: 240 distinct characters, no repeat
    long_text = "".join(chr(start + i) for i in range(240))
    await w.send(alice, room, long_text)
    half = long_text[:120]
    await w.send(alice, room, half + " and nothing more")
    await w.send(alice, room, "unrelated")
    await w.index()
    assert await w.bodies(alice, long_text) == [long_text]
    assert len(await w.bodies(alice, half)) == 2
    # 丁: one character, shorter than the bigrams the index looks up, in no message
    tail = long_text[200:] + " 丁"
    await w.send(alice, room, long_text[200:])
    await w.index()
    assert await w.bodies(alice, tail) == []
    assert await w.bodies(alice, long_text[200:]) == [long_text[200:], long_text]


async def test_newest_first_pages_with_cursors_and_counts(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    one = await w.channel(alice, "one", bob)
    two = await w.channel(alice, "two", bob)
    for i in range(7):
        await w.send(alice, one, f"kiwi {i}")
    for i in range(3):
        await w.send(alice, two, f"kiwi two {i}")
    await w.index()
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await w.search(bob, "kiwi", limit=4, cursor=cursor)
        pages += 1
        seen += [r.message.body for r in page.results]
        assert [(c.conversation_id, c.count) for c in page.counts] == [(one.id, 7), (two.id, 3)]
        assert page.counts_capped is False
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"kiwi two {i}" for i in (2, 1, 0)] + [f"kiwi {i}" for i in range(6, -1, -1)]
    # the default page size is a setting
    assert len((await w.search(bob, "kiwi")).results) == 5
    with pytest.raises(InvalidInput) as caught:
        await w.search(bob, "kiwi", cursor="not-a-cursor")
    assert caught.value.details.get("field") == "cursor"
    first = await w.search(bob, "kiwi", limit=2)
    assert first.next_cursor is not None
    with pytest.raises(InvalidInput):  # a newest cursor is no relevance cursor
        await w.search(bob, "kiwi", order="relevance", cursor=first.next_cursor)


async def test_counts_are_capped(container: Container) -> None:
    w = W(container)
    alice = await w.user("alice")
    room = await w.channel(alice, "room")
    for i in range(4):
        await w.send(alice, room, f"lime {i}")
    await w.index()
    limits = replace(container.deps.search, search_count_limit=3)
    object.__setattr__(container.deps, "search", limits)
    page = await w.search(alice, "lime")
    assert [c.count for c in page.counts] == [3]
    assert page.counts_capped is True


async def test_relevance_order_ranks_better_matches_first(w: W) -> None:
    alice = await w.user("alice")
    room = await w.channel(alice, "room")
    await w.send(alice, room, "mango and many other words that dilute the single mention here")
    await w.send(alice, room, "mango mango mango")
    await w.send(alice, room, "unrelated")
    await w.index()
    bodies = await w.bodies(alice, "mango", order="relevance")
    assert bodies[0] == "mango mango mango" and len(bodies) == 2
    first = await w.search(alice, "mango", order="relevance", limit=1)
    assert first.next_cursor is not None
    rest = await w.search(alice, "mango", order="relevance", limit=1, cursor=first.next_cursor)
    assert [r.message.body for r in rest.results] == [bodies[1]] and rest.next_cursor is None


async def test_highlights_are_code_point_ranges_of_the_body(w: W) -> None:
    alice = await w.user("alice")
    room = await w.channel(alice, "room")
    body = "我们的数据库 needs a DataBase check: 数据库!"
    await w.send(alice, room, body)
    await w.send(alice, room, "ＲＥＤＩＳ full width")
    await w.index()
    (result,) = (await w.search(alice, "数据库")).results
    spans = list(result.highlights)
    assert [body[s:e] for s, e in spans] == ["数据库", "数据库"]
    (wide,) = (await w.search(alice, "redis")).results
    assert [wide.message.body[s:e] for s, e in wide.highlights] == ["ＲＥＤＩＳ"]


async def test_the_rate_limit_is_a_setting(container: Container) -> None:
    w = W(container)
    alice = await w.user("alice")
    container.deps.put_limits(
        container.deps.limits, replace(container.deps.security, rate_search_per_user=2)
    )
    await w.search(alice, "x")
    await w.search(alice, "x")
    with pytest.raises(RateLimited):
        await w.search(alice, "x")


async def test_reindex_rebuilds_online_and_status_says_so(w: W) -> None:
    boss = await w.user("boss", OrgRole.ADMIN)
    alice = await w.user("alice")
    room = await w.channel(alice, "room")
    for i in range(12):
        await w.send(alice, room, f"grape {i}")
    recalled = await w.send(alice, room, "grape gone")
    await w.svc.messages.recall(alice, room.id, recalled.seq)
    status = await w.svc.search.status(None)
    assert status.documents == 0 and status.pending_jobs == 0  # not tapped yet
    seen: list[tuple[int, int]] = []
    object.__setattr__(w.c.deps, "search", replace(w.c.deps.search, search_index_batch=5))
    assert await w.svc.search.reindex(boss, progress=lambda d, t: seen.append((d, t))) == 12
    assert seen[0] == (0, 13) and seen[-1] == (13, 13) and len(seen) == 4
    status = await w.svc.search.status(boss)
    assert status.documents == 12 and status.last_indexed_at is not None
    assert len(await w.bodies(alice, "grape", limit=20)) == 12
    with pytest.raises(Forbidden):
        await w.svc.search.reindex(alice)
    with pytest.raises(Forbidden):
        await w.svc.search.status(alice)
    entries = await w.svc.audit.page(boss, filters=AuditFilters(action="search_reindexed"))
    assert [(e.actor_id, e.details["indexed"]) for e in entries] == [(boss.id, 12)]


async def test_index_jobs_come_from_the_event_log_batched(w: W) -> None:
    alice = await w.user("alice")
    room = await w.channel(alice, "room")
    for i in range(3):
        await w.send(alice, room, f"pear {i}")
    made = await w.svc.jobs.tap_events()
    assert made >= 1
    status = await w.svc.search.status(None)
    assert status.pending_jobs == 1  # one job for the three messages
    await w.index()
    status = await w.svc.search.status(None)
    assert status.pending_jobs == 0 and status.documents == 3


async def test_many_conversations_are_filtered_in_the_join(
    w: W, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller in more conversations than the FTS5 query names (MATCH_SCOPES_MAX): the
    same results, the scope then checked on the documents (PostgreSQL: no such limit)."""
    from tidings.search import fts5

    monkeypatch.setattr(fts5, "MATCH_SCOPES_MAX", 0)
    alice, bob, carol = await w.user("alice"), await w.user("bob"), await w.user("carol")
    shared = await w.channel(alice, "shared", bob)
    private = await w.channel(alice, "private", carol)
    left = await w.channel(alice, "left", bob)
    await w.send(alice, shared, "walnut one")
    await w.send(alice, private, "walnut two")
    await w.send(alice, left, "walnut three")
    await w.svc.conversations.remove_member(bob, left.id, bob.id)
    await w.send(alice, left, "walnut four")
    await w.index()
    assert await w.bodies(bob, "walnut") == ["walnut three", "walnut one"]
    assert await w.bodies(bob, "has:link") == []
    page = await w.search(bob, "walnut")
    assert sorted((c.conversation_id, c.count) for c in page.counts) == sorted(
        [(shared.id, 1), (left.id, 1)]
    )


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # PostgreSQL's plans
@pytest.mark.parametrize("plan", ["lateral"])
async def test_postgres_walks_of_common_tokens_find_what_the_gin_scan_finds(
    w: W, monkeypatch: pytest.MonkeyPatch, plan: str
) -> None:
    """PostgreSQL answers a very common token by walking each conversation's documents
    newest first (search/postgres.py) instead of its GIN posting list:
    the same results, pages, counts and visibility as the GIN plan."""
    assert not w.c.settings.db_url.startswith("sqlite")
    from tidings.search.postgres import PostgresIndex

    alice, bob, carol = await w.user("alice"), await w.user("bob"), await w.user("carol")
    shared = await w.channel(alice, "shared", bob)
    private = await w.channel(alice, "private", carol)
    left = await w.channel(alice, "left", bob)
    for i in range(4):
        await w.send(alice, shared, f"plum alpha {i}")
        await w.send(bob, shared, f"plum beta {i}")
        await w.send(alice, private, f"plum secret {i}")
        await w.send(alice, left, f"plum before {i}")
    await w.svc.conversations.remove_member(bob, left.id, bob.id)
    for i in range(3):
        await w.send(alice, left, f"plum after {i}")
    await w.index()

    async def everything(q: str) -> tuple[list[list[str]], list[tuple[str, int]], bool]:
        pages: list[list[str]] = []
        cursor = None
        first = None
        while True:
            page = await w.search(bob, q, limit=3, cursor=cursor)
            first = first or page
            pages.append([r.message.body for r in page.results])
            cursor = page.next_cursor
            if cursor is None:
                break
        counts = sorted((c.conversation_id, c.count) for c in first.counts)
        return pages, counts, first.counts_capped

    queries = ["plum", "plum from:bob", "plum in:#shared", "plum alpha"]
    expected = {q: await everything(q) for q in queries}
    ranked = [r.message.body for r in (await w.search(bob, "plum", order="relevance")).results]

    async def forced(self: PostgresIndex, tx: object, query: object, limit: int) -> str:
        return plan

    monkeypatch.setattr(PostgresIndex, "_plan", forced)
    for q in queries:
        assert await everything(q) == expected[q], q
    pages, counts, _capped = expected["plum"]
    found = [b for page in pages for b in page]
    assert len(found) == 12 and not any("secret" in b or "after" in b for b in found)
    assert counts == sorted([(shared.id, 8), (left.id, 4)])
    again = [r.message.body for r in (await w.search(bob, "plum", order="relevance")).results]
    assert sorted(again) == sorted(ranked)
