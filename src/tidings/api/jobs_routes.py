"""Admin REST of the durable jobs: queues, lag and dead letters; retry and purge.
Thin, like routes.py: every check is the job service's (admins only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from tidings.api.routes import ERRORS, Auth, Svc, json
from tidings.api.schemas import Body
from tidings.core.jobs import MAX_JOB_ID_CHARS, MAX_KIND_CHARS, JobState
from tidings.protocol.wire import job_json, queue_stats_json

router = APIRouter(prefix="/api/v1/admin/jobs", responses=ERRORS, tags=["jobs"])
JobIdPath = Annotated[str, Path(min_length=1, max_length=MAX_JOB_ID_CHARS)]
StateName = Literal["pending", "queued", "running", "done", "dead"]
FinishedName = Literal["done", "dead"]


class JobOut(BaseModel):
    id: str
    kind: str
    queue: str
    state: StateName
    attempts: int
    max_attempts: int
    payload: dict[str, Any]
    run_after: str
    created_at: str
    updated_at: str
    finished_at: str | None
    last_error: str | None


class JobOneOut(BaseModel):
    job: JobOut


class JobsOut(BaseModel):
    jobs: list[JobOut]
    next_before: str | None = Field(
        description="pass as `before` for the next (older) page; null: no more"
    )


class JobStatsOut(BaseModel):
    queues: dict[str, dict[str, int]] = Field(description="queue -> state -> jobs")
    oldest_waiting_seconds: float | None = Field(
        description="how long the oldest due job has waited (the queue's lag)"
    )
    dead: int = Field(description="dead letters")
    consumer_lag: dict[str, int] = Field(
        description="event consumer -> stream positions it is behind the head"
    )
    broker: dict[str, int] = Field(description="RabbitMQ queue -> messages in it (none: no broker)")


class RetryDeadIn(Body):
    kind: str | None = Field(None, min_length=1, max_length=MAX_KIND_CHARS)


class RetriedOut(BaseModel):
    retried: int


class PurgeIn(Body):
    states: list[FinishedName] = Field(default=["dead"], min_length=1, max_length=2)
    older_than_seconds: float | None = Field(None, ge=0, le=10 * 365 * 86400)
    kind: str | None = Field(None, min_length=1, max_length=MAX_KIND_CHARS)


class PurgedOut(BaseModel):
    purged: int


@router.get("", response_model=JobsOut)
async def list_jobs(
    svc: Svc,
    me: Auth,
    state: Annotated[list[StateName] | None, Query(max_length=5)] = None,
    kind: Annotated[str | None, Query(min_length=1, max_length=MAX_KIND_CHARS)] = None,
    before: Annotated[str | None, Query(min_length=1, max_length=MAX_JOB_ID_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """Jobs, newest first (by id), optionally of some states and one kind."""
    found = await svc.jobs.list(
        me.user, states=[JobState(s) for s in state or ()], kind=kind, before=before, limit=limit
    )
    more = len(found) == limit
    return json(
        {"jobs": [job_json(j) for j in found], "next_before": found[-1].id if more else None}
    )


@router.get("/stats", response_model=JobStatsOut)
async def job_stats(svc: Svc, me: Auth) -> Response:
    """Jobs per queue and state, the lag, dead letters, event consumers' lag, and the
    broker's queue depths."""
    return json(queue_stats_json(await svc.jobs.stats(me.user)))


@router.post("/retry-dead", response_model=RetriedOut)
async def retry_dead(body: RetryDeadIn, svc: Svc, me: Auth) -> Response:
    """Every dead letter (of `kind`) runs again, attempts from zero."""
    return json({"retried": await svc.jobs.retry_dead(me.user, body.kind)})


@router.post("/purge", response_model=PurgedOut)
async def purge_jobs(body: PurgeIn, svc: Svc, me: Auth) -> Response:
    """Delete finished jobs: dead letters by default (and the broker's dead-letter queue
    when all of them go), done ones if asked."""
    count = await svc.jobs.purge(
        me.user,
        states=[JobState(s) for s in body.states],
        older_than_seconds=body.older_than_seconds,
        kind=body.kind,
    )
    return json({"purged": count})


@router.get("/{job_id}", response_model=JobOneOut)
async def get_job(job_id: JobIdPath, svc: Svc, me: Auth) -> Response:
    return json({"job": job_json(await svc.jobs.show(me.user, job_id))})


@router.post("/{job_id}/retry", response_model=JobOneOut)
async def retry_job(job_id: JobIdPath, svc: Svc, me: Auth) -> Response:
    """A dead letter runs again, attempts from zero (400 for a job that is not dead)."""
    return json({"job": job_json(await svc.jobs.retry(me.user, job_id))})
