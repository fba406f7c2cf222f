"""The worker role's job loop: drives the relay (services/jobs.py) and, with a broker,
consumes its queues. Thin: every decision is the job service's.

In-process (no broker): each round turns new events into jobs, claims as many due jobs
as there are free runners and runs them as tasks here. With RabbitMQ: each round
publishes the due jobs, and the consumer runs what the broker delivers (at most
`jobs_concurrency` at once: the prefetch). Every `SWEEP_EVERY_S` jobs whose runner died
go back to the outbox. Between rounds the loop sleeps until a job is enqueued in this
process, a runner is free, or `jobs_poll_seconds` pass (other nodes enqueue too)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from tidings.core.jobs import JobRecord
from tidings.services.jobs import JobService

log = structlog.get_logger(__name__)
SWEEP_EVERY_S = 15.0
PUBLISH_BATCH = 200
RETRY_MAX_S = 30.0  # longest pause after the relay failed (database or broker away)
STOP_GRACE_S = 5.0  # running jobs get this long to finish when the worker stops


class JobWorker:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs
        self.limits = jobs.limits
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[object]] = set()
        self._consuming = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        jobs = self.jobs
        pause = 0.0
        sweep_at = 0.0
        while True:
            busy = False
            try:
                if not jobs.queue.in_process and not self._consuming:
                    await jobs.queue.start()
                    await jobs.queue.consume(
                        jobs.queues, jobs.deliver, self.limits.jobs_concurrency
                    )
                    self._consuming = True
                    log.info("jobs_consuming", queues=jobs.queues)
                if time.monotonic() >= sweep_at:
                    await jobs.sweep()
                    sweep_at = time.monotonic() + SWEEP_EVERY_S
                busy = await jobs.tap_events() > 0
                if jobs.queue.in_process:
                    free = self.limits.jobs_concurrency - len(self._running)
                    claimed = await jobs.claim_due(free)
                    for job in claimed:
                        self._spawn(job)
                    busy = busy or (bool(claimed) and len(claimed) == free)
                else:
                    busy = busy or await jobs.publish_due(PUBLISH_BATCH) == PUBLISH_BATCH
                pause = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                pause = min(RETRY_MAX_S, max(1.0, pause * 2))
                log.warning(
                    "job_relay_failed", error=f"{type(exc).__name__}: {exc}"[:300], retry_in=pause
                )
            if pause:
                await asyncio.sleep(pause)
            elif not busy:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.limits.jobs_poll_seconds):
                        await jobs.wakeup.wait()
                jobs.wakeup.clear()

    def _spawn(self, job: JobRecord) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(self.jobs.run(job))
        self._running.add(task)

        def finished(done: asyncio.Task[object]) -> None:
            self._running.discard(done)
            self.jobs.wakeup.set()  # a runner is free
            if not done.cancelled() and done.exception() is not None:
                log.error("job_run_failed", job_id=job.id, error=repr(done.exception()))

        task.add_done_callback(finished)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.jobs.queue.stop_consuming()
        if self._running:
            _done, pending = await asyncio.wait(set(self._running), timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()  # the job goes back to the outbox, due now
            if pending:
                await asyncio.wait(pending, timeout=STOP_GRACE_S)
