"""``tidings bench SCENARIO``: the Typer sub-app (mounted by the main CLI as ``bench``).

Also runnable alone: ``python -m tidings.bench SCENARIO --spawn``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from tidings.bench.runner import SCENARIOS, Options, run

T = TypeVar("T")

bench_app = typer.Typer(
    name="bench",
    help=f"Load the server with a scenario and check every delivery ({', '.join(SCENARIOS)}); "
    "search: search at scale, every hit checked.",
    add_completion=False,
    no_args_is_help=True,
)

_UNITS = {
    "_ms": "ms",
    "_s": "s",
    "_mib": "MiB",
    "_pct": "%",
    "_per_s": "/s",
}


def _run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (the generator's own CPU matters), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        text = ", ".join(str(v) for v in value[:6])
        return text + (" …" if len(value) > 6 else "")
    return str(value)


_SEARCH_CHECKS = (
    "violations",
    "recalled_hits",
    "stale_hits",
    "query_errors",
    "membership_mismatches",
)


def render_table(result: dict[str, Any], console: Console) -> None:
    """Print the figures of a run as a Rich table."""
    table = Table(title=f"tidings bench {result.get('scenario')}", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key in ("options", "errors", "server_rss_series_mib"):
            continue
        style = None
        if key in ("lost", "duplicated", "out_of_order", "send_errors", "failed") and value:
            style = "bold red"
        if key in _SEARCH_CHECKS and value:
            style = "bold red"
        if key == "ok":
            style = "bold green" if value else "bold red"
        table.add_row(key, _fmt(value), style=style)
    console.print(table)
    for error in result.get("errors") or []:
        console.print(f"[red]error:[/red] {error}")


def bench(
    scenario: str,
    url: str = typer.Option(
        os.environ.get("TIDINGS_URL", "http://127.0.0.1:8080"), "--url", help="Server to load."
    ),
    server_pid: int | None = typer.Option(
        None, "--server-pid", help="Server process id, to read its CPU time and memory."
    ),
    spawn: bool = typer.Option(
        False, "--spawn", help="Start a throw-away server on a temporary data directory."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON line instead of a table."),
    admin_username: str = typer.Option("admin", "--admin-username"),
    admin_password: str | None = typer.Option(
        None, "--admin-password", help="Default: $TIDINGS_ADMIN_PASSWORD.", show_default=False
    ),
    pairs: int = typer.Option(50, help="latency: direct-conversation pairs."),
    messages: int = typer.Option(20, help="latency: messages per pair."),
    members: int = typer.Option(100, help="fanout: group members, all connected."),
    senders: int = typer.Option(10, help="fanout: members who send."),
    per_sender: int = typer.Option(100, "--per-sender", help="fanout: messages per sender."),
    in_flight: int = typer.Option(10, "--in-flight", help="Unacknowledged sends per sender."),
    connections: int = typer.Option(2000, help="connections: idle connections to hold."),
    distinct_users: bool = typer.Option(
        True,
        "--distinct-users/--shared-users",
        help="connections: one account and token per connection (created without password "
        "hashing), or spread over --connection-users accounts.",
    ),
    connection_users: int = typer.Option(
        100, "--connection-users", help="connections with --shared-users: accounts."
    ),
    connect_concurrency: int = typer.Option(
        100, "--connect-concurrency", help="Connections being opened at once."
    ),
    hold: float = typer.Option(5.0, help="connections: seconds to hold them open."),
    duration: float = typer.Option(60.0, help="soak: seconds."),
    soak_users: int = typer.Option(20, "--soak-users", help="soak: users."),
    rate: float = typer.Option(100.0, help="soak: messages per second in total."),
    reconnect_every: float = typer.Option(
        5.0, "--reconnect-every", help="soak: drop and resume a connection every N s (0: never)."
    ),
    file_size_mib: int = typer.Option(
        1024, "--file-size-mib", help="files: the large file's size in MiB (0: none)."
    ),
    images: int = typer.Option(1000, help="files: small images uploaded (0: none)."),
    idle_sends: int = typer.Option(
        200, "--idle-sends", help="files: messages sent one at a time for the idle latency."
    ),
    upload_concurrency: int = typer.Option(
        8, "--upload-concurrency", help="files: image uploads at once."
    ),
    thumbnail_timeout: float = typer.Option(
        300.0, "--thumbnail-timeout", help="files: give up waiting for thumbnails after N s."
    ),
    body_bytes: int = typer.Option(64, "--body-bytes", help="Message body size."),
    drain_timeout: float = typer.Option(
        15.0, "--drain-timeout", help="Give up waiting for missing deliveries after N idle s."
    ),
    compression: bool = typer.Option(
        False, "--compression/--no-compression", help="Offer permessage-deflate."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
) -> None:
    """Run ``scenario`` and report its figures; exit 1 if a check failed."""
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"choose from {', '.join(SCENARIOS)}", param_hint="SCENARIO")
    options = Options(
        url=url,
        server_pid=server_pid,
        spawn=spawn,
        admin_username=admin_username,
        admin_password=admin_password,
        pairs=pairs,
        messages=messages,
        members=members,
        senders=senders,
        per_sender=per_sender,
        in_flight=in_flight,
        connections=connections,
        distinct_users=distinct_users,
        connection_users=connection_users,
        connect_concurrency=connect_concurrency,
        hold=hold,
        duration=duration,
        soak_users=soak_users,
        rate=rate,
        reconnect_every=reconnect_every,
        file_size_mib=file_size_mib,
        images=images,
        idle_sends=idle_sends,
        upload_concurrency=upload_concurrency,
        thumbnail_timeout=thumbnail_timeout,
        body_bytes=body_bytes,
        drain_timeout=drain_timeout,
        compression=compression,
        progress=progress and sys.stderr.isatty(),
    )
    console = Console(stderr=json_out)
    try:
        result = _run_loop(run(scenario, options))
    except (RuntimeError, ValueError, OSError, httpx.HTTPError) as exc:
        Console(stderr=True).print(f"[bold red]bench failed:[/bold red] {exc}")
        raise typer.Exit(2) from exc
    if json_out:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        sys.stdout.flush()
    else:
        render_table(result, console)
    if not result.get("ok"):
        raise typer.Exit(1)


_HELP = {
    "latency": "Pairs of users in direct conversations send one message at a time and "
    "wait for its delivery (--pairs, --messages).",
    "fanout": "One group of --members members, all connected; --senders senders each send "
    "--per-sender messages with at most --in-flight unacknowledged.",
    "connections": "Open --connections authenticated connections, --connect-concurrency at "
    "a time, each with its own account and token (--shared-users: spread over "
    "--connection-users accounts), and hold them idle; server CPU-ms and memory per "
    "connection.",
    "files": "Upload and download a --file-size-mib MiB file (MB/s, server RSS growth), "
    "then --images small images each sent in a message, timing until every thumbnail is "
    "ready, with the send latency p99 in the same conversation meanwhile beside the idle "
    "one (bench/files.py).",
    "soak": "A mixed load for --duration seconds at --rate messages/s (group and direct "
    "messages, edits, reactions, reads, typing) while connections drop and resume.",
}


def _make_command(name: str) -> None:
    def command(**kwargs: Any) -> None:
        bench(name, **kwargs)

    # Same options for every scenario: copy bench's signature without ``scenario``.
    import inspect
    import typing

    hints = typing.get_type_hints(bench)
    signature = inspect.signature(bench)
    params = [
        p.replace(annotation=hints[p.name])
        for p in signature.parameters.values()
        if p.name != "scenario"
    ]
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]  # read by Typer
        parameters=params, return_annotation=None
    )
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = name
    command.__doc__ = (
        _HELP[name] + "\n\nExits 1 if any message was lost, duplicated or out of order, "
        "or a send failed."
    )
    bench_app.command(name)(command)


for _name in SCENARIOS:
    _make_command(_name)


@bench_app.command("search")
def search_command(
    messages: int = typer.Option(1_000_000, help="Messages loaded."),
    conversations: int = typer.Option(1_000, help="Conversations they are spread over."),
    queries: int = typer.Option(1_000, help="Queries asked, each as some member."),
    users: int = typer.Option(500, help="Accounts the conversations' members are drawn from."),
    backend: str = typer.Option(
        "sqlite",
        help="sqlite (a temporary data directory) or postgres (a new database on "
        "--postgres-url, dropped afterwards; Redis for the bus).",
    ),
    spawn: bool = typer.Option(
        False,
        "--spawn",
        help="Start a throw-away server on the loaded database (required: the corpus is "
        "loaded straight into a new database before the server starts).",
    ),
    index: str = typer.Option(
        "worker",
        help="worker: time the spawned server's worker indexing the loaded messages' "
        "events (search.index jobs); reindex: time SearchService.reindex in-process.",
    ),
    seed: int = typer.Option(16, help="The generator's seed: the same corpus and queries."),
    changes: int | None = typer.Option(
        None,
        help="Messages edited or recalled by their senders after the load, half each "
        "(default: one in 1,000, at least 4).",
        show_default=False,
    ),
    batch: int = typer.Option(5_000, help="Messages per write transaction of the load."),
    page_size: int = typer.Option(50, "--page-size", help="limit of each search request."),
    index_timeout: float = typer.Option(
        3600.0, "--index-timeout", help="Give up waiting for the index after N s."
    ),
    postgres_url: str = typer.Option(
        os.environ.get("TIDINGS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
        "--postgres-url",
        help="With --backend postgres: the server the bench's database is made on.",
    ),
    redis_url: str = typer.Option(
        os.environ.get("TIDINGS_BENCH_REDIS", "redis://127.0.0.1:6379/0"),
        "--redis-url",
        help="With --backend postgres: the spawned server's Redis.",
    ),
    load_only: bool = typer.Option(
        False, "--load-only", help="Load and check the memberships, then stop (time the load)."
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Keep the data directory (and database) afterwards."
    ),
    reuse: Path | None = typer.Option(
        None,
        "--reuse",
        help="Query again the directory (and database) a run with --keep left (its 'kept'"
        " path): no load; the index is already there, so no indexing rate. Implies --keep.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON line instead of a table."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
) -> None:
    """Load --messages generated Chinese, English and mixed messages into --conversations
    conversations (some members leave part way), time the indexing, then ask --queries
    searches as different users through GET /api/v1/search: p50/p99 of the first page,
    recall of the queries with a known answer, and every hit checked against the
    caller's membership ranges (bench/search.py, docs/benchmarks.md).

    Exits 1 if a hit was not the caller's to see, was a recalled message or an edited
    one found by its old text, a search failed, or the index is incomplete."""
    from tidings.app.logging import configure_logging
    from tidings.bench.search import SearchOptions, run_search

    configure_logging("warning", "console")  # the in-process loader's services log too
    if backend not in ("sqlite", "postgres"):
        raise typer.BadParameter("sqlite or postgres", param_hint="--backend")
    if index not in ("worker", "reindex"):
        raise typer.BadParameter("worker or reindex", param_hint="--index")
    if not spawn:
        raise typer.BadParameter(
            "the corpus is loaded straight into a new database: give --spawn", param_hint="--spawn"
        )
    options = SearchOptions(
        messages=messages,
        conversations=conversations,
        queries=queries,
        users=users,
        backend=backend,
        spawn=spawn,
        seed=seed,
        changes=changes,
        batch=batch,
        index=index,
        index_timeout=index_timeout,
        page_size=page_size,
        postgres_url=postgres_url,
        redis_url=redis_url,
        load_only=load_only,
        keep=keep,
        reuse=reuse,
        progress=progress and sys.stderr.isatty(),
    )
    console = Console(stderr=json_out)
    try:
        result = _run_loop(run_search(options))
    except (RuntimeError, ValueError, OSError, httpx.HTTPError) as exc:
        Console(stderr=True).print(f"[bold red]bench failed:[/bold red] {exc}")
        raise typer.Exit(2) from exc
    if json_out:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        sys.stdout.flush()
    else:
        render_table(result, console)
    if not result.get("ok"):
        raise typer.Exit(1)


def main() -> None:
    """Entry point for ``python -m tidings.bench``."""
    bench_app(prog_name="tidings bench")


if __name__ == "__main__":
    main()
