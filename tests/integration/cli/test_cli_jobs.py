"""`tidings jobs`, run in-process (typer's CliRunner) against a site with dead letters
(SQLite and PostgreSQL): list, stats, show, retry, purge; and what it says to bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from click.testing import CliRunner, Result

from tests.conftest import Backend
from tests.e2e.test_jobs_faults import Site
from tests.integration.cli.conftest import COMMAND
from tidings.core.jobs import Job, JobPolicy, JobState


async def tidings(site: Site, *args: str) -> Result:
    """The CLI on the site's settings (its environment: data directory, database)."""
    env = {"COLUMNS": "200", "TIDINGS_CONFIG": None, **site.env}
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, COMMAND, list(args), env=env, catch_exceptions=False
    )


async def test_an_operator_finds_retries_and_purges_dead_letters(
    tmp_path: Path, backend: Backend
) -> None:
    site = Site(tmp_path, backend, None)
    try:
        await site.prepare()
        jobs = site.container.services.jobs

        async def broken(job: Job) -> None:
            raise ConnectionRefusedError("receiver at 10.0.0.9 refused")

        jobs.register("test.cli", broken, JobPolicy(max_attempts=1))
        async with site.container.store.write() as tx:
            first = await jobs.enqueue(tx, "test.cli", {"n": 1})
            second = await jobs.enqueue(tx, "test.cli", {"n": 2})
        await jobs.drain()
        assert (await site.states()) == {JobState.DEAD: 2}

        stats = await tidings(site, "jobs", "list", "--stats")
        assert stats.exit_code == 0, stats.stderr
        assert "dead letters: 2" in stats.stdout and "default" in stats.stdout
        listed = await tidings(site, "jobs", "list", "--state", "dead")
        assert first in listed.stdout and second in listed.stdout
        assert "ConnectionRefusedError" in listed.stdout
        shown = await tidings(site, "jobs", "show", first)
        job = orjson.loads(shown.stdout)
        assert (job["state"], job["payload"], job["attempts"]) == ("dead", {"n": 1}, 1)

        retried = await tidings(site, "jobs", "retry", first)
        assert retried.exit_code == 0 and "pending" in retried.stdout
        again = await tidings(site, "jobs", "retry", first)
        assert again.exit_code == 1 and "only a dead job can be retried" in again.stderr
        purged = await tidings(site, "jobs", "purge")
        assert purged.exit_code == 0 and "purged 1 job(s)" in purged.stdout
        assert (await site.states()) == {JobState.PENDING: 1}
        everything = await tidings(site, "jobs", "retry", "--all-dead")
        assert everything.exit_code == 0 and "retried 0" in everything.stdout

        missing = await tidings(site, "jobs", "show", "no-such-job")
        assert missing.exit_code == 1 and "no such job" in missing.stderr
        bad = await tidings(site, "jobs", "list", "--state", "exploded")
        assert bad.exit_code == 1 and "no such state" in bad.stderr
        neither = await tidings(site, "jobs", "retry")
        assert neither.exit_code == 1 and "give one job id, or --all-dead" in neither.stderr
    finally:
        await site.close()
