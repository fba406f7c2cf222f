"""The admin REST of jobs over HTTP, on both backends: what an admin sees of queues and
dead letters, retry and purge, the worker role running jobs by itself, and that nobody
else sees any of it."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import AppServer, World
from tidings.core.jobs import Job, JobPolicy


async def _wait(check: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_admins_see_dead_letters_retry_and_purge_them(
    server: AppServer, world: World
) -> None:
    jobs = server.container.services.jobs
    healthy = False
    ran: list[str] = []

    async def handler(job: Job) -> None:
        if not healthy:
            raise RuntimeError("the receiver is down")
        ran.append(job.id)

    jobs.register("test.api", handler, JobPolicy(max_attempts=1))
    admin = await world.admin()
    async with server.container.store.write() as tx:
        job_id = await jobs.enqueue(tx, "test.api", {"hello": "世界"})

    async def dead() -> bool:
        found = await admin.get("/admin/jobs", params={"state": "dead"})
        return [j["id"] for j in found["jobs"]] == [job_id]

    await _wait(dead)  # the server's own worker role ran it (and it failed for good)
    one = (await admin.get(f"/admin/jobs/{job_id}"))["job"]
    assert one["payload"] == {"hello": "世界"} and one["attempts"] == 1
    assert one["last_error"] == "RuntimeError: the receiver is down"
    stats = await admin.get("/admin/jobs/stats")
    assert stats["dead"] == 1 and stats["queues"]["default"]["dead"] == 1
    assert stats["oldest_waiting_seconds"] is None  # nothing waits

    healthy = True
    retried = (await admin.post(f"/admin/jobs/{job_id}/retry"))["job"]
    assert retried["state"] in ("pending", "running", "done")

    async def done() -> bool:
        return bool((await admin.get(f"/admin/jobs/{job_id}"))["job"]["state"] == "done")

    await _wait(done)
    assert ran == [job_id]
    error = await admin.post(f"/admin/jobs/{job_id}/retry", expect=400)
    assert error["error"]["code"] == "invalid_request"
    assert (await admin.post("/admin/jobs/purge", {"states": ["done"]}))["purged"] == 1
    missing = await admin.get(f"/admin/jobs/{job_id}", expect=404)
    assert missing["error"]["code"] == "not_found"
    audit = await admin.get("/audit", params={"limit": 500})
    actions = [e["action"] for e in audit["entries"]]
    assert "job_retried" in actions and "jobs_purged" in actions


async def test_members_see_nothing_of_jobs(world: World) -> None:
    member = await world.user("mia")
    for method, path, body in (
        ("GET", "/admin/jobs", None),
        ("GET", "/admin/jobs/stats", None),
        ("GET", "/admin/jobs/x", None),
        ("POST", "/admin/jobs/x/retry", None),
        ("POST", "/admin/jobs/retry-dead", {}),
        ("POST", "/admin/jobs/purge", {}),
    ):
        answer = await member.call(method, path, expect=403, json=body)
        assert answer["error"]["code"] == "forbidden"


async def test_bad_admin_requests_are_refused_clearly(world: World) -> None:
    admin = await world.admin()
    assert (await admin.get("/admin/jobs", params={"state": "exploded"}, expect=400))["error"]
    assert await admin.post("/admin/jobs/purge", {"states": ["pending"]}, expect=400)
    assert await admin.post("/admin/jobs/purge", {"states": []}, expect=400)
    assert await admin.post("/admin/jobs/purge", {"older_than_seconds": -1}, expect=400)
    assert await admin.get("/admin/jobs/" + "x" * 161, expect=400)
    assert await admin.get("/admin/jobs", params={"limit": 501}, expect=400)
