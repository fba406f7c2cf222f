"""The limits admins change at run time (GET/PATCH /admin/config, group "limits";
services/config.py, Deps.put_limits) on both backends: the next request obeys a new
message size, edit rate and login lockout, without a restart; a limit the configuration
file sets is locked; bad values are refused and write nothing; every change is audited;
another node on the same database picks a change up."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, MakeServer
from tests.helpers import USER_PASSWORD, Api, http_client, login, make_user
from tidings.app.container import Container
from tidings.app.settings import Settings
from tidings.services.passwords import Passwords


@pytest.fixture
def container_settings() -> dict[str, object]:
    return {"config_poll_seconds": 0.1}


async def send(api: Api, cid: str, body: str) -> Any:
    return await api.post(
        f"/conversations/{cid}/messages",
        {"client_msg_id": uuid.uuid4().hex, "body": body},
        expect=None,
    )


async def sign_in(base_url: str, username: str, password: str) -> int:
    async with http_client(base_url) as c:
        r = await c.post("/api/v1/auth/login", json={"username": username, "password": password})
    return r.status_code


async def test_changed_limits_are_obeyed_at_the_next_request(make_server: MakeServer) -> None:
    async with make_server() as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        rows = {s["name"]: s for s in (await admin.get("/admin/config"))["settings"]}
        for name in (
            "max_message_bytes",
            "edit_window_seconds",
            "history_page_max",
            "rate_send_per_user",
            "rate_edit_per_user",
            "login_failures_before_lockout",
            "password_min_length",
        ):
            assert rows[name]["group"] == "limits" and rows[name]["locked"] is False, name
        assert "config_max_value_chars" not in rows and "database_url" not in rows
        assert rows["max_message_bytes"]["value"] == rows["max_message_bytes"]["default"]

        ann = await make_user(admin, "ann")
        body = {"kind": "group", "name": "g", "member_ids": [ann.id]}
        cid = (await admin.post("/conversations", body, expect=201))["conversation"]["id"]
        assert "message" in await send(admin, cid, "x" * 100)

        changed = await admin.call(
            "PATCH",
            "/admin/config",
            json={
                "values": {
                    "max_message_bytes": 50,
                    "rate_edit_per_user": 2,
                    "login_failures_before_lockout": 2,
                }
            },
            expect=200,
        )
        assert {s["name"]: s["value"] for s in changed["settings"]}["max_message_bytes"] == 50
        too_big = await send(admin, cid, "x" * 100)
        assert too_big["error"]["code"] == "too_large"
        assert too_big["error"]["details"]["limit"] == 50
        seq = (await send(admin, cid, "x" * 50))["message"]["seq"]

        edit = f"/conversations/{cid}/messages/{seq}"
        for n in range(2):
            await admin.call("PATCH", edit, json={"body": f"edit {n}"}, expect=200)
        refused = await admin.call("PATCH", edit, json={"body": "once more"}, expect=429)
        assert refused["error"]["code"] == "rate_limited"

        assert await sign_in(server.url, "ann", "wrong-1") == 401
        assert await sign_in(server.url, "ann", "wrong-2") == 401
        assert await sign_in(server.url, "ann", USER_PASSWORD) == 429  # locked after 2

        # back to the default: the old limit again
        await admin.call(
            "PATCH", "/admin/config", json={"values": {"max_message_bytes": None}}, expect=200
        )
        assert "message" in await send(admin, cid, "x" * 100)

        entries = (await admin.get("/audit?limit=500"))["entries"]
        audited = [e for e in entries if e["action"] == "settings_changed"]
        assert len(audited) == 2
        first = next(e for e in audited if "rate_edit_per_user" in e["details"]["settings"])
        first = first["details"]
        assert first["settings"] == [
            "login_failures_before_lockout",
            "max_message_bytes",
            "rate_edit_per_user",
        ]
        assert first["old"]["max_message_bytes"] == rows["max_message_bytes"]["default"]
        assert first["new"] == {
            "login_failures_before_lockout": 2,
            "max_message_bytes": 50,
            "rate_edit_per_user": 2,
        }
        await ann.close()
        await admin.close()


async def test_locked_and_bad_limits_are_refused_and_nothing_is_written(
    make_server: MakeServer,
) -> None:
    async with make_server(max_message_bytes=1000) as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        rows = {s["name"]: s for s in (await admin.get("/admin/config"))["settings"]}
        assert rows["max_message_bytes"] == {
            **rows["max_message_bytes"],
            "locked": True,
            "value": 1000,
        }

        async def refused(values: Any, code: str = "invalid_request") -> dict[str, Any]:
            got = await admin.call("PATCH", "/admin/config", json={"values": values})
            assert got["error"]["code"] == code, got
            assert isinstance(got["error"]["message"], str)
            return got

        locked = await refused({"max_message_bytes": 10}, "invalid_operation")
        assert "configuration" in locked["error"]["message"]
        zero = await refused({"history_page_max": 0})
        assert zero["error"]["details"]["field"] == "values.history_page_max"
        await refused({"password_min_length": 5000})  # at most 1024
        await refused({"rate_send_per_user": -1})
        await refused({"rate_send_per_user": "lots"})
        await refused({"edit_window_seconds": {"a": "b"}})
        await refused({"config_max_value_chars": 10})  # bounds this form: file only
        after = {s["name"]: s for s in (await admin.get("/admin/config"))["settings"]}
        assert after == rows
        entries = (await admin.get("/audit?limit=500"))["entries"]
        assert not [e for e in entries if e["action"] == "settings_changed"]
        member = await make_user(admin, "mia")
        await member.call(
            "PATCH", "/admin/config", json={"values": {"history_page_max": 5}}, expect=403
        )
        await member.close()
        await admin.close()


async def test_another_node_obeys_the_new_limit(container: Container) -> None:
    c = container
    await c.start()
    other = Container(
        Settings.model_validate({k: getattr(c.settings, k) for k in c.settings.model_fields_set}),
        clock=c.deps.clock,
        passwords=Passwords(time_cost=1, memory_kib=8, parallelism=1),
    )
    await other.start()
    try:
        await c.services.config.update(None, {"history_page_max": 7, "rate_send_per_user": 3})
        assert c.deps.limits.history_page_max == 7  # at once here
        for _ in range(100):
            if other.deps.limits.history_page_max == 7:
                break
            await asyncio.sleep(0.05)
        assert other.deps.limits.history_page_max == 7  # within config_poll_seconds there
        assert other.deps.security.rate_send_per_user == 3
        assert other.deps.limits.edit_window_seconds == 60  # the file's, untouched
    finally:
        await other.close()


async def test_changed_file_limits_are_obeyed_at_the_next_upload(make_server: MakeServer) -> None:
    """The upload limits (issue 15) are run-time limits too: a smaller max_upload_bytes,
    a newly blocked type and a shorter link expiry hold from the next request on."""
    async with make_server() as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        rows = {s["name"]: s for s in (await admin.get("/admin/config"))["settings"]}
        for name in ("max_upload_bytes", "upload_quota_bytes", "upload_blocked_types",
                     "upload_allowed_types", "file_link_ttl_seconds",
                     "max_attachments_per_message"):
            assert rows[name]["group"] == "limits" and rows[name]["locked"] is False, name

        async def upload(data: bytes, name: str, content_type: str) -> Any:
            r = await admin.http.post("/files", files={"file": (name, data, content_type)})
            return r.status_code, r.json()

        status, body = await upload(b"a" * 5000, "a.txt", "text/plain")
        assert status == 201, body
        file_id = body["file"]["id"]
        await admin.call(
            "PATCH",
            "/admin/config",
            json={"values": {"max_upload_bytes": 4096, "upload_blocked_types": "text/csv"}},
            expect=200,
        )
        status, body = await upload(b"b" * 5000, "b.txt", "text/plain")
        assert status == 413 and body["error"]["code"] == "too_large", body
        assert body["error"]["details"]["limit"] == 4096
        status, body = await upload(b"name,age\nann,3\n", "c.csv", "text/csv")
        assert status == 415, body
        status, body = await upload(b"c" * 4000, "c.txt", "text/plain")
        assert status == 201, body

        await admin.call(
            "PATCH", "/admin/config", json={"values": {"file_link_ttl_seconds": 60}}, expect=200
        )
        link = await admin.post(f"/files/{file_id}/link", {}, expect=200)
        expires = datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
        # rounded up to the minute: at most 60 s + 60 s away, not the default hour
        assert (expires - server.container.deps.clock.now()).total_seconds() <= 120
