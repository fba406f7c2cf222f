"""The SDK's threads (issue 17) against the application in-process, on both backends:
sending replies (`thread_root_seq`, `reply_in_thread`), the thread list and one thread,
its replies, following and reading, the typed `ThreadUpdated` / `ThreadRead` events, and
the errors of a bad root."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import AppServer
from tidings.sdk import (
    Client,
    InvalidRequest,
    NotFound,
    Thread,
    ThreadRead,
    ThreadState,
    ThreadUpdated,
)

PASSWORD = "threads-sdk-password-1"


async def _people(server: AppServer, *names: str) -> list[Client]:
    async with Client(server.url) as admin:
        await admin.login(server.admin_username, server.admin_password)
        users = [await admin.create_user(f"{n}{secrets.token_hex(3)}", PASSWORD) for n in names]
    clients = []
    for user in users:
        client = Client(server.url)
        await client.login(user.username, PASSWORD)
        clients.append(client)
    return clients


async def test_threads_through_the_sdk(server: AppServer) -> None:
    ann, ben = await _people(server, "ann", "ben")
    try:
        assert ann.user and ben.user
        conv = await ann.create_conversation("group", [ben.user.id], name="launch")
        since = (await ben.sync()).next
        root = await ann.send(conv.id, "Launch plan: Friday?")
        first = await ben.send(conv.id, "Friday works", thread_root_seq=root.seq)
        assert (first.thread_root_seq, first.also_to_conversation) == (root.seq, False)
        second = await ann.reply_in_thread(first, "shipping Friday", also_to_conversation=True)
        assert (second.thread_root_seq, second.also_to_conversation) == (root.seq, True)
        quote = await ben.reply(second, "a quote-reply")  # the main timeline, no thread
        assert quote.reply_to_seq == second.seq and quote.thread_root_seq is None

        page = await ben.threads(conv.id)
        assert page.next_cursor is None
        (thread,) = page.threads
        assert isinstance(thread, Thread) and thread.root.seq == root.seq
        assert thread.summary.reply_count == 2 and thread.summary.last_reply_seq == second.seq
        assert thread.summary.participants == (ann.user.id, ben.user.id)
        assert thread.state == ThreadState(following=True, read_seq=first.seq, unread=1)
        replies = await ben.thread_replies(conv.id, root.seq)
        assert [m.body for m in replies.messages] == ["Friday works", "shipping Friday"]
        everything = await ben.history(conv.id)
        assert [m.thread_root_seq for m in everything.messages] == [None, 1, 1, None]

        read = await ben.read_thread(conv.id, root.seq, second.seq)
        assert read == ThreadState(following=True, read_seq=second.seq, unread=0)
        off = await ben.unfollow_thread(conv.id, root.seq)
        assert off.following is False
        on = await ben.follow_thread(conv.id, root.seq)
        assert on.following is True
        assert (await ben.thread(conv.id, root.seq)).state == on

        sync = await ben.sync(since)
        updates = [e for e in sync.events if isinstance(e, ThreadUpdated)]
        assert [u.thread.reply_count for u in updates] == [1, 2]
        assert updates[-1].thread.participants == (ann.user.id, ben.user.id)
        reads = [e for e in sync.events if isinstance(e, ThreadRead)]
        assert [(r.following, r.read_seq) for r in reads] == [
            (True, second.seq),
            (False, second.seq),
            (True, second.seq),
        ]
        assert not [e for e in (await ann.sync(since)).events if isinstance(e, ThreadRead)]

        with pytest.raises(NotFound) as missing:
            await ben.send(conv.id, "no root", thread_root_seq=999)
        assert missing.value.details == {"thread_root_seq": 999}
        with pytest.raises(InvalidRequest) as nested:
            await ben.send(conv.id, "nested", thread_root_seq=first.seq)
        assert nested.value.code == "invalid_operation"
    finally:
        await ann.aclose()
        await ben.aclose()
