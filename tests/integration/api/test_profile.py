"""The profile over the application in-process, on both backends: display name,
language, time zone, theme and custom status (PATCH /users/me), the `user_updated`
events others and one's own devices get, a status that expires on read, hostile input,
and "sign out all others" (DELETE /sessions)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets

from tests.conftest import MakeServer
from tests.fakes import FakeClock
from tests.helpers import Api, Ws, login, make_user
from tests.security_helpers import api_from, raw_login

PASSWORD = "plum-orbit-123"
START = datetime.now(UTC).replace(microsecond=0)


async def direct(a: Api, b: Api) -> str:
    made = await a.post("/conversations", {"kind": "direct", "member_ids": [b.id]}, expect=None)
    return str(made["conversation"]["id"])


async def events_until(ws: Ws, count: int, kind: str) -> list[dict[str, Any]]:
    return [(await ws.event(kind))["event"] for _ in range(count)]


def refused(answer: Any, field: str) -> None:
    """PROTOCOL.md's error shape, naming the field at fault."""
    assert set(answer) == {"error"}, answer
    error = answer["error"]
    assert error["code"] == "invalid_request", answer
    assert isinstance(error["message"], str) and error["message"]
    assert error["details"].get("field") == field, answer


async def test_profile_changes_reach_others_and_expire_on_read(make_server: MakeServer) -> None:
    clock = FakeClock(START)
    async with make_server(clock=clock) as server:
        admin = await login(server.url, "admin", server.admin_password)
        ann = await make_user(admin, "ann", display_name="Ann")
        bob = await make_user(admin, "bob", display_name="Bob")
        cid = await direct(ann, bob)
        group = await ann.post(
            "/conversations", {"kind": "group", "name": "G", "member_ids": [bob.id]}, expect=None
        )
        gid = group["conversation"]["id"]
        bob_ws = await Ws.connect(server.ws_url, bob.token or "")
        before = bob_ws.last_position
        ann_phone = api_from(server.url, await raw_login(server.url, "ann", PASSWORD))
        phone_ws = await Ws.connect(server.ws_url, ann_phone.token or "")

        me = await ann.get("/users/me")
        assert me["preferences"] == {"language": None, "time_zone": None, "theme": "system"}
        assert me["user"]["status"] is None
        until = (clock.now() + timedelta(hours=1)).isoformat()
        changed = await ann.call(
            "PATCH",
            "/users/me",
            json={
                "display_name": "Ann Lee",
                "language": "zh-CN",
                "time_zone": "Asia/Shanghai",
                "theme": "dark",
                "status": {"text": "On leave", "emoji": "🌴", "until": until},
            },
            expect=200,
        )
        status = {"text": "On leave", "emoji": "🌴", "until": until.replace("+00:00", "Z")}
        assert changed["user"]["display_name"] == "Ann Lee"
        assert changed["user"]["status"] == status
        assert changed["preferences"] == {
            "language": "zh-CN",
            "time_zone": "Asia/Shanghai",
            "theme": "dark",
        }

        # bob gets one event per conversation shared with ann, without her preferences
        got = await events_until(bob_ws, 2, "user_updated")
        assert {e["conversation_id"] for e in got} == {cid, gid}
        for event in got:
            assert "preferences" not in event
            assert event["user"]["display_name"] == "Ann Lee"
            assert event["user"]["status"] == status
        # stale state + the event == a fresh fetch
        fresh = (await bob.get(f"/users/{ann.id}"))["user"]
        assert fresh == got[0]["user"]
        assert "preferences" not in fresh and "language" not in fresh
        # a resume from before gets them again, in order
        again = await Ws.connect(server.ws_url, bob.token or "", since=before)
        replayed = await events_until(again, 2, "user_updated")
        assert [e["user"] for e in replayed] == [e["user"] for e in got]
        await again.close()

        # ann's other device gets her own copy, with the preferences
        own = None
        while own is None:
            event = (await phone_ws.event("user_updated"))["event"]
            if event["conversation_id"] is None:
                own = event
        assert own["preferences"] == changed["preferences"]
        assert (await ann_phone.get("/users/me"))["preferences"] == changed["preferences"]

        # the status reads as none once `until` has passed: no timer, no event
        clock.advance(3600)
        assert (await bob.get(f"/users/{ann.id}"))["user"]["status"] is None
        found = (await bob.get("/users", params={"query": "ann"}))["users"]
        assert [u["status"] for u in found if u["id"] == ann.id] == [None]
        assert (await ann.get("/users/me"))["user"]["status"] is None
        # and so it does where a client first learns who it is: sign-in and `ready`
        again_ann = await login(server.url, "ann", PASSWORD)
        try:
            assert again_ann.user["status"] is None
            ready_ws = await Ws.connect(server.ws_url, again_ann.token or "")
            assert ready_ws.ready["user"]["status"] is None
            await ready_ws.close()
        finally:
            await again_ann.close()

        # changing nothing writes nothing and sends nothing; clearing the zone works
        await ann.call("PATCH", "/users/me", json={"theme": "dark"}, expect=200)
        cleared = await ann.call("PATCH", "/users/me", json={"time_zone": None}, expect=200)
        assert cleared["preferences"]["time_zone"] is None
        assert cleared["preferences"]["language"] == "zh-CN"  # left as it was

        entries = (
            await admin.get("/audit", params={"action": "user_updated", "target_id": ann.id})
        )["entries"]
        assert [e["details"]["fields"] for e in entries] == [
            ["display_name", "status", "language", "time_zone", "theme"],
            ["time_zone"],
        ]
        assert {e["actor_id"] for e in entries} == {ann.id}
        for ws in (bob_ws, phone_ws):
            await ws.close()
        for api in (admin, ann, bob, ann_phone):
            await api.close()


async def test_profile_refuses_hostile_input_and_writes_nothing(make_server: MakeServer) -> None:
    clock = FakeClock(START)
    async with make_server(clock=clock, custom_status_max_chars=20) as server:
        admin = await login(server.url, "admin", server.admin_password)
        eve = await make_user(admin, "eve", display_name="Eve")
        before = await eve.get("/users/me")
        past = (clock.now() - timedelta(seconds=1)).isoformat()
        cases: list[tuple[dict[str, Any], str]] = [
            ({"display_name": "x" * 100_000}, "display_name"),
            ({"display_name": "x" * 81}, "display_name"),
            ({"display_name": "   "}, "display_name"),
            ({"display_name": "a\u202eb"}, "display_name"),
            ({"display_name": None}, "display_name"),
            ({"language": "fr"}, "language"),
            ({"language": "zh"}, "language"),
            ({"language": "x" * 10_000}, "language"),
            ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
            ({"time_zone": "../../etc/passwd"}, "time_zone"),
            ({"time_zone": "/etc/localtime"}, "time_zone"),
            ({"time_zone": ""}, "time_zone"),
            ({"time_zone": "A" * 5000}, "time_zone"),
            ({"theme": "neon"}, "theme"),
            ({"theme": None}, "theme"),
            ({"status": {"text": "x" * 21}}, "status.text"),
            ({"status": {"text": "x" * 1_000_000}}, "status.text"),
            ({"status": {"text": "ok", "emoji": "🎉 🎉"}}, "status.emoji"),
            ({"status": {"text": "ok", "emoji": "🎉" * 17}}, "status.emoji"),
            ({"status": {"text": "ok", "until": past}}, "status.until"),
            ({"status": {"text": "ok", "until": "2030-01-01T00:00:00"}}, "status.until"),
            ({"status": {"text": "ok", "until": "tomorrow"}}, "status.until"),
            ({"status": {"text": "ok", "until": "9999-12-31T23:59:59-14:00"}}, "status.until"),
            # one wrong field: the right ones beside it are not written either
            ({"theme": "dark", "time_zone": "Nowhere/City"}, "time_zone"),
            ({"display_name": "Eve Two", "status": {"text": "x" * 21}}, "status.text"),
        ]
        for body, field in cases:
            r = await eve.http.patch("/users/me", json=body)
            assert r.status_code in (400, 413), (body, r.text)
            if r.status_code == 400:
                answer = r.json()
                if answer["error"]["details"].get("field") != field:  # pydantic's own
                    errors = answer["error"]["details"].get("errors") or []
                    assert answer["error"]["code"] == "invalid_request", (body, answer)
                    assert any(field.split(".")[0] in str(e) for e in errors), (body, answer)
                else:
                    refused(answer, field)
        r = await eve.http.patch("/users/me", json={"nickname": "E"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
        assert await eve.get("/users/me") == before

        # valid edge cases
        ok = await eve.call(
            "PATCH",
            "/users/me",
            json={"time_zone": "UTC", "status": {"text": "x" * 20, "emoji": ""}},
            expect=200,
        )
        assert ok["preferences"]["time_zone"] == "UTC"
        assert ok["user"]["status"] == {"text": "x" * 20, "emoji": "", "until": None}
        gone = await eve.call("PATCH", "/users/me", json={"status": {"text": ""}}, expect=200)
        assert gone["user"]["status"] is None
        # a session that may not use the app yet cannot change it: no token at all
        r = await eve.http.patch("/users/me", json={}, headers={"authorization": "Bearer x"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        await eve.close()
        await admin.close()


async def closed_with(ws: Ws, timeout: float = 10) -> int | None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.conn.recv()
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def test_sign_out_all_other_sessions(make_server: MakeServer) -> None:
    async with make_server() as server:
        admin = await login(server.url, "admin", server.admin_password)
        first = await make_user(admin, "dave")
        url = server.url
        laptop = api_from(url, await raw_login(url, "dave", PASSWORD, device="laptop"))
        phone = api_from(url, await raw_login(url, "dave", PASSWORD, device="phone"))
        phone_ws = await Ws.connect(server.ws_url, phone.token or "")
        laptop_ws = await Ws.connect(server.ws_url, laptop.token or "")

        done = await laptop.call("DELETE", "/sessions", expect=200)
        assert done == {"revoked": 2}  # the phone and make_user's login
        assert await closed_with(phone_ws) == 4003
        for gone in (phone, first):
            r = await gone.call("GET", "/users/me")
            assert r["error"]["code"] == "unauthenticated"
        left = (await laptop.get("/sessions"))["sessions"]
        assert [(s["device"], s["current"]) for s in left] == [("laptop", True)]
        assert (await laptop_ws.request({"type": "ping"}))["type"] == "ack"  # still open
        assert await laptop.call("DELETE", "/sessions", expect=200) == {"revoked": 0}

        entries = (
            await admin.get("/audit", params={"action": "sessions_revoked", "target_id": laptop.id})
        )["entries"]
        assert [(e["actor_id"], e["details"]) for e in entries] == [
            (laptop.id, {"reason": "others_signed_out", "count": 2})
        ]
        # someone else's session is not_found, and nothing of theirs ends
        theirs = (await admin.get("/sessions"))["sessions"][0]["id"]
        r = await laptop.call("DELETE", f"/sessions/{theirs}")
        assert r["error"]["code"] == "not_found"
        r = await laptop.call("DELETE", "/sessions/" + "x" * 5000)
        assert r["error"]["code"] in ("not_found", "invalid_request")
        await admin.get("/users/me")
        await laptop_ws.close()
        for api in (admin, first, laptop, phone):
            await api.close()
