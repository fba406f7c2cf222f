"""Login protection and rate limits over the application in-process, with small limits set through
TIDINGS_* settings."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import MakeServer, settings_from_env
from tests.fakes import FakeClock
from tests.helpers import Ws, login, make_user
from tests.security_helpers import api_from, raw_login

PASSWORD = "plum-orbit-123"


def outcome(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"] if r.status_code != 200 else "ok"


async def test_failures_slow_down_then_lock_without_telling_who_exists(
    make_server: MakeServer,
) -> None:
    env = {
        "TIDINGS_LOGIN_FAILURES_BEFORE_DELAY": "2",
        "TIDINGS_LOGIN_FAILURES_BEFORE_LOCKOUT": "4",
        "TIDINGS_LOGIN_LOCKOUT_SECONDS": "15",
        "TIDINGS_LOGIN_MAX_DELAY_SECONDS": "2",
    }
    # The delays and the lock pass on a clock the test moves. The two guessers take their
    # turns together (a barrier per round), as they would at once in real time.
    clock = FakeClock(datetime.now(UTC))
    together = asyncio.Barrier(2)
    async with make_server(clock=clock, **settings_from_env(env)) as server:
        admin = await login(server.url, "admin", server.admin_password)
        await make_user(admin, "frank")
        url = server.url

        async def attempts(username: str, address: str) -> list[tuple[int, str]]:
            seen = []
            for _ in range(6):
                r = await raw_login(url, username, "not-the-password", address=address)
                answered = clock.now()
                seen.append(outcome(r))
                await together.wait()  # both made this round's attempt
                if r.status_code == 429:
                    assert int(r.headers["retry-after"]) >= 1
                    wait = r.json()["error"]["details"]["retry_after"]
                    assert wait >= 1
                    if seen.count((429, "rate_limited")) < 3:
                        # the delay (1 s, then 2 s) passes
                        clock.advance_to(answered + timedelta(seconds=wait + 0.3))
                await together.wait()  # this round's wait is over for both
            return seen

        # both at once, so that the lock of the first is still on when they end
        real, ghost = await asyncio.gather(
            attempts("frank", "192.0.2.1"), attempts("nobody-by-this-name", "192.0.2.2")
        )
        # the same answers, step by step, for an account that exists and one that does not
        assert real == ghost, (real, ghost)
        assert real[0] == real[1] == (401, "invalid_credentials")
        assert (429, "rate_limited") in real  # slowed down after 2, locked after 4

        # locked: even the right password is refused, from any address, until it expires
        r = await raw_login(url, "frank", PASSWORD, address="192.0.2.99")
        assert outcome(r) == (429, "rate_limited")
        retry = r.json()["error"]["details"]["retry_after"]
        assert 1 <= retry <= 15
        clock.advance(retry + 0.5)
        r = await raw_login(url, "frank", PASSWORD, address="192.0.2.99")
        assert r.status_code == 200, r.text
        # a success forgets the account's failures
        r = await raw_login(url, "frank", "not-the-password", address="192.0.2.98")
        assert outcome(r) == (401, "invalid_credentials")
        r = await raw_login(url, "frank", PASSWORD, address="192.0.2.98")
        assert r.status_code == 200

        # the audit log has the failures and the lockout (never the unknown name)
        audit = (await admin.get("/audit", params={"limit": 500}))["entries"]
        actions = [e["action"] for e in audit]
        assert "login_failed" in actions and "login_locked" in actions
        assert "nobody-by-this-name" not in str(audit)
        await admin.close()


async def test_one_address_guessing_many_names_is_locked(make_server: MakeServer) -> None:
    env = {
        "TIDINGS_LOGIN_ADDRESS_FAILURES_BEFORE_LOCKOUT": "5",
        "TIDINGS_LOGIN_LOCKOUT_SECONDS": "60",
    }
    async with make_server(**settings_from_env(env)) as server:
        admin = await login(server.url, "admin", server.admin_password)
        await make_user(admin, "gina")
        for i in range(5):
            r = await raw_login(server.url, f"user{i}", "guess-guess", address="198.51.100.50")
            assert outcome(r) == (401, "invalid_credentials")
        r = await raw_login(server.url, "gina", PASSWORD, address="198.51.100.50")
        assert outcome(r) == (429, "rate_limited")
        # the same account from another address is fine
        r = await raw_login(server.url, "gina", PASSWORD, address="198.51.100.51")
        assert r.status_code == 200
        await admin.close()


async def test_send_rate_limit_refuses_before_accepting(make_server: MakeServer) -> None:
    env = {"TIDINGS_RATE_WINDOW_SECONDS": "3", "TIDINGS_RATE_SEND_PER_USER": "5"}
    async with make_server(**settings_from_env(env)) as server:
        admin = await login(server.url, "admin", server.admin_password)
        hank = await make_user(admin, "hank")
        conv = (await hank.post("/conversations", {"kind": "group", "name": "g"}, expect=201))[
            "conversation"
        ]
        cid = conv["id"]
        ws = await Ws.connect(server.ws_url, hank.token or "")

        # REST: five sends pass, the sixth is 429 with Retry-After
        ids = [uuid.uuid4().hex for _ in range(6)]
        for i in range(5):
            await hank.post(
                f"/conversations/{cid}/messages",
                {"client_msg_id": ids[i], "body": str(i)},
                expect=201,
            )
        r = await hank.http.post(
            f"/conversations/{cid}/messages", json={"client_msg_id": ids[5], "body": "5"}
        )
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 3

        # WebSocket: an error frame, the connection stays open
        reply = await ws.request(
            {"type": "send", "conversation_id": cid, "client_msg_id": ids[5], "body": "5"}
        )
        assert reply["type"] == "error" and reply["error"]["code"] == "rate_limited"
        assert reply["error"]["details"]["retry_after"] >= 1
        assert (await ws.request({"type": "ping"}))["type"] == "ack"

        # nothing accepted was dropped, nothing refused was stored; a retry later succeeds
        history = (await hank.get(f"/conversations/{cid}/messages"))["messages"]
        assert [m["body"] for m in history] == ["0", "1", "2", "3", "4"]
        await asyncio.sleep(3.2)
        reply = await ws.request(
            {"type": "send", "conversation_id": cid, "client_msg_id": ids[5], "body": "5"}
        )
        assert reply["type"] == "ack" and reply["message"]["seq"] == 6
        await ws.close()
        for api in (admin, hank):
            await api.close()


async def test_login_rate_limits_per_name_and_address(make_server: MakeServer) -> None:
    env = {"TIDINGS_RATE_LOGIN_PER_USER": "3", "TIDINGS_RATE_LOGIN_PER_ADDRESS": "8"}
    async with make_server(**settings_from_env(env)) as server:
        # address 127.0.0.1: admin's login (1)
        admin = await login(server.url, "admin", server.admin_password)
        await admin.post(
            "/users", {"username": "ivan", "password": PASSWORD, "role": "member"}, expect=201
        )
        for _ in range(3):  # (2, 3, 4)
            assert (await raw_login(server.url, "ivan", PASSWORD)).status_code == 200
        r = await raw_login(server.url, "ivan", PASSWORD)  # (5)
        assert outcome(r) == (429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        # the name is limited from every address
        r = await raw_login(server.url, "ivan", PASSWORD, address="192.0.2.70")
        assert outcome(r) == (429, "rate_limited")
        for i in range(3):  # (6, 7, 8)
            r = await raw_login(server.url, f"someone{i}", "a-password")
            assert outcome(r) == (401, "invalid_credentials")
        r = await raw_login(server.url, "admin", server.admin_password)  # (9)
        assert outcome(r) == (429, "rate_limited")
        r = await raw_login(server.url, "admin", server.admin_password, address="192.0.2.77")
        assert r.status_code == 200  # another address is not limited
        await api_from(server.url, r).close()
        await admin.close()
