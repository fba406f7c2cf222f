"""Departments (issue 19): rename, move (no cycles), delete (empty ones only) and the
members list; admins only, audited. Both backends."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.helpers import Api


async def dept(admin: Api, name: str, parent_id: str | None = None) -> str:
    made = await admin.post("/departments", {"name": name, "parent_id": parent_id}, expect=201)
    return str(made["department"]["id"])


async def patch(admin: Api, did: str, body: dict[str, Any], expect: int = 200) -> Any:
    return await admin.call("PATCH", f"/departments/{did}", json=body, expect=expect)


async def tree(admin: Api) -> dict[str, tuple[str, str | None]]:
    deps = (await admin.get("/departments"))["departments"]
    return {d["id"]: (d["name"], d["parent_id"]) for d in deps}


async def test_rename_move_delete_and_members(world: World) -> None:
    admin = await world.admin()
    eng = await dept(admin, "Engineering")
    web = await dept(admin, "Web", eng)
    ops = await dept(admin, "Ops")
    alice = await world.user("deptalice")

    renamed = (await patch(admin, web, {"name": "Frontend"}))["department"]
    assert renamed == {"id": web, "name": "Frontend", "parent_id": eng}
    moved = (await patch(admin, web, {"parent_id": ops}))["department"]
    assert moved["parent_id"] == ops
    top = (await patch(admin, web, {"parent_id": None}))["department"]
    assert top["parent_id"] is None
    assert (await tree(admin))[web] == ("Frontend", None)

    # no cycles: not under itself, not under its own sub-department
    await patch(admin, web, {"parent_id": eng})
    for parent in (eng, web):
        answer = await patch(admin, eng, {"parent_id": parent}, expect=400)
        assert answer["error"]["code"] == "invalid_operation", answer
    # names stay unique under one parent
    await dept(admin, "Backend", eng)
    answer = await patch(admin, web, {"name": "Backend"}, expect=409)
    assert answer["error"]["code"] == "conflict"
    await dept(admin, "Frontend", ops)
    answer = await patch(admin, web, {"parent_id": ops}, expect=409)
    assert answer["error"]["code"] == "conflict"

    # members of this department only
    await admin.call("PUT", f"/departments/{web}/members/{alice.id}", expect=204)
    members = (await admin.get(f"/departments/{web}/members"))["users"]
    assert [u["username"] for u in members] == ["deptalice"]
    assert (await admin.get(f"/departments/{eng}/members"))["users"] == []

    # delete: refused while it has sub-departments or members
    answer = await admin.call("DELETE", f"/departments/{eng}", expect=409)
    assert answer["error"]["code"] == "conflict" and "sub-departments" in answer["error"]["message"]
    answer = await admin.call("DELETE", f"/departments/{web}", expect=409)
    assert "members" in answer["error"]["message"]
    await admin.call("DELETE", f"/departments/{web}/members/{alice.id}", expect=204)
    await admin.call("DELETE", f"/departments/{web}", expect=204)
    assert web not in await tree(admin)
    assert (await admin.call("DELETE", f"/departments/{web}", expect=404))["error"][
        "code"
    ] == "not_found"

    entries = (await admin.get("/audit", params={"limit": 500}))["entries"]
    actions = [e["action"] for e in entries if e["target_id"] == web]
    assert actions.count("department_renamed") == 1
    assert actions.count("department_moved") == 3
    assert actions[-1] == "department_deleted"


async def test_hostile_department_changes(world: World) -> None:
    admin = await world.admin()
    member = await world.user("deptmember")
    did = await dept(admin, "Hostile")
    for body in (
        {},
        {"name": "A", "parent_id": None},
        {"name": ""},
        {"name": "x" * 201},
        {"name": 5},
        {"parent_id": 7},
        {"parent_id": "p" * 65},
        {"extra": 1},
    ):
        answer = await patch(admin, did, body, expect=400)
        assert answer["error"]["code"] == "invalid_request", (body, answer)
    answer = await patch(admin, did, {"name": "x" * 81}, expect=400)  # over 80 characters
    assert answer["error"]["code"] == "invalid_request"
    answer = await patch(admin, did, {"parent_id": "nosuchdept"}, expect=404)
    assert answer["error"]["code"] == "not_found"
    answer = await patch(admin, "nosuchdept", {"name": "N"}, expect=404)
    assert answer["error"]["code"] == "not_found"
    assert (await admin.get("/departments/nosuchdept/members", expect=404))["error"][
        "code"
    ] == "not_found"
    # members of the organization do not manage departments
    assert (await patch(member, did, {"name": "Mine"}, expect=403))["error"]["code"] == "forbidden"
    answer = await member.call("DELETE", f"/departments/{did}", expect=403)
    assert answer["error"]["code"] == "forbidden"
    answer = await member.get(f"/departments/{did}/members", expect=403)
    assert answer["error"]["code"] == "forbidden"
    assert (await tree(admin))[did] == ("Hostile", None)
