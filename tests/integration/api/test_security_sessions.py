"""Sessions over the application in-process: list (device, created, last seen, address), revoke one,
an admin revokes all of a user's, a password change ends the others."""

from __future__ import annotations

import asyncio

import websockets

from tests.conftest import AppServer
from tests.helpers import Ws, login, make_user
from tests.security_helpers import api_from, raw_login

PASSWORD = "plum-orbit-123"


async def closed_with(ws: Ws, timeout: float = 10) -> int | None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.conn.recv()
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def test_list_and_revoke_sessions(server: AppServer) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    await make_user(admin, "dave")
    url = server.url
    laptop = api_from(
        url, await raw_login(url, "dave", PASSWORD, device="laptop", address="203.0.113.7")
    )
    phone = api_from(
        url, await raw_login(url, "dave", PASSWORD, device="phone", address="198.51.100.9")
    )
    found = (await laptop.get("/sessions"))["sessions"]
    by_device = {s["device"]: s for s in found}
    assert {"laptop", "phone"} <= set(by_device)
    assert by_device["laptop"]["address"] == "203.0.113.7"
    assert by_device["phone"]["address"] == "198.51.100.9"
    assert by_device["laptop"]["current"] is True and by_device["phone"]["current"] is False
    for s in found:
        assert s["created_at"].endswith("Z") and s["last_seen_at"].endswith("Z")
        assert s["expires_at"] > s["created_at"]
        assert "token" not in s and len(s["id"]) < 40  # the id is not the token

    # revoke the phone from the laptop: its token and its connection end
    ws = await Ws.connect(server.ws_url, phone.token or "")
    await laptop.call("DELETE", f"/sessions/{by_device['phone']['id']}", expect=204)
    assert await closed_with(ws) == 4003
    r = await phone.call("GET", "/users/me")
    assert r["error"]["code"] == "unauthenticated"
    assert {s["device"] for s in (await laptop.get("/sessions"))["sessions"]} == {
        "laptop",
        "unknown",  # make_user's login
    }

    # someone else's session id is "not found", like an unknown one
    admin_sessions = (await admin.get("/sessions"))["sessions"]
    r = await laptop.call("DELETE", f"/sessions/{admin_sessions[0]['id']}")
    assert r["error"]["code"] == "not_found"
    await admin.get("/users/me")

    # an admin sees and ends all of them; a member may not
    seen = (await admin.get(f"/users/{laptop.id}/sessions"))["sessions"]
    assert "laptop" in {s["device"] for s in seen}
    r = await laptop.call("DELETE", f"/users/{admin.id}/sessions")
    assert r["error"]["code"] == "forbidden"
    ws = await Ws.connect(server.ws_url, laptop.token or "")
    await admin.call("DELETE", f"/users/{laptop.id}/sessions", expect=204)
    assert await closed_with(ws) == 4003
    r = await laptop.call("GET", "/users/me")
    assert r["error"]["code"] == "unauthenticated"
    assert (await admin.get(f"/users/{laptop.id}/sessions"))["sessions"] == []
    for api in (admin, laptop, phone):
        await api.close()


async def test_password_change_ends_the_other_sessions(server: AppServer) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    erin = await make_user(admin, "erin")
    other = await login(server.url, "erin", PASSWORD)
    ws_other = await Ws.connect(server.ws_url, other.token or "")
    ws_mine = await Ws.connect(server.ws_url, erin.token or "")

    r = await erin.call(
        "POST", "/auth/password", json={"current_password": "wrong-one", "new_password": "x" * 12}
    )
    assert r["error"]["code"] == "invalid_credentials"
    r = await erin.call(
        "POST", "/auth/password", json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert r["error"]["code"] == "invalid_request"
    await erin.post(
        "/auth/password",
        {"current_password": PASSWORD, "new_password": "a-new-password"},
        expect=204,
    )
    assert await closed_with(ws_other) == 4003
    r = await other.call("GET", "/users/me")
    assert r["error"]["code"] == "unauthenticated"
    # this session and its connection stay
    await erin.get("/users/me")
    assert (await ws_mine.request({"type": "ping"}))["type"] == "ack"
    assert (await raw_login(server.url, "erin", PASSWORD)).status_code == 401
    assert (await raw_login(server.url, "erin", "a-new-password")).status_code == 200
    await ws_mine.close()
    for api in (admin, erin, other):
        await api.close()
