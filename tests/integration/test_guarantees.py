"""The delivery guarantees of ARCHITECTURE.md (2-6), each against the application
in-process (tests/conftest.py `server`): REST in-process, the WebSocket over a loopback
socket. Guarantee 1 and what needs a crash or a restart: tests/e2e/test_guarantees.py."""

from __future__ import annotations

import asyncio

from tests.conftest import AppServer, World
from tests.helpers import Api, Ws


async def setup_group(world: World, n: int, name: str = "team") -> tuple[Api, list[Api], str]:
    users = await world.users(*(f"user{i}" for i in range(n)))
    cid = await world.conversation(users[0], *users[1:], name=name)
    return await world.admin(), users, cid


async def test_2_retries_never_store_twice(server: AppServer, world: World) -> None:
    """Guarantee 2: the same client_msg_id, retried over REST and WebSocket, even
    concurrently, stores one message and answers with the original."""
    _admin, users, cid = await setup_group(world, 2)
    sender = users[0]
    first = await sender.post(
        f"/conversations/{cid}/messages", {"client_msg_id": "same", "body": "hello"}, expect=201
    )
    retry = await sender.post(
        f"/conversations/{cid}/messages", {"client_msg_id": "same", "body": "hello"}, expect=200
    )
    assert retry["message"] == first["message"]
    # Concurrent retries of a new id: exactly one is created.
    replies = await asyncio.gather(
        *(
            sender.call(
                "POST",
                f"/conversations/{cid}/messages",
                json={"client_msg_id": "burst", "body": "x"},
            )
            for _ in range(10)
        )
    )
    assert sorted(r["message"]["seq"] for r in replies) == [2] * 10
    ws = await Ws.connect(server.ws_url, sender.token or "")
    reply = await ws.request(
        {"type": "send", "conversation_id": cid, "client_msg_id": "same", "body": "hello"}
    )
    assert reply["type"] == "ack" and reply["message"]["seq"] == 1
    page = await sender.get(f"/conversations/{cid}/messages")
    assert [m["seq"] for m in page["messages"]] == [1, 2]
    # The same id for another conversation is a conflict, not a silent duplicate.
    other = await sender.post(
        "/conversations", {"kind": "group", "name": "other", "member_ids": []}, expect=201
    )
    await sender.post(
        f"/conversations/{other['conversation']['id']}/messages",
        {"client_msg_id": "same", "body": "hello"},
        expect=409,
    )


async def test_3_concurrent_senders_get_gap_free_seqs(server: AppServer, world: World) -> None:
    """Guarantee 3: many clients sending to one conversation at once get seq 1..N."""
    _admin, users, cid = await setup_group(world, 5)
    sockets = [await Ws.connect(server.ws_url, u.token or "") for u in users]

    async def burst(ws: Ws, who: int) -> list[int]:
        seqs = []
        for i in range(20):
            reply = await ws.request(
                {
                    "type": "send",
                    "conversation_id": cid,
                    "client_msg_id": f"{who}-{i}",
                    "body": f"{who}:{i}",
                }
            )
            seqs.append(reply["message"]["seq"])
        return seqs

    async def rest_burst(api: Api, who: int) -> list[int]:
        sent = await asyncio.gather(*(api.send(cid, f"r{who}:{i}") for i in range(20)))
        return [m["seq"] for m in sent]

    results = await asyncio.gather(
        *(burst(ws, i) for i, ws in enumerate(sockets)),
        *(rest_burst(api, i) for i, api in enumerate(users)),
    )
    all_seqs = sorted(s for r in results for s in r)
    assert all_seqs == list(range(1, 201))
    for r in results[:5]:  # one connection's own sends keep their order
        assert r == sorted(r)
    page = await users[0].get(f"/conversations/{cid}/messages", params={"limit": 200})
    assert [m["seq"] for m in page["messages"]] == list(range(1, 201))


async def test_4_resume_gets_exactly_what_was_missed(server: AppServer, world: World) -> None:
    """Guarantee 4: a client that reconnects with its position gets every missed event
    exactly once (including events committed while it reconnects), then live events."""
    _admin, users, cid = await setup_group(world, 3)
    reader, writer1, writer2 = users
    ws = await Ws.connect(server.ws_url, reader.token or "")
    seen: list[tuple[int, str]] = []
    first = await writer1.send(cid, "before")
    frame = await ws.event("message")
    seen.append((int(frame["position"]), frame["event"]["kind"]))
    position = ws.last_position
    await ws.close()
    # Missed while offline: messages, an edit, a recall, a reaction, a member change.
    await writer1.send(cid, "missed 1")
    m2 = await writer2.send(cid, "missed 2")
    await writer2.call(
        "PATCH", f"/conversations/{cid}/messages/{m2['seq']}", json={"body": "edited"}
    )
    await writer1.call("PUT", f"/conversations/{cid}/messages/{first['seq']}/reactions/👍")
    await writer1.call("DELETE", f"/conversations/{cid}/messages/{first['seq']}")
    # And a stream of sends racing the reconnection itself.
    racing = asyncio.gather(*(writer2.send(cid, f"race {i}") for i in range(30)))
    await asyncio.sleep(0.01)
    ws2 = await Ws.connect(server.ws_url, reader.token or "", since=position)
    await racing
    await writer1.send(cid, "live after")
    while True:
        frame = await ws2.event()
        seen.append((int(frame["position"]), frame["event"]["kind"]))
        if frame["event"].get("message", {}).get("body") == "live after":
            break
    positions = [p for p, _ in seen]
    assert positions == sorted(set(positions)), "duplicates or out of order"
    # What the client saw is exactly the stream the server holds for it after `before`.
    sync = await reader.get("/sync", params={"since": str(positions[0] - 1), "limit": 1000})
    assert [int(e["position"]) for e in sync["events"]] == positions
    kinds = {k for _, k in seen}
    assert {"message", "message_edited", "message_deleted", "reaction"} <= kinds
    bodies = [
        e["event"]["message"]["body"] for e in sync["events"] if e["event"]["kind"] == "message"
    ]
    assert sum(b.startswith("race ") for b in bodies) == 30


async def test_4_sender_gets_ack_before_its_own_event(server: AppServer, world: World) -> None:
    _admin, users, cid = await setup_group(world, 2)
    ws = await Ws.connect(server.ws_url, users[0].token or "")
    await ws.send_raw(
        f'{{"type":"send","ref":"r1","conversation_id":"{cid}","client_msg_id":"c1","body":"hi"}}'
    )
    first = await ws.recv()
    second = await ws.recv()
    assert first["type"] == "ack" and first["ref"] == "r1"
    assert second["type"] == "event" and second["event"]["message"]["client_msg_id"] == "c1"


async def test_5_typing_and_presence_are_ephemeral(server: AppServer, world: World) -> None:
    """Guarantee 5: typing and presence reach live clients but are never stored."""
    _admin, users, cid = await setup_group(world, 2)
    a, b = users
    ws_b = await Ws.connect(server.ws_url, b.token or "")
    ws_a = await Ws.connect(server.ws_url, a.token or "")
    presence = await ws_b.recv_type("presence")
    assert presence == {"type": "presence", "user_id": a.id, "state": "online"}
    assert (await ws_a.request({"type": "typing", "conversation_id": cid}))["type"] == "ack"
    typing = await ws_b.recv_type("typing")
    assert typing == {"type": "typing", "conversation_id": cid, "user_id": a.id}
    await ws_a.request({"type": "presence", "state": "away"})
    assert (await ws_b.recv_type("presence"))["state"] == "away"
    states = await b.get("/presence", params={"user_ids": f"{a.id},{b.id}"})
    assert states["presence"] == {a.id: "away", b.id: "online"}
    await ws_a.close()
    assert (await ws_b.recv_type("presence"))["state"] == "offline"
    sync = await b.get("/sync")
    assert {e["event"]["kind"] for e in sync["events"]} == {"conversation_created"}


async def test_6_unread_counts_come_from_positions(server: AppServer, world: World) -> None:
    """Guarantee 6: unread = last_seq - read_seq; mentions counted above read_seq."""
    _admin, users, cid = await setup_group(world, 2)
    a, b = users
    for i in range(5):
        await a.send(cid, f"hello @user1 {i}" if i < 2 else f"plain {i}")
    [conv] = (await b.get("/conversations"))["conversations"]
    assert (conv["last_seq"], conv["read_seq"], conv["unread"]) == (5, 0, 5)
    assert conv["unread_mentions"] == 2
    assert (await b.post(f"/conversations/{cid}/read", {"seq": 3})) == {"read_seq": 3, "unread": 2}
    # Read positions never move back.
    assert (await b.post(f"/conversations/{cid}/read", {"seq": 1})) == {"read_seq": 3, "unread": 2}
    [conv] = (await b.get("/conversations"))["conversations"]
    assert (conv["unread"], conv["unread_mentions"]) == (2, 0)
    [mine] = (await a.get("/conversations"))["conversations"]
    assert mine["unread"] == 0  # your own messages are read
