"""The bot framework and the example bots (the SDK in this process, the examples as
processes of their own), against the application in-process (`server`).

Bots run as bot accounts with a bot token, as in production: the admin creates them
(``POST /bots``, what ``tidings bot create NAME`` does at the command line) and hands the
token to the bot. An ordinary account with a password can still run a bot too.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import AppServer
from tidings.sdk import Client, EventStream, Message, MessageSent, StreamClosed, User
from tidings.sdk.bot import Bot, Context, parse_duration

PASSWORD = "bot-test-password-1"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SRC = Path(__file__).resolve().parents[3] / "src"


@pytest.fixture
async def admin(server: AppServer) -> AsyncIterator[Client]:
    async with Client(server.url) as client:
        await client.login(server.admin_username, server.admin_password)
        yield client


async def new_user(admin: Client, name: str) -> User:
    return await admin.create_user(f"{name}{secrets.token_hex(3)}", PASSWORD)


async def new_bot(admin: Client, name: str) -> tuple[User, str]:
    """A bot account and its bot token, as the admin gets them."""
    user, token = await admin.create_bot(f"{name}{secrets.token_hex(3)}")
    assert user.bot
    return user, token


async def replies_to(
    stream: EventStream, sender_id: str, count: int, within: float = 20
) -> list[Message]:
    """The next ``count`` messages from ``sender_id`` seen on ``stream``."""
    found: list[Message] = []

    async def run() -> None:
        async for event in stream:
            if isinstance(event, MessageSent) and event.message.sender_id == sender_id:
                found.append(event.message)
                if len(found) == count:
                    return

    await asyncio.wait_for(run(), within)
    return found


def test_parse_duration() -> None:
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("2d") == 172800
    assert parse_duration("500ms") == 0.5
    assert parse_duration("soon") is None
    assert parse_duration("10m later") is None
    assert parse_duration("") is None


async def test_bot_dispatches_messages_mentions_and_commands(
    server: AppServer, admin: Client
) -> None:
    bot_user, token = await new_bot(admin, "helperbot")
    alice_u = await new_user(admin, "alice")
    bot = Bot(server.url, token=token)
    seen: dict[str, list[str]] = {"message": [], "mention": [], "command": [], "unknown": []}
    stopped: list[bool] = []

    @bot.on_message
    async def on_message(ctx: Context) -> None:
        seen["message"].append(ctx.message.body)

    @bot.on_mention
    async def on_mention(ctx: Context) -> None:
        seen["mention"].append(ctx.text)
        await ctx.reply(f"at your service: {ctx.text}")

    @bot.command("remind")
    async def remind(ctx: Context) -> None:
        seen["command"].append(ctx.args)
        await ctx.reply(f"will remind: {ctx.argv[1:]} in {parse_duration(ctx.argv[0])}s")

    @bot.on_unknown_command
    async def unknown(ctx: Context) -> None:
        seen["unknown"].append(ctx.command or "")

    @bot.command("boom")
    async def boom(ctx: Context) -> None:
        raise RuntimeError("handler failure must not stop the bot")

    @bot.on_shutdown
    async def on_stop() -> None:
        stopped.append(True)

    serving = asyncio.create_task(bot.serve())
    await asyncio.wait_for(bot.wait_ready(), 20)
    async with Client(server.url) as alice:
        await alice.login(alice_u.username, PASSWORD)
        stream = await alice.subscribe(ephemeral=False)
        conv = await alice.create_conversation("group", [bot_user.id], name="bots")
        await alice.send(conv.id, "just chatting")
        boom_msg = await alice.send(conv.id, "/boom")
        mention = await alice.send(conv.id, f"@{bot_user.username} status please")
        command = await alice.send(conv.id, "/remind 10m stand-up now")
        await alice.send(conv.id, "/nosuch thing")
        answers = await replies_to(stream, bot_user.id, 2)
        by_thread = {m.reply_to_seq: m.body for m in answers}
        assert by_thread[mention.seq] == "at your service: status please"
        assert by_thread[command.seq] == "will remind: ['stand-up', 'now'] in 600.0s"
        assert boom_msg.seq not in by_thread

    for _ in range(100):
        if len(seen["message"]) == 5 and seen["unknown"]:
            break
        await asyncio.sleep(0.05)
    assert seen["mention"] == ["status please"]
    assert seen["command"] == ["10m stand-up now"]
    assert seen["unknown"] == ["nosuch"]
    assert len(seen["message"]) == 5  # every message from someone else, commands included
    assert bot.errors == 1  # /boom raised; the bot went on

    bot.stop()
    await asyncio.wait_for(serving, 15)
    assert stopped == [True]


def run_example(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, **env, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / name)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def stop_example(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM, and the bot must shut down cleanly (exit 0) within a few seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(process.wait, 15)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    assert code == 0, output
    return output


async def wait_for_online(client: Client, user_id: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"bot exited early:\n{output}")
        if (await client.presence([user_id])).get(user_id) == "online":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("bot never came online")


async def test_echo_bot_example(server: AppServer, admin: Client) -> None:
    bot_user, token = await new_bot(admin, "echobot")
    alice_u = await new_user(admin, "alice")
    process = run_example("echo_bot.py", {"TIDINGS_URL": server.url, "TIDINGS_BOT_TOKEN": token})
    try:
        async with Client(server.url) as alice:
            await alice.login(alice_u.username, PASSWORD)
            conv = await alice.create_conversation("direct", [bot_user.id])
            await wait_for_online(alice, bot_user.id, process)
            stream = await alice.subscribe(ephemeral=False)
            hello = await alice.send(conv.id, "hello there")
            echo = await alice.send(conv.id, "/echo words and more")
            call = await alice.send(conv.id, f"@{bot_user.username} you there?")
            answers = await replies_to(stream, bot_user.id, 3)
            by_thread = {m.reply_to_seq: m.body for m in answers}
            assert by_thread == {
                hello.seq: "echo: hello there",
                echo.seq: "words and more",
                call.seq: "you called? you there?",
            }
    finally:
        await stop_example(process)


async def test_reminder_bot_example(server: AppServer, admin: Client) -> None:
    bot_user, token = await new_bot(admin, "remindbot")
    alice_u = await new_user(admin, "alice")
    process = run_example(
        "reminder_bot.py", {"TIDINGS_URL": server.url, "TIDINGS_BOT_TOKEN": token}
    )
    try:
        async with Client(server.url) as alice:
            await alice.login(alice_u.username, PASSWORD)
            conv = await alice.create_conversation("group", [bot_user.id], name="reminders")
            await wait_for_online(alice, bot_user.id, process)
            stream = await alice.subscribe(ephemeral=False)
            ask = await alice.send(conv.id, "/remind 1s stretch your legs")
            later = await alice.send(conv.id, "/remind 1h write the report")
            bad = await alice.send(conv.id, "/remind whenever")
            answers = await replies_to(stream, bot_user.id, 4, within=30)
            bodies = [(m.reply_to_seq, m.body) for m in answers]
            assert (ask.seq, "ok, reminder #1 in 1s") in bodies
            assert (later.seq, "ok, reminder #2 in 1h") in bodies
            assert (bad.seq, "usage: /remind DURATION TEXT, e.g. /remind 10m stand-up") in bodies
            assert (ask.seq, "⏰ reminder: stretch your legs") in bodies
            # On shutdown the bot says which reminders it drops, in their threads.
            output_task = asyncio.create_task(stop_example(process))
            goodbye = await replies_to(stream, bot_user.id, 1, within=20)
            assert goodbye[0].reply_to_seq == later.seq
            assert "reminder #2 (write the report) is dropped" in goodbye[0].body
            await output_task
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("auth", ["bot_token", "password"])
async def test_bot_stops_cleanly_when_its_account_is_disabled(
    server: AppServer, admin: Client, auth: str
) -> None:
    if auth == "bot_token":
        bot_user, token = await new_bot(admin, "doomedbot")
        bot = Bot(server.url, token=token)
    else:  # an ordinary account may run a bot too
        bot_user = await new_user(admin, "doomedbot")
        bot = Bot(server.url, username=bot_user.username, password=PASSWORD)
    stopped: list[bool] = []

    @bot.on_shutdown
    async def on_stop() -> None:
        stopped.append(True)

    serving = asyncio.create_task(bot.serve())
    await asyncio.wait_for(bot.wait_ready(), 20)
    await admin.update_user(bot_user.id, disabled=True)  # cuts its connections at once
    with pytest.raises(StreamClosed) as refused:
        await asyncio.wait_for(serving, 20)
    assert refused.value.code in (4001, 4003)
    assert stopped == [True]


async def test_bot_stops_when_its_token_is_rotated(server: AppServer, admin: Client) -> None:
    """A rotated token stops working at once: the bot's live connection closes (4003)
    and its reconnection is refused; the new token works."""
    bot_user, token = await new_bot(admin, "rotatedbot")
    bot = Bot(server.url, token=token)
    serving = asyncio.create_task(bot.serve())
    await asyncio.wait_for(bot.wait_ready(), 20)
    new_token = await admin.rotate_bot_token(bot_user.id)
    with pytest.raises(StreamClosed) as refused:
        await asyncio.wait_for(serving, 20)
    assert refused.value.code in (4001, 4003)
    async with Client(server.url, token=new_token) as client:
        me = await client.me()
    assert me.id == bot_user.id and me.bot
    assert [b.username for b in await admin.bots()] == [bot_user.username]
