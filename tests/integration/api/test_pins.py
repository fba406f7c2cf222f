"""Pinned messages (issue 17): per conversation, pinned and unpinned by owners and
moderators (and org admins), a `message_pinned` / `message_unpinned` event to every
member, the list in pin order; hostile input; both backends."""

from __future__ import annotations

from typing import Any

from tests.conftest import MakeServer, World
from tests.helpers import Api


async def pin(api: Api, cid: str, seq: int | str, expect: int = 200) -> Any:
    return await api.call("PUT", f"/conversations/{cid}/pins/{seq}", expect=expect)


async def unpin(api: Api, cid: str, seq: int | str, expect: int = 204) -> Any:
    return await api.call("DELETE", f"/conversations/{cid}/pins/{seq}", expect=expect)


async def pinned(api: Api, cid: str) -> list[int]:
    return [p["seq"] for p in (await api.get(f"/conversations/{cid}/pins"))["pins"]]


def code(answer: Any) -> str:
    return str(answer["error"]["code"])


async def test_owners_and_moderators_pin_members_see_it_live(world: World) -> None:
    own, mod, mem, outsider = await world.users("pinown", "pinmod", "pinmem", "pinout")
    cid = await world.conversation(own, mod, mem)
    await own.call("PUT", f"/conversations/{cid}/members/{mod.id}/role", json={"role": "moderator"})
    for i in range(3):
        await mem.send(cid, f"m{i + 1}")
    ws = await world.ws(mem)

    answer = await pin(own, cid, 2)
    assert answer["pin"]["seq"] == 2 and answer["pin"]["pinned_by"] == own.id
    assert answer["pin"]["message"]["body"] == "m2"
    event = (await ws.event("message_pinned"))["event"]
    assert (event["conversation_id"], event["seq"], event["by"]) == (cid, 2, own.id)
    await pin(mod, cid, 3)
    assert (await ws.event("message_pinned"))["event"]["seq"] == 3
    # pinning again changes nothing and tells nobody
    again = await pin(own, cid, 2)
    assert again["pin"]["pinned_at"] == answer["pin"]["pinned_at"]
    listed = (await mem.get(f"/conversations/{cid}/pins"))["pins"]
    assert [(p["seq"], p["pinned_by"], p["message"]["body"]) for p in listed] == [
        (3, mod.id, "m3"),
        (2, own.id, "m2"),
    ]  # the newest pin first

    # a member neither pins nor unpins; an outsider does not see the list
    assert code(await pin(mem, cid, 1, expect=403)) == "forbidden"
    assert code(await unpin(mem, cid, 2, expect=403)) == "forbidden"
    assert code(await outsider.get(f"/conversations/{cid}/pins", expect=404)) == "not_found"
    assert code(await pin(outsider, cid, 1, expect=404)) == "not_found"

    await unpin(mod, cid, 2)
    event = (await ws.event("message_unpinned"))["event"]
    assert (event["seq"], event["by"]) == (2, mod.id)
    assert await pinned(mem, cid) == [3]
    await unpin(mod, cid, 2)  # not pinned: nothing changes
    # a recalled message cannot be pinned; a pinned one that is recalled leaves the list
    await mem.call("DELETE", f"/conversations/{cid}/messages/1", expect=200)
    assert code(await pin(own, cid, 1, expect=404)) == "not_found"
    await mem.call("DELETE", f"/conversations/{cid}/messages/3", expect=200)
    assert (await ws.event("message_unpinned"))["event"]["seq"] == 3
    assert await pinned(mem, cid) == []


async def test_pins_refuse_hostile_input_and_keep_to_the_limit(make_server: MakeServer) -> None:
    async with make_server(max_pins_per_conversation=2) as server:
        world = World(server)
        own = await world.user("plimown")
        try:
            made = await own.post("/conversations", {"kind": "group", "name": "g"}, expect=201)
            cid = made["conversation"]["id"]
            for i in range(3):
                await own.send(cid, f"m{i}")
            for bad in ("0", "-1", "abc", "9" * 30, "1.5"):
                assert code(await pin(own, cid, bad, expect=None)) in (
                    "invalid_request",
                    "not_found",
                ), bad
            assert code(await pin(own, cid, 99, expect=404)) == "not_found"  # no such message
            await pin(own, cid, 1)
            await pin(own, cid, 2)
            full = await pin(own, cid, 3, expect=400)
            assert code(full) == "invalid_operation" and full["error"]["details"]["limit"] == 2
            archived = await own.call("PUT", f"/conversations/{cid}/archive", expect=200)
            assert archived["conversation"]["archived_at"]
            assert code(await unpin(own, cid, 1, expect=403)) == "forbidden"
        finally:
            await world.close()
