#!/usr/bin/env python3
"""Reminder bot: `/remind 10m stand-up` answers in thread after ten minutes.

    TIDINGS_URL=http://127.0.0.1:8080 TIDINGS_BOT_TOKEN=... python examples/reminder_bot.py

Commands (in any conversation the bot is a member of):
  /remind DURATION TEXT   DURATION like 90s, 10m, 1h30m, 2d
  /reminders              what is pending in this conversation
  /cancel N               cancel pending reminder number N
Reminders live in memory: a clean shutdown (Ctrl-C, SIGTERM) tells each
conversation which reminders were dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass

from _common import make_bot

from tidings.sdk import TidingsError
from tidings.sdk.bot import Context, parse_duration

bot = make_bot(__doc__.splitlines()[0] if __doc__ else "reminder bot")


@dataclass
class Reminder:
    number: int
    conversation_id: str
    seq: int
    text: str
    due: float
    task: asyncio.Task[None] | None = None


pending: dict[int, Reminder] = {}
numbers = itertools.count(1)


def _human(seconds: float) -> str:
    seconds = max(0, round(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


async def _fire(ctx: Context, reminder: Reminder) -> None:
    await asyncio.sleep(max(0.0, reminder.due - time.monotonic()))
    pending.pop(reminder.number, None)
    await ctx.reply(f"⏰ reminder: {reminder.text}")


@bot.command("remind")
async def remind(ctx: Context) -> None:
    duration_text, _, text = ctx.args.partition(" ")
    seconds = parse_duration(duration_text)
    if seconds is None or not text.strip():
        await ctx.reply("usage: /remind DURATION TEXT, e.g. /remind 10m stand-up")
        return
    reminder = Reminder(
        number=next(numbers),
        conversation_id=ctx.conversation_id,
        seq=ctx.message.seq,
        text=text.strip(),
        due=time.monotonic() + seconds,
    )
    pending[reminder.number] = reminder
    # Owned by the bot: a clean shutdown cancels it instead of leaving it dangling.
    reminder.task = bot.spawn(_fire(ctx, reminder), wait=False)
    await ctx.reply(f"ok, reminder #{reminder.number} in {_human(seconds)}")


@bot.command("reminders")
async def list_reminders(ctx: Context) -> None:
    mine = [r for r in pending.values() if r.conversation_id == ctx.conversation_id]
    if not mine:
        await ctx.reply("no pending reminders here")
        return
    lines = [f"#{r.number} in {_human(r.due - time.monotonic())}: {r.text}" for r in mine]
    await ctx.reply("\n".join(lines))


@bot.command("cancel")
async def cancel(ctx: Context) -> None:
    try:
        reminder = pending[int(ctx.args.strip().lstrip("#"))]
    except (KeyError, ValueError):
        await ctx.reply("usage: /cancel N (see /reminders)")
        return
    if reminder.conversation_id != ctx.conversation_id:
        await ctx.reply("no such reminder here")
        return
    if reminder.task is not None:
        reminder.task.cancel()
    pending.pop(reminder.number, None)
    await ctx.reply(f"cancelled #{reminder.number}")


@bot.on_shutdown
async def goodbye() -> None:
    # The timers were cancelled by the shutdown; say which reminders are lost.
    for reminder in list(pending.values()):
        try:
            await bot.client.send(
                reminder.conversation_id,
                f"I am shutting down: reminder #{reminder.number} ({reminder.text}) is dropped",
                reply_to_seq=reminder.seq,
            )
        except TidingsError as exc:  # the server may be gone too; shutdown goes on
            logging.getLogger("reminder_bot").warning("could not say goodbye: %s", exc)
    pending.clear()


if __name__ == "__main__":
    bot.run()
