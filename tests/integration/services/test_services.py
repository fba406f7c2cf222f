"""Services on a real, migrated SQLite file, with the in-process bus; the delivery
guarantees and the dialect-sensitive queries also on PostgreSQL (`on_both_engines`).

Each test gets a fresh database: the migrations run once per module into a template (a
SQLite file copied for every test; PostgreSQL's from tests/conftest.py's `pg_template`),
the same schema as `tests/conftest.py::container` without paying for Alembic each time.
The clock is a fake one the tests move (edit windows, token expiry). Password hashing
uses argon2id at its cheapest here (CHEAP, handed to the container); production's cost
comes from the settings argon2_time_cost and argon2_memory_kib."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import _pg, _pg_url
from tests.fakes import FakeClock
from tidings.app.container import Container
from tidings.app.settings import Settings
from tidings.bus.ports import (
    EVENTS_TOPIC,
    Envelope,
    EnvelopeKind,
    conversation_topic,
    user_topic,
)
from tidings.core.errors import (
    Conflict,
    EditWindowPassed,
    Forbidden,
    InvalidBody,
    InvalidCredentials,
    InvalidOperation,
    InvalidPosition,
    InvalidRequest,
    NotFound,
    TooLarge,
    Unauthenticated,
)
from tidings.core.events import EventKind
from tidings.core.models import (
    Conversation,
    ConversationKind,
    FileStatus,
    MemberRole,
    Message,
    OrgRole,
    PresenceState,
    StoredEvent,
    User,
)
from tidings.protocol.wire import conversation_json, message_json
from tidings.services.events import envelope_for
from tidings.services.hub import Services
from tidings.services.passwords import Passwords
from tidings.services.sync import parse_position
from tidings.store import migrations

PASSWORD = "plum-orbit-123"
CHEAP = Passwords(time_cost=1, memory_kib=8, parallelism=1)
GROUP = ConversationKind.GROUP
CHANNEL = ConversationKind.CHANNEL
DIRECT = ConversationKind.DIRECT


class Recorder:
    """Every envelope published on the topics it listens to, in publish order."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Envelope]] = []

    def __call__(self, topic: str, envelope: Envelope) -> None:
        self.got.append((topic, envelope))

    def kinds(self) -> list[tuple[str, str]]:
        """(event kind, conversation id or "user:<id>") of committed events; (envelope
        kind, topic) of the rest."""
        out = []
        for topic, env in self.got:
            if env.kind is EnvelopeKind.EVENT:
                kind = orjson.loads(env.frame)["event"]["kind"]
                scope = env.conversation_id or f"user:{env.user_id}"
                out.append((kind, scope))
            else:
                out.append((env.kind.value, topic))
        return out


class World:
    """The services of one process plus helpers to set the scene."""

    def __init__(self, container: Container, clock: FakeClock) -> None:
        self.container = container
        self.clock = clock
        self.svc: Services = container.services
        self.bus = container.bus

    async def user(
        self, name: str, role: OrgRole = OrgRole.MEMBER, display_name: str | None = None
    ) -> User:
        return await self.svc.users.create(None, name, PASSWORD, display_name, role)

    async def users(self, *names: str) -> list[User]:
        return [await self.user(n) for n in names]

    async def conv(
        self, owner: User, kind: ConversationKind, *members: User, name: str = "team"
    ) -> Conversation:
        conv, created = await self.svc.conversations.create(
            owner, kind, [m.id for m in members], name=None if kind is DIRECT else name
        )
        assert created
        return conv

    async def send(
        self,
        sender: User,
        cid: str,
        body: str = "hello",
        *,
        cmid: str | None = None,
        reply_to_seq: int | None = None,
    ) -> Message:
        message, _created = await self.svc.messages.send(
            sender, cid, cmid or uuid.uuid4().hex, body, reply_to_seq
        )
        return message

    async def seqs(self, actor: User, cid: str, **kw: Any) -> list[int]:
        messages, _more = await self.svc.messages.history(actor, cid, **kw)
        return [m.seq for m in messages]

    async def events(self, actor: User, since: int = 0) -> list[StoredEvent]:
        events, more = await self.svc.sync.events_since(actor, since, 1000)
        assert not more
        return events

    def committed(self) -> Recorder:
        """Every committed event this process publishes (after its commit)."""
        return self.listen(EVENTS_TOPIC)

    def listen(self, *topics: str) -> Recorder:
        recorder = Recorder()
        for topic in topics:
            self.bus.subscribe(topic, recorder)
        return recorder


def kinds_of(events: Sequence[StoredEvent]) -> list[tuple[str, object]]:
    return [(str(e.payload["kind"]), e.payload["conversation_id"]) for e in events]


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tidings.db"
    with ThreadPoolExecutor(1) as pool:  # Alembic's env runs its own event loop
        pool.submit(migrations.upgrade, f"sqlite:///{path}").result()
    assert not path.with_name("tidings.db-wal").exists()
    return path


MakeWorld = Callable[..., Awaitable[World]]


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    """The store under test: every test runs on SQLite and on PostgreSQL (when one is
    reachable: tests/conftest.py's `pg_template` skips otherwise)."""
    return str(request.param)


# Kept for the tests that name it: the same two engines.
on_both_engines = pytest.mark.parametrize("engine", ["sqlite", "postgres"])


@pytest.fixture
def database_url(engine: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    if engine == "sqlite":
        yield None
        return
    template = request.getfixturevalue("pg_template")
    name = f"tidings_s_{uuid.uuid4().hex[:12]}"
    _pg(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield _pg_url(name)
    finally:
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def make_world(
    tmp_path: Path, template_db: Path, database_url: str | None
) -> AsyncIterator[MakeWorld]:
    """Services on SQLite (a copy of the migrated template) or on a fresh migrated
    PostgreSQL database. The bus is the in-process one either way."""
    made: list[Container] = []

    async def make(**settings: Any) -> World:
        assert not made, "one world per test: they would share the PostgreSQL database"
        data = tmp_path / "data"
        data.mkdir()
        if database_url is None:
            shutil.copyfile(template_db, data / "tidings.db")
        else:
            settings = {"database_url": database_url, **settings}
        defaults = {"edit_window_seconds": 60}
        clock = FakeClock(tick=timedelta(milliseconds=1))  # order by time is defined
        container = Container(
            Settings(data_dir=data, **{**defaults, **settings}), clock=clock, passwords=CHEAP
        )
        made.append(container)
        return World(container, clock)

    yield make
    for container in made:
        await container.close()


@pytest.fixture
async def w(make_world: MakeWorld) -> World:
    return await make_world()


# =====================================================================================
# users
# =====================================================================================


async def test_create_user(w: World) -> None:
    user = await w.svc.users.create(None, "  Alice ", PASSWORD)
    assert (user.username, user.display_name, user.role, user.disabled) == (
        "alice",
        "alice",
        OrgRole.MEMBER,
        False,
    )
    assert await w.svc.users.get(user, user.id) == user
    assert await w.svc.users.by_username("ALICE") == user
    with pytest.raises(NotFound):
        await w.svc.users.get(user, "nobody")


async def test_duplicate_username_is_a_conflict(w: World) -> None:
    await w.user("alice")
    with pytest.raises(Conflict) as exc:
        await w.svc.users.create(None, "ALICE", PASSWORD, "Another Alice")
    assert exc.value.details == {"field": "username"}
    assert [u.display_name for u in await w.svc.users.search(None, "alice")] == ["alice"]


@pytest.mark.parametrize(
    ("username", "password"), [("bad name", PASSWORD), ("ok", "short"), ("", PASSWORD)]
)
async def test_invalid_user_input_writes_nothing(w: World, username: str, password: str) -> None:
    with pytest.raises(InvalidRequest):
        await w.svc.users.create(None, username, password)
    assert await w.svc.users.search(None) == []


@pytest.mark.parametrize(
    ("actor_role", "new_role", "ok"),
    [
        (OrgRole.OWNER, OrgRole.OWNER, True),
        (OrgRole.OWNER, OrgRole.ADMIN, True),
        (OrgRole.ADMIN, OrgRole.MEMBER, True),
        (OrgRole.ADMIN, OrgRole.GUEST, True),
        (OrgRole.ADMIN, OrgRole.ADMIN, False),
        (OrgRole.ADMIN, OrgRole.OWNER, False),
        (OrgRole.MEMBER, OrgRole.MEMBER, False),
        (OrgRole.GUEST, OrgRole.GUEST, False),
    ],
)
async def test_who_may_create_accounts(
    w: World, actor_role: OrgRole, new_role: OrgRole, ok: bool
) -> None:
    actor = await w.user("actor", actor_role)
    if ok:
        made = await w.svc.users.create(actor, "newbie", PASSWORD, role=new_role)
        assert made.role is new_role
    else:
        with pytest.raises(Forbidden):
            await w.svc.users.create(actor, "newbie", PASSWORD, role=new_role)
        with pytest.raises(NotFound):
            await w.svc.users.by_username("newbie")


@on_both_engines
async def test_search_by_chinese_display_name(w: World) -> None:
    await w.user("zhangwei", display_name="张伟")
    await w.user("zhangmin", display_name="张敏")
    await w.user("lilei", display_name="李雷")

    async def names(query: str) -> list[str]:
        return [u.username for u in await w.svc.users.search(None, query)]

    assert await names("张") == ["zhangmin", "zhangwei"]
    assert await names("伟") == ["zhangwei"]
    assert await names(" 李雷 ") == ["lilei"]
    assert await names("LILEI") == ["lilei"]  # case-insensitive on usernames too
    assert await names("王") == []
    assert len(await names("")) == 3


async def test_search_is_case_and_width_insensitive(w: World) -> None:
    await w.user("wang", display_name="Ｗａｎｇ Ｆａｎｇ")  # full-width, as an IME types it
    await w.user("smith", display_name="Anna SMITH")

    async def names(query: str) -> list[str]:
        return [u.username for u in await w.svc.users.search(None, query)]

    assert await names("wang fang") == ["wang"]
    assert await names("Ｗａｎｇ Ｆａｎｇ") == ["wang"]  # the name exactly as displayed
    assert await names("ｓｍｉｔｈ") == ["smith"]
    assert await names("anna smith") == ["smith"]


@on_both_engines
async def test_search_treats_like_wildcards_literally(w: World) -> None:
    await w.user("alice")
    await w.user("bob_b")
    assert await w.svc.users.search(None, "%") == []
    assert [u.username for u in await w.svc.users.search(None, "_")] == ["bob_b"]


@on_both_engines
async def test_search_by_department_subtree(w: World) -> None:
    deps = w.svc.departments
    eng = await deps.create(None, "Engineering")
    backend = await deps.create(None, "Backend", eng.id)
    db = await deps.create(None, "Databases", backend.id)
    sales = await deps.create(None, "Sales")
    alice, bob, carol, dave, _erin = await w.users("alice", "bob", "carol", "dave", "erin")
    for dep, user in ((backend, alice), (db, bob), (sales, carol), (eng, dave)):
        await deps.set_member(None, dep.id, user.id, True)

    async def names(dep_id: str, query: str = "") -> list[str]:
        return [u.username for u in await w.svc.users.search(None, query, dep_id)]

    assert await names(eng.id) == ["alice", "bob", "dave"]
    assert await names(backend.id) == ["alice", "bob"]
    assert await names(db.id) == ["bob"]
    assert await names(sales.id) == ["carol"]
    assert await names(eng.id, "BO") == ["bob"]
    with pytest.raises(NotFound):
        await names("no-such-department")


async def test_search_limit(w: World) -> None:
    for i in range(5):
        await w.user(f"user{i}")
    assert len(await w.svc.users.search(None, "user", limit=2)) == 2
    assert len(await w.svc.users.search(None, "user", limit=0)) == 1  # clamped to 1..200


async def test_disabled_user_cannot_authenticate_or_log_in(w: World) -> None:
    owner = await w.user("owner", OrgRole.OWNER)
    alice = await w.user("alice")
    token, _ = await w.svc.auth.login("alice", PASSWORD)
    recorder = w.listen(user_topic(alice.id))
    updated = await w.svc.users.update(owner, alice.id, disabled=True)
    assert updated.disabled
    with pytest.raises(Unauthenticated):
        await w.svc.auth.authenticate(token)
    with pytest.raises(InvalidCredentials):  # as for a wrong password: nothing told
        await w.svc.auth.login("alice", PASSWORD)
    # live connections are cut at once
    assert [(e.kind, e.user_id, e.token_id) for _, e in recorder.got] == [
        (EnvelopeKind.CLOSE, alice.id, None)
    ]
    await w.svc.users.update(owner, alice.id, disabled=False)
    token2, session = await w.svc.auth.login("alice", PASSWORD)
    assert (await w.svc.auth.authenticate(token2)).user.id == alice.id == session.user.id


async def test_last_owner_cannot_be_demoted_or_disabled(w: World) -> None:
    owner = await w.user("owner", OrgRole.OWNER)
    with pytest.raises(InvalidOperation):
        await w.svc.users.update(None, owner.id, role=OrgRole.ADMIN)
    with pytest.raises(InvalidOperation):
        await w.svc.users.update(None, owner.id, disabled=True)
    with pytest.raises(Forbidden):  # and an owner cannot demote themselves either
        await w.svc.users.update(owner, owner.id, role=OrgRole.MEMBER)
    assert (await w.svc.users.get(owner, owner.id)).role is OrgRole.OWNER
    # With a second owner, either may be demoted by the other.
    second = await w.user("second", OrgRole.OWNER)
    demoted = await w.svc.users.update(second, owner.id, role=OrgRole.ADMIN)
    assert demoted.role is OrgRole.ADMIN
    with pytest.raises(InvalidOperation):
        await w.svc.users.update(None, second.id, disabled=True)


async def test_admin_cannot_manage_owners_or_admins(w: World) -> None:
    owner = await w.user("owner", OrgRole.OWNER)
    admin = await w.user("admin", OrgRole.ADMIN)
    other_admin = await w.user("admin2", OrgRole.ADMIN)
    member = await w.user("member")
    for target in (owner, other_admin):
        with pytest.raises(Forbidden):
            await w.svc.users.update(admin, target.id, display_name="Renamed")
        with pytest.raises(Forbidden):
            await w.svc.users.update(admin, target.id, disabled=True)
        with pytest.raises(Forbidden):
            await w.svc.users.reset_password(admin, target.id, "new-password-1")
    with pytest.raises(Forbidden):
        await w.svc.users.update(admin, member.id, role=OrgRole.ADMIN)
    assert (await w.svc.users.get(admin, owner.id)).display_name == "owner"
    # ... but manages members
    renamed = await w.svc.users.update(admin, member.id, display_name="成员", role=OrgRole.GUEST)
    assert (renamed.display_name, renamed.role) == ("成员", OrgRole.GUEST)
    assert [u.username for u in await w.svc.users.search(None, "成员")] == ["member"]
    # and a member manages nobody
    with pytest.raises(Forbidden):
        await w.svc.users.update(renamed, admin.id, display_name="x")


async def test_reset_password_ends_every_session(w: World) -> None:
    owner = await w.user("owner", OrgRole.OWNER)
    alice = await w.user("alice")
    phone, _ = await w.svc.auth.login("alice", PASSWORD, "phone")
    laptop, _ = await w.svc.auth.login("alice", PASSWORD, "laptop")
    await w.svc.users.reset_password(owner, alice.id, "brand-new-password")
    for token in (phone, laptop):
        with pytest.raises(Unauthenticated):
            await w.svc.auth.authenticate(token)
    with pytest.raises(InvalidCredentials):
        await w.svc.auth.login("alice", PASSWORD)
    await w.svc.auth.login("alice", "brand-new-password")


async def test_ensure_owner_runs_once(w: World) -> None:
    generated = await w.svc.users.ensure_owner("root", None)
    assert generated
    assert await w.svc.users.ensure_owner("root", None) is None
    _, session = await w.svc.auth.login("root", generated)
    assert session.user.role is OrgRole.OWNER


# =====================================================================================
# auth
# =====================================================================================


async def test_login_authenticate_logout(w: World) -> None:
    alice = await w.user("alice")
    phone, s_phone = await w.svc.auth.login(" Alice ", PASSWORD, "phone")
    laptop, s_laptop = await w.svc.auth.login("alice", PASSWORD, "laptop")
    assert phone != laptop and s_phone.token_id != s_laptop.token_id
    assert s_phone.user.id == alice.id and s_phone.device == "phone"
    assert (await w.svc.auth.authenticate(phone)).token_id == s_phone.token_id
    recorder = w.listen(user_topic(alice.id))
    await w.svc.auth.logout(s_phone)
    with pytest.raises(Unauthenticated):
        await w.svc.auth.authenticate(phone)
    assert (await w.svc.auth.authenticate(laptop)).device == "laptop"  # one token per device
    assert [(e.kind, e.token_id) for _, e in recorder.got] == [
        (EnvelopeKind.CLOSE, s_phone.token_id)
    ]


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong-password"), ("nobody", PASSWORD)]
)
async def test_bad_credentials(w: World, username: str, password: str) -> None:
    await w.user("alice")
    with pytest.raises(InvalidCredentials):
        await w.svc.auth.login(username, password)


@pytest.mark.parametrize("token", ["", "not-a-token"])
async def test_unknown_tokens(w: World, token: str) -> None:
    with pytest.raises(Unauthenticated):
        await w.svc.auth.authenticate(token)


@on_both_engines
async def test_token_expires_after_its_ttl(make_world: MakeWorld) -> None:
    w = await make_world(token_ttl_seconds=60)
    await w.user("alice")
    token, session = await w.svc.auth.login("alice", PASSWORD)
    w.clock.advance(59)
    assert (await w.svc.auth.authenticate(token)).token_id == session.token_id
    w.clock.advance(1)
    with pytest.raises(Unauthenticated):
        await w.svc.auth.authenticate(token)
    fresh, _ = await w.svc.auth.login("alice", PASSWORD)
    await w.svc.auth.authenticate(fresh)


# =====================================================================================
# departments
# =====================================================================================


async def test_departments(w: World) -> None:
    admin = await w.user("admin", OrgRole.ADMIN)
    alice = await w.user("alice")
    deps = w.svc.departments
    eng = await deps.create(admin, "Engineering")
    backend = await deps.create(admin, " Backend ", eng.id)
    other_backend = await deps.create(admin, "Backend")  # same name elsewhere is fine
    assert backend.name == "Backend" and backend.parent_id == eng.id
    assert {(d.name, d.parent_id) for d in await deps.list(alice)} == {
        ("Engineering", None),
        ("Backend", eng.id),
        ("Backend", None),
    }
    with pytest.raises(Conflict):
        await deps.create(admin, "Backend", eng.id)
    with pytest.raises(Conflict):  # at the top level too (NULL parents are no exception)
        await deps.create(admin, "Engineering")
    with pytest.raises(NotFound):
        await deps.create(admin, "Orphan", "no-such-parent")
    with pytest.raises(Forbidden):
        await deps.create(alice, "Mine")
    assert (await deps.resolve("Engineering/Backend")).id == backend.id
    assert (await deps.resolve(other_backend.id)).id == other_backend.id
    assert (await deps.resolve("Backend")).id == other_backend.id  # a path wins over a name
    await deps.create(admin, "Ops", eng.id)
    await deps.create(admin, "Ops", backend.id)
    with pytest.raises(NotFound, match="use its path"):
        await deps.resolve("Ops")
    assert (await deps.resolve("Engineering/Backend/Ops")).parent_id == backend.id
    assert len(await deps.list(None)) == 5


async def test_department_membership(w: World) -> None:
    admin = await w.user("admin", OrgRole.ADMIN)
    alice = await w.user("alice")
    deps = w.svc.departments
    eng = await deps.create(admin, "Engineering")
    sales = await deps.create(admin, "Sales")
    await deps.set_member(admin, eng.id, alice.id, True)
    await deps.set_member(admin, eng.id, alice.id, True)  # twice changes nothing
    await deps.set_member(admin, sales.id, alice.id, True)
    assert set((await w.svc.users.get(admin, alice.id)).department_ids) == {eng.id, sales.id}
    await deps.set_member(admin, sales.id, alice.id, False)
    assert (await w.svc.users.get(admin, alice.id)).department_ids == (eng.id,)
    with pytest.raises(Forbidden):
        await deps.set_member(alice, sales.id, alice.id, True)
    with pytest.raises(NotFound):
        await deps.set_member(admin, "nope", alice.id, True)
    with pytest.raises(NotFound):
        await deps.set_member(admin, eng.id, "nobody", True)


# =====================================================================================
# conversations
# =====================================================================================


async def test_direct_is_created_once(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    conv, created = await w.svc.conversations.create(alice, DIRECT, [bob.id])
    assert created and conv.kind is DIRECT and conv.member_count == 2
    again, created_again = await w.svc.conversations.create(alice, DIRECT, [bob.id])
    from_bob, created_by_bob = await w.svc.conversations.create(bob, DIRECT, [alice.id, bob.id])
    assert again.id == from_bob.id == conv.id
    assert not created_again and not created_by_bob
    other, created_other = await w.svc.conversations.create(alice, DIRECT, [carol.id])
    assert created_other and other.id != conv.id
    assert [m.user_id for m in (await w.svc.conversations.view(bob, conv.id))[1]] == [
        alice.id,
        bob.id,
    ]
    assert {v.conversation.id for v in await w.svc.conversations.list_for(alice)} == {
        conv.id,
        other.id,
    }


async def test_direct_asked_for_by_both_at_once_is_one_conversation(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    (one, created_one), (two, created_two) = await asyncio.gather(
        w.svc.conversations.create(alice, DIRECT, [bob.id]),
        w.svc.conversations.create(bob, DIRECT, [alice.id]),
    )
    assert one.id == two.id and sorted([created_one, created_two]) == [False, True]
    assert len(await w.svc.conversations.list_for(alice)) == 1


@pytest.mark.parametrize("others", [[], ["bob", "carol"], ["alice"]])
async def test_direct_needs_exactly_one_other_person(w: World, others: list[str]) -> None:
    users = {u.username: u for u in await w.users("alice", "bob", "carol")}
    with pytest.raises(InvalidRequest):
        await w.svc.conversations.create(users["alice"], DIRECT, [users[n].id for n in others])
    assert await w.svc.conversations.list_for(users["alice"]) == []


async def test_direct_with_unknown_or_disabled_user(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    with pytest.raises(NotFound):
        await w.svc.conversations.create(alice, DIRECT, ["nobody"])
    await w.svc.users.update(None, bob.id, disabled=True)
    with pytest.raises(InvalidOperation):
        await w.svc.conversations.create(alice, DIRECT, [bob.id])


async def test_group_creation_roles_and_visibility(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    recorder = w.committed()
    conv, _ = await w.svc.conversations.create(alice, GROUP, [bob.id], name=" Team ", topic="t")
    assert (conv.name, conv.topic, conv.member_count, conv.last_seq) == ("Team", "t", 2, 0)
    _, members = await w.svc.conversations.view(bob, conv.id)
    assert {(m.user_id, m.role.value) for m in members} == {(alice.id, "owner"), (bob.id, "member")}
    assert recorder.kinds() == [("conversation_created", conv.id)]
    # so that gateways holding the members subscribe them to it
    assert set(recorder.got[0][1].added_user_ids) == {alice.id, bob.id}
    with pytest.raises(NotFound):  # a group is invisible to non-members
        await w.svc.conversations.view(carol, conv.id)
    with pytest.raises(InvalidRequest):
        await w.svc.conversations.create(alice, GROUP, [bob.id], name="  ")


@pytest.mark.parametrize("kind", [GROUP, CHANNEL])
async def test_guests_cannot_create_groups_or_channels(w: World, kind: ConversationKind) -> None:
    guest = await w.user("guest", OrgRole.GUEST)
    bob = await w.user("bob")
    with pytest.raises(Forbidden):
        await w.svc.conversations.create(guest, kind, [bob.id], name="x")
    direct, _ = await w.svc.conversations.create(guest, DIRECT, [bob.id])
    assert direct.kind is DIRECT


async def test_group_members_invite_non_members_cannot(w: World) -> None:
    alice, bob, carol, dave = await w.users("alice", "bob", "carol", "dave")
    conv = await w.conv(alice, GROUP, bob)
    updated = await w.svc.conversations.add_members(bob, conv.id, [carol.id])  # member invites
    assert updated.member_count == 3
    with pytest.raises(NotFound):  # an outsider does not even see it
        await w.svc.conversations.add_members(dave, conv.id, [dave.id])
    with pytest.raises(NotFound):
        await w.svc.conversations.add_members(alice, conv.id, ["nobody"])
    # adding an existing member changes nothing and emits nothing
    recorder = w.committed()
    same = await w.svc.conversations.add_members(alice, conv.id, [carol.id, bob.id])
    assert same.member_count == 3 and recorder.got == []


async def test_channel_join_leave_and_guests(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    guest = await w.user("guest", OrgRole.GUEST)
    admin = await w.user("admin", OrgRole.ADMIN)
    ch = await w.conv(alice, CHANNEL, name="general")
    # visible to every non-guest, joinable by themselves
    assert [(c.id, joined) for c, joined in await w.svc.conversations.channels(bob)] == [
        (ch.id, False)
    ]
    assert (await w.svc.conversations.view(bob, ch.id))[0].id == ch.id
    await w.svc.conversations.add_members(bob, ch.id, [bob.id])
    assert [joined for _, joined in await w.svc.conversations.channels(bob, "GEN")] == [True]
    assert await w.svc.conversations.channels(bob, "random") == []
    # guests neither browse, see nor join channels
    with pytest.raises(Forbidden):
        await w.svc.conversations.channels(guest)
    with pytest.raises(NotFound):
        await w.svc.conversations.view(guest, ch.id)
    with pytest.raises(NotFound):
        await w.svc.conversations.add_members(guest, ch.id, [guest.id])
    # a plain member may not add a guest; the channel owner and an org admin may
    with pytest.raises(Forbidden):
        await w.svc.conversations.add_members(bob, ch.id, [guest.id])
    await w.svc.conversations.add_members(alice, ch.id, [guest.id])
    assert (await w.svc.conversations.view(guest, ch.id))[0].member_count == 3
    # a guest in the channel adds nobody
    with pytest.raises(Forbidden):
        await w.svc.conversations.add_members(guest, ch.id, [admin.id])
    # an admin who is not a member may add people
    await w.svc.conversations.add_members(admin, ch.id, [admin.id])
    # leaving
    await w.svc.conversations.remove_member(bob, ch.id, bob.id)
    assert [joined for _, joined in await w.svc.conversations.channels(bob)] == [False]
    assert ch.id not in {v.conversation.id for v in await w.svc.conversations.list_for(bob)}
    assert {m.user_id for m in (await w.svc.conversations.view(alice, ch.id))[1]} == {
        alice.id,
        guest.id,
        admin.id,
    }


async def test_guest_joining_a_channel_by_themselves_is_forbidden(w: World) -> None:
    alice = await w.user("alice")
    guest = await w.user("guest", OrgRole.GUEST)
    ch = await w.conv(alice, CHANNEL, guest, name="general")  # the owner may add a guest
    await w.svc.conversations.remove_member(guest, ch.id, guest.id)  # a guest may leave
    with pytest.raises(NotFound):  # ... and then not come back alone
        await w.svc.conversations.add_members(guest, ch.id, [guest.id])


async def test_add_and_remove_publish_events(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    conv = await w.conv(alice, GROUP, bob)
    recorder = w.committed()
    await w.svc.conversations.add_members(alice, conv.id, [carol.id])
    await w.svc.conversations.remove_member(alice, conv.id, bob.id)
    assert recorder.kinds() == [("member_added", conv.id), ("member_removed", conv.id)]
    added, removed = recorder.got[0][1], recorder.got[1][1]
    assert list(added.added_user_ids) == [carol.id]
    assert removed.removed_user_id == bob.id
    assert removed.position is not None and added.position is not None
    assert removed.position > added.position
    # the same events, stored
    carol_sees = kinds_of(await w.events(carol))
    assert carol_sees == [("member_added", conv.id), ("member_removed", conv.id)]


async def test_remove_permissions(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    admin = await w.user("admin", OrgRole.ADMIN)
    conv = await w.conv(alice, GROUP, bob, carol)
    with pytest.raises(Forbidden):  # a member removes nobody but themselves
        await w.svc.conversations.remove_member(bob, conv.id, carol.id)
    with pytest.raises(NotFound):  # an admin outside a group does not see it
        await w.svc.conversations.remove_member(admin, conv.id, carol.id)
    with pytest.raises(NotFound):
        await w.svc.conversations.remove_member(alice, conv.id, admin.id)
    await w.svc.conversations.remove_member(alice, conv.id, carol.id)  # the owner may
    with pytest.raises(NotFound):  # already gone
        await w.svc.conversations.remove_member(alice, conv.id, carol.id)
    direct = await w.conv(alice, DIRECT, bob)
    with pytest.raises(InvalidOperation):
        await w.svc.conversations.remove_member(alice, direct.id, alice.id)
    # an admin may remove people from a channel without being in it
    ch = await w.conv(alice, CHANNEL, bob, name="general")
    await w.svc.conversations.remove_member(admin, ch.id, bob.id)
    assert (await w.svc.conversations.view(alice, ch.id))[0].member_count == 1


async def test_update_conversation(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    admin = await w.user("admin", OrgRole.ADMIN)
    conv = await w.conv(alice, GROUP, bob, admin)
    recorder = w.committed()
    renamed = await w.svc.conversations.update(alice, conv.id, "New name", None)
    assert (renamed.name, renamed.topic) == ("New name", "")
    with pytest.raises(Forbidden):
        await w.svc.conversations.update(bob, conv.id, "Mine", None)
    by_admin = await w.svc.conversations.update(admin, conv.id, None, "set by an admin")
    assert (by_admin.name, by_admin.topic) == ("New name", "set by an admin")
    assert recorder.kinds() == [("conversation_updated", conv.id)] * 2
    unchanged = await w.svc.conversations.update(alice, conv.id, None, None)
    assert unchanged.name == "New name" and len(recorder.got) == 2
    direct = await w.conv(alice, DIRECT, bob)
    with pytest.raises(InvalidOperation):
        await w.svc.conversations.update(alice, direct.id, "x", None)


async def test_org_admin_updates_a_channel_without_being_in_it(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    admin = await w.user("admin", OrgRole.ADMIN)
    channel = await w.conv(alice, CHANNEL, bob, name="general")
    group = await w.conv(alice, GROUP, bob, name="private")
    renamed = await w.svc.conversations.update(admin, channel.id, None, "moderated")
    assert renamed.topic == "moderated"
    with pytest.raises(Forbidden):  # visible to carol, but hers to change it is not
        await w.svc.conversations.update(carol, channel.id, "mine", None)
    with pytest.raises(NotFound):  # a group stays invisible, admin or not
        await w.svc.conversations.update(admin, group.id, "peek", None)


async def test_removed_member_reads_up_to_the_removal_only(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    await w.send(alice, conv.id, "one")
    await w.send(bob, conv.id, "two")
    await w.svc.conversations.remove_member(alice, conv.id, bob.id)
    await w.send(alice, conv.id, "three after bob left")
    assert await w.seqs(alice, conv.id) == [1, 2, 3]
    assert await w.seqs(bob, conv.id) == [1, 2]
    assert await w.seqs(bob, conv.id, after_seq=1) == [2]
    assert await w.svc.conversations.list_for(bob) == []
    with pytest.raises(NotFound):
        await w.send(bob, conv.id, "let me back")
    with pytest.raises(NotFound):
        await w.svc.messages.mark_read(bob, conv.id, 3)
    with pytest.raises(NotFound):
        await w.svc.conversations.view(bob, conv.id)
    # the removal is bob's last event of that conversation
    bob_sees = kinds_of(await w.events(bob))
    assert bob_sees[-1] == ("member_removed", conv.id)
    assert ("message", conv.id) in bob_sees and len(bob_sees) == 4


async def test_people_who_never_were_members_read_nothing(w: World) -> None:
    alice, bob, eve = await w.users("alice", "bob", "eve")
    conv = await w.conv(alice, GROUP, bob)
    await w.send(alice, conv.id)
    for call in (
        w.svc.messages.history(eve, conv.id),
        w.svc.messages.history(eve, "no-such-conversation"),
        w.send(eve, conv.id),
    ):
        with pytest.raises(NotFound) as exc:
            await call
        assert exc.value.code.value == "not_found"


# =====================================================================================
# messages
# =====================================================================================


async def test_send_and_history(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    recorder = w.committed()
    message, created = await w.svc.messages.send(alice, conv.id, "c1", "你好 world")
    assert created and message.seq == 1 and message.body == "你好 world"
    assert recorder.kinds() == [("message", conv.id)]
    envelope = recorder.got[0][1]
    assert (envelope.sender_id, envelope.client_msg_id) == (alice.id, "c1")
    for i in range(2, 8):
        await w.send(bob, conv.id, f"m{i}")
    page, more = await w.svc.messages.history(bob, conv.id, limit=3)
    assert [m.seq for m in page] == [5, 6, 7] and more
    page, more = await w.svc.messages.history(bob, conv.id, before_seq=5, limit=3)
    assert [m.seq for m in page] == [2, 3, 4] and more
    page, more = await w.svc.messages.history(bob, conv.id, before_seq=2, limit=3)
    assert [m.seq for m in page] == [1] and not more
    page, more = await w.svc.messages.history(bob, conv.id, after_seq=5, limit=3)
    assert [m.seq for m in page] == [6, 7] and not more
    page, more = await w.svc.messages.history(bob, conv.id, after_seq=1, limit=3)
    assert [m.seq for m in page] == [2, 3, 4] and more
    assert message_json(page[0])["body"] == "m2"


@on_both_engines
async def test_send_is_idempotent(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    first, created = await w.svc.messages.send(alice, conv.id, "same-id", "original")
    recorder = w.committed()
    again, created_again = await w.svc.messages.send(alice, conv.id, "same-id", "a retry")
    assert created and not created_again
    assert again == first and again.body == "original"
    assert recorder.got == []  # no second event
    assert await w.seqs(alice, conv.id) == [1]
    # another sender may use the same id
    other, other_created = await w.svc.messages.send(bob, conv.id, "same-id", "bob's")
    assert other_created and other.seq == 2


@on_both_engines
async def test_concurrent_retries_store_one_message(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    results = await asyncio.gather(
        *(w.svc.messages.send(alice, conv.id, "dup", f"try {i}") for i in range(10))
    )
    assert len({m.id for m, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await w.seqs(alice, conv.id) == [1]


async def test_same_client_msg_id_to_another_conversation_is_a_conflict(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    one = await w.conv(alice, GROUP, bob)
    two = await w.conv(alice, GROUP, carol)
    await w.svc.messages.send(alice, one.id, "cm-1", "hello")
    with pytest.raises(Conflict) as exc:
        await w.svc.messages.send(alice, two.id, "cm-1", "hello")
    assert exc.value.details == {"field": "client_msg_id"}
    assert await w.seqs(alice, two.id) == []


@on_both_engines
async def test_concurrent_sends_get_gap_free_seqs(w: World) -> None:
    users = await w.users("alice", "bob", "carol", "dave")
    conv = await w.conv(users[0], GROUP, *users[1:])
    n = 120
    results = await asyncio.gather(
        *(w.send(users[i % 4], conv.id, f"message {i}", cmid=f"c{i}") for i in range(n))
    )
    assert sorted(m.seq for m in results) == list(range(1, n + 1))
    history, more = await w.svc.messages.history(users[1], conv.id, limit=200)
    assert [m.seq for m in history] == list(range(1, n + 1)) and not more
    assert {m.client_msg_id for m in history} == {f"c{i}" for i in range(n)}
    view, _ = await w.svc.conversations.view(users[0], conv.id)
    assert view.last_seq == n
    # the stream carries them in seq order
    stream = [
        e.payload["message"] for e in await w.events(users[2]) if e.payload["kind"] == "message"
    ]
    assert [m["seq"] for m in stream] == list(range(1, n + 1))  # type: ignore[index]


async def test_one_bad_send_fails_only_itself(w: World) -> None:
    alice, bob, eve = await w.users("alice", "bob", "eve")
    conv = await w.conv(alice, GROUP, bob)
    results = await asyncio.gather(
        w.send(alice, conv.id, "ok 1"),
        w.send(eve, conv.id, "not a member"),
        w.send(bob, conv.id, "ok 2"),
        w.send(alice, conv.id, "bad reply", reply_to_seq=99),
        return_exceptions=True,
    )
    assert isinstance(results[1], NotFound) and isinstance(results[3], NotFound)
    assert await w.seqs(alice, conv.id) == [1, 2]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", InvalidBody),
        ("   \n", InvalidBody),
        ("nul \x00", InvalidBody),
        ("x" * 16385, TooLarge),
        ("中" * 5462, TooLarge),
    ],
)
async def test_bad_bodies_write_nothing(w: World, body: str, error: type[Exception]) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    recorder = w.committed()
    with pytest.raises(error):
        await w.send(alice, conv.id, body)
    assert await w.seqs(alice, conv.id) == [] and recorder.got == []
    await w.send(alice, conv.id, "中" * 5461)  # 16383 bytes: within the limit


@on_both_engines
async def test_a_nul_character_is_an_invalid_body(w: World) -> None:
    """PostgreSQL text cannot hold U+0000: refused up front, on every engine alike."""
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    with pytest.raises(InvalidBody):
        await w.send(alice, conv.id, "nul \x00 byte")
    await w.send(alice, conv.id, "fine")
    with pytest.raises(InvalidBody):
        await w.svc.messages.edit(alice, conv.id, 1, "\x00")
    assert [m.body for m in (await w.svc.messages.history(bob, conv.id))[0]] == ["fine"]


async def test_message_limit_is_configurable(make_world: MakeWorld) -> None:
    w = await make_world(max_message_bytes=10)
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    await w.send(alice, conv.id, "0123456789")
    with pytest.raises(TooLarge):
        await w.send(alice, conv.id, "中中中中")  # 4 characters, 12 bytes


async def test_reply_to_seq(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    with pytest.raises(NotFound):
        await w.send(alice, conv.id, "reply to nothing", reply_to_seq=1)
    await w.send(alice, conv.id, "question")
    reply = await w.send(bob, conv.id, "answer", reply_to_seq=1)
    assert reply.reply_to_seq == 1 and reply.seq == 2
    with pytest.raises(NotFound):
        await w.send(bob, conv.id, "to the future", reply_to_seq=3)
    with pytest.raises(InvalidRequest):
        await w.send(bob, conv.id, "to zero", reply_to_seq=0)
    assert await w.seqs(alice, conv.id) == [1, 2]
    assert (await w.svc.messages.history(alice, conv.id))[0][1].reply_to_seq == 1


async def test_edit_within_and_after_the_window(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    message = await w.send(alice, conv.id, "tpyo")
    recorder = w.committed()
    w.clock.advance(50)
    edited = await w.svc.messages.edit(alice, conv.id, 1, "typo")
    assert edited.body == "typo" and edited.edited_at is not None
    assert edited.edited_at > message.created_at
    assert recorder.kinds() == [("message_edited", conv.id)]
    with pytest.raises(Forbidden):
        await w.svc.messages.edit(bob, conv.id, 1, "not yours")
    with pytest.raises(InvalidBody):
        await w.svc.messages.edit(alice, conv.id, 1, " ")
    with pytest.raises(NotFound):
        await w.svc.messages.edit(alice, conv.id, 2, "no such message")
    w.clock.advance(11)  # now past the 60 s window
    with pytest.raises(EditWindowPassed):
        await w.svc.messages.edit(alice, conv.id, 1, "too late")
    assert (await w.svc.messages.history(bob, conv.id))[0][0].body == "typo"
    assert len(recorder.got) == 1


@pytest.mark.parametrize("who", ["sender", "conversation owner", "org admin"])
async def test_recall_allowed(w: World, who: str) -> None:
    owner, bob, carol = await w.users("owner", "bob", "carol")
    admin = await w.user("admin", OrgRole.ADMIN)
    conv = await w.conv(owner, GROUP, bob, carol, admin)
    await w.send(bob, conv.id, "secret @carol")
    actor = {"sender": bob, "conversation owner": owner, "org admin": admin}[who]
    recorder = w.committed()
    recalled = await w.svc.messages.recall(actor, conv.id, 1)
    assert recalled.deleted and recalled.body == "" and recalled.mentions == ()
    assert message_json(recalled)["body"] == ""
    (stored,), _ = await w.svc.messages.history(carol, conv.id)
    assert stored.deleted and message_json(stored)["body"] == ""
    assert recorder.kinds() == [("message_deleted", conv.id)]
    assert [v.unread_mentions for v in await w.svc.conversations.list_for(carol)] == [0]
    # recalling again changes nothing; a recalled message is neither edited nor reacted to
    again = await w.svc.messages.recall(actor, conv.id, 1)
    assert again.deleted and len(recorder.got) == 1
    with pytest.raises(InvalidOperation):
        await w.svc.messages.edit(bob, conv.id, 1, "back")
    with pytest.raises(NotFound):
        await w.svc.messages.react(carol, conv.id, 1, "👍", True)


async def test_recall_refused_for_others(w: World) -> None:
    owner, bob, carol = await w.users("owner", "bob", "carol")
    eve = await w.user("eve")
    conv = await w.conv(owner, GROUP, bob, carol)
    await w.send(bob, conv.id, "mine")
    with pytest.raises(Forbidden):
        await w.svc.messages.recall(carol, conv.id, 1)
    with pytest.raises(NotFound):
        await w.svc.messages.recall(eve, conv.id, 1)
    assert not (await w.svc.messages.history(owner, conv.id))[0][0].deleted


@on_both_engines
async def test_reactions(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    await w.send(alice, conv.id)
    recorder = w.committed()
    react = w.svc.messages.react
    assert (await react(bob, conv.id, 1, "👍", True)).reactions == {"👍": [bob.id]}
    assert (await react(bob, conv.id, 1, "👍", True)).reactions == {"👍": [bob.id]}  # no-op
    after = await react(alice, conv.id, 1, "👍", True)
    assert after.reactions == {"👍": [bob.id, alice.id]}
    after = await react(alice, conv.id, 1, "🎉", True)
    after = await react(bob, conv.id, 1, "👍", False)
    assert after.reactions == {"👍": [alice.id], "🎉": [alice.id]}
    assert (await react(bob, conv.id, 1, "👍", False)).reactions == after.reactions  # no-op
    assert len(recorder.got) == 4  # no event for the two no-ops
    assert (await w.svc.messages.history(bob, conv.id))[0][0].reactions == after.reactions
    for bad in ("", " ", "x" * 65, "a\nb"):
        with pytest.raises(InvalidRequest):
            await react(bob, conv.id, 1, bad, True)
    with pytest.raises(NotFound):
        await react(bob, conv.id, 2, "👍", True)


@on_both_engines
async def test_mentions_and_unread_mentions(w: World) -> None:
    alice, bob, carol, _dave = await w.users("alice", "bob", "carol", "dave")
    conv = await w.conv(alice, GROUP, bob, carol)
    message = await w.send(alice, conv.id, "@bob @Carol @dave @nobody look, @alice too")
    assert set(message.mentions) == {bob.id, carol.id, alice.id}  # dave is not a member
    chinese = await w.send(alice, conv.id, "请@bob看一下")
    assert chinese.mentions == (bob.id,)

    async def mentions_of(user: User) -> int:
        views = await w.svc.conversations.list_for(user)
        (view,) = [v for v in views if v.conversation.id == conv.id]
        return view.unread_mentions

    assert await mentions_of(bob) == 2
    assert await mentions_of(carol) == 1
    assert await mentions_of(alice) == 0  # her own messages are read
    await w.svc.messages.mark_read(bob, conv.id, 1)
    assert await mentions_of(bob) == 1
    # editing a mention away removes it; adding one counts
    await w.svc.messages.edit(alice, conv.id, 2, "never mind")
    assert await mentions_of(bob) == 0
    await w.svc.messages.edit(alice, conv.id, 2, "actually @carol")
    assert await mentions_of(carol) == 2


async def test_read_positions_only_move_forward(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    for i in range(5):
        await w.send(alice, conv.id, f"m{i}")

    async def unread(user: User) -> tuple[int, int]:
        (view,) = await w.svc.conversations.list_for(user)
        assert view.unread == view.conversation.last_seq - view.member.read_seq
        return view.member.read_seq, view.unread

    assert await unread(bob) == (0, 5)
    assert await unread(alice) == (5, 0)  # the sender has read their own messages
    assert await w.svc.messages.mark_read(bob, conv.id, 3) == (3, 2)
    assert await w.svc.messages.mark_read(bob, conv.id, 1) == (3, 2)  # never back
    assert await unread(bob) == (3, 2)
    assert await w.svc.messages.mark_read(bob, conv.id, 99) == (5, 0)  # clamped to last_seq
    await w.send(alice, conv.id, "more")
    await w.send(alice, conv.id, "and more")
    assert await unread(bob) == (5, 2)
    with pytest.raises(InvalidRequest):
        await w.svc.messages.mark_read(bob, conv.id, -1)


async def test_read_events_go_to_members_in_groups_and_to_oneself_in_channels(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    group = await w.conv(alice, GROUP, bob)
    channel = await w.conv(alice, CHANNEL, bob, name="general")
    await w.send(alice, group.id)
    await w.send(alice, channel.id)
    start = await w.svc.sync.head()
    recorder = w.committed()
    await w.svc.messages.mark_read(bob, group.id, 1)
    await w.svc.messages.mark_read(bob, channel.id, 1)
    await w.svc.messages.mark_read(bob, channel.id, 1)  # did not move: no event
    assert recorder.kinds() == [("read", group.id), ("read", f"user:{bob.id}")]
    assert kinds_of(await w.events(alice, start)) == [("read", group.id)]
    bob_sees = await w.events(bob, start)
    assert kinds_of(bob_sees) == [("read", group.id), ("read", channel.id)]
    assert bob_sees[1].payload == {**bob_sees[1].payload, "user_id": bob.id, "seq": 1, "unread": 0}


# =====================================================================================
# sync
# =====================================================================================


@on_both_engines
async def test_events_since_returns_exactly_what_the_user_may_see(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    ab = await w.conv(alice, GROUP, bob, name="ab")
    ac = await w.conv(alice, GROUP, carol, name="ac")
    ch = await w.conv(alice, CHANNEL, carol, name="general")
    await w.send(alice, ab.id)
    await w.send(carol, ac.id)
    await w.send(alice, ch.id)
    await w.svc.messages.mark_read(carol, ch.id, 1)  # carol's own devices only
    await w.svc.messages.mark_read(bob, ab.id, 1)  # read receipt to the group
    await w.svc.presence.typing(alice, ab.id)  # ephemeral: never stored

    assert kinds_of(await w.events(bob)) == [
        ("conversation_created", ab.id),
        ("message", ab.id),
        ("read", ab.id),
    ]
    assert kinds_of(await w.events(carol)) == [
        ("conversation_created", ac.id),
        ("conversation_created", ch.id),
        ("message", ac.id),
        ("message", ch.id),
        ("read", ch.id),
    ]
    assert kinds_of(await w.events(alice)) == [
        ("conversation_created", ab.id),
        ("conversation_created", ac.id),
        ("conversation_created", ch.id),
        ("message", ab.id),
        ("message", ac.id),
        ("message", ch.id),
        ("read", ab.id),
    ]
    positions = [e.position for e in await w.events(alice)]
    assert positions == sorted(set(positions))


@on_both_engines
async def test_events_respect_membership_ranges(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    # a group that shares its history with members added later (groups do not by
    # default: test_channels.py), so that carol's range is up to her removal only
    conv, _ = await w.svc.conversations.create(
        alice, GROUP, [bob.id], name="team", shared_history=True
    )
    await w.send(alice, conv.id, "before carol")
    await w.svc.conversations.add_members(alice, conv.id, [carol.id])
    await w.send(alice, conv.id, "with carol")
    await w.svc.conversations.remove_member(alice, conv.id, carol.id)
    await w.send(alice, conv.id, "after carol")
    carol_sees = await w.events(carol)
    assert kinds_of(carol_sees) == [
        ("member_added", conv.id),
        ("message", conv.id),
        ("member_removed", conv.id),
    ]
    assert carol_sees[1].payload["message"]["body"] == "with carol"  # type: ignore[index]
    assert await w.seqs(carol, conv.id) == [1, 2]  # history up to the removal
    left_at = carol_sees[-1].position
    # back in: the events from the new join on
    await w.svc.conversations.add_members(alice, conv.id, [carol.id])
    await w.send(bob, conv.id, "welcome back")
    assert kinds_of(await w.events(carol, left_at)) == [
        ("member_added", conv.id),
        ("message", conv.id),
    ]
    assert await w.seqs(carol, conv.id) == [1, 2, 3, 4]
    assert len(await w.events(bob)) == 8  # bob saw all of it


async def test_events_since_pages_with_more(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    conv = await w.conv(alice, GROUP, bob)
    for i in range(6):
        await w.send(alice, conv.id, f"m{i}")
    everything = await w.events(bob)
    assert len(everything) == 7
    pages, since, more = [], 0, True
    while more:
        page, more = await w.svc.sync.events_since(bob, since, 3)
        pages.append((len(page), more))
        since = page[-1].position
    assert pages == [(3, True), (3, True), (1, False)]
    exact, more = await w.svc.sync.events_since(bob, 0, 7)
    assert len(exact) == 7 and not more
    paged: list[StoredEvent] = []
    since = 0
    while True:
        page, more = await w.svc.sync.events_since(bob, since, 2)
        paged += page
        if not more:
            break
        since = page[-1].position
    assert paged == everything
    head = await w.svc.sync.head()
    assert await w.svc.sync.events_since(bob, head, 10) == ([], False)
    with pytest.raises(InvalidPosition):
        await w.svc.sync.events_since(bob, head + 1, 10)


async def test_catch_up_routes_every_event_as_its_publish_did(w: World) -> None:
    """A gateway catching up from the store (`envelope_for` of the stored rows: the typed
    event read back, its routing) gets the very envelopes published after each commit,
    for every kind of event."""
    alice, bob, carol = await w.users("alice", "bob", "carol")
    head = await w.svc.sync.head()
    recorder = w.committed()
    group = await w.conv(alice, GROUP, bob)
    channel = await w.conv(alice, CHANNEL, bob, name="news")
    sent = await w.send(alice, group.id, "hi @bob")
    await w.svc.messages.edit(alice, group.id, sent.seq, "hello @bob")
    await w.svc.messages.react(bob, group.id, sent.seq, "👍", True)
    await w.svc.conversations.update(alice, group.id, "renamed", "a topic")
    await w.svc.conversations.add_members(alice, group.id, [carol.id])
    await w.svc.conversations.remove_member(alice, group.id, carol.id)
    await w.svc.conversations.set_role(alice, group.id, bob.id, MemberRole.MODERATOR)
    await w.svc.messages.pin(bob, group.id, sent.seq)
    await w.svc.saved.save(bob, group.id, sent.seq)  # message_saved: bob's devices only
    await w.svc.messages.recall(alice, group.id, sent.seq)  # and unpinned, and unsaved
    await w.svc.messages.mark_read(bob, group.id, sent.seq)  # every member is told
    news = await w.send(bob, channel.id)
    await w.svc.messages.mark_read(alice, channel.id, news.seq)  # only alice's devices

    async def notes() -> AsyncIterator[bytes]:
        yield b"the minutes\n"

    upload = await w.svc.files.upload(alice, "minutes.txt", "text/plain", notes())
    await w.svc.messages.send(alice, group.id, uuid.uuid4().hex, "minutes", None, [upload.id])
    await w.svc.files.mark_processed(upload.id, FileStatus.READY)  # file_updated, the group's
    root = await w.send(alice, channel.id, "a root")
    await w.svc.messages.send(  # thread_updated, the channel's
        bob, channel.id, uuid.uuid4().hex, "in its thread", thread_root_seq=root.seq
    )
    await w.svc.threads.mark_read(alice, channel.id, root.seq, root.seq + 1)  # alice's only
    # user_updated: one per conversation of alice's, and her own devices' copy
    await w.svc.users.update(None, alice.id, display_name="Alice Chen")
    # one's own notification settings: only their devices
    from tidings.services.notifications import DndChange, MemberNotifyChange

    await w.svc.notifications.set_member(bob, channel.id, MemberNotifyChange(level="all"))
    await w.svc.notifications.set_dnd(bob, DndChange(schedule=("22:00", "07:00")))
    # a scheduled message, edited and cancelled: only bob's devices
    later = (w.clock.now() + timedelta(hours=1)).isoformat()
    scheduled = await w.svc.scheduled.create(bob, group.id, "later", later)
    await w.svc.scheduled.edit(bob, scheduled.id, body="later, edited")
    await w.svc.scheduled.cancel(bob, scheduled.id)
    stored = await w.svc.sync.committed_between(head, await w.svc.sync.head())
    published = [envelope for _, envelope in recorder.got]
    assert [envelope_for(e) for e in stored] == published
    assert {orjson.loads(e.frame)["event"]["kind"] for e in published} == set(EventKind)
    reads = [e for e in published if orjson.loads(e.frame)["event"]["kind"] == "read"]
    assert [(e.conversation_id, e.user_id) for e in reads] == [(group.id, None), (None, alice.id)]
    kinds = {orjson.loads(e.frame)["event"]["kind"]: e for e in published}
    assert (kinds["thread_updated"].conversation_id, kinds["thread_updated"].user_id) == (
        channel.id,
        None,
    )
    assert (kinds["thread_read"].conversation_id, kinds["thread_read"].user_id) == (None, alice.id)
    private = (
        "message_saved",
        "message_unsaved",
        "scheduled_message_created",
        "scheduled_message_updated",
        "scheduled_message_deleted",
    )
    for kind in private:
        assert (kinds[kind].conversation_id, kinds[kind].user_id) == (None, bob.id)


@pytest.mark.parametrize(("raw", "expected"), [(None, 0), ("", 0), ("0", 0), ("42", 42)])
def test_parse_position(raw: str | None, expected: int) -> None:
    assert parse_position(raw) == expected


@pytest.mark.parametrize("raw", ["-1", "abc", "1.5", "１２", "9" * 20, " 1"])
def test_parse_position_rejects(raw: str) -> None:
    with pytest.raises(InvalidPosition):
        parse_position(raw)


# --- stale state + its events == a fresh fetch (STYLE.md, section 7) -----------------


def apply_message_event(state: dict[int, dict[str, Any]], event: dict[str, Any]) -> None:
    """What a client does with message events to the messages it holds."""
    kind = event["kind"]
    if kind in ("message", "message_edited", "message_deleted"):
        message = event["message"]
        state[message["seq"]] = message
    elif kind == "reaction":  # applied as a delta, like a client that has the message
        reactions = state[event["seq"]]["reactions"]
        users = reactions.setdefault(event["emoji"], [])
        if event["added"]:
            users.append(event["user_id"])
        else:
            users.remove(event["user_id"])
            if not users:
                del reactions[event["emoji"]]


@on_both_engines
async def test_sync_messages_stale_history_plus_events_equals_fresh(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    conv = await w.conv(alice, GROUP, bob, carol)
    for i, sender in enumerate((alice, bob, carol, bob, alice)):
        await w.send(sender, conv.id, f"m{i + 1}")
    await w.svc.messages.react(carol, conv.id, 5, "👀", True)
    # bob's client: a position, then a page of history
    since = await w.svc.sync.head()
    page, _ = await w.svc.messages.history(bob, conv.id)
    state = {m.seq: message_json(m) for m in page}
    # what happens while bob is away
    m = w.svc.messages
    await m.edit(alice, conv.id, 1, "m1 edited for @bob")
    await m.recall(bob, conv.id, 2)
    await m.recall(alice, conv.id, 3)  # the owner recalls carol's
    await m.react(carol, conv.id, 4, "👍", True)
    await m.react(bob, conv.id, 4, "👍", True)
    await m.react(alice, conv.id, 4, "🎉", True)
    await m.react(carol, conv.id, 4, "👍", False)
    await m.react(carol, conv.id, 5, "👀", False)
    await w.send(carol, conv.id, "m6 replying", reply_to_seq=4)
    await m.edit(carol, conv.id, 6, "m6 replying, edited")
    await m.react(bob, conv.id, 6, "❤️", True)
    await w.send(alice, conv.id, "m7 to be recalled")
    await m.recall(alice, conv.id, 7)
    await m.mark_read(carol, conv.id, 7)
    events, more = await w.svc.sync.events_since(bob, since, 1000)
    assert not more and len(events) == 14
    for event in events:
        apply_message_event(state, event.payload)
    fresh, _ = await w.svc.messages.history(bob, conv.id)
    assert [state[s] for s in sorted(state)] == [message_json(x) for x in fresh]
    assert state[2]["deleted"] and state[4]["reactions"] == {"👍": [bob.id], "🎉": [alice.id]}


def apply_membership_event(
    me: str,
    conversations: dict[str, dict[str, Any]],
    members: dict[str, set[str]],
    event: dict[str, Any],
) -> None:
    """What a client does with membership events to its conversation list."""
    kind, cid = event["kind"], event["conversation_id"]
    if kind in ("conversation_created", "member_added", "conversation_updated"):
        conversations[cid] = dict(event["conversation"])
        if kind == "member_added" and cid in members:
            members[cid].update(event["user_ids"])
    elif kind == "member_removed":
        if event["user_id"] == me:
            conversations.pop(cid, None)
            members.pop(cid, None)
        else:
            conversations[cid]["member_count"] -= 1
            members.get(cid, set()).discard(event["user_id"])
    elif kind == "message":
        conversations[cid]["last_seq"] = event["message"]["seq"]
        conversations[cid]["last_activity_at"] = event["message"]["created_at"]


@on_both_engines
async def test_sync_membership_stale_list_plus_events_equals_fresh(w: World) -> None:
    alice, bob, carol, dave = await w.users("alice", "bob", "carol", "dave")
    team = await w.conv(alice, GROUP, bob, name="team")
    doomed = await w.conv(alice, GROUP, bob, name="doomed")
    await w.send(alice, team.id, "hi")

    async def fetch() -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
        views = await w.svc.conversations.list_for(bob)
        conversations = {v.conversation.id: conversation_json(v.conversation) for v in views}
        members = {}
        for cid in conversations:
            _, found = await w.svc.conversations.view(bob, cid)
            members[cid] = {x.user_id for x in found}
        return conversations, members

    since = await w.svc.sync.head()
    conversations, members = await fetch()
    # while bob is away
    c = w.svc.conversations
    await c.add_members(alice, team.id, [carol.id, dave.id])
    await w.send(carol, team.id, "hello all")
    await c.update(alice, team.id, "the team", "now with a topic")
    await c.remove_member(alice, team.id, dave.id)
    await c.remove_member(carol, team.id, carol.id)
    fresh_conv = await w.conv(carol, GROUP, bob, name="new one")
    await c.add_members(bob, fresh_conv.id, [dave.id])
    await c.remove_member(alice, doomed.id, bob.id)
    await w.send(alice, doomed.id, "bob is gone")
    await w.conv(alice, GROUP, carol, name="not bob's")
    events, more = await w.svc.sync.events_since(bob, since, 1000)
    assert not more
    for event in events:
        apply_membership_event(bob.id, conversations, members, event.payload)
    fresh_conversations, fresh_members = await fetch()
    assert conversations == fresh_conversations
    assert set(conversations) == {team.id, fresh_conv.id}
    # conversation_created carries no member list: a client fetches a new one's members
    assert set(members) == {team.id}
    assert members[team.id] == fresh_members[team.id] == {alice.id, bob.id}


def apply_role_event(
    me: str,
    conversations: dict[str, dict[str, Any]],
    roles: dict[str, dict[str, str]],
    event: dict[str, Any],
) -> None:
    """What a client does with role and settings events to its conversation list (each
    with the caller's own role) and the member lists (user -> role) it holds."""
    kind, cid = event["kind"], event["conversation_id"]
    if kind == "conversation_updated":
        conversations[cid] = {**event["conversation"], "role": conversations[cid]["role"]}
    elif kind == "member_role_changed":
        roles[cid][event["user_id"]] = event["role"]
        if event["user_id"] == me:
            conversations[cid]["role"] = event["role"]


@on_both_engines
async def test_sync_roles_and_settings_stale_plus_events_equals_fresh(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    chan = await w.conv(alice, CHANNEL, bob, carol, name="general")
    team = await w.conv(alice, GROUP, bob, name="team")
    c = w.svc.conversations

    async def fetch() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
        views = await c.list_for(bob)
        conversations = {
            v.conversation.id: {**conversation_json(v.conversation), "role": v.member.role.value}
            for v in views
        }
        roles = {}
        for cid in conversations:
            _, found = await c.view(bob, cid)
            roles[cid] = {m.user_id: m.role.value for m in found}
        return conversations, roles

    since = await w.svc.sync.head()
    conversations, roles = await fetch()
    # while bob is away
    await c.set_role(alice, chan.id, bob.id, MemberRole.MODERATOR)
    await c.set_role(alice, chan.id, carol.id, MemberRole.OWNER)
    await c.update(alice, chan.id, None, None, private=True, announcement=True)
    await c.update(carol, chan.id, None, None, shared_history=False)
    await c.set_role(carol, chan.id, alice.id, MemberRole.MEMBER)
    await c.update(bob, chan.id, "general news", None)  # a moderator renames
    await c.set_role(alice, team.id, bob.id, MemberRole.OWNER)
    await c.update(bob, team.id, None, None, announcement=True)
    events, more = await w.svc.sync.events_since(bob, since, 1000)
    assert not more
    kinds = [e.payload["kind"] for e in events]
    assert kinds.count("member_role_changed") == 4 and kinds.count("conversation_updated") == 4
    for event in events:
        apply_role_event(bob.id, conversations, roles, event.payload)
    assert (conversations, roles) == await fetch()
    assert conversations[chan.id]["private"] and conversations[chan.id]["announcement"]
    assert roles[chan.id] == {alice.id: "member", bob.id: "moderator", carol.id: "owner"}
    assert conversations[team.id]["role"] == "owner"


@on_both_engines
async def test_sync_a_later_member_stale_history_plus_events_equals_fresh(w: World) -> None:
    """History not shared with members added later (issue 17): carol, added at seq 3,
    reads from 4. The events about messages 1-3 (edits, recalls, reactions, pins, thread
    updates of their threads) are not hers; what she holds plus what she gets is what a
    fresh fetch (history and pins) shows her."""
    alice, bob, carol = await w.users("alice", "bob", "carol")
    conv = await w.conv(alice, GROUP, bob)  # a group: history not shared
    m = w.svc.messages

    async def notes() -> AsyncIterator[bytes]:
        yield b"the minutes\n"

    uploads = [await w.svc.files.upload(alice, "minutes.txt", "text/plain", notes())]
    await m.send(alice, conv.id, uuid.uuid4().hex, "m1", None, [uploads[0].id])
    for i in range(1, 3):
        await w.send(alice, conv.id, f"m{i + 1}")
    await w.svc.conversations.add_members(alice, conv.id, [carol.id])
    uploads.append(await w.svc.files.upload(alice, "minutes.txt", "text/plain", notes()))
    await m.send(alice, conv.id, uuid.uuid4().hex, "m4", None, [uploads[1].id])
    since = await w.svc.sync.head()
    page, _ = await m.history(carol, conv.id)
    state = {x.seq: message_json(x) for x in page}
    pins: list[int] = [p.seq for p, _msg in await m.pins(carol, conv.id)]
    assert sorted(state) == [4] and pins == []
    # while carol is away: about the messages from before her, and about hers
    await m.edit(alice, conv.id, 1, "m1 edited: not for carol")
    await m.react(bob, conv.id, 1, "👍", True)
    await m.pin(alice, conv.id, 2)
    await m.recall(alice, conv.id, 3)
    await m.send(bob, conv.id, uuid.uuid4().hex, "on m1", thread_root_seq=1)  # seq 5
    await m.edit(alice, conv.id, 4, "m4 edited")
    await m.react(bob, conv.id, 4, "🎉", True)
    await m.pin(alice, conv.id, 4)
    await m.send(bob, conv.id, uuid.uuid4().hex, "on m4", thread_root_seq=4)  # seq 6
    await m.recall(alice, conv.id, 2)  # pinned: unpinned too
    for upload in uploads:  # the job after the upload: file_updated about m1, then m4
        await w.svc.files.mark_processed(upload.id, FileStatus.READY)
    events, more = await w.svc.sync.events_since(carol, since, 1000)
    assert not more
    for event in events:
        p = event.payload
        if p["kind"] == "file_updated":
            held = state[p["seq"]]  # type: ignore[index]
            held["attachments"] = [p["file"]]
        elif p["kind"] == "message_pinned":
            pins.insert(0, int(p["seq"]))  # type: ignore[call-overload]
        elif p["kind"] == "message_unpinned":
            pins = [x for x in pins if x != p["seq"]]
        else:
            apply_message_event(state, p)
    fresh, _ = await m.history(carol, conv.id)
    assert [state[s] for s in sorted(state)] == [message_json(x) for x in fresh]
    assert pins == [p.seq for p, _msg in await m.pins(carol, conv.id)] == [4]
    kinds = [(e.payload["kind"], e.payload.get("seq")) for e in events]
    assert ("thread_updated", None) in kinds and ("file_updated", 4) in kinds
    assert ("file_updated", 1) not in kinds
    assert state[4]["attachments"][0]["status"] == "ready"
    assert all("not for carol" not in str(e.payload) for e in events)
    # bob, a first member, got every one of them: edit, reaction, pin, recall, thread,
    # recall and unpin, file update
    theirs, _ = await w.svc.sync.events_since(bob, since, 1000)
    assert len(theirs) - len(events) == 8


@on_both_engines
async def test_sync_pins_stale_list_plus_events_equals_fresh(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    team = await w.conv(alice, GROUP, bob, name="team")
    for i in range(5):
        await w.send(alice, team.id, f"m{i + 1}")
    m = w.svc.messages
    await m.pin(alice, team.id, 1)

    async def fetch() -> list[dict[str, Any]]:  # a client keeps the pins, newest first
        return [{"seq": p.seq, "pinned_by": p.pinned_by} for p, _msg in await m.pins(bob, team.id)]

    since = await w.svc.sync.head()
    pins = await fetch()
    # while bob is away
    await m.pin(alice, team.id, 3)
    await m.pin(alice, team.id, 4)
    await m.pin(alice, team.id, 3)  # again: nothing
    await m.unpin(alice, team.id, 1)
    await m.unpin(alice, team.id, 2)  # not pinned: nothing
    await m.recall(alice, team.id, 4)  # recalled: unpinned
    await m.pin(alice, team.id, 5)
    events, more = await w.svc.sync.events_since(bob, since, 1000)
    assert not more
    for event in events:
        p = event.payload
        if p["kind"] == "message_pinned":
            pins.insert(0, {"seq": p["seq"], "pinned_by": p["by"]})
        elif p["kind"] == "message_unpinned":
            pins = [x for x in pins if x["seq"] != p["seq"]]
    assert pins == await fetch()
    assert [x["seq"] for x in pins] == [5, 3]


def apply_read_event(me: str, state: dict[str, dict[str, int]], event: dict[str, Any]) -> None:
    """What a client does to its (last_seq, read_seq) per conversation with the stream."""
    kind, cid = event["kind"], event["conversation_id"]
    if kind == "conversation_created":
        state[cid] = {"last_seq": event["conversation"]["last_seq"], "read_seq": 0}
    elif kind == "member_added" and me in event["user_ids"]:
        last = event["conversation"]["last_seq"]  # a new member starts with nothing unread
        state[cid] = {"last_seq": last, "read_seq": last}
    elif kind == "member_removed" and event["user_id"] == me:
        state.pop(cid, None)
    elif kind == "message":
        state[cid]["last_seq"] = event["message"]["seq"]
        if event["message"]["sender_id"] == me:  # your own message is read
            state[cid]["read_seq"] = event["message"]["seq"]
    elif kind == "read" and event["user_id"] == me:
        state[cid]["read_seq"] = event["seq"]
        assert event["unread"] == state[cid]["last_seq"] - event["seq"]


async def test_sync_read_positions_stale_list_plus_events_equals_fresh(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    group = await w.conv(alice, GROUP, bob, name="group")
    channel = await w.conv(alice, CHANNEL, bob, name="general")
    later = await w.conv(alice, GROUP, carol, name="later")
    for cid in (group.id, channel.id, later.id):
        await w.send(alice, cid, "before")

    async def fetch() -> dict[str, dict[str, int]]:
        return {
            v.conversation.id: {"last_seq": v.conversation.last_seq, "read_seq": v.member.read_seq}
            for v in await w.svc.conversations.list_for(bob)
        }

    since = await w.svc.sync.head()
    state = await fetch()
    assert {k: v["read_seq"] for k, v in state.items()} == {group.id: 0, channel.id: 0}
    m = w.svc.messages
    await w.send(alice, group.id, "two")
    await m.mark_read(bob, group.id, 1)  # from bob's other device
    await m.mark_read(alice, group.id, 2)  # someone else's receipt
    await m.mark_read(bob, channel.id, 1)  # channel: only bob's own devices hear it
    await w.send(alice, channel.id, "c2")
    await w.send(alice, channel.id, "c3")
    await m.mark_read(bob, channel.id, 2)
    await w.send(bob, group.id, "bob writes")  # read up to his own message
    await w.send(alice, group.id, "after bob")
    await w.svc.conversations.add_members(alice, later.id, [bob.id])  # joins with history
    await w.send(carol, later.id, "hi bob")
    events, _ = await w.svc.sync.events_since(bob, since, 1000)
    for event in events:
        apply_read_event(bob.id, state, event.payload)
    assert state == await fetch()
    assert state[group.id] == {"last_seq": 4, "read_seq": 3}
    assert state[later.id] == {"last_seq": 2, "read_seq": 1}


# =====================================================================================
# presence and typing (ephemeral)
# =====================================================================================


async def test_presence_across_devices(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    await w.conv(alice, DIRECT, bob)
    await w.conv(alice, CHANNEL, carol, name="general")  # channels share no presence
    recorder = w.listen(user_topic(bob.id), user_topic(carol.id))
    p = w.svc.presence
    assert await p.set_state(alice, "phone", PresenceState.ONLINE) == "online"
    assert await p.set_state(alice, "laptop", PresenceState.AWAY) == "online"
    assert await p.states(bob, [alice.id, carol.id]) == {alice.id: "online", carol.id: "offline"}
    assert await p.set_state(alice, "phone", None) == "away"
    assert await p.set_state(alice, "laptop", None) == "offline"
    frames = [(topic, env.frame) for topic, env in recorder.got]
    assert [t for t, _ in frames] == [user_topic(bob.id)] * 3  # only on changes, only contacts
    assert ['"away"' in f for _, f in frames] == [False, True, False]
    assert all(env.kind is EnvelopeKind.EPHEMERAL for _, env in recorder.got)


async def test_typing_is_ephemeral_and_for_members_only(w: World) -> None:
    alice, bob, eve = await w.users("alice", "bob", "eve")
    conv = await w.conv(alice, GROUP, bob)
    head = await w.svc.sync.head()
    recorder = w.listen(conversation_topic(conv.id))
    await w.svc.presence.typing(alice, conv.id)
    ((_, envelope),) = recorder.got
    assert envelope.kind is EnvelopeKind.EPHEMERAL and envelope.sender_id == alice.id
    assert envelope.position is None
    assert await w.svc.sync.head() == head  # nothing stored
    with pytest.raises(NotFound):
        await w.svc.presence.typing(eve, conv.id)


async def test_a_rename_by_the_identity_provider_reaches_everyone_holding_the_name(
    w: World,
) -> None:
    """An account a directory keeps, renamed there: the next provisioning writes the new
    name and sends `user_updated` to each of its conversations and its own devices, as a
    rename by an admin or by the user does (services/profile.py)."""
    from tidings.core.models import ExternalProfile

    (alice,) = await w.users("alice")
    kim = await w.svc.identity.provision("ldap", "s-kim", ExternalProfile("kim", "Kim"))
    group = await w.conv(alice, GROUP, kim)
    recorder = w.committed()
    await w.svc.identity.provision("ldap", "s-kim", ExternalProfile("kim", "Kim Park"))
    assert recorder.kinds() == [("user_updated", group.id), ("user_updated", f"user:{kim.id}")]
    event = orjson.loads(recorder.got[0][1].frame)["event"]
    assert event["user"]["display_name"] == "Kim Park" and "preferences" not in event
    recorder.got.clear()
    await w.svc.identity.provision("ldap", "s-kim", ExternalProfile("kim", "Kim Park"))
    assert recorder.kinds() == []  # nothing changed, nothing sent


@on_both_engines
async def test_a_dnd_schedule_time_with_a_trailing_newline_is_an_invalid_request(
    w: World,
) -> None:
    """The service checks a schedule's times whole (its callers need not bound them): a
    "HH:MM" with a line break after it was let through by the pattern's `$` and then
    failed as a ValueError (a 500) in time.fromisoformat; nothing is written."""
    from tidings.services.notifications import DndChange

    ann = await w.user("ann")
    for start, end, field in [
        ("22:00\n", "07:00", "dnd_schedule.start"),
        ("22:00", "07:00\n", "dnd_schedule.end"),
        ("22:00\r\n", "07:00", "dnd_schedule.start"),
    ]:
        with pytest.raises(InvalidRequest) as refused:
            await w.svc.notifications.set_dnd(ann, DndChange(schedule=(start, end)))
        assert refused.value.details.get("field") == field
    assert (await w.svc.notifications.dnd(ann)).schedule is None
    assert (await w.svc.notifications.set_dnd(ann, DndChange(schedule=("22:00", "07:00")))).schedule


async def test_sync_notification_settings_stale_plus_events_equals_fresh(w: World) -> None:
    from tidings.core.models import MemberNotify
    from tidings.protocol.wire import dnd_json, notify_json
    from tidings.services.notifications import UNSET, DndChange, MemberNotifyChange

    alice, bob = await w.users("alice", "bob")
    team = await w.conv(alice, GROUP, bob, name="team")
    chan = await w.conv(alice, CHANNEL, bob, name="news")
    n, c = w.svc.notifications, w.svc.conversations
    later = (w.clock.now() + timedelta(hours=3)).isoformat()

    async def fetch() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        views = await c.list_for(bob)
        return (
            {v.conversation.id: notify_json(v.member.notify) for v in views},
            dnd_json(await n.dnd(bob)),
        )

    default = notify_json(MemberNotify())
    await n.set_member(bob, team.id, MemberNotifyChange(level="none"))
    since = await w.svc.sync.head()
    settings, dnd = await fetch()
    # while bob's other tab is away
    await n.set_member(bob, team.id, MemberNotifyChange(level="all", muted_until=later))
    await n.set_member(bob, chan.id, MemberNotifyChange(muted=True))
    await n.set_member(bob, chan.id, MemberNotifyChange(level="none"))
    await n.set_member(bob, chan.id, MemberNotifyChange(level="none"))  # nothing changes
    await n.set_member(alice, chan.id, MemberNotifyChange(level="all"))  # alice's: not bob's
    await n.set_dnd(bob, DndChange(schedule=("23:00", "06:30")))
    await n.set_dnd(bob, DndChange(until=later, schedule=UNSET))
    await c.remove_member(bob, team.id, bob.id)  # he leaves: and comes back with defaults
    await c.add_members(alice, team.id, [bob.id])
    events, more = await w.svc.sync.events_since(bob, since, 1000)
    assert not more
    kinds = [e.payload["kind"] for e in events]
    assert kinds.count("notifications_updated") == 3 and kinds.count("dnd_updated") == 2
    for event in events:
        p = event.payload
        if p["kind"] == "notifications_updated":
            settings[p["conversation_id"]] = p["notifications"]
        elif p["kind"] == "dnd_updated":
            dnd = p["dnd"]
        elif p["kind"] == "member_removed" and p["user_id"] == bob.id:
            settings.pop(p["conversation_id"])
        elif p["kind"] == "member_added" and bob.id in p["user_ids"]:
            settings[p["conversation_id"]] = default
    assert (settings, dnd) == await fetch()
    assert settings[chan.id] == {"level": "none", "muted": True, "muted_until": None}
    assert settings[team.id] == default
    assert dnd["schedule"] == {"start": "23:00", "end": "06:30"} and dnd["until"]


# =====================================================================================
# notifications for closed tabs: whom the "notifications" consumer reads
# =====================================================================================


async def test_reachable_members_are_only_those_a_push_or_a_digest_reaches(
    make_world: MakeWorld,
) -> None:
    """The consumer reads a conversation's members a push or a mail can reach, in one
    query, not every member: a push subscription, or digests (an address, digests on,
    not disabled, no bot); never one who left. And the jobs still go to them."""
    from tidings.core.models import MemberNotify
    from tidings.core.notifications import NotifySettings, PushSubscription, SubscriptionId

    w = await make_world(smtp_host="127.0.0.1")
    ann, bob, cat, dan, eve, gus, hal = await w.users(
        "ann", "bob", "cat", "dan", "eve", "gus", "hal"
    )
    bot, _token = await w.svc.bots.create(None, "robo")
    conv = await w.conv(ann, ConversationKind.GROUP, bob, cat, dan, eve, gus, hal, bot)
    async with w.container.store.write() as tx:
        for n, user in enumerate((bob, hal)):
            await tx.put_push_subscription(
                PushSubscription(
                    id=SubscriptionId(f"sub{n}"),
                    user_id=user.id,
                    token_id=f"token{n}",
                    endpoint=f"https://push.example/{n}",
                    p256dh="p",
                    auth="a",
                    created_at=w.clock.now(),
                )
            )
        for user in (cat, dan, gus, bot):
            await tx.set_user_email(user.id, f"{user.username}@example.org")
        await tx.set_notify_settings(dan.id, NotifySettings(email_digests=False))
        await tx.set_disabled(gus.id, True)
    await w.svc.conversations.remove_member(ann, conv.id, hal.id)

    async with w.container.store.read() as tx:
        every = await tx.reachable_members(conv.id, push=True, mail=True)
        pushed = await tx.reachable_members(conv.id, push=True, mail=False)
        mailed = await tx.reachable_members(conv.id, push=False, mail=True)
        neither = await tx.reachable_members(conv.id, push=False, mail=False)
        members = await tx.list_members(conv.id)
    assert len(members) == 7  # everyone but hal, who left
    assert {m.user_id: (m.push, m.mail) for m in every} == {
        bob.id: (True, False),
        cat.id: (False, True),
    }
    assert [m.user_id for m in pushed] == [bob.id] and pushed[0].mail is False
    assert [m.user_id for m in mailed] == [cat.id] and mailed[0].push is False
    assert neither == []

    # settings travel with them: bob mutes, and is pushed nothing
    await w.send(ann, conv.id, f"hello @{cat.username} @{dan.username} @{gus.username}")
    events = [e for e in await w.events(ann) if e.payload.get("kind") == "message"]
    jobs = await w.svc.notify_jobs.jobs_for(events)
    seq = events[-1].payload["message"]["seq"]  # type: ignore[index]
    assert sorted((j.kind, j.payload["user_id"]) for j in jobs) == [
        ("digest.send", cat.id),
        ("push.notify", bob.id),
    ]
    push_job = next(j for j in jobs if j.kind == "push.notify")
    assert push_job.job_id == f"push:{conv.id}:{seq}:{bob.id}"
    async with w.container.store.write() as tx:
        await tx.set_member_notify(conv.id, bob.id, MemberNotify(muted=True))
    async with w.container.store.read() as tx:
        (bob_now,) = await tx.reachable_members(conv.id, push=True, mail=False)
    assert bob_now.notify.muted
    assert [j.kind for j in await w.svc.notify_jobs.jobs_for(events)] == ["digest.send"]
