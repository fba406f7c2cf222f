"""Slash commands (services/integrations.py, docs/integrations.md): registered by admins
with an outgoing URL (a real loopback receiver here, which checks the signature) or a
bot (an SDK bot here); invoked over REST and WebSocket; the reply posted in the
conversation or shown to the caller only in an `ephemeral` frame. On SQLite and on
PostgreSQL + Redis; the jobs run with `services.jobs.drain()`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from starlette.responses import Response

from tests.conftest import AppServer, MakeServer
from tests.helpers import Api, Ws, http_client, login, make_user
from tests.http_receiver import Received, Receiver, empty, reply
from tidings.sdk import Client
from tidings.sdk.bot import Bot, CommandContext

LOOPBACK = {"webhook_allowed_networks": "127.0.0.0/8"}


class Scene:
    def __init__(self, server: AppServer, admin: Api, ann: Api, ben: Api, cid: str) -> None:
        self.server, self.admin, self.ann, self.ben, self.cid = server, admin, ann, ben, cid

    async def drain(self) -> int:
        ran: int = await self.server.container.services.jobs.drain()
        return ran

    async def command(self, name: str, **target: Any) -> tuple[dict[str, Any], str | None]:
        made = await self.admin.post("/commands", {"name": name, **target}, expect=201)
        return made["command"], made["secret"]

    async def invoke(self, name: str, text: str = "", api: Api | None = None) -> dict[str, Any]:
        body = {"command": name, "text": text}
        data = await (api or self.ann).post(f"/conversations/{self.cid}/commands", body, expect=202)
        return dict(data["invocation"])

    async def bodies(self) -> list[str]:
        page = await self.ann.get(f"/conversations/{self.cid}/messages")
        return [m["body"] for m in page["messages"]]


@contextlib.asynccontextmanager
async def scene(make_server: MakeServer, **settings: Any) -> AsyncIterator[Scene]:
    async with make_server(**{**LOOPBACK, **settings}) as server:
        admin = await login(server.url, "admin", server.admin_password)
        ann, ben = await make_user(admin, "ann"), await make_user(admin, "ben")
        body = {"kind": "group", "name": "ops", "member_ids": [ben.id]}
        cid = (await ann.post("/conversations", body, expect=201))["conversation"]["id"]
        try:
            yield Scene(server, admin, ann, ben, cid)
        finally:
            for api in (admin, ann, ben):
                await api.close()


async def frames(ws: Ws, kind: str, settle: float = 0.5) -> list[dict[str, Any]]:
    """The `kind` frames that reached `ws` until nothing came for `settle` s."""
    found = []
    with contextlib.suppress(TimeoutError):
        while True:
            frame = await ws.recv(timeout=settle)
            if frame["type"] == kind:
                found.append(frame)
    return found


async def test_a_signed_url_command_answers_only_the_caller(make_server: MakeServer) -> None:
    async with scene(make_server) as s, Receiver() as receiver:
        command, secret = await s.command(
            "weather", url=receiver.url + "/cmd", description="the forecast", usage="[city]"
        )
        assert secret and command["target"] == "url"
        receiver.secret = secret
        receiver.answer = reply({"text": "sunny in *Paris*", "response_type": "ephemeral"})
        ann_one = await Ws.connect(s.server.ws_url, s.ann.token or "")
        ann_two = await Ws.connect(s.server.ws_url, s.ann.token or "")
        ben_ws = await Ws.connect(s.server.ws_url, s.ben.token or "")

        invocation = await s.invoke("/weather", "Paris")
        assert invocation["command"] == "weather" and invocation["conversation_id"] == s.cid
        await s.drain()  # (or the in-process worker already ran it)
        [got] = await receiver.wait()
        assert got.signed is True and got.path == "/cmd"
        assert got.headers["x-tidings-event"] == "command"
        assert got.headers["x-tidings-delivery"] == invocation["id"]
        assert got.headers["x-tidings-signature"].startswith("sha256=")
        data = got.json
        assert (data["command"], data["text"], data["user_id"]) == ("/weather", "Paris", s.ann.id)
        assert data["conversation_id"] == s.cid and data["invocation_id"] == invocation["id"]
        assert urlsplit(data["response_url"]).path.startswith("/api/v1/command-responses/")

        for ws in (ann_one, ann_two):  # every connection of the caller's
            frame = await ws.recv_type("ephemeral")
            assert frame["body"] == "sunny in *Paris*" and "position" not in frame
            assert frame["conversation_id"] == s.cid and frame["command"] == "weather"
            assert frame["sender"]["id"] == command["user_id"] and frame["sender"]["bot"]
        assert await frames(ben_ws, "ephemeral") == []  # nobody else's
        assert await s.bodies() == []  # nothing stored
        for ws in (ann_one, ann_two, ben_ws):
            await ws.close()


async def test_an_in_channel_reply_is_a_message_posted_once(make_server: MakeServer) -> None:
    async with scene(make_server) as s, Receiver() as receiver:
        command, secret = await s.command("deploy", url=receiver.url + "/hook")
        receiver.secret = secret
        receiver.answer = reply({"text": "deploying api v2", "response_type": "in_channel"})
        ben_ws = await Ws.connect(s.server.ws_url, s.ben.token or "")
        invocation = await s.invoke("deploy", "api v2")
        await s.drain()
        event = (await ben_ws.event("message"))["event"]["message"]
        assert event["body"] == "deploying api v2" and event["sender_id"] == command["user_id"]
        # the job redone (at-least-once) calls the target again but posts nothing twice
        jobs = s.server.container.services.jobs
        await jobs.consume("command.invoke", {"invocation_id": invocation["id"], "base_url": ""})
        assert len(receiver.received) == 2
        assert receiver.received[0].headers["x-tidings-delivery"] == invocation["id"]
        assert receiver.received[1].headers["x-tidings-delivery"] == invocation["id"]
        assert await s.bodies() == ["deploying api v2"]
        await ben_ws.close()


async def test_a_delayed_reply_through_the_response_url(make_server: MakeServer) -> None:
    async with scene(make_server, command_response_uses=2) as s, Receiver() as receiver:
        command, secret = await s.command("build", url=receiver.url + "/b")
        receiver.secret = secret
        receiver.answer = empty()  # nothing now: the answer comes later
        ann_ws = await Ws.connect(s.server.ws_url, s.ann.token or "")
        await s.invoke("build", "main")
        await s.drain()
        [got] = await receiver.wait()
        response_url = got.json["response_url"]
        assert response_url.startswith(s.server.url + "/api/v1/command-responses/")
        path = urlsplit(response_url).path

        async with http_client(s.server.url) as c:  # the target, later, with no token
            r = await c.post(path, json={"text": "build started", "response_type": "ephemeral"})
            assert r.status_code == 200, r.text
            frame = await ann_ws.recv_type("ephemeral")
            assert frame["body"] == "build started"
            r = await c.post(path, json={"text": "build *passed*", "response_type": "in_channel"})
            assert r.status_code == 200, r.text
            assert await s.bodies() == ["build *passed*"]
            # used up: the third refused, nothing posted
            r = await c.post(path, json={"text": "again", "response_type": "in_channel"})
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
            # a forged signature, a wrong type, hostile bodies
            forged = path.rsplit("/", 1)[0] + "/" + "A" * 43
            assert (await c.post(forged, json={"text": "x"})).status_code == 404
            r = await c.post(path, json={"text": "x", "response_type": "everyone"})
            assert r.status_code in (400, 404)
            r = await c.post(path, content=b"{", headers={"content-type": "application/json"})
            assert r.status_code == 400
            r = await c.post(path, content=b"x" * (70 * 1024),
                             headers={"content-type": "application/json"})  # fmt: skip
            assert r.status_code == 413
        assert await s.bodies() == ["build *passed*"]
        assert command["user_id"]
        await ann_ws.close()


async def test_a_bot_target_answers_with_the_sdk(make_server: MakeServer) -> None:
    async with scene(make_server) as s:
        async with Client(s.server.url) as admin:
            await admin.login(s.server.admin_username, s.server.admin_password)
            bot_user, token = await admin.create_bot("opsbot")
            command, secret = await admin.create_command(
                "status", bot_id=bot_user.id, description="service status"
            )
        assert secret is None and command.target == "bot"
        bot = Bot(s.server.url, token=token)
        seen: list[CommandContext] = []

        @bot.slash_command("status")
        async def status(ctx: CommandContext) -> None:
            seen.append(ctx)
            await ctx.respond(f"checking {ctx.text} for {ctx.user.username}")
            await ctx.respond(f"{ctx.text}: all green", in_channel=True)

        runner = asyncio.create_task(bot.serve())
        await asyncio.wait_for(bot.wait_ready(), 10)
        ann_ws = await Ws.connect(s.server.ws_url, s.ann.token or "")
        ben_ws = await Ws.connect(s.server.ws_url, s.ben.token or "")
        ack = await ann_ws.request(  # the WebSocket frame
            {"type": "command", "conversation_id": s.cid, "command": "status", "text": "api"}
        )
        assert ack["type"] == "ack", ack
        assert ack["invocation"]["command"] == "status"
        await s.drain()
        frame = await ann_ws.recv_type("ephemeral")
        assert frame["body"] == "checking api for ann" and frame["sender"]["id"] == bot_user.id
        message = (await ben_ws.event("message"))["event"]["message"]
        assert message["body"] == "api: all green" and message["sender_id"] == bot_user.id
        assert [c.conversation_id for c in seen] == [s.cid]
        assert await frames(ben_ws, "ephemeral") == []
        bot.stop()
        await asyncio.wait_for(runner, 10)
        for ws in (ann_ws, ben_ws):
            await ws.close()


async def test_a_bot_that_is_not_connected_is_reported(make_server: MakeServer) -> None:
    async with scene(make_server, command_max_attempts=1) as s:
        bot = await s.admin.post("/bots", {"username": "sleepy"}, expect=201)
        await s.command("nap", bot_id=bot["user"]["id"])
        ann_ws = await Ws.connect(s.server.ws_url, s.ann.token or "")
        await s.invoke("nap")
        await s.drain()
        frame = await ann_ws.recv_type("ephemeral")
        assert frame["notice"] == "bot_offline"
        await ann_ws.close()


@pytest.mark.parametrize("answer_status", [404, 500])
async def test_a_failing_target_tells_the_caller(
    make_server: MakeServer, answer_status: int
) -> None:
    async with scene(make_server, command_max_attempts=1) as s, Receiver() as receiver:
        _command, secret = await s.command("flaky", url=receiver.url + "/x")
        receiver.secret = secret
        receiver.answer = lambda _r: Response(b"nope", answer_status)
        ann_ws = await Ws.connect(s.server.ws_url, s.ann.token or "")
        await s.invoke("flaky")
        await s.drain()
        frame = await ann_ws.recv_type("ephemeral")
        assert frame["notice"] == "command_failed"
        assert len(receiver.received) == 1
        await ann_ws.close()


async def test_loopback_is_refused_unless_allowed(make_server: MakeServer) -> None:
    """The SSRF guard: without webhook_allowed_networks, a loopback URL is never called."""
    async with scene(make_server, webhook_allowed_networks="") as s, Receiver() as receiver:
        await s.command("local", url=receiver.url + "/x")
        for url in ("http://[::1]:9/x", "http://169.254.169.254/latest", "http://10.0.0.1/x"):
            await s.command(f"c{abs(hash(url)) % 1000}", url=url)
        ann_ws = await Ws.connect(s.server.ws_url, s.ann.token or "")
        await s.invoke("local")
        await s.drain()
        frame = await ann_ws.recv_type("ephemeral")
        assert frame["notice"] == "command_failed"
        await asyncio.sleep(0.2)
        assert receiver.received == []
        await ann_ws.close()


async def test_managing_commands(make_server: MakeServer) -> None:
    async with scene(make_server, rate_command_per_user=2, rate_window_seconds=30) as s:
        command, _secret = await s.command(
            "echo", url="https://echo.example/cmd", description="says it back", usage="[text]"
        )
        # anyone sees what they may use, not where it goes
        [seen] = (await s.ben.get("/commands"))["commands"]
        assert (seen["name"], seen["description"], seen["usage"]) == (
            "echo", "says it back", "[text]"
        )  # fmt: skip
        assert seen.get("url") is None and seen.get("target") is None
        # only admins manage them
        r = await s.ann.call("POST", "/commands", json={"name": "mine", "url": "https://a.example"})
        assert r is not None and r["error"]["code"] == "forbidden"
        for name in ("Echo", "/echo"):
            r = await s.admin.call("POST", "/commands", json={"name": name, "url": "https://x.io"})
            assert r is not None and r["error"]["code"] == "conflict"
        for bad in ({"name": "no spaces", "url": "https://x.io"}, {"name": "x" * 33, "url": "https://x.io"},
                    {"name": "ok", "url": "ftp://x.io"}, {"name": "ok", "url": "http://u:p@x.io"},
                    {"name": "ok"}, {"name": "ok", "url": "https://x.io", "bot_id": "b"},
                    {"name": "ok", "bot_id": s.ann.id}):  # fmt: skip
            r = await s.admin.call("POST", "/commands", json=bad)
            assert r is not None and r["error"]["code"] in ("invalid_request", "not_found"), bad
        # unknown and disabled commands are not found; invoking is rate limited
        r = await s.ann.call("POST", f"/conversations/{s.cid}/commands", json={"command": "nope"})
        assert r is not None and r["error"]["code"] == "not_found"
        path = f"/commands/{command['id']}"
        await s.admin.call("PATCH", path, json={"disabled": True}, expect=200)
        assert (await s.ben.get("/commands"))["commands"] == []
        r = await s.ann.call("POST", f"/conversations/{s.cid}/commands", json={"command": "echo"})
        assert r is not None and r["error"]["code"] == "not_found"
        await s.admin.call("PATCH", path, json={"disabled": False}, expect=200)
        async with http_client(s.server.url) as c:
            headers = {"authorization": f"Bearer {s.ann.token}"}
            r = await c.post(
                f"/api/v1/conversations/{s.cid}/commands", json={"command": "echo"},
                headers=headers,
            )  # fmt: skip
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # a stranger cannot invoke in a conversation they are not in
        cat = await make_user(s.admin, "cat")
        r = await cat.call("POST", f"/conversations/{s.cid}/commands", json={"command": "echo"})
        assert r is not None and r["error"]["code"] == "not_found"
        r = await cat.call(
            "POST", f"/conversations/{s.cid}/commands", json={"command": "echo", "text": "x" * 4001}
        )
        assert r is not None and r["error"]["code"] == "invalid_request"
        await cat.close()
        # a new secret, then gone; every change audited
        rotated = await s.admin.post(f"{path}/secret")
        assert rotated["secret"] and rotated["secret"] != _secret
        await s.admin.call("DELETE", path, expect=204)
        assert (await s.admin.get("/commands"))["commands"] == []
        entries = (await s.admin.get("/audit", params={"limit": 500}))["entries"]
        actions = {e["action"] for e in entries if e["target_id"] == command["id"]}
        assert actions == {
            "command_created", "command_updated", "command_secret_rotated", "command_deleted"
        }  # fmt: skip
        assert _secret not in str(entries) and rotated["secret"] not in str(entries)


def test_receiver_helpers_are_pure() -> None:
    r = Received("/p", {}, b'{"a": 1}', None)
    assert r.json == {"a": 1}


async def test_the_sdk_manages_integrations_and_gets_ephemeral_replies(
    make_server: MakeServer,
) -> None:
    """The SDK's integration methods, and an `EphemeralMessage` on its event stream
    (also with ephemeral=False: only typing and presence are left out then)."""
    from tidings.sdk import APIError, EphemeralMessage, Forbidden, NotFound

    async with scene(make_server) as s, Receiver() as receiver:  # noqa: SIM117 - s first
        async with (
            Client(s.server.url, token=s.admin.token) as admin,
            Client(s.server.url, token=s.ann.token) as ann,
        ):
            hook = await ann.create_incoming_webhook(s.cid, "Builds")  # ann owns the group
            assert hook.url and hook.conversation_id == s.cid
            async with http_client(s.server.url) as c:
                r = await c.post(urlsplit(hook.url).path, json={"text": "one"})
                assert r.status_code == 200
            [listed] = await ann.incoming_webhooks(s.cid)
            assert (listed.id, listed.posts, listed.url) == (hook.id, 1, None)
            assert [h.id for h in await admin.incoming_webhooks()] == [hook.id]
            with pytest.raises(Forbidden):
                await ann.incoming_webhooks()
            rotated = await ann.rotate_incoming_webhook(hook.id)
            assert rotated.url and rotated.url != hook.url
            off = await ann.update_incoming_webhook(hook.id, name="CI", disabled=True)
            assert (off.name, off.disabled) == ("CI", True)
            await ann.delete_incoming_webhook(hook.id)
            assert await ann.incoming_webhooks(s.cid) == []

            command, secret = await admin.create_command(
                "echo", url=receiver.url + "/echo", description="says it back", usage="[text]"
            )
            assert secret and command.target == "url" and command.url
            receiver.secret = secret
            receiver.answer = lambda r: Response(
                orjson.dumps({"text": f"you said {r.json['text']}"}),
                media_type="application/json",
            )
            [seen] = await ann.commands()
            assert (seen.name, seen.usage, seen.url) == ("echo", "[text]", None)
            with pytest.raises(APIError):
                await ann.create_command("mine", url="https://x.example")
            stream = await ann.subscribe(ephemeral=False)
            invocation = await ann.invoke_command(s.cid, "/echo", "hi there")
            assert invocation.command == "echo" and invocation.expires_at is not None
            await s.drain()

            async def first_ephemeral() -> EphemeralMessage:
                async for event in stream:
                    if isinstance(event, EphemeralMessage):
                        return event
                raise AssertionError("the stream ended")

            reply = await asyncio.wait_for(first_ephemeral(), 10)
            assert reply.body == "you said hi there" and reply.command == "echo"
            assert reply.sender.id == command.user_id and reply.invocation_id == invocation.id
            with pytest.raises(NotFound):
                await ann.invoke_command(s.cid, "nope")
            new_secret = await admin.rotate_command_secret(command.id)
            assert new_secret != secret
            updated = await admin.update_command(command.id, disabled=True)
            assert updated.disabled
            await admin.delete_command(command.id)
            assert await admin.commands() == []
            await stream.aclose()
