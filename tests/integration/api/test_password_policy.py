"""The password policy wherever a password is set over the API (issue 13, item 12): an
admin creating a user or resetting a password, a user changing theirs. A refusal is
`400 invalid_request` with `details.reason`, and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AppServer, MakeServer
from tests.helpers import Api, login, make_user

PASSWORD = "plum-orbit-123"
WEAK = [
    ("12345678", "too_common"),
    (" " * 8, "blank"),
    ("password1", "too_common"),
    ("alice2026", "contains_username"),
    ("Alice", "too_short"),
]
STRONG = "correct horse battery staple"


async def refusal(api: Api, path: str, body: dict[str, str]) -> dict[str, Any]:
    r = await api.http.post(path, json=body)
    assert r.status_code == 400, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == "invalid_request" and error["details"]["field"] == "password"
    return error


@pytest.mark.parametrize(("password", "reason"), WEAK)
async def test_an_admin_cannot_create_a_user_with_a_weak_password(
    server: AppServer, password: str, reason: str
) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    error = await refusal(admin, "/users", {"username": "alice", "password": password})
    assert error["details"]["reason"] == reason
    assert (await admin.get("/users?query=alice"))["users"] == []
    await admin.post("/users", {"username": "alice", "password": STRONG}, expect=201)
    await admin.close()


async def test_the_estimate_explains_itself(server: AppServer) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    error = await refusal(admin, "/users", {"username": "bob", "password": "password1"})
    details = error["details"]
    assert (details["reason"], details["score"], details["min_score"]) == ("too_common", 0, 3)
    assert "common" in details["feedback"]["warning"]
    assert isinstance(details["feedback"]["suggestions"], list)
    # the display name is a guess too
    body = {"username": "zf", "display_name": "Zebulon Fairweather", "password": "fairweather2026"}
    assert (await refusal(admin, "/users", body))["details"]["reason"] == "too_weak"
    await admin.close()


async def test_changing_and_resetting_a_password_follow_the_policy(server: AppServer) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    alice = await make_user(admin, "alice", password=PASSWORD)
    for password, reason in WEAK:
        body = {"current_password": PASSWORD, "new_password": password}
        error = await refusal(alice, "/auth/password", body)
        assert error["details"]["reason"] == reason
        error = await refusal(admin, f"/users/{alice.id}/password", {"password": password})
        assert error["details"]["reason"] == reason
    await alice.get("/users/me")  # nothing changed: her session lives, her password works
    await login(server.url, "alice", PASSWORD)
    body = {"current_password": PASSWORD, "new_password": STRONG}
    await alice.post("/auth/password", body, expect=204)
    await admin.post(f"/users/{alice.id}/password", {"password": "amber-quarry-77"}, expect=204)
    await login(server.url, "alice", "amber-quarry-77")
    await admin.close()
    await alice.close()


async def test_the_minimums_are_settings(make_server: MakeServer) -> None:
    async with make_server(password_min_length=16, password_min_score=4) as server:
        admin = await login(server.url, "admin", server.admin_password)
        error = await refusal(admin, "/users", {"username": "cy", "password": "plum-orbit-12"})
        assert error["details"] == {"field": "password", "reason": "too_short", "min_length": 16}
        await admin.post("/users", {"username": "cy", "password": STRONG}, expect=201)
        await admin.close()
    async with make_server(password_min_score=0) as server:  # length (and blank) only
        admin = await login(server.url, "admin", server.admin_password)
        await admin.post("/users", {"username": "dee", "password": "12345678"}, expect=201)
        await refusal(admin, "/users", {"username": "eve", "password": " " * 8})
        await admin.close()
