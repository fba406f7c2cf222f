"""`tidings jobs`, run as an operator would, against a site with dead letters (SQLite
and PostgreSQL): list, stats, show, retry, purge; and what it says to bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import Backend
from tests.e2e.test_jobs_faults import Site
from tidings.core.jobs import Job, JobPolicy, JobState


def tidings(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", **site.env},
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

        stats = tidings(site, "jobs", "list", "--stats")
        assert stats.returncode == 0, stats.stderr
        assert "dead letters: 2" in stats.stdout and "default" in stats.stdout
        listed = tidings(site, "jobs", "list", "--state", "dead")
        assert first in listed.stdout and second in listed.stdout
        assert "ConnectionRefusedError" in listed.stdout
        shown = tidings(site, "jobs", "show", first)
        job = orjson.loads(shown.stdout)
        assert (job["state"], job["payload"], job["attempts"]) == ("dead", {"n": 1}, 1)

        retried = tidings(site, "jobs", "retry", first)
        assert retried.returncode == 0 and "pending" in retried.stdout
        again = tidings(site, "jobs", "retry", first)
        assert again.returncode == 1 and "only a dead job can be retried" in again.stderr
        purged = tidings(site, "jobs", "purge")
        assert purged.returncode == 0 and "purged 1 job(s)" in purged.stdout
        assert (await site.states()) == {JobState.PENDING: 1}
        everything = tidings(site, "jobs", "retry", "--all-dead")
        assert everything.returncode == 0 and "retried 0" in everything.stdout

        missing = tidings(site, "jobs", "show", "no-such-job")
        assert missing.returncode == 1 and "no such job" in missing.stderr
        bad = tidings(site, "jobs", "list", "--state", "exploded")
        assert bad.returncode == 1 and "no such state" in bad.stderr
        neither = tidings(site, "jobs", "retry")
        assert neither.returncode == 1 and "give one job id, or --all-dead" in neither.stderr
    finally:
        await site.close()
