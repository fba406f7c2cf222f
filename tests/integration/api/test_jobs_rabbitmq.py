"""The server's worker role on RabbitMQ, in-process, on both backends: jobs go out
through the broker (its queue depths in the admin stats) and a worker node that cannot
reach the broker says so in /readyz while it keeps serving."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import MakeServer
from tests.helpers import http_client, login
from tests.rabbit import delete_prefix, require_rabbitmq, unique_prefix
from tidings.core.jobs import Job, JobPolicy


async def test_jobs_run_through_rabbitmq(make_server: MakeServer) -> None:
    url, prefix = require_rabbitmq(), unique_prefix()
    try:
        async with make_server(amqp_url=url, amqp_prefix=prefix) as server:
            jobs = server.container.services.jobs
            seen: list[str] = []

            async def handler(job: Job) -> None:
                seen.append(str(job.payload["n"]))

            # (a worker consumes the queues of the kinds registered when it starts, as
            # every feature's are; this test's kind comes later, so on the default one)
            jobs.register("test.rabbit", handler, JobPolicy(max_attempts=3))
            async with server.container.store.write() as tx:
                for n in range(20):
                    await jobs.enqueue(tx, "test.rabbit", {"n": n})
            deadline = time.monotonic() + 20
            while len(seen) < 20:
                assert time.monotonic() < deadline, f"ran {len(seen)} of 20"
                await asyncio.sleep(0.05)
            assert sorted(seen, key=int) == [str(n) for n in range(20)]
            admin = await login(server.url, server.admin_username, server.admin_password)
            stats = await admin.get("/admin/jobs/stats")
            await admin.close()
            assert stats["queues"]["default"] == {"done": 20}
            # the broker's own queues, named under the prefix, are empty again
            assert stats["broker"][f"{prefix}.jobs.default"] == 0
            assert stats["broker"][f"{prefix}.dead"] == 0
            async with http_client(server.url) as c:
                assert (await c.get("/readyz")).status_code == 200
    finally:
        await delete_prefix(url, prefix, ["default"])


async def test_a_worker_without_its_broker_is_not_ready_but_serves(
    make_server: MakeServer,
) -> None:
    async with make_server(amqp_url="amqp://guest:guest@127.0.0.1:9/") as server:
        async with http_client(server.url) as c:
            ready = await c.get("/readyz")
            assert ready.status_code == 503
            assert "queue" in ready.json()["error"]["details"]
            assert (await c.get("/healthz")).status_code == 200
        admin = await login(server.url, server.admin_username, server.admin_password)
        conv = await admin.post(
            "/conversations", {"kind": "group", "name": "still", "member_ids": []}, expect=201
        )
        sent = await admin.send(conv["conversation"]["id"], "sends do not need the broker")
        assert sent["seq"] == 1
        await admin.close()
