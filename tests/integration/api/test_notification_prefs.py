"""Notification settings (issue 17) over the application in-process, on both backends:
a member's level and mute per conversation (PUT /conversations/{cid}/notifications),
carried by the caller's conversation list; do not disturb (PUT /users/me/notifications);
the `notifications_updated` / `dnd_updated` events to one's own connections only;
@all / @channel / @here with who may use them; hostile input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import MakeServer, World
from tests.fakes import FakeClock
from tests.helpers import Api

START = datetime.now(UTC).replace(microsecond=0)


def refused(answer: Any, field: str | None = None, code: str = "invalid_request") -> None:
    """PROTOCOL.md's error shape (naming the field at fault, when given)."""
    assert set(answer) == {"error"}, answer
    assert answer["error"]["code"] == code, answer
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    if field is not None:
        assert answer["error"]["details"].get("field") == field, answer


async def put_conv(api: Api, cid: str, body: dict[str, Any], expect: int | None = 200) -> Any:
    return await api.call("PUT", f"/conversations/{cid}/notifications", json=body, expect=expect)


async def put_me(api: Api, body: dict[str, Any], expect: int | None = 200) -> Any:
    return await api.call("PUT", "/users/me/notifications", json=body, expect=expect)


def listed(answer: Any, cid: str) -> dict[str, Any]:
    return next(c for c in answer["conversations"] if c["id"] == cid)["notifications"]


async def test_member_level_and_mute_are_listed_and_told_to_own_connections(
    make_server: MakeServer,
) -> None:
    clock = FakeClock(START)
    async with make_server(clock=clock) as server:
        world = World(server)
        try:
            ann, bob, out = await world.users("nann", "nbob", "nout")
            group = await world.conversation(ann, bob)
            chan = await world.conversation(ann, bob, kind="channel", name="news")
            mine = await ann.get("/conversations")
            default = {"level": None, "muted": False, "muted_until": None}
            assert listed(mine, group) == listed(mine, chan) == default
            ann_ws, bob_ws = await world.ws(ann), await world.ws(bob)

            until = (clock.now() + timedelta(hours=2)).isoformat()
            got = await put_conv(ann, chan, {"level": "all", "muted_until": until})
            want = {
                "level": "all",
                "muted": True,
                "muted_until": (clock.now() + timedelta(hours=2))
                .isoformat()
                .replace("+00:00", "Z"),
            }
            assert got == {"conversation_id": chan, "notifications": want}
            event = (await ann_ws.event("notifications_updated"))["event"]
            assert event["conversation_id"] == chan and event["user_id"] == ann.id
            assert event["notifications"] == want
            assert listed(await ann.get("/conversations"), chan) == want
            assert (await ann.get(f"/conversations/{chan}/notifications"))["notifications"] == want
            # bob's list and bob's connections know nothing of it
            assert listed(await bob.get("/conversations"), chan) == default
            await bob.send(group, "ping")
            assert (await bob_ws.event())["event"]["kind"] == "message"

            # muted: true without a time mutes until unmuted; false unmutes
            got = await put_conv(ann, group, {"muted": True, "level": "none"})
            assert got["notifications"] == {"level": "none", "muted": True, "muted_until": None}
            # a time given later bounds the mute; null drops the time (until unmuted again)
            soon = clock.now() + timedelta(minutes=5)
            got = await put_conv(ann, group, {"muted_until": soon.isoformat()})
            assert got["notifications"]["muted"] is True
            assert got["notifications"]["muted_until"] == soon.isoformat().replace("+00:00", "Z")
            got = await put_conv(ann, group, {"muted_until": None})
            assert got["notifications"] == {"level": "none", "muted": True, "muted_until": None}
            got = await put_conv(ann, group, {"muted": False})
            assert got["notifications"] == {"level": "none", "muted": False, "muted_until": None}
            got = await put_conv(ann, group, {"level": None})  # back to the default
            assert got["notifications"] == default
            # changing nothing sends nothing
            await put_conv(ann, group, {"level": None})
            await ann.send(group, "after")
            kinds = []
            while (got := (await ann_ws.event())["event"]).get("message", {}).get(
                "body"
            ) != "after":
                kinds.append(got["kind"])
            assert kinds == ["message", *["notifications_updated"] * 5]  # bob's ping first

            # only members: an outsider, a missing conversation
            refused(await put_conv(out, group, {"level": "all"}, expect=404), code="not_found")
            refused(await put_conv(ann, "nope", {"level": "all"}, expect=404), code="not_found")
            # one who leaves and comes back starts from the defaults again
            await put_conv(bob, chan, {"level": "none"})
            await bob.call("DELETE", f"/conversations/{chan}/members/{bob.id}", expect=204)
            refused(await put_conv(bob, chan, {"level": "all"}, expect=404), code="not_found")
            await bob.post(f"/conversations/{chan}/members", {"user_ids": [bob.id]})
            assert listed(await bob.get("/conversations"), chan) == default
            # a mute whose time passed: as stored (clients compare with their clock); the
            # next change reads it as none
            clock.advance(3 * 3600)
            assert listed(await ann.get("/conversations"), chan)["muted"] is True
            got = await put_conv(ann, chan, {"level": "mentions"})
            assert got["notifications"] == {
                "level": "mentions",
                "muted": False,
                "muted_until": None,
            }
        finally:
            await world.close()


async def test_do_not_disturb_until_and_schedule(make_server: MakeServer) -> None:
    clock = FakeClock(datetime(2026, 12, 3, 14, 30, tzinfo=UTC))  # 22:30 in Shanghai
    async with make_server(clock=clock, mention_all_confirm_members=7) as server:
        world = World(server)
        try:
            ann = await world.user("dann")
            first = await ann.get("/users/me/notifications")
            assert first["dnd"] == {"until": None, "schedule": None}
            assert first["dnd_active"] is False and first["time_zone"] is None
            assert first["mention_all"] == {
                "min_role": "member",
                "large_min_role": "moderator",
                "large_members": 50,
                "confirm_members": 7,
            }
            ws = await world.ws(ann)
            # 22:00-07:00 crosses midnight; UTC (no zone in the profile): 14:30 is outside
            got = await put_me(ann, {"dnd_schedule": {"start": "22:00", "end": "07:00"}})
            assert got["dnd"]["schedule"] == {"start": "22:00", "end": "07:00"}
            assert got["dnd_active"] is False
            event = (await ws.event("dnd_updated"))["event"]
            assert event["conversation_id"] is None and event["user_id"] == ann.id
            assert event["dnd"] == got["dnd"]
            # in Shanghai (UTC+8) it is 22:30: within the schedule
            await ann.call("PATCH", "/users/me", json={"time_zone": "Asia/Shanghai"}, expect=200)
            now_on = await ann.get("/users/me/notifications")
            assert now_on["dnd_active"] is True and now_on["time_zone"] == "Asia/Shanghai"
            clock.advance(9 * 3600)  # 07:30 there: over
            assert (await ann.get("/users/me/notifications"))["dnd_active"] is False
            # until a time, beside the schedule; then off again
            until = (clock.now() + timedelta(minutes=30)).isoformat()
            got = await put_me(ann, {"dnd_until": until})
            assert got["dnd_active"] is True and got["dnd"]["schedule"] is not None
            clock.advance(31 * 60)
            assert (await ann.get("/users/me/notifications"))["dnd_active"] is False
            got = await put_me(ann, {"dnd_until": None, "dnd_schedule": None})
            assert got["dnd"] == {"until": None, "schedule": None}
        finally:
            await world.close()


async def test_notification_settings_refuse_hostile_input(make_server: MakeServer) -> None:
    clock = FakeClock(START)
    async with make_server(clock=clock) as server:
        world = World(server)
        try:
            ann, bob = await world.users("hann", "hbob")
            cid = await world.conversation(ann, bob)
            past = (clock.now() - timedelta(seconds=1)).isoformat()
            conv_cases: list[tuple[Any, str | None]] = [
                ({"level": "loud"}, None),
                ({"level": 3}, None),
                ({"level": "ALL"}, None),
                ({"muted": "yes"}, None),
                ({"muted_until": past}, "muted_until"),
                ({"muted_until": "tomorrow"}, "muted_until"),
                ({"muted_until": "2030-01-01T00:00:00"}, "muted_until"),  # no zone
                ({"muted_until": "9999-12-31T23:59:59-14:00"}, "muted_until"),
                ({"muted_until": "x" * 100_000}, None),
                ({"muted": False, "muted_until": "2099-01-01T00:00:00Z"}, "muted_until"),
                ({"level": "all", "extra": 1}, None),
                ({"level": "all\x00"}, None),
                ([1, 2], None),
            ]
            for body, field in conv_cases:
                answer = await ann.call(
                    "PUT", f"/conversations/{cid}/notifications", json=body, expect=400
                )
                refused(answer, field)
            raw = await ann.http.put(
                f"/conversations/{cid}/notifications",
                content=b"{not json",
                headers={"content-type": "application/json"},
            )
            assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_request"
            me_cases: list[tuple[Any, str | None]] = [
                ({"dnd_until": past}, "dnd_until"),
                ({"dnd_until": "soon"}, "dnd_until"),
                ({"dnd_schedule": {"start": "22:00", "end": "22:00"}}, "dnd_schedule.end"),
                ({"dnd_schedule": {"start": "24:00", "end": "07:00"}}, "dnd_schedule.start"),
                ({"dnd_schedule": {"start": "7:00", "end": "07:00"}}, None),
                ({"dnd_schedule": {"start": "22:60", "end": "07:00"}}, "dnd_schedule.start"),
                ({"dnd_schedule": {"start": "22:00", "end": "7h:00"}}, "dnd_schedule.end"),
                ({"dnd_schedule": {"start": "22:00"}}, None),
                ({"dnd_schedule": "22:00-07:00"}, None),
                ({"dnd_schedule": {"start": "２２:００", "end": "07:00"}}, "dnd_schedule.start"),
            ]
            for body, field in me_cases:
                refused(await put_me(ann, body, expect=400), field)
            # nothing was written
            mine = await ann.get("/conversations")
            assert listed(mine, cid) == {"level": None, "muted": False, "muted_until": None}
            assert (await ann.get("/users/me/notifications"))["dnd"] == {
                "until": None,
                "schedule": None,
            }
        finally:
            await world.close()


async def test_notification_settings_are_rate_limited(make_server: MakeServer) -> None:
    async with make_server(rate_membership_per_user=3) as server:
        world = World(server)
        try:
            ann, bob = await world.users("rann", "rbob")
            cid = await world.conversation(ann, bob)
            for level in ("all", "none", "mentions"):
                await put_conv(ann, cid, {"level": level})
            limited = await ann.http.put("/users/me/notifications", json={"dnd_until": None})
            assert limited.status_code == 429 and limited.headers.get("retry-after")
            refused(limited.json(), code="rate_limited")
        finally:
            await world.close()


async def test_mentioning_everyone_is_marked_and_kept_to_roles(make_server: MakeServer) -> None:
    async with make_server(mention_all_large_members=3) as server:
        world = World(server)
        try:
            own, mod, mem, fourth = await world.users("eown", "emod", "emem", "efour")
            small = await world.conversation(own, mem)  # 2 members: anyone may
            sent = await mem.send(small, "@here lunch?")
            assert sent["mentions_everyone"] == "here" and sent["mentions"] == []
            assert (await mem.send(small, "ping @ALL and @here"))["mentions_everyone"] == "all"
            assert (await mem.send(small, "mail me at a@all.com"))["mentions_everyone"] is None
            assert (await mem.send(small, "@channel."))["mentions_everyone"] == "channel"

            big = await world.conversation(own, mod, mem, fourth, kind="channel", name="big")
            await own.call(
                "PUT", f"/conversations/{big}/members/{mod.id}/role", json={"role": "moderator"}
            )
            ws = await world.ws(fourth)
            for word in ("@all", "@channel", "@here"):
                answer = await mem.post(
                    f"/conversations/{big}/messages",
                    {"client_msg_id": f"no-{word}", "body": f"{word} hi"},
                    expect=403,
                )
                refused(answer, code="forbidden")
                details = answer["error"]["details"]
                assert details == {
                    "mention": word[1:],
                    "min_role": "moderator",
                    "member_count": 4,
                }
            # a moderator and an owner may; members see it marked
            assert (await mod.send(big, "@all standup"))["mentions_everyone"] == "all"
            event = (await ws.event("message"))["event"]
            assert event["message"]["mentions_everyone"] == "all"
            await own.send(big, "@here anyone?")
            # an edit that adds it is checked too; a plain edit of one is not
            plain = await mem.send(big, "plain")
            refused(
                await mem.call(
                    "PATCH",
                    f"/conversations/{big}/messages/{plain['seq']}",
                    json={"body": "@channel now"},
                    expect=403,
                ),
                code="forbidden",
            )
            history = (await fourth.get(f"/conversations/{big}/messages"))["messages"]
            assert [m["mentions_everyone"] for m in history] == ["all", "here", None]
            # a recalled message mentions nobody
            await mod.call("DELETE", f"/conversations/{big}/messages/{history[0]['seq']}")
            again = (await fourth.get(f"/conversations/{big}/messages"))["messages"]
            assert again[0]["mentions_everyone"] is None
        finally:
            await world.close()
