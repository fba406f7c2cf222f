"""The delivery guarantees of ARCHITECTURE.md that need the real server process:
guarantee 1 under `kill -9`, SIGTERM's drain, idempotency across a crash. Guarantees 2-6
run in-process: tests/integration/test_guarantees.py."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import httpx
import pytest

from tests.conftest import LiveServer
from tests.helpers import Api, Ws, login, make_user

pytestmark = pytest.mark.e2e


async def setup_group(server: LiveServer, n: int, name: str = "team") -> tuple[Api, list[Api], str]:
    admin = await login(server.url, server.admin_username, server.admin_password)
    users = [await make_user(admin, f"user{i}") for i in range(n)]
    conv = await users[0].post(
        "/conversations",
        {"kind": "group", "name": name, "member_ids": [u.id for u in users[1:]]},
        expect=201,
    )
    return admin, users, conv["conversation"]["id"]


async def test_1_acknowledged_messages_survive_kill_9(live_server: LiveServer) -> None:
    """Guarantee 1: an ack means durably committed; SIGKILL right after loses nothing."""
    _admin, users, cid = await setup_group(live_server, 2)
    ws = await Ws.connect(live_server.ws_url, users[0].token or "")
    acked = []
    for i in range(50):
        reply = await ws.request(
            {"type": "send", "conversation_id": cid, "client_msg_id": f"k{i}", "body": f"m{i}"}
        )
        assert reply["type"] == "ack", reply
        acked.append(reply["message"]["seq"])
    live_server.kill()  # SIGKILL, no chance to flush anything, then start again
    again = await login(live_server.url, "user1", "plum-orbit-123")
    page = await again.get(f"/conversations/{cid}/messages", params={"limit": 200})
    stored = {m["seq"]: m["body"] for m in page["messages"]}
    assert sorted(stored) == acked == list(range(1, 51))
    assert all(stored[s] == f"m{s - 1}" for s in acked)


async def test_sigterm_drains_and_tells_clients_to_reconnect(live_server: LiveServer) -> None:
    _admin, users, cid = await setup_group(live_server, 2)
    ws = await Ws.connect(live_server.ws_url, users[1].token or "")
    sends = [asyncio.create_task(users[0].send(cid, f"d{i}")) for i in range(20)]
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    stopping = loop.run_in_executor(None, live_server.stop)
    frame = await ws.recv_type("reconnect", timeout=15)
    assert frame["reason"]
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit is by signal.
    assert await stopping in (0, -15)
    assert "Application shutdown complete" in live_server.logs()
    acked = []
    for task in sends:
        # One that was not acknowledged would be retried by the client with the same id.
        with contextlib.suppress(httpx.HTTPError, KeyError, TypeError):
            acked.append((await task)["seq"])
    live_server.start()
    again = await login(live_server.url, "user0", "plum-orbit-123")
    stored = {m["seq"] for m in (await again.get(f"/conversations/{cid}/messages"))["messages"]}
    assert set(acked) <= stored


async def test_idempotency_holds_across_a_crash(live_server: LiveServer) -> None:
    _admin, users, cid = await setup_group(live_server, 2)
    key = uuid.uuid4().hex
    original = await users[0].send(cid, "once", client_msg_id=key)
    live_server.kill()
    again = await login(live_server.url, "user0", "plum-orbit-123")
    retry = await again.send(cid, "once", client_msg_id=key)
    assert retry["id"] == original["id"] and retry["seq"] == original["seq"]
