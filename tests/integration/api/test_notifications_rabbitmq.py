"""Web Push and email digests through RabbitMQ, run by the server's own worker role (not
drained by the test), on both backends: a push service that fails once gets the push
again on the retry (decrypting to the same payload), and a digest arrives at the SMTP
server on loopback."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import MakeServer, World
from tests.push_receiver import PushEndpoint
from tests.rabbit import delete_prefix, require_rabbitmq, unique_prefix
from tests.smtp_server import SmtpServer


async def test_push_and_digest_through_rabbitmq(make_server: MakeServer) -> None:
    url, prefix = require_rabbitmq(), unique_prefix()
    queues = ["default", "push", "email"]
    try:
        async with SmtpServer() as smtp, PushEndpoint(statuses=[503]) as endpoint:
            settings = {
                "amqp_url": url,
                "amqp_prefix": prefix,
                "webhook_allowed_networks": "127.0.0.0/8",
                "jobs_backoff_base_seconds": 0.05,
                "jobs_poll_seconds": 0.1,
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_tls": "none",
                "digest_delay_seconds": 0.5,
            }
            async with make_server(**settings) as server:
                queues = server.container.services.jobs.queues
                world = World(server)
                try:
                    ann, ben = await world.users("ann", "ben")
                    cid = await world.conversation(ann, ben, kind="direct")
                    await ben.post("/push/subscriptions", endpoint.subscription(), expect=201)
                    await ben.call(
                        "PUT",
                        "/users/me/notifications/offline",
                        json={"email": "ben@example.org"},
                        expect=200,
                    )
                    # the worker's consumer starts at the head of the stream when first
                    # seen: wait for it, or the message may come before its start
                    store = server.container.store
                    while True:
                        async with store.read() as tx:
                            if "notifications" in await tx.job_cursors():
                                break
                        await asyncio.sleep(0.05)
                    sent = await ann.send(cid, "through the broker")
                    deadline = time.monotonic() + 30
                    while len(endpoint.pushes) < 2 or not smtp.mails:
                        assert time.monotonic() < deadline, (endpoint.pushes, smtp.mails)
                        await asyncio.sleep(0.05)
                    assert endpoint.failures == []
                    first, second = endpoint.pushes[:2]
                    assert first.json() == second.json()
                    assert second.json()["seq"] == sent["seq"]
                    assert second.json()["preview"] == "through the broker"
                    assert len(smtp.mails) == 1
                    assert "through the broker" in smtp.mails[0].part("plain")
                finally:
                    await world.close()
    finally:
        await delete_prefix(url, prefix, queues)
