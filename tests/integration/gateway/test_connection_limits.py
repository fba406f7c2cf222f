"""WebSocket connections per user and per client address (gateway/ws.py): the one over
the cap gets an `error` frame with `rate_limited`, then close 1013 (try again later);
others are served, and a closed connection gives its place back. The client address is
the one a trusted proxy forwards; anyone else's X-Forwarded-For is ignored. (Counts are
the gateway's own, in memory: SQLite only.)"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
import websockets

from tests.conftest import MakeServer, World
from tests.helpers import Ws

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def refused(url: str, token: str, **connect: Any) -> dict[str, Any]:
    """Connect and authenticate; the connection must be refused: its error frame."""
    async with websockets.connect(url, **connect) as conn:
        with contextlib.suppress(websockets.ConnectionClosed):  # refused before it (address)
            await conn.send(orjson.dumps({"type": "auth", "token": token}).decode())
        frame = orjson.loads(await conn.recv())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await conn.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert frame["type"] == "error", frame
    assert frame["error"]["code"] == "rate_limited"
    assert frame["error"]["details"]["retry_after"] > 0
    return dict(frame)


async def test_a_user_holds_at_most_their_cap_of_connections(make_server: MakeServer) -> None:
    async with make_server(max_connections_per_user=2) as server:
        world = World(server)
        try:
            ann, ben = await world.users("ann", "ben")
            first, second = await world.ws(ann), await world.ws(ann)
            frame = await refused(server.ws_url, ann.token or "")
            assert "2 per user" in frame["error"]["message"]
            ben_ws = await world.ws(ben)  # another user is served
            assert (await ben_ws.request({"type": "ping"}))["type"] == "ack"
            assert (await first.request({"type": "ping"}))["type"] == "ack"  # kept open
            await second.close()
            again = await world.ws(ann)  # a closed one gives its place back
            assert (await again.request({"type": "ping"}))["type"] == "ack"
        finally:
            await world.close()
        await server.counts_nothing()


async def test_forwarded_addresses_hold_at_most_their_cap(make_server: MakeServer) -> None:
    async with make_server(max_connections_per_address=2) as server:
        world = World(server)
        try:
            ann, ben = await world.users("ann", "ben")
            token = ann.token or ""

            def via_proxy(client: str) -> dict[str, Any]:
                # 127.0.0.1 is the default trusted proxy
                return {"additional_headers": {"X-Forwarded-For": client}}

            held = [
                await websockets.connect(server.ws_url, **via_proxy("10.0.0.5")) for _ in (1, 2)
            ]
            frame = await refused(server.ws_url, token, **via_proxy("10.0.0.5"))
            assert "2 per address" in frame["error"]["message"]
            # another forwarded address, and the proxy's own connections, are served
            for ws in [
                await Ws.connect(server.ws_url, token),
                *[await Ws.connect(server.ws_url, token) for _ in (1, 2, 3)],
            ]:
                assert (await ws.request({"type": "ping"}))["type"] == "ack"
                await ws.close()
            async with websockets.connect(server.ws_url, **via_proxy("10.0.0.6")) as other:
                await other.send(orjson.dumps({"type": "auth", "token": token}).decode())
                assert orjson.loads(await other.recv())["type"] == "ready"
            # X-Forwarded-For from an untrusted peer names no one: it counts as itself
            untrusted = {"local_addr": ("127.0.0.2", 0)}
            spoofers = [
                await websockets.connect(server.ws_url, **untrusted, **via_proxy(f"10.1.0.{i}"))
                for i in (1, 2)
            ]
            with pytest.raises((OSError, websockets.InvalidHandshake)):
                # refused by the connection cap before the handshake
                await websockets.connect(server.ws_url, **untrusted, **via_proxy("10.1.0.3"))
            await held.pop().close()  # one closes: the address may connect again
            async with websockets.connect(server.ws_url, **via_proxy("10.0.0.5")) as again:
                await again.send(orjson.dumps({"type": "auth", "token": ben.token}).decode())
                assert orjson.loads(await again.recv())["type"] == "ready"
            for conn in held + spoofers:
                await conn.close()
        finally:
            await world.close()
        await server.counts_nothing()
