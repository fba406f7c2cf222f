"""Bot accounts and bot tokens (services/bots.py): in-process on SQLite and PostgreSQL
(`container`), and over REST and WebSocket against the application in-process (`server`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets

from tests.conftest import AppServer
from tests.helpers import Api, Ws, login, make_user
from tidings.bus.ports import Envelope, EnvelopeKind, user_topic
from tidings.core.audit import AuditAction
from tidings.core.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidOperation,
    InvalidRequest,
    NotFound,
    Unauthenticated,
)
from tidings.core.models import OrgRole, SecondFactorPolicy, User
from tidings.protocol.wire import user_json
from tidings.services.auth import token_hash
from tidings.services.hub import Services

PASSWORD = "plum-orbit-123"


def services(container: Any) -> Services:
    svc: Services = container.services
    return svc


async def person(svc: Services, name: str, role: OrgRole = OrgRole.MEMBER) -> User:
    return await svc.users.create(None, name, PASSWORD, None, role)


async def audit_actions(svc: Services) -> list[tuple[str, str | None, str | None]]:
    return [(e.action, e.actor_id, e.target_id) async for e in svc.audit.entries()]


async def test_an_admin_creates_a_bot_whose_token_authenticates(container: Any) -> None:
    svc = services(container)
    admin = await person(svc, "ada", OrgRole.ADMIN)
    bot, token = await svc.bots.create(admin, "DeployBot", "Deploy bot")
    assert (bot.username, bot.display_name, bot.role, bot.bot) == (
        "deploybot",
        "Deploy bot",
        OrgRole.MEMBER,
        True,
    )
    assert user_json(bot)["bot"] is True
    assert user_json(admin)["bot"] is False
    session = await svc.auth.authenticate(token)
    assert session.user == bot
    assert session.device == "bot"
    assert session.expires_at.year == 9999  # a bot token does not expire
    # found like anyone in the directory, marked as a bot
    assert [u.bot for u in await svc.users.search(admin, "deploy")] == [True]
    # only the token's hash is stored
    async with container.store.read() as tx:
        assert (await tx.session_for_token(token, container.deps.clock.now())) is None
        assert await tx.session_for_token(token_hash(token), container.deps.clock.now())
    assert ("bot_created", admin.id, bot.id) in await audit_actions(svc)
    [entry] = [e async for e in svc.audit.entries() if e.action == AuditAction.BOT_CREATED]
    assert token not in str(entry.details) and token_hash(token) not in str(entry.details)
    assert entry.details["username"] == "deploybot"

    with pytest.raises(Conflict):
        await svc.bots.create(admin, "deploybot")
    with pytest.raises(Conflict):  # people and bots share one namespace
        await svc.bots.create(admin, "ada")
    with pytest.raises(InvalidRequest):
        await svc.bots.create(admin, "no spaces")


async def test_password_login_is_refused_for_a_bot(container: Any) -> None:
    svc = services(container)
    bot, token = await svc.bots.create(None, "quietbot")
    for password in ("!bot", PASSWORD, token):  # (a fourth would meet the login delay)
        with pytest.raises(InvalidCredentials):
            await svc.auth.login("quietbot", password)
    # nor can it be given a password, or change one, or enrol a second factor
    with pytest.raises(InvalidOperation):
        await svc.users.reset_password(None, bot.id, "a-new-password-1")
    session = await svc.auth.authenticate(token)
    with pytest.raises(InvalidOperation):
        await svc.sessions.change_password(session, "", "a-new-password-1")
    with pytest.raises(InvalidOperation):
        await svc.second_factor.setup(session, "")
    assert "login_failed" in [a for a, _, _ in await audit_actions(svc)]
    # the token still works after all this
    assert (await svc.auth.authenticate(token)).user.id == bot.id


async def test_rotating_a_token_ends_the_old_one_and_cuts_its_connections(
    container: Any,
) -> None:
    svc = services(container)
    owner = await person(svc, "olga", OrgRole.OWNER)
    bot, old = await svc.bots.create(owner, "rotabot")
    closes: list[Envelope] = []
    container.bus.subscribe(user_topic(bot.id), lambda _topic, env: closes.append(env))

    same, new = await svc.bots.rotate_token(owner, bot.id)
    assert same.id == bot.id and new != old
    with pytest.raises(Unauthenticated):
        await svc.auth.authenticate(old)
    assert (await svc.auth.authenticate(new)).user.id == bot.id
    assert [(e.kind, e.user_id, e.reason) for e in closes] == [
        (EnvelopeKind.CLOSE, bot.id, "token_rotated")
    ]
    assert ("bot_token_rotated", owner.id, bot.id) in await audit_actions(svc)

    bots = await svc.bots.list(owner)
    assert [(b.user.username, b.token is not None) for b in bots] == [("rotabot", True)]
    # one live token at a time
    assert len(await svc.sessions.of_user(owner, bot.id)) == 1

    # the operator at the command line (actor None) may rotate too
    _, third = await svc.bots.rotate_token(None, bot.id)
    with pytest.raises(Unauthenticated):
        await svc.auth.authenticate(new)
    assert (await svc.auth.authenticate(third)).user.id == bot.id

    person_ = await person(svc, "notabot")
    with pytest.raises(NotFound):
        await svc.bots.rotate_token(owner, person_.id)
    with pytest.raises(NotFound):
        await svc.bots.rotate_token(owner, "no-such-id")
    with pytest.raises(NotFound):
        await svc.bots.by_username("notabot")


async def test_disabling_a_bot_revokes_its_token_for_good(container: Any) -> None:
    svc = services(container)
    admin = await person(svc, "adam", OrgRole.ADMIN)
    bot, token = await svc.bots.create(admin, "offbot")
    closes: list[Envelope] = []
    container.bus.subscribe(user_topic(bot.id), lambda _topic, env: closes.append(env))

    disabled = await svc.bots.disable(admin, bot.id)
    assert disabled.disabled
    assert [e.kind for e in closes] == [EnvelopeKind.CLOSE]
    with pytest.raises(Unauthenticated):
        await svc.auth.authenticate(token)
    with pytest.raises(InvalidOperation):  # enable it first
        await svc.bots.rotate_token(admin, bot.id)
    assert [(b.user.disabled, b.token) for b in await svc.bots.list(admin)] == [(True, None)]
    actions = await audit_actions(svc)
    assert ("user_disabled", admin.id, bot.id) in actions
    assert ("sessions_revoked", admin.id, bot.id) in actions

    # enabled again, the old token stays dead: the bot needs a new one
    await svc.users.update(admin, bot.id, disabled=False)
    with pytest.raises(Unauthenticated):
        await svc.auth.authenticate(token)
    _, fresh = await svc.bots.rotate_token(admin, bot.id)
    assert (await svc.auth.authenticate(fresh)).user.id == bot.id

    # disabling through the users' path ends the token just the same
    await svc.users.update(admin, bot.id, disabled=True)
    with pytest.raises(Unauthenticated):
        await svc.auth.authenticate(fresh)

    with pytest.raises(NotFound):  # bots.disable only disables bots
        await svc.bots.disable(admin, admin.id)


async def test_only_admins_manage_bots(container: Any) -> None:
    svc = services(container)
    member = await person(svc, "mia")
    guest = await person(svc, "gus", OrgRole.GUEST)
    bot, token = await svc.bots.create(None, "guardedbot")
    for actor in (member, guest):
        with pytest.raises(Forbidden):
            await svc.bots.create(actor, "sneakybot")
        with pytest.raises(Forbidden):
            await svc.bots.list(actor)
        with pytest.raises(Forbidden):
            await svc.bots.rotate_token(actor, bot.id)
        with pytest.raises(Forbidden):  # the same answer for an id that is no bot
            await svc.bots.rotate_token(actor, "no-such-id")
        with pytest.raises(Forbidden):
            await svc.bots.disable(actor, bot.id)
    # a bot is a member: it cannot manage bots either
    bot_session = await svc.auth.authenticate(token)
    with pytest.raises(Forbidden):
        await svc.bots.create(bot_session.user, "childbot")
    assert await svc.users.search(None, "sneaky") == []
    assert (await svc.auth.authenticate(token)).user.id == bot.id


async def test_a_second_factor_policy_never_restricts_a_bot(container: Any) -> None:
    svc = services(container)
    bot, token = await svc.bots.create(None, "policybot")
    await svc.second_factor.set_policy(None, SecondFactorPolicy.EVERYONE)
    session = await svc.auth.authenticate(token)  # not SecondFactorRequired
    assert not session.enrol_only
    assert not await svc.second_factor.required_for(bot)
    _, fresh = await svc.bots.rotate_token(None, bot.id)
    assert not (await svc.auth.authenticate(fresh)).enrol_only


# --- over REST and WebSocket, against the application in-process ----------------------


async def test_bots_over_rest_and_websocket(server: AppServer) -> None:
    owner = await login(server.url, server.admin_username, server.admin_password)
    member = await make_user(owner, "memb")
    try:
        created = await owner.post(
            "/bots", {"username": "restbot", "display_name": "REST bot"}, expect=201
        )
        bot, token = created["user"], created["token"]
        assert (bot["username"], bot["display_name"], bot["bot"]) == ("restbot", "REST bot", True)
        assert (await owner.get("/users/me"))["user"]["bot"] is False

        as_bot = Api(server.url, token)
        assert (await as_bot.get("/users/me"))["user"]["id"] == bot["id"]
        ws = await Ws.connect(server.ws_url, token)
        assert ws.ready["user"]["bot"] is True

        # the bot talks like anyone
        conv = (
            await member.post(
                "/conversations",
                {"kind": "group", "name": "ops", "member_ids": [bot["id"]]},
                expect=201,
            )
        )["conversation"]
        ack = await ws.request(
            {"type": "send", "conversation_id": conv["id"], "client_msg_id": "b1", "body": "hi"}
        )
        assert ack["type"] == "ack" and ack["message"]["sender_id"] == bot["id"]

        listed = (await owner.get("/bots"))["bots"]
        assert [(b["user"]["username"], b["token_created_at"] is not None) for b in listed] == [
            ("restbot", True)
        ]
        assert listed[0]["last_seen_at"] is not None  # it authenticated above

        # password login is refused
        async with server.client() as http:
            r = await http.post(
                "/api/v1/auth/login",
                json={"username": "restbot", "password": "anything-at-all"},
            )
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"

        # members may not create, list or rotate
        await member.post("/bots", {"username": "mine"}, expect=403)
        await member.get("/bots", expect=403)
        await member.post(f"/bots/{bot['id']}/token", expect=403)
        await owner.post(f"/bots/{member.id}/token", expect=404)  # not a bot
        await owner.post("/bots", {"username": "restbot"}, expect=409)

        # rotation: the old token stops working and its live connection closes (4003)
        rotated = await owner.post(f"/bots/{bot['id']}/token", expect=200)
        assert rotated["user"]["id"] == bot["id"] and rotated["token"] != token
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.conn.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
        await as_bot.get("/users/me", expect=401)
        with pytest.raises((AssertionError, websockets.ConnectionClosed)):
            await Ws.connect(server.ws_url, token)
        as_new = Api(server.url, rotated["token"])
        assert (await as_new.get("/users/me"))["user"]["bot"] is True

        # disabled through PATCH /users: the token is gone for good
        await owner.call("PATCH", f"/users/{bot['id']}", json={"disabled": True}, expect=200)
        await as_new.get("/users/me", expect=401)
        await owner.call("PATCH", f"/users/{bot['id']}", json={"disabled": False}, expect=200)
        await as_new.get("/users/me", expect=401)
        await as_bot.close()
        await as_new.close()
    finally:
        await owner.close()
        await member.close()
    logs = server.logs()
    assert token not in logs and rotated["token"] not in logs  # never logged


async def test_ended_tokens_names_the_sessions_that_no_longer_hold(container: Any) -> None:
    """What a gateway's session watch asks (services.auth.ended_tokens): a token ends
    when it is revoked or rotated, or when its user is disabled; a live one does not."""
    svc = services(container)
    admin = await person(svc, "ada", OrgRole.ADMIN)
    alice = await person(svc, "alice")
    _token, laptop = await svc.auth.login("alice", PASSWORD, "laptop")
    _token, phone = await svc.auth.login("alice", PASSWORD, "phone")
    _bot, bot_token = await svc.bots.create(admin, "pager")
    bot_session = await svc.auth.authenticate(bot_token)
    ids = {laptop.token_id, phone.token_id, bot_session.token_id}
    assert await svc.auth.ended_tokens(ids) == set()
    assert await svc.auth.ended_tokens({"no-such-token"}) == {"no-such-token"}

    await svc.auth.logout(laptop)
    assert await svc.auth.ended_tokens(ids) == {laptop.token_id}
    await svc.bots.rotate_token(admin, bot_session.user.id)
    assert await svc.auth.ended_tokens(ids) == {laptop.token_id, bot_session.token_id}
    await svc.users.update(admin, alice.id, disabled=True)
    assert await svc.auth.ended_tokens(ids) == ids
