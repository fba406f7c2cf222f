"""Web Push through REST, delivered for real to a push endpoint on loopback that holds the
test subscription's keys, checks the VAPID token and decrypts the body (RFC 8291); jobs
run by the job service (settle); on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import AppServer, MakeServer, World
from tests.helpers import USER_PASSWORD, login
from tests.push_receiver import PushEndpoint
from tests.webhook_receiver import settle

LOOPBACK = "127.0.0.0/8,::1/128"
FAST = {"webhook_allowed_networks": LOOPBACK, "jobs_backoff_base_seconds": 0.01}


@pytest.fixture
async def server(make_server: MakeServer) -> AsyncIterator[AppServer]:
    async with make_server(**FAST, push_max_subscriptions_per_user=3) as s:
        yield s


async def drain(server: AppServer) -> None:
    await settle(server.container.services.jobs)


def refused(answer: Any, field: str) -> None:
    assert answer["error"]["code"] == "invalid_request", answer
    assert answer["error"]["details"].get("field") == field, answer


async def test_a_direct_message_is_pushed_encrypted_and_signed(
    server: AppServer, world: World
) -> None:
    ann, ben = await world.users("ann", "ben", display_name="Ann <b>")
    cid = await world.conversation(ann, ben, kind="direct")
    async with PushEndpoint() as bens, PushEndpoint(path="/push/ann") as anns:
        made = await ben.post("/push/subscriptions", bens.subscription(), expect=201)
        assert made["subscription"]["endpoint"] == bens.url
        assert made["subscription"]["this_device"] is True
        await ann.post("/push/subscriptions", anns.subscription(), expect=201)
        sent = await ann.send(cid, "hello push 你好 " + "x" * 300)
        await drain(server)
        assert bens.failures == [] and anns.failures == []
        assert anns.pushes == []  # never the sender
        assert len(bens.pushes) == 1
        push = bens.pushes[0]
        key = (await ben.get("/push/vapid-key"))["public_key"]
        assert push.vapid_key == key  # signed by the server's VAPID key
        assert push.claims["aud"] == bens.origin
        data = push.json()
        assert data["kind"] == "message" and data["conversation_id"] == cid
        assert data["seq"] == sent["seq"] and data["sender_name"] == "Ann <b>"
        assert data["preview"].startswith("hello push 你好 x")
        assert len(data["preview"]) <= 140
        assert push.headers["content-encoding"] == "aes128gcm"
        assert b"hello push" not in push.body  # encrypted
        # the same key on every read, another endpoint's push is another ciphertext
        assert (await ann.get("/push/vapid-key"))["public_key"] == key


async def test_levels_decide_what_groups_and_channels_push(server: AppServer, world: World) -> None:
    ann, ben, cat = await world.users("ann", "ben", "cat")
    group = await world.conversation(ann, ben, cat)
    channel = await world.conversation(ann, ben, cat, kind="channel", name="news")
    async with PushEndpoint(path="/b") as bens, PushEndpoint(path="/c") as cats:
        await ben.post("/push/subscriptions", bens.subscription(), expect=201)
        await cat.post("/push/subscriptions", cats.subscription(), expect=201)
        # a group's default level is all, a channel's mentions (core/notify.py)
        await ann.send(group, "to the group")
        await ann.send(channel, "no mention here")
        await ann.send(channel, "hey @ben look")
        await drain(server)
        assert sorted(p.json()["preview"] for p in bens.pushes) == ["hey @ben look", "to the group"]
        assert [p.json()["preview"] for p in cats.pushes] == ["to the group"]
        await ann.send(channel, "@channel everyone")
        await drain(server)
        assert [p.json()["preview"] for p in cats.pushes] == ["to the group", "@channel everyone"]


async def test_mute_dnd_and_level_none_suppress_pushes(server: AppServer, world: World) -> None:
    ann, ben = await world.users("ann", "ben")
    dm = await world.conversation(ann, ben, kind="direct")
    group = await world.conversation(ann, ben)
    async with PushEndpoint() as bens:
        await ben.post("/push/subscriptions", bens.subscription(), expect=201)
        await ben.call(
            "PUT", f"/conversations/{group}/notifications", json={"muted": True}, expect=200
        )
        await ben.call(
            "PUT", f"/conversations/{dm}/notifications", json={"level": "none"}, expect=200
        )
        await ann.send(group, "muted group @ben")
        await ann.send(dm, "level none")
        await drain(server)
        assert bens.pushes == []
        await ben.call(
            "PUT", f"/conversations/{dm}/notifications", json={"level": "mentions"}, expect=200
        )
        await ann.send(dm, "not a mention: a direct message at level mentions")
        await ann.send(dm, "@ben now")
        await drain(server)
        assert [p.json()["preview"] for p in bens.pushes] == ["@ben now"]
        await ben.call(
            "PUT", f"/conversations/{dm}/notifications", json={"level": None}, expect=200
        )
        until = "2999-01-01T00:00:00Z"
        await ben.call("PUT", "/users/me/notifications", json={"dnd_until": until}, expect=200)
        await ann.send(dm, "during do not disturb")
        await drain(server)
        assert len(bens.pushes) == 1
        await ben.call("PUT", "/users/me/notifications", json={"dnd_until": None}, expect=200)
        await ann.send(dm, "after do not disturb")
        await drain(server)
        assert [p.json()["preview"] for p in bens.pushes][-1] == "after do not disturb"


async def test_not_pushed_when_read_first_nor_without_previews(
    server: AppServer, world: World
) -> None:
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben, kind="direct")
    async with PushEndpoint() as bens:
        await ben.post("/push/subscriptions", bens.subscription(), expect=201)
        sent = await ann.send(cid, "read before the job runs")
        await ben.post(f"/conversations/{cid}/read", {"seq": sent["seq"]}, expect=None)
        await drain(server)
        assert bens.pushes == []
        got = await ben.call(
            "PUT", "/users/me/notifications/offline", json={"previews": False}, expect=200
        )
        assert got["notifications"]["previews"] is False
        await ann.send(cid, "secret text")
        await drain(server)
        assert len(bens.pushes) == 1
        assert "preview" not in bens.pushes[0].json()


async def test_410_gone_deletes_the_subscription(server: AppServer, world: World) -> None:
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben, kind="direct")
    async with PushEndpoint(statuses=[410]) as bens:
        await ben.post("/push/subscriptions", bens.subscription(), expect=201)
        assert len((await ben.get("/push/subscriptions"))["subscriptions"]) == 1
        await ann.send(cid, "to a gone subscription")
        await drain(server)
        assert len(bens.pushes) == 1
        assert (await ben.get("/push/subscriptions"))["subscriptions"] == []
        await ann.send(cid, "nothing sent now")
        await drain(server)
        assert len(bens.pushes) == 1


async def test_a_failing_push_service_is_retried(server: AppServer, world: World) -> None:
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben, kind="direct")
    async with PushEndpoint(statuses=[503, 429]) as bens:
        await ben.post("/push/subscriptions", bens.subscription(), expect=201)
        await ann.send(cid, "retried")
        await drain(server)
        assert len(bens.pushes) == 3  # two refusals, then accepted
        assert {p.json()["preview"] for p in bens.pushes} == {"retried"}
        assert len((await ben.get("/push/subscriptions"))["subscriptions"]) == 1


async def test_signing_out_removes_the_sessions_subscriptions(
    server: AppServer, world: World
) -> None:
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben, kind="direct")
    other = await login(server.url, "ben", USER_PASSWORD)
    try:
        async with PushEndpoint(path="/one") as one, PushEndpoint(path="/two") as two:
            await ben.post("/push/subscriptions", one.subscription(), expect=201)
            await other.post("/push/subscriptions", two.subscription(), expect=201)
            listed = (await other.get("/push/subscriptions"))["subscriptions"]
            assert sorted((s["endpoint"], s["this_device"]) for s in listed) == sorted(
                [(one.url, False), (two.url, True)]
            )
            await ben.post("/auth/logout", expect=204)
            listed = (await other.get("/push/subscriptions"))["subscriptions"]
            assert [s["endpoint"] for s in listed] == [two.url]
            await ann.send(cid, "only to the signed-in device")
            await drain(server)
            assert one.pushes == [] and len(two.pushes) == 1
            await other.call(
                "DELETE", "/push/subscriptions", json={"endpoint": two.url}, expect=204
            )
            assert (await other.get("/push/subscriptions"))["subscriptions"] == []
            # again: no error (the browser's state and ours may differ)
            await other.call(
                "DELETE", "/push/subscriptions", json={"endpoint": two.url}, expect=204
            )
    finally:
        await other.close()


async def test_hostile_subscriptions_are_refused(server: AppServer, world: World) -> None:
    (ben,) = await world.users("ben")
    async with PushEndpoint() as p:
        good = p.subscription()
        bad_keys: list[dict[str, str]] = [
            {"p256dh": "AAAA", "auth": good["keys"]["auth"]},
            {"p256dh": good["keys"]["p256dh"], "auth": "not base64 ***"},
            {"p256dh": "C" + good["keys"]["p256dh"][1:], "auth": good["keys"]["auth"]},
            {"p256dh": "BA" + "A" * 85, "auth": good["keys"]["auth"]},  # not on the curve
            {"p256dh": good["keys"]["p256dh"], "auth": good["keys"]["auth"] + "AAAA"},
        ]
        for keys in bad_keys:
            refused(
                await ben.post("/push/subscriptions", {**good, "keys": keys}, expect=400), "keys"
            )
        for endpoint in ["ftp://x/y", "not a url", "https://u:p@host/x", "http://" + "a" * 2000]:
            answer = await ben.post(
                "/push/subscriptions", {**good, "endpoint": endpoint}, expect=400
            )
            refused(answer, "endpoint")
        # a private address outside webhook_allowed_networks: refused at once
        answer = await ben.post(
            "/push/subscriptions", {**good, "endpoint": "http://10.1.2.3/x"}, expect=400
        )
        refused(answer, "endpoint")
        missing = await ben.post("/push/subscriptions", {"endpoint": p.url}, expect=400)
        assert missing["error"]["code"] == "invalid_request"
        # the cap (3 here); the same endpoint again replaces, it does not count twice
        for n in range(3):
            await ben.post("/push/subscriptions", {**good, "endpoint": f"{p.url}/{n}"}, expect=201)
        await ben.post("/push/subscriptions", {**good, "endpoint": f"{p.url}/0"}, expect=201)
        over = await ben.post("/push/subscriptions", good, expect=400)
        assert over["error"]["code"] == "invalid_operation", over
        assert over["error"]["details"]["limit"] == 3
        assert len((await ben.get("/push/subscriptions"))["subscriptions"]) == 3


async def test_subscription_changes_are_rate_limited(make_server: MakeServer) -> None:
    async with make_server(**FAST, rate_notify_per_user=2) as server:
        world = World(server)
        try:
            (ben,) = await world.users("ben")
            async with PushEndpoint() as p:
                await ben.post("/push/subscriptions", p.subscription(), expect=201)
                await ben.call(
                    "DELETE", "/push/subscriptions", json={"endpoint": p.url}, expect=204
                )
                r = await ben.http.post("/push/subscriptions", json=p.subscription())
                assert r.status_code == 429 and r.headers.get("retry-after")
                assert r.json()["error"]["code"] == "rate_limited"
        finally:
            await world.close()


async def test_a_subscription_is_its_owners_alone_and_ends_with_a_disabled_account(
    server: AppServer, world: World
) -> None:
    """Another user who names someone's endpoint removes nothing of theirs and gets no
    share of their pushes; disabling an account ends its subscriptions (its sessions
    end), and enabling it again brings none back."""
    admin = await world.admin()
    ann, ben, cat = await world.users("ann", "ben", "cat")
    dm = await world.conversation(cat, ann, kind="direct")
    async with PushEndpoint(path="/push/ann") as anns:
        mine = (await ann.post("/push/subscriptions", anns.subscription(), expect=201))[
            "subscription"
        ]
        # ben names ann's endpoint: his DELETE touches only his own (none), and a
        # subscription he makes of it is his, beside hers
        await ben.call("DELETE", "/push/subscriptions", json={"endpoint": anns.url}, expect=204)
        assert [s["id"] for s in (await ann.get("/push/subscriptions"))["subscriptions"]] == [
            mine["id"]
        ]
        his = (await ben.post("/push/subscriptions", anns.subscription(), expect=201))[
            "subscription"
        ]
        assert his["id"] != mine["id"]
        await ben.call("DELETE", "/push/subscriptions", json={"endpoint": anns.url}, expect=204)
        assert [s["id"] for s in (await ann.get("/push/subscriptions"))["subscriptions"]] == [
            mine["id"]
        ]
        assert (await ben.get("/push/subscriptions"))["subscriptions"] == []
        await cat.send(dm, "to ann")
        await drain(server)
        assert len(anns.pushes) == 1 and anns.pushes[0].json()["conversation_id"] == dm

        await admin.call("PATCH", f"/users/{ann.id}", json={"disabled": True}, expect=200)
        async with server.container.store.read() as tx:
            assert await tx.count_push_subscriptions(ann.id) == 0
        assert (await ann.http.get("/push/subscriptions")).status_code == 401
        await cat.send(dm, "while disabled")
        await drain(server)
        await admin.call("PATCH", f"/users/{ann.id}", json={"disabled": False}, expect=200)
        await cat.send(dm, "enabled again, not signed in")
        await drain(server)
        assert len(anns.pushes) == 1 and anns.failures == []


async def test_a_session_that_must_enrol_a_second_factor_is_pushed_nothing(
    server: AppServer, world: World
) -> None:
    """When the organization comes to require a second factor, a session without one is
    restricted to enrolling it (it reads no message over REST or WebSocket): its device
    is pushed nothing either (a `push.send` already queued included) until it is freed."""
    from tidings.core.models import SecondFactorPolicy

    policy = server.container.services.second_factor.set_policy
    jobs = server.container.services.jobs
    ann = await world.user("ann")
    ben = await world.user("ben", role="admin")  # the policy below concerns admins
    dm = await world.conversation(ann, ben, kind="direct")
    async with PushEndpoint(path="/push/ben") as bens:
        made = await ben.post("/push/subscriptions", bens.subscription(), expect=201)
        await ann.send(dm, "before the policy")
        await drain(server)
        assert len(bens.pushes) == 1
        await policy(None, SecondFactorPolicy.ADMINS)
        restricted = await ben.http.get(f"/conversations/{dm}/messages")
        assert restricted.status_code == 403, restricted.text
        sent = await ann.send(dm, "ben may not read this yet")
        await drain(server)
        assert len(bens.pushes) == 1
        # a push.send queued for the device (before the restriction) sends nothing
        async with server.container.store.write() as tx:
            await jobs.enqueue(
                tx,
                "push.send",
                {
                    "subscription_id": made["subscription"]["id"],
                    "conversation_id": dm,
                    "seq": sent["seq"],
                },
                job_id="push-send:queued-before",
            )
        await drain(server)
        assert len(bens.pushes) == 1
        await policy(None, SecondFactorPolicy.NONE)  # freed: pushed again
        await ann.send(dm, "after the policy")
        await drain(server)
        assert [p.json()["seq"] for p in bens.pushes] == [1, 3]
        assert bens.failures == []
