#!/usr/bin/env python3
"""Echo bot: answers every message in its thread with the same text.

    TIDINGS_URL=http://127.0.0.1:8080 TIDINGS_BOT_TOKEN=... python examples/echo_bot.py

Add the bot to a group or channel (or open a direct conversation with it), then:
  anything        -> "echo: anything" (as a reply in thread)
  @bot hello      -> "you called? hello"
  /echo words     -> "words"
  /help           -> the list of commands
Stop it with Ctrl-C (or SIGTERM): it finishes what it is doing and disconnects.
"""

from __future__ import annotations

from _common import make_bot

from tidings.sdk.bot import Context

bot = make_bot(__doc__.splitlines()[0] if __doc__ else "echo bot")


@bot.command("echo")
async def echo_command(ctx: Context) -> None:
    await ctx.reply(ctx.args or "(nothing to echo)")


@bot.command("help")
async def help_command(ctx: Context) -> None:
    await ctx.reply("commands: " + ", ".join(f"/{name}" for name in bot.commands))


@bot.on_mention
async def mentioned(ctx: Context) -> None:
    await ctx.reply(f"you called? {ctx.text}".strip())


@bot.on_message
async def echo(ctx: Context) -> None:
    if ctx.command is None and not ctx.mentioned:
        await ctx.reply(f"echo: {ctx.message.body}")


if __name__ == "__main__":
    bot.run()
