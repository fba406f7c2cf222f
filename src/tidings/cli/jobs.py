"""`tidings jobs`: see the durable jobs, their queues and dead letters; retry, purge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.table import Table

from tidings.cli.common import JsonOut, console, fail, print_json, run_with_container, say
from tidings.core.jobs import JobRecord, JobState, QueueStats

if TYPE_CHECKING:
    from tidings.app.container import Container

jobs_app = typer.Typer(
    help="Durable jobs (webhook deliveries, plugin hooks, …): list them, show one, "
    "retry dead letters, purge finished ones (docs/integrations.md, Jobs).",
    no_args_is_help=True,
)

STATES = [s.value for s in JobState]


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return ""
    seconds = (datetime.now(UTC) - moment).total_seconds()
    if abs(seconds) < 90:
        return f"{seconds:.0f} s ago" if seconds >= 0 else f"in {-seconds:.0f} s"
    return f"{moment:%Y-%m-%d %H:%M:%S}"


@jobs_app.command("list")
def jobs_list(
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state", "-s", help=f"Only jobs in this state ({', '.join(STATES)}); repeatable."
        ),
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    stats: Annotated[
        bool, typer.Option("--stats", help="Show the queues (counts, lag, dead letters) instead.")
    ] = False,
    as_json: JsonOut = False,
) -> None:
    """List jobs, newest first; or, with --stats, the queues with their lag. --json: a
    list of jobs, or the queues, in the REST API's shapes (GET /admin/jobs,
    /admin/jobs/stats)."""
    states = []
    for name in state or []:
        if name not in STATES:
            fail(f"no such state {name!r} (one of {', '.join(STATES)})")
        states.append(JobState(name))
    from tidings.protocol.wire import job_json, queue_stats_json

    if stats:
        found = run_with_container(lambda c: c.services.jobs.stats(None))
        if as_json:
            print_json(queue_stats_json(found))
        else:
            _print_stats(found)
        return

    async def action(c: Container) -> list[JobRecord]:
        return await c.services.jobs.list(None, states=states, kind=kind, limit=limit)

    jobs = run_with_container(action)
    if as_json:
        print_json([job_json(job) for job in jobs])
        return
    # a terminal gets the error's start; a pipe all of it
    width = 60 if console.is_terminal else None
    table = Table("id", "kind", "state", "attempts", "due / finished", "last error")
    for job in jobs:
        when = job.finished_at if job.state.finished else job.run_after
        table.add_row(
            job.id,
            job.kind,
            job.state.value,
            f"{job.attempts}/{job.max_attempts}",
            _ago(when),
            (job.last_error or "")[:width],
        )
    console.print(table)


def _print_stats(stats: QueueStats) -> None:
    table = Table("queue", *STATES)
    for queue, counts in sorted(stats.by_state.items()):
        table.add_row(queue, *(str(counts.get(s, 0)) for s in STATES))
    console.print(table)
    wait = stats.oldest_waiting_seconds
    say(f"oldest waiting job: {'none' if wait is None else f'{wait:.1f} s'}")
    say(f"dead letters: {stats.dead}")
    for name, lag in stats.consumer_lag.items():
        say(f"event consumer {name}: {lag} events behind")
    for name, depth in stats.broker.items():
        say(f"RabbitMQ {name}: {depth} messages")


@jobs_app.command("show")
def jobs_show(job_id: str) -> None:
    """Show one job: its payload, attempts and last error."""
    job = run_with_container(lambda c: c.services.jobs.show(None, job_id))
    from tidings.protocol.wire import job_json

    say(orjson.dumps(job_json(job), option=orjson.OPT_INDENT_2).decode())


@jobs_app.command("retry")
def jobs_retry(
    job_id: Annotated[str | None, typer.Argument(help="A dead job's id.")] = None,
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="Retry every dead letter (of --kind).")
    ] = False,
    kind: Annotated[str | None, typer.Option("--kind", help="With --all-dead.")] = None,
) -> None:
    """Run a dead letter again (attempts from zero); or every dead letter."""
    if (job_id is None) == (not all_dead):
        fail("give one job id, or --all-dead")
    if all_dead:
        count = run_with_container(lambda c: c.services.jobs.retry_dead(None, kind))
        say(f"retried {count} dead job(s)")
        return
    assert job_id is not None
    job = run_with_container(lambda c: c.services.jobs.retry(None, job_id))
    say(f"{job.id}: {job.state.value}, due now")


@jobs_app.command("purge")
def jobs_purge(
    done: Annotated[bool, typer.Option("--done", help="Purge done jobs too.")] = False,
    dead: Annotated[bool, typer.Option("--dead/--keep-dead", help="Purge dead letters.")] = True,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than", min=0, help="Only jobs finished more than this many seconds ago."
        ),
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only jobs of this kind.")] = None,
) -> None:
    """Delete finished jobs: dead letters (and the broker's dead-letter queue), and
    done ones with --done."""
    states = [s for s, on in ((JobState.DEAD, dead), (JobState.DONE, done)) if on]
    if not states:
        fail("nothing to purge: give --done, or keep --dead")

    async def action(c: Container) -> int:
        return await c.services.jobs.purge(
            None, states=states, older_than_seconds=older_than, kind=kind
        )

    say(f"purged {run_with_container(action)} job(s)")
