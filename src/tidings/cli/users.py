"""`tidings user`: user accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tidings.cli.common import (
    JsonOut,
    console,
    fail,
    print_json,
    run_with_container,
    say,
)
from tidings.core.models import OrgRole, User

if TYPE_CHECKING:
    from tidings.app.container import Container

user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)


# --- users -----------------------------------------------------------------------------
def _user_table(users: list[User]) -> Table:
    table = Table("username", "display name", "role", "status", "id")
    for u in users:
        table.add_row(
            u.username,
            u.display_name,
            u.role.value + (" (bot)" if u.bot else ""),
            "disabled" if u.disabled else "active",
            u.id,
        )
    return table


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name: letters, digits, . _ -")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Password (prompted when omitted).",
        ),
    ],
    display_name: Annotated[str | None, typer.Option(help="Name shown to others.")] = None,
    role: Annotated[OrgRole, typer.Option(help="Organization role.")] = OrgRole.MEMBER,
) -> None:
    """Create a user account."""

    async def action(c: Container) -> None:
        user = await c.services.users.create(None, username, password, display_name, role)
        console.print(f"created {user.role.value} {user.username} ({user.id})")

    run_with_container(action)


@user_app.command("list")
def user_list(
    query: Annotated[str, typer.Option(help="Filter by username or display name.")] = "",
    limit: Annotated[int, typer.Option(help="At most this many.")] = 200,
    as_json: JsonOut = False,
) -> None:
    """List user accounts."""

    async def action(c: Container) -> None:
        users = await c.services.users.search(None, query, None, limit)
        if as_json:
            print_json(
                [
                    {
                        "id": u.id,
                        "username": u.username,
                        "display_name": u.display_name,
                        "role": u.role.value,
                        "bot": u.bot,
                        "disabled": u.disabled,
                    }
                    for u in users
                ]
            )
            return
        console.print(_user_table(users))

    run_with_container(action)


def _set_disabled(username: str, disabled: bool) -> None:
    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        await c.services.users.update(None, user.id, disabled=disabled)
        console.print(f"{'disabled' if disabled else 'enabled'} {user.username}")
        if user.bot and not disabled:
            console.print(f"give the bot a new token: tidings bot token {user.username}")

    run_with_container(action)


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable an account: its sessions stop working at once."""
    _set_disabled(username, True)


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled account."""
    _set_disabled(username, False)


@user_app.command("reset-password")
def user_reset_password(
    username: str,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="New password (prompted when omitted).",
        ),
    ],
) -> None:
    """Set a new password; every session of the user ends."""

    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        await c.services.users.reset_password(None, user.id, password)
        console.print(f"password of {user.username} reset; their sessions were revoked")

    run_with_container(action)


@user_app.command("reset-totp")
def user_reset_totp(username: str) -> None:
    """Remove a user's second factor (a lost phone); every session of the user ends."""

    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        await c.services.second_factor.reset(None, user.id)
        console.print(f"second factor of {user.username} removed; their sessions were revoked")

    run_with_container(action)


@user_app.command("second-factor-policy")
def user_second_factor_policy(
    policy: Annotated[str, typer.Argument(help="none, admins or everyone")],
) -> None:
    """Choose who must have a second factor (also PATCH /api/v1/settings)."""
    from tidings.core.models import SecondFactorPolicy

    try:
        chosen = SecondFactorPolicy(policy)
    except ValueError:
        fail("the policy is none, admins or everyone")

    async def action(c: Container) -> None:
        await c.services.second_factor.set_policy(None, chosen)
        console.print(f"second factor required for: {chosen.value}")

    run_with_container(action)


@user_app.command("set-role")
def user_set_role(
    username: str,
    role: Annotated[OrgRole, typer.Argument(help="The new organization role.")],
) -> None:
    """Change a user's organization role (audited; the last owner cannot lose the role)."""

    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        await c.services.users.update(None, user.id, role=role)
        say(f"{user.username} is now {role.value}")

    run_with_container(action)
