"""Durable jobs in-process, on SQLite and PostgreSQL: the outbox commits with what it
follows from, handlers retry with backoff then dead-letter, dead letters are retried and
purged, runners that die are replaced, and event consumers turn committed events into
jobs exactly once each (services/jobs.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tests.fakes import FakeClock
from tidings.app.container import Container
from tidings.core.errors import Forbidden, InvalidRequest, NotFound
from tidings.core.jobs import Job, JobPolicy, JobState, NewJob, Permanent
from tidings.core.models import ConversationKind, OrgRole, StoredEvent, User
from tidings.services.hub import Services

PASSWORD = "plum-orbit-123-jobs"


@pytest.fixture
def container_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container_settings() -> dict[str, object]:
    return {"jobs_backoff_base_seconds": 10, "jobs_backoff_max_seconds": 100}


def _svc(container: Container) -> Services:
    return container.services


async def _admin(svc: Services) -> User:
    return await svc.users.create(None, "boss", PASSWORD, role=OrgRole.ADMIN)


async def test_a_job_exists_exactly_when_its_transaction_commits(container: Container) -> None:
    svc = _svc(container)
    seen: list[dict[str, object]] = []

    async def handler(job: Job) -> None:
        seen.append(job.payload)

    svc.jobs.register("test.note", handler)
    async with svc.deps.store.write() as tx:
        await svc.jobs.enqueue(tx, "test.note", {"n": 1})
    with pytest.raises(RuntimeError):
        async with svc.deps.store.write() as tx:
            await svc.jobs.enqueue(tx, "test.note", {"n": 2})
            raise RuntimeError("the request failed after enqueueing")
    assert await svc.jobs.drain() == 1
    assert seen == [{"n": 1}]
    assert await svc.jobs.drain() == 0  # done is done


async def test_the_same_job_id_is_enqueued_once(container: Container) -> None:
    svc = _svc(container)
    runs: list[str] = []

    @svc.jobs.handler("test.once")
    async def handler(job: Job) -> None:
        runs.append(job.id)

    for _ in range(3):
        async with svc.deps.store.write() as tx:
            await svc.jobs.enqueue(tx, "test.once", {}, job_id="once:1")
    await svc.jobs.drain()
    assert runs == ["once:1"]


async def test_failures_back_off_then_dead_letter_then_retry_and_purge(
    container: Container, container_clock: FakeClock
) -> None:
    svc = _svc(container)
    boss = await _admin(svc)
    attempts: list[int] = []
    healthy = False

    async def flaky(job: Job) -> None:
        attempts.append(job.attempt)
        if not healthy:
            raise ConnectionError("receiver down")

    svc.jobs.register("test.flaky", flaky, JobPolicy(max_attempts=3))
    async with svc.deps.store.write() as tx:
        job_id = await svc.jobs.enqueue(tx, "test.flaky", {"x": 1})
    assert await svc.jobs.drain() == 1
    job = await svc.jobs.show(boss, job_id)
    assert job.state is JobState.PENDING and job.attempts == 1
    assert job.last_error == "ConnectionError: receiver down"
    # not due before its backoff (10 s after the first failure, jittered 5..10 s)
    assert 5 <= (job.run_after - container_clock.now()).total_seconds() <= 10
    assert await svc.jobs.drain() == 0
    container_clock.advance(10)
    assert await svc.jobs.drain() == 1
    second = await svc.jobs.show(boss, job_id)
    assert 10 <= (second.run_after - container_clock.now()).total_seconds() <= 20  # doubled
    container_clock.advance(20)
    await svc.jobs.drain()
    dead = await svc.jobs.show(boss, job_id)
    assert dead.state is JobState.DEAD and dead.attempts == 3 and dead.finished_at is not None
    assert attempts == [1, 2, 3]
    assert [j.id for j in await svc.jobs.list(boss, states=[JobState.DEAD])] == [job_id]
    stats = await svc.jobs.stats(boss)
    assert stats.dead == 1 and stats.by_state["default"]["dead"] == 1

    healthy = True
    retried = await svc.jobs.retry(boss, job_id)
    assert retried.state is JobState.PENDING and retried.attempts == 0
    with pytest.raises(InvalidRequest):
        await svc.jobs.retry(boss, job_id)  # only dead letters
    assert await svc.jobs.drain() == 1
    assert (await svc.jobs.show(boss, job_id)).state is JobState.DONE
    assert attempts == [1, 2, 3, 1]
    # the audit log has the retry
    async with svc.deps.store.read() as tx:
        entries = await tx.list_audit(0, 100)
    assert [e.target_id for e in entries if e.action == "job_retried"] == [job_id]

    assert await svc.jobs.purge(boss, states=[JobState.DONE]) == 1
    with pytest.raises(NotFound):
        await svc.jobs.show(boss, job_id)


async def test_permanent_errors_and_timeouts(container: Container) -> None:
    svc = _svc(container)
    boss = await _admin(svc)

    async def refuse(job: Job) -> None:
        raise Permanent("410 Gone: the receiver is no more")

    async def slow(job: Job) -> None:
        await asyncio.sleep(30)

    svc.jobs.register("test.refuse", refuse, JobPolicy(max_attempts=5))
    svc.jobs.register("test.slow", slow, JobPolicy(max_attempts=2, timeout_seconds=0.05))
    async with svc.deps.store.write() as tx:
        refused = await svc.jobs.enqueue(tx, "test.refuse", {})
        timed = await svc.jobs.enqueue(tx, "test.slow", {})
    await svc.jobs.drain()
    first = await svc.jobs.show(boss, refused)
    assert first.state is JobState.DEAD and first.attempts == 1  # no retries
    assert first.last_error == "Permanent: 410 Gone: the receiver is no more"
    slow_job = await svc.jobs.show(boss, timed)
    assert slow_job.state is JobState.PENDING and slow_job.last_error == "timed out after 0.05 s"


async def test_a_job_whose_runner_died_runs_again_after_its_lease(
    container: Container, container_clock: FakeClock
) -> None:
    svc = _svc(container)
    boss = await _admin(svc)
    runs: list[int] = []

    async def handler(job: Job) -> None:
        runs.append(job.attempt)

    svc.jobs.register("test.lease", handler, JobPolicy(timeout_seconds=60))
    async with svc.deps.store.write() as tx:
        job_id = await svc.jobs.enqueue(tx, "test.lease", {})
    (claimed,) = await svc.jobs.claim_due(10)  # a runner takes it, then dies (never runs it)
    assert claimed.state is JobState.RUNNING
    assert await svc.jobs.claim_due(10) == []  # nobody else may have it meanwhile
    await svc.jobs.sweep()
    assert (await svc.jobs.show(boss, job_id)).state is JobState.RUNNING
    container_clock.advance(60 + 30 + 1)  # its timeout and the lease's grace
    assert await svc.jobs.sweep() == 1
    await svc.jobs.drain()
    assert runs == [2]  # the lost attempt counts
    # the dead runner's late outcome does not overwrite the new one
    assert not await svc.jobs._record(claimed, JobState.DEAD, run_after=None, error="late")
    assert (await svc.jobs.show(boss, job_id)).state is JobState.DONE


async def test_only_admins_see_and_manage_jobs(container: Container) -> None:
    svc = _svc(container)
    member = await svc.users.create(None, "mia", PASSWORD, role=OrgRole.MEMBER)
    for call in (
        svc.jobs.list(member),
        svc.jobs.stats(member),
        svc.jobs.retry(member, "x"),
        svc.jobs.purge(member),
    ):
        with pytest.raises(Forbidden):
            await call


class _Recorder:
    """An event consumer: one job per message event, while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.since = 0  # like a webhook: what came before it was made is not its business
        self.read: list[int] = []

    def active(self) -> bool:
        return self.on

    async def jobs_for(self, events: Sequence[StoredEvent]) -> list[NewJob]:
        self.read.extend(e.position for e in events)
        return [
            NewJob(
                "test.event",
                {"position": e.position, "body": e.payload["message"]["body"]},
                job_id=f"rec:{e.position}",
            )  # type: ignore[index]
            for e in events
            if e.payload["kind"] == "message" and e.position > self.since
        ]


async def test_event_consumers_get_each_event_after_they_start_once(
    container: Container,
) -> None:
    svc = _svc(container)
    boss = await _admin(svc)
    other = await svc.users.create(None, "ola", PASSWORD)
    conv, _ = await svc.conversations.create(boss, ConversationKind.GROUP, [other.id], "g")
    recorder = _Recorder()
    bodies: list[str] = []

    async def handler(job: Job) -> None:
        bodies.append(str(job.payload["body"]))

    svc.jobs.register("test.event", handler)
    svc.jobs.on_events("recorder", recorder)
    await svc.messages.send(boss, conv.id, "c1", "before the consumer existed")
    await svc.jobs.drain()  # first sight: the consumer starts at the head
    await svc.messages.send(boss, conv.id, "c2", "while it is idle")
    await svc.jobs.drain()
    assert recorder.read == [] and bodies == []  # idle: the log is not even read
    recorder.on, recorder.since = True, await svc.sync.head()
    await svc.messages.send(boss, conv.id, "c3", "one")
    await svc.messages.send(other, conv.id, "c4", "two")
    await svc.jobs.drain()
    await svc.jobs.drain()
    assert bodies == ["one", "two"]
    stats = await svc.jobs.stats(boss)
    assert stats.consumer_lag["recorder"] == 0  # (beside it: the webhooks' consumer)
