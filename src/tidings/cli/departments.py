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
