"""The WebSocket gateway of the application in-process (tests/conftest.py `server`,
served by uvicorn on a loopback port): bad frames, authentication, resume positions,
sends answered whatever their path."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import orjson
import pytest
import websockets

from tests.conftest import AppServer, Backend, MakeServer, World, _pg, _pg_url
from tests.helpers import Ws, resume_refused


async def test_websocket_bad_frames_keep_the_connection(server: AppServer, world: World) -> None:
    admin = await world.admin()
    cid = (await admin.post("/conversations", {"kind": "group", "name": "G"}, expect=201))[
        "conversation"
    ]["id"]
    ws = await Ws.connect(server.ws_url, admin.token or "")
    for raw in (
        "{nope",
        "[1,2]",
        '"str"',
        '{"type":"warp"}',
        '{"type":"send","ref":7}',
        '{"type":"read","conversation_id":"x","seq":"1"}',
        b"\xff\xfe",
    ):
        await ws.send_raw(raw)
        frame = await ws.recv_type("error")
        assert frame["error"]["code"] == "invalid_request", (raw, frame)
    await ws.send_raw('{"type":"send","ref":7}')
    assert (await ws.recv_type("error"))["ref"] == 7
    await ws.send_raw('{"type":"ping","ref":"p","pad":"%s"}' % ("x" * 70_000))
    frame = await ws.recv_type("error")
    assert frame["error"]["code"] == "too_large"
    bad = await ws.request(
        {"type": "send", "conversation_id": cid, "client_msg_id": "e", "body": ""}
    )
    assert bad["type"] == "error" and bad["error"]["code"] == "invalid_body"
    bad = await ws.request(
        {"type": "send", "conversation_id": "missing", "client_msg_id": "e", "body": "x"}
    )
    assert bad["error"]["code"] == "not_found"
    ok = await ws.request(
        {"type": "send", "conversation_id": cid, "client_msg_id": "ok", "body": "still here"}
    )
    assert ok["type"] == "ack" and ok["message"]["seq"] == 1
    assert (await ws.request({"type": "ping"}))["type"] == "ack"


async def test_websocket_auth_is_required(server: AppServer) -> None:
    async with websockets.connect(server.ws_url) as conn:
        await conn.send('{"type":"ping"}')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(conn.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    async with websockets.connect(server.ws_url) as conn:
        await conn.send('{"type":"auth","token":"forged"}')
        first = await asyncio.wait_for(conn.recv(), 5)
        assert '"unauthenticated"' in first
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(conn.recv(), 5)


async def test_websocket_auth_timeout(make_server: MakeServer) -> None:
    async with (
        make_server(auth_timeout_seconds=0.5) as server,
        websockets.connect(server.ws_url) as conn,
    ):
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


async def test_a_busy_server_never_refuses_a_valid_token(make_server: MakeServer) -> None:
    """The auth timeout is the client's: an auth frame sent in time is taken although the
    server's event loop was too busy to read it before the deadline (here the loop, this
    test's, is blocked for three auth timeouts right after the frame is sent), never
    refused with the 4001 on which a client signs its user out."""
    async with make_server(auth_timeout_seconds=0.5) as server:
        token = await server.login()
        async with websockets.connect(server.ws_url) as conn:
            await conn.send(orjson.dumps({"type": "auth", "token": token}).decode())
            time.sleep(1.5)  # noqa: ASYNC251 - the point: the server's loop is busy
            first = orjson.loads(await asyncio.wait_for(conn.recv(), 10))
            assert first["type"] == "ready", first


async def test_a_valid_token_slow_to_check_is_never_refused(
    tmp_path: Path, pg_template: str
) -> None:
    """Nor is a token the server is slow to check: another transaction holds the tokens
    table (PostgreSQL) for three auth timeouts; the connection gets `ready` once the
    check is done."""
    import asyncpg

    database = f"tidings_t_{uuid.uuid4().hex[:12]}"
    _pg(f"CREATE DATABASE {database} TEMPLATE {pg_template}")
    try:
        backend = Backend("postgres", _pg_url(database))
        async with AppServer(tmp_path / "data", backend, auth_timeout_seconds=0.5) as server:
            token = await server.login()
            locker = await asyncpg.connect(_pg_url(database))
            try:
                lock = locker.transaction()
                await lock.start()
                await locker.execute("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE")
                async with websockets.connect(server.ws_url) as conn:
                    await conn.send(orjson.dumps({"type": "auth", "token": token}).decode())
                    await asyncio.sleep(1.5)  # the token's check waits for the lock
                    await lock.rollback()
                    first = orjson.loads(await asyncio.wait_for(conn.recv(), 10))
                    assert first["type"] == "ready", first
            finally:
                await locker.close()
    finally:
        _pg(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


async def test_resume_from_a_position_never_given_out(server: AppServer, world: World) -> None:
    admin = await world.admin()
    for since in ("999999", "-1", "abc"):
        frames, code = await resume_refused(server.ws_url, admin.token or "", since)
        errors = [f for f in frames if f["type"] == "error"]
        assert errors and errors[0]["error"]["code"] == "invalid_position", frames
        assert code in (4001, 4009)


async def test_websocket_sends_answer_every_frame_whatever_its_path(
    server: AppServer, world: World
) -> None:
    """A valid send is acked from its commit; one that fails its own checks is answered
    by the slower path (a retry of a stored message gets the original, else an error);
    neither path keeps a slot of the connection's in-flight limit (256) once answered."""
    admin = await world.admin()
    cid = (await admin.post("/conversations", {"kind": "group", "name": "W"}, expect=201))[
        "conversation"
    ]["id"]
    ws = await Ws.connect(server.ws_url, admin.token or "")
    first = await ws.request(
        {"type": "send", "conversation_id": cid, "client_msg_id": "w1", "body": "original"}
    )
    assert first["type"] == "ack" and first["message"]["seq"] == 1
    for body in ("", "x" * 20000):  # a retry answers with the original whatever its body
        again = await ws.request(
            {"type": "send", "conversation_id": cid, "client_msg_id": "w1", "body": body}
        )
        assert again["type"] == "ack" and again["message"] == first["message"]

    def send(ref: str, body: str) -> bytes:
        frame = {"type": "send", "ref": ref, "conversation_id": cid, "client_msg_id": ref}
        return orjson.dumps({**frame, "body": body})

    # 260 refused sends, pipelined (more than the in-flight limit): each answered
    # (260 + 260 + 3 stay within the default 600 sends per user per minute)
    refs = [f"bad{i}" for i in range(260)]
    for ref in refs:
        await ws.send_raw(send(ref, ""))
    answered = set()
    while len(answered) < len(refs):
        reply = await ws.recv_type("error", "ack")
        assert reply["type"] == "error" and reply["error"]["code"] == "invalid_body"
        answered.add(reply["ref"])
    # then 260 valid ones, pipelined: every one acked, in seq order, and stored
    oks = [f"ok{i}" for i in range(260)]
    for ref in oks:
        await ws.send_raw(send(ref, ref))
    acked: dict[str, int] = {}
    while len(acked) < len(oks):
        reply = await ws.recv_type("error", "ack")
        assert reply["type"] == "ack", reply
        acked[reply["ref"]] = reply["message"]["seq"]
    assert [acked[ref] for ref in oks] == list(range(2, 262))  # queued in frame order
    await ws.close()
    page = await admin.get(f"/conversations/{cid}/messages?after_seq=1&limit=3")
    assert [m["body"] for m in page["messages"]] == ["ok0", "ok1", "ok2"]
