"""Forwarding (issue 17): POST /conversations/{cid}/messages/{seq}/forward puts a copy of
a message one may read (its body and files) into a conversation one may post in,
through the normal send path (its checks; idempotent on client_msg_id); the copy carries
`forwarded_from`, resolved (conversation, name, sender) only for those who may read the
original; its files open for the target's members; hostile input; both backends."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import World
from tests.helpers import Api


async def forward(
    api: Api, cid: str, seq: int | str, target: str, expect: int | None = 201, **extra: Any
) -> Any:
    body = {"conversation_id": target, "client_msg_id": uuid.uuid4().hex, **extra}
    return await api.call(
        "POST", f"/conversations/{cid}/messages/{seq}/forward", json=body, expect=expect
    )


async def origin(api: Api, cid: str, seq: int, expect: int = 200) -> Any:
    return await api.call(
        "GET", f"/conversations/{cid}/messages/{seq}/forwarded-from", expect=expect
    )


def code(answer: Any) -> str:
    return str(answer["error"]["code"])


async def test_forward_a_message_with_its_file_and_a_link_back_for_those_who_may_see_it(
    world: World,
) -> None:
    ann, ben, cat = await world.users("fwann", "fwben", "fwcat")
    source = await world.conversation(ann, ben, name="Source")
    target = await world.conversation(ben, cat, name="Target")
    r = await ann.http.post("/files", files={"file": ("notes.txt", b"the notes", "text/plain")})
    file_id = r.json()["file"]["id"]
    await ann.send(source, "see the notes", attachments=[file_id])
    # cat is no member of the source: she can't read the file yet
    assert (await cat.http.get(f"/files/{file_id}")).status_code == 404
    ws_cat = await world.ws(cat)

    client_msg_id = uuid.uuid4().hex
    body = {"conversation_id": target, "client_msg_id": client_msg_id}
    path = f"/conversations/{source}/messages/1/forward"
    made = (await ben.call("POST", path, json=body, expect=201))["message"]
    assert (made["conversation_id"], made["seq"], made["sender_id"]) == (target, 1, ben.id)
    assert made["body"] == "see the notes"
    assert [f["id"] for f in made["attachments"]] == [file_id]
    assert made["forwarded_from"] == {"conversation_id": source, "seq": 1}
    event = (await ws_cat.event("message"))["event"]
    assert event["message"]["forwarded_from"] == {"conversation_id": source, "seq": 1}
    # a retry is the same message, never a second one
    again = (await ben.call("POST", path, json=body, expect=200))["message"]
    assert again["id"] == made["id"]
    history = (await cat.get(f"/conversations/{target}/messages"))["messages"]
    assert [m["body"] for m in history] == ["see the notes"]
    assert history[0]["forwarded_from"] == {"conversation_id": source, "seq": 1}
    # the target's members open the file as any attachment
    r = await cat.http.get(f"/files/{file_id}")
    assert r.status_code == 200 and r.content == b"the notes"
    # the link back: resolved for ben (he reads the original), not for cat
    seen = (await origin(ben, target, 1))["origin"]
    assert seen == {
        "conversation_id": source,
        "conversation_name": "Source",
        "conversation_kind": "group",
        "seq": 1,
        "sender_id": ann.id,
    }
    assert code(await origin(cat, target, 1, expect=404)) == "not_found"
    # a message that is no forward has no origin
    await cat.send(target, "plain")
    assert code(await origin(cat, target, 2, expect=404)) == "not_found"
    # plain messages carry no forwarded_from key at all
    assert (
        "forwarded_from" not in (await cat.get(f"/conversations/{target}/messages"))["messages"][1]
    )
    # the original recalled: nobody resolves the link any more; it can't be forwarded
    await ann.call("DELETE", f"/conversations/{source}/messages/1", expect=200)
    assert code(await origin(ben, target, 1, expect=404)) == "not_found"
    assert code(await forward(ben, source, 1, target, expect=404)) == "not_found"


async def test_forwarding_keeps_every_rule_of_the_send(world: World) -> None:
    ann, ben, out = await world.users("fwrann", "fwrben", "fwrout")
    source = await world.conversation(ann, ben)
    elsewhere = await world.conversation(out, name="Not ben's")
    news = (
        await ann.post(
            "/conversations",
            {"kind": "channel", "name": "fw-news", "member_ids": [ben.id], "announcement": True},
            expect=201,
        )
    )["conversation"]["id"]
    await ann.send(source, "hello")
    # into a conversation ben is not in, from one out is not in: as if neither existed
    assert code(await forward(ben, source, 1, elsewhere, expect=404)) == "not_found"
    assert code(await forward(out, source, 1, elsewhere, expect=404)) == "not_found"
    assert code(await forward(ben, source, 9, source, expect=404)) == "not_found"
    # an announcement channel: only its owners and moderators post, forwards included
    assert code(await forward(ben, source, 1, news, expect=403)) == "forbidden"
    assert (await forward(ann, source, 1, news))["message"]["seq"] == 1
    # the same client_msg_id for another conversation is a conflict, as for a send
    mine = await world.conversation(ben, name="Ben alone")
    cmid = uuid.uuid4().hex
    body = {"conversation_id": source, "client_msg_id": cmid}
    await ben.call("POST", f"/conversations/{source}/messages/1/forward", json=body, expect=201)
    body = {"conversation_id": mine, "client_msg_id": cmid}
    answer = await ben.call(
        "POST", f"/conversations/{source}/messages/1/forward", json=body, expect=409
    )
    assert code(answer) == "conflict"
    # ben left the source: what he read there he may still forward
    await ben.call("DELETE", f"/conversations/{source}/members/{ben.id}", expect=204)
    assert (await forward(ben, source, 1, mine))["message"]["forwarded_from"]["seq"] == 1
    await ann.send(source, "after ben left")
    assert code(await forward(ben, source, 3, mine, expect=404)) == "not_found"
    # hostile input
    for bad in (
        {"conversation_id": "", "client_msg_id": "x"},
        {"conversation_id": mine},
        {"conversation_id": mine, "client_msg_id": ""},
        {"conversation_id": mine, "client_msg_id": "x" * 65},
        {"conversation_id": "x" * 65, "client_msg_id": "x"},
        {"conversation_id": mine, "client_msg_id": "x", "body": "mine instead"},
        {"conversation_id": 5, "client_msg_id": "x"},
    ):
        r = await ben.http.post(f"/conversations/{source}/messages/1/forward", json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", bad
    for seq in ("0", "-1", "abc", "9" * 30):
        r = await ben.http.post(
            f"/conversations/{source}/messages/{seq}/forward",
            json={"conversation_id": mine, "client_msg_id": "y"},
        )
        assert r.status_code in (400, 404), seq


async def test_a_forward_of_a_forwarded_copy_names_the_first_original(world: World) -> None:
    ann, ben, cat, dan = await world.users("fwoann", "fwoben", "fwocat", "fwodan")
    source = await world.conversation(ann, ben, name="First")
    middle = await world.conversation(ben, cat, name="Middle")
    last = await world.conversation(cat, dan, ben, name="Last")
    await ann.send(source, "the first words")
    await ann.send(source, "more")
    copy = (await forward(ben, source, 2, middle))["message"]
    assert copy["forwarded_from"] == {"conversation_id": source, "seq": 2}
    # cat forwards ben's copy on: hers names ann's message, not the copy in `middle`
    again = (await forward(cat, middle, copy["seq"], last))["message"]
    assert again["forwarded_from"] == {"conversation_id": source, "seq": 2}
    assert again["body"] == "more"
    stored = (await dan.get(f"/conversations/{last}/messages"))["messages"][-1]
    assert stored["forwarded_from"] == {"conversation_id": source, "seq": 2}
    # and once more, within the last conversation: still the first original
    third = (await forward(dan, last, again["seq"], last))["message"]
    assert third["forwarded_from"] == {"conversation_id": source, "seq": 2}
    # the link back resolves the first original for ben (he reads it), for nobody else
    seen = (await origin(ben, last, again["seq"]))["origin"]
    assert (seen["conversation_id"], seen["seq"], seen["sender_id"]) == (source, 2, ann.id)
    for api in (cat, dan):
        assert code(await origin(api, last, again["seq"], expect=404)) == "not_found"
