"""REST: integers the store cannot hold (its columns are 64-bit signed) in a path, a
query or a body are refused at the edge with `400 invalid_request`, never a 500; a
`since` out of that range is a position this server never gave out (`400
invalid_position`). On both backends (tests/conftest.py `server`)."""

from __future__ import annotations

import pytest

from tests.conftest import AppServer, World

HOSTILE = [str(2**63), str(2**64), str(-(2**63) - 1), "9" * 40, "-" + "9" * 40]


async def test_integers_out_of_range_in_paths_and_queries_are_invalid_requests(
    server: AppServer, world: World
) -> None:
    admin = await world.admin()
    cid = await world.conversation(admin, kind="channel", name="ints")
    await admin.send(cid, "hello")
    for value in HOSTILE:
        calls = [
            ("GET", f"/conversations/{cid}/messages", {"params": {"before_seq": value}}),
            ("GET", f"/conversations/{cid}/messages", {"params": {"after_seq": value}}),
            ("GET", f"/conversations/{cid}/messages", {"params": {"limit": value}}),
            ("GET", "/users", {"params": {"limit": value}}),
            ("GET", "/sync", {"params": {"limit": value}}),
            ("PATCH", f"/conversations/{cid}/messages/{value}", {"json": {"body": "x"}}),
            ("DELETE", f"/conversations/{cid}/messages/{value}", {}),
            ("PUT", f"/conversations/{cid}/messages/{value}/reactions/%F0%9F%91%8D", {}),
            ("DELETE", f"/conversations/{cid}/messages/{value}/reactions/%F0%9F%91%8D", {}),
            ("GET", f"/conversations/{cid}/messages", {"params": {"thread_root_seq": value}}),
            ("GET", f"/conversations/{cid}/threads", {"params": {"limit": value}}),
            ("GET", f"/conversations/{cid}/threads", {"params": {"cursor": value}}),
            ("GET", f"/conversations/{cid}/threads/{value}", {}),
            ("PUT", f"/conversations/{cid}/threads/{value}/follow", {}),
            ("DELETE", f"/conversations/{cid}/threads/{value}/follow", {}),
            ("POST", f"/conversations/{cid}/threads/{value}/read", {"json": {"seq": 1}}),
            # the timeline (issue 17): saved messages, forwarding
            ("PUT", f"/conversations/{cid}/messages/{value}/saved", {}),
            ("DELETE", f"/conversations/{cid}/messages/{value}/saved", {}),
            ("GET", "/saved", {"params": {"cursor": value}}),
            ("GET", "/saved", {"params": {"limit": value}}),
            (
                "POST",
                f"/conversations/{cid}/messages/{value}/forward",
                {"json": {"conversation_id": cid, "client_msg_id": "f1"}},
            ),
            ("GET", f"/conversations/{cid}/messages/{value}/forwarded-from", {}),
        ]
        for method, path, kw in calls:
            r = await admin.http.request(method, path, **kw)
            assert r.status_code == 400, (method, path, kw, r.status_code, r.text)
            assert r.json()["error"]["code"] == "invalid_request", r.text
            assert "Traceback" not in r.text


@pytest.mark.parametrize("value", [2**63, 2**64, -(2**63) - 1, 10**40])
async def test_integers_out_of_range_in_bodies_are_invalid_requests(
    server: AppServer, world: World, value: int
) -> None:
    admin = await world.admin()
    cid = await world.conversation(admin, kind="channel", name="ints")
    for path, body in [
        (f"/conversations/{cid}/read", f'{{"seq": {value}}}'),
        (
            f"/conversations/{cid}/messages",
            f'{{"client_msg_id": "m1", "body": "x", "reply_to_seq": {value}}}',
        ),
        (
            f"/conversations/{cid}/messages",
            f'{{"client_msg_id": "m2", "body": "x", "thread_root_seq": {value}}}',
        ),
        (f"/conversations/{cid}/threads/1/read", f'{{"seq": {value}}}'),
        (f"/conversations/{cid}/unread", f'{{"from_seq": {value}}}'),
    ]:
        r = await admin.http.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "invalid_request", r.text


async def test_a_since_out_of_range_is_an_invalid_position(server: AppServer, world: World) -> None:
    admin = await world.admin()
    for since in (str(2**63), "9" * 19, str(2**64)):
        r = await admin.http.get("/sync", params={"since": since})
        assert r.status_code == 400, (since, r.status_code, r.text)
        assert r.json()["error"]["code"] == "invalid_position", r.text
    # the largest position the store holds is merely ahead of the stream
    r = await admin.http.get("/sync", params={"since": str(2**63 - 1)})
    assert r.status_code in (200, 400), r.text
    assert (await admin.get("/users/me"))["user"]["username"] == "admin"
