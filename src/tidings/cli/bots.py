"""`tidings bot`: bot accounts and their tokens."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tidings.cli.common import (
    JsonOut,
    Quiet,
    console,
    print_json,
    run_with_container,
    say,
)
from tidings.core.models import BotInfo, User

if TYPE_CHECKING:
    from tidings.app.container import Container

bot_app = typer.Typer(
    help="Manage bot accounts: they sign in with a bot token, never a password.",
    no_args_is_help=True,
)


# --- bots ------------------------------------------------------------------------------
def _print_token(username: str, token: str, quiet: bool) -> None:
    if quiet:
        sys.stdout.write(token + "\n")  # the token alone, for scripts: T=$(tidings ...)
        return
    say(f"token: {token}")
    console.print(
        "It is shown only this once: give it to the bot now (TIDINGS_BOT_TOKEN). "
        f"A lost token is replaced with: tidings bot token {username}",
        markup=False,
        highlight=False,
    )


BotName = Annotated[str, typer.Argument(help="The bot's username.")]


@bot_app.command("create")
def bot_create(
    name: Annotated[str, typer.Argument(help="The bot's username: letters, digits, . _ -")],
    display_name: Annotated[str | None, typer.Option(help="Name shown to others.")] = None,
    quiet: Quiet = False,
) -> None:
    """Create a bot account and print its token, once (only its hash is kept)."""

    async def action(c: Container) -> tuple[User, str]:
        return await c.services.bots.create(None, name, display_name)

    bot, token = run_with_container(action)
    if not quiet:
        console.print(f"created bot {bot.username} ({bot.id})", markup=False, highlight=False)
    _print_token(bot.username, token, quiet)


@bot_app.command("list")
def bot_list(as_json: JsonOut = False) -> None:
    """List bot accounts, with when their token was issued and last used."""

    async def action(c: Container) -> list[BotInfo]:
        found: list[BotInfo] = await c.services.bots.list(None)
        return found

    bots = run_with_container(action)
    if as_json:
        print_json(
            [
                {
                    "id": b.user.id,
                    "username": b.user.username,
                    "display_name": b.user.display_name,
                    "disabled": b.user.disabled,
                    "token_issued_at": None if b.token is None else b.token.created_at.isoformat(),
                    "last_seen_at": None
                    if b.token is None or b.token.last_seen_at is None
                    else b.token.last_seen_at.isoformat(),
                }
                for b in bots
            ]
        )
        return
    table = Table("username", "display name", "status", "token issued", "last seen", "id")
    for b in bots:
        issued = "none" if b.token is None else f"{b.token.created_at:%Y-%m-%d %H:%M}"
        seen = b.token.last_seen_at if b.token is not None else None
        table.add_row(
            b.user.username,
            b.user.display_name,
            "disabled" if b.user.disabled else "active",
            issued,
            "never" if seen is None else f"{seen:%Y-%m-%d %H:%M}",
            b.user.id,
        )
    console.print(table)


@bot_app.command("token")
def bot_token(name: BotName, quiet: Quiet = False) -> None:
    """Issue a new token for a bot (printed once); the old one stops working at once.

    The bot's live connections close too: at once when the server nodes share Redis,
    otherwise (the embedded bus) within the server's session_check_seconds."""

    async def action(c: Container) -> tuple[User, str]:
        bot = await c.services.bots.by_username(name)
        return await c.services.bots.rotate_token(None, bot.id)

    bot, token = run_with_container(action)
    if not quiet:
        console.print(
            f"new token for bot {bot.username}; the old one no longer works",
            markup=False,
            highlight=False,
        )
    _print_token(bot.username, token, quiet)


@bot_app.command("disable")
def bot_disable(name: BotName) -> None:
    """Disable a bot: its token is revoked and it can no longer connect.

    To use it again: tidings user enable NAME, then tidings bot token NAME."""

    async def action(c: Container) -> User:
        bot = await c.services.bots.by_username(name)
        return await c.services.bots.disable(None, bot.id)

    bot = run_with_container(action)
    console.print(f"disabled bot {bot.username}; its token was revoked", markup=False)
