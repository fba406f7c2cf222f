"""Threads (issue 17) through the services, on SQLite and PostgreSQL: the rules of a
reply's root, replies keeping the conversation's gapless seq, the root's summary exact
(concurrent replies, a recalled reply, the participants' cap), following and the
thread's own unread, the thread list and its cursor, what members who left and
non-members see, and the stale state + events == fresh fetch check of `thread_updated`
and `thread_read`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes import FakeClock
from tidings.app.container import Container
from tidings.core.clock import rfc3339
from tidings.core.errors import InvalidRequest, InvalidThreadRoot, NotFound
from tidings.core.models import Conversation, ConversationKind, Message, User
from tidings.protocol.wire import thread_json
from tidings.services.hub import Services

PASSWORD = "plum-orbit-123-threads"


@pytest.fixture
def container_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container_settings() -> dict[str, object]:
    return {"thread_participants_max": 3, "rate_send_per_user": 10_000}


class W:
    def __init__(self, container: Container) -> None:
        self.svc: Services = container.services
        self.clock: FakeClock = container.deps.clock  # type: ignore[assignment]

    async def user(self, name: str) -> User:
        return await self.svc.users.create(None, name, PASSWORD)

    async def group(self, owner: User, *members: User, name: str = "team") -> Conversation:
        conv, _ = await self.svc.conversations.create(
            owner, ConversationKind.GROUP, [m.id for m in members], name
        )
        return conv

    async def send(
        self, user: User, conv: Conversation, body: str, root: int | None = None, **kw: Any
    ) -> Message:
        self.clock.advance(1)
        message, _ = await self.svc.messages.send(
            user, conv.id, uuid.uuid4().hex, body, None, (), thread_root_seq=root, **kw
        )
        return message

    async def thread(self, user: User, conv: Conversation, root: int) -> dict[str, Any]:
        return thread_json(await self.svc.threads.get(user, conv.id, root))

    async def replies(self, user: User, conv: Conversation, root: int, **kw: Any) -> list[str]:
        page, _ = await self.svc.messages.history(user, conv.id, thread_root_seq=root, **kw)
        return [m.body for m in page]


@pytest.fixture
async def w(container: Container) -> AsyncIterator[W]:
    yield W(container)


async def test_a_reply_keeps_the_gapless_seq_and_names_its_root(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    team = await w.group(alice, bob)
    root = await w.send(alice, team, "root")
    r1 = await w.send(bob, team, "r1", root.seq)
    plain = await w.send(alice, team, "plain")
    r2 = await w.send(alice, team, "r2", root.seq, also_to_conversation=True)
    assert [root.seq, r1.seq, plain.seq, r2.seq] == [1, 2, 3, 4]
    assert (r1.thread_root_seq, r1.also_to_conversation) == (1, False)
    assert (r2.thread_root_seq, r2.also_to_conversation) == (1, True)
    assert plain.thread_root_seq is None
    # the history has every message (gap detection by seq); the filter one thread's
    page, _ = await w.svc.messages.history(bob, team.id)
    assert [(m.seq, m.thread_root_seq, m.also_to_conversation) for m in page] == [
        (1, None, False),
        (2, 1, False),
        (3, None, False),
        (4, 1, True),
    ]
    assert await w.replies(bob, team, 1) == ["r1", "r2"]
    assert await w.replies(bob, team, 1, after_seq=2) == ["r2"]
    summary = await w.thread(bob, team, 1)
    assert summary["reply_count"] == 2 and summary["last_reply_seq"] == 4
    assert summary["participants"] == [alice.id, bob.id]
    assert summary["root"]["body"] == "root"


async def test_a_reply_needs_a_root_it_may_have(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    team = await w.group(alice, bob)
    other = await w.group(alice, bob, name="other")
    root = await w.send(alice, team, "root")
    reply = await w.send(bob, team, "reply", root.seq)
    for _ in range(3):
        await w.send(alice, other, "elsewhere")  # seq 3 exists in `other` only
    with pytest.raises(NotFound) as missing:
        await w.send(bob, team, "no such root", 99)
    assert missing.value.details == {"thread_root_seq": 99}
    with pytest.raises(NotFound):
        await w.send(bob, team, "root of another conversation", 3)
    with pytest.raises(InvalidThreadRoot) as nested:
        await w.send(bob, team, "reply to a reply", reply.seq)
    assert nested.value.code.value == "invalid_operation"
    assert nested.value.details == {"field": "thread_root_seq", "thread_root_seq": reply.seq}
    recalled = await w.send(alice, team, "to be recalled")
    await w.svc.messages.recall(alice, team.id, recalled.seq)
    with pytest.raises(InvalidThreadRoot) as gone:
        await w.send(bob, team, "reply to a recalled root", recalled.seq)
    assert "recalled" in gone.value.message
    with pytest.raises(InvalidRequest) as bad:
        await w.send(bob, team, "zero", 0)
    assert bad.value.details == {"field": "thread_root_seq"}
    with pytest.raises(InvalidRequest) as alone:
        await w.send(bob, team, "also without a root", None, also_to_conversation=True)
    assert alone.value.details == {"field": "also_to_conversation"}
    # nothing of the refused sends was written: the seqs stay gapless
    page, _ = await w.svc.messages.history(alice, team.id)
    assert [m.seq for m in page] == [1, 2, 3]
    assert (await w.thread(alice, team, root.seq))["reply_count"] == 1
    with pytest.raises(NotFound):  # the thread of a reply is no thread
        await w.svc.threads.get(alice, team.id, reply.seq)
    with pytest.raises(NotFound):
        await w.svc.messages.history(alice, team.id, thread_root_seq=reply.seq)


async def test_the_summary_is_exact_under_concurrent_replies_and_a_recall(w: W) -> None:
    users = [await w.user(f"u{i}") for i in range(5)]
    team = await w.group(users[0], *users[1:])
    root = await w.send(users[0], team, "root")
    # 40 replies at once (group commits of several), each sender eight times
    sent = await asyncio.gather(
        *(
            w.svc.messages.send(
                users[i % 5], team.id, uuid.uuid4().hex, f"r{i}", thread_root_seq=root.seq
            )
            for i in range(40)
        )
    )
    seqs = sorted(m.seq for m, _ in sent)
    assert seqs == list(range(2, 42))
    summary = await w.thread(users[1], team, root.seq)
    assert summary["reply_count"] == 40 and summary["last_reply_seq"] == 41
    last = {m.seq: m for m, _ in sent}[41]
    assert summary["participants"][0] == last.sender_id
    assert len(summary["participants"]) == 3  # thread_participants_max
    # the order of the participants: each one's latest reply, newest first
    latest: dict[str, int] = {}
    for m, _ in sent:
        latest[m.sender_id] = max(latest.get(m.sender_id, 0), m.seq)
    expected = sorted(latest, key=lambda u: -latest[u])[:3]
    assert summary["participants"] == expected
    # recalling the newest reply counts the thread again
    await w.svc.messages.recall(users[0], team.id, 41)
    again = await w.thread(users[1], team, root.seq)
    assert again["reply_count"] == 39 and again["last_reply_seq"] == 40
    del latest[last.sender_id]
    for m, _ in sent:
        if m.seq != 41 and m.sender_id == last.sender_id:
            latest[m.sender_id] = max(latest.get(m.sender_id, 0), m.seq)
    assert again["participants"] == sorted(latest, key=lambda u: -latest[u])[:3]
    assert again["last_reply_at"] == rfc3339({m.seq: m for m, _ in sent}[40].created_at)


async def test_recalling_every_reply_empties_the_summary_and_the_list(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    team = await w.group(alice, bob)
    root = await w.send(alice, team, "root")
    reply = await w.send(bob, team, "only reply", root.seq)
    listed, _ = await w.svc.threads.list(alice, team.id)
    assert [v.root.seq for v in listed] == [root.seq]
    await w.svc.messages.recall(bob, team.id, reply.seq)
    summary = await w.thread(alice, team, root.seq)
    assert (summary["reply_count"], summary["last_reply_seq"], summary["last_reply_at"]) == (
        0,
        None,
        None,
    )
    assert summary["participants"] == []
    assert (await w.svc.threads.list(alice, team.id))[0] == []
    assert await w.replies(alice, team, root.seq) == [""]  # the recalled one, empty


async def test_following_and_the_threads_own_unread(w: W) -> None:
    alice, bob, carol = await w.user("alice"), await w.user("bob"), await w.user("carol")
    team = await w.group(alice, bob, carol)
    root = await w.send(alice, team, "root")
    await w.send(bob, team, "b1", root.seq)
    await w.send(bob, team, "b2", root.seq)

    async def state(user: User) -> tuple[bool, int, int]:
        view = await w.svc.threads.get(user, team.id, root.seq)
        return view.state.following, view.state.read_seq, view.state.unread

    # the root's author and the replier follow by default; carol does not
    assert await state(alice) == (True, 0, 2)
    assert await state(bob) == (True, 3, 0)  # one's own replies are read
    assert await state(carol) == (False, 0, 0)
    # carol follows: the replies she has not read are hers to read
    followed = await w.svc.threads.follow(carol, team.id, root.seq, True)
    assert (followed.following, followed.unread) == (True, 2)
    await w.send(alice, team, "a3", root.seq)
    assert await state(bob) == (True, 3, 1)
    assert await state(carol) == (True, 0, 3)
    # reading moves forward only, and never past the last reply
    read = await w.svc.threads.mark_read(carol, team.id, root.seq, 3)
    assert (read.read_seq, read.unread) == (3, 1)
    back = await w.svc.threads.mark_read(carol, team.id, root.seq, 1)
    assert back.read_seq == 3
    ahead = await w.svc.threads.mark_read(carol, team.id, root.seq, 10**6)
    assert (ahead.read_seq, ahead.unread) == (4, 0)
    # unfollowing: nothing unread, and it holds though bob replies again
    off = await w.svc.threads.follow(bob, team.id, root.seq, False)
    assert (off.following, off.unread) == (False, 0)
    await w.send(bob, team, "b5", root.seq)
    await w.send(alice, team, "a6", root.seq)
    assert await state(bob) == (False, 5, 0)
    # the conversation's own unread is untouched by the thread's read position, and
    # leaves the thread-only replies out: the root alone
    views = {v.conversation.id: v for v in await w.svc.conversations.list_for(carol)}
    assert (views[team.id].unread, views[team.id].thread_only) == (1, 5)
    with pytest.raises(InvalidRequest):
        await w.svc.threads.mark_read(carol, team.id, root.seq, -1)


async def test_the_thread_list_newest_activity_first_with_a_cursor(w: W) -> None:
    alice, bob = await w.user("alice"), await w.user("bob")
    team = await w.group(alice, bob)
    roots = [await w.send(alice, team, f"root {i}") for i in range(5)]
    await w.send(alice, team, "no thread")
    for root in roots:
        await w.send(bob, team, f"reply to {root.body}", root.seq)
    await w.send(bob, team, "again", roots[1].seq)  # root 1: the newest activity

    async def pages(size: int) -> list[list[str]]:
        out, cursor = [], None
        while True:
            views, cursor = await w.svc.threads.list(bob, team.id, before=cursor, limit=size)
            out.append([v.root.body for v in views])
            if cursor is None:
                return out

    assert await pages(2) == [["root 1", "root 4"], ["root 3", "root 2"], ["root 0"]]
    assert await pages(10) == [["root 1", "root 4", "root 3", "root 2", "root 0"]]
    views, _ = await w.svc.threads.list(bob, team.id)
    assert [v.summary.reply_count for v in views] == [2, 1, 1, 1, 1]
    assert all(v.state.following for v in views)  # bob replied in each


async def test_visibility_follows_membership(w: W) -> None:
    alice, bob, eve = await w.user("alice"), await w.user("bob"), await w.user("eve")
    team = await w.group(alice, bob)
    root = await w.send(alice, team, "root")
    await w.send(bob, team, "before leaving", root.seq)
    await w.svc.conversations.remove_member(bob, team.id, bob.id)  # bob leaves
    await w.send(alice, team, "after leaving", root.seq)
    late_root = await w.send(alice, team, "late root")
    await w.send(alice, team, "late reply", late_root.seq)
    # a non-member: not_found for everything, as if nothing existed
    for call in (
        w.svc.threads.list(eve, team.id),
        w.svc.threads.get(eve, team.id, root.seq),
        w.svc.threads.follow(eve, team.id, root.seq, True),
        w.svc.threads.mark_read(eve, team.id, root.seq, 2),
        w.svc.messages.history(eve, team.id, thread_root_seq=root.seq),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(NotFound):
        await w.send(eve, team, "intruder", root.seq)
    # bob, who left: what was there until he left, nothing after
    assert await w.replies(bob, team, root.seq) == ["before leaving"]
    seen = await w.thread(bob, team, root.seq)
    assert (seen["reply_count"], seen["last_reply_seq"], seen["participants"]) == (1, 2, [bob.id])
    listed, _ = await w.svc.threads.list(bob, team.id)
    assert [(v.root.seq, v.summary.reply_count) for v in listed] == [(root.seq, 1)]
    with pytest.raises(NotFound):
        await w.svc.threads.get(bob, team.id, late_root.seq)
    with pytest.raises(NotFound):
        await w.svc.messages.history(bob, team.id, thread_root_seq=late_root.seq)
    with pytest.raises(NotFound):  # a member who left changes nothing
        await w.svc.threads.follow(bob, team.id, root.seq, True)
    # alice sees it all
    full = await w.thread(alice, team, root.seq)
    assert full["reply_count"] == 2 and full["participants"] == [alice.id, bob.id]


def apply_thread_event(me: str, threads: dict[int, dict[str, Any]], event: dict[str, Any]) -> None:
    """What a client does with the stream to the thread list it holds (summaries, and
    its own following / read position: unread it counts again from the replies)."""
    kind = event["kind"]
    if kind == "thread_updated":
        summary = event["thread"]
        held = threads.setdefault(summary["root_seq"], {"following": None, "read_seq": 0})
        held.update(summary)
    elif kind == "thread_read" and event["user_id"] == me:
        held = threads.setdefault(event["root_seq"], {})
        held.update(following=event["following"], read_seq=event["read_seq"])


async def test_stale_threads_plus_events_equal_a_fresh_fetch(w: W) -> None:
    alice, bob, carol = await w.user("alice"), await w.user("bob"), await w.user("carol")
    team = await w.group(alice, bob, carol)
    r1 = await w.send(alice, team, "first root")
    r2 = await w.send(bob, team, "second root")
    await w.send(carol, team, "c on 1", r1.seq)
    keys = ("root_seq", "reply_count", "last_reply_seq", "last_reply_at", "participants")

    async def fetch() -> dict[int, dict[str, Any]]:
        views, _ = await w.svc.threads.list(bob, team.id, limit=200)
        return {
            v.root.seq: {k: thread_json(v)[k] for k in (*keys, "following", "read_seq")}
            for v in views
        }

    since = await w.svc.sync.head()
    state = await fetch()
    # while bob is away
    await w.send(alice, team, "a on 2", r2.seq)
    c2 = await w.send(carol, team, "c on 2", r2.seq)
    await w.send(alice, team, "a on 1", r1.seq)
    await w.svc.messages.recall(carol, team.id, c2.seq)
    await w.svc.threads.follow(bob, team.id, r1.seq, True)
    await w.svc.threads.mark_read(bob, team.id, r1.seq, 100)
    await w.send(carol, team, "c again on 1", r1.seq, also_to_conversation=True)
    await w.svc.threads.follow(bob, team.id, r2.seq, False)
    events, more = await w.svc.sync.events_since(bob, since, 1000)
    assert not more
    kinds = [e.payload["kind"] for e in events]
    assert kinds.count("thread_updated") == 5 and kinds.count("thread_read") == 3
    for event in events:
        apply_thread_event(bob.id, state, event.payload)
    fresh = await fetch()
    assert {s: {k: v[k] for k in fresh[s]} for s, v in state.items()} == fresh
    assert fresh[r1.seq]["reply_count"] == 3 and fresh[r2.seq]["reply_count"] == 1
    # alice and carol never see bob's own thread state
    for other in (alice, carol):
        theirs, _ = await w.svc.sync.events_since(other, since, 1000)
        assert "thread_read" not in [e.payload["kind"] for e in theirs]


async def test_a_member_added_later_sees_no_thread_from_before(w: W) -> None:
    """A group shares no history with members added later (members.first_seq): its
    threads from before are not theirs either, to list, read, follow or reply in."""
    alice, bob, kim = await w.user("alice"), await w.user("bob"), await w.user("kim")
    team = await w.group(alice, bob)
    old = await w.send(alice, team, "old root")
    await w.send(bob, team, "old reply", old.seq)
    await w.svc.conversations.add_members(alice, team.id, [kim.id])
    new = await w.send(alice, team, "new root")
    await w.send(bob, team, "new reply", new.seq)
    listed, _ = await w.svc.threads.list(kim, team.id)
    assert [v.root.seq for v in listed] == [new.seq]
    for call in (
        w.svc.threads.get(kim, team.id, old.seq),
        w.svc.threads.follow(kim, team.id, old.seq, True),
        w.svc.threads.mark_read(kim, team.id, old.seq, 2),
        w.svc.messages.history(kim, team.id, thread_root_seq=old.seq),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(NotFound):
        await w.send(kim, team, "into an old thread", old.seq)
    assert (await w.thread(kim, team, new.seq))["reply_count"] == 1
    everyone, _ = await w.svc.threads.list(alice, team.id)
    assert [v.root.seq for v in everyone] == [new.seq, old.seq]
