"""Three nodes on PostgreSQL and Redis behind HAProxy: real-time delivery between
nodes, and a node killed with SIGKILL while senders keep sending. The checker counts
lost, duplicated and out-of-order messages over every acknowledged send: all zero."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets

from tests.conftest import Backend
from tests.e2e.cluster import Cluster
from tests.helpers import Ws, login, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("backend", ["postgres"], indirect=True)]


@pytest.fixture
def cluster(tmp_path: Path, backend: Backend) -> Any:
    c = Cluster(tmp_path, backend)
    try:
        c.start()
        yield c
    finally:
        c.stop()


class Receiver:
    """A client that keeps a live stream through the load balancer and resumes from its
    last position after any disconnection, recording every message it sees."""

    def __init__(self, url: str, token: str, cid: str, position: str) -> None:
        self.url, self.token, self.cid = url, token, cid
        self.position: str | None = position  # what it saw before: it resumes from there
        self.seqs: list[int] = []
        self.positions: list[int] = []
        self.reconnects = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            try:
                async with websockets.connect(self.url, open_timeout=3) as conn:
                    auth: dict[str, Any] = {"type": "auth", "token": self.token}
                    if self.position is not None:
                        auth["since"] = self.position
                    await conn.send(orjson.dumps(auth).decode())
                    while not self.stop.is_set():
                        try:
                            raw = await asyncio.wait_for(conn.recv(), 0.2)
                        except TimeoutError:
                            continue
                        frame = orjson.loads(raw)
                        if frame["type"] == "ready" and self.position is None:
                            self.position = frame["position"]
                        if frame["type"] != "event":
                            continue
                        self.positions.append(int(frame["position"]))
                        self.position = frame["position"]
                        event = frame["event"]
                        if event["kind"] == "message" and event["conversation_id"] == self.cid:
                            self.seqs.append(event["message"]["seq"])
            except (OSError, websockets.WebSocketException, TimeoutError):
                self.reconnects += 1
                await asyncio.sleep(0.05 + random.random() * 0.1)


class Sender:
    """Sends through the load balancer and, like the SDK, retries a send whose ack it
    did not get, with the same client_msg_id, until it is acknowledged."""

    def __init__(self, url: str, token: str, cid: str, name: str) -> None:
        self.url, self.token, self.cid, self.name = url, token, cid, name
        self.acked: dict[str, int] = {}
        self.retries = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        n = 0
        conn = None
        while not self.stop.is_set():
            client_msg_id = f"{self.name}-{n}"
            try:
                if conn is None:
                    conn = await websockets.connect(self.url, open_timeout=3)
                    await conn.send(orjson.dumps({"type": "auth", "token": self.token}).decode())
                await conn.send(
                    orjson.dumps(
                        {
                            "type": "send",
                            "ref": client_msg_id,
                            "conversation_id": self.cid,
                            "client_msg_id": client_msg_id,
                            "body": f"{self.name} {n}",
                        }
                    ).decode()
                )
                async with asyncio.timeout(5):
                    while True:
                        frame = orjson.loads(await conn.recv())
                        if frame["type"] == "ack" and frame.get("ref") == client_msg_id:
                            self.acked[client_msg_id] = frame["message"]["seq"]
                            break
                        if frame["type"] == "error" and frame.get("ref") == client_msg_id:
                            raise OSError(frame["error"]["code"])
                n += 1
                await asyncio.sleep(0.01)
            except (OSError, websockets.WebSocketException, TimeoutError):
                self.retries += 1
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                conn = None
                await asyncio.sleep(0.05 + random.random() * 0.1)
        if conn is not None:
            await conn.close()


async def test_cluster_delivers_across_nodes_and_survives_a_killed_node(cluster: Cluster) -> None:
    admin = await login(cluster.url, "admin", cluster.nodes[0].admin_password)
    users = [await make_user(admin, f"member{i}") for i in range(6)]
    cid = (
        await users[0].post(
            "/conversations",
            {
                "kind": "group",
                "name": "cluster",
                "member_ids": [u.id for u in users[1:]],
            },
            expect=201,
        )
    )["conversation"]["id"]

    # Real-time delivery between nodes: six clients through HAProxy spread over nodes.
    sockets = [await Ws.connect(cluster.ws_url, u.token or "") for u in users]
    counts = cluster.connections()
    assert sum(counts) == 6 and sum(1 for c in counts if c > 0) >= 2, counts
    sent = await users[0].send(cid, "hello, every node")
    for ws in sockets:
        frame = await ws.event("message", timeout=5)
        assert frame["event"]["message"]["id"] == sent["id"]
    for ws in sockets:
        await ws.close()

    # Presence and typing between nodes: bob on node 1 sees alice arrive on node 0.
    alice, bob = users[0], users[1]
    ws_bob = await Ws.connect(cluster.nodes[1].ws_url, bob.token or "")
    ws_alice = await Ws.connect(cluster.nodes[0].ws_url, alice.token or "")
    # The six sockets just closed may still be going offline (each node tells the others
    # once its connection is cleaned up), alice's old one included, possibly after bob
    # connected: those frames are true, and not the point here.
    online = {"type": "presence", "user_id": alice.id, "state": "online"}
    async with asyncio.timeout(5):
        while (arrived := await ws_bob.recv_type("presence")) != online:
            assert arrived["state"] == "offline" and arrived["user_id"] in {u.id for u in users}
    assert arrived == online
    assert (await ws_alice.request({"type": "typing", "conversation_id": cid}))["type"] == "ack"
    assert (await ws_bob.recv_type("typing", timeout=5))["user_id"] == alice.id
    states = await bob.get("/presence", params={"user_ids": f"{alice.id},{users[5].id}"})
    assert states["presence"] == {alice.id: "online", users[5].id: "offline"}
    await ws_alice.close()
    await ws_bob.close()

    # Now under load: three senders, six receivers; kill the busiest node meanwhile.
    positions = [ws.last_position for ws in sockets]  # each saw "hello, every node"
    receivers = [
        Receiver(cluster.ws_url, u.token or "", cid, positions[i]) for i, u in enumerate(users)
    ]
    senders = [Sender(cluster.ws_url, u.token or "", cid, f"s{i}") for i, u in enumerate(users[:3])]
    tasks = [asyncio.create_task(x.run()) for x in (*receivers, *senders)]
    await asyncio.sleep(2.5)
    counts = cluster.connections()
    victim = cluster.nodes[max(range(len(counts)), key=lambda i: counts[i])]
    victim.stop(signal.SIGKILL)
    await asyncio.sleep(5.0)
    for s in senders:
        s.stop.set()
    await asyncio.gather(*tasks[len(receivers) :])
    acked = {seq for s in senders for seq in s.acked.values()}
    assert len(acked) == sum(len(s.acked) for s in senders), "two sends acked with one seq"
    # Let the receivers catch up, then check every one of them.
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline:
        if all(acked <= set(r.seqs) for r in receivers):
            break
        await asyncio.sleep(0.2)
    for r in receivers:
        r.stop.set()
    await asyncio.gather(*tasks[: len(receivers)])

    print(
        f"\ncluster: {len(acked)} acked sends, {sum(s.retries for s in senders)} send retries, "
        f"{sum(r.reconnects for r in receivers)} receiver reconnects, "
        f"{sum(len(r.seqs) for r in receivers)} deliveries checked"
    )
    assert len(acked) >= 50, f"too little traffic to mean anything: {len(acked)}"
    assert any(r.reconnects for r in receivers), "the kill did not disconnect anyone"
    for r in receivers:
        lost = acked - set(r.seqs)
        duplicated = len(r.seqs) - len(set(r.seqs))
        out_of_order = sum(1 for a, b in zip(r.seqs, r.seqs[1:], strict=False) if b <= a)
        assert (len(lost), duplicated, out_of_order) == (0, 0, 0), (lost, duplicated, out_of_order)
        assert r.positions == sorted(set(r.positions))
    # The stored conversation has exactly the acknowledged messages (and the first one).
    history = await users[1].get(
        f"/conversations/{cid}/messages", params={"after_seq": 1, "limit": 200}
    )
    stored = [m["seq"] for m in history["messages"]]
    while history["has_more"]:
        history = await users[1].get(
            f"/conversations/{cid}/messages", params={"after_seq": stored[-1], "limit": 200}
        )
        stored += [m["seq"] for m in history["messages"]]
    assert set(stored) == acked and stored == list(range(2, 2 + len(stored)))


async def test_nginx_config_serves_https_and_wss_across_nodes(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/nginx.conf as shipped (ports, certificate and node addresses filled in):
    TLS termination, WebSocket upgrade, clients spread over nodes, delivery between them."""
    c = Cluster(tmp_path, backend, nodes=2, balancer="nginx")
    try:
        c.start()
        assert c.certificate is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(c.certificate))  # trust the test's own CA
        admin = await login(c.url, "admin", c.nodes[0].admin_password)
        users = [await make_user(admin, f"tls{i}") for i in range(4)]
        cid = (
            await users[0].post(
                "/conversations",
                {
                    "kind": "group",
                    "name": "tls",
                    "member_ids": [u.id for u in users[1:]],
                },
                expect=201,
            )
        )["conversation"]["id"]
        assert c.ws_url.startswith("wss://")
        sockets = [await Ws.connect(c.ws_url, u.token or "") for u in users]
        counts = c.connections()
        assert sum(counts) == 4 and min(counts) >= 1, counts
        sent = await users[3].send(cid, "over TLS, through nginx")
        for ws in sockets:
            assert (await ws.event("message", timeout=5))["event"]["message"]["id"] == sent["id"]
        for ws in sockets:
            await ws.close()
    finally:
        c.stop()
