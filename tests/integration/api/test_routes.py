"""Accounts, organization, conversations and messages over the REST API of the
application in-process (tests/conftest.py `server`), and the error shape for bad input
(which must write nothing)."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
import websockets

from tests.conftest import AppServer, World
from tests.helpers import Ws, http_client, login, make_user
from tidings.core.errors import ErrorCode, InvalidOperation
from tidings.core.models import OrgRole


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


async def test_accounts_tokens_and_disable(server: AppServer, world: World) -> None:
    admin = await world.admin()
    alice = await make_user(admin, "alice", display_name="王小明")
    me = await alice.get("/users/me")
    assert me["user"]["username"] == "alice" and me["user"]["role"] == "member"
    # One token per device: a second login is a second session.
    phone = await login(server.url, "alice", "plum-orbit-123")
    assert phone.token != alice.token
    ws = await Ws.connect(server.ws_url, phone.token or "")
    await alice.post("/auth/logout", expect=204)
    r = await alice.http.get("/users/me")
    assert_error(r, 401, "unauthenticated")
    await phone.get("/users/me")  # the other device still works
    # Disabling cuts every session at once, live WebSocket included.
    await admin.call("PATCH", f"/users/{alice.id}", json={"disabled": True}, expect=200)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv_type("never", timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
    assert_error(await phone.http.get("/users/me"), 401, "unauthenticated")
    async with server.client() as c:
        r = await c.post(
            "/api/v1/auth/login", json={"username": "alice", "password": "plum-orbit-123"}
        )
    assert_error(r, 401, "invalid_credentials")  # as for a wrong password: nothing told
    await admin.call("PATCH", f"/users/{alice.id}", json={"disabled": False}, expect=200)
    await login(server.url, "alice", "plum-orbit-123")
    # Wrong password and unknown user look the same.
    async with server.client() as c:
        wrong = await c.post(
            "/api/v1/auth/login", json={"username": "alice", "password": "nope-nope"}
        )
        ghost = await c.post(
            "/api/v1/auth/login", json={"username": "ghost", "password": "nope-nope"}
        )
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(ghost, 401, "invalid_credentials")
    assert wrong.json()["error"]["message"] == ghost.json()["error"]["message"]


async def test_disabling_ends_every_session_for_good(server: AppServer, world: World) -> None:
    """A token from before a disable, a stolen one included, stays dead once the user is
    enabled again; the user signs in anew with the password."""
    admin = await world.admin()
    carol = await make_user(admin, "carol")
    stolen = await login(server.url, "carol", "plum-orbit-123")
    await admin.call("PATCH", f"/users/{carol.id}", json={"disabled": True}, expect=200)
    await admin.call("PATCH", f"/users/{carol.id}", json={"disabled": False}, expect=200)
    for old in (carol, stolen):
        assert_error(await old.http.get("/users/me"), 401, "unauthenticated")
    async with websockets.connect(server.ws_url) as conn:
        await conn.send(orjson.dumps({"type": "auth", "token": stolen.token}).decode())
        answer = orjson.loads(await asyncio.wait_for(conn.recv(), 10))
    assert answer["type"] == "error" and answer["error"]["code"] == "unauthenticated"
    again = await login(server.url, "carol", "plum-orbit-123")
    assert (await again.get("/users/me"))["user"]["username"] == "carol"
    entries = (await admin.get("/audit", params={"limit": 500}))["entries"]
    revoked = [
        e for e in entries if e["action"] == "sessions_revoked" and e["target_id"] == carol.id
    ]
    assert [e["details"] for e in revoked] == [{"reason": "user_disabled"}]


async def test_password_reset_revokes_sessions_and_roles_are_checked(
    server: AppServer, world: World
) -> None:
    admin = await world.admin()
    bob = await make_user(admin, "bob")
    await bob.post("/users", {"username": "x1", "password": "plum-orbit-123"}, expect=403)
    await admin.post(f"/users/{bob.id}/password", {"password": "new-password-1"}, expect=204)
    assert_error(await bob.http.get("/users/me"), 401, "unauthenticated")
    bob = await login(server.url, "bob", "new-password-1")
    helper = await make_user(admin, "helper", role="admin")
    # An admin cannot make admins or touch the owner.
    await helper.call("PATCH", f"/users/{bob.id}", json={"role": "admin"}, expect=403)
    await helper.call("PATCH", f"/users/{admin.id}", json={"disabled": True}, expect=403)
    await helper.call("PATCH", f"/users/{bob.id}", json={"role": "guest"}, expect=200)
    # Nobody changes their own role, an owner neither (this rule answers first).
    r = await admin.http.patch(f"/users/{admin.id}", json={"role": "member"})
    assert_error(r, 403, "forbidden")
    assert r.json()["error"]["message"] == "you cannot disable yourself or change your own role"
    # With a second owner, one owner may demote the other ...
    olga = await make_user(admin, "olga", role="owner")
    await olga.call("PATCH", f"/users/{admin.id}", json={"role": "admin"}, expect=200)
    # ... and then olga is the last owner: over REST only an owner could demote her, and
    # she may not demote herself; the operator (the command line: no actor), whom
    # neither rule binds, meets the last-owner rule, for a demotion as for disabling.
    users = server.container.services.users
    with pytest.raises(InvalidOperation) as demoted:
        await users.update(None, olga.id, role=OrgRole.ADMIN)
    with pytest.raises(InvalidOperation) as disabled:
        await users.update(None, olga.id, disabled=True)
    for refused in (demoted.value, disabled.value):
        assert refused.code is ErrorCode.INVALID_OPERATION
        assert refused.message == "the organization must keep at least one active owner"
    assert (await olga.get("/users/me"))["user"]["role"] == "owner"  # nothing changed
    # A disabled owner is no active owner: demoting or disabling one leaves olga, the
    # active owner, in place, so the last-owner rule does not refuse it.
    ivan = await make_user(olga, "ivan", role="owner")
    await olga.call("PATCH", f"/users/{ivan.id}", json={"disabled": True}, expect=200)
    await users.update(None, ivan.id, disabled=True)
    await olga.call("PATCH", f"/users/{ivan.id}", json={"role": "member"}, expect=200)


async def test_directory_and_departments(world: World) -> None:
    admin = await world.admin()
    zhang = await make_user(admin, "zhangwei", display_name="张伟")
    await make_user(admin, "lina", display_name="李娜")
    eng = (await admin.post("/departments", {"name": "Engineering"}, expect=201))["department"]
    web = (await admin.post("/departments", {"name": "Web", "parent_id": eng["id"]}, expect=201))[
        "department"
    ]
    await admin.call("PUT", f"/departments/{web['id']}/members/{zhang.id}", expect=204)
    found = await zhang.get("/users", params={"query": "张"})
    assert [u["username"] for u in found["users"]] == ["zhangwei"]
    found = await zhang.get("/users", params={"query": "LINA"})
    assert [u["display_name"] for u in found["users"]] == ["李娜"]
    in_eng = await zhang.get("/users", params={"department_id": eng["id"]})
    assert [u["username"] for u in in_eng["users"]] == ["zhangwei"]  # subtree included
    tree = await zhang.get("/departments")
    assert {(d["name"], d["parent_id"]) for d in tree["departments"]} == {
        ("Engineering", None),
        ("Web", eng["id"]),
    }
    await zhang.post("/departments", {"name": "Sales"}, expect=403)


async def test_conversation_kinds_and_membership(world: World) -> None:
    admin = await world.admin()
    a, b, c = [await make_user(admin, n) for n in ("ann", "ben", "cat")]
    guest = await make_user(admin, "gus", role="guest")
    d1 = await a.post("/conversations", {"kind": "direct", "member_ids": [b.id]}, expect=201)
    d2 = await b.post("/conversations", {"kind": "direct", "member_ids": [a.id]}, expect=200)
    assert d1["conversation"]["id"] == d2["conversation"]["id"]
    await a.post("/conversations", {"kind": "direct", "member_ids": [b.id, c.id]}, expect=400)
    dm = d1["conversation"]["id"]
    await c.get(f"/conversations/{dm}", expect=404)  # invisible, same as missing
    await c.get("/conversations/does-not-exist", expect=404)
    # Group: invite-only.
    group = (
        await a.post(
            "/conversations", {"kind": "group", "name": "G", "member_ids": [b.id]}, expect=201
        )
    )["conversation"]
    await c.post(f"/conversations/{group['id']}/members", {"user_ids": [c.id]}, expect=404)
    await b.post(f"/conversations/{group['id']}/members", {"user_ids": [c.id]}, expect=200)
    await b.call("DELETE", f"/conversations/{group['id']}/members/{a.id}", expect=403)
    # Channel: anyone but a guest may join or leave.
    chan = (await a.post("/conversations", {"kind": "channel", "name": "general"}, expect=201))[
        "conversation"
    ]
    listed = await c.get("/channels")
    assert [(x["name"], x["joined"]) for x in listed["conversations"]] == [("general", False)]
    await c.post(f"/conversations/{chan['id']}/members", {"user_ids": [c.id]}, expect=200)
    await guest.post(f"/conversations/{chan['id']}/members", {"user_ids": [guest.id]}, expect=404)
    await guest.post("/conversations", {"kind": "channel", "name": "nope"}, expect=403)
    await c.call("DELETE", f"/conversations/{chan['id']}/members/{c.id}", expect=204)
    view = (await a.get(f"/conversations/{chan['id']}"))["conversation"]
    assert [m["user_id"] for m in view["members"]] == [a.id]
    await a.call("DELETE", f"/conversations/{dm}/members/{b.id}", expect=400)


async def test_removed_member_gets_nothing_more(server: AppServer, world: World) -> None:
    admin = await world.admin()
    owner, gone = await make_user(admin, "owner1"), await make_user(admin, "gone")
    cid = (
        await owner.post(
            "/conversations", {"kind": "group", "name": "G", "member_ids": [gone.id]}, expect=201
        )
    )["conversation"]["id"]
    await owner.send(cid, "before removal")
    ws = await Ws.connect(server.ws_url, gone.token or "")
    await owner.call("DELETE", f"/conversations/{cid}/members/{gone.id}", expect=204)
    removed = await ws.event("member_removed")
    assert removed["event"]["user_id"] == gone.id
    await owner.send(cid, "after removal")
    await owner.call("PUT", f"/conversations/{cid}/messages/1/reactions/🎉")
    with pytest.raises(TimeoutError):
        await ws.event(timeout=1.0)
    history = await gone.get(f"/conversations/{cid}/messages")
    assert [m["body"] for m in history["messages"]] == ["before removal"]
    await gone.post(
        f"/conversations/{cid}/messages", {"client_msg_id": "x", "body": "hi"}, expect=404
    )
    assert (await gone.get("/conversations"))["conversations"] == []
    sync = await gone.get("/sync")
    assert [e["event"]["kind"] for e in sync["events"]][-1] == "member_removed"


async def test_edit_recall_reply_react_read(world: World) -> None:
    admin = await world.admin()
    a, b = await make_user(admin, "amy"), await make_user(admin, "bo")
    cid = (
        await a.post(
            "/conversations", {"kind": "group", "name": "G", "member_ids": [b.id]}, expect=201
        )
    )["conversation"]["id"]
    first = await a.send(cid, "first")
    reply = await b.send(cid, "answer", reply_to_seq=first["seq"])
    assert reply["reply_to_seq"] == 1
    await b.post(
        f"/conversations/{cid}/messages",
        {"client_msg_id": "r9", "body": "x", "reply_to_seq": 99},
        expect=404,
    )
    edited = await a.call(
        "PATCH", f"/conversations/{cid}/messages/1", json={"body": "first!"}, expect=200
    )
    assert edited["message"]["body"] == "first!" and edited["message"]["edited_at"]
    await b.call("PATCH", f"/conversations/{cid}/messages/1", json={"body": "hack"}, expect=403)
    r = await a.call("PUT", f"/conversations/{cid}/messages/2/reactions/👍", expect=200)
    assert r["message"]["reactions"] == {"👍": [a.id]}
    r = await a.call("DELETE", f"/conversations/{cid}/messages/2/reactions/👍", expect=200)
    assert r["message"]["reactions"] == {}
    await b.call("DELETE", f"/conversations/{cid}/messages/1", expect=403)
    gone = await a.call("DELETE", f"/conversations/{cid}/messages/1", expect=200)  # owner
    assert gone["message"]["deleted"] is True and gone["message"]["body"] == ""
    await a.call("DELETE", f"/conversations/{cid}/messages/2", expect=200)  # owner recalls b's
    history = await b.get(f"/conversations/{cid}/messages")
    assert [(m["seq"], m["deleted"]) for m in history["messages"]] == [(1, True), (2, True)]


async def test_history_pages(world: World) -> None:
    admin = await world.admin()
    cid = (await admin.post("/conversations", {"kind": "channel", "name": "log"}, expect=201))[
        "conversation"
    ]["id"]
    for i in range(1, 26):
        await admin.send(cid, f"m{i}")
    page = await admin.get(f"/conversations/{cid}/messages", params={"limit": 10})
    assert [m["seq"] for m in page["messages"]] == list(range(16, 26)) and page["has_more"]
    page = await admin.get(f"/conversations/{cid}/messages", params={"limit": 10, "before_seq": 16})
    assert [m["seq"] for m in page["messages"]] == list(range(6, 16))
    page = await admin.get(f"/conversations/{cid}/messages", params={"limit": 10, "before_seq": 6})
    assert [m["seq"] for m in page["messages"]] == list(range(1, 6)) and not page["has_more"]
    page = await admin.get(f"/conversations/{cid}/messages", params={"after_seq": 20})
    assert [m["seq"] for m in page["messages"]] == list(range(21, 26))


async def test_bad_input_gets_the_error_shape_and_writes_nothing(
    server: AppServer, world: World
) -> None:
    admin = await world.admin()
    other = await make_user(admin, "other")
    cid = (await admin.post("/conversations", {"kind": "group", "name": "G"}, expect=201))[
        "conversation"
    ]["id"]
    base = f"/conversations/{cid}/messages"
    http = admin.http
    assert_error(
        await http.post(base, json={"client_msg_id": "a", "body": ""}), 400, "invalid_body"
    )
    assert_error(
        await http.post(base, json={"client_msg_id": "a", "body": "  \n "}), 400, "invalid_body"
    )
    big = "字" * 6000  # 18,000 bytes of UTF-8: over the 16 KiB default
    assert_error(await http.post(base, json={"client_msg_id": "a", "body": big}), 413, "too_large")
    assert_error(
        await http.post(base, json={"client_msg_id": 5, "body": "x"}), 400, "invalid_request"
    )
    assert_error(await http.post(base, json={"body": "x"}), 400, "invalid_request")
    assert_error(
        await http.post(base, content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "invalid_request",
    )
    assert_error(await http.post(base, json=["a"]), 400, "invalid_request")
    assert_error(
        await http.post("/conversations/nope/messages", json={"client_msg_id": "a", "body": "x"}),
        404,
        "not_found",
    )
    assert_error(
        await other.http.post(base, json={"client_msg_id": "a", "body": "x"}), 404, "not_found"
    )
    assert_error(await http.post("/conversations", json={"kind": "room"}), 400, "invalid_request")
    assert_error(await http.get("/sync", params={"since": "abc"}), 400, "invalid_position")
    assert_error(await http.get(base, params={"limit": "many"}), 400, "invalid_request")
    async with http_client(server.url + "/api/v1") as anon:
        assert_error(await anon.get("/users/me"), 401, "unauthenticated")
        assert_error(
            await anon.get("/users/me", headers={"authorization": "Bearer forged"}),
            401,
            "unauthenticated",
        )
        assert_error(
            await anon.get("/users/me", headers={"authorization": "Basic eA=="}),
            401,
            "unauthenticated",
        )
    assert_error(
        await http.post("/users", json={"username": "bad name!", "password": "plum-orbit-1"}),
        400,
        "invalid_request",
    )
    assert_error(
        await http.post("/users", json={"username": "other", "password": "plum-orbit-1"}),
        409,
        "conflict",
    )
    assert_error(
        await http.post("/users", json={"username": "shorty", "password": "short"}),
        400,
        "invalid_request",
    )
    # Nothing of the above was written.
    assert (await admin.get(base))["messages"] == []
    [conv] = (await admin.get("/conversations"))["conversations"]
    assert conv["last_seq"] == 0
    users = (await admin.get("/users"))["users"]
    assert sorted(u["username"] for u in users) == ["admin", "other"]


async def test_retry_with_another_body_returns_the_original(
    server: AppServer, world: World
) -> None:
    admin = await world.admin()
    cid = (await admin.post("/conversations", {"kind": "group", "name": "G"}, expect=201))[
        "conversation"
    ]["id"]
    first = await admin.post(
        f"/conversations/{cid}/messages", {"client_msg_id": "r1", "body": "original"}, expect=201
    )
    for body in ("", "changed", "x" * 20000):
        again = await admin.post(
            f"/conversations/{cid}/messages", {"client_msg_id": "r1", "body": body}, expect=200
        )
        assert again["message"] == first["message"]
    # NUL characters are refused at the edge, in bodies, URLs and frames alike.
    r = await admin.http.post(
        f"/conversations/{cid}/messages", json={"client_msg_id": "n1", "body": "a\x00b"}
    )
    assert_error(r, 400, "invalid_request")
    assert_error(await admin.http.get("/users", params={"query": "a\x00"}), 400, "invalid_request")
    assert_error(await admin.http.get("/conversations/a%00b"), 400, "invalid_request")
    ws = await Ws.connect(server.ws_url, admin.token or "")
    reply = await ws.request(
        {"type": "send", "conversation_id": cid, "client_msg_id": "n2", "body": "a\x00b"}
    )
    assert reply["error"]["code"] == "invalid_request"
    await ws.send_raw('{"type": "ping", "ref": 1.5}')
    assert (await ws.recv_type("ack"))["ref"] == 1.5
