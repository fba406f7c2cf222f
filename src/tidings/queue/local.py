"""The in-process queue (the embedded default): no broker. The relay claims due jobs in
the database and runs them in this process (services/jobs.py), so this adapter carries
nothing; it is here so that every role sees one Queue port."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.core.jobs import JobRecord
from tidings.queue.ports import Deliver


class LocalQueue:
    in_process = True

    async def start(self) -> None:
        return None

    async def publish(self, jobs: Sequence[JobRecord]) -> None:
        raise RuntimeError("the in-process queue runs jobs where they are claimed")

    async def consume(self, queues: Sequence[str], deliver: Deliver, prefetch: int) -> None:
        return None

    async def stop_consuming(self) -> None:
        return None

    async def depths(self) -> dict[str, int]:
        return {}

    async def purge_dead(self) -> int:
        return 0

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
