"""examples/webhook_receiver.py, the receiver docs/integrations.md shows, run as its own
process against a real delivery: it accepts the genuine one and refuses forgeries, stale
timestamps and repeats."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import AppServer, MakeServer, World, free_port

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "webhook_receiver.py"


@pytest.fixture
async def server(make_server: MakeServer) -> AsyncIterator[AppServer]:
    async with make_server(webhook_allowed_networks="127.0.0.0/8") as s:
        yield s


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return (
        "sha256="
        + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    )


async def test_the_example_receiver_verifies_a_real_delivery(
    server: AppServer, world: World
) -> None:
    admin = await world.admin()
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    made = await admin.post("/webhooks", {"url": url, "events": ["message"]}, expect=201)
    secret = made["webhook"]["secret"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--port",
        str(port),
        env={**os.environ, "TIDINGS_WEBHOOK_SECRET": secret},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        started = await asyncio.wait_for(proc.stderr.readline(), 10)
        assert b"listening" in started
        await ann.send(cid, "to the receiver 你好")
        jobs = server.container.services.jobs
        async with asyncio.timeout(15):
            line = b""
            while not line:
                await jobs.drain()
                try:
                    line = await asyncio.wait_for(proc.stdout.readline(), 0.2)
                except TimeoutError:
                    continue
        got = json.loads(line)
        assert got["kind"] == "message"
        assert got["event"]["message"]["body"] == "to the receiver 你好"
        assert got["event"]["conversation_id"] == cid
        log = (await admin.get(f"/webhooks/{made['webhook']['id']}/deliveries"))["deliveries"]
        assert [(d["status"], d["response_code"]) for d in log] == [("ok", 200)]
        # forgeries, stale deliveries and repeats get nowhere
        body = json.dumps({"kind": "message"}).encode()
        now = str(int(time.time()))
        async with httpx.AsyncClient(base_url=url) as c:
            bad = await c.post(
                "/",
                content=body,
                headers={
                    "X-Tidings-Timestamp": now,
                    "X-Tidings-Signature": sign("whsec_wrong", now, body),
                    "X-Tidings-Delivery": "forged",
                },
            )
            assert bad.status_code == 401
            old = str(int(time.time()) - 3600)
            stale = await c.post(
                "/",
                content=body,
                headers={
                    "X-Tidings-Timestamp": old,
                    "X-Tidings-Signature": sign(secret, old, body),
                    "X-Tidings-Delivery": "stale",
                },
            )
            assert stale.status_code == 401
            again = await c.post(
                "/",
                content=body,
                headers={
                    "X-Tidings-Timestamp": now,
                    "X-Tidings-Signature": sign(secret, now, body),
                    "X-Tidings-Delivery": got["delivery"],
                },
            )
            assert (again.status_code, again.text) == (200, "duplicate")
        with pytest.raises(TimeoutError):  # none of them was printed as an event
            await asyncio.wait_for(proc.stdout.readline(), 0.5)
    finally:
        proc.terminate()
        await proc.wait()
