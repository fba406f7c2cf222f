"""The SDK's admin view of jobs against the application in-process, on both backends:
a dead letter is seen, retried and purged from code."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import AppServer
from tidings.core.jobs import Job, JobPolicy
from tidings.sdk import Client, Forbidden, JobInfo


async def _until(client: Client, job_id: str, state: str) -> JobInfo:
    deadline = time.monotonic() + 15
    while True:
        job = await client.job(job_id)
        if job.state == state:
            return job
        assert time.monotonic() < deadline, f"{job_id} stayed {job.state}"
        await asyncio.sleep(0.05)


async def test_the_sdk_sees_retries_and_purges_dead_letters(server: AppServer) -> None:
    jobs = server.container.services.jobs
    broken = True

    async def handler(job: Job) -> None:
        if broken:
            raise ValueError("bad payload")

    jobs.register("test.sdk", handler, JobPolicy(max_attempts=1, queue="sdk"))
    async with server.container.store.write() as tx:
        job_id = await jobs.enqueue(tx, "test.sdk", {"n": 7})
    async with Client(server.url) as admin:
        await admin.login(server.admin_username, server.admin_password)
        dead = await _until(admin, job_id, "dead")
        assert (dead.kind, dead.queue, dead.payload) == ("test.sdk", "sdk", {"n": 7})
        assert dead.last_error == "ValueError: bad payload" and dead.finished_at is not None
        assert [j.id for j in await admin.jobs(states=["dead"])] == [job_id]
        stats = await admin.job_stats()
        assert stats.dead == 1 and stats.queues["sdk"] == {"dead": 1}
        broken = False
        assert await admin.retry_dead_jobs(kind="test.sdk") == 1
        await _until(admin, job_id, "done")
        assert await admin.purge_jobs(states=["done"], kind="test.sdk") == 1
        assert await admin.jobs(kind="test.sdk") == []
        user = await admin.create_user("jobless", "plum-orbit-123-sdk")
    async with Client(server.url) as member:
        await member.login(user.username, "plum-orbit-123-sdk")
        with pytest.raises(Forbidden):
            await member.job_stats()
