"""The job that records a thumbnail (then tells every message carrying the file) cannot
slip between a send's read of its files and its commit, which would leave the new
message showing "processing" with no event to follow: write transactions are serial
(SQLite's one writer; on PostgreSQL each first locks the events counter row,
store/sql/engines/postgres.py: lock_writes), so the job waits for the send's commit
and then finds its message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from tidings.core.models import FileStatus, OrgRole


async def _bytes() -> AsyncIterator[bytes]:
    yield b"plain text, to be attached\n"


async def test_a_send_holds_its_files_until_it_commits(container: Any) -> None:
    services = container.services
    user = await services.users.create(None, "uma", "correct-horse-battery", "Uma", OrgRole.MEMBER)
    file = await services.files.upload(user, "a.txt", "text/plain", _bytes())
    assert file.status is FileStatus.PROCESSING
    async with container.store.write() as tx:
        assert file.id in await tx.files_by_ids([file.id])  # what a send reads
        recording = asyncio.create_task(services.files.mark_processed(file.id, FileStatus.READY))
        await asyncio.sleep(0.5)
        assert not recording.done(), "the job went past a send in progress"
    done = await asyncio.wait_for(recording, 10)
    assert done is not None and done.status is FileStatus.READY
