"""The Queue port: what the job service asks of a broker.

The outbox table (store/sql/jobs.py) is the source of truth; a queue only carries a
job's id (with its kind and payload, so that a broker's dead-letter queue keeps what
failed) from the relay to a consumer. A consumer claims the job in the database before
it runs it, so a message delivered twice runs the job at most once at a time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from tidings.core.jobs import JobRecord

# A delivered job: (job id, whether the broker delivered it before) -> whether it is a
# dead letter now (the broker then moves its message to the dead-letter queue). Raising
# leaves the message to the broker, which delivers it again.
Deliver = Callable[[str, bool], Awaitable[bool]]


class Queue(Protocol):
    # True: no broker; the relay claims due jobs and runs them in this process.
    in_process: bool

    async def start(self) -> None:
        """Connect (a broker: declare its exchanges and queues)."""
        ...

    async def publish(self, jobs: Sequence[JobRecord]) -> None:
        """Hand `jobs` to the broker; returns once the broker has confirmed each."""
        ...

    async def consume(self, queues: Sequence[str], deliver: Deliver, prefetch: int) -> None:
        """Start delivering the jobs of `queues` to `deliver`, at most `prefetch` at once."""
        ...

    async def stop_consuming(self) -> None:
        """Stop taking new deliveries (those in hand finish or go back to the broker)."""
        ...

    async def depths(self) -> dict[str, int]:
        """Messages waiting in each of the broker's queues (empty: no broker)."""
        ...

    async def purge_dead(self) -> int:
        """Drop the broker's dead-letter queue (the database keeps the dead jobs)."""
        ...

    async def ping(self) -> None:
        """Raise when the broker cannot be reached."""
        ...

    async def close(self) -> None: ...
