"""`tidings backup`: a consistent backup of a running server, its check, its restore
(docs/operations.md, Backup and restore)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from tidings.cli.common import (
    JsonOut,
    _one_line_errors,
    _settings,
    err,
    fail,
    print_json,
    run_with_container,
    say,
)

if TYPE_CHECKING:
    from tidings.app.container import Container
    from tidings.store.sql.engines.dumps import Progress as Report

T = TypeVar("T")

backup_app = typer.Typer(
    help="Back up a running server into one file, check a backup, restore one "
    "(docs/operations.md). The server keys are never in a backup: keep the key file "
    "(or secret_keys) apart from the backups.",
    no_args_is_help=True,
)


class _Bars:
    """One Rich progress bar per long step, on stderr (stdout stays for the result)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def step(self, description: str) -> Report:
        task = self.progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            self.progress.update(task, completed=done, total=total or None)

        return update


@contextlib.contextmanager
def _bars() -> Iterator[_Bars]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    with progress:
        yield _Bars(progress)


def _run(action: Callable[[], Coroutine[Any, Any, T]]) -> T:
    from tidings.app.backup import BackupProblem

    try:
        return asyncio.run(action())
    except BackupProblem as exc:
        for line in exc.problems:
            say(f"error: {line}", err)
        raise typer.Exit(1) from None
    except _one_line_errors() as exc:
        fail(str(exc))


@backup_app.command("create")
def backup_create(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The archive to write: FILE.tar.gz or .tgz (gzip), .tar.xz (xz), "
            "otherwise a plain tar. Written beside, renamed into place when whole.",
        ),
    ],
) -> None:
    """Back up the server (running or not): a consistent snapshot of the database
    (SQLite: its online backup API; PostgreSQL: pg_dump), the settings without their
    secrets, and a manifest of SHA-256 sums, in one file."""
    from tidings.app.backup import create_backup
    from tidings.services.backup import BackupStatus

    settings = _settings()
    if output.exists() and output.is_dir():
        fail(f"{output} is a folder: give the archive's file name")
    with _bars() as bars:
        made = _run(lambda: create_backup(settings, output, bars))

    async def note(c: Container) -> None:
        await c.services.backups.record(
            BackupStatus(
                at=datetime.now(UTC),
                ok=True,
                file=made.path.name,
                bytes=made.bytes,
                seconds=made.seconds,
                stream_head=int(made.manifest["stream_head"]),
            )
        )

    run_with_container(note)
    m = made.manifest
    say(
        f"backup written: {made.path} ({made.bytes} bytes, {made.seconds:.1f} s): "
        f"{m['backend']}, schema {m['schema_revision']}, stream head {m['stream_head']}"
    )
    say(
        "not in it: the server keys (secret_keys or the key file "
        f"{settings.key_file}): keep them safe apart from the backups"
    )


@backup_app.command("verify")
def backup_verify(
    file: Annotated[Path, typer.Argument(help="The archive to check.")],
) -> None:
    """Check a backup: its structure, the manifest, every SHA-256 sum, and that the
    database opens (SQLite: integrity_check; PostgreSQL: pg_restore --list). Exit 1 on
    any problem."""
    from tidings.app.backup import verify_backup

    with _bars() as bars:
        verified = _run(lambda: verify_backup(file, bars))
    say(f"{file}: OK")
    for line in verified.summary:
        say(f"  {line}")


@backup_app.command("restore")
def backup_restore(
    file: Annotated[Path, typer.Argument(help="The archive to restore.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace what the data dir or database holds."),
    ] = False,
    keys_lost: Annotated[
        bool,
        typer.Option(
            "--keys-lost",
            help="Restore although the server key the backup's data needs is lost for "
            "good; then run `tidings secrets rotate --forget-lost`.",
        ),
    ] = False,
) -> None:
    """Restore a backup into an empty data dir (--data-dir) or an empty database
    (database_url), with every server on it stopped; then migrate it to this version.

    The stream positions go on after a gap (backup_restore_position_gap): a client
    that resumes from a position the lost server gave out after the backup is told
    invalid_position and resyncs. Give the new place the server keys first (the key
    file, or secret_keys)."""
    from tidings.app.backup import restore_backup

    settings = _settings()
    with _bars() as bars:
        done = _run(
            lambda: restore_backup(settings, file, force=force, keys_lost=keys_lost, steps=bars)
        )
    say(
        f"restored {file} ({done.manifest['created_at']}): schema {done.migrated_from}"
        + (f" migrated to {done.migrated_to}" if done.migrated_to != done.migrated_from else "")
        + f"; stream head {done.backup_head}, new events from {done.resumed_at + 1}"
    )
    if done.settings_copy is not None:
        say(f"the backed-up settings (no secrets) are in {done.settings_copy}")


@backup_app.command("status")
def backup_status(as_json: JsonOut = False) -> None:
    """The last backup's time, size and outcome (what /metrics reports); exit 1 when it
    failed. --json: {"last": null, or at, ok, file, bytes, seconds, stream_head,
    scheduled, error}."""
    status = run_with_container(lambda c: c.services.backups.last(), check_keys=False)
    if as_json:
        print_json({"last": None if status is None else status.json()})
        if status is not None and not status.ok:
            raise typer.Exit(1)
        return
    if status is None:
        say("no backup made yet")
        return
    outcome = "ok" if status.ok else f"FAILED: {status.error}"
    say(
        f"last backup {status.at:%Y-%m-%d %H:%M:%S} UTC: {outcome}; {status.file}, "
        f"{status.bytes} bytes, {status.seconds:.1f} s"
        + (" (scheduled)" if status.scheduled else "")
    )
    if not status.ok:
        raise typer.Exit(1)


@backup_app.command("list")
def backup_list(as_json: JsonOut = False) -> None:
    """The scheduled backups kept in the backups directory (backup_dir, default
    data_dir/backups), newest first: time slot, size, file. --json: a list of {file,
    path, at, bytes}."""
    from tidings.app.backup import scheduled_archives, scheduled_time

    directory = _settings().backups_dir
    rows: list[dict[str, object]] = []
    for path in reversed(scheduled_archives(directory) if directory.is_dir() else []):
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # pruned meanwhile
            continue
        rows.append(
            {
                "file": path.name,
                "path": str(path),
                "at": scheduled_time(path).isoformat(),
                "bytes": size,
            }
        )
    if as_json:
        print_json(rows)
        return
    if not rows:
        say(f"no scheduled backups in {directory}")
        return
    for row in rows:
        say(f"{row['at']}  {row['bytes']:>12} bytes  {row['path']}")
