"""A worker process for the job tests: the worker role's real loop (workers/jobs.py) on
the real services and queue adapter the settings choose (TIDINGS_* environment), with
one test job kind registered, as a plugin or a feature would register its own:

    test.post {conversation_id, sender_id, body, sleep}
        waits `sleep` seconds (a job in the middle of its work), then posts `body` into
        the conversation as the sender, with the job id as client_msg_id: done twice, it
        is still one message (the idempotent handler every job kind must be).

Run: python -m tests.e2e.job_worker (until killed)."""

from __future__ import annotations

import asyncio
import signal

from tidings.app.container import Container
from tidings.app.logging import configure_logging
from tidings.app.settings import Settings
from tidings.core.jobs import Job, JobPolicy
from tidings.workers.jobs import JobWorker


def register_test_kinds(container: Container) -> None:
    services = container.services

    async def post(job: Job) -> None:
        await asyncio.sleep(float(job.payload.get("sleep", 0)))
        async with services.deps.store.read() as tx:
            sender = await tx.get_user(str(job.payload["sender_id"]))
        assert sender is not None
        await services.messages.send(
            sender, str(job.payload["conversation_id"]), job.id[-64:], str(job.payload["body"])
        )

    services.jobs.register("test.post", post, JobPolicy(max_attempts=20, timeout_seconds=5))


async def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    container = Container(settings)
    register_test_kinds(container)
    await container.start()
    worker = JobWorker(container.services.jobs)
    worker.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("worker ready", flush=True)
    await stop.wait()
    await worker.close()
    await container.close()


if __name__ == "__main__":
    asyncio.run(main())
