"""Membership as a security boundary: a removed member's last event of a conversation is
`member_removed`, live and over `/sync` (issue 13, item 11)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from tests.helpers import Api, Ws


def kinds_of(events: list[dict[str, Any]], cid: str) -> list[str]:
    return [e["event"]["kind"] for e in events if e["event"].get("conversation_id") == cid]


async def after_removal(world: World, owner: Api, cid: str) -> None:
    """What the others do once a member is gone: edits, reactions, a recall, a message."""
    await owner.call(
        "PATCH", f"/conversations/{cid}/messages/2", json={"body": "edited"}, expect=200
    )
    await owner.call("PUT", f"/conversations/{cid}/messages/1/reactions/🎉")
    await owner.call("PUT", f"/conversations/{cid}/messages/2/reactions/👍")
    await owner.call("DELETE", f"/conversations/{cid}/messages/1/reactions/🎉")
    await owner.call("DELETE", f"/conversations/{cid}/messages/2")
    await owner.send(cid, "after removal")


async def drain(ws: Ws, timeout: float = 1.0) -> list[dict[str, Any]]:
    got = []
    try:
        while True:
            got.append(await ws.event(timeout=timeout))
    except TimeoutError:
        return got


@pytest.mark.parametrize("kind", ["group", "channel"])
async def test_removed_members_last_event_is_member_removed(world: World, kind: str) -> None:
    owner, gone, stays = await world.users("owner1", "gone", "stays")
    cid = await world.conversation(owner, gone, stays, kind=kind)
    if kind == "channel":  # a channel is joined, not given members at creation
        for api in (gone, stays):
            await api.post(f"/conversations/{cid}/members", {"user_ids": [api.id]}, expect=None)
    await gone.send(cid, "mine")  # seq 1: the removed member's own message
    await owner.send(cid, "theirs")  # seq 2
    gone_ws, stays_ws = await world.ws(gone), await world.ws(stays)
    before = gone_ws.ready["position"]
    await owner.call("DELETE", f"/conversations/{cid}/members/{gone.id}", expect=204)
    assert (await gone_ws.event("member_removed"))["event"]["user_id"] == gone.id
    await after_removal(world, owner, cid)

    # the others get every change
    seen = kinds_of(await drain(stays_ws), cid)
    assert seen.count("message_edited") == 1 and seen.count("reaction") == 3, seen
    # the removed member's live connection: nothing after member_removed
    assert kinds_of(await drain(gone_ws), cid) == []
    # a new connection resuming from before the removal, and /sync: member_removed last
    resumed = await world.ws(gone, since=before)
    assert kinds_of(await drain(resumed), cid)[-1:] == ["member_removed"]
    replay = await gone.get("/sync", params={"since": before})
    assert kinds_of(replay["events"], cid) == ["member_removed"], replay["events"]
    full = await gone.get("/sync")
    assert kinds_of(full["events"], cid)[-1] == "member_removed"


async def test_only_owners_and_admins_add_back_someone_removed_from_a_group(
    world: World,
) -> None:
    """Issue 13, item 10: a plain member cannot re-add someone the owner removed (who
    would read what was said meanwhile); the owner or an org admin can. Someone who left
    by themselves may be added back by any member."""
    owner, plain, gone, leaver = await world.users("owner1", "plain", "gone", "leaver")
    admin = await world.user("helper", role="admin")  # an org admin among the members
    cid = await world.conversation(owner, plain, gone, leaver, admin)
    await owner.call("DELETE", f"/conversations/{cid}/members/{gone.id}", expect=204)
    await owner.send(cid, "said meanwhile")
    r = await plain.http.post(f"/conversations/{cid}/members", json={"user_ids": [gone.id]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    history = await gone.get(f"/conversations/{cid}/messages", expect=None)
    assert "said meanwhile" not in str(history)
    # leaving is no removal: any member may add a leaver back
    await leaver.call("DELETE", f"/conversations/{cid}/members/{leaver.id}", expect=204)
    await plain.post(f"/conversations/{cid}/members", {"user_ids": [leaver.id]})
    # the owner (or an admin) may add the removed one back; then it is a member like any
    await owner.post(f"/conversations/{cid}/members", {"user_ids": [gone.id]})
    await owner.call("DELETE", f"/conversations/{cid}/members/{gone.id}", expect=204)
    await admin.post(f"/conversations/{cid}/members", {"user_ids": [gone.id]})
    members = (await owner.get(f"/conversations/{cid}"))["conversation"]["members"]
    assert {m["user_id"] for m in members} >= {gone.id, leaver.id}


async def test_a_member_removed_from_a_channel_cannot_rejoin_by_themselves(
    world: World,
) -> None:
    admin = await world.admin()
    owner, gone, plain = await world.users("owner1", "gone", "plain")
    cid = await world.conversation(owner, kind="channel", name="general")
    for api in (gone, plain):
        await api.post(f"/conversations/{cid}/members", {"user_ids": [api.id]})
    await owner.call("DELETE", f"/conversations/{cid}/members/{gone.id}", expect=204)
    for actor in (gone, plain):  # neither by themselves nor brought back by a member
        r = await actor.http.post(f"/conversations/{cid}/members", json={"user_ids": [gone.id]})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    # one who left re-joins freely
    await plain.call("DELETE", f"/conversations/{cid}/members/{plain.id}", expect=204)
    await plain.post(f"/conversations/{cid}/members", {"user_ids": [plain.id]})
    # an admin may add the removed one back; after that, leaving and re-joining is free
    await admin.post(f"/conversations/{cid}/members", {"user_ids": [gone.id]})
    await gone.call("DELETE", f"/conversations/{cid}/members/{gone.id}", expect=204)
    await gone.post(f"/conversations/{cid}/members", {"user_ids": [gone.id]})
