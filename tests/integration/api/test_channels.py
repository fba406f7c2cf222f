"""Conversation roles, private and announcement channels, history for new members
(issue 17, "Conversations and channels"), over REST and the WebSocket, both backends.
What each role may do is the table in docs/protocol.md ("Conversation roles"); these
tests walk it role by role."""

from __future__ import annotations

from typing import Any

from tests.conftest import AppServer, World
from tests.helpers import Api


async def set_role(api: Api, cid: str, uid: str, role: str, expect: int = 200) -> Any:
    return await api.call(
        "PUT", f"/conversations/{cid}/members/{uid}/role", json={"role": role}, expect=expect
    )


async def patch(api: Api, cid: str, expect: int = 200, **body: Any) -> Any:
    return await api.call("PATCH", f"/conversations/{cid}", json=body, expect=expect)


async def channel(owner: Api, *members: Api, name: str, **settings: Any) -> str:
    body = {"kind": "channel", "name": name, "member_ids": [m.id for m in members], **settings}
    return str((await owner.post("/conversations", body, expect=201))["conversation"]["id"])


def code(answer: Any) -> str:
    return str(answer["error"]["code"])


async def roles(api: Api, cid: str) -> dict[str, str]:
    data = (await api.get(f"/conversations/{cid}"))["conversation"]
    return {m["user_id"]: m["role"] for m in data["members"]}


async def browse(api: Api, query: str) -> list[str]:
    return [c["id"] for c in (await api.get("/channels", params={"query": query}))["conversations"]]


# --- roles -------------------------------------------------------------------------


async def test_roles_owner_moderator_member(world: World) -> None:
    own, mod, mem, other = await world.users("rown", "rmod", "rmem", "rother")
    cid = await channel(own, mod, mem, other, name="roles-room")
    ws = await world.ws(mem)

    answer = await set_role(own, cid, mod.id, "moderator")
    assert answer["member"]["user_id"] == mod.id and answer["member"]["role"] == "moderator"
    event = (await ws.event("member_role_changed"))["event"]
    assert (event["conversation_id"], event["user_id"], event["role"], event["by"]) == (
        cid,
        mod.id,
        "moderator",
        own.id,
    )
    assert await roles(mem, cid) == {
        own.id: "owner",
        mod.id: "moderator",
        mem.id: "member",
        other.id: "member",
    }
    # the same role again: nothing changes, no event
    await set_role(own, cid, mod.id, "moderator")

    # a moderator renames, removes members, recalls others' messages ...
    await patch(mod, cid, name="renamed by mod")
    sent = await mem.send(cid, "by a member")
    await mod.call("DELETE", f"/conversations/{cid}/messages/{sent['seq']}", expect=200)
    await mod.call("DELETE", f"/conversations/{cid}/members/{other.id}", expect=204)
    # ... but neither gives roles nor changes settings nor removes owners and moderators
    assert code(await set_role(mod, cid, mem.id, "moderator", expect=403)) == "forbidden"
    assert code(await patch(mod, cid, announcement=True, expect=403)) == "forbidden"
    removed = await mod.call("DELETE", f"/conversations/{cid}/members/{own.id}", expect=403)
    assert code(removed) == "forbidden"
    # a member does none of it
    assert code(await patch(mem, cid, name="nope", expect=403)) == "forbidden"
    assert code(await set_role(mem, cid, mem.id, "owner", expect=403)) == "forbidden"
    mine = await mod.send(cid, "by the moderator")
    recall = await mem.call("DELETE", f"/conversations/{cid}/messages/{mine['seq']}", expect=403)
    assert code(recall) == "forbidden"
    # a moderator who is demoted loses it at once
    await set_role(own, cid, mod.id, "member")
    assert code(await patch(mod, cid, name="again", expect=403)) == "forbidden"

    # the last owner stays one until another is named
    last = await set_role(own, cid, own.id, "member", expect=400)
    assert code(last) == "invalid_operation"
    await set_role(own, cid, mem.id, "owner")
    await set_role(own, cid, own.id, "moderator")  # now allowed: mem owns it
    assert (await roles(mem, cid))[own.id] == "moderator"

    admin = await world.admin()
    audit = (await admin.get("/audit", params={"limit": 500}))["entries"]
    changes = [e for e in audit if e["action"] == "member_role_changed" and e["target_id"] == cid]
    assert [(e["details"]["user_id"], e["details"]["role"]) for e in changes] == [
        (mod.id, "moderator"),
        (mod.id, "member"),
        (mem.id, "owner"),
        (own.id, "moderator"),
    ]
    assert changes[0]["details"]["was"] == "member" and changes[0]["actor_id"] == own.id


async def test_role_changes_refuse_hostile_input(world: World) -> None:
    own, mem, outsider = await world.users("hown", "hmem", "hout")
    cid = await world.conversation(own, mem)  # a group
    path = f"/conversations/{cid}/members/{mem.id}/role"
    for body in ({"role": "emperor"}, {"role": ""}, {}, {"role": 1}, {"role": "owner", "x": 1}):
        answer = await own.call("PUT", path, json=body, expect=400)
        assert code(answer) == "invalid_request", body
    garbage = await own.call(
        "PUT", path, content=b"x" * 10, headers={"content-type": "application/json"}, expect=400
    )
    assert code(garbage) == "invalid_request"
    # what the caller may not see, and who is no member: not_found
    assert code(await set_role(outsider, cid, mem.id, "owner", expect=404)) == "not_found"
    assert code(await set_role(own, "no-such-conversation", mem.id, "owner", expect=404)) == (
        "not_found"
    )
    assert code(await set_role(own, cid, outsider.id, "moderator", expect=404)) == "not_found"
    assert code(await set_role(own, cid, "x" * 5000, "moderator", expect=404)) == "not_found"
    # a direct conversation has no roles
    direct = await world.conversation(own, mem, kind="direct")
    answer = await set_role(own, direct, mem.id, "moderator", expect=400)
    assert code(answer) == "invalid_operation"
    # an org admin (not a member) manages a channel's roles, not a group's
    admin = await world.admin()
    assert code(await set_role(admin, cid, mem.id, "moderator", expect=404)) == "not_found"
    room = await channel(own, mem, name="admin-roles")
    await set_role(admin, room, mem.id, "moderator")
    assert (await roles(own, room))[mem.id] == "moderator"


# --- private channels --------------------------------------------------------------


async def test_private_channels_are_invite_only_and_unlisted(
    world: World, server: AppServer
) -> None:
    own, mod, mem, outsider = await world.users("pown", "pmod", "pmem", "pout")
    cid = await channel(own, mod, name="secret-room", private=True)
    created = (await own.get(f"/conversations/{cid}"))["conversation"]
    assert created["private"] is True and created["shared_history"] is False
    public = await channel(own, name="secret-public")

    # not listed for non-members; listed for members
    assert await browse(outsider, "secret") == [public]
    assert set(await browse(mod, "secret")) == {cid, public}
    # invisible to non-members: the same answer as for one that does not exist
    for path in (f"/conversations/{cid}", f"/conversations/{cid}/messages"):
        assert code(await outsider.get(path, expect=404)) == "not_found"
    join = await outsider.post(f"/conversations/{cid}/members", {"user_ids": [outsider.id]}, 404)
    assert code(join) == "not_found"
    send = {"client_msg_id": "x1", "body": "let me in"}
    assert code(await outsider.post(f"/conversations/{cid}/messages", send, expect=404)) == (
        "not_found"
    )
    # invite-only: a plain member does not add people; moderators and owners do
    answer = await mod.post(f"/conversations/{cid}/members", {"user_ids": [mem.id]}, expect=403)
    assert code(answer) == "forbidden" and "private" in answer["error"]["message"]
    await set_role(own, cid, mod.id, "moderator")
    await mod.post(f"/conversations/{cid}/members", {"user_ids": [mem.id]})
    # not searchable by non-members
    await own.send(cid, "quarterly zanzibar figures")
    await server.search_indexed()
    hits = (await mem.get("/search", params={"q": "zanzibar"}))["results"]
    assert [h["message"]["conversation_id"] for h in hits] == [cid]
    assert (await outsider.get("/search", params={"q": "zanzibar"}))["results"] == []
    scoped = {"q": "zanzibar", "conversation_id": cid}
    assert code(await outsider.get("/search", params=scoped, expect=404)) == "not_found"
    named = await outsider.get("/search", params={"q": "in:secret-room zanzibar"}, expect=400)
    assert code(named) == "invalid_request"  # "unknown conversation", as for none at all

    # a public channel made private leaves browsing; a group is never public
    await patch(own, public, private=True)
    assert await browse(outsider, "secret") == []
    await patch(own, public, private=False)
    assert await browse(outsider, "secret") == [public]
    group = await world.conversation(own, mem)
    assert code(await patch(own, group, private=False, expect=400)) == "invalid_request"
    made = await own.post(
        "/conversations", {"kind": "group", "name": "g", "private": False}, expect=400
    )
    assert code(made) == "invalid_request"
    assert code(await patch(mod, cid, private=False, expect=403)) == "forbidden"  # moderator
    bad = await own.call("PATCH", f"/conversations/{cid}", json={"private": "yes"}, expect=400)
    assert code(bad) == "invalid_request"

    admin = await world.admin()
    audit = (await admin.get("/audit", params={"limit": 500}))["entries"]
    settings = [e for e in audit if e["action"] == "conversation_settings_changed"]
    assert [e["details"].get("private") for e in settings if e["target_id"] == public] == [
        True,
        False,
    ]


# --- announcement channels -----------------------------------------------------------


async def test_announcement_channels_only_owners_and_moderators_post(world: World) -> None:
    own, mod, mem = await world.users("aown", "amod", "amem")
    cid = await channel(own, mod, mem, name="news", announcement=True)
    await set_role(own, cid, mod.id, "moderator")
    first = await own.send(cid, "welcome")
    assert first["seq"] == 1
    assert (await mod.send(cid, "from the moderator"))["seq"] == 2

    body = {"client_msg_id": "m-1", "body": "may I?"}
    answer = await mem.post(f"/conversations/{cid}/messages", body, expect=403)
    assert code(answer) == "forbidden"
    assert "announcement" in answer["error"]["message"]
    ws = await world.ws(mem)
    reply = await ws.send_message(cid, "by frame")
    assert reply["type"] == "error" and reply["error"]["code"] == "forbidden", reply
    # nothing was written: the next message takes seq 3
    # everyone reacts, and replies in a thread (but not also into the channel)
    await mem.call("PUT", f"/conversations/{cid}/messages/1/reactions/👍", expect=200)
    also = {"client_msg_id": "m-2", "body": "me too", "thread_root_seq": 1,
            "also_to_conversation": True}
    answer = await mem.post(f"/conversations/{cid}/messages", also, expect=403)
    assert code(answer) == "forbidden"
    thread = {"client_msg_id": "m-3", "body": "thanks!", "thread_root_seq": 1}
    reply_msg = (await mem.post(f"/conversations/{cid}/messages", thread, expect=201))["message"]
    assert (reply_msg["seq"], reply_msg["thread_root_seq"]) == (3, 1)
    # an org admin posts (admins manage channels)
    admin = await world.admin()
    await admin.post(f"/conversations/{cid}/members", {"user_ids": [admin.id]})
    assert (await admin.send(cid, "from an admin"))["seq"] == 4
    # turned off by the owner (not a moderator), everyone posts again
    assert code(await patch(mod, cid, announcement=False, expect=403)) == "forbidden"
    updated = (await patch(own, cid, announcement=False))["conversation"]
    assert updated["announcement"] is False
    event = (await ws.event("conversation_updated"))["event"]
    assert event["conversation"]["announcement"] is False
    assert (await mem.send(cid, "now I may"))["seq"] == 5
    # groups can be announcement conversations too; direct ones cannot
    group = (
        await own.post(
            "/conversations",
            {"kind": "group", "name": "ann group", "member_ids": [mem.id], "announcement": True},
            expect=201,
        )
    )["conversation"]
    refused = await mem.post(
        f"/conversations/{group['id']}/messages", {"client_msg_id": "g1", "body": "x"}, 403
    )
    assert code(refused) == "forbidden"
    direct = await own.post(
        "/conversations",
        {"kind": "direct", "member_ids": [mem.id], "announcement": True},
        expect=400,
    )
    assert code(direct) == "invalid_request"


# --- history for new members ----------------------------------------------------------


async def test_history_for_members_added_later(world: World, server: AppServer) -> None:
    own, early, late, joiner = await world.users("hown2", "hearly", "hlate", "hjoin")
    private = await channel(own, early, name="hist-private", private=True)
    public = await channel(own, early, name="hist-public")
    group = await world.conversation(own, early)
    for cid in (private, public, group):
        await own.send(cid, "before-they-came marmalade")
    await own.post(f"/conversations/{private}/members", {"user_ids": [late.id]})
    await own.post(f"/conversations/{group}/members", {"user_ids": [late.id]})
    await joiner.post(f"/conversations/{public}/members", {"user_ids": [joiner.id]})
    for cid in (private, public, group):
        await own.send(cid, "after-they-came marmalade")

    async def bodies(api: Api, cid: str) -> list[str]:
        return [m["body"] for m in (await api.get(f"/conversations/{cid}/messages"))["messages"]]

    # private channels and groups: from when they joined; public channels: everything
    assert await bodies(late, private) == ["after-they-came marmalade"]
    assert await bodies(late, group) == ["after-they-came marmalade"]
    assert await bodies(joiner, public) == [
        "before-they-came marmalade",
        "after-they-came marmalade",
    ]
    assert len(await bodies(early, private)) == 2  # the first members see it all
    # pages before the first seq they may read are empty, not an error
    page = await late.get(f"/conversations/{private}/messages", params={"before_seq": 2})
    assert page["messages"] == [] and page["has_more"] is False
    # what they may not read cannot be reacted to, edited or recalled either
    react = await late.call("PUT", f"/conversations/{private}/messages/1/reactions/👍", expect=404)
    assert code(react) == "not_found"
    # nor found by search
    await server.search_indexed()
    hits = (await late.get("/search", params={"q": "marmalade"}))["results"]
    assert sorted((h["message"]["conversation_id"], h["message"]["seq"]) for h in hits) == sorted(
        [(private, 2), (group, 2)]
    )

    # the setting, changed by the owner, applies to members added after the change
    updated = (await patch(own, private, shared_history=True))["conversation"]
    assert updated["shared_history"] is True
    newcomer = await world.user("hnew")
    await own.post(f"/conversations/{private}/members", {"user_ids": [newcomer.id]})
    assert len(await bodies(newcomer, private)) == 2
    assert await bodies(late, private) == ["after-they-came marmalade"]  # as they joined
    # a channel created with the setting given
    shared = await channel(own, name="hist-given", private=True, shared_history=True)
    assert (await own.get(f"/conversations/{shared}"))["conversation"]["shared_history"] is True


async def test_the_last_owner_stays_until_another_is_named(world: World) -> None:
    """A conversation with members never ends up without an owner: its last owner may
    not leave nor be removed (by an org admin either) until another owner is named;
    the last member of all may leave."""
    admin = await world.admin()
    ann, ben = await world.users("ann", "ben")
    cid = await channel(ann, ben, name="ops")
    leave = f"/conversations/{cid}/members/{ann.id}"
    refused = await ann.call("DELETE", leave, expect=400)
    assert code(refused) == "invalid_operation" and "name another owner" in str(refused)
    assert code(await admin.call("DELETE", leave, expect=400)) == "invalid_operation"
    assert (await roles(ben, cid))[ann.id] == "owner"  # nothing changed
    await set_role(ann, cid, ben.id, "owner")
    await ann.call("DELETE", leave, expect=204)
    assert ann.id not in await roles(ben, cid)
    # ben is the last member and owner: leaving is allowed
    await ben.call("DELETE", f"/conversations/{cid}/members/{ben.id}", expect=204)
