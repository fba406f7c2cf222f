"""What a conversation's `unread` and `unread_mentions` count (issue 17), both backends:
thread replies that were not also sent to the conversation are their threads' unread,
never the conversation's (GET /conversations, POST …/read and …/unread, the `read`
frame's ack, `read` events); `@all` / `@channel` / `@here` count as mentions of every
member but their sender, except where the member's level is `none` or the conversation
is muted; stale counters + events == a fresh fetch."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.helpers import Api


async def listed(api: Api, cid: str) -> dict[str, Any]:
    convs = (await api.get("/conversations"))["conversations"]
    return next(c for c in convs if c["id"] == cid)


async def reply(api: Api, cid: str, root: int, body: str, also: bool = False) -> Any:
    return await api.send(cid, body, thread_root_seq=root, also_to_conversation=also)


async def test_thread_only_replies_are_not_the_conversations_unread(world: World) -> None:
    ann, ben = await world.users("ucann", "ucben")
    cid = await world.conversation(ann, ben)
    await ann.send(cid, "root")  # 1
    await ben.post(f"/conversations/{cid}/read", {"seq": 1})
    tab = await world.ws(ben)
    await reply(ann, cid, 1, "in the thread only")  # 2
    await reply(ann, cid, 1, "also to the conversation", also=True)  # 3
    await reply(ann, cid, 1, "in the thread again, @ucben")  # 4: a mention in the thread
    await ann.send(cid, "plain")  # 5
    view = await listed(ben, cid)
    assert (view["last_seq"], view["read_seq"], view["unread"]) == (5, 1, 2)  # 3 and 5
    assert view["unread_mentions"] == 0  # the thread's, not the conversation's
    # the thread counts its replies apart, the one also sent included
    await ben.call("PUT", f"/conversations/{cid}/threads/1/follow", expect=200)
    thread = (await ben.get(f"/conversations/{cid}/threads/1"))["thread"]
    assert (thread["following"], thread["unread"]) == (True, 3)

    # reading up to 3: what is left is message 5 only (4 is thread-only)
    assert await ben.post(f"/conversations/{cid}/read", {"seq": 3}) == {"read_seq": 3, "unread": 1}
    event = (await tab.event("read"))["event"]
    assert (event["seq"], event["unread"]) == (3, 1)
    assert (await listed(ben, cid))["unread"] == 1
    # the read frame's ack says the same
    ack = await tab.request({"type": "read", "conversation_id": cid, "seq": 4})
    assert (ack["type"], ack["read_seq"], ack["unread"]) == ("ack", 4, 1)
    # marked unread from 2 on: 3 and 5 again, not 2 and 4
    answer = await ben.post(f"/conversations/{cid}/unread", {"from_seq": 2})
    assert answer == {"read_seq": 1, "unread": 2}
    assert (await listed(ben, cid))["unread"] == 2
    # a recalled thread-only reply stays out of it; read everything: nothing unread
    await ann.call("DELETE", f"/conversations/{cid}/messages/2", expect=200)
    assert (await listed(ben, cid))["unread"] == 2
    assert await ben.post(f"/conversations/{cid}/read", {"seq": 5}) == {"read_seq": 5, "unread": 0}
    # a thread-only reply after everything read: still nothing unread in the conversation
    await reply(ann, cid, 1, "late in the thread")
    view = await listed(ben, cid)
    assert (view["last_seq"], view["unread"]) == (6, 0)
    # the sender's own count is 0 as before
    assert (await listed(ann, cid))["unread"] == 0


async def test_mentions_of_everyone_count_for_every_member_but_the_sender(world: World) -> None:
    ann, ben, cat = await world.users("umann", "umben", "umcat")
    made = await ann.post(
        "/conversations",
        {"kind": "channel", "name": "um-news", "member_ids": [ben.id, cat.id]},
        expect=201,
    )
    cid = made["conversation"]["id"]
    await ann.send(cid, "@all hello")  # 1
    await ben.send(cid, "@here anyone?")  # 2
    await cat.send(cid, "@channel and @umben")  # 3: both kinds, counted once
    await ann.send(cid, "a@all.com is no mention")  # 4
    await reply(ann, cid, 1, "@all in the thread only")  # 5: not the conversation's
    await reply(ann, cid, 1, "@all also to the conversation", also=True)  # 6
    root = await ann.send(cid, "edited later")  # 7
    await ann.send(cid, "@all recalled later")  # 8
    await ann.call(
        "PATCH", f"/conversations/{cid}/messages/{root['seq']}", json={"body": "@all now"}
    )
    await ann.call("DELETE", f"/conversations/{cid}/messages/8", expect=200)
    for api, want in ((ben, {1, 3, 6, 7}), (cat, {1, 2, 6, 7})):
        await api.post(f"/conversations/{cid}/unread", {"from_seq": 1})
        view = await listed(api, cid)
        assert view["unread_mentions"] == len(want), (api.user["username"], view)
    # ann's own @all never count for her; ben's and cat's do
    await ann.post(f"/conversations/{cid}/unread", {"from_seq": 1})
    assert (await listed(ann, cid))["unread_mentions"] == 2
    # ben at level none: only his name counts (message 3); muted: the same
    path = f"/conversations/{cid}/notifications"
    await ben.call("PUT", path, json={"level": "none"}, expect=200)
    assert (await listed(ben, cid))["unread_mentions"] == 1
    await ben.call("PUT", path, json={"level": "mentions", "muted": True}, expect=200)
    assert (await listed(ben, cid))["unread_mentions"] == 1
    await ben.call("PUT", path, json={"muted": False}, expect=200)
    assert (await listed(ben, cid))["unread_mentions"] == 4
    # reading moves it as any mention
    await ben.post(f"/conversations/{cid}/read", {"seq": 3})
    assert (await listed(ben, cid))["unread_mentions"] == 2

    # a group, the default level all: the same rule
    group = await world.conversation(ann, ben)
    await ann.send(group, "@all in the group")
    assert (await listed(ben, group))["unread_mentions"] == 1
    assert (await listed(ann, group))["unread_mentions"] == 0


async def test_stale_counters_plus_events_equal_a_fresh_fetch(world: World) -> None:
    ann, ben = await world.users("usfann", "usfben")
    cid = await world.conversation(ann, ben)
    await ann.send(cid, "root")
    await ben.post(f"/conversations/{cid}/read", {"seq": 1})

    async def fetch() -> tuple[int, int, int]:
        c = await listed(ben, cid)
        return c["last_seq"], c["read_seq"], c["unread"]

    ws = await world.ws(ben)
    since = ws.ready["position"]
    last, read, count = await fetch()
    await reply(ann, cid, 1, "t1")
    await ann.send(cid, "m")
    await reply(ann, cid, 1, "t2", also=True)
    await ben.post(f"/conversations/{cid}/read", {"seq": 2})
    await reply(ann, cid, 1, "t3")
    await ann.send(cid, "m2")
    await ben.post(f"/conversations/{cid}/unread", {"from_seq": 2})
    await reply(ann, cid, 1, "t4")
    page = await ben.get("/sync", params={"since": since, "limit": 1000})
    for item in page["events"]:
        ev = item["event"]
        if ev["kind"] == "message":
            m = ev["message"]
            last = max(last, m["seq"])
            if m.get("thread_root_seq") is None or m.get("also_to_conversation"):
                count += 1  # only what the main timeline shows is unread
        elif ev["kind"] == "read" and ev["user_id"] == ben.id:
            read, count = ev["seq"], ev["unread"]
    assert (last, read, count) == await fetch() == (7, 1, 3)
