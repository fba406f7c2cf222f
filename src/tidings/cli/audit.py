"""`tidings audit`: check and export the audit log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tidings.cli.common import (
    console,
    err,
    fail,
    run_with_container,
    say,
)

if TYPE_CHECKING:
    from tidings.app.container import Container
    from tidings.core.audit import ChainCheck

audit_app = typer.Typer(help="Check and export the audit log.", no_args_is_help=True)


# --- audit log ---------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain and its signed head; exit 1 if either fails.

    The chain is walked from its first entry (an entry changed, removed, inserted or
    moved: BROKEN), and must reach the entry its signed head names (the newest entries
    removed: TRUNCATED). See docs/security.md, Audit log."""

    async def action(c: Container) -> ChainCheck:
        return await c.services.audit.verify()

    check = run_with_container(action, check_keys=False)  # a head of a lost key: reported
    if not check.ok:
        what = "TRUNCATED" if check.truncated else f"BROKEN at entry {check.broken_seq}"
        say(
            f"audit log {what}: {check.reason} "
            f"({check.entries} entries read; last good entry {check.head_seq})",
            err,
        )
        raise typer.Exit(1)
    signed = "" if check.signed_by is None else f", signed head (key {check.signed_by})"
    say(
        f"audit log intact: {check.entries} entries, head {check.head_seq} "
        f"{check.head_hash}{signed}"
    )


@audit_app.command("export")
def audit_export(
    since: Annotated[
        str | None,
        typer.Option(help="Only entries at or after this time (RFC 3339 or YYYY-MM-DD, UTC)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default stdout).")
    ] = None,
) -> None:
    """Write the audit log as JSON lines, oldest first."""
    from datetime import UTC, datetime

    import orjson

    from tidings.core.clock import rfc3339

    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--since {since!r} is not a date or time (use e.g. 2026-11-01T00:00:00Z)")
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)

    async def action(c: Container) -> int:
        sink = output.open("wb") if output is not None else sys.stdout.buffer
        count = 0
        try:
            async for e in c.services.audit.entries(start):
                line = {
                    "seq": e.seq,
                    "at": rfc3339(e.at),
                    "action": e.action,
                    "actor_id": e.actor_id,
                    "target_id": e.target_id,
                    "address": e.address,
                    "details": e.details,
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                }
                sink.write(orjson.dumps(line) + b"\n")
                count += 1
        finally:
            if output is not None:
                sink.close()
            else:
                sink.flush()
        return count

    count = run_with_container(action, check_keys=False)  # reads only
    if output is not None:
        console.print(f"wrote {count} entries to {output}", markup=False, highlight=False)
