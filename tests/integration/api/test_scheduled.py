"""Scheduled messages (issue 17): scheduled, listed, edited and cancelled through REST by
their sender only, `scheduled_message_*` events to the sender's own connections only,
delivered by the `scheduled.send` job at `send_at` through the normal send path (a
clock the test moves: no sleeping), exactly once when the job runs again or after a
worker died between the send and the row's update, an edited time never sent at the
old one, a failure with its reason when the sender may no longer post; stale state +
events == a fresh fetch; the cap, the horizon and hostile input; both backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AppServer, MakeServer, World
from tests.fakes import FakeClock
from tests.helpers import Api
from tests.rabbit import delete_prefix, require_rabbitmq, unique_prefix
from tidings.core.errors import Unavailable
from tidings.core.jobs import Job
from tidings.core.models import ScheduledState, UserId
from tidings.services.scheduled import SCHEDULED_SEND

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOUR = 3600


def at(clock: FakeClock, seconds: float) -> str:
    return (clock.now() + timedelta(seconds=seconds)).isoformat()


async def schedule(
    api: Api, cid: str, body: str, send_at: str, expect: int | None = 201, **extra: Any
) -> Any:
    return await api.call(
        "POST",
        f"/conversations/{cid}/scheduled",
        json={"body": body, "send_at": send_at, **extra},
        expect=expect,
    )


async def listed(api: Api, **params: Any) -> list[dict[str, Any]]:
    return list((await api.get("/scheduled", params=params))["scheduled"])


async def set_role(api: Api, cid: str, uid: str, role: str) -> None:
    await api.call(
        "PUT", f"/conversations/{cid}/members/{uid}/role", json={"role": role}, expect=200
    )


def code(answer: Any) -> str:
    return str(answer["error"]["code"])


@asynccontextmanager
async def two_members(
    make_server: MakeServer, prefix: str, **settings: Any
) -> AsyncIterator[tuple[AppServer, FakeClock, World, Api, Api, str]]:
    """A server on a test clock at START, with `<prefix>ann` and `<prefix>ben` in a group
    (ann its owner): (server, clock, world, ann, ben, cid); the world closed after."""
    clock = FakeClock(START, tick=timedelta(milliseconds=1))
    async with make_server(clock=clock, **settings) as server:
        world = World(server)
        try:
            ann, ben = await world.users(f"{prefix}ann", f"{prefix}ben")
            cid = await world.conversation(ann, ben)
            yield server, clock, world, ann, ben, cid
        finally:
            await world.close()


async def history(api: Api, cid: str) -> list[dict[str, Any]]:
    return list((await api.get(f"/conversations/{cid}/messages"))["messages"])


async def sync_events(api: Api, since: str) -> list[dict[str, Any]]:
    page = await api.get("/sync", params={"since": since, "limit": 1000})
    assert not page["more"]
    return [e["event"] for e in page["events"]]


async def test_schedule_edit_and_delivery_at_the_new_time_to_the_sender_only(
    make_server: MakeServer,
) -> None:
    async with two_members(make_server, "sc") as (server, clock, world, ann, ben, cid):
        other = await world.conversation(ann, name="solo")
        ws_ben = await world.ws(ben)
        since_ben = ws_ben.ready["position"]
        tab1, tab2 = await world.ws(ann), await world.ws(ann)

        made = (await schedule(ann, cid, "later, 你好", at(clock, HOUR)))["scheduled"]
        assert made["state"] == "pending" and made["body"] == "later, 你好"
        assert made["conversation_id"] == cid and made["sent_seq"] is None
        for tab in (tab1, tab2):
            event = (await tab.event("scheduled_message_created"))["event"]
            assert event["scheduled"] == made and event["user_id"] == ann.id
        later = (await schedule(ann, other, "elsewhere", at(clock, 3 * HOUR)))["scheduled"]
        # the soonest first
        assert [s["id"] for s in await listed(ann)] == [made["id"], later["id"]]
        assert [s["body"] for s in await listed(ann, conversation_id=other)] == ["elsewhere"]
        got = await ann.get(f"/scheduled/{made['id']}")
        assert got["scheduled"] == made

        # ben sees none of it, can touch none of it (as if it did not exist)
        assert await listed(ben) == []
        assert await listed(ben, conversation_id=cid) == []
        sid = made["id"]
        for method, kw in (
            ("GET", {}),
            ("PATCH", {"json": {"body": "hijack"}}),
            ("DELETE", {}),
        ):
            answer = await ben.call(method, f"/scheduled/{sid}", expect=404, **kw)
            assert code(answer) == "not_found"

        await server.run_due_jobs()
        assert await history(ann, cid) == []  # not before its time
        edited = (
            await ann.call(
                "PATCH",
                f"/scheduled/{sid}",
                json={"body": "even later", "send_at": at(clock, 2 * HOUR)},
                expect=200,
            )
        )["scheduled"]
        assert edited["version"] == made["version"] + 1 and edited["body"] == "even later"
        assert (await tab1.event("scheduled_message_updated"))["event"]["scheduled"] == edited

        clock.advance(HOUR + 60)  # the old time: the old job must not send
        await server.run_due_jobs()
        assert await history(ann, cid) == []
        assert (await listed(ann, conversation_id=cid))[0]["state"] == "pending"

        clock.advance(HOUR)  # the new time
        await server.run_due_jobs()
        (message,) = await history(ann, cid)
        assert message["body"] == "even later" and message["sender_id"] == ann.id
        assert message["client_msg_id"] == f"sched-{sid}"
        assert (await ws_ben.event("message"))["event"]["message"]["seq"] == message["seq"]
        states = []
        while not states or states[-1] != "sent":
            event = (await tab2.event("scheduled_message_updated"))["event"]
            states.append(event["scheduled"]["state"])
        assert states[-2:] == ["sending", "sent"]
        assert event["scheduled"]["sent_seq"] == message["seq"]
        assert [s["body"] for s in await listed(ann)] == ["elsewhere"]
        # sent: neither editable nor cancellable any more
        answer = await ann.call("PATCH", f"/scheduled/{sid}", json={"body": "x"}, expect=404)
        assert code(answer) == "not_found"
        await ann.call("DELETE", f"/scheduled/{sid}", expect=404)
        # nothing of ann's schedule reached ben's stream
        kinds = [e["kind"] for e in await sync_events(ben, since_ben)]
        assert not [k for k in kinds if k.startswith("scheduled_")]
        assert "message" in kinds


async def test_cancel_before_delivery_sends_nothing(make_server: MakeServer) -> None:
    async with two_members(make_server, "scc") as (server, clock, world, ann, _ben, cid):
        ws = await world.ws(ann)
        sid = (await schedule(ann, cid, "never", at(clock, 60)))["scheduled"]["id"]
        await ann.call("DELETE", f"/scheduled/{sid}", expect=204)
        event = (await ws.event("scheduled_message_deleted"))["event"]
        assert event["scheduled_id"] == sid and event["conversation_id"] == cid
        assert await listed(ann) == []
        await ann.call("DELETE", f"/scheduled/{sid}", expect=404)
        await ann.call("PATCH", f"/scheduled/{sid}", json={"body": "x"}, expect=404)
        clock.advance(120)
        await server.run_due_jobs()
        assert await history(ann, cid) == []


async def test_delivery_is_exactly_once_when_the_job_runs_again_or_died_midway(
    make_server: MakeServer,
) -> None:
    async with two_members(make_server, "sce") as (server, clock, _world, ann, _ben, cid):
        services = server.container.services
        store = server.container.store
        one = (await schedule(ann, cid, "one", at(clock, 60)))["scheduled"]
        two = (await schedule(ann, cid, "two", at(clock, 60)))["scheduled"]

        async def deliver(s: dict[str, Any]) -> None:  # the job, as a worker runs it
            payload = {"sender_id": ann.id, "id": s["id"], "version": s["version"]}
            await services.jobs.consume(SCHEDULED_SEND, payload)

        # a worker that died after sending `two` and before marking it sent: the
        # message is stored and the row says `sending`
        async with store.write() as tx:
            row = await tx.get_scheduled(ann.id, two["id"])
            assert row is not None
            await tx.update_scheduled(
                replace(row, state=ScheduledState.SENDING),
                state=ScheduledState.PENDING,
                version=row.version,
            )
            user = await tx.get_user(UserId(ann.id))
        assert user is not None
        first, _ = await services.messages.send(user, cid, f"sched-{two['id']}", "two")

        clock.advance(120)
        # the job of `one` twice at once (a redelivery), then once more; `two` resumed
        await asyncio.gather(deliver(one), deliver(one))
        await deliver(one)
        await deliver(two)
        await server.run_due_jobs()  # and the server's own jobs
        await deliver(two)
        bodies = [m["body"] for m in await history(ann, cid)]
        assert sorted(bodies) == ["one", "two"]
        assert await listed(ann) == []
        async with store.read() as tx:
            done = await tx.get_scheduled(ann.id, two["id"])
        assert done is not None and done.state is ScheduledState.SENT
        assert done.sent_seq == first.seq


async def test_a_sender_who_may_no_longer_post_gets_a_failure_with_the_reason(
    make_server: MakeServer,
) -> None:
    clock = FakeClock(START, tick=timedelta(milliseconds=1))
    async with make_server(clock=clock) as server:
        world = World(server)
        try:
            ann, ben = await world.users("scfann", "scfben")
            left = await world.conversation(ben, ann)
            archived = await world.conversation(ann, ben, name="to archive")
            body = {"kind": "channel", "name": "news", "member_ids": [ann.id], "announcement": True}
            news = (await ben.post("/conversations", body, expect=201))["conversation"]["id"]
            # ann moderates `news` when she schedules there, and no longer when it is due
            await set_role(ben, news, ann.id, "moderator")
            ws = await world.ws(ann)
            a = (await schedule(ann, left, "after leaving", at(clock, 60)))["scheduled"]
            b = (await schedule(ann, archived, "into the archive", at(clock, 60)))["scheduled"]
            c = (await schedule(ann, news, "announcement", at(clock, 60)))["scheduled"]
            # `d` was sent by a worker that died before marking it, and then ann left:
            # it was sent, not failed
            d = (await schedule(ann, left, "sent before leaving", at(clock, 60)))["scheduled"]
            store, services = server.container.store, server.container.services
            async with store.write() as tx:
                row = await tx.get_scheduled(ann.id, d["id"])
                assert row is not None
                await tx.update_scheduled(
                    replace(row, state=ScheduledState.SENDING),
                    state=ScheduledState.PENDING,
                    version=row.version,
                )
                user = await tx.get_user(UserId(ann.id))
            assert user is not None
            before, _ = await services.messages.send(
                user, left, f"sched-{d['id']}", "sent before leaving"
            )
            await ann.call("DELETE", f"/conversations/{left}/members/{ann.id}", expect=204)
            await ann.call("PUT", f"/conversations/{archived}/archive", expect=200)
            await set_role(ben, news, ann.id, "member")
            clock.advance(120)
            await server.run_due_jobs()
            assert [m["body"] for m in await history(ben, left)] == ["sent before leaving"]
            for cid in (archived, news):
                assert await history(ben, cid) == []
            async with store.read() as tx:
                done = await tx.get_scheduled(ann.id, d["id"])
            assert done is not None and done.state is ScheduledState.SENT
            assert done.sent_seq == before.seq
            failed = {s["id"]: s for s in await listed(ann)}
            assert {k: v["state"] for k, v in failed.items()} == {
                a["id"]: "failed",
                b["id"]: "failed",
                c["id"]: "failed",
            }
            assert failed[a["id"]]["failure"].startswith("not_found")
            assert failed[b["id"]]["failure"].startswith("forbidden")
            assert "announcement" in failed[c["id"]]["failure"]
            told = set()
            while len(told) < 3:
                event = (await ws.event("scheduled_message_updated"))["event"]
                if event["scheduled"]["state"] == "failed":
                    told.add(event["scheduled"]["id"])
            # a failed one can't be edited, only dismissed
            answer = await ann.call(
                "PATCH", f"/scheduled/{a['id']}", json={"body": "x"}, expect=400
            )
            assert code(answer) == "invalid_operation"
            await ann.call("DELETE", f"/scheduled/{a['id']}", expect=204)
            assert len(await listed(ann)) == 2
        finally:
            await world.close()


async def test_scheduling_takes_a_sends_checks_the_horizon_the_cap_and_hostile_input(
    make_server: MakeServer,
) -> None:
    clock = FakeClock(START, tick=timedelta(milliseconds=1))
    settings = {"max_scheduled_per_user": 2, "scheduled_max_horizon_days": 30}
    async with make_server(clock=clock, max_message_bytes=1000, **settings) as server:
        world = World(server)
        try:
            ann, ben, out = await world.users("schann", "schben", "schout")
            cid = await world.conversation(ann, ben)
            body = {"kind": "channel", "name": "news", "member_ids": [ben.id], "announcement": True}
            news = (await ann.post("/conversations", body, expect=201))["conversation"]["id"]
            soon = at(clock, 60)
            bad_times = [
                (clock.now() - timedelta(seconds=5)).isoformat(),  # past
                "2026-11-28T13:00:00",  # no zone
                "tomorrow",
                "",
                (clock.now() + timedelta(days=31)).isoformat(),  # beyond the horizon
                "9999-12-31T23:59:59+00:00",
                "x" * 65,
            ]
            for send_at in bad_times:
                answer = await schedule(ann, cid, "hi", send_at, expect=400)
                assert code(answer) == "invalid_request", send_at
            for body, want in (
                ("x" * 1001, "too_large"),
                ("   ", "invalid_body"),
                ("a\x00b", "invalid_request"),  # refused before the service
            ):
                got = await schedule(ann, cid, body, soon, expect=None)
                assert code(got) == want, got
            for extra in (
                {"reply_to_seq": 0},
                {"thread_root_seq": -1},
                {"also_to_conversation": True},
                {"attachments": "f"},
                {"unknown": 1},
            ):
                r = await schedule(ann, cid, "hi", soon, expect=None, **extra)
                assert code(r) == "invalid_request", extra
            assert code(await schedule(ann, cid, "hi", soon, expect=404, reply_to_seq=5)) == (
                "not_found"
            )
            assert code(await schedule(ann, cid, "hi", soon, expect=404, thread_root_seq=5)) == (
                "not_found"
            )
            # not a member, or no such conversation: the same not_found
            assert code(await schedule(out, cid, "hi", soon, expect=404)) == "not_found"
            assert code(await schedule(ann, "nope", "hi", soon, expect=404)) == "not_found"
            # an announcement channel: only its owners and moderators
            assert code(await schedule(ben, news, "hi", soon, expect=403)) == "forbidden"
            await schedule(ann, news, "from the owner", soon)
            # ids in the path
            for sid in ("x" * 33, "%00", "nope"):
                r = await ann.http.patch(f"/scheduled/{sid}", json={"body": "x"})
                assert r.status_code in (400, 404), (sid, r.status_code, r.text, r.headers)
                assert r.json()["error"]["code"] in ("invalid_request", "not_found"), sid
            r = await ann.http.get("/scheduled", params={"conversation_id": "x" * 33})
            assert r.status_code == 400
            # the cap: waiting ones count; a cancelled one frees its place
            second = (await schedule(ann, cid, "two", soon))["scheduled"]
            full = await schedule(ann, cid, "three", soon, expect=400)
            assert code(full) == "invalid_operation" and full["error"]["details"]["limit"] == 2
            await ann.call("DELETE", f"/scheduled/{second['id']}", expect=204)
            third = (await schedule(ann, cid, "three", soon))["scheduled"]
            # an edit takes the same checks
            for change in (
                {"body": "x" * 1001},
                {"body": ""},
                {"send_at": "2000-01-01T00:00:00Z"},
                {"send_at": (clock.now() + timedelta(days=31)).isoformat()},
                {},
                {"body": 5},
            ):
                r = await ann.call("PATCH", f"/scheduled/{third['id']}", json=change)
                assert code(r) in ("invalid_request", "too_large", "invalid_body"), change
            assert (await ann.get(f"/scheduled/{third['id']}"))["scheduled"] == third
        finally:
            await world.close()


def apply_scheduled_event(me: str, held: list[dict[str, Any]], event: dict[str, Any]) -> None:
    """What a client does with its scheduled list on the stream."""
    kind = event["kind"]
    if not kind.startswith("scheduled_message_") or event["user_id"] != me:
        return
    if kind == "scheduled_message_deleted":
        held[:] = [s for s in held if s["id"] != event["scheduled_id"]]
        return
    item = event["scheduled"]
    held[:] = [s for s in held if s["id"] != item["id"]]
    if item["state"] in ("pending", "sending", "failed"):
        held.append(item)
    held.sort(key=lambda s: (s["send_at"], s["id"]))


async def test_stale_scheduled_list_plus_events_equals_a_fresh_fetch(
    make_server: MakeServer,
) -> None:
    clock = FakeClock(START, tick=timedelta(milliseconds=1))
    async with make_server(clock=clock) as server:
        world = World(server)
        try:
            ann, ben = await world.users("scsann", "scsben")
            one = await world.conversation(ann, ben)
            two = await world.conversation(ben, ann, name="two")
            keep = (await schedule(ann, one, "keep", at(clock, 5 * HOUR)))["scheduled"]
            gone = (await schedule(ann, one, "cancel me", at(clock, 5 * HOUR)))["scheduled"]
            sent = (await schedule(ann, two, "sent", at(clock, 60)))["scheduled"]
            ws = await world.ws(ann)
            since = ws.ready["position"]
            held = await listed(ann)
            # while ann is away
            await ann.call(
                "PATCH",
                f"/scheduled/{keep['id']}",
                json={"send_at": at(clock, 30)},
                expect=200,
            )
            await ann.call("DELETE", f"/scheduled/{gone['id']}", expect=204)
            await schedule(ann, two, "new", at(clock, 2 * HOUR))
            fails = (await schedule(ann, two, "fails", at(clock, 90)))["scheduled"]
            assert fails["state"] == "pending"
            clock.advance(65)
            await server.run_due_jobs()  # `keep` (at its new time) and `sent`
            await ann.call("DELETE", f"/conversations/{two}/members/{ann.id}", expect=204)
            clock.advance(60)
            await server.run_due_jobs()  # `fails`
            for event in await sync_events(ann, since):
                apply_scheduled_event(ann.id, held, event)
            fresh = await listed(ann)
            assert held == fresh
            assert [s["body"] for s in fresh] == ["fails", "new"]
            assert fresh[0]["state"] == "failed"
            assert sent["id"] not in {s["id"] for s in fresh}
            assert keep["id"] not in {s["id"] for s in fresh}  # sent at its new time
        finally:
            await world.close()


async def test_delivery_through_rabbitmq_by_the_servers_own_worker(
    make_server: MakeServer,
) -> None:
    """The real clock and the broker: the server's worker role runs the jobs (the test
    drains nothing); an edited one is sent once, at its new time."""
    url, prefix = require_rabbitmq(), unique_prefix()
    queues = ["default"]
    try:
        settings = {"amqp_url": url, "amqp_prefix": prefix, "jobs_poll_seconds": 0.1}
        async with make_server(**settings) as server:
            queues = server.container.services.jobs.queues
            world = World(server)
            try:
                ann, ben = await world.users("scrann", "scrben")
                cid = await world.conversation(ann, ben)

                def soon(seconds: float) -> str:
                    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()

                first = (await schedule(ann, cid, "through the broker", soon(3)))["scheduled"]
                moved = (await schedule(ann, cid, "moved", soon(3)))["scheduled"]
                new_time = soon(5)
                await ann.call(
                    "PATCH",
                    f"/scheduled/{moved['id']}",
                    json={"send_at": new_time, "body": "moved later"},
                    expect=200,
                )
                deadline = time.monotonic() + 30
                while len(await history(ben, cid)) < 2 or await listed(ann):
                    assert time.monotonic() < deadline, await listed(ann)
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)  # nothing more comes
                messages = await history(ben, cid)
                assert [m["body"] for m in messages] == ["through the broker", "moved later"]
                assert messages[0]["client_msg_id"] == f"sched-{first['id']}"
                # sent at the new time, not the old one
                sent_at = datetime.fromisoformat(messages[1]["created_at"])
                assert sent_at >= datetime.fromisoformat(new_time)
            finally:
                await world.close()
    finally:
        await delete_prefix(url, prefix, queues)


async def test_scheduling_counts_as_sends_and_edits_against_the_rate_limits(
    make_server: MakeServer,
) -> None:
    rates = {"rate_send_per_user": 3, "rate_edit_per_user": 2, "rate_window_seconds": 30}
    async with two_members(make_server, "scrl", **rates) as (
        _server,
        clock,
        _world,
        ann,
        _ben,
        cid,
    ):
        await ann.send(cid, "one send")
        made = [(await schedule(ann, cid, f"s{i}", at(clock, HOUR)))["scheduled"] for i in range(2)]
        limited = await schedule(ann, cid, "one too many", at(clock, HOUR), expect=429)
        assert code(limited) == "rate_limited" and limited["error"]["details"]["retry_after"]
        assert len(await listed(ann)) == 2  # nothing written
        sid = made[0]["id"]
        await ann.call("PATCH", f"/scheduled/{sid}", json={"body": "e"}, expect=200)
        await ann.call("DELETE", f"/scheduled/{made[1]['id']}", expect=204)
        answer = await ann.call("PATCH", f"/scheduled/{sid}", json={"body": "f"}, expect=429)
        assert code(answer) == "rate_limited"
        assert (await ann.get(f"/scheduled/{sid}"))["scheduled"]["body"] == "e"


async def test_a_disabled_senders_scheduled_message_is_not_sent(make_server: MakeServer) -> None:
    clock = FakeClock(START, tick=timedelta(milliseconds=1))
    async with make_server(clock=clock) as server:
        world = World(server)
        try:
            admin = await world.admin()
            ann, ben = await world.users("scdann", "scdben")
            cid = await world.conversation(ben, ann)
            sid = (await schedule(ann, cid, "from a disabled account", at(clock, 60)))["scheduled"][
                "id"
            ]
            await admin.call("PATCH", f"/users/{ann.id}", json={"disabled": True}, expect=200)
            clock.advance(120)
            await server.run_due_jobs()
            assert await history(ben, cid) == []
            async with server.container.store.read() as tx:
                row = await tx.get_scheduled(ann.id, sid)
            assert row is not None and row.state is ScheduledState.FAILED
            assert row.failure is not None and "disabled" in row.failure
        finally:
            await world.close()


async def upload(api: Api, data: bytes, name: str = "agenda.txt") -> dict[str, Any]:
    r = await api.http.post("/files", files={"file": (name, data, "text/plain")})
    assert r.status_code == 201, r.text
    return dict(r.json()["file"])


async def test_attachments_are_the_senders_own_kept_from_collection_and_sent(
    make_server: MakeServer,
) -> None:
    settings = {"files_gc_grace_seconds": 600, "max_attachments_per_message": 2}
    async with two_members(make_server, "sca", **settings) as (
        server,
        clock,
        _world,
        ann,
        ben,
        cid,
    ):
        mine = await upload(ann, b"the agenda")
        extra = await upload(ann, b"more")
        third = await upload(ann, b"and more")
        bens = await upload(ben, b"ben's")
        later = at(clock, 2 * HOUR)
        for files, status, want in (
            ([bens["id"]], 404, "not_found"),  # someone else's upload
            (["nope"], 404, "not_found"),
            ([mine["id"], mine["id"]], 400, "invalid_request"),
            ([mine["id"], extra["id"], third["id"]], 400, "invalid_operation"),
        ):
            answer = await schedule(ann, cid, "x", later, expect=status, attachments=files)
            assert code(answer) == want, files
        made = (await schedule(ann, cid, "see attached", later, attachments=[mine["id"]]))[
            "scheduled"
        ]
        assert made["attachments"] == [mine["id"]]
        assert (await listed(ann))[0]["attachments"] == [mine["id"]]
        # past the grace period: the unattached uploads go, the scheduled one stays
        clock.advance(HOUR)
        collected = await server.container.services.files.collect(None)
        assert collected.files == 3  # extra, third and ben's
        assert (await ann.http.get(f"/files/{mine['id']}/meta")).status_code == 200
        clock.advance(HOUR + 60)
        await server.run_due_jobs()
        (message,) = await history(ben, cid)
        assert [f["id"] for f in message["attachments"]] == [mine["id"]]
        assert (await ben.http.get(f"/files/{mine['id']}")).content == b"the agenda"


async def test_a_passing_refusal_is_retried_and_fails_the_message_on_the_last_attempt(
    make_server: MakeServer,
) -> None:
    """The send path unavailable at delivery (the store away, say): an attempt before the
    last leaves it `sending` for the retry; the last attempt marks it `failed` with the
    reason (once dead-lettered, it was left `sending`: not cancellable, and counted
    against the cap)."""
    async with two_members(make_server, "scp") as (server, clock, _world, ann, ben, cid):
        made = (await schedule(ann, cid, "later", at(clock, 60)))["scheduled"]
        clock.advance(120)
        payload = {"sender_id": ann.id, "id": made["id"], "version": made["version"]}

        def attempt(n: int) -> Job:
            return Job(f"j-{n}", SCHEDULED_SEND, payload, n, 8, clock.now())

        class Away:  # a fault injected into our own send path, not a stand-in server
            async def send(self, *args: Any, **kwargs: Any) -> Any:
                raise Unavailable("the store is away")

        scheduled = server.container.services.scheduled
        real, scheduled.messages = scheduled.messages, Away()  # type: ignore[assignment]
        try:
            with pytest.raises(Unavailable):
                await scheduled._deliver(attempt(7))
            (row,) = await listed(ann)
            assert row["state"] == "sending"
            await scheduled._deliver(attempt(8))
        finally:
            scheduled.messages = real
        (row,) = await listed(ann)
        assert row["state"] == "failed" and row["failure"].startswith("unavailable")
        await scheduled._deliver(attempt(1))  # an admin's retry of the dead letter
        assert await history(ben, cid) == []
        await ann.call("DELETE", f"/scheduled/{made['id']}", expect=204)  # dismissed
        assert await listed(ann) == []
