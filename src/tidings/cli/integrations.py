"""`tidings commands ...` and `tidings incoming-webhooks ...`: slash commands and
incoming webhooks at the command line (docs/integrations.md). Mounted by cli/main.py;
like every command group, it imports cli/common.py, never cli/main.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tidings.cli.common import JsonOut, console, fail, print_json, run_with_container, say
from tidings.core.integrations import IncomingWebhook, SlashCommand

if TYPE_CHECKING:
    from tidings.app.container import Container

commands_app = typer.Typer(
    help="Manage slash commands: /name answered by an outgoing URL (signed) or a bot.",
    no_args_is_help=True,
)
hooks_app = typer.Typer(
    help="Manage incoming webhooks: secret URLs that post into one conversation.",
    no_args_is_help=True,
)

CommandName = Annotated[str, typer.Argument(help="The command's name (with or without /).")]
HookId = Annotated[str, typer.Argument(help="The incoming webhook's id (see list).")]


def _base(c: Container) -> str:
    """Where a printed URL starts: public_url, else this server's own address."""
    settings = c.settings
    return settings.public_url or f"http://{settings.host}:{settings.port}"


def _print_secret(what: str, value: str) -> None:
    say(f"{what}: {value}")
    say("It is shown only this once: only what checks it is kept.")


# --- slash commands -----------------------------------------------------------------
@commands_app.command("list")
def commands_list(as_json: JsonOut = False) -> None:
    """List the slash commands with their targets (--json: a list, each as
    GET /commands answers an admin, with `username`: who answers as)."""

    async def action(c: Container) -> tuple[list[SlashCommand], dict[str, str]]:
        found = await c.services.commands.list(None)
        return found, await c.services.commands.usernames(None, found)

    found, users = run_with_container(action)
    if as_json:
        from tidings.protocol.wire import command_json

        print_json(
            [{**command_json(cmd, None), "username": users.get(cmd.user_id)} for cmd in found]
        )
        return
    table = Table("name", "target", "answers as", "status", "description", "id")
    for cmd in found:
        target = cmd.url if cmd.url is not None else f"bot {users.get(cmd.user_id, '?')}"
        table.add_row(
            f"/{cmd.name}",
            target,
            users.get(cmd.user_id, cmd.user_id),
            "disabled" if cmd.disabled else "active",
            cmd.description,
            cmd.id,
        )
    console.print(table)


@commands_app.command("create")
def commands_create(
    name: CommandName,
    url: Annotated[
        str | None, typer.Option(help="The URL that answers it (requests are signed).")
    ] = None,
    bot: Annotated[
        str | None, typer.Option(help="Or the username of a bot that answers it.")
    ] = None,
    description: Annotated[str, typer.Option(help="What it does (shown in the composer).")] = "",
    usage: Annotated[str, typer.Option(help="Its arguments, e.g. '[service] [version]'.")] = "",
    display_name: Annotated[
        str | None, typer.Option(help="Who its in-channel replies come from (URL commands).")
    ] = None,
) -> None:
    """Register /NAME with a URL (its signing secret is printed once) or a bot."""
    if (url is None) == (bot is None):
        fail("give either --url or --bot")

    async def action(c: Container) -> tuple[SlashCommand, str | None]:
        bot_id = None if bot is None else (await c.services.bots.by_username(bot)).id
        return await c.services.commands.create(
            None,
            name,
            url=url,
            bot_id=bot_id,
            description=description,
            usage=usage,
            display_name=display_name,
        )

    cmd, secret = run_with_container(action)
    say(f"created /{cmd.name} ({cmd.id})")
    if secret is not None:
        _print_secret("signing secret", secret)


def _set_disabled(name: str, disabled: bool) -> SlashCommand:
    async def action(c: Container) -> SlashCommand:
        cmd = await c.services.commands.by_name(None, name)
        return await c.services.commands.update(None, cmd.id, disabled=disabled)

    return run_with_container(action)


@commands_app.command("disable")
def commands_disable(name: CommandName) -> None:
    """Disable a command: nobody can invoke it until it is enabled."""
    say(f"disabled /{_set_disabled(name, True).name}")


@commands_app.command("enable")
def commands_enable(name: CommandName) -> None:
    """Enable a disabled command."""
    say(f"enabled /{_set_disabled(name, False).name}")


@commands_app.command("secret")
def commands_secret(name: CommandName) -> None:
    """Make a new signing secret for a URL command (printed once)."""

    async def action(c: Container) -> tuple[SlashCommand, str]:
        cmd = await c.services.commands.by_name(None, name)
        return await c.services.commands.rotate_secret(None, cmd.id)

    cmd, secret = run_with_container(action)
    say(f"new signing secret for /{cmd.name}; requests are signed with it from now on")
    _print_secret("signing secret", secret)


@commands_app.command("delete")
def commands_delete(name: CommandName) -> None:
    """Delete a command."""

    async def action(c: Container) -> SlashCommand:
        cmd = await c.services.commands.by_name(None, name)
        await c.services.commands.delete(None, cmd.id)
        return cmd

    say(f"deleted /{run_with_container(action).name}")


# --- incoming webhooks --------------------------------------------------------------
@hooks_app.command("list")
def hooks_list(
    conversation: Annotated[
        str | None, typer.Option(help="Only this conversation's (its id).")
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """List incoming webhooks (their URLs are never shown again: rotate for a new one).
    --json: a list, each as GET /incoming-webhooks answers it (`url` always null)."""

    async def action(c: Container) -> list[IncomingWebhook]:
        found: list[IncomingWebhook] = await c.services.incoming_webhooks.list(None, conversation)
        return found

    hooks = run_with_container(action)
    if as_json:
        from tidings.protocol.wire import hook_json

        print_json([hook_json(hook) for hook in hooks])
        return
    table = Table("id", "name", "conversation", "status", "posts", "last post")
    for hook in hooks:
        last = hook.last_post_at
        table.add_row(
            hook.id,
            hook.name,
            hook.conversation_id,
            "disabled" if hook.disabled else "active",
            str(hook.posts),
            "never" if last is None else f"{last:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@hooks_app.command("create")
def hooks_create(
    conversation: Annotated[str, typer.Argument(help="The conversation's id.")],
    name: Annotated[str, typer.Argument(help="The sender's name its posts show.")],
) -> None:
    """Make an incoming webhook and print its URL, once (only a hash of it is kept)."""

    async def action(c: Container) -> tuple[IncomingWebhook, str]:
        hook, secret = await c.services.incoming_webhooks.create(None, conversation, name)
        from tidings.services.integrations import hook_url

        return hook, hook_url(_base(c), hook.id, secret)

    hook, url = run_with_container(action)
    say(f"created incoming webhook {hook.id}")
    _print_secret("url", url)


@hooks_app.command("rotate")
def hooks_rotate(hook_id: HookId) -> None:
    """A new URL for an incoming webhook (printed once); the old one stops working."""

    async def action(c: Container) -> tuple[IncomingWebhook, str]:
        hook, secret = await c.services.incoming_webhooks.rotate(None, hook_id)
        from tidings.services.integrations import hook_url

        return hook, hook_url(_base(c), hook.id, secret)

    hook, url = run_with_container(action)
    say(f"new URL for incoming webhook {hook.id}; the old one no longer works")
    _print_secret("url", url)


def _hook_disabled(hook_id: str, disabled: bool) -> IncomingWebhook:
    async def action(c: Container) -> IncomingWebhook:
        return await c.services.incoming_webhooks.update(None, hook_id, disabled=disabled)

    return run_with_container(action)


@hooks_app.command("disable")
def hooks_disable(hook_id: HookId) -> None:
    """Disable an incoming webhook: its URL answers 404 until enabled."""
    say(f"disabled incoming webhook {_hook_disabled(hook_id, True).id}")


@hooks_app.command("enable")
def hooks_enable(hook_id: HookId) -> None:
    """Enable a disabled incoming webhook."""
    say(f"enabled incoming webhook {_hook_disabled(hook_id, False).id}")


@hooks_app.command("delete")
def hooks_delete(hook_id: HookId) -> None:
    """Delete an incoming webhook: its URL stops working; its messages stay."""

    async def action(c: Container) -> None:
        await c.services.incoming_webhooks.delete(None, hook_id)

    run_with_container(action)
    say(f"deleted incoming webhook {hook_id}")
