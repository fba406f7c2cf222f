"""The SDK's files (issue 15): upload from a path, bytes or an async stream with
progress, attach on send, download to a file, signed links; on both databases, over a
real socket."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import MakeServer
from tidings.sdk import Client, NotFound, TooLarge

PASSWORD = "plum-orbit-123"


async def test_upload_attach_download_and_link(
    make_server: MakeServer, blob_settings: dict[str, object], tmp_path: Path
) -> None:
    async with make_server(max_upload_bytes=4 * 1024 * 1024, **blob_settings) as server:
        async with Client(server.url) as admin:
            await admin.login(server.admin_username, server.admin_password)
            ann_user = await admin.create_user(f"ann{secrets.token_hex(3)}", PASSWORD)
            ben_user = await admin.create_user(f"ben{secrets.token_hex(3)}", PASSWORD)
        async with Client(server.url) as ann, Client(server.url) as ben:
            await ann.login(ann_user.username, PASSWORD)
            await ben.login(ben_user.username, PASSWORD)
            source = tmp_path / "big.bin"
            data = secrets.token_bytes(3 * 1024 * 1024 + 17)  # over max_request_bytes
            source.write_bytes(data)
            seen: list[int] = []
            big = await ann.upload(source, progress=seen.append)
            assert big.name == "big.bin" and big.size == len(data)
            assert big.sha256 == hashlib.sha256(data).hexdigest()
            assert seen and seen[-1] == len(data) and seen == sorted(seen)

            small = await ann.upload(b"hello", name="hi.txt", content_type="text/plain")

            async def stream() -> AsyncIterator[bytes]:
                for i in range(10):
                    yield f"line {i}\n".encode()

            streamed = await ann.upload(stream(), name="lines.txt")
            assert streamed.size == sum(len(f"line {i}\n") for i in range(10))

            conv = await ann.create_conversation("group", [ben_user.id], name="files")
            message = await ann.send(conv.id, "three files", attachments=[big, small.id, streamed])
            assert [f.id for f in message.attachments] == [big.id, small.id, streamed.id]
            history = await ben.history(conv.id)
            assert history.messages[-1].attachments[1].name == "hi.txt"

            dest = tmp_path / "copy.bin"
            assert await ben.download(big.id, dest) == dest
            assert dest.read_bytes() == data
            assert not (tmp_path / "copy.bin.part").exists()
            assert (await ben.file(small.id)).content_type == "text/plain"

            link = await ben.file_link(small.id)
            async with httpx.AsyncClient(trust_env=False) as anonymous:
                got = await anonymous.get(link.url)
            assert got.status_code == 200 and got.content == b"hello"

            with pytest.raises(TooLarge):
                await ann.upload(b"x" * (4 * 1024 * 1024 + 1), name="too-big.bin")
            lonely = await ann.upload(b"not shared")
            with pytest.raises(NotFound):
                await ben.file(lonely.id)
            with pytest.raises(NotFound):
                await ben.download(lonely.id, tmp_path / "nope.bin")
            assert not (tmp_path / "nope.bin").exists()
            assert not (tmp_path / "nope.bin.part").exists()


async def test_a_bot_replies_with_files(make_server: MakeServer, tmp_path: Path) -> None:
    from tidings.sdk import MessageSent
    from tidings.sdk.bot import Bot, Context

    async with make_server() as server:
        async with Client(server.url) as admin:
            await admin.login(server.admin_username, server.admin_password)
            bot_user, token = await admin.create_bot(f"chartbot{secrets.token_hex(3)}")
            alice_user = await admin.create_user(f"alice{secrets.token_hex(3)}", PASSWORD)
        chart = tmp_path / "chart.csv"
        chart.write_text("a,b\n1,2\n")
        bot = Bot(server.url, token=token)

        @bot.command("chart")
        async def on_chart(ctx: Context) -> None:
            await ctx.reply("here", files=[chart, b"raw bytes"])

        serving = asyncio.create_task(bot.serve())
        try:
            await asyncio.wait_for(bot.wait_ready(), 20)
            async with Client(server.url) as alice:
                await alice.login(alice_user.username, PASSWORD)
                stream = await alice.subscribe(ephemeral=False)
                conv = await alice.create_conversation("group", [bot_user.id], name="charts")
                asked = await alice.send(conv.id, "/chart")

                async def answer() -> MessageSent:
                    async for event in stream:
                        mine = isinstance(event, MessageSent)
                        if mine and event.message.sender_id == bot_user.id:
                            return event

                    raise AssertionError("stream ended")

                got = await asyncio.wait_for(answer(), 20)
                assert got.message.reply_to_seq == asked.seq
                names = [f.name for f in got.message.attachments]
                assert names == ["chart.csv", "file"]
                dest = tmp_path / "got.csv"
                await alice.download(got.message.attachments[0].id, dest)
                assert dest.read_text() == "a,b\n1,2\n"
        finally:
            bot.stop()
            await asyncio.wait_for(serving, 15)
