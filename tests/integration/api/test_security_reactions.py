"""Reactions cannot grow without bound (issue 13, item 3): caps per message and per user,
and each reaction's event carries the change, never the whole message again."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any
from urllib.parse import quote

import orjson

from tests.conftest import AppServer, MakeServer
from tests.helpers import Api, Ws, login, make_user

REACTIONS = 400  # the old code's last event: 15 kB (1,000: 38 kB, 98 kB with longer emoji)
EVENT_BYTES_MAX = 400  # a reaction's event frame, whatever the message already carries


def react_path(cid: str, seq: int, emoji: str) -> str:
    return f"/conversations/{cid}/messages/{seq}/reactions/{quote(emoji, safe='')}"


async def group_with_a_message(server: AppServer, *names: str) -> tuple[list[Api], str]:
    admin = await login(server.url, "admin", server.admin_password)
    people = [await make_user(admin, name) for name in names]
    await admin.close()
    owner, *others = people
    body = {"kind": "group", "name": "g", "member_ids": [p.id for p in others]}
    cid = (await owner.post("/conversations", body, expect=201))["conversation"]["id"]
    await owner.post(
        f"/conversations/{cid}/messages",
        {"client_msg_id": uuid.uuid4().hex, "body": "react to me"},
        expect=201,
    )
    return people, cid


def sqlite_bytes(server: AppServer) -> int:
    """The database's size as SQLite counts it (its pages, the WAL's included)."""
    with sqlite3.connect(server.data_dir / "tidings.db") as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * size)


async def test_hundreds_of_reactions_keep_events_small_and_storage_linear(
    make_server: MakeServer,
) -> None:
    """400 reactions on one message (the caps raised for it): before, the event of the
    k-th carried the message with its k reactions (at 1,000: 98 kB each at the end, 66 MB
    stored in all). Now every event, live and stored, stays the same small size."""
    async with make_server(
        max_reaction_emoji_per_message=REACTIONS,
        max_reactions_per_user_per_message=REACTIONS,
        rate_reaction_per_user=0,
    ) as server:
        (ann, ben), cid = await group_with_a_message(server, "ann", "ben")
        watcher = await Ws.connect(server.ws_url, ben.token or "")
        since = watcher.ready["position"]
        before = sqlite_bytes(server) if server.backend.name == "sqlite" else 0

        sizes: list[int] = []

        async def watch() -> None:
            while len(sizes) < REACTIONS:
                text = await asyncio.wait_for(watcher.conn.recv(), 30)
                frame = orjson.loads(text)
                if frame["type"] == "event" and frame["event"]["kind"] == "reaction":
                    sizes.append(len(text.encode()))

        watching = asyncio.create_task(watch())
        for i in range(REACTIONS):
            await ann.call("PUT", react_path(cid, 1, f"e{i}"), expect=200)
        await asyncio.wait_for(watching, 60)
        assert max(sizes) <= EVENT_BYTES_MAX, max(sizes)
        assert max(sizes) - min(sizes) < 20  # the same size at the 1st and the last

        # what is stored (and replayed) is that same small payload
        stored: list[dict[str, Any]] = []
        position = since
        while True:
            page = await ben.get("/sync", params={"since": position, "limit": 1000})
            stored += [e["event"] for e in page["events"] if e["event"]["kind"] == "reaction"]
            position = page["next"]
            if not page["more"]:
                break
        assert len(stored) == REACTIONS
        assert max(len(orjson.dumps(e)) for e in stored) <= EVENT_BYTES_MAX
        assert stored[-1] == {
            "kind": "reaction",
            "conversation_id": cid,
            "at": stored[-1]["at"],
            "seq": 1,
            "emoji": f"e{REACTIONS - 1}",
            "user_id": ann.id,
            "added": True,
            "count": 1,
        }
        if server.backend.name == "sqlite":
            grown = sqlite_bytes(server) - before
            assert grown < 1024 * 1024, grown  # about 0.5 kB a reaction (1,000 were 66 MB)

        # the message itself still has every reaction
        messages = (await ben.get(f"/conversations/{cid}/messages"))["messages"]
        assert len(messages[0]["reactions"]) == REACTIONS
        await watcher.close()
        for api in (ann, ben):
            await api.close()


async def test_reaction_events_carry_the_change_and_the_emoji_count(
    make_server: MakeServer,
) -> None:
    async with make_server() as server:
        (ann, ben, cat), cid = await group_with_a_message(server, "ann", "ben", "cat")
        watcher = await Ws.connect(server.ws_url, cat.token or "")

        async def next_reaction() -> dict[str, Any]:
            frame = await watcher.event("reaction")
            event: dict[str, Any] = frame["event"]
            assert "message" not in event
            return {k: event[k] for k in ("seq", "emoji", "user_id", "added", "count")}

        answer = await ann.call("PUT", react_path(cid, 1, "👍"), expect=200)
        assert answer["message"]["reactions"] == {"👍": [ann.id]}  # REST still answers it
        assert await next_reaction() == {
            "seq": 1, "emoji": "👍", "user_id": ann.id, "added": True, "count": 1,
        }
        await ben.call("PUT", react_path(cid, 1, "👍"), expect=200)
        assert (await next_reaction())["count"] == 2
        await ben.call("PUT", react_path(cid, 1, "👍"), expect=200)  # no change: no event
        answer = await ann.call("DELETE", react_path(cid, 1, "👍"), expect=200)
        assert answer["message"]["reactions"] == {"👍": [ben.id]}
        assert await next_reaction() == {
            "seq": 1, "emoji": "👍", "user_id": ann.id, "added": False, "count": 1,
        }
        await watcher.close()
        for api in (ann, ben, cat):
            await api.close()


async def test_caps_on_distinct_emoji_and_on_one_users_reactions(
    make_server: MakeServer,
) -> None:
    async with make_server(
        max_reaction_emoji_per_message=3, max_reactions_per_user_per_message=2
    ) as server:
        (ann, ben), cid = await group_with_a_message(server, "ann", "ben")

        async def refused(api: Api, emoji: str, limit: int) -> None:
            r = await api.http.put(react_path(cid, 1, emoji))
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert error["code"] == "invalid_operation"
            assert error["details"] == {"field": "emoji", "limit": limit}

        await ann.call("PUT", react_path(cid, 1, "a"), expect=200)
        await ann.call("PUT", react_path(cid, 1, "b"), expect=200)
        await refused(ann, "c", 2)  # ann has two on this message
        await ann.call("PUT", react_path(cid, 1, "a"), expect=200)  # already there: fine
        await ben.call("PUT", react_path(cid, 1, "c"), expect=200)  # the third distinct
        await refused(ben, "d", 3)  # a fourth distinct emoji
        await ben.call("PUT", react_path(cid, 1, "a"), expect=200)  # an existing one
        # taking one back is always allowed, and makes room
        await ann.call("DELETE", react_path(cid, 1, "b"), expect=200)
        await ann.call("PUT", react_path(cid, 1, "c"), expect=200)
        await refused(ann, "d", 2)
        messages = (await ann.get(f"/conversations/{cid}/messages"))["messages"]
        assert messages[0]["reactions"] == {"a": [ann.id, ben.id], "c": [ben.id, ann.id]}
        for api in (ann, ben):
            await api.close()
