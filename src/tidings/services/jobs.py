"""Durable jobs: the outbox, the relay, the runs, and their administration.

A request never publishes a job: `enqueue` writes the job's row in the caller's write
transaction (the transactional outbox), so the job exists exactly when what it follows
from was committed. The relay (driven by the worker role, workers/jobs.py) then either
claims due rows and runs them here (the in-process queue, the embedded default) or
publishes them to RabbitMQ with confirms, and a worker's consumer claims each one in the
database before running it (queue/rabbitmq.py).

Event consumers (`on_events`: webhooks, plugins) turn committed events into jobs: the
relay reads the event log after each consumer's durable cursor and writes the jobs and
the moved cursor in one transaction. Nothing of this runs on the send path.

Handlers register per kind (`register`, cf. Zulip's `@assign_queue`); delivery is at
least once, so a handler must have no second effect when run again for the same job id.
A failed attempt goes back to the outbox due after an exponential, jittered backoff;
after its policy's attempts (or a `Permanent` error) it is a dead letter, kept with its
payload and last error until retried or purged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import orjson
import structlog

from tidings.core.audit import AuditAction
from tidings.core.errors import InvalidRequest, NotFound
from tidings.core.jobs import (
    MAX_JOB_ID_CHARS,
    Job,
    JobPayload,
    JobPolicy,
    JobRecord,
    JobState,
    NewJob,
    Permanent,
    QueueStats,
    backoff,
    check_kind,
    short_error,
)
from tidings.core.models import StoredEvent, User
from tidings.core.rules import check_admin
from tidings.queue.local import LocalQueue
from tidings.queue.ports import Queue
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.store.ports import Tx

log = structlog.get_logger(__name__)

Handler = Callable[[Job], Awaitable[None]]
MAX_PAYLOAD_BYTES = 256 * 1024  # a job carries ids and small values, never a file
FOLLOW_EVERY_S = 10.0  # an idle consumer's cursor is written to the head this often
DRAIN_ROUNDS_MAX = 10_000


class EventConsumer(Protocol):
    """Turns committed events into jobs (webhook deliveries, plugin hooks)."""

    def active(self) -> bool:
        """Whether it wants events now; cheap (cached): when False the relay does not
        read the event log for it, and its cursor follows the head."""
        ...

    async def jobs_for(self, events: Sequence[StoredEvent]) -> list[NewJob]:
        """The jobs these events call for; deterministic ids, so that reading the same
        events again derives the same jobs (which are then not created twice)."""
        ...


@dataclass(slots=True)
class JobCounters:
    """What this process's runners did since start (for logs and /metrics later)."""

    done: int = 0
    failed: int = 0
    dead: int = 0
    published: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class JobService:
    def __init__(self, deps: Deps, queue: Queue | None = None) -> None:
        self.d = deps
        self.limits = deps.jobs
        self.queue: Queue = queue or LocalQueue()
        self._handlers: dict[str, tuple[Handler, JobPolicy]] = {}
        self._consumers: dict[str, EventConsumer] = {}
        self._followed_at = 0.0
        self.counters = JobCounters()
        self.wakeup = asyncio.Event()

    # --- registration ---------------------------------------------------------------
    def register(self, kind: str, handler: Handler, policy: JobPolicy | None = None) -> None:
        check_kind(kind)
        if kind in self._handlers:
            raise ValueError(f"a handler for job kind {kind!r} is registered already")
        self._handlers[kind] = (handler, policy or JobPolicy())

    def handler(
        self, kind: str, policy: JobPolicy | None = None
    ) -> Callable[[Handler], Handler]:
        """`register` as a decorator (cf. Zulip's `@assign_queue`):

            @services.jobs.handler("webhooks.deliver", JobPolicy(timeout_seconds=15))
            async def deliver(job: Job) -> None: ...
        """

        def decorate(function: Handler) -> Handler:
            self.register(kind, function, policy)
            return function

        return decorate

    def on_events(self, name: str, consumer: EventConsumer) -> None:
        check_kind(name)
        if name in self._consumers:
            raise ValueError(f"an event consumer named {name!r} is registered already")
        self._consumers[name] = consumer

    def policy(self, kind: str) -> JobPolicy:
        found = self._handlers.get(kind)
        return found[1] if found is not None else JobPolicy()

    @property
    def queues(self) -> list[str]:
        """The broker queues this process's handlers consume."""
        return sorted({policy.queue for _, policy in self._handlers.values()} | {"default"})

    # --- the outbox -----------------------------------------------------------------
    async def enqueue(
        self,
        tx: Tx,
        kind: str,
        payload: JobPayload,
        *,
        job_id: str | None = None,
        delay_seconds: float = 0.0,
    ) -> str:
        """Write a job in `tx` (a write transaction of the caller's): it exists if and
        only if the transaction commits. A `job_id` that exists already is not written
        again. Returns the job's id."""
        (written,) = await self.enqueue_many(tx, [NewJob(kind, payload, job_id, delay_seconds)])
        return written

    async def enqueue_many(self, tx: Tx, jobs: Sequence[NewJob]) -> list[str]:
        if not jobs:
            return []
        now = self.d.clock.now()
        records = [self._new_record(job, now) for job in jobs]
        if await tx.insert_jobs(records):
            tx.after_commit(self._wake)
        return [r.id for r in records]

    def _new_record(self, job: NewJob, now: datetime) -> JobRecord:
        check_kind(job.kind)
        job_id = job.job_id or f"{job.kind}:{self.d.ids.new_id()}"
        if not job_id or len(job_id) > MAX_JOB_ID_CHARS:
            raise InvalidRequest(f"a job id has 1 to {MAX_JOB_ID_CHARS} characters")
        if len(orjson.dumps(job.payload)) > MAX_PAYLOAD_BYTES:
            raise InvalidRequest(f"a job's payload is at most {MAX_PAYLOAD_BYTES} bytes of JSON")
        policy = self.policy(job.kind)
        return JobRecord(
            id=job_id,
            kind=job.kind,
            queue=policy.queue,
            payload=job.payload,
            state=JobState.PENDING,
            attempts=0,
            max_attempts=policy.max_attempts,
            run_after=now + timedelta(seconds=max(0.0, job.delay_seconds)),
            created_at=now,
            updated_at=now,
        )

    async def _wake(self) -> None:
        self.wakeup.set()

    # --- the relay ------------------------------------------------------------------
    async def tap_events(self) -> int:
        """Turn the events committed after each active consumer's cursor into jobs (one
        batch of `jobs_event_batch` events). Returns how many jobs were written."""
        if not self._consumers:
            return 0
        async with self.d.store.read() as tx:
            cursors = await tx.job_cursors()
            head = await tx.head_position()
        active = {name: c for name, c in self._consumers.items() if c.active()}
        fresh = [name for name in active if name not in cursors]
        idle = [n for n in self._consumers if n not in active and cursors.get(n, -1) < head]
        now = time.monotonic()
        if fresh or (idle and now - self._followed_at >= FOLLOW_EVERY_S):
            # A consumer first seen starts at the head (no backfill); an idle one keeps
            # up with it, so that it starts from now when it becomes active.
            self._followed_at = now
            async with self.d.store.write() as wtx:
                for name in (*fresh, *idle):
                    await wtx.move_job_cursor(name, head)
        behind = {n: cursors[n] for n in active if n in cursors and cursors[n] < head}
        if not behind:
            return 0
        start = min(behind.values())
        batch = self.limits.jobs_event_batch
        until = min(head, start + batch)
        async with self.d.store.read() as tx:
            events = await tx.events_between(start, until)
            if not events and until < head:
                # No event in a whole batch of positions: the gap a restore leaves
                # (services/backup.py). Step over it in one round, not one per batch.
                found = await tx.first_position_after(start)
                if found is not None:
                    until = min(head, found - 1 + batch)
                    events = await tx.events_between(start, until)
        jobs: list[NewJob] = []
        moved: list[str] = []
        for name, cursor in behind.items():
            mine = [e for e in events if e.position > cursor]
            try:
                jobs.extend(await active[name].jobs_for(mine) if mine else [])
            except Exception:  # its cursor stays: the same events are tried again
                log.exception("event_consumer_failed", consumer=name, after=cursor)
                continue
            moved.append(name)
        if not moved:
            return 0
        async with self.d.store.write() as wtx:
            await self.enqueue_many(wtx, jobs)
            for name in moved:
                await wtx.move_job_cursor(name, until)
        return len(jobs)

    async def claim_due(self, limit: int) -> list[JobRecord]:
        """In-process queue: claim up to `limit` due jobs for this process to run."""
        if limit <= 0:
            return []
        now = self.d.clock.now()
        async with self.d.store.read() as tx:
            due = await tx.due_jobs(now, limit)
        if not due:
            return []
        claimed: list[JobRecord] = []
        async with self.d.store.write() as wtx:
            for job in due:
                got = await wtx.claim_job(job.id, now, self._lease(job.kind, now))
                if got is not None:
                    claimed.append(got)
        return claimed

    async def publish_due(self, limit: int) -> int:
        """Broker: publish up to `limit` due jobs (confirmed), then mark them queued. A
        crash between the two publishes them again: the consumers' claim runs each once."""
        now = self.d.clock.now()
        async with self.d.store.read() as tx:
            due = await tx.due_jobs(now, limit)
        if not due:
            return 0
        await self.queue.publish(due)
        async with self.d.store.write() as wtx:
            await wtx.mark_queued([j.id for j in due], self.d.clock.now())
        self.counters.published += len(due)
        return len(due)

    async def sweep(self) -> int:
        """Jobs whose runner died (lease out) or that the broker lost (queued too long)
        are pending again; finished jobs older than `jobs_keep_done_seconds` go."""
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            back = await tx.requeue_stale(
                now, now - timedelta(seconds=self.limits.jobs_requeue_seconds)
            )
            gone = await tx.delete_jobs(
                [JobState.DONE], now - timedelta(seconds=self.limits.jobs_keep_done_seconds), None
            )
        if back or gone:
            log.info("jobs_swept", requeued=back, deleted_done=gone)
        return back

    async def next_due_in(self) -> float | None:
        """Seconds until the next pending job is due (None: none pending)."""
        async with self.d.store.read() as tx:
            at = await tx.next_due_at()
        if at is None:
            return None
        return max(0.0, (at - self.d.clock.now()).total_seconds())

    def _lease(self, kind: str, now: datetime) -> datetime:
        seconds = self.policy(kind).timeout_seconds + self.limits.jobs_lease_grace_seconds
        return now + timedelta(seconds=seconds)

    # --- running --------------------------------------------------------------------
    async def deliver(self, job_id: str, redelivered: bool) -> bool:
        """A broker delivered `job_id`: claim it and run it. Returns whether it is a
        dead letter now. A job that is done, dead or running elsewhere is skipped (a
        duplicate); a redelivered one is taken over (its runner died holding it)."""
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            current = await tx.get_job(job_id)
            if current is None:
                return False
            job = await tx.claim_job(
                job_id, now, self._lease(current.kind, now), take_over=redelivered
            )
        if job is None:
            return False
        return await self.run(job) is JobState.DEAD

    async def run(self, job: JobRecord) -> JobState:
        """Run one claimed attempt and record its outcome."""
        found = self._handlers.get(job.kind)
        policy = found[1] if found is not None else JobPolicy()
        started = time.monotonic()
        error: str | None = None
        permanent = False
        try:
            if found is None:
                raise LookupError(f"no handler for job kind {job.kind!r} in this process")
            async with asyncio.timeout(policy.timeout_seconds):
                await found[0](job.attempt())
        except asyncio.CancelledError:
            await self._record(
                job, JobState.PENDING, run_after=self.d.clock.now(), error="interrupted: stopped"
            )
            raise
        except Permanent as exc:
            error, permanent = short_error(exc), True
        except TimeoutError:
            error = f"timed out after {policy.timeout_seconds:g} s"
        except Exception as exc:  # noqa: BLE001 - a failed attempt, retried
            error = short_error(exc)
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        if error is None:
            state, run_after = JobState.DONE, None
            self.counters.done += 1
            self.counters.by_kind[job.kind] = self.counters.by_kind.get(job.kind, 0) + 1
        elif permanent or job.attempts >= job.max_attempts:
            state, run_after = JobState.DEAD, None
            self.counters.dead += 1
        else:
            state = JobState.PENDING
            run_after = self.d.clock.now() + backoff(
                job.attempts,
                self.limits.jobs_backoff_base_seconds,
                self.limits.jobs_backoff_max_seconds,
            )
            self.counters.failed += 1
        kept = await self._record(job, state, run_after=run_after, error=error)
        event = {"done": "job_done", "pending": "job_retry", "dead": "job_dead"}[state.value]
        level = log.info if state is JobState.DONE else log.warning
        level(
            event,
            job_id=job.id,
            kind=job.kind,
            attempt=job.attempts,
            ms=elapsed_ms,
            error=error,
            recorded=kept,
        )
        return state

    async def _record(
        self, job: JobRecord, state: JobState, *, run_after: datetime | None, error: str | None
    ) -> bool:
        async with self.d.store.write() as tx:
            kept = await tx.finish_job(
                job.id, job.attempts, state, self.d.clock.now(), run_after=run_after, error=error
            )
        if state is JobState.PENDING:
            self.wakeup.set()
        return kept

    # --- tests and tools ------------------------------------------------------------
    async def drain(self) -> int:
        """Run the event tap and every job due now, here, until nothing more is due
        (jobs waiting for a backoff are left). Returns how many attempts ran. For tests
        and the command line; the worker role runs the same steps on its own."""
        ran = 0
        for _ in range(DRAIN_ROUNDS_MAX):
            made = await self.tap_events()
            claimed = await self.claim_due(64)
            for job in claimed:
                await self.run(job)
            ran += len(claimed)
            if not claimed and not made:
                return ran
        raise RuntimeError("jobs keep coming: drain gave up")

    async def consume(self, kind: str, payload: JobPayload, *, job_id: str | None = None) -> None:
        """Call `kind`'s handler directly with `payload` (tests, like Zulip's consume())."""
        handler, policy = self._handlers[kind]
        await handler(
            Job(
                id=job_id or f"{kind}:{self.d.ids.new_id()}",
                kind=kind,
                payload=payload,
                attempt=1,
                max_attempts=policy.max_attempts,
                created_at=self.d.clock.now(),
            )
        )

    # --- administration ---------------------------------------------------------------
    async def list(
        self,
        actor: User | None,
        *,
        states: Sequence[JobState] = (),
        kind: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        check_admin(actor, "see jobs")
        limit = max(1, min(limit, 500))
        async with self.d.store.read() as tx:
            return await tx.list_jobs(list(states), kind, before, limit)

    async def show(self, actor: User | None, job_id: str) -> JobRecord:
        check_admin(actor, "see jobs")
        async with self.d.store.read() as tx:
            job = await tx.get_job(job_id)
        if job is None:
            raise NotFound("no such job", job_id=job_id)
        return job

    async def retry(self, actor: User | None, job_id: str) -> JobRecord:
        """A dead letter runs again (its attempts from zero)."""
        check_admin(actor, "retry jobs")
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            job = await tx.get_job(job_id)
            if job is None:
                raise NotFound("no such job", job_id=job_id)
            if job.state is not JobState.DEAD:
                raise InvalidRequest(f"only a dead job can be retried; this one is {job.state}")
            await tx.retry_job(job_id, now)
            await record(
                tx,
                self.d.clock,
                AuditAction.JOB_RETRIED,
                actor_id=None if actor is None else actor.id,
                target_id=job_id[:64],
                details={"kind": job.kind, "attempts": job.attempts},
            )
            tx.after_commit(self._wake)
            retried = await tx.get_job(job_id)
        assert retried is not None
        return retried

    async def retry_dead(self, actor: User | None, kind: str | None = None) -> int:
        """Every dead letter (of `kind`) runs again. Returns how many."""
        check_admin(actor, "retry jobs")
        count = 0
        while True:
            async with self.d.store.read() as tx:
                dead = await tx.list_jobs([JobState.DEAD], kind, None, 500)
            if not dead:
                break
            now = self.d.clock.now()
            async with self.d.store.write() as tx:
                for job in dead:
                    count += int(await tx.retry_job(job.id, now))
                await record(
                    tx,
                    self.d.clock,
                    AuditAction.JOB_RETRIED,
                    actor_id=None if actor is None else actor.id,
                    details={"kind": kind, "count": len(dead)},
                )
                tx.after_commit(self._wake)
        return count

    async def purge(
        self,
        actor: User | None,
        *,
        states: Sequence[JobState] = (JobState.DEAD,),
        older_than_seconds: float | None = None,
        kind: str | None = None,
    ) -> int:
        """Delete finished jobs (dead letters by default; done ones too if asked)."""
        check_admin(actor, "purge jobs")
        if not states or any(not s.finished for s in states):
            raise InvalidRequest("only finished jobs (done, dead) can be purged")
        now = self.d.clock.now()
        before = None if older_than_seconds is None else now - timedelta(seconds=older_than_seconds)
        async with self.d.store.write() as tx:
            count = await tx.delete_jobs(list(states), before, kind)
            await record(
                tx,
                self.d.clock,
                AuditAction.JOBS_PURGED,
                actor_id=None if actor is None else actor.id,
                details={
                    "states": [s.value for s in states],
                    "kind": kind,
                    "older_than_seconds": older_than_seconds,
                    "count": count,
                },
            )
        if JobState.DEAD in states and kind is None and before is None:
            try:
                await self.queue.purge_dead()
            except Exception as exc:  # noqa: BLE001 - the database's dead letters are gone
                log.warning("broker_dead_letters_not_purged", error=short_error(exc))
        return count

    async def stats(self, actor: User | None) -> QueueStats:
        check_admin(actor, "see jobs")
        now = self.d.clock.now()
        async with self.d.store.read() as tx:
            counts = await tx.job_counts()
            oldest = await tx.oldest_waiting(now)
            cursors = await tx.job_cursors()
            head = await tx.head_position()
        by_state: dict[str, dict[str, int]] = {}
        for (queue, state), count in counts.items():
            by_state.setdefault(queue, {})[state] = count
        broker: dict[str, int] = {}
        if not self.queue.in_process:
            try:
                broker = await self.queue.depths()
            except Exception as exc:  # noqa: BLE001 - reported as missing, not raised
                log.warning("broker_depths_unavailable", error=short_error(exc))
        return QueueStats(
            by_state=by_state,
            oldest_waiting_seconds=None if oldest is None else (now - oldest).total_seconds(),
            dead=sum(c for (_, s), c in counts.items() if s == JobState.DEAD.value),
            consumer_lag={
                name: max(0, head - cursors.get(name, head)) for name in sorted(self._consumers)
            },
            broker=broker,
        )
