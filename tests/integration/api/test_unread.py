"""Mark unread (issue 17): POST /conversations/{cid}/unread moves the caller's read
position back (to the message before `from_seq`, or before the last message), never
forward; the same `read` event as a forward move reaches the caller's other devices
(and in groups the other members: receipts as they are); unread and mention counts
follow; stale state + events == a fresh fetch; hostile input; both backends."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.helpers import Api


async def unread(api: Api, cid: str, expect: int | None = 200, **body: Any) -> Any:
    return await api.call("POST", f"/conversations/{cid}/unread", json=body, expect=expect)


async def listed(api: Api, cid: str) -> dict[str, Any]:
    convs = (await api.get("/conversations"))["conversations"]
    return next(c for c in convs if c["id"] == cid)


def code(answer: Any) -> str:
    return str(answer["error"]["code"])


async def test_marking_unread_moves_the_read_position_back_and_tells_my_devices(
    world: World,
) -> None:
    ann, ben, out = await world.users("urann", "urben", "urout")
    cid = await world.conversation(ann, ben)
    for i in range(5):
        await ann.send(cid, f"m{i + 1}" if i != 2 else "hey @urben")
    await ben.post(f"/conversations/{cid}/read", {"seq": 5})
    assert (await listed(ben, cid))["unread"] == 0
    tab, ws_ann = await world.ws(ben), await world.ws(ann)

    assert await unread(ben, cid) == {"read_seq": 4, "unread": 1}  # the last message
    event = (await tab.event("read"))["event"]
    assert (event["user_id"], event["seq"], event["unread"]) == (ben.id, 4, 1)
    receipt = (await ws_ann.event("read"))["event"]  # a group: read receipts as they are
    assert (receipt["user_id"], receipt["seq"]) == (ben.id, 4)
    view = await listed(ben, cid)
    assert (view["read_seq"], view["unread"], view["unread_mentions"]) == (4, 1, 0)

    assert await unread(ben, cid, from_seq=2) == {"read_seq": 1, "unread": 4}
    assert (await tab.event("read"))["event"]["seq"] == 1
    view = await listed(ben, cid)
    assert (view["read_seq"], view["unread"], view["unread_mentions"]) == (1, 4, 1)
    # already unread from there: never forward, nothing sent
    assert await unread(ben, cid, from_seq=4) == {"read_seq": 1, "unread": 4}
    members = (await ann.get(f"/conversations/{cid}"))["conversation"]["members"]
    assert {m["user_id"]: m["read_seq"] for m in members}[ben.id] == 1
    # reading moves it forward again
    await ben.post(f"/conversations/{cid}/read", {"seq": 5})
    assert (await tab.event("read"))["event"]["seq"] == 5
    # the next read event is that one: the no-op above sent nothing
    assert (await ws_ann.event("read"))["event"]["seq"] == 1
    assert (await ws_ann.event("read"))["event"]["seq"] == 5

    # outsiders, a message that does not exist, hostile bodies
    assert code(await unread(out, cid, expect=404)) == "not_found"
    assert code(await unread(ben, cid, expect=404, from_seq=6)) == "not_found"
    for bad in (0, -1, "2", 1.5, 2**63, None, True):
        answer = await ben.call(
            "POST", f"/conversations/{cid}/unread", json={"from_seq": bad}, expect=None
        )
        if bad is None:  # explicit null: the last message, as absent
            assert answer == {"read_seq": 4, "unread": 1}
            continue
        assert code(answer) == "invalid_request", bad
    answer = await ben.call(
        "POST", f"/conversations/{cid}/unread", json={"seq": 2}, expect=400
    )  # an unknown field
    assert code(answer) == "invalid_request"
    r = await ben.http.post(f"/conversations/{cid}/unread", content=b"{nope")
    assert r.status_code == 400
    # without a body: the last message
    r = await ben.http.post(f"/conversations/{cid}/unread")
    assert r.status_code == 200 and r.json() == {"read_seq": 4, "unread": 1}


async def test_a_channel_tells_only_my_devices_and_history_rules_hold(world: World) -> None:
    ann, ben, kim = await world.users("urcann", "urcben", "urckim")
    made = await ann.post(
        "/conversations",
        {"kind": "channel", "name": "ur-news", "member_ids": [ben.id]},
        expect=201,
    )
    cid = made["conversation"]["id"]
    assert code(await unread(ben, cid, expect=404)) == "not_found"  # no message yet
    for i in range(3):
        await ann.send(cid, f"n{i}")
    await ben.post(f"/conversations/{cid}/read", {"seq": 3})
    ws_ann = await world.ws(ann)
    since = ws_ann.ready["position"]
    assert await unread(ben, cid, from_seq=1) == {"read_seq": 0, "unread": 3}
    page = await ann.get("/sync", params={"since": since})
    assert [e["event"]["kind"] for e in page["events"]] == []  # a channel: no receipts
    mine = await ben.get("/sync", params={"since": since})
    assert [(e["event"]["kind"], e["event"]["seq"]) for e in mine["events"]] == [("read", 0)]

    # a group that shares no history with later members: kim cannot mark before her time
    made = await ann.post(
        "/conversations", {"kind": "group", "name": "late", "shared_history": False}, expect=201
    )
    late = made["conversation"]["id"]
    await ann.send(late, "before kim")
    await ann.post(f"/conversations/{late}/members", {"user_ids": [kim.id]})
    assert code(await unread(kim, late, expect=404)) == "not_found"  # nothing of hers yet
    await ann.send(late, "after kim")
    assert code(await unread(kim, late, expect=404, from_seq=1)) == "not_found"
    await kim.post(f"/conversations/{late}/read", {"seq": 2})
    assert await unread(kim, late) == {"read_seq": 1, "unread": 1}
    # a member who left marks nothing
    await ben.call("DELETE", f"/conversations/{cid}/members/{ben.id}", expect=204)
    assert code(await unread(ben, cid, expect=404)) == "not_found"


async def test_stale_counters_plus_events_equal_a_fresh_fetch(world: World) -> None:
    ann, ben = await world.users("ursann", "ursben")
    one = await world.conversation(ann, ben)
    two = await world.conversation(ann, ben, kind="channel", name="urs-chan")
    for cid in (one, two):
        for i in range(3):
            await ann.send(cid, f"x{i}")
        await ben.post(f"/conversations/{cid}/read", {"seq": 3})

    async def fetch() -> dict[str, tuple[int, int, int]]:
        convs = (await ben.get("/conversations"))["conversations"]
        return {c["id"]: (c["last_seq"], c["read_seq"], c["unread"]) for c in convs}

    ws = await world.ws(ben)
    since = ws.ready["position"]
    held = await fetch()
    await unread(ben, one, from_seq=2)
    await ann.send(one, "later")
    await unread(ben, two)
    await ben.post(f"/conversations/{one}/read", {"seq": 3})
    await ann.send(two, "later too")
    await unread(ben, one)  # back to before 4
    page = await ben.get("/sync", params={"since": since, "limit": 1000})
    for item in page["events"]:
        ev = item["event"]
        last, read, _ = held[ev["conversation_id"]]
        if ev["kind"] == "message":
            last = max(last, ev["message"]["seq"])
        elif ev["kind"] == "read" and ev["user_id"] == ben.id:
            read = ev["seq"]
        held[ev["conversation_id"]] = (last, read, last - read)
    assert held == await fetch()
    assert held[one] == (4, 3, 1) and held[two] == (4, 2, 2)
