"""Saved messages (issue 17): per user and private, saved and unsaved through REST,
`message_saved` / `message_unsaved` to the saver's own connections only, the list
newest save first with a cursor, only messages the saver may still read (the history
rule: recalled ones leave it, a conversation left keeps what was within the range,
history not shared with later members cannot be saved); stale state + events == a
fresh fetch; the cap and hostile input; both backends."""

from __future__ import annotations

from typing import Any

from tests.conftest import MakeServer, World
from tests.helpers import Api


async def save(api: Api, cid: str, seq: int | str, expect: int | None = 200) -> Any:
    return await api.call("PUT", f"/conversations/{cid}/messages/{seq}/saved", expect=expect)


async def unsave(api: Api, cid: str, seq: int | str, expect: int | None = 204) -> Any:
    return await api.call("DELETE", f"/conversations/{cid}/messages/{seq}/saved", expect=expect)


async def saved(api: Api, **params: Any) -> list[tuple[str, int]]:
    page = await api.get("/saved", params={"limit": 200, **params})
    return [(s["conversation_id"], s["seq"]) for s in page["saved"]]


def code(answer: Any) -> str:
    return str(answer["error"]["code"])


async def sync_kinds(api: Api, since: str) -> list[dict[str, Any]]:
    page = await api.get("/sync", params={"since": since, "limit": 1000})
    assert not page["more"]
    return [e["event"] for e in page["events"]]


async def test_a_user_saves_what_they_may_read_and_only_their_devices_hear_of_it(
    world: World,
) -> None:
    ann, ben, out = await world.users("svann", "svben", "svout")
    cid = await world.conversation(ann, ben)
    for i in range(3):
        await ann.send(cid, f"m{i + 1}")
    ws_ann = await world.ws(ann)
    since = ws_ann.ready["position"]
    tab1, tab2 = await world.ws(ben), await world.ws(ben)

    answer = (await save(ben, cid, 2))["saved"]
    assert (answer["conversation_id"], answer["seq"], answer["message"]["body"]) == (cid, 2, "m2")
    for tab in (tab1, tab2):  # every session of the saver
        event = (await tab.event("message_saved"))["event"]
        assert (event["conversation_id"], event["seq"], event["user_id"]) == (cid, 2, ben.id)
        assert event["at"] == answer["saved_at"]
    again = (await save(ben, cid, 2))["saved"]  # saving again changes nothing
    assert again["saved_at"] == answer["saved_at"]
    await save(ben, cid, 1)
    await save(ben, cid, 3)
    assert await saved(ben) == [(cid, 3), (cid, 1), (cid, 2)]  # the newest save first
    # nobody else hears of it, or sees it
    kinds = [e["kind"] for e in await sync_kinds(ann, since)]
    assert "message_saved" not in kinds and "message_unsaved" not in kinds
    assert await saved(ann) == []
    # an outsider can save nothing of the conversation (as if it did not exist)
    assert code(await save(out, cid, 1, expect=404)) == "not_found"
    assert code(await save(ben, cid, 99, expect=404)) == "not_found"

    # pages
    first = await ben.get("/saved", params={"limit": 2})
    assert [s["seq"] for s in first["saved"]] == [3, 1] and first["next_cursor"]
    rest = await ben.get("/saved", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [s["seq"] for s in rest["saved"]] == [2] and rest["next_cursor"] is None

    # a recalled message leaves every saver's list (told like an unsave), can't be saved
    await ann.call("DELETE", f"/conversations/{cid}/messages/1", expect=200)
    for tab in (tab1, tab2):
        event = (await tab.event("message_unsaved"))["event"]
        assert (event["seq"], event["user_id"]) == (1, ben.id)
    assert await saved(ben) == [(cid, 3), (cid, 2)]
    assert code(await save(ben, cid, 1, expect=404)) == "not_found"

    await unsave(ben, cid, 3)
    assert (await tab2.event("message_unsaved"))["event"]["seq"] == 3
    await unsave(ben, cid, 3)  # not saved: nothing changes
    await unsave(ben, "no-such-conversation", 1)  # nothing to learn either
    assert await saved(ben) == [(cid, 2)]

    # ben leaves: what he saw stays his to save and keep; what came after is not his
    await ben.call("DELETE", f"/conversations/{cid}/members/{ben.id}", expect=204)
    await ann.send(cid, "m4 after ben left")
    assert await saved(ben) == [(cid, 2)]
    await save(ben, cid, 3)
    assert code(await save(ben, cid, 4, expect=404)) == "not_found"
    assert await saved(ben) == [(cid, 3), (cid, 2)]


async def test_history_not_shared_with_later_members_cannot_be_saved(world: World) -> None:
    ann, kim = await world.users("svhann", "svhkim")
    made = await ann.post(
        "/conversations",
        {"kind": "group", "name": "no history", "shared_history": False},
        expect=201,
    )
    cid = made["conversation"]["id"]
    await ann.send(cid, "before kim")
    await ann.post(f"/conversations/{cid}/members", {"user_ids": [kim.id]})
    await ann.send(cid, "after kim")
    assert code(await save(kim, cid, 1, expect=404)) == "not_found"
    await save(kim, cid, 2)
    assert await saved(kim) == [(cid, 2)]


def apply_saved_event(me: str, held: list[dict[str, Any]], event: dict[str, Any]) -> None:
    """What a client does with its saved list on the stream."""
    if event["kind"] == "message_saved" and event["user_id"] == me:
        held.insert(0, {"conversation_id": event["conversation_id"], "seq": event["seq"],
                        "saved_at": event["at"]})
    elif event["kind"] == "message_unsaved" and event["user_id"] == me:
        key = (event["conversation_id"], event["seq"])
        held[:] = [s for s in held if (s["conversation_id"], s["seq"]) != key]


async def test_stale_saved_list_plus_events_equals_a_fresh_fetch(world: World) -> None:
    ann, ben = await world.users("svsann", "svsben")
    one = await world.conversation(ann, ben)
    two = await world.conversation(ben, ann, name="H")
    for i in range(4):
        await ann.send(one, f"one {i + 1}")
        await ben.send(two, f"two {i + 1}")
    await save(ben, one, 1)
    await save(ben, two, 2)

    async def fetch() -> list[dict[str, Any]]:
        page = await ben.get("/saved", params={"limit": 200})
        return [{k: s[k] for k in ("conversation_id", "seq", "saved_at")} for s in page["saved"]]

    ws = await world.ws(ben)
    since = ws.ready["position"]
    held = await fetch()
    # while ben is away
    await save(ben, one, 3)
    await save(ben, two, 4)
    await unsave(ben, one, 1)
    await ann.call("DELETE", f"/conversations/{one}/messages/3", expect=200)  # recalled
    await save(ben, two, 1)
    await save(ben, two, 2)  # saved already: no event
    for event in await sync_kinds(ben, since):
        apply_saved_event(ben.id, held, event)
    fresh = await fetch()
    assert held == fresh
    assert [(s["conversation_id"], s["seq"]) for s in fresh] == [(two, 1), (two, 4), (two, 2)]


async def test_saved_messages_refuse_hostile_input_and_keep_to_the_cap(
    make_server: MakeServer,
) -> None:
    async with make_server(max_saved_per_user=2) as server:
        world = World(server)
        try:
            ann = await world.user("svcap")
            made = await ann.post("/conversations", {"kind": "group", "name": "g"}, expect=201)
            cid = made["conversation"]["id"]
            for i in range(3):
                await ann.send(cid, f"m{i}")
            for bad in ("0", "-1", "abc", "9" * 30, "1.5", "%00"):
                assert code(await save(ann, cid, bad, expect=None)) in (
                    "invalid_request",
                    "not_found",
                ), bad
                assert code(await unsave(ann, cid, bad, expect=None)) in (
                    "invalid_request",
                    "not_found",
                ), bad
            for cursor in ("abc", "-1", "0", "9" * 40, "1e3", "１"):
                r = await ann.http.get("/saved", params={"cursor": cursor})
                assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
            for limit in ("0", "201", "x"):
                r = await ann.http.get("/saved", params={"limit": limit})
                assert r.status_code == 400, limit
            await save(ann, cid, 1)
            await save(ann, cid, 2)
            full = await save(ann, cid, 3, expect=400)
            assert code(full) == "invalid_operation" and full["error"]["details"]["limit"] == 2
            await unsave(ann, cid, 1)
            await save(ann, cid, 3)
            assert await saved(ann) == [(cid, 3), (cid, 2)]
        finally:
            await world.close()


async def test_one_users_save_is_theirs_alone_and_a_guest_saves_where_it_is_a_member(
    world: World,
) -> None:
    """Someone else naming the same message (unsaving it, saving it and unsaving it)
    changes nothing of the saver's list; a guest saves in the conversations it is in and
    nowhere else; a disabled account's token saves nothing."""
    admin = await world.admin()
    ann, ben = await world.users("svoann", "svoben")
    guest = await world.user("svoguest", role="guest")
    cid = await world.conversation(ann, ben, guest)
    other = await world.conversation(ann, ben)
    for i in range(2):
        await ann.send(cid, f"m{i + 1}")
    await ann.send(other, "not for the guest")
    await save(ben, cid, 1)
    await unsave(ann, cid, 1)  # ann's own list: nothing there
    await save(ann, cid, 1)
    await unsave(ann, cid, 1)
    assert await saved(ben) == [(cid, 1)]
    assert await saved(ann) == []
    await save(guest, cid, 2)
    assert code(await save(guest, other, 1, expect=404)) == "not_found"
    assert await saved(guest) == [(cid, 2)]
    assert await saved(ben) == [(cid, 1)]

    await admin.call("PATCH", f"/users/{ben.id}", json={"disabled": True}, expect=200)
    r = await ben.http.put(f"/conversations/{cid}/messages/2/saved")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = await ben.http.get("/saved")
    assert r.status_code == 401
