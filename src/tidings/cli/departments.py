"""`tidings dept`: the department tree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.tree import Tree

from tidings.cli.common import (
    JsonOut,
    console,
    print_json,
    run_with_container,
)
from tidings.core.models import Department

if TYPE_CHECKING:
    from tidings.app.container import Container

dept_app = typer.Typer(help="Manage the department tree.", no_args_is_help=True)


# --- departments -------------------------------------------------------------------------
@dept_app.command("create")
def dept_create(
    name: str,
    parent: Annotated[
        str | None, typer.Option(help="Parent department (name, path A/B, or id).")
    ] = None,
) -> None:
    """Create a department."""

    async def action(c: Container) -> None:
        parent_id = None if parent is None else (await c.services.departments.resolve(parent)).id
        dep = await c.services.departments.create(None, name, parent_id)
        console.print(f"created department {dep.name} ({dep.id})")

    run_with_container(action)


@dept_app.command("list")
def dept_list(as_json: JsonOut = False) -> None:
    """Show the department tree."""

    async def action(c: Container) -> list[Department]:
        found: list[Department] = await c.services.departments.list(None)
        return found

    deps = run_with_container(action)
    if as_json:
        print_json([{"id": d.id, "name": d.name, "parent_id": d.parent_id} for d in deps])
        return
    tree = Tree("organization")
    nodes: dict[str | None, Tree] = {None: tree}
    pending = list(deps)
    while pending:
        progressed = False
        for d in list(pending):
            if d.parent_id in nodes:
                nodes[d.id] = nodes[d.parent_id].add(f"{d.name} [dim]({d.id})[/dim]")
                pending.remove(d)
                progressed = True
        if not progressed:
            break
    console.print(tree)


@dept_app.command("assign")
def dept_assign(
    username: str,
    department: Annotated[str, typer.Argument(help="Department name, path A/B, or id.")],
) -> None:
    """Put a user in a department."""

    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        dep = await c.services.departments.resolve(department)
        await c.services.departments.set_member(None, dep.id, user.id, True)
        console.print(f"{user.username} is in {dep.name}")

    run_with_container(action)


@dept_app.command("unassign")
def dept_unassign(
    username: str,
    department: Annotated[str, typer.Argument(help="Department name, path A/B, or id.")],
) -> None:
    """Take a user out of a department."""

    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        dep = await c.services.departments.resolve(department)
        await c.services.departments.set_member(None, dep.id, user.id, False)
        console.print(f"{user.username} is no longer in {dep.name}")

    run_with_container(action)


@dept_app.command("rename")
def dept_rename(
    department: Annotated[str, typer.Argument(help="Department name, path A/B, or id.")],
    name: Annotated[str, typer.Argument(help="Its new name.")],
) -> None:
    """Rename a department (audited)."""

    async def action(c: Container) -> None:
        dep = await c.services.departments.resolve(department)
        renamed = await c.services.departments.rename(None, dep.id, name)
        console.print(f"renamed {dep.name} to {renamed.name}")

    run_with_container(action)


@dept_app.command("move")
def dept_move(
    department: Annotated[str, typer.Argument(help="Department name, path A/B, or id.")],
    parent: Annotated[
        str | None,
        typer.Option(help="The new parent (name, path A/B, or id); omitted: the top level."),
    ] = None,
) -> None:
    """Move a department under another one (never under itself or its own
    sub-departments), or to the top level."""

    async def action(c: Container) -> None:
        dep = await c.services.departments.resolve(department)
        parent_id = None if parent is None else (await c.services.departments.resolve(parent)).id
        await c.services.departments.move(None, dep.id, parent_id)
        console.print(
            f"moved {dep.name} {'to the top level' if parent is None else f'under {parent}'}"
        )

    run_with_container(action)


@dept_app.command("remove")
def dept_remove(
    department: Annotated[str, typer.Argument(help="Department name, path A/B, or id.")],
) -> None:
    """Delete an empty department (no members, no sub-departments)."""

    async def action(c: Container) -> None:
        dep = await c.services.departments.resolve(department)
        await c.services.departments.delete(None, dep.id)
        console.print(f"removed department {dep.name}")

    run_with_container(action)
