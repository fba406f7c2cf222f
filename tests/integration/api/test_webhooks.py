"""Outgoing webhooks through REST, delivered for real to HTTP receivers on loopback (the
setting webhook_allowed_networks lets them reach it), jobs run by `services.jobs.drain()`;
on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppServer, Backend, MakeServer, World
from tests.helpers import USER_PASSWORD, Api, login
from tests.webhook_receiver import Receiver, settle

LOOPBACK = "127.0.0.0/8,::1/128"


@pytest.fixture
async def server(make_server: MakeServer) -> AsyncIterator[AppServer]:
    async with make_server(**FAST, webhook_max_failures=3, webhook_max_attempts=5) as s:
        yield s


# retries after a hundredth of a second, not the default two
FAST = {"webhook_allowed_networks": LOOPBACK, "jobs_backoff_base_seconds": 0.01}


async def drain(server: AppServer) -> None:
    await settle(server.container.services.jobs)


def verify(secret: str, request: Any) -> bool:
    timestamp = request.headers["x-tidings-timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    return hmac.compare_digest(request.headers["x-tidings-signature"], "sha256=" + mac.hexdigest())


async def register(
    api: Api, url: str, events: list[str], cid: str | None = None, expect: int = 201
) -> Any:
    body: dict[str, Any] = {"url": url, "events": events}
    if cid is not None:
        body["conversation_id"] = cid
    return await api.post("/webhooks", body, expect=expect)


async def test_a_message_reaches_the_receiver_signed(server: AppServer, world: World) -> None:
    admin = await world.admin()
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    async with Receiver() as receiver:
        made = (await register(admin, receiver.url, ["message"]))["webhook"]
        secret = made["secret"]
        assert secret.startswith("whsec_") and made["enabled"] is True
        sent = await ann.send(cid, "hello hooks 你好")
        await drain(server)
        assert len(receiver.received) == 1
        got = receiver.received[0]
        assert got.method == "POST" and got.path == "/hook?token=receiver-side-secret"
        assert got.headers["x-tidings-event"] == "message"
        assert got.headers["content-type"] == "application/json"
        assert got.headers["user-agent"].startswith("Tidings-Webhooks")
        assert verify(secret, got)
        body = got.json()
        assert body["kind"] == "message" and body["conversation_id"] == cid
        assert body["message"]["body"] == "hello hooks 你好"
        assert body["message"]["seq"] == sent["seq"]
        assert int(body["position"]) > 0 and body["webhook_id"] == made["id"]
        assert not verify("whsec_another", got)
        # the secret is not shown again
        listed = (await admin.get(f"/webhooks/{made['id']}"))["webhook"]
        assert "secret" not in listed
        log = (await admin.get(f"/webhooks/{made['id']}/deliveries"))["deliveries"]
        assert [(d["status"], d["response_code"], d["attempt"]) for d in log] == [("ok", 200, 1)]
        assert log[0]["delivery_id"] == got.headers["x-tidings-delivery"]
        assert log[0]["latency_ms"] >= 0 and log[0]["position"] == body["position"]


async def test_a_large_message_is_delivered_and_blocks_nothing(make_server: MakeServer) -> None:
    """A job carries ids, never the event: a message of 300 KB (more than a job's
    payload may hold) is delivered, and so is the one after it."""
    async with make_server(**FAST, max_message_bytes=400_000) as server:
        world = World(server)
        try:
            admin = await world.admin()
            ann, ben = await world.users("ann", "ben")
            cid = await world.conversation(ann, ben)
            async with Receiver() as receiver:
                await register(admin, receiver.url, ["message"])
                await register(admin, receiver.url, ["message"])  # twice: two deliveries
                big = "大" * 100_000  # 300 KB of UTF-8
                await ann.send(cid, big)
                await ann.send(cid, "small")
                await drain(server)
                bodies = sorted(len(r.json()["message"]["body"]) for r in receiver.received)
                assert bodies == [5, 5, 100_000, 100_000]
        finally:
            await world.close()


async def test_events_before_registration_are_not_sent(server: AppServer, world: World) -> None:
    admin = await world.admin()
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    await ann.send(cid, "before")
    async with Receiver() as receiver:
        await register(admin, receiver.url, ["message"])
        await ann.send(cid, "after")
        await drain(server)
        assert [r.json()["message"]["body"] for r in receiver.received] == ["after"]


async def test_retries_keep_the_same_delivery_id(server: AppServer, world: World) -> None:
    admin = await world.admin()
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    async with Receiver(statuses=[500, 503]) as receiver:
        made = (await register(admin, receiver.url, ["message"]))["webhook"]
        await ann.send(cid, "again and again")
        await drain(server)
        assert len(receiver.received) == 3
        ids = {r.headers["x-tidings-delivery"] for r in receiver.received}
        assert len(ids) == 1
        assert [r.headers["x-tidings-attempt"] for r in receiver.received] == ["1", "2", "3"]
        assert all(verify(made["secret"], r) for r in receiver.received)
        log = (await admin.get(f"/webhooks/{made['id']}/deliveries"))["deliveries"]
        assert [(d["status"], d["response_code"], d["attempt"]) for d in log] == [
            ("ok", 200, 3),
            ("failed", 503, 2),
            ("failed", 500, 1),
        ]
        # a success set the consecutive failures back to 0
        assert (await admin.get(f"/webhooks/{made['id']}"))["webhook"]["failures"] == 0
        # another event is another delivery id
        await ann.send(cid, "next")
        await drain(server)
        assert receiver.received[-1].headers["x-tidings-delivery"] not in ids


async def test_a_failing_receiver_disables_the_webhook_and_its_owner_is_told(
    server: AppServer, world: World
) -> None:
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)  # ann owns it
    async with Receiver(statuses=[500] * 50) as receiver:
        made = (await register(ann, receiver.url, ["message"], cid))["webhook"]
        await ann.send(cid, "nobody listens")
        await drain(server)
        assert len(receiver.received) == 3  # webhook_max_failures: then it is off
        hook = (await ann.get(f"/webhooks/{made['id']}"))["webhook"]
        assert hook["enabled"] is False and hook["disabled_reason"] == "failures"
        await ann.send(cid, "not delivered")
        await drain(server)
        assert len(receiver.received) == 3
    convs = (await ann.get("/conversations"))["conversations"]
    direct = [c for c in convs if c["kind"] == "direct"]
    assert len(direct) == 1
    dm = direct[0]["id"]
    messages = (await ann.get(f"/conversations/{dm}/messages"))["messages"]
    assert len(messages) == 1 and made["id"] in messages[0]["body"]
    assert "disabled" in messages[0]["body"] and "已停用" in messages[0]["body"]
    sender = (await ann.get(f"/users/{messages[0]['sender_id']}"))["user"]
    assert sender["username"] == "tidings-webhooks"
    admin = await world.admin()
    audit = (await admin.get("/audit", params={"limit": 500}))["entries"]
    disabled = [e for e in audit if e["action"] == "webhook_disabled"]
    assert len(disabled) == 1 and disabled[0]["target_id"] == made["id"]
    assert disabled[0]["actor_id"] is None and disabled[0]["details"]["reason"] == "failures"
    # turned on again: afresh, and what happened while it was off is not sent
    async with Receiver() as receiver:
        await ann.call("PATCH", f"/webhooks/{made['id']}", json={"url": receiver.url}, expect=200)
        hook = (
            await ann.call("PATCH", f"/webhooks/{made['id']}", json={"enabled": True}, expect=200)
        )["webhook"]
        assert (hook["enabled"], hook["failures"], hook["disabled_reason"]) == (True, 0, None)
        await ann.send(cid, "back")
        await drain(server)
        assert [r.json()["message"]["body"] for r in receiver.received] == ["back"]


async def test_410_disables_at_once_and_4xx_is_not_retried(server: AppServer, world: World) -> None:
    admin = await world.admin()
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    async with Receiver(statuses=[400]) as rejecting, Receiver(statuses=[410]) as gone:
        bad = (await register(admin, rejecting.url, ["message"]))["webhook"]
        left = (await register(admin, gone.url, ["message"]))["webhook"]
        await ann.send(cid, "one")
        await drain(server)
        assert len(rejecting.received) == 1 and len(gone.received) == 1
        hook = (await admin.get(f"/webhooks/{bad['id']}"))["webhook"]
        assert (hook["enabled"], hook["failures"]) == (True, 1)
        log = (await admin.get(f"/webhooks/{bad['id']}/deliveries"))["deliveries"]
        assert [(d["status"], d["response_code"]) for d in log] == [("rejected", 400)]
        hook = (await admin.get(f"/webhooks/{left['id']}"))["webhook"]
        assert (hook["enabled"], hook["disabled_reason"]) == (False, "gone")


async def test_redirects_are_not_followed(server: AppServer, world: World) -> None:
    admin = await world.admin()
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    async with Receiver() as target:
        headers = {"Location": target.url}
        async with Receiver(statuses=[302], headers=headers) as redirecting:
            made = (await register(admin, redirecting.url, ["message"]))["webhook"]
            await ann.send(cid, "there")
            await drain(server)
            assert len(redirecting.received) == 1 and target.received == []
            log = (await admin.get(f"/webhooks/{made['id']}/deliveries"))["deliveries"]
            assert log[0]["status"] == "rejected" and log[0]["response_code"] == 302
            assert "redirects are not followed" in log[0]["error"]


async def test_filters_by_kind_and_conversation(server: AppServer, world: World) -> None:
    ann, ben = await world.users("ann", "ben")
    mine = await world.conversation(ann, ben, name="mine")
    other = await world.conversation(ann, ben, name="other")
    async with Receiver() as receiver:
        await register(ann, receiver.url, ["message_edited", "reaction"], mine)
        first = await ann.send(mine, "draft")
        elsewhere = await ann.send(other, "draft too")
        await ann.call(
            "PATCH",
            f"/conversations/{mine}/messages/{first['seq']}",
            json={"body": "final"},
            expect=200,
        )
        await ann.call(
            "PATCH",
            f"/conversations/{other}/messages/{elsewhere['seq']}",
            json={"body": "final too"},
            expect=200,
        )
        await ben.call(
            "PUT", f"/conversations/{mine}/messages/{first['seq']}/reactions/👍", expect=None
        )
        await drain(server)
        got = [
            (r.headers["x-tidings-event"], r.json()["conversation_id"]) for r in receiver.received
        ]
        assert got == [("message_edited", mine), ("reaction", mine)]
        assert receiver.received[0].json()["message"]["body"] == "final"


async def test_org_wide_webhooks_see_direct_conversations_only_when_allowed(
    make_server: MakeServer,
) -> None:
    for allowed in (False, True):
        async with make_server(**FAST, webhook_direct_conversations=allowed) as server:
            world = World(server)
            try:
                admin = await world.admin()
                ann, ben = await world.users(f"ann{int(allowed)}", f"ben{int(allowed)}")
                direct = await world.conversation(ann, ben, kind="direct")
                group = await world.conversation(ann, ben)
                async with Receiver() as receiver:
                    await register(admin, receiver.url, ["message"])
                    await ann.send(direct, "just us")
                    await ann.send(group, "all of us")
                    await drain(server)
                    bodies = [r.json()["message"]["body"] for r in receiver.received]
                    assert bodies == (["just us", "all of us"] if allowed else ["all of us"])
                    # a webhook of one direct conversation: admins, and only when allowed
                    await register(
                        admin, receiver.url, ["message"], direct, expect=201 if allowed else 400
                    )
                    await register(ann, receiver.url, ["message"], direct, expect=403)
                    for hook in (await admin.get("/webhooks"))["webhooks"]:  # shared database
                        await admin.call("DELETE", f"/webhooks/{hook['id']}", expect=204)
            finally:
                await world.close()


async def test_who_may_register_and_manage(server: AppServer, world: World) -> None:
    admin = await world.admin()
    ann, ben, cat = await world.users("ann", "ben", "cat")
    guest = await world.user("gus", role="guest")
    cid = await world.conversation(ann, ben)  # ann owns it, ben is a member, cat is not
    channel = await world.conversation(cat, kind="channel", name="open")
    async with Receiver() as receiver:
        url = receiver.url
        # org-wide: admins only
        err = await register(ann, url, ["message"], expect=403)
        assert err["error"]["code"] == "forbidden"
        # a member who does not own the conversation
        await register(ben, url, ["message"], cid, expect=403)
        # not a member: the conversation is not visible
        err = await register(cat, url, ["message"], cid, expect=404)
        assert err["error"]["code"] == "not_found"
        # a channel visible to ann, owned by cat
        await register(ann, url, ["message"], channel, expect=403)
        await register(guest, url, ["message"], channel, expect=404)
        await register(ann, url, ["message"], "no-such-conversation", expect=404)
        hook = (await register(ann, url, ["message"], cid))["webhook"]
        wid = hook["id"]
        assert hook["owner_id"] == ann.id and hook["conversation_id"] == cid
        await register(cat, url, ["message"], channel)
        # others see nothing of ann's webhook: not found, as for one that is not there
        for other in (ben, cat):
            assert all(w["id"] != wid for w in (await other.get("/webhooks"))["webhooks"])
            for method, path, body in (
                ("GET", f"/webhooks/{wid}", None),
                ("PATCH", f"/webhooks/{wid}", {"enabled": False}),
                ("DELETE", f"/webhooks/{wid}", None),
                ("POST", f"/webhooks/{wid}/secret", None),
                ("POST", f"/webhooks/{wid}/test", None),
                ("GET", f"/webhooks/{wid}/deliveries", None),
            ):
                err = await other.call(method, path, json=body, expect=404)
                assert err["error"]["code"] == "not_found", (method, path)
        assert [w["id"] for w in (await ann.get("/webhooks"))["webhooks"]] == [wid]
        assert len((await admin.get("/webhooks"))["webhooks"]) == 2
        assert (await admin.get(f"/webhooks/{wid}"))["webhook"]["id"] == wid
        # nothing changed by the refused calls
        assert (await ann.get(f"/webhooks/{wid}"))["webhook"]["enabled"] is True


async def test_manage_rotate_ping_delete_and_audit(server: AppServer, world: World) -> None:
    admin = await world.admin()
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    async with Receiver() as receiver:
        made = (await register(admin, receiver.url, ["message"]))["webhook"]
        wid, old = made["id"], made["secret"]
        changed = (
            await admin.call(
                "PATCH", f"/webhooks/{wid}", json={"events": ["message", "reaction"]}, expect=200
            )
        )["webhook"]
        assert changed["events"] == ["message", "reaction"]
        rotated = (await admin.post(f"/webhooks/{wid}/secret", None))["webhook"]
        new = rotated["secret"]
        assert new != old
        ping = await admin.post(f"/webhooks/{wid}/test", None, expect=202)
        await ann.send(cid, "signed anew")
        await drain(server)
        kinds = sorted(r.headers["x-tidings-event"] for r in receiver.received)
        assert kinds == ["message", "ping"]
        for r in receiver.received:
            assert verify(new, r) and not verify(old, r)
        pinged = next(r for r in receiver.received if r.headers["x-tidings-event"] == "ping")
        assert pinged.headers["x-tidings-delivery"] == ping["delivery_id"]
        assert pinged.json()["webhook_id"] == wid
        off = await admin.call("PATCH", f"/webhooks/{wid}", json={"enabled": False}, expect=200)
        assert off["webhook"]["disabled_reason"] == "manual"
        await admin.call("DELETE", f"/webhooks/{wid}", expect=204)
        await admin.get(f"/webhooks/{wid}", expect=404)
        await admin.get(f"/webhooks/{wid}/deliveries", expect=404)
    audit = (await admin.get("/audit", params={"limit": 500}))["entries"]
    mine = [(e["action"], e["details"]) for e in audit if e["target_id"] == wid]
    assert [a for a, _ in mine] == [
        "webhook_created",
        "webhook_updated",
        "webhook_secret_rotated",
        "webhook_updated",
        "webhook_deleted",
    ]
    created = mine[0][1]
    assert created["events"] == ["message"] and "token=" not in str(created["url"])
    assert old not in str(audit) and new not in str(audit)
    logs = server.logs()
    assert old not in logs and new not in logs
    assert "receiver-side-secret" not in logs  # the URL's query (outbound requests unlogged)


async def test_the_delivery_log_is_bounded(make_server: MakeServer) -> None:
    async with make_server(**FAST, webhook_log_keep=3) as server:
        world = World(server)
        try:
            admin = await world.admin()
            ann, ben = await world.users("ann", "ben")
            cid = await world.conversation(ann, ben)
            async with Receiver() as receiver:
                made = (await register(admin, receiver.url, ["message"]))["webhook"]
                for i in range(5):
                    await ann.send(cid, f"m{i}")
                await drain(server)
                assert len(receiver.received) == 5
                log = (await admin.get(f"/webhooks/{made['id']}/deliveries"))["deliveries"]
                # the newest 3 attempts (deliveries run side by side: in any order)
                assert len(log) == 3 and [d["id"] for d in log] == sorted(
                    (d["id"] for d in log), reverse=True
                )
                page = await admin.get(f"/webhooks/{made['id']}/deliveries", params={"limit": 2})
                older = await admin.get(
                    f"/webhooks/{made['id']}/deliveries",
                    params={"limit": 2, "before": page["next"]},
                )
                assert [d["id"] for d in page["deliveries"] + older["deliveries"]] == [
                    d["id"] for d in log
                ]
                assert older["next"] is None
        finally:
            await world.close()


# --- hostile input ------------------------------------------------------------------------


async def test_hostile_input_is_refused_and_nothing_is_written(
    server: AppServer, world: World
) -> None:
    admin = await world.admin()
    async with Receiver() as receiver:
        good = receiver.url
        cases: list[tuple[dict[str, Any], str]] = [
            ({"url": good + "x" * 100_000, "events": ["message"]}, "url"),
            ({"url": good + "x" * 3000, "events": ["message"]}, "url"),  # over the setting
            ({"url": "ftp://127.0.0.1/x", "events": ["message"]}, "url"),
            ({"url": "javascript:alert(1)", "events": ["message"]}, "url"),
            ({"url": "file:///etc/passwd", "events": ["message"]}, "url"),
            ({"url": "http://", "events": ["message"]}, "url"),
            ({"url": "http://user:pw@127.0.0.1/", "events": ["message"]}, "url"),
            ({"url": "http://127.0.0.1/a b", "events": ["message"]}, "url"),
            ({"url": "http://127.0.0.1:99999/", "events": ["message"]}, "url"),
            ({"url": good, "events": ["message"] * 65}, "events"),
            ({"url": good, "events": ["message"] * 9}, "events"),
            ({"url": good, "events": []}, "events"),
            ({"url": good, "events": ["no_such_kind"]}, "events"),
            ({"url": good, "events": ["read"]}, "events"),  # never: a person's activity
            ({"url": good, "events": ["message", "message"]}, "events"),
            ({"url": good, "events": "message"}, "events"),
            ({"url": good, "events": ["message"], "conversation_id": 7}, "conversation_id"),
            ({"url": good, "events": ["message"], "extra": 1}, "extra"),
            ({"url": good + "\x00", "events": ["message"]}, "NUL"),
        ]
        for body, where in cases:
            err = await admin.post("/webhooks", body, expect=400)
            text = str(err["error"])
            assert err["error"]["code"] == "invalid_request", body
            assert where in text, (where, text)
        assert (await admin.get("/webhooks"))["webhooks"] == []
        made = (await register(admin, good, ["message"]))["webhook"]
        for patch in ({"url": "gopher://127.0.0.1/"}, {"events": ["nope"]}, {"events": []}):
            await admin.call("PATCH", f"/webhooks/{made['id']}", json=patch, expect=400)
        assert (await admin.get(f"/webhooks/{made['id']}"))["webhook"]["url"] == good
        await admin.get("/webhooks/x/deliveries", params={"limit": 100_000}, expect=400)
        await admin.get("/webhooks/x/deliveries", params={"before": "x" * 1000}, expect=400)


async def test_each_owner_has_a_cap(make_server: MakeServer) -> None:
    async with make_server(**FAST, webhook_max_per_owner=2) as server:
        world = World(server)
        try:
            admin = await world.admin()
            async with Receiver() as receiver:
                await register(admin, receiver.url, ["message"])
                await register(admin, receiver.url, ["reaction"])
                err = await register(admin, receiver.url, ["message"], expect=400)
                assert err["error"]["details"]["limit"] == 2
        finally:
            await world.close()


REFUSED_TARGETS = [
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/x",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://localhost/",
    "http://localhost.:8080/",
    "https://2130706433/",  # 127.0.0.1 in decimal
    "http://0x7f000001/",  # ... in hex
    "http://0x7f.1/",
    "http://017700000001/",  # ... in octal
    "http://100.64.0.1/",  # shared address space
    "http://224.0.0.1/",  # multicast
    "http://255.255.255.255/",
]


async def test_without_the_setting_private_targets_are_refused(
    make_server: MakeServer,
) -> None:
    async with make_server() as server:
        world = World(server)
        try:
            admin = await world.admin()
            for url in REFUSED_TARGETS:
                err = await register(admin, url, ["message"], expect=400)
                assert err["error"]["details"]["field"] == "url", url
                assert "address" in err["error"]["message"] or "resolve" in err["error"]["message"]
            assert (await admin.get("/webhooks"))["webhooks"] == []
        finally:
            await world.close()


async def test_the_address_is_checked_again_at_every_delivery(
    tmp_path: Path, backend: Backend, sqlite_template: Path
) -> None:
    """Registered while loopback was allowed; the same database under a server that no
    longer allows it: the delivery is refused (nothing reaches the receiver), logged."""
    data = tmp_path / "data"
    async with Receiver() as receiver:
        async with AppServer(data, backend, sqlite_template=sqlite_template, **FAST) as server:
            world = World(server)
            admin = await world.admin()
            ann, ben = await world.users("ann", "ben")
            cid = await world.conversation(ann, ben)
            made = (await register(admin, receiver.url, ["message"]))["webhook"]
            await world.close()
        async with AppServer(data, backend, sqlite_template=sqlite_template) as server:
            world = World(server)
            try:
                admin = await world.admin()
                ann = await login(server.url, "ann", USER_PASSWORD)
                await ann.send(cid, "should not leave")
                await drain(server)
                assert receiver.received == []
                log = (await admin.get(f"/webhooks/{made['id']}/deliveries"))["deliveries"]
                assert [d["status"] for d in log] == ["refused"]
                assert "loopback" in log[0]["error"]
                await ann.close()
            finally:
                await world.close()
