"""Every write and every fan-out signal is rate limited per user (issue 13, item 6):
typing, presence, edits and recalls, reactions, membership changes, conversations
created. Small limits through the settings; on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.conftest import AppServer, MakeServer
from tests.helpers import Api, Ws, login, make_user

WINDOW = {"rate_window_seconds": 30}  # nothing expires while a test runs


@contextlib.asynccontextmanager
async def people(
    make_server: MakeServer, *names: str, **settings: Any
) -> AsyncIterator[tuple[AppServer, list[Api]]]:
    async with make_server(**WINDOW, **settings) as server:
        admin = await login(server.url, "admin", server.admin_password)
        apis = [await make_user(admin, name) for name in names]
        await admin.close()
        try:
            yield server, apis
        finally:
            for api in apis:
                await api.close()


async def group(owner: Api, *members: Api, name: str = "g") -> str:
    body = {"kind": "group", "name": name, "member_ids": [m.id for m in members]}
    return str((await owner.post("/conversations", body, expect=201))["conversation"]["id"])


def refused(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1


def refused_frame(reply: dict[str, Any]) -> None:
    assert reply["type"] == "error", reply
    assert reply["error"]["code"] == "rate_limited"
    assert reply["error"]["details"]["retry_after"] >= 1


async def frames_of(ws: Ws, kind: str, settle: float = 0.5) -> list[dict[str, Any]]:
    """The `kind` frames that reached `ws` until nothing more came for `settle` s."""
    found = []
    with contextlib.suppress(TimeoutError):
        while True:
            frame = await ws.recv(timeout=settle)
            if frame["type"] == kind:
                found.append(frame)
    return found


async def test_typing_is_limited_per_user_and_conversation(make_server: MakeServer) -> None:
    async with people(make_server, "ann", "ben", rate_typing_per_conversation=3) as (
        server,
        (ann, ben),
    ):
        first, second = await group(ann, ben), await group(ann, ben, name="h")
        ann_ws = await Ws.connect(server.ws_url, ann.token or "")
        ben_ws = await Ws.connect(server.ws_url, ben.token or "")
        await frames_of(ben_ws, "presence")  # ann's online, before the flood

        replies = [
            await ann_ws.request({"type": "typing", "conversation_id": first}) for _ in range(50)
        ]
        assert [r["type"] for r in replies[:3]] == ["ack"] * 3
        for reply in replies[3:]:
            refused_frame(reply)
        assert (await ann_ws.request({"type": "ping"}))["type"] == "ack"  # still open
        # over REST the same count: refused too
        refused(await ann.http.post(f"/conversations/{first}/typing"))
        # another conversation has its own count
        assert (await ann_ws.request({"type": "typing", "conversation_id": second}))[
            "type"
        ] == "ack"
        await ann.post(f"/conversations/{second}/typing", expect=204)

        delivered = await frames_of(ben_ws, "typing")
        by_conversation = [f["conversation_id"] for f in delivered]
        assert by_conversation.count(first) == 3  # 50 in, 3 out (was: every one)
        assert by_conversation.count(second) == 2
        await ann_ws.close()
        await ben_ws.close()


async def test_typing_in_many_conversations_is_limited_per_user(
    make_server: MakeServer,
) -> None:
    """A member of many conversations cannot multiply the per-conversation limit: the
    typing signals of one user in all their conversations together are counted too."""
    async with people(
        make_server, "ann", "ben", rate_typing_per_conversation=3, rate_typing_per_user=5
    ) as (server, (ann, ben)):
        conversations = [await group(ann, ben, name=f"g{i}") for i in range(4)]
        ann_ws = await Ws.connect(server.ws_url, ann.token or "")
        ben_ws = await Ws.connect(server.ws_url, ben.token or "")
        await frames_of(ben_ws, "presence")

        replies = [
            await ann_ws.request({"type": "typing", "conversation_id": c})
            for c in conversations
            for _ in range(2)
        ]  # 2 per conversation: under 3 each, 8 in all
        assert [r["type"] for r in replies[:5]] == ["ack"] * 5
        for reply in replies[5:]:
            refused_frame(reply)
        refused(await ann.http.post(f"/conversations/{conversations[0]}/typing"))
        assert len(await frames_of(ben_ws, "typing")) == 5
        # ben's own count is his own
        assert (await ben_ws.request({"type": "typing", "conversation_id": conversations[0]}))[
            "type"
        ] == "ack"
        await ann_ws.close()
        await ben_ws.close()


async def test_presence_changes_are_limited(make_server: MakeServer) -> None:
    async with people(make_server, "ann", "ben", rate_presence_per_user=3) as (
        server,
        (ann, ben),
    ):
        await group(ann, ben)
        ben_ws = await Ws.connect(server.ws_url, ben.token or "")
        ann_ws = await Ws.connect(server.ws_url, ann.token or "")  # online: not counted
        states = ["away", "online", "away", "online", "away", "online"]
        replies = [await ann_ws.request({"type": "presence", "state": s}) for s in states]
        assert [r["type"] for r in replies[:3]] == ["ack"] * 3
        for reply in replies[3:]:
            refused_frame(reply)
        # a refused change is not recorded: ann is as her third change left her
        presence = await ben.get("/presence", params={"user_ids": ann.id})
        assert presence["presence"][ann.id] == "away"
        seen = [f["state"] for f in await frames_of(ben_ws, "presence") if f["user_id"] == ann.id]
        assert seen == ["online", "away", "online", "away"]  # connect, then the three
        await ann_ws.close()
        await ben_ws.close()


async def test_edits_and_recalls_are_limited(make_server: MakeServer) -> None:
    async with people(make_server, "ann", "ben", rate_edit_per_user=3) as (_server, (ann, ben)):
        cid = await group(ann, ben)
        for i in range(2):
            await ann.post(
                f"/conversations/{cid}/messages",
                {"client_msg_id": uuid.uuid4().hex, "body": f"m{i}"},
                expect=201,
            )
        for i in range(3):
            await ann.call("PATCH", f"/conversations/{cid}/messages/1", json={"body": f"e{i}"},
                           expect=200)
        refused(await ann.http.patch(f"/conversations/{cid}/messages/1", json={"body": "e3"}))
        refused(await ann.http.delete(f"/conversations/{cid}/messages/2"))
        messages = (await ben.get(f"/conversations/{cid}/messages"))["messages"]
        assert [(m["body"], m["deleted"]) for m in messages] == [("e2", False), ("m1", False)]
        # someone else's count is their own
        await ben.post(
            f"/conversations/{cid}/messages",
            {"client_msg_id": uuid.uuid4().hex, "body": "b"},
            expect=201,
        )
        await ben.call("PATCH", f"/conversations/{cid}/messages/3", json={"body": "b2"},
                       expect=200)


async def test_reactions_are_limited(make_server: MakeServer) -> None:
    async with people(make_server, "ann", "ben", rate_reaction_per_user=3) as (
        server,
        (ann, ben),
    ):
        cid = await group(ann, ben)
        await ann.post(
            f"/conversations/{cid}/messages",
            {"client_msg_id": uuid.uuid4().hex, "body": "m"},
            expect=201,
        )
        ben_ws = await Ws.connect(server.ws_url, ben.token or "")
        path = f"/conversations/{cid}/messages/1/reactions/"
        await ann.call("PUT", path + "a", expect=200)
        await ann.call("DELETE", path + "a", expect=200)  # taking back counts too
        await ann.call("PUT", path + "b", expect=200)
        for emoji in ("c", "d", "e"):
            refused(await ann.http.put(path + emoji))
        messages = (await ann.get(f"/conversations/{cid}/messages"))["messages"]
        assert messages[0]["reactions"] == {"b": [ann.id]}
        events = [f for f in await frames_of(ben_ws, "event") if f["event"]["kind"] == "reaction"]
        assert [(f["event"]["emoji"], f["event"]["added"]) for f in events] == [
            ("a", True), ("a", False), ("b", True),
        ]
        await ben_ws.close()


async def test_membership_changes_are_limited(make_server: MakeServer) -> None:
    async with people(make_server, "ann", "ben", "cat", rate_membership_per_user=3) as (
        _server,
        (ann, ben, cat),
    ):
        cid = await group(ann, ben)
        await ann.post(f"/conversations/{cid}/members", {"user_ids": [cat.id]})
        await ann.call("DELETE", f"/conversations/{cid}/members/{cat.id}", expect=204)
        await ann.call("PATCH", f"/conversations/{cid}", json={"name": "renamed"}, expect=200)
        refused(await ann.http.post(f"/conversations/{cid}/members", json={"user_ids": [cat.id]}))
        refused(await ann.http.delete(f"/conversations/{cid}/members/{ben.id}"))
        refused(await ann.http.patch(f"/conversations/{cid}", json={"topic": "t"}))
        conv = (await ann.get(f"/conversations/{cid}"))["conversation"]
        assert (conv["name"], conv["topic"]) == ("renamed", "")
        assert {m["user_id"] for m in conv["members"]} == {ann.id, ben.id}


async def test_following_threads_is_limited_as_a_membership_change(
    make_server: MakeServer,
) -> None:
    """Following and unfollowing a thread (an event to the caller's devices each time)
    counts against rate_membership_per_user; reading a thread is not limited (it only
    moves forward)."""
    async with people(make_server, "ann", "ben", rate_membership_per_user=2) as (
        _server,
        (ann, ben),
    ):
        cid = await group(ann, ben)
        root = (await ann.send(cid, "root"))["seq"]
        reply = await ben.send(cid, "r", thread_root_seq=root)
        path = f"/conversations/{cid}/threads/{root}/follow"
        await ann.call("DELETE", path, expect=200)
        await ann.call("PUT", path, expect=200)
        refused(await ann.http.delete(path))
        state = (await ann.get(f"/conversations/{cid}/threads/{root}"))["thread"]
        assert state["following"] is True  # the refused unfollow changed nothing
        read = f"/conversations/{cid}/threads/{root}/read"
        for _ in range(3):
            await ann.call("POST", read, json={"seq": reply["seq"]}, expect=200)


async def test_conversations_created_are_limited_per_hour(make_server: MakeServer) -> None:
    async with people(make_server, "ann", "ben", "cat", rate_conversation_create_per_hour=2) as (
        _server,
        (ann, ben, cat),
    ):
        await group(ann, ben)
        direct = {"kind": "direct", "member_ids": [ben.id]}
        cid = (await ann.post("/conversations", direct, expect=201))["conversation"]["id"]
        r = await ann.http.post("/conversations", json={"kind": "group", "name": "x"})
        refused(r)
        assert int(r.headers["retry-after"]) > 60  # an hour's window
        refused(await ann.http.post("/conversations", json={"kind": "direct",
                                                            "member_ids": [cat.id]}))
        # asking for a direct conversation that exists creates nothing: not refused
        again = await ann.post("/conversations", direct, expect=200)
        assert again["conversation"]["id"] == cid
        assert len((await ann.get("/conversations"))["conversations"]) == 2
        await group(cat, ann)  # cat's own count


async def test_saving_marking_unread_and_forwarding_are_limited(make_server: MakeServer) -> None:
    """Saving, unsaving and marking unread (an event to the caller's devices each) count
    against rate_edit_per_user; a forward is a send (rate_send_per_user). What is
    refused changes nothing."""
    async with people(make_server, "ann", "ben", rate_edit_per_user=3, rate_send_per_user=3) as (
        _server,
        (ann, ben),
    ):
        cid = await group(ann, ben)
        for i in range(2):
            await ann.send(cid, f"m{i}")
        await ben.post(f"/conversations/{cid}/read", {"seq": 2})
        await ben.call("PUT", f"/conversations/{cid}/messages/1/saved", expect=200)
        await ben.call("DELETE", f"/conversations/{cid}/messages/1/saved", expect=204)
        await ben.post(f"/conversations/{cid}/unread", {"from_seq": 2})
        refused(await ben.http.put(f"/conversations/{cid}/messages/2/saved"))
        refused(await ben.http.post(f"/conversations/{cid}/unread", json={"from_seq": 1}))
        assert (await ben.get("/saved"))["saved"] == []
        listed = (await ben.get("/conversations"))["conversations"]
        assert next(c for c in listed if c["id"] == cid)["read_seq"] == 1
        # ann's third send is a forward; the fourth is refused and makes no message
        body = {"conversation_id": cid, "client_msg_id": uuid.uuid4().hex}
        await ann.post(f"/conversations/{cid}/messages/1/forward", body, expect=201)
        body = {"conversation_id": cid, "client_msg_id": uuid.uuid4().hex}
        refused(await ann.http.post(f"/conversations/{cid}/messages/1/forward", json=body))
        messages = (await ben.get(f"/conversations/{cid}/messages"))["messages"]
        assert [m["seq"] for m in messages] == [1, 2, 3]
