"""The in-process harness itself (tests/conftest.py): the container's injected clock and
ids reach what REST and the WebSocket answer, REST goes through the ASGI transport, the
WebSocket through uvicorn on a loopback socket."""

from __future__ import annotations

import httpx

from tests.conftest import MakeServer, World
from tests.fakes import CountingIds, FakeClock
from tests.helpers import TRANSPORTS, http_client


async def test_the_injected_clock_and_ids_are_the_services(make_server: MakeServer) -> None:
    clock, ids = FakeClock(), CountingIds("h")
    async with make_server(clock=clock, ids=ids) as server:
        world = World(server)
        try:
            ann, ben = await world.users("ann", "ben")
            assert ann.id.startswith("h0") and len(ann.id) == 26 and ann.id < ben.id
            cid = await world.conversation(ann, ben)
            clock.advance(90)
            sent = await ann.send(cid, "at a known time")
            assert sent["created_at"] == "2026-11-28T12:01:30Z"
            ws = await world.ws(ben)
            clock.advance(30)
            ack = await (await world.ws(ann)).request(
                {"type": "send", "conversation_id": cid, "client_msg_id": "c2", "body": "x"}
            )
            assert ack["message"]["created_at"] == "2026-11-28T12:02:00Z"
            assert ack["message"]["id"].startswith("h0")
            got = await ws.event("message")
            assert got["event"]["message"]["id"] == ack["message"]["id"] != sent["id"]
        finally:
            await world.close()


async def test_rest_is_in_process_and_the_socket_is_served(world: World) -> None:
    server = world.server
    assert isinstance(TRANSPORTS[server.url], httpx.ASGITransport)
    admin = await world.admin()
    assert admin.http._transport is TRANSPORTS[server.url]
    # The same application answers over the loopback socket (what the SDK uses).
    async with httpx.AsyncClient(base_url=server.url) as over_tcp:
        me = await over_tcp.get(
            "/api/v1/users/me", headers={"authorization": f"Bearer {admin.token}"}
        )
    assert me.status_code == 200 and me.json()["user"]["username"] == "admin"
    async with http_client(server.url) as in_process:
        assert (await in_process.get("/healthz")).json()["status"] == "ok"
