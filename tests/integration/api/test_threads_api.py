"""Threads over REST and the WebSocket (issue 17), both backends: a reply sent by
frame and by REST, `thread_updated` live to every member's connection and on resume,
`thread_read` to the reader's own connections only, the thread list and its cursor,
and hostile input (bad roots, bad cursors and seqs, unknown fields, non-members) with
PROTOCOL.md's error shape."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.helpers import Api


def error(answer: Any, code: str) -> dict[str, Any]:
    assert set(answer) == {"error"}, answer
    err: dict[str, Any] = answer["error"]
    assert err["code"] == code, answer
    assert isinstance(err["message"], str) and isinstance(err["details"], dict)
    return err


async def reply(api: Api, cid: str, root: int, body: str, expect: int = 201, **kw: Any) -> Any:
    data = {"client_msg_id": f"{body}-{root}", "body": body, "thread_root_seq": root, **kw}
    return await api.post(f"/conversations/{cid}/messages", data, expect=expect)


async def test_a_thread_between_two_members_live_and_on_resume(world: World) -> None:
    ann, ben = await world.users("thann", "thben")
    cid = await world.conversation(ann, ben)
    root = await ann.send(cid, "root")
    ws_ann = await world.ws(ann)
    ws_ben = await world.ws(ben)
    # ben replies by frame: his ack, then both get the message and the new summary
    ack = await ws_ben.request(
        {
            "type": "send",
            "conversation_id": cid,
            "client_msg_id": "frame-reply",
            "body": "by frame",
            "thread_root_seq": root["seq"],
            "also_to_conversation": True,
        }
    )
    assert ack["type"] == "ack", ack
    message = ack["message"]
    assert (message["thread_root_seq"], message["also_to_conversation"]) == (root["seq"], True)
    for ws in (ws_ann, ws_ben):
        got = (await ws.event("thread_updated"))["event"]
        assert got["conversation_id"] == cid
        assert got["thread"] == {
            "root_seq": root["seq"],
            "reply_count": 1,
            "last_reply_seq": message["seq"],
            "last_reply_at": message["created_at"],
            "participants": [ben.id],
        }
    # ann reads the thread: her own connections hear it, ben's do not
    state = await ann.post(
        f"/conversations/{cid}/threads/{root['seq']}/read", {"seq": message["seq"]}
    )
    assert state["thread"] == {"following": True, "read_seq": message["seq"], "unread": 0}
    read = (await ws_ann.event("thread_read"))["event"]
    assert read["root_seq"] == root["seq"] and read["user_id"] == ann.id
    # REST reply; the list and the thread as fresh fetches agree with the events
    second = (await reply(ann, cid, root["seq"], "by rest"))["message"]
    live = (await ws_ben.event("thread_updated"))["event"]["thread"]
    listed = await ben.get(f"/conversations/{cid}/threads")
    assert listed["next_cursor"] is None
    (thread,) = listed["threads"]
    assert {k: thread[k] for k in live} == live
    assert live["participants"] == [ann.id, ben.id] and live["reply_count"] == 2
    assert thread["root"]["seq"] == root["seq"] and thread["unread"] == 1
    one = (await ben.get(f"/conversations/{cid}/threads/{root['seq']}"))["thread"]
    assert one == thread
    replies = await ben.get(
        f"/conversations/{cid}/messages", params={"thread_root_seq": root["seq"]}
    )
    assert [m["seq"] for m in replies["messages"]] == [message["seq"], second["seq"]]
    # a resume from before the thread replays the summaries in order, no duplicate
    resumed = await world.ws(ben, since="0")
    seen = []
    while len(seen) < 2:
        seen.append((await resumed.event("thread_updated"))["event"]["thread"]["reply_count"])
    assert seen == [1, 2]
    sync = await ben.get("/sync", params={"since": "0"})
    kinds = [e["event"]["kind"] for e in sync["events"]]
    assert kinds.count("thread_updated") == 2 and "thread_read" not in kinds


async def test_follow_unfollow_and_the_thread_list_cursor(world: World) -> None:
    ann, ben = await world.users("flann", "flben")
    cid = await world.conversation(ann, ben)
    roots = [(await ann.send(cid, f"root {i}"))["seq"] for i in range(3)]
    for seq in roots:
        await reply(ben, cid, seq, f"r{seq}")
    path = f"/conversations/{cid}/threads/{roots[0]}/follow"
    off = await ann.call("DELETE", path, expect=200)
    assert off["thread"]["following"] is False and off["thread"]["unread"] == 0
    on = await ann.call("PUT", path, expect=200)
    assert on["thread"] == {"following": True, "read_seq": 0, "unread": 1}
    first = await ann.get(f"/conversations/{cid}/threads", params={"limit": 2})
    assert [t["root_seq"] for t in first["threads"]] == [roots[2], roots[1]]
    rest = await ann.get(
        f"/conversations/{cid}/threads", params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert [t["root_seq"] for t in rest["threads"]] == [roots[0]]
    assert rest["next_cursor"] is None


async def test_hostile_input_is_refused_with_the_protocol_error_shape(world: World) -> None:
    ann, ben, eve = await world.users("hoann", "hoben", "hoeve")
    cid = await world.conversation(ann, ben)
    root = (await ann.send(cid, "root"))["seq"]
    first = (await reply(ben, cid, root, "first"))["message"]
    # bad roots
    err = error(await reply(ben, cid, 999, "missing", expect=404), "not_found")
    assert err["details"] == {"thread_root_seq": 999}
    err = error(await reply(ben, cid, first["seq"], "nested", expect=400), "invalid_operation")
    assert err["details"] == {"field": "thread_root_seq", "thread_root_seq": first["seq"]}
    for bad in (0, -1, "1", 2**63, 1.5, True):
        body = {"client_msg_id": f"bad-{bad!r}", "body": "x", "thread_root_seq": bad}
        error(await ben.post(f"/conversations/{cid}/messages", body, expect=400), "invalid_request")
    body = {"client_msg_id": "also", "body": "x", "also_to_conversation": True}
    err = error(
        await ben.post(f"/conversations/{cid}/messages", body, expect=400), "invalid_request"
    )
    assert err["details"] == {"field": "also_to_conversation"}
    body = {
        "client_msg_id": "also2",
        "body": "x",
        "thread_root_seq": root,
        "also_to_conversation": "yes",
    }
    error(await ben.post(f"/conversations/{cid}/messages", body, expect=400), "invalid_request")
    # the frame too, and the connection stays open
    ws = await world.ws(ben)
    answer = await ws.request(
        {
            "type": "send",
            "conversation_id": cid,
            "client_msg_id": "f1",
            "body": "x",
            "thread_root_seq": first["seq"],
        }
    )
    assert answer["type"] == "error" and answer["error"]["code"] == "invalid_operation"
    answer = await ws.request(
        {
            "type": "send",
            "conversation_id": cid,
            "client_msg_id": "f2",
            "body": "x",
            "thread_root_seq": "nope",
        }
    )
    assert answer["type"] == "error" and answer["error"]["code"] == "invalid_request"
    assert (await ws.send_message(cid, "still open"))["type"] == "ack"
    # bad cursors, seqs and bodies on the thread routes
    for cursor in ("x", "-1", "0", "1" * 40, "١٢"):
        error(
            await ann.get(f"/conversations/{cid}/threads", params={"cursor": cursor}, expect=400),
            "invalid_request",
        )
    for limit in ("0", "201", "x"):
        error(
            await ann.get(f"/conversations/{cid}/threads", params={"limit": limit}, expect=400),
            "invalid_request",
        )
    for seq in ("0", "x", str(2**63)):
        error(await ann.get(f"/conversations/{cid}/threads/{seq}", expect=400), "invalid_request")
    read = f"/conversations/{cid}/threads/{root}/read"
    for body in ({"seq": -1}, {"seq": "1"}, {}, {"seq": 1, "extra": 1}, [1]):
        error(await ann.post(read, body, expect=400), "invalid_request")
    error(
        await ann.get(
            f"/conversations/{cid}/messages", params={"thread_root_seq": "0"}, expect=400
        ),
        "invalid_request",
    )
    # a reply (or a missing message) has no thread of its own
    error(await ann.get(f"/conversations/{cid}/threads/{first['seq']}", expect=404), "not_found")
    error(
        await ann.call("PUT", f"/conversations/{cid}/threads/4242/follow", expect=404), "not_found"
    )
    # a non-member: not_found for everything, the same as a conversation that is not there
    for method, path, kw in (
        ("GET", f"/conversations/{cid}/threads", {}),
        ("GET", f"/conversations/{cid}/threads/{root}", {}),
        ("PUT", f"/conversations/{cid}/threads/{root}/follow", {}),
        ("DELETE", f"/conversations/{cid}/threads/{root}/follow", {}),
        ("POST", f"/conversations/{cid}/threads/{root}/read", {"json": {"seq": 1}}),
        ("GET", f"/conversations/{cid}/messages", {"params": {"thread_root_seq": root}}),
        ("GET", "/conversations/nope/threads", {}),
    ):
        err = error(await eve.call(method, path, expect=404, **kw), "not_found")
    error(await reply(eve, cid, root, "intruder", expect=404), "not_found")
    # without a token
    anonymous = Api(ann.base_url)
    try:
        error(await anonymous.get(f"/conversations/{cid}/threads", expect=401), "unauthenticated")
    finally:
        await anonymous.close()
