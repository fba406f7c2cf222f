"""Outgoing webhooks delivered through RabbitMQ by the server's own worker role (not
drained by the test), on both backends: a receiver that fails once gets the same
delivery id again on the retry, signed, and the delivery log says so."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

from tests.conftest import MakeServer, World
from tests.rabbit import delete_prefix, require_rabbitmq, unique_prefix
from tests.webhook_receiver import Receiver


async def test_a_delivery_retried_through_rabbitmq_keeps_its_id(
    make_server: MakeServer,
) -> None:
    url, prefix = require_rabbitmq(), unique_prefix()
    settings = {
        "amqp_url": url,
        "amqp_prefix": prefix,
        "webhook_allowed_networks": "127.0.0.0/8",
        "jobs_backoff_base_seconds": 0.05,
        "jobs_poll_seconds": 0.1,
        "webhook_cache_seconds": 0.1,
    }
    try:
        async with make_server(**settings) as server, Receiver(statuses=[503]) as receiver:
            world = World(server)
            try:
                admin = await world.admin()
                ann, ben = await world.users("ann", "ben")
                cid = await world.conversation(ann, ben)
                made = (
                    await admin.post(
                        "/webhooks", {"url": receiver.url, "events": ["message"]}, expect=201
                    )
                )["webhook"]
                await asyncio.sleep(0.3)  # the worker's cached list of webhooks renews
                await ann.send(cid, "through the broker")
                deadline = time.monotonic() + 30
                while len(receiver.received) < 2:
                    assert time.monotonic() < deadline, f"got {len(receiver.received)} of 2"
                    await asyncio.sleep(0.05)
                first, second = receiver.received[:2]
                delivery = first.headers["x-tidings-delivery"]
                assert second.headers["x-tidings-delivery"] == delivery
                assert second.json()["message"]["body"] == "through the broker"
                stamp = second.headers["x-tidings-timestamp"].encode()
                mac = hmac.new(made["secret"].encode(), stamp + b"." + second.body, hashlib.sha256)
                assert second.headers["x-tidings-signature"] == "sha256=" + mac.hexdigest()
                while True:  # the log row is written once the answer is in
                    log = (await admin.get(f"/webhooks/{made['id']}/deliveries"))["deliveries"]
                    if len(log) == 2 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                assert [(d["status"], d["response_code"]) for d in log] == [
                    ("ok", 200),
                    ("failed", 503),
                ]
                stats = await admin.get("/admin/jobs/stats")
                assert any(name.startswith(prefix) for name in stats["broker"])
            finally:
                await world.close()
    finally:
        await delete_prefix(url, prefix, ["default", "webhooks"])
