"""History for new members (issue 17), live: a member added later to a conversation that
does not share its history reads from their `first_seq`, and no event about an earlier
message reaches them either (an edit carries the new body): not over the WebSocket, not
on a resume from an earlier position, not from GET /sync; those about later messages
do. A member who left and was added back starts a new range, and is held to it the same
way. Both backends (SQLite with the in-process bus; PostgreSQL with Redis between the
gateway and the services)."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.helpers import Api, Ws

SECRET = "edited-before-you-came kumquat"


def about(event: dict[str, Any]) -> int | None:
    """The seq of the message an event is about (None: a new message, or no message)."""
    kind = event["kind"]
    if kind in ("message_edited", "message_deleted"):
        return int(event["message"]["seq"])
    if kind in ("reaction", "message_pinned", "message_unpinned", "file_updated"):
        return int(event["seq"])
    if kind == "thread_updated":
        return int(event["thread"]["root_seq"])
    return None


async def until_done(ws: Ws, done_seq: int) -> list[dict[str, Any]]:
    """Every event frame the connection gets up to the `message` event of `done_seq`."""
    frames = []
    while True:
        frame = await ws.event()
        frames.append(frame)
        event = frame["event"]
        if event["kind"] == "message" and event["message"]["seq"] == done_seq:
            return frames


async def sync_all(api: Api, since: str, limit: int) -> list[dict[str, Any]]:
    """GET /sync from `since`, page by page, to the end."""
    out: list[dict[str, Any]] = []
    while True:
        page = await api.get("/sync", params={"since": since, "limit": limit})
        out += page["events"]
        since = page["next"]
        if not page["more"]:
            return out


def trace(frames: list[dict[str, Any]]) -> list[tuple[str, str, int | None]]:
    return [(f["position"], f["event"]["kind"], about(f["event"])) for f in frames]


async def test_events_about_messages_before_a_later_members_range_do_not_reach_them(
    world: World,
) -> None:
    own, early, late, back = await world.users("hev-own", "hev-early", "hev-late", "hev-back")
    cid = await world.conversation(own, early, back)  # a group: history not shared
    await own.send(cid, "one")
    await own.send(cid, "two")
    # back leaves; back and late are added: both read from seq 3 (back's new range)
    await back.call("DELETE", f"/conversations/{cid}/members/{back.id}", expect=204)
    await own.post(f"/conversations/{cid}/members", {"user_ids": [late.id, back.id]})
    live = {api.id: await world.ws(api) for api in (early, late, back)}
    since = live[late.id].ready["position"]  # where late's and back's resumes start
    await own.send(cid, "three")
    # about messages 1 and 2, from before late and back were added
    base = f"/conversations/{cid}/messages"
    await own.call("PATCH", f"{base}/1", json={"body": SECRET}, expect=200)
    await early.call("PUT", f"{base}/1/reactions/👍", expect=200)
    await own.call("PUT", f"/conversations/{cid}/pins/1", expect=200)
    await own.call("DELETE", f"/conversations/{cid}/pins/1", expect=204)
    await early.send(cid, "in the old thread", thread_root_seq=1)  # seq 4
    await own.call("PUT", f"/conversations/{cid}/pins/2", expect=200)
    await own.call("DELETE", f"{base}/2", expect=200)  # recalled (and so unpinned)
    # the same about message 3, sent after they came
    await own.call("PATCH", f"{base}/3", json={"body": "three, edited"}, expect=200)
    await early.call("PUT", f"{base}/3/reactions/👍", expect=200)
    await own.call("PUT", f"/conversations/{cid}/pins/3", expect=200)
    await early.send(cid, "in the new thread", thread_root_seq=3)  # seq 5
    await own.call("DELETE", f"{base}/3", expect=200)
    done = await own.send(cid, "done")  # seq 6

    everything = trace(await until_done(live[early.id], done["seq"]))
    kinds_about = {(kind, seq) for _, kind, seq in everything}
    for old in (
        ("message_edited", 1), ("reaction", 1), ("message_pinned", 1),
        ("message_unpinned", 1), ("thread_updated", 1), ("message_deleted", 2),
        ("message_unpinned", 2),
    ):
        assert old in kinds_about, old  # early, a first member, gets all of it
    for new in (
        ("message_edited", 3), ("reaction", 3), ("message_pinned", 3), ("thread_updated", 3),
        ("message_deleted", 3), ("message_unpinned", 3),
    ):
        assert new in kinds_about, new
    # late and back: exactly what early got, less what is about messages 1 and 2
    expected = [t for t in everything if t[2] is None or t[2] >= 3]
    assert len(expected) < len(everything)
    assert [seq for _, kind, seq in expected if kind == "message"] == [None] * 4  # 3, 4, 5, 6
    for api in (late, back):
        frames = await until_done(live[api.id], done["seq"])
        assert trace(frames) == expected, api.id
        assert SECRET not in str(frames)
        # ... and the same on a resume from before all of it, and from GET /sync (in
        # pages of one: a page of events they may not see moves on, never stalls)
        resumed = await world.ws(api, since=since)
        assert trace(await until_done(resumed, done["seq"])) == expected
        for limit in (1, 100):
            synced = await sync_all(api, since, limit)
            assert trace(synced) == expected
            assert SECRET not in str(synced)
        # what they read agrees: history from seq 3 (back too: a new range)
        page = (await api.get(f"/conversations/{cid}/messages"))["messages"]
        assert [m["seq"] for m in page] == [3, 4, 5, 6]
    # the member_added event carried the first seq they read from
    added = [
        e for e in await sync_all(early, "0", 100) if e["event"]["kind"] == "member_added"
    ]
    assert [(set(e["event"]["user_ids"]), e["event"]["first_seq"]) for e in added] == [
        ({late.id, back.id}, 3)
    ]


async def test_a_shared_history_hides_nothing_from_later_members(world: World) -> None:
    """A public channel shares its history: a member who joins later reads from seq 1
    (their member_added says so) and gets the events about every message, as the first
    members do."""
    own, joiner = await world.users("hev-own2", "hev-join")
    body = {"kind": "channel", "name": "hev-public", "member_ids": []}
    cid = (await own.post("/conversations", body, expect=201))["conversation"]["id"]
    await own.send(cid, "one")
    await joiner.post(f"/conversations/{cid}/members", {"user_ids": [joiner.id]})
    ws = await world.ws(joiner)
    joined = [e["event"] for e in await sync_all(joiner, "0", 100)]
    assert [(e["kind"], e["first_seq"]) for e in joined] == [("member_added", 1)]
    await own.call("PATCH", f"/conversations/{cid}/messages/1", json={"body": "one!"}, expect=200)
    await own.call("PUT", f"/conversations/{cid}/messages/1/reactions/🎉", expect=200)
    done = await own.send(cid, "done")
    got = trace(await until_done(ws, done["seq"]))
    assert [(kind, seq) for _, kind, seq in got] == [
        ("message_edited", 1), ("reaction", 1), ("message", None)
    ]
