"""Archived conversations (issues 17 and 19): read-only, hidden from lists by default,
an event on the stream, audited; owners and org admins archive and unarchive. And the
admin's list of every conversation with its members. Both backends."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.helpers import Api


async def archive(api: Api, cid: str, expect: int = 200) -> Any:
    return await api.call("PUT", f"/conversations/{cid}/archive", expect=expect)


async def unarchive(api: Api, cid: str, expect: int = 200) -> Any:
    return await api.call("DELETE", f"/conversations/{cid}/archive", expect=expect)


async def listed(api: Api, include_archived: bool = False) -> list[str]:
    params = {"include_archived": "true"} if include_archived else {}
    data = await api.get("/conversations", params=params)
    return [c["id"] for c in data["conversations"]]


def refused(answer: Any, cid: str) -> None:
    assert answer["error"]["code"] == "forbidden", answer
    assert "archived" in answer["error"]["message"]
    assert answer["error"]["details"] == {"conversation_id": cid}


async def test_an_archived_conversation_is_read_only_hidden_and_live(world: World) -> None:
    owner, mem, extra = await world.users("arcowner", "arcmem", "arcextra")
    cid = await world.conversation(owner, mem)
    first = await mem.send(cid, "before")
    await owner.call("PUT", f"/conversations/{cid}/messages/{first['seq']}/reactions/👍")
    ws = await world.ws(mem)

    done = (await archive(owner, cid))["conversation"]
    assert done["archived_at"] is not None
    event = (await ws.event("conversation_updated"))["event"]
    assert event["conversation"]["archived_at"] == done["archived_at"]
    assert event["by"] == owner.id
    # stale state + its event == a fresh fetch
    fresh = (await mem.get(f"/conversations/{cid}"))["conversation"]
    assert {k: fresh[k] for k in event["conversation"]} == event["conversation"]

    # read-only: every change is refused with forbidden and the conversation's id
    body = {"client_msg_id": "after-archive", "body": "after"}
    refused(await mem.post(f"/conversations/{cid}/messages", body, expect=403), cid)
    reply = await ws.send_message(cid, "by frame")
    assert reply["type"] == "error" and reply["error"]["code"] == "forbidden", reply
    seq = first["seq"]
    refused(
        await mem.call(
            "PATCH", f"/conversations/{cid}/messages/{seq}", json={"body": "x"}, expect=403
        ),
        cid,
    )
    refused(await mem.call("DELETE", f"/conversations/{cid}/messages/{seq}", expect=403), cid)
    refused(
        await mem.call("PUT", f"/conversations/{cid}/messages/{seq}/reactions/🎉", expect=403),
        cid,
    )
    refused(
        await owner.post(f"/conversations/{cid}/members", {"user_ids": [extra.id]}, expect=403),
        cid,
    )
    refused(await mem.call("DELETE", f"/conversations/{cid}/members/{mem.id}", expect=403), cid)
    refused(await owner.call("PATCH", f"/conversations/{cid}", json={"name": "N"}, expect=403), cid)
    # ... but it can still be read, and read positions still move
    history = await mem.get(f"/conversations/{cid}/messages")
    assert [m["body"] for m in history["messages"]] == ["before"]
    await mem.post(f"/conversations/{cid}/read", {"seq": 1})

    # hidden from the members' lists unless asked for
    assert cid not in await listed(mem)
    assert cid in await listed(mem, include_archived=True)
    # archiving again changes nothing
    again = (await archive(owner, cid))["conversation"]
    assert again["archived_at"] == done["archived_at"]

    undone = (await unarchive(owner, cid))["conversation"]
    assert undone["archived_at"] is None
    assert (await ws.event("conversation_updated"))["event"]["conversation"]["archived_at"] is None
    assert cid in await listed(mem)
    assert (await mem.send(cid, "after"))["seq"] == 2

    admin = await world.admin()
    audit = (await admin.get("/audit", params={"limit": 500}))["entries"]
    mine = [e for e in audit if e["target_id"] == cid and "archived" in e["action"]]
    assert [e["action"] for e in mine] == ["conversation_archived", "conversation_unarchived"]
    assert all(e["actor_id"] == owner.id for e in mine)


async def test_who_may_archive(world: World) -> None:
    owner, mem, outsider = await world.users("whoowner", "whomem", "whoout")
    cid = await world.conversation(owner, mem)
    answer = await archive(mem, cid, expect=403)  # a member who is no owner
    assert answer["error"]["code"] == "forbidden"
    assert (await archive(outsider, cid, expect=404))["error"]["code"] == "not_found"
    assert (await archive(owner, "nosuchconversation", expect=404))["error"]["code"] == "not_found"
    # an org admin, not in the group
    admin = await world.admin()
    await archive(admin, cid)
    assert (await unarchive(mem, cid, expect=403))["error"]["code"] == "forbidden"
    await unarchive(owner, cid)


async def test_archived_channels_leave_channel_browsing(world: World) -> None:
    owner, other = await world.users("chanowner", "chanother")
    cid = await world.conversation(owner, kind="channel", name="archivable-room")
    found = await other.get("/channels", params={"query": "archivable"})
    assert [c["id"] for c in found["conversations"]] == [cid]
    await archive(owner, cid)
    found = await other.get("/channels", params={"query": "archivable"})
    assert found["conversations"] == []
    answer = await other.post(f"/conversations/{cid}/members", {"user_ids": [other.id]}, expect=403)
    refused(answer, cid)


async def test_the_admins_list_of_every_conversation(world: World) -> None:
    admin = await world.admin()
    a, b = await world.users("lista", "listb")
    group = await world.conversation(a, b, name="Zephyr group")
    channel = await world.conversation(a, kind="channel", name="zephyr-chan")
    direct = await world.conversation(a, b, kind="direct", name=None)
    await archive(a, channel)

    everything = await admin.get("/admin/conversations", params={"limit": 200})
    ids = [c["id"] for c in everything["conversations"]]
    assert {group, channel, direct} <= set(ids)  # direct and groups the admin is not in
    assert everything["total"] == len(ids) and everything["next_offset"] is None

    named = await admin.get("/admin/conversations", params={"query": "ZEPHYR"})
    assert {c["id"] for c in named["conversations"]} == {group, channel}
    only = await admin.get("/admin/conversations", params={"query": "zephyr", "kind": "channel"})
    assert [c["id"] for c in only["conversations"]] == [channel]
    gone = await admin.get("/admin/conversations", params={"archived": "true"})
    assert [c["id"] for c in gone["conversations"]] == [channel]
    live = await admin.get("/admin/conversations", params={"query": "zephyr", "archived": "false"})
    assert [c["id"] for c in live["conversations"]] == [group]

    # pages: newest activity first, next_offset until the last
    first = await admin.get("/admin/conversations", params={"limit": 1})
    assert len(first["conversations"]) == 1 and first["next_offset"] == 1
    second = await admin.get("/admin/conversations", params={"limit": 1, "offset": 1})
    assert second["conversations"][0]["id"] != first["conversations"][0]["id"]

    members = await admin.get(f"/admin/conversations/{direct}/members")
    assert members["conversation"]["id"] == direct
    assert {m["user_id"] for m in members["members"]} == {a.id, b.id}

    # members and owners of conversations do not get the admin's view
    assert (await a.get("/admin/conversations", expect=403))["error"]["code"] == "forbidden"
    answer = await a.get(f"/admin/conversations/{group}/members", expect=403)
    assert answer["error"]["code"] == "forbidden"


async def test_hostile_admin_list_inputs(world: World) -> None:
    admin = await world.admin()
    for params in (
        {"limit": 0},
        {"limit": 201},
        {"limit": "many"},
        {"offset": -1},
        {"offset": 10**12},
        {"kind": "secret"},
        {"archived": "perhaps"},
        {"query": "x" * 81},
    ):
        answer = await admin.get("/admin/conversations", params=params, expect=400)
        assert answer["error"]["code"] == "invalid_request", (params, answer)
    answer = await admin.get("/admin/conversations", params={"query": "%_"})
    assert answer["conversations"] == []  # LIKE wildcards are plain characters
    answer = await admin.get("/admin/conversations/nosuchconversation/members", expect=404)
    assert answer["error"]["code"] == "not_found"
    answer = await admin.get("/admin/conversations/" + "x" * 65 + "/members", expect=400)
    assert answer["error"]["code"] == "invalid_request"
