"""The jobs aggregate: the outbox every job is written to in the transaction of what it
follows from, each job's state, and the event consumers' cursors (core/jobs.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update

from tidings.core.jobs import JobRecord, JobState
from tidings.store.sql import schema as t
from tidings.store.sql.tx import TxBase, utc, utc_or_none

J = t.jobs.c
IN_CHUNK = 500  # ids per IN list


def _record(row: Any) -> JobRecord:
    return JobRecord(
        id=row.id,
        kind=row.kind,
        queue=row.queue,
        payload=orjson.loads(row.payload),
        state=JobState(row.state),
        attempts=int(row.attempts),
        max_attempts=int(row.max_attempts),
        run_after=utc(row.run_after),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        lease_until=utc_or_none(row.lease_until),
        last_error=row.last_error,
        finished_at=utc_or_none(row.finished_at),
    )


class JobQueries(TxBase):
    async def insert_jobs(self, jobs: Sequence[JobRecord]) -> list[str]:
        """Write new jobs (pending); one whose id exists already is left as it is.
        Returns the ids written. (Writes are serialized: the check cannot race.)"""
        ids = [j.id for j in jobs]
        existing: set[str] = set()
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            rows = await self.conn.execute(select(J.id).where(J.id.in_(chunk)))
            existing.update(r.id for r in rows)
        fresh: dict[str, JobRecord] = {}
        for job in jobs:
            if job.id not in existing:
                fresh.setdefault(job.id, job)
        if fresh:
            await self.conn.execute(
                insert(t.jobs),
                [
                    {
                        "id": j.id,
                        "kind": j.kind,
                        "queue": j.queue,
                        "payload": orjson.dumps(j.payload).decode(),
                        "state": j.state.value,
                        "attempts": j.attempts,
                        "max_attempts": j.max_attempts,
                        "run_after": j.run_after,
                        "created_at": j.created_at,
                        "updated_at": j.updated_at,
                    }
                    for j in fresh.values()
                ],
            )
        return list(fresh)

    async def get_job(self, job_id: str) -> JobRecord | None:
        row = (await self.conn.execute(select(t.jobs).where(J.id == job_id))).first()
        return None if row is None else _record(row)

    async def due_jobs(self, now: datetime, limit: int) -> list[JobRecord]:
        """Pending jobs due by `now`, oldest due first."""
        rows = await self.conn.execute(
            select(t.jobs)
            .where(J.state == JobState.PENDING.value, J.run_after <= now)
            .order_by(J.run_after, J.id)
            .limit(limit)
        )
        return [_record(r) for r in rows]

    async def next_due_at(self) -> datetime | None:
        """When the next pending job falls due (None: there is none)."""
        stmt = select(func.min(J.run_after)).where(J.state == JobState.PENDING.value)
        value = (await self.conn.execute(stmt)).scalar()
        return utc_or_none(value)

    async def claim_job(
        self, job_id: str, now: datetime, lease_until: datetime, *, take_over: bool = False
    ) -> JobRecord | None:
        """Start an attempt: a pending or queued job (and, with `take_over`, one running
        under a lease that ran out or whose runner is known dead) becomes running under a
        new lease, its attempts counted. None: the job is not there to be had (done, dead,
        or running elsewhere)."""
        startable: ColumnElement[bool] = J.state.in_(
            [JobState.PENDING.value, JobState.QUEUED.value]
        )
        if take_over:
            startable = or_(startable, J.state == JobState.RUNNING.value)
        else:
            startable = or_(startable, and_(J.state == JobState.RUNNING.value, J.lease_until < now))
        done = await self.conn.execute(
            update(t.jobs)
            .where(J.id == job_id, startable)
            .values(
                state=JobState.RUNNING.value,
                attempts=J.attempts + 1,
                lease_until=lease_until,
                updated_at=now,
            )
        )
        if done.rowcount == 0:
            return None
        return await self.get_job(job_id)

    async def mark_queued(self, job_ids: Sequence[str], now: datetime) -> None:
        """Published to the broker (only those still pending: a runner may have them)."""
        for start in range(0, len(job_ids), IN_CHUNK):
            await self.conn.execute(
                update(t.jobs)
                .where(J.id.in_(job_ids[start : start + IN_CHUNK]), J.state == "pending")
                .values(state=JobState.QUEUED.value, updated_at=now)
            )

    async def finish_job(
        self,
        job_id: str,
        attempts: int,
        state: JobState,
        now: datetime,
        *,
        run_after: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """Record how the attempt numbered `attempts` ended: done, dead, or pending again
        (due at `run_after`). False when that attempt no longer holds the job (its lease
        ran out and another runner took it): the other runner's outcome counts."""
        values: dict[str, Any] = {"state": state.value, "updated_at": now, "lease_until": None}
        if error is not None or state is JobState.DONE:
            values["last_error"] = error
        if run_after is not None:
            values["run_after"] = run_after
        if state.finished:
            values["finished_at"] = now
        done = await self.conn.execute(
            update(t.jobs)
            .where(J.id == job_id, J.state == JobState.RUNNING.value, J.attempts == attempts)
            .values(**values)
        )
        return bool(done.rowcount)

    async def requeue_stale(self, now: datetime, queued_before: datetime) -> int:
        """Jobs whose runner is gone (running, lease out) or that the broker never
        delivered (queued before `queued_before`) are pending again. Returns how many."""
        done = await self.conn.execute(
            update(t.jobs)
            .where(
                or_(
                    and_(J.state == JobState.RUNNING.value, J.lease_until < now),
                    and_(J.state == JobState.QUEUED.value, J.updated_at < queued_before),
                )
            )
            .values(state=JobState.PENDING.value, lease_until=None, updated_at=now)
        )
        return int(done.rowcount)

    async def retry_job(self, job_id: str, now: datetime) -> bool:
        """A dead letter is pending again, due now, with its attempts from zero."""
        done = await self.conn.execute(
            update(t.jobs)
            .where(J.id == job_id, J.state == JobState.DEAD.value)
            .values(
                state=JobState.PENDING.value,
                attempts=0,
                run_after=now,
                updated_at=now,
                finished_at=None,
            )
        )
        return bool(done.rowcount)

    async def list_jobs(
        self,
        states: Sequence[JobState],
        kind: str | None,
        before: str | None,
        limit: int,
    ) -> list[JobRecord]:
        """Jobs in `states` (all when empty), newest id first, after the cursor `before`."""
        stmt = select(t.jobs)
        if states:
            stmt = stmt.where(J.state.in_([s.value for s in states]))
        if kind is not None:
            stmt = stmt.where(J.kind == kind)
        if before is not None:
            stmt = stmt.where(J.id < before)
        rows = await self.conn.execute(stmt.order_by(J.id.desc()).limit(limit))
        return [_record(r) for r in rows]

    async def delete_jobs(
        self, states: Sequence[JobState], finished_before: datetime | None, kind: str | None
    ) -> int:
        """Delete finished jobs (done and/or dead) finished before the time given."""
        stmt = delete(t.jobs).where(J.state.in_([s.value for s in states if s.finished]))
        if finished_before is not None:
            stmt = stmt.where(J.finished_at < finished_before)
        if kind is not None:
            stmt = stmt.where(J.kind == kind)
        return int((await self.conn.execute(stmt)).rowcount)

    async def job_counts(self) -> dict[tuple[str, str], int]:
        """(queue, state) -> number of jobs."""
        rows = await self.conn.execute(
            select(J.queue, J.state, func.count()).group_by(J.queue, J.state)
        )
        return {(r[0], r[1]): int(r[2]) for r in rows}

    async def oldest_waiting(self, now: datetime) -> datetime | None:
        """When the longest-waiting job (pending and due, or queued) became due."""
        stmt = select(func.min(J.run_after)).where(
            or_(
                and_(J.state == JobState.PENDING.value, J.run_after <= now),
                J.state == JobState.QUEUED.value,
            )
        )
        return utc_or_none((await self.conn.execute(stmt)).scalar())

    # --- event consumers' cursors ---------------------------------------------------
    async def job_cursors(self) -> dict[str, int]:
        rows = await self.conn.execute(select(t.job_cursors))
        return {r.name: int(r.position) for r in rows}

    async def move_job_cursor(self, name: str, position: int) -> None:
        """Move a consumer's cursor forward to `position` (never back)."""
        c = t.job_cursors.c
        done = await self.conn.execute(
            update(t.job_cursors)
            .where(c.name == name, c.position < position)
            .values(position=position)
        )
        if done.rowcount == 0:
            exists = (await self.conn.execute(select(c.name).where(c.name == name))).first()
            if exists is None:
                await self.conn.execute(insert(t.job_cursors).values(name=name, position=position))
