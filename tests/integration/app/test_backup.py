"""Backups in-process (app/backup.py), on SQLite and PostgreSQL: hostile and edge cases
of the archive (tampered, cut short, unsafe members, a newer schema, a non-empty
target), no secret in an archive, an older backup migrated, scheduled backups as jobs
(one per slot across workers, the newest N kept, the outcome for /metrics), and the
event consumers stepping over the gap a restore leaves."""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Backend
from tidings.app.backup import (
    BackupProblem,
    ScheduledBackups,
    create_backup,
    redacted_settings,
    restore_backup,
    verify_backup,
)
from tidings.app.container import Container
from tidings.app.metrics import Metrics
from tidings.app.settings import Settings
from tidings.core.errors import InvalidPosition
from tidings.core.jobs import Job, NewJob
from tidings.core.models import ConversationKind, OrgRole, StoredEvent
from tidings.store import migrations

PASSWORD = "plum-orbit-123-backup"


@pytest.fixture
def container_settings(tmp_path: Path) -> dict[str, object]:
    return {"backup_interval_seconds": 60, "backup_keep": 2, "backup_dir": tmp_path / "bk"}


async def _some_data(c: Container) -> None:
    svc = c.services
    boss = await svc.users.create(None, "boss", PASSWORD, role=OrgRole.ADMIN)
    ola = await svc.users.create(None, "ola", PASSWORD)
    conv, _ = await svc.conversations.create(boss, ConversationKind.GROUP, [ola.id], "g")
    for i in range(5):
        await svc.messages.send(boss, conv.id, f"m{i}", f"hello {i}")


def _fresh_settings(tmp_path: Path, source: Settings, **extra: Any) -> Settings:
    """Settings of an empty place beside the source (same backend kind, same keys)."""
    data = tmp_path / "fresh"
    data.mkdir(exist_ok=True)
    if source.database_url is None and source.key_file.exists():
        shutil.copy(source.key_file, data / "secret.key")
    return Settings.model_validate(
        {
            "data_dir": data,
            "secret_keys": [k.get_secret_value() for k in source.secret_keys],
            **extra,
        }
    )


def _rewrite(archive: Path, out: Path, change: Any) -> None:
    """Copy a (gzip) archive member by member; `change(name, data)` returns the bytes
    to write (None: leave the member out); extra members come from change(None, b"")."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isreg() else b""  # type: ignore[union-attr]
            new = change(member.name, data)
            if new is None:
                continue
            info = tarfile.TarInfo(member.name)
            info.type, info.mode, info.size = member.type, member.mode, len(new)
            dst.addfile(info, io.BytesIO(new) if member.isreg() else None)
        for info, data in change(None, b"") or []:
            dst.addfile(info, io.BytesIO(data) if data is not None else None)


async def test_a_backup_verifies_and_a_damaged_one_fails_verify_and_restore(
    container: Container, tmp_path: Path
) -> None:
    await _some_data(container)
    archive = tmp_path / "b.tar.gz"
    made = await create_backup(container.settings, archive)
    assert made.manifest["counts"]["messages"] == 5
    ok = await verify_backup(archive)
    assert "every SHA-256 matches" in " ".join(ok.summary)
    db_part = next(n for n in made.manifest["parts"] if n.startswith("database/"))

    def flip(name: str | None, data: bytes) -> Any:
        if name == db_part:
            middle = len(data) // 2
            return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        return data if name is not None else None

    tampered = tmp_path / "tampered.tar.gz"
    _rewrite(archive, tampered, flip)
    with pytest.raises(BackupProblem) as refused:
        await verify_backup(tampered)
    assert "SHA-256" in str(refused.value) and db_part in str(refused.value)
    fresh = _fresh_settings(tmp_path, container.settings)
    if container.settings.database_url is None:
        with pytest.raises(BackupProblem):
            await restore_backup(fresh, tampered)
        assert not (fresh.data_dir / "tidings.db").exists()  # nothing half-written

    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BackupProblem, match=r"damaged or cut short|not a tar"):
        await verify_backup(cut)

    def evil(name: str | None, data: bytes) -> Any:
        if name is not None:
            return data
        link = tarfile.TarInfo("database/evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        return [(tarfile.TarInfo("../escape"), None), (link, None)]

    unsafe = tmp_path / "unsafe.tar.gz"
    _rewrite(archive, unsafe, evil)
    with pytest.raises(BackupProblem) as refused:
        await verify_backup(unsafe)
    assert "unsafe member name '../escape'" in refused.value.problems
    assert any("links are refused" in p for p in refused.value.problems)
    assert not (tmp_path.parent / "escape").exists()

    def no_db(name: str | None, data: bytes) -> Any:
        return None if name == db_part else (data if name is not None else None)

    missing = tmp_path / "missing.tar.gz"
    _rewrite(archive, missing, no_db)
    with pytest.raises(BackupProblem) as refused:
        await verify_backup(missing)
    assert f"{db_part!r} is missing from the archive" in refused.value.problems

    def newer_format(name: str | None, data: bytes) -> Any:
        if name == "manifest.json":
            return orjson.dumps({**orjson.loads(data), "format_version": 99})
        return data if name is not None else None

    future = tmp_path / "future.tar.gz"
    _rewrite(archive, future, newer_format)
    with pytest.raises(BackupProblem, match="format 99 is newer"):
        await verify_backup(future)


# SQLite only: a pg_dump archive is checked by pg_restore --list, not read
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_manifest_that_lies_about_the_database_fails_verify(
    container: Container, tmp_path: Path
) -> None:
    await _some_data(container)
    archive = tmp_path / "b.tar.gz"
    await create_backup(container.settings, archive)

    def lie(name: str | None, data: bytes) -> Any:
        if name == "manifest.json":
            return orjson.dumps({**orjson.loads(data), "stream_head": 1})
        return data if name is not None else None

    liar = tmp_path / "liar.tar.gz"
    _rewrite(archive, liar, lie)
    with pytest.raises(BackupProblem, match=r"stream head .* is not the manifest's 1"):
        await verify_backup(liar)


async def test_restore_refuses_a_non_empty_target_unless_forced(
    container: Container, tmp_path: Path
) -> None:
    await _some_data(container)
    archive = tmp_path / "b.tar.gz"
    await create_backup(container.settings, archive)
    if container.settings.database_url is None:
        target = _fresh_settings(tmp_path, container.settings)
        await restore_backup(target, archive)  # empty: fine
    else:
        target = container.settings  # the database it was taken from holds everything
    with pytest.raises(BackupProblem) as refused:
        await restore_backup(target, archive)
    assert len(refused.value.problems) == 1
    assert "a restore goes only into an empty data dir or database" in str(refused.value)
    assert "--force" in str(refused.value)
    done = await restore_backup(target, archive, force=True)
    assert done.resumed_at > done.backup_head


# SQLite only: the schema's revision is rewritten in the SQLite file here
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_backup_of_a_newer_schema_is_refused_and_an_older_one_migrated(
    tmp_path: Path, backend: Backend
) -> None:
    source = Settings.model_validate({"data_dir": tmp_path / "old"})
    await asyncio.to_thread(migrations.upgrade, source.db_url, "0007")  # an older Tidings
    archive = tmp_path / "old.tar.gz"
    made = await create_backup(source, archive)
    assert made.manifest["schema_revision"] == "0007"
    fresh = _fresh_settings(tmp_path, source)
    done = await restore_backup(fresh, archive)
    assert (done.migrated_from, done.migrated_to) == ("0007", migrations.head())

    # The same backup as a newer Tidings would have made it.
    db = sqlite3.connect(source.data_dir / "tidings.db")
    db.execute("UPDATE alembic_version SET version_num = '0099'")
    db.commit()
    db.close()
    newer = tmp_path / "newer.tar.gz"
    await create_backup(source, newer)
    target = Settings.model_validate({"data_dir": tmp_path / "fresh2"})
    with pytest.raises(BackupProblem, match=r"newer schema \(revision 0099\)"):
        await restore_backup(target, newer)
    assert not (tmp_path / "fresh2" / "tidings.db").exists()


async def test_no_secret_of_the_settings_is_in_the_archive(
    container: Container, tmp_path: Path
) -> None:
    secrets = {
        "admin_password": "admin-pw-never-in-a-backup-1",
        "redis_url": "redis://:redis-pw-never-in-a-backup-2@127.0.0.1:6379/0",
        "amqp_url": "amqp://guest:amqp-pw-never-in-a-backup-3@127.0.0.1:5672/",
    }
    key = "a-server-key-never-in-a-backup-4-" + "x" * 16
    container.keyring.current()  # on SQLite: the key file is made, in the data dir
    settings = Settings.model_validate(
        {
            **{k: getattr(container.settings, k) for k in container.settings.model_fields_set},
            **secrets,
            "secret_keys": [key],
        }
    )
    shown = redacted_settings(settings)
    assert {"admin_password", "secret_keys"} <= set(shown["left_out"])
    assert shown["settings"]["redis_url"] == "redis://:***@127.0.0.1:6379/0"
    archive = tmp_path / "plain.tar"  # uncompressed: every byte can be searched
    await create_backup(settings, archive)
    raw = archive.read_bytes()
    for needle in (
        "admin-pw-never-in-a-backup-1",
        "redis-pw-never-in-a-backup-2",
        "amqp-pw-never-in-a-backup-3",
        "a-server-key-never-in-a-backup-4",
        *(k.get_secret_value() for k in container.settings.secret_keys),
    ):
        assert needle.encode() not in raw, needle
    if container.settings.database_url is None:
        for line in container.settings.key_file.read_text().splitlines():
            if line and not line.startswith("#"):
                assert line.encode() not in raw


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_scheduled_backups_run_once_per_slot_keep_the_newest_and_report(
    container: Container, tmp_path: Path
) -> None:
    await _some_data(container)
    svc = container.services
    await svc.jobs.drain()  # the data's own jobs (search indexing) first
    clock = _Clock()
    worker = ScheduledBackups(container.settings, svc, clock)
    other_node = ScheduledBackups(container.settings, svc, clock)
    worker.register()
    before = await scrape(container)
    assert before["tidings_backup_interval_seconds"] == 60
    assert before["tidings_backup_failures_total"] == 0
    assert "tidings_backup_last_success_timestamp_seconds" not in before  # absent(): none yet
    first = await worker.tick()
    assert first == f"backup.scheduled:{int(clock.now // 60)}"
    assert await worker.tick() is None  # once per slot in a process
    assert await other_node.tick() == first  # the same job id: not enqueued twice
    assert await svc.jobs.drain() == 1
    directory = container.settings.backups_dir
    assert [p.name for p in directory.iterdir()] == ["tidings-backup-20270115T080000Z.tar.gz"]
    last = await svc.backups.last()
    assert last is not None and last.ok and last.scheduled and last.bytes > 0
    assert last.stream_head == await svc.sync.head()
    await verify_backup(next(directory.iterdir()))
    for _ in range(3):
        clock.now += 60
        await worker.tick()
        await svc.jobs.drain()
    assert sorted(p.name for p in directory.iterdir()) == [
        "tidings-backup-20270115T080200Z.tar.gz",
        "tidings-backup-20270115T080300Z.tar.gz",
    ]
    # A failure is reported (and the job retried by the queue).
    shutil.rmtree(directory)
    directory.write_text("not a folder")
    clock.now += 60
    await worker.tick()
    await svc.jobs.drain()
    last = await svc.backups.last()
    assert last is not None and not last.ok and last.error
    assert last.at <= datetime.now(UTC)
    # /metrics: the newest successful one stays; the failed attempts are counted
    good = await svc.backups.last_success(scheduled=True)
    assert good is not None and good.file == "tidings-backup-20270115T080300Z.tar.gz"
    after = await scrape(container)
    assert after["tidings_backup_last_success_timestamp_seconds"] == good.at.timestamp()
    assert after["tidings_backup_last_success_bytes"] == good.bytes > 0
    assert after["tidings_backup_failures_total"] == container.deps.counts.backup_failures >= 1


async def test_a_scheduled_backup_over_its_time_is_a_failure_reported_and_counted(
    container: Container,
) -> None:
    await _some_data(container)
    settings = container.settings.model_copy(update={"backup_timeout_seconds": 1e-9})
    worker = ScheduledBackups(settings, container.services, _Clock())
    worker.register()
    await worker.tick()
    await container.services.jobs.drain()  # the first attempt (the retries wait a backoff)
    last = await container.services.backups.last()
    assert last is not None and not last.ok and last.error == "timed out after 1e-09 s"
    assert container.deps.counts.backup_failures == 1
    assert await container.services.backups.last_success(scheduled=True) is None
    assert (await scrape(container))["tidings_backup_failures_total"] == 1


async def scrape(container: Container) -> dict[str, float]:
    """The unlabelled samples of a fresh /metrics exposition of this process."""
    text = (await Metrics(container, None).render()).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


class _Recorder:
    def __init__(self) -> None:
        self.positions: list[int] = []

    def active(self) -> bool:
        return True

    async def jobs_for(self, events: Sequence[StoredEvent]) -> list[NewJob]:
        self.positions += [e.position for e in events]
        return []


async def test_after_a_restore_old_positions_are_refused_and_consumers_step_over_the_gap(
    container: Container,
) -> None:
    svc = container.services
    await _some_data(container)
    recorder = _Recorder()
    svc.jobs.on_events("recorder", recorder)

    async def nothing(job: Job) -> None:
        return None

    svc.jobs.register("test.nothing", nothing)
    await svc.jobs.drain()  # the consumer starts at the head
    boss = await svc.users.by_username("boss")
    cid = await _first_conversation(container)
    await svc.messages.send(boss, cid, "lagging", "not read by the consumer yet")
    head = await svc.sync.head()
    done = await svc.backups.restored(backup_head=head, gap=10**9, details={})
    assert done.resumed_at == head + 10**9
    svc.sync._refused = None  # the server restarts after a restore: read again
    with pytest.raises(InvalidPosition):
        await svc.sync.check_resumable(head + 1)
    with pytest.raises(InvalidPosition):
        await svc.sync.check_resumable(head + 10**9)
    await svc.sync.check_resumable(head)  # the common past
    async with container.store.read() as tx:
        assert (await tx.job_cursors())["recorder"] == head - 1  # behind: left there
    # The consumer reads its last event, then crosses the gap in one round (not
    # 10**9 / jobs_event_batch rounds).
    await svc.messages.send(boss, cid, "after", "after the restore")
    await svc.jobs.tap_events()
    assert recorder.positions == [head]
    await svc.jobs.tap_events()
    assert recorder.positions == [head, head + 10**9 + 1]
    async with container.store.read() as tx:
        assert (await tx.job_cursors())["recorder"] == head + 10**9 + 1


async def _first_conversation(c: Container) -> str:
    async with c.store.read() as tx:
        events = await tx.events_between(0, 10)
    return str(next(e.conversation_id for e in events if e.conversation_id))
