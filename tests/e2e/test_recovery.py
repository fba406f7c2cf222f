"""A node that loses PostgreSQL or Redis says so on /readyz (liveness stays green),
keeps its WebSocket connections, and recovers by itself when they return; nothing that
was acknowledged is lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import REDIS_URL, Backend, LiveServer, free_port
from tests.helpers import Ws, login, make_user
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("backend", ["postgres"], indirect=True)]


async def wait_status(url: str, path: str, status: int, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            r = await client.get(url + path, timeout=3)
            if r.status_code == status or time.monotonic() > deadline:
                assert r.status_code == status, r.text
                return r
            await asyncio.sleep(0.2)


async def test_node_survives_losing_redis_and_postgres(tmp_path: Path, backend: Backend) -> None:
    assert backend.database_url is not None
    pg = urlsplit(backend.database_url)
    redis = urlsplit(REDIS_URL)
    pg_proxy = await TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432).start()
    redis_proxy = await TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379).start()
    env = {
        **backend.env,
        "TIDINGS_DATABASE_URL": backend.database_url.replace(
            f"{pg.hostname}:{pg.port}", f"127.0.0.1:{pg_proxy.port}"
        ),
        "TIDINGS_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0",
    }
    server = LiveServer(tmp_path / "data", free_port(), env=env)
    await asyncio.to_thread(server.start)
    try:
        admin = await login(server.url, "admin", server.admin_password)
        alice, bob = await make_user(admin, "alice"), await make_user(admin, "bob")
        cid = (
            await alice.post(
                "/conversations", {"kind": "direct", "member_ids": [bob.id]}, expect=201
            )
        )["conversation"]["id"]
        ws_bob = await Ws.connect(server.ws_url, bob.token or "")
        ws_alice = await Ws.connect(server.ws_url, alice.token or "")
        acked: list[int] = []

        async def send(text: str) -> dict[str, object]:
            reply = await ws_alice.request(
                {
                    "type": "send",
                    "conversation_id": cid,
                    "client_msg_id": uuid.uuid4().hex,
                    "body": text,
                }
            )
            if reply["type"] == "ack":
                acked.append(reply["message"]["seq"])
            return reply

        assert (await send("all well"))["type"] == "ack"
        await wait_status(server.url, "/readyz", 200)

        # Redis goes away: not ready, still alive, connections kept, messages still
        # committed and even delivered on this node (it catches up from the database).
        await redis_proxy.cut()
        r = await wait_status(server.url, "/readyz", 503)
        assert r.json()["error"]["code"] == "unavailable" and "bus" in r.json()["error"]["details"]
        await wait_status(server.url, "/healthz", 200)
        assert (await send("while redis is away"))["type"] == "ack"
        delivered = [(await ws_bob.event("message", timeout=10))["event"]["message"]["seq"]]
        await redis_proxy.restore()
        await wait_status(server.url, "/readyz", 200)

        # PostgreSQL goes away: not ready; a send is refused as unavailable (never acked),
        # the connection stays open; when it returns, everything works again.
        await pg_proxy.cut()
        r = await wait_status(server.url, "/readyz", 503)
        assert "database" in r.json()["error"]["details"]
        failed = await send("while the database is away")
        assert failed["type"] == "error" and failed["error"]["code"] == "unavailable", failed
        assert (await ws_alice.request({"type": "ping"}))["type"] == "ack"
        await pg_proxy.restore()
        await wait_status(server.url, "/readyz", 200)
        assert (await send("back again"))["type"] == "ack"
        page = await bob.get(f"/conversations/{cid}/messages")
        stored = [m["seq"] for m in page["messages"]]
        assert stored == acked == [1, 2, 3]
        # Bob's connection lived through both outages and got each message once, in order.
        while len(delivered) < 3:
            delivered.append((await ws_bob.event("message", timeout=10))["event"]["message"]["seq"])
        assert delivered == [1, 2, 3]
    finally:
        await asyncio.to_thread(server.stop)
        await pg_proxy.close()
        await redis_proxy.close()
