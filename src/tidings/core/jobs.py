"""Durable jobs: what a job is, what becomes of it, and how long it waits between
attempts. No IO: the store keeps the jobs (the outbox table), the queue adapters move
them (queue/), the job service runs them (services/jobs.py).

A job's life:

    pending --(relay: in-process claim, or publish to RabbitMQ)--> queued | running
    running --(handler returns)--> done
    running --(handler raises, attempts left)--> pending, due after a backoff
    running --(handler raises Permanent, or no attempts left)--> dead (a dead letter)
    dead --(tidings jobs retry)--> pending, attempts from zero

A `running` job whose lease runs out (its worker was killed) is pending again; so is a
`queued` one the broker never delivered within `jobs_requeue_seconds`. Delivery is at
least once: a handler may run again for the same job id, and must have no second effect.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

JobPayload = dict[str, Any]
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(:[A-Za-z0-9_.\-]+)?$")
MAX_KIND_CHARS = 64
MAX_JOB_ID_CHARS = 160
MAX_ERROR_CHARS = 2000  # of a failed attempt's error, kept with the job


class JobState(StrEnum):
    PENDING = "pending"  # in the outbox: due at `run_after`, not handed to a runner yet
    QUEUED = "queued"  # published to the broker, not started
    RUNNING = "running"  # a runner has it until `lease_until`
    DONE = "done"
    DEAD = "dead"  # a dead letter: kept with its payload and last error, retryable

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.DEAD)


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """How a kind of job runs: attempts before it is a dead letter, the time one attempt
    may take (then it is cancelled and counts as failed), and its broker queue."""

    max_attempts: int = 8
    timeout_seconds: float = 60.0
    queue: str = "default"

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.timeout_seconds <= 0:
            raise ValueError("a job policy needs max_attempts >= 1 and timeout_seconds > 0")
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", self.queue):
            raise ValueError(f"queue names are lower-case words: {self.queue!r}")


@dataclass(frozen=True, slots=True)
class Job:
    """One attempt at a job, as its handler sees it. `attempt` is 1 on the first run."""

    id: str
    kind: str
    payload: JobPayload
    attempt: int
    max_attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to create (`job_id` None: a new one; a given id that exists already is
    not created twice)."""

    kind: str
    payload: JobPayload
    job_id: str | None = None
    delay_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored (for the relay, the runners and the admin views)."""

    id: str
    kind: str
    queue: str
    payload: JobPayload
    state: JobState
    attempts: int
    max_attempts: int
    run_after: datetime
    created_at: datetime
    updated_at: datetime
    lease_until: datetime | None = None
    last_error: str | None = None
    finished_at: datetime | None = None

    def attempt(self) -> Job:
        """The handler's view of the attempt this record was claimed for."""
        return Job(
            id=self.id,
            kind=self.kind,
            payload=self.payload,
            attempt=self.attempts,
            max_attempts=self.max_attempts,
            created_at=self.created_at,
        )


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What an operator watches: jobs by queue and state, the age of the oldest job
    waiting, the dead letters, and how far each event consumer is behind the stream."""

    by_state: dict[str, dict[str, int]]  # queue -> state -> count
    oldest_waiting_seconds: float | None
    dead: int
    consumer_lag: dict[str, int]  # event consumer -> positions behind the head
    broker: dict[str, int] = field(default_factory=dict)  # broker queue -> messages


class Permanent(Exception):
    """Raised by a handler: the job cannot succeed (e.g. a 4xx from a receiver); it is a
    dead letter at once, with this message as its error."""


def check_kind(kind: str) -> str:
    if len(kind) > MAX_KIND_CHARS or not KIND_PATTERN.fullmatch(kind):
        raise ValueError(f"not a job kind: {kind!r} (e.g. 'webhooks.deliver')")
    return kind


def backoff(
    attempts: int, base_seconds: float, max_seconds: float, rng: random.Random | None = None
) -> timedelta:
    """The wait before the next attempt after `attempts` failed ones: exponential
    (base * 2^(attempts-1), capped at max), jittered between half and all of it
    ("equal jitter" in AWS's "Exponential Backoff And Jitter"), so that jobs failing
    together do not retry together, yet none retries at once."""
    ceiling = min(max_seconds, base_seconds * (2 ** max(0, min(attempts - 1, 40))))
    return timedelta(seconds=(rng or random).uniform(ceiling / 2, ceiling))


def short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_CHARS]
