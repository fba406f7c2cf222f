"""Incoming webhooks (services/integrations.py, docs/integrations.md): a secret URL that
posts into one conversation as its integration user. Over REST against the application
in-process, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import AppServer, MakeServer, World
from tests.helpers import Api, http_client, login, make_user
from tidings.core.integrations import secret_hash


async def hook_of(owner: Api, cid: str, name: str = "Alerts") -> dict[str, Any]:
    made = await owner.post(f"/conversations/{cid}/incoming-webhooks", {"name": name}, expect=201)
    hook: dict[str, Any] = made["incoming_webhook"]
    return hook


async def post(url: str, **kw: Any) -> httpx.Response:
    """POST to a hook URL as a script would: no token."""
    parts = urlsplit(url)
    async with http_client(f"{parts.scheme}://{parts.netloc}") as c:
        return await c.post(parts.path, **kw)


async def test_a_slack_style_post_arrives_in_history_and_on_the_stream(world: World) -> None:
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    hook = await hook_of(ann, cid, "Deploy bot")
    assert hook["url"].startswith(world.server.url + "/api/v1/hooks/" + hook["id"] + "/")
    assert hook["conversation_id"] == cid and hook["posts"] == 0
    ws = await world.ws(ben)

    # exactly what a Slack script sends
    r = await post(
        hook["url"],
        content=json.dumps({"text": "build <https://ci.example/1|#1> passed &amp; deployed"}),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    sent = r.json()["message"]
    assert sent["body"] == "build [#1](https://ci.example/1) passed & deployed"
    assert sent["sender_id"] == hook["user_id"]

    event = (await ws.event("message"))["event"]
    assert event["message"]["seq"] == sent["seq"]
    assert event["message"]["sender_id"] == hook["user_id"]
    page = await ben.get(f"/conversations/{cid}/messages")
    assert [m["body"] for m in page["messages"]][-1] == sent["body"]
    # the sender is a bot account with the webhook's name, a member of the conversation
    sender = (await ben.get(f"/users/{hook['user_id']}"))["user"]
    assert (sender["display_name"], sender["bot"]) == ("Deploy bot", True)
    conv = (await ben.get(f"/conversations/{cid}"))["conversation"]
    assert hook["user_id"] in [m["user_id"] for m in conv["members"]]
    # the URL is shown once: a list has no URL, and counts the post
    [listed] = (await ann.get(f"/conversations/{cid}/incoming-webhooks"))["incoming_webhooks"]
    assert listed["url"] is None and listed["posts"] == 1 and listed["last_post_at"]


async def test_curl_and_slacks_form_body_both_post(world: World) -> None:
    """The curl of docs/integrations.md, against a real socket, and Slack's
    `payload=` form; blocks and attachments are reduced to text."""
    ann = await world.user("ann")
    cid = await world.conversation(ann)
    hook = await hook_of(ann, cid)
    curl = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json",
        "-d", '{"text": "Hello from curl"}', hook["url"],
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip  (the server answers in this test's event loop: never block it)
    out, _ = await asyncio.wait_for(curl.communicate(), 30)
    assert curl.returncode == 0
    assert json.loads(out)["message"]["body"] == "Hello from curl"
    blocks = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*disk* 91%"}}]}
    r = await post(hook["url"], data={"payload": json.dumps(blocks)})
    assert r.status_code == 200, r.text
    assert r.json()["message"]["body"] == "*disk* 91%"
    attachments = {"attachments": [{"fallback": "old", "title": "CPU", "text": "high"}]}
    r = await post(hook["url"], json=attachments)
    assert r.json()["message"]["body"] == "CPU\n\nhigh"
    bodies = [m["body"] for m in (await ann.get(f"/conversations/{cid}/messages"))["messages"]]
    assert bodies[-3:] == ["Hello from curl", "*disk* 91%", "CPU\n\nhigh"]


async def test_tidings_body_with_client_msg_id_posts_once(world: World) -> None:
    ann = await world.user("ann")
    cid = await world.conversation(ann)
    hook = await hook_of(ann, cid)
    body = {"body": "**once**", "client_msg_id": "deploy-42"}
    first = await post(hook["url"], json=body)
    again = await post(hook["url"], json={**body, "body": "a retry"})
    assert first.status_code == again.status_code == 200
    assert first.json()["message"] == again.json()["message"]
    messages = (await ann.get(f"/conversations/{cid}/messages"))["messages"]
    assert [m["body"] for m in messages if m["sender_id"] == hook["user_id"]] == ["**once**"]


async def test_a_rotated_secret_refuses_the_old_url(world: World) -> None:
    ann = await world.user("ann")
    cid = await world.conversation(ann)
    hook = await hook_of(ann, cid)
    assert (await post(hook["url"], json={"text": "before"})).status_code == 200
    rotated = (await ann.post(f"/incoming-webhooks/{hook['id']}/rotate"))["incoming_webhook"]
    assert rotated["url"] != hook["url"] and rotated["id"] == hook["id"]
    old = await post(hook["url"], json={"text": "old url"})
    assert old.status_code == 404 and old.json()["error"]["code"] == "not_found"
    assert (await post(rotated["url"], json={"text": "new url"})).status_code == 200
    # disabled: 404 like a wrong secret; enabled again: works
    path = f"/incoming-webhooks/{hook['id']}"
    await ann.call("PATCH", path, json={"disabled": True}, expect=200)
    assert (await post(rotated["url"], json={"text": "off"})).status_code == 404
    await ann.call("PATCH", path, json={"disabled": False}, expect=200)
    assert (await post(rotated["url"], json={"text": "on"})).status_code == 200
    # deleted: 404, and gone from the list
    await ann.call("DELETE", f"/incoming-webhooks/{hook['id']}", expect=204)
    assert (await post(rotated["url"], json={"text": "gone"})).status_code == 404
    assert (await ann.get(f"/conversations/{cid}/incoming-webhooks"))["incoming_webhooks"] == []
    bodies = [m["body"] for m in (await ann.get(f"/conversations/{cid}/messages"))["messages"]]
    assert bodies == ["before", "new url", "on"]

    admin = await world.admin()
    entries = await admin.get("/audit", params={"limit": 500})
    actions = [e["action"] for e in entries["entries"] if e["target_id"] == hook["id"]]
    for action in ("created", "rotated", "updated", "deleted"):
        assert f"incoming_webhook_{action}" in actions
    assert "incoming_webhook_posted" not in actions  # posts are counted, not audited
    # neither a secret nor its hash is in the audit log
    for url in (hook["url"], rotated["url"]):
        secret = url.rsplit("/", 1)[1]
        assert secret not in str(entries) and secret_hash(secret) not in str(entries)


async def test_only_admins_and_owners_manage_incoming_webhooks(world: World) -> None:
    ann, ben, cat = await world.users("ann", "ben", "cat")
    cid = await world.conversation(ann, ben)  # ann owns it, ben is a member
    r = await ben.call("POST", f"/conversations/{cid}/incoming-webhooks", json={"name": "x"})
    assert r is not None and r["error"]["code"] == "forbidden"
    r = await cat.call("POST", f"/conversations/{cid}/incoming-webhooks", json={"name": "x"})
    assert r is not None and r["error"]["code"] == "not_found"  # nothing told to a stranger
    hook = await hook_of(ann, cid)
    for api, code in ((ben, "forbidden"), (cat, "not_found")):
        r = await api.call("POST", f"/incoming-webhooks/{hook['id']}/rotate")
        assert r is not None and r["error"]["code"] == code
        r = await api.call("DELETE", f"/incoming-webhooks/{hook['id']}")
        assert r is not None and r["error"]["code"] == code
        r = await api.call("GET", f"/conversations/{cid}/incoming-webhooks")
        assert r is not None and r["error"]["code"] == code
    r = await ann.call("GET", "/incoming-webhooks")  # every conversation's: admins only
    assert r is not None and r["error"]["code"] == "forbidden"
    admin = await world.admin()
    assert [h["id"] for h in (await admin.get("/incoming-webhooks"))["incoming_webhooks"]] == [
        hook["id"]
    ]
    made = await hook_of(admin, cid, "By the admin")  # an admin, not a member: allowed
    assert made["conversation_id"] == cid
    # a direct conversation takes no integration
    direct = await world.conversation(ann, ben, kind="direct")
    r = await ann.call("POST", f"/conversations/{direct}/incoming-webhooks", json={"name": "x"})
    assert r is not None and r["error"]["code"] in ("invalid_operation", "forbidden")


async def test_hostile_bodies_are_refused_and_post_nothing(world: World) -> None:
    ann = await world.user("ann")
    cid = await world.conversation(ann)
    hook = await hook_of(ann, cid)
    url = hook["url"]

    async def refused(status: int, code: str, **kw: Any) -> None:
        r = await post(url, **kw)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code, r.text

    await refused(413, "too_large", content=b"x" * (70 * 1024),
                  headers={"content-type": "application/json"})  # fmt: skip
    await refused(400, "invalid_request", content=b"{not json",
                  headers={"content-type": "application/json"})  # fmt: skip
    await refused(400, "invalid_request", json=["a", "list"])
    await refused(400, "invalid_request", content=b"text=hi",
                  headers={"content-type": "text/plain"})  # fmt: skip
    await refused(400, "invalid_request", data={"text": "no payload field"})
    await refused(400, "invalid_request", json={"body": 5})
    await refused(400, "invalid_request", json={"text": "x", "client_msg_id": "y" * 65})
    await refused(400, "invalid_body", json={"text": "   "})
    await refused(400, "invalid_body", json={"blocks": [{"type": "divider"}]})
    await refused(413, "too_large", json={"text": "长" * 6000})  # 18 KB > max_message_bytes
    assert (await ann.get(f"/conversations/{cid}/messages"))["messages"] == []


async def test_a_wrong_or_overlong_secret_is_not_found(world: World) -> None:
    ann = await world.user("ann")
    cid = await world.conversation(ann)
    hook = await hook_of(ann, cid)
    base = hook["url"].rsplit("/", 1)[0]
    for secret in ("wrong", "A" * 43, "x" * 129):
        r = await post(f"{base}/{secret}", json={"text": "hi"})
        assert r.status_code in (404, 400), r.text
    r = await post(f"{world.server.url}/api/v1/hooks/nope/{'a' * 43}", json={"text": "hi"})
    assert r.status_code == 404


async def test_posts_are_rate_limited_per_webhook(make_server: MakeServer) -> None:
    async with make_server(rate_incoming_webhook_per_hook=3, rate_window_seconds=30) as server:
        admin = await login(server.url, "admin", server.admin_password)
        ann = await make_user(admin, "ann")
        cid = (await ann.post("/conversations", {"kind": "group", "name": "g", "member_ids": []},
                              expect=201))["conversation"]["id"]  # fmt: skip
        one, two = await hook_of(ann, cid), await hook_of(ann, cid, "Other")
        for i in range(3):
            assert (await post(one["url"], json={"text": f"ok {i}"})).status_code == 200
        r = await post(one["url"], json={"text": "one too many"})
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        assert (await post(two["url"], json={"text": "another hook"})).status_code == 200
        bodies = [m["body"] for m in (await ann.get(f"/conversations/{cid}/messages"))["messages"]]
        assert "one too many" not in bodies and len(bodies) == 4
        for api in (admin, ann):
            await api.close()


async def test_the_cap_on_webhooks_per_conversation(make_server: MakeServer) -> None:
    async with make_server(max_incoming_webhooks_per_conversation=2) as server:
        admin = await login(server.url, "admin", server.admin_password)
        cid = (await admin.post("/conversations", {"kind": "channel", "name": "ops",
                                "member_ids": []}, expect=201))["conversation"]["id"]  # fmt: skip
        await hook_of(admin, cid, "a")
        await hook_of(admin, cid, "b")
        r = await admin.call("POST", f"/conversations/{cid}/incoming-webhooks", json={"name": "c"})
        assert r is not None and r["error"]["code"] == "invalid_operation"
        assert r["error"]["details"]["limit"] == 2
        await admin.close()


@pytest.mark.parametrize("name", ["", "a\u202eb", "x" * 81])
async def test_bad_names_are_refused(world: World, name: str) -> None:
    ann = await world.user("ann")
    cid = await world.conversation(ann)
    r = await ann.call("POST", f"/conversations/{cid}/incoming-webhooks", json={"name": name})
    assert r is not None and r["error"]["code"] == "invalid_request"
    assert (await ann.get(f"/conversations/{cid}/incoming-webhooks"))["incoming_webhooks"] == []


async def test_the_secret_is_stored_only_as_its_hash(server: AppServer, world: World) -> None:
    ann = await world.user("ann")
    cid = await world.conversation(ann)
    hook = await hook_of(ann, cid)
    secret = hook["url"].rsplit("/", 1)[1]
    async with server.container.store.read() as tx:
        assert await tx.incoming_webhook_by_secret(hook["id"], secret) is None
        found = await tx.incoming_webhook_by_secret(hook["id"], secret_hash(secret))
    assert found is not None and found.id == hook["id"]
