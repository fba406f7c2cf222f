"""The SDK's search (issue 16, /work/notes/SEARCH.md): `search` and `iter_search`
against the application in-process, on both backends: Chinese and English matches with
code-point highlights, cursor pages, counts per conversation, the filters, visibility
(a non-member finds nothing, a member who left finds only what came before), edits and
recalls, and the errors the contract names.

Indexing is a job (never on the send path), so every positive expectation waits until
the index has caught up, and every negative one is checked after a positive one that
was indexed later proves the earlier writes are in."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import AppServer
from tidings.sdk import (
    Client,
    InvalidRequest,
    NotFound,
    SearchCount,
    SearchPage,
    SearchResult,
)

PASSWORD = "search-sdk-password-1"


async def _until(
    fetch: Callable[[], Awaitable[SearchPage]], ok: Callable[[SearchPage], bool]
) -> SearchPage:
    """The first page `ok` accepts, polling while the index catches up (15 s at most)."""
    deadline = time.monotonic() + 15
    while True:
        page = await fetch()
        if ok(page):
            return page
        assert time.monotonic() < deadline, f"search never got there: {page}"
        await asyncio.sleep(0.05)


def _seqs(page: SearchPage) -> list[int]:
    return [r.message.seq for r in page.results]


def _check_highlights(result: SearchResult, term: str) -> None:
    """Sorted, non-overlapping code-point spans inside the body, one of them over `term`."""
    body = result.message.body
    spans = result.highlights
    assert spans, result
    assert spans == sorted(spans)
    for (start, end), nxt in zip(spans, [*spans[1:], None], strict=True):
        assert 0 <= start < end <= len(body), (spans, body)
        if nxt is not None:
            assert end <= nxt[0], spans
    assert any(term.casefold() in body[s:e].casefold() for s, e in spans), (spans, body)


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


async def test_search_finds_chinese_and_english_with_highlights_pages_and_counts(
    server: AppServer,
) -> None:
    ann, ben, cat = await _people(server, "ann", "ben", "cat")
    try:
        assert ann.user and ben.user and cat.user
        ops = await ann.create_conversation("group", [ben.user.id], name="ops")
        dev = await ann.create_conversation("group", [ben.user.id], name="dev")
        # An emoji (one code point, two UTF-16 units) before the match: offsets are code points.
        cn = await ann.send(ops.id, "🚀 分布式数据库迁移方案 下周一上线")
        en = await ben.send(ops.id, "We moved the Redis缓存 to the new cluster")
        for i in range(5):
            await ann.send(dev.id, f"数据库 backup {i} done")
        await ann.send(ops.id, "nothing to see here")

        page = await _until(
            lambda: ben.search("数据库"), lambda p: sum(c.count for c in p.counts) >= 6
        )
        assert isinstance(page, SearchPage) and page.counts_capped is False
        assert page.counts == [
            SearchCount(conversation_id=dev.id, count=5),
            SearchCount(conversation_id=ops.id, count=1),
        ]
        in_ops = await ben.search("数据库", conversation_id=ops.id)
        assert _seqs(in_ops) == [cn.seq] and in_ops.next_cursor is None
        hit = in_ops.results[0]
        assert hit.message.body == cn.body and hit.message.sender_id == ann.user.id
        _check_highlights(hit, "数据库")
        start = min(s for s, e in hit.highlights if "数据库" in cn.body[s:e])
        assert start == cn.body.index("数据库")  # 5 in code points (6 in UTF-16)

        english = await _until(lambda: ann.search("redis"), lambda p: len(p.results) == 1)
        assert english.results[0].message.seq == en.seq
        _check_highlights(english.results[0], "redis")

        # One conversation, newest first, two at a time: every page follows the cursor.
        first = await ben.search("数据库", conversation_id=dev.id, limit=2)
        assert len(first.results) == 2 and first.next_cursor
        assert {r.message.conversation_id for r in first.results} == {dev.id}
        second = await ben.search(
            "数据库", conversation_id=dev.id, limit=2, cursor=first.next_cursor
        )
        assert _seqs(second) and set(_seqs(first)).isdisjoint(_seqs(second))
        everything = [r async for r in ben.iter_search("数据库", conversation_id=dev.id, limit=2)]
        seqs = [r.message.seq for r in everything]
        assert len(seqs) == 5 and seqs == sorted(seqs, reverse=True)
        assert seqs[:2] == _seqs(first) and seqs[2:4] == _seqs(second)
        relevance = [r async for r in ben.iter_search("数据库 backup", order="relevance")]
        assert sorted(r.message.seq for r in relevance) == sorted(seqs)

        # Filters in the query itself.
        mine = await ben.search(f"数据库 from:{ann.user.username} in:#ops")
        assert _seqs(mine) == [cn.seq]
        assert (await ben.search(f"from:@{ben.user.username}")).results[0].message.seq == en.seq
        assert _seqs(await ben.search('"下周一上线"')) == [cn.seq]
        assert (await ben.search("数据库 before:2000-01-01")).results == []

        # Someone who is in neither conversation finds nothing of them.
        assert (await cat.search("数据库")).results == []
        assert (await cat.search("数据库")).counts == []
    finally:
        for c in (ann, ben, cat):
            await c.aclose()


async def test_search_follows_edits_recalls_and_membership(server: AppServer) -> None:
    ann, ben = await _people(server, "ann", "ben")
    try:
        assert ann.user and ben.user
        conv = await ann.create_conversation("group", [ben.user.id], name="负载均衡")
        old = await ann.send(conv.id, "使用负载均衡器 balancer-alpha")
        gone = await ann.send(conv.id, "recalled-bravo 负载均衡")
        await _until(lambda: ben.search("负载均衡"), lambda p: len(p.results) == 2)

        await ann.edit(conv.id, old.seq, "使用负载均衡器 balancer-charlie")
        await ann.recall(conv.id, gone.seq)
        await _until(lambda: ben.search("balancer-charlie"), lambda p: _seqs(p) == [old.seq])
        await _until(lambda: ben.search("负载均衡"), lambda p: _seqs(p) == [old.seq])
        assert (await ben.search("balancer-alpha")).results == []  # found by its new text only
        assert (await ben.search("recalled-bravo")).results == []

        before = await ann.send(conv.id, "INC-4521 before ben left")
        await _until(lambda: ben.search("INC-4521"), lambda p: _seqs(p) == [before.seq])
        await ben.leave(conv.id)
        after = await ann.send(conv.id, "INC-4521 after ben left")
        await _until(lambda: ann.search("INC-4521"), lambda p: len(p.results) == 2)
        assert _seqs(await ann.search("INC-4521")) == [after.seq, before.seq]
        # What ben could see as a member stays findable; nothing after he left.
        assert _seqs(await ben.search("INC-4521")) == [before.seq]
        assert _seqs(await ben.search("INC-4521", conversation_id=conv.id)) == [before.seq]
    finally:
        await ann.aclose()
        await ben.aclose()


async def test_search_errors_name_the_field(server: AppServer) -> None:
    ann, ben = await _people(server, "ann", "ben")
    try:
        assert ann.user and ben.user
        private = await ann.create_conversation("group", [], name="private")
        await ann.send(private.id, "secret 数据库 plan")
        for bad in ("", "colour:blue", "before:2026-13-45", "after:yesterday", "x" * 10_000):
            with pytest.raises(InvalidRequest) as raised:
                await ben.search(bad)
            assert raised.value.code == "invalid_request"
            assert raised.value.details.get("field") == "q", bad
        with pytest.raises(InvalidRequest) as raised:
            await ben.search("from:nobody-by-this-name-xyz 数据库")
        assert raised.value.details.get("field") == "q"
        with pytest.raises(InvalidRequest) as raised:
            await ben.search("in:#private 数据库")  # not one of ben's conversations
        assert raised.value.details.get("field") == "q"
        with pytest.raises(InvalidRequest) as raised:
            await ben.search("数据库", cursor="not-a-cursor")
        assert raised.value.details.get("field") == "cursor"
        with pytest.raises(NotFound):
            await ben.search("数据库", conversation_id=private.id)
        with pytest.raises(NotFound):
            await ben.search("数据库", conversation_id="no-such-conversation")
        # Filters alone are a query.
        page = await ann.search(f"from:{ann.user.username}")
        assert isinstance(page, SearchPage)
    finally:
        await ann.aclose()
        await ben.aclose()
