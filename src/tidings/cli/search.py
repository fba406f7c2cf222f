"""`tidings search`: rebuild the message search index from the messages (online, with a
progress bar) and show its status (docs/search.md, "Operating search")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tidings.cli.common import err, print_json, run_with_container, say

if TYPE_CHECKING:
    from tidings.app.container import Container
    from tidings.core.search import IndexStatus

search_app = typer.Typer(
    help="The message search index: rebuild it, see its status (docs/search.md).",
    no_args_is_help=True,
)


@search_app.callback()
def _logs_to_stderr() -> None:
    """Log lines go to standard error: standard output is the answer."""
    from tidings.app.logging import configure_logging

    configure_logging("warning", "console")


@search_app.command("reindex")
def search_reindex(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Rebuild the search index from the messages, online: the server may run meanwhile
    (searches go on; each batch of search_index_batch messages is its own write
    transaction). Recalled messages leave the index, edited ones are indexed as they
    are now. Audited (search_reindexed)."""
    progress = Progress(
        TextColumn("indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    )

    async def action(c: Container) -> int:
        with progress:
            task = progress.add_task("messages", total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return await c.services.search.reindex(None, progress=update)

    indexed = run_with_container(action)
    say(f"indexed {indexed} message(s)")


def _status_json(status: IndexStatus) -> dict[str, object]:
    last = status.last_indexed_at
    return {
        "documents": status.documents,
        "pending_jobs": status.pending_jobs,
        "last_indexed_at": None if last is None else last.isoformat(),
    }


@search_app.command("status")
def search_status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The index: how many messages it holds, the search.index jobs waiting or running
    (the workers' lag), and when it was last written."""

    async def action(c: Container) -> IndexStatus:
        return await c.services.search.status(None)

    status = run_with_container(action)
    data = _status_json(status)
    if as_json:
        print_json(data)
        return
    say(f"documents: {data['documents']}")
    say(f"pending jobs: {data['pending_jobs']}")
    say(f"last indexed: {data['last_indexed_at'] or 'never'}")
