"""Jobs survive what production throws at them, on SQLite and PostgreSQL: a worker killed
with SIGKILL in the middle of its jobs, RabbitMQ restarted under load, a relay that died
between committing and publishing (or between publishing and marking). Every job runs,
and none has a second effect: the test job posts a message with its job id as
client_msg_id, so a job done twice would show as two messages (tests/e2e/job_worker.py).
Real processes, the real broker, the real database; nothing mocked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.conftest import Backend
from tests.e2e.job_worker import register_test_kinds
from tests.rabbit import PrivateRabbit, delete_prefix, require_rabbitmq, unique_prefix
from tidings.app.container import Container
from tidings.app.settings import Settings
from tidings.core.jobs import JobState
from tidings.core.models import ConversationKind, OrgRole
from tidings.services.passwords import Passwords
from tidings.store import migrations

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "plum-orbit-123-jobs"
pytestmark = pytest.mark.timeout(180)


class Site:
    """One site's settings, a container in the test process (to enqueue and inspect),
    and its worker processes."""

    def __init__(self, tmp_path: Path, backend: Backend, amqp_url: str | None) -> None:
        self.prefix = unique_prefix()
        self.amqp_url = amqp_url
        self.env = {
            "TIDINGS_DATA_DIR": str(tmp_path / "data"),
            "TIDINGS_JOBS_CONCURRENCY": "4",
            "TIDINGS_JOBS_LEASE_GRACE_SECONDS": "1",
            "TIDINGS_JOBS_POLL_SECONDS": "0.2",
            "TIDINGS_JOBS_BACKOFF_BASE_SECONDS": "0.2",
            "TIDINGS_JOBS_BACKOFF_MAX_SECONDS": "1",
            "TIDINGS_AMQP_PREFIX": self.prefix,
            "TIDINGS_LOG_FORMAT": "json",
            **backend.env,
        }
        if amqp_url:
            self.env["TIDINGS_AMQP_URL"] = amqp_url
        self.log = tmp_path / "workers.log"
        self.workers: list[subprocess.Popen[bytes]] = []
        (tmp_path / "data").mkdir()
        self.settings = Settings.model_validate(
            {k.removeprefix("TIDINGS_").lower(): v for k, v in self.env.items()}
        )
        self.container = Container(
            self.settings, passwords=Passwords(time_cost=1, memory_kib=8, parallelism=1)
        )
        register_test_kinds(self.container)
        self.conversation_id = ""
        self.sender_id = ""

    async def prepare(self) -> None:
        if self.settings.database_url is None:  # PostgreSQL: the template is migrated
            await asyncio.to_thread(migrations.upgrade, self.settings.db_url)
        users = self.container.services.users
        boss = await users.create(None, "boss", PASSWORD, role=OrgRole.ADMIN)
        other = await users.create(None, "ola", PASSWORD)
        conv, _ = await self.container.services.conversations.create(
            boss, ConversationKind.GROUP, [other.id], "jobs"
        )
        self.conversation_id, self.sender_id = conv.id, boss.id

    async def enqueue(self, count: int, sleep: float, tag: str = "m") -> list[str]:
        jobs = self.container.services.jobs
        async with self.container.store.write() as tx:
            return [
                await jobs.enqueue(
                    tx,
                    "test.post",
                    {
                        "conversation_id": self.conversation_id,
                        "sender_id": self.sender_id,
                        "body": f"{tag}{i}",
                        "sleep": sleep,
                    },
                )
                for i in range(count)
            ]

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.log.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.job_worker"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    async def states(self) -> dict[JobState, int]:
        async with self.container.store.read() as tx:
            counts = await tx.job_counts()
        found: dict[JobState, int] = {}
        for (queue, state), n in counts.items():
            if queue == "search":  # the search.index jobs the test's posts make: not its own
                continue
            found[JobState(state)] = found.get(JobState(state), 0) + n
        return found

    async def wait_for(
        self, check: Callable[[dict[JobState, int]], bool], timeout: float = 60
    ) -> dict[JobState, int]:
        deadline = time.monotonic() + timeout
        while True:
            states = await self.states()
            if check(states):
                return states
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs stuck at {states}:\n{self.logs()[-3000:]}")
            await asyncio.sleep(0.1)

    async def bodies(self) -> list[str]:
        async with self.container.store.read() as tx:
            page = await tx.list_messages(
                self.conversation_id, before_seq=None, after_seq=0, limit=10_000, max_seq=None
            )
        return [m.body for m in page.messages]

    async def retried(self) -> int:
        """Jobs that took more than one attempt (they were in a dead worker's hands)."""
        async with self.container.store.read() as tx:
            jobs = await tx.list_jobs([], None, None, 10_000)
        return sum(1 for j in jobs if j.attempts > 1)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        await self.container.close()
        if self.amqp_url:
            with contextlib.suppress(Exception):  # a private broker may be gone already
                await delete_prefix(self.amqp_url, self.prefix, ["default"])


@pytest.fixture
async def rabbit_site(tmp_path: Path, backend: Backend) -> AsyncIterator[Site]:
    site = Site(tmp_path, backend, require_rabbitmq())
    await site.prepare()
    try:
        yield site
    finally:
        await site.close()


def _holding(done: int) -> Callable[[dict[JobState, int]], bool]:
    """At least `done` test jobs done and at least one in a worker's hands right now."""
    return lambda s: s.get(JobState.DONE, 0) >= done and s.get(JobState.RUNNING, 0) > 0


def _all_done(total: int) -> Callable[[dict[JobState, int]], bool]:
    return lambda s: s.get(JobState.DONE, 0) == total


async def _assert_each_once(site: Site, tag: str, total: int) -> None:
    bodies = [b for b in await site.bodies() if b.startswith(tag)]
    assert sorted(bodies) == sorted(f"{tag}{i}" for i in range(total)), (
        f"{len(bodies)} messages for {total} jobs, {len(set(bodies))} distinct"
    )


async def test_a_worker_killed_in_the_middle_of_jobs_loses_none_and_doubles_none(
    rabbit_site: Site,
) -> None:
    site = rabbit_site
    total = 120
    await site.enqueue(total, sleep=0.05)
    first = site.start_worker()
    # killed while it holds some of them (its slots are shared with the search.index
    # jobs the posts make, so "some done" alone can catch it between test jobs)
    states = await site.wait_for(_holding(total // 3))
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    states = await site.states()
    assert states.get(JobState.DONE, 0) < total, "killed too late to be in the middle"
    site.start_worker()  # RabbitMQ delivers the dead worker's jobs again, flagged redelivered
    await site.wait_for(_all_done(total))
    await _assert_each_once(site, "m", total)
    assert await site.retried() > 0  # some were in the killed worker's hands


async def test_a_relay_that_died_after_publishing_before_marking_doubles_nothing(
    rabbit_site: Site,
) -> None:
    """The relay's crash window: jobs published, the node gone before they were marked
    queued. The next relay publishes them again: every job reaches the workers twice,
    and each runs once (the consumer's claim in the database)."""
    site = rabbit_site
    total = 40
    await site.enqueue(total, sleep=0.01)
    async with site.container.store.read() as tx:
        due = await tx.due_jobs(site.container.deps.clock.now(), 1000)
    assert len(due) == total
    await site.container.queue.publish(due)  # ... and the relay dies here
    assert (await site.states()) == {JobState.PENDING: total}
    site.start_worker()  # its relay publishes all of them again
    await site.wait_for(_all_done(total))
    await _assert_each_once(site, "m", total)


async def test_jobs_committed_while_no_relay_runs_all_run_later(rabbit_site: Site) -> None:
    """Between commit and publish nothing is in the broker: the outbox holds it."""
    site = rabbit_site
    await site.enqueue(25, sleep=0, tag="early")
    await asyncio.sleep(0.5)
    assert (await site.states()) == {JobState.PENDING: 25}
    site.start_worker()
    await site.wait_for(_all_done(25))
    await site.enqueue(25, sleep=0, tag="late")  # and the running relay picks these up
    await site.wait_for(_all_done(50))
    await _assert_each_once(site, "early", 25)
    await _assert_each_once(site, "late", 25)


async def test_rabbitmq_restarted_under_load_loses_no_job(tmp_path: Path, backend: Backend) -> None:
    broker = PrivateRabbit(tmp_path / "rabbit")
    broker.start()
    (tmp_path / "site").mkdir()
    site = Site(tmp_path / "site", backend, broker.url)
    try:
        await site.prepare()
        total = 150
        await site.enqueue(total, sleep=0.05)
        site.start_worker()
        # the crash comes while the worker holds deliveries (a job visibly running): with
        # "30 done" alone it could catch the worker idle between the relay's batches, and
        # then nothing was in flight to be delivered again
        await site.wait_for(
            lambda s: s.get(JobState.DONE, 0) >= 30 and s.get(JobState.RUNNING, 0) > 0
        )
        broker.stop(signal.SIGKILL)  # a crash: unacked deliveries are not acked to anyone
        await asyncio.sleep(1.0)
        broker.start()
        await site.wait_for(_all_done(total), timeout=120)
        await _assert_each_once(site, "m", total)
        assert await site.retried() > 0  # delivered again after the broker came back
    finally:
        await site.close()
        broker.stop()


async def test_in_process_jobs_survive_a_killed_server(tmp_path: Path, backend: Backend) -> None:
    """No broker (the embedded default): a worker killed holding jobs leaves them
    running under a lease; the next worker runs them when the lease is out."""
    site = Site(tmp_path, backend, None)
    try:
        await site.prepare()
        total = 60
        await site.enqueue(total, sleep=0.2)
        first = site.start_worker()
        await site.wait_for(_holding(10))
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert (await site.states()).get(JobState.RUNNING, 0) > 0
        site.start_worker()
        await site.wait_for(_all_done(total))  # after the 5 s timeout + 1 s grace
        await _assert_each_once(site, "m", total)
        assert await site.retried() > 0
    finally:
        await site.close()
