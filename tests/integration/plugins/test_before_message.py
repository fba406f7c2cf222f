"""Server plugins' before_message hook, through REST and the WebSocket as a client meets
it: a refusal is a clear error, a broken or slow plugin never breaks a send (fail-open,
logged with its name, counted) unless it is fail-closed; edits go through it too."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests import plugin_samples
from tests.conftest import AppServer, MakeServer, World


@pytest.fixture(scope="module", autouse=True)
def installed_samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield from plugin_samples.install(tmp_path_factory.mktemp("site"))


@asynccontextmanager
async def plugged(make_server: MakeServer, *names: str, **settings: Any) -> AsyncIterator[
    tuple[AppServer, World]
]:
    # A generous time limit unless a test is about the limit: a sync hook runs on a
    # thread, and on a loaded 2-core runner reaching it can take more than the 50 ms
    # default, which would fail the send open and hide what the test looks at.
    settings.setdefault("plugin_timeout_seconds", 5)
    async with make_server(plugins=list(names), **settings) as server:
        world = World(server)
        try:
            yield server, world
        finally:
            await world.close()


def log_lines(server: AppServer, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


async def test_a_refusal_is_a_clear_error_over_rest_and_websocket(make_server: MakeServer) -> None:
    async with plugged(make_server, "t-refusing") as (_server, world):
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        r = await ann.http.post(
            f"/conversations/{cid}/messages",
            json={"client_msg_id": "m1", "body": "a forbidden thing"},
        )
        assert r.status_code == 403
        assert r.json()["error"] == {
            "code": "refused_by_policy",
            "message": "refused by policy: no forbidden words here",
            "details": {"plugin": "t-refusing", "reason": "no forbidden words here",
                        "rule": "test-rule"},
        }
        ws = await world.ws(ann)
        reply = await ws.send_message(cid, "forbidden over the socket")
        assert reply["type"] == "error", reply
        assert reply["error"]["code"] == "refused_by_policy"
        assert reply["error"]["details"]["plugin"] == "t-refusing"
        # nothing was stored; what the policy lets through is
        assert (await ann.get(f"/conversations/{cid}/messages"))["messages"] == []
        ack = await ws.send_message(cid, "a fine thing")
        assert ack["type"] == "ack" and ack["message"]["seq"] == 1
        sent = await ann.send(cid, "also fine", "m2")
        assert sent["seq"] == 2


async def test_an_edit_is_screened_too(make_server: MakeServer) -> None:
    plugin_samples.Refusing.drafts.clear()
    async with plugged(make_server, "t-refusing") as (_server, world):
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        await ann.send(cid, "harmless", "m1")
        r = await ann.http.patch(f"/conversations/{cid}/messages/1", json={"body": "forbidden"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "refused_by_policy"
        stored = (await ann.get(f"/conversations/{cid}/messages"))["messages"][0]
        assert stored["body"] == "harmless" and stored.get("edited_at") is None
        drafts = plugin_samples.Refusing.drafts
        assert [(d.client_msg_id, d.edit_seq, d.body) for d in drafts] == [
            ("m1", None, "harmless"), (None, 1, "forbidden")
        ]
        assert drafts[0].sender.username == "ann" and drafts[0].conversation_id == cid


async def test_a_replaced_body_is_what_is_stored(make_server: MakeServer) -> None:
    async with plugged(make_server, "t-upper") as (_server, world):
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        assert (await ann.send(cid, "quiet please"))["body"] == "QUIET PLEASE"
        ws = await world.ws(ann)
        ack = await ws.send_message(cid, "also quiet")
        assert ack["message"]["body"] == "ALSO QUIET"


@pytest.mark.parametrize("name", ["t-raising", "t-sleepy", "t-blocking", "t-wrong"])
async def test_a_broken_or_slow_plugin_never_breaks_a_send(
    make_server: MakeServer, name: str
) -> None:
    async with plugged(make_server, name, plugin_timeout_seconds=0.05) as (server, world):
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        started = time.monotonic()
        assert (await ann.send(cid, "still sent", "m1"))["seq"] == 1
        ws = await world.ws(ann)
        ack = await ws.send_message(cid, "over the socket")
        assert ack["type"] == "ack" and ack["message"]["seq"] == 2
        assert time.monotonic() - started < 2  # the limit held (the hooks take 1-5 s)
        failed = log_lines(server, "plugin_hook_failed")
        assert len(failed) == 2, failed
        outcome = "timeout" if name in ("t-sleepy", "t-blocking") else "error"
        assert {(f["plugin"], f["outcome"], f["fail"]) for f in failed} == {
            (name, outcome, "open")
        }
        admin = await world.admin()
        listed = (await admin.get("/admin/plugins"))["plugins"]
        counts = listed[0]["before_message"]
        assert listed[0]["name"] == name and counts["calls"] == 2
        assert counts["timeouts" if outcome == "timeout" else "errors"] == 2


async def test_a_fail_closed_plugin_refuses_while_it_fails(make_server: MakeServer) -> None:
    async with plugged(
        make_server, "t-raising", plugins_fail_closed=["t-raising"]
    ) as (server, world):
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        r = await ann.http.post(
            f"/conversations/{cid}/messages", json={"client_msg_id": "m1", "body": "hi"}
        )
        assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
        assert "t-raising" in r.json()["error"]["message"]
        ws = await world.ws(ann)
        reply = await ws.send_message(cid, "hi")
        assert reply["type"] == "error" and reply["error"]["code"] == "unavailable"
        assert (await ann.get(f"/conversations/{cid}/messages"))["messages"] == []
        assert [f["fail"] for f in log_lines(server, "plugin_hook_failed")] == ["closed"] * 2


async def test_the_plugins_list_is_for_admins(make_server: MakeServer) -> None:
    async with plugged(make_server, "t-refusing", "t-events") as (_server, world):
        admin = await world.admin()
        ann = await world.user("ann")
        await ann.get("/admin/plugins", expect=403)
        listed = await admin.get("/admin/plugins")
        assert listed["timeout_seconds"] == 5  # the setting in force (plugged)
        assert [(p["name"], p["hooks"], p["source"]) for p in listed["plugins"]] == [
            ("t-refusing", ["before_message"], "tidings-test-plugins 1.0"),
            ("t-events", ["after_event"], "tidings-test-plugins 1.0"),
        ]


async def test_without_plugins_nothing_is_screened(server: AppServer) -> None:
    assert server.container.services.messages._screen is None
    assert (await World(server).admin()).base_url  # and the list is empty
    async with server.client() as c:
        token = await server.login()
        r = await c.get("/api/v1/admin/plugins", headers={"authorization": f"Bearer {token}"})
    assert r.json()["plugins"] == []


def test_samples_are_found_through_importlib_metadata(installed_samples: None) -> None:
    from tidings.app.plugins import installed

    found = installed()
    assert found["t-refusing"].dist is not None
    assert found["t-refusing"].dist.name == "tidings-test-plugins"
    assert found["t-refusing"].load() is plugin_samples.Refusing




async def test_the_sdk_raises_refused_by_policy_and_lists_plugins(make_server: MakeServer) -> None:
    from tests.helpers import USER_PASSWORD
    from tidings.sdk import Client, RefusedByPolicy

    async with plugged(make_server, "t-refusing") as (server, world):
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        async with Client(server.url) as client:
            await client.login("ann", USER_PASSWORD)
            with pytest.raises(RefusedByPolicy) as refused:
                await client.send(cid, "forbidden words")
            assert refused.value.status == 403
            assert (refused.value.plugin, refused.value.reason, refused.value.rule) == (
                "t-refusing", "no forbidden words here", "test-rule"
            )
            assert (await client.send(cid, "fine words")).seq == 1
        async with Client(server.url) as admin:
            await admin.login(server.admin_username, server.admin_password)
            (plugin,) = await admin.plugins()
            assert (plugin.name, plugin.hooks, plugin.fail_closed) == (
                "t-refusing", ("before_message",), False
            )
            assert plugin.before_message["refused"] == 1 and plugin.before_message["calls"] == 2


async def test_a_retry_of_a_message_stored_before_the_policy_gets_the_original(
    make_server: MakeServer,
) -> None:
    """The policy changed between a send and its retry: the retry is answered with the
    stored message (a send is never stored twice, nor refused once stored)."""
    async with plugged(
        make_server, "t-refusing", plugin_settings={"t-refusing": {"word": "nope"}}
    ) as (server, world):
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        first = await ann.send(cid, "a forbidden thing", "m1")
        (loaded,) = server.container.services.plugins.plugins
        loaded.plugin.word = "forbidden"  # type: ignore[attr-defined]  # the policy changes
        assert (await ann.post(f"/conversations/{cid}/messages",
                               {"client_msg_id": "m2", "body": "forbidden"}, expect=403))
        r = await ann.http.post(
            f"/conversations/{cid}/messages",
            json={"client_msg_id": "m1", "body": "a forbidden thing"},
        )
        assert r.status_code == 200 and r.json()["message"]["id"] == first["id"]
        ws = await world.ws(ann)
        ack = await ws.request({"type": "send", "conversation_id": cid,
                                "client_msg_id": "m1", "body": "a forbidden thing"})
        assert ack["type"] == "ack" and ack["message"]["id"] == first["id"]
        stored = (await ann.get(f"/conversations/{cid}/messages"))["messages"]
        assert [m["client_msg_id"] for m in stored] == ["m1"]


async def test_screened_sends_of_one_connection_keep_their_order(make_server: MakeServer) -> None:
    """Hooks run concurrently (here in threads), but one sender's sends are stored in the
    order they were sent."""
    import orjson

    # a generous limit: this is about order (a burst on a busy test machine may exceed
    # 50 ms, and a send whose hook overran goes through unchanged: fail-open)
    async with plugged(make_server, "t-upper") as (server, world):
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        ws = await world.ws(ann)
        for i in range(40):
            frame = {"type": "send", "conversation_id": cid, "client_msg_id": f"o{i}",
                     "body": f"n{i}", "ref": i}
            await ws.send_raw(orjson.dumps(frame).decode())
        acks = {}
        while len(acks) < 40:
            reply = await ws.recv_type("ack", "error")
            assert reply["type"] == "ack", reply
            acks[reply["ref"]] = reply["message"]["seq"]
        assert [acks[i] for i in range(40)] == list(range(1, 41))
        stored = (await ann.get(f"/conversations/{cid}/messages", params={"limit": 50}))
        assert [m["body"] for m in stored["messages"]] == [f"N{i}" for i in range(40)]
        assert log_lines(server, "plugin_hook_failed") == []


async def test_the_plugins_list_needs_a_token(server: AppServer) -> None:
    async with server.client() as c:
        r = await c.get("/api/v1/admin/plugins")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


async def test_a_refusal_reason_is_bounded(make_server: MakeServer) -> None:
    async with plugged(make_server, "t-verbose") as (_server, world):
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)
        r = await ann.http.post(
            f"/conversations/{cid}/messages", json={"client_msg_id": "m1", "body": "x"}
        )
        details = r.json()["error"]["details"]
        assert r.status_code == 403
        assert (len(details["reason"]), len(details["rule"])) == (500, 100)
