"""Usage statistics (issue 19): messages and active users per UTC day, storage; admins
only, the window capped by usage_stats_max_days. Both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import World


async def test_messages_and_active_users_per_day(world: World) -> None:
    admin = await world.admin()
    a, b = await world.users("usagea", "usageb")
    cid = await world.conversation(a, b)
    before = await admin.get("/admin/stats/usage", params={"days": 3})
    for api, body in ((a, "one"), (a, "two"), (b, "three")):
        await api.send(cid, body)
    after = await admin.get("/admin/stats/usage", params={"days": 3})

    today = datetime.now(UTC).date()
    assert [d["day"] for d in after["days"]] == [
        (today - timedelta(days=n)).isoformat() for n in (2, 1, 0)
    ]
    last, first = after["days"][-1], before["days"][-1]
    assert last["messages"] - first["messages"] == 3
    assert last["active_users"] - first["active_users"] == 2
    assert after["storage"]["database_bytes"] > 0
    assert after["storage"]["blob_bytes"] == 0
    default = await admin.get("/admin/stats/usage")
    assert len(default["days"]) == 30


async def test_usage_is_for_admins_and_bounded(world: World) -> None:
    admin = await world.admin()
    member = await world.user("usagemember")
    answer = await member.get("/admin/stats/usage", expect=403)
    assert answer["error"]["code"] == "forbidden"
    for days in ("0", "91", "-1", "many", "1e3", str(2**70)):
        answer = await admin.get("/admin/stats/usage", params={"days": days}, expect=400)
        assert answer["error"]["code"] == "invalid_request", (days, answer)
    assert len((await admin.get("/admin/stats/usage", params={"days": 90}))["days"]) == 90
