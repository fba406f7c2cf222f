"""Second factor over the application in-process: enrolment (otpauth URI and PNG), login
with a code or a recovery code, replay refused, the organization's policy, an admin
reset. The server's clock is one the test holds, a second into a 30-second step: the
codes of that step and the next stay valid while it stands still (no real-time waits)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import AppServer, MakeServer
from tests.fakes import FakeClock
from tests.helpers import Ws, login, make_user
from tests.security_helpers import api_from, code_for, enrol_totp, raw_login, step_now

PASSWORD = "plum-orbit-123"
EARLY_IN_A_STEP = datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(EARLY_IN_A_STEP)


@pytest.fixture
async def server(make_server: MakeServer, clock: FakeClock) -> AsyncIterator[AppServer]:
    async with make_server(clock=clock) as s:
        yield s


async def test_enrol_then_login_needs_the_code(server: AppServer, clock: FakeClock) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    alice = await make_user(admin, "alice")
    assert (await alice.get("/auth/totp")) == {"enabled": False, "recovery_codes_left": 0}

    setup = await alice.post("/auth/totp/setup", {"password": PASSWORD})
    uri = urlparse(setup["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert parse_qs(uri.query)["secret"] == [setup["secret"]]
    assert parse_qs(uri.query)["issuer"] == ["Tidings"]
    assert setup["qr_png"].startswith("data:image/png;base64,")
    png = base64.b64decode(setup["qr_png"].split(",", 1)[1])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 200

    step = step_now(clock)
    # not enabled until confirmed: a wrong first code is refused
    wrong = await alice.call(
        "POST", "/auth/totp/enable", json={"password": PASSWORD, "code": "000000"}
    )
    assert wrong["error"]["code"] == "invalid_totp"
    r = await raw_login(server.url, "alice", PASSWORD)
    assert r.status_code == 200  # still no second factor

    secret = setup["secret"]
    enabled = await alice.post(
        "/auth/totp/enable", {"password": PASSWORD, "code": code_for(secret, step - 1)}
    )
    codes = enabled["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await alice.get("/auth/totp")) == {"enabled": True, "recovery_codes_left": 10}
    again = await alice.call("POST", "/auth/totp/setup", json={"password": PASSWORD})
    assert again["error"]["code"] == "conflict"

    # no code: totp_required (the web client shows the code field); wrong: invalid_totp
    r = await raw_login(server.url, "alice", PASSWORD)
    assert r.status_code == 401 and r.json()["error"]["code"] == "totp_required"
    r = await raw_login(server.url, "alice", PASSWORD, totp="123456")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_totp"
    # a wrong password with a code says nothing about the code
    r = await raw_login(server.url, "alice", "wrong-password", totp=code_for(secret, step))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"

    good = code_for(secret, step)
    r = await raw_login(server.url, "alice", PASSWORD, totp=good)
    assert r.status_code == 200, r.text
    phone = api_from(server.url, r)
    assert (await phone.get("/users/me"))["user"]["username"] == "alice"
    # the same code again is a replay
    r = await raw_login(server.url, "alice", PASSWORD, totp=good)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_totp"

    # a recovery code works once (any case, with or without the dash)
    r = await raw_login(server.url, "alice", PASSWORD, totp=codes[0].upper())
    assert r.status_code == 200, r.text
    r = await raw_login(server.url, "alice", PASSWORD, totp=codes[0])
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_totp"
    r = await raw_login(server.url, "alice", PASSWORD, totp=codes[1].replace("-", ""))
    assert r.status_code == 200, r.text
    assert (await alice.get("/auth/totp"))["recovery_codes_left"] == 8

    # new recovery codes need the password and a current code; the old ones stop working
    fresh = await alice.post(
        "/auth/totp/recovery-codes", {"password": PASSWORD, "code": code_for(secret, step + 1)}
    )
    assert len(fresh["recovery_codes"]) == 10
    r = await raw_login(server.url, "alice", PASSWORD, totp=codes[2])
    assert r.status_code == 401

    # disabling needs the password and a code
    bad = await alice.call(
        "POST", "/auth/totp/disable", json={"password": "nope-nope", "code": codes[3]}
    )
    assert bad["error"]["code"] == "invalid_credentials"
    await alice.post(
        "/auth/totp/disable",
        {"password": PASSWORD, "code": fresh["recovery_codes"][0]},
        expect=204,
    )
    r = await raw_login(server.url, "alice", PASSWORD)
    assert r.status_code == 200
    for api in (admin, alice, phone):
        await api.close()


async def test_policy_makes_members_enrol_first(server: AppServer, clock: FakeClock) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    bob = await make_user(admin, "bob")
    carol = await make_user(admin, "carol", role="admin")

    # only admins may change it; everyone may read it
    denied = await bob.call("PATCH", "/settings", json={"second_factor_policy": "everyone"})
    assert denied["error"]["code"] == "forbidden"
    assert (await bob.get("/settings"))["settings"] == {"second_factor_policy": "none"}
    await admin.call("PATCH", "/settings", json={"second_factor_policy": "admins"}, expect=200)

    # carol (an admin without a second factor) is now restricted, even on her old session
    r = await carol.call("GET", "/conversations")
    assert r["error"]["code"] == "second_factor_required"
    # ... and so is the owner who set the policy; bob (a member) is not
    r = await admin.call("GET", "/conversations")
    assert r["error"]["code"] == "second_factor_required"
    await bob.get("/conversations")

    # a restricted login says so, may read itself, enrol, log out; nothing else
    r = await raw_login(server.url, "carol", PASSWORD)
    assert r.status_code == 200 and r.json()["second_factor_required"] is True
    fresh = api_from(server.url, r)
    await fresh.get("/users/me")
    await fresh.get("/sessions")
    denied = await fresh.call("POST", "/conversations", json={"kind": "group", "name": "x"})
    assert denied["error"]["code"] == "second_factor_required"
    with pytest.raises(AssertionError):
        await Ws.connect(server.ws_url, fresh.token or "")

    secret, _codes, step = await enrol_totp(fresh, PASSWORD, clock)
    await fresh.get("/conversations")  # the session is freed at once
    await carol.get("/conversations")  # and so are her other sessions
    # an admin cannot turn it off while the policy requires it
    r = await fresh.call(
        "POST", "/auth/totp/disable", json={"password": PASSWORD, "code": code_for(secret, step)}
    )
    assert r["error"]["code"] == "forbidden"

    # the owner enrols too, then an admin reset puts carol back to enrolling
    await enrol_totp(admin, server.admin_password, clock)
    await admin.call("DELETE", f"/users/{carol.id}/totp", expect=204)
    r = await fresh.call("GET", "/users/me")
    assert r["error"]["code"] == "unauthenticated"  # reset ends every session
    r = await raw_login(server.url, "carol", PASSWORD)
    assert r.status_code == 200 and r.json()["second_factor_required"] is True

    # policy back to none frees everyone
    await admin.call("PATCH", "/settings", json={"second_factor_policy": "none"}, expect=200)
    restricted = api_from(server.url, r)
    await restricted.get("/conversations")
    for api in (admin, bob, carol, fresh, restricted):
        await api.close()
