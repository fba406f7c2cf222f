"""The audit log viewer's REST (issue 19): filters (action, actor, target, time range)
and the export (JSON lines, CSV) with its size cap. Both backends."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import orjson

from tests.conftest import AppServer, MakeServer, World
from tests.helpers import http_client, login


async def test_filters_and_exports(world: World) -> None:
    admin = await world.admin()
    a, b = await world.users("audita", "auditb")
    dep = (await admin.post("/departments", {"name": "Audited"}, expect=201))["department"]
    await admin.call("PUT", f"/departments/{dep['id']}/members/{a.id}", expect=204)
    await admin.call("PUT", f"/departments/{dep['id']}/members/{b.id}", expect=204)

    created = await admin.get("/audit", params={"action": "user_created"})
    assert {e["action"] for e in created["entries"]} == {"user_created"}
    assert len(created["entries"]) == 3  # the first admin, then a and b
    mine = await admin.get("/audit", params={"target_id": dep["id"]})
    assert [e["action"] for e in mine["entries"]] == [
        "department_created",
        "department_member_changed",
        "department_member_changed",
    ]
    by = await admin.get("/audit", params={"actor_id": a.id})
    assert all(e["actor_id"] == a.id for e in by["entries"])
    now = datetime.now(UTC)
    later = await admin.get("/audit", params={"since": (now + timedelta(hours=1)).isoformat()})
    assert later["entries"] == []
    earlier = await admin.get("/audit", params={"until": (now - timedelta(days=1)).isoformat()})
    assert earlier["entries"] == []

    async with http_client(admin.base_url, headers={"authorization": f"Bearer {admin.token}"}) as c:
        r = await c.get("/api/v1/audit/export", params={"target_id": dep["id"]})
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        assert "attachment" in r.headers["content-disposition"]
        assert r.headers["x-tidings-truncated"] == "false"
        lines = [orjson.loads(x) for x in r.content.splitlines()]
        assert [x["action"] for x in lines] == [e["action"] for e in mine["entries"]]
        assert [x["hash"] for x in lines] == [e["hash"] for e in mine["entries"]]
        r = await c.get(
            "/api/v1/audit/export", params={"format": "csv", "action": "department_member_changed"}
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [orjson.loads(x["details"])["user_id"] for x in rows] == [a.id, b.id]

        for params in (
            {"format": "xml"},
            {"since": "yesterday"},
            {"since": "2026-01-01T00:00:00"},  # no time zone
            {"action": "x" * 65},
            {"actor_id": "x" * 65},
        ):
            r = await c.get("/api/v1/audit/export", params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.json()["error"]["code"] == "invalid_request"
    r = await a.get("/audit/export", expect=403)
    assert r["error"]["code"] == "forbidden"


async def test_the_export_stops_at_its_cap(make_server: MakeServer) -> None:
    server: AppServer
    async with make_server(audit_export_max_rows=2) as server:
        admin = await login(server.url, server.admin_username, server.admin_password)
        for n in range(3):
            await admin.post("/departments", {"name": f"capped {n}"}, expect=201)
        headers = {"authorization": f"Bearer {admin.token}"}
        async with http_client(server.url, headers=headers) as c:
            r = await c.get("/api/v1/audit/export", params={"action": "department_created"})
        await admin.close()
    assert r.headers["x-tidings-truncated"] == "true"
    names = [orjson.loads(x)["details"]["name"] for x in r.content.splitlines()]
    assert names == ["capped 0", "capped 1"]
