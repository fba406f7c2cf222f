"""`tidings ldap`: LDAP / Active Directory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tidings.cli.common import (
    console,
    fail,
    run_with_container,
    say,
)

if TYPE_CHECKING:
    from tidings.app.container import Container
    from tidings.identity.ports import CheckStep
    from tidings.services.ldap import SyncReport

ldap_app = typer.Typer(
    help="LDAP / Active Directory: check the ldap_* settings, sync the directory "
    "(docs/identity.md).",
    no_args_is_help=True,
)


# --- LDAP / Active Directory ---------------------------------------------------------
@ldap_app.command("test")
def ldap_test(
    username: Annotated[
        str | None,
        typer.Option("--username", "-u", help="Also find this account in the directory."),
    ] = None,
    password: Annotated[
        bool,
        typer.Option(
            "--password",
            help="With --username: ask for its password (hidden) and sign it in.",
        ),
    ] = False,
) -> None:
    """Connect to the directory, bind as the service account, search the user base;
    with --username find that account and show what it maps to. Exit 1 if a step fails.
    Writes nothing but an audit entry; never prints a secret."""
    secret = None
    if password:
        if not username:
            fail("--password needs --username")
        secret = typer.prompt(f"Directory password of {username}", hide_input=True)

    async def action(c: Container) -> list[CheckStep]:
        return await c.services.ldap.check(None, username, secret)

    steps = run_with_container(action)
    table = Table("step", "", "detail", title="LDAP check")
    for step in steps:
        table.add_row(step.step, "ok" if step.ok else "FAILED", step.detail)
    console.print(table)
    if not all(step.ok for step in steps):
        raise typer.Exit(1)


@ldap_app.command("sync")
def ldap_sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would change; write nothing.")
    ] = False,
) -> None:
    """Run the directory sync once (the worker runs it every ldap_sync_interval_seconds):
    create accounts, bring them in step, disable those gone or disabled in the directory.
    Prints a table of what changed (or, with --dry-run, would change). Exit 1 when the
    directory cannot answer or the run refused to disable (a wrong base or filter)."""

    async def action(c: Container) -> SyncReport:
        return await c.services.ldap.sync(None, dry_run=dry_run)

    report = run_with_container(action)
    title = "LDAP sync (dry run: nothing written)" if dry_run else "LDAP sync"
    table = Table("username", "action", "changes", title=title)
    for row in report.changed:
        changes = ", ".join(f"{k}={v}" for k, v in row.fields.items()) or row.detail
        table.add_row(row.username, row.action, changes)
    console.print(table)
    counts = ", ".join(
        f"{report.count(a)} {a}"
        for a in ("created", "updated", "disabled", "linked", "unchanged", "skipped", "error")
        if report.count(a)
    )
    say(f"{report.entries} directory entries: {counts or 'nothing to do'}")
    if report.error:
        fail(report.error)
