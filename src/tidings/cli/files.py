"""`tidings files`: what each user's uploads take, and the collection of what nothing
references (docs/files.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tidings.cli.common import console, print_json, run_with_container, say

if TYPE_CHECKING:
    from tidings.app.container import Container
    from tidings.services.files import Collected
    from tidings.store.ports import FileUsage

files_app = typer.Typer(
    help="Uploaded files: storage per user, and collecting unreferenced files "
    "(docs/files.md).",
    no_args_is_help=True,
)


@files_app.callback()
def _logs_to_stderr() -> None:
    """Log lines (the collection's own) go to standard error: standard output is the
    answer (tables, --json)."""
    from tidings.app.logging import configure_logging

    configure_logging("warning", "console")


@files_app.command("usage")
def files_usage(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per user.")] = False,
) -> None:
    """Per user: how many files they uploaded and the bytes those take (their quota's
    use; deduplicated copies counted for each uploader), the most first."""

    async def action(c: Container) -> list[tuple[FileUsage, str | None]]:
        return await c.services.files.usage(None)

    usage = run_with_container(action)
    if as_json:
        print_json(
            [
                {"user_id": u.user_id, "username": name, "files": u.files, "bytes": u.bytes}
                for u, name in usage
            ]
        )
        return
    table = Table("user", "files", "bytes")
    for u, name in usage:
        table.add_row(name or u.user_id, str(u.files), f"{u.bytes:,}")
    console.print(table)


@files_app.command("gc")
def files_gc(
    as_json: Annotated[bool, typer.Option("--json", help="The counts as JSON.")] = False,
) -> None:
    """Collect now what the worker collects every files_gc_interval_seconds: uploads no
    message carries, older than files_gc_grace_seconds, then blobs no upload uses."""

    async def action(c: Container) -> Collected:
        return await c.services.files.collect(None)

    done = run_with_container(action)
    if as_json:
        print_json({"files": done.files, "blobs": done.blobs, "bytes": done.bytes})
        return
    say(f"collected {done.files} files and {done.blobs} blobs ({done.bytes:,} bytes freed)")
