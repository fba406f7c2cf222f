"""The SDK against the application in-process (`server`, over its loopback socket), and
against the real server process (`live_server`) where the server crashes or restarts.

What must hold: a send is stored once however often it is retried (dropped responses,
5xx, a server crash in the middle), and the event iterator yields every event once,
in order, across dropped connections and server restarts.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import AppServer
from tidings.sdk import (
    Client,
    Conflict,
    ConversationCreated,
    Event,
    EventStream,
    InvalidRequest,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    NotFound,
    ReactionChanged,
    ReadMoved,
    SecondFactor,
    StreamClosed,
    Typing,
    Unauthenticated,
    User,
)

PASSWORD = "sdk-test-password-1"


async def call(fn: Callable[[], Any]) -> None:
    """Run a fixture method (restart/kill) without blocking the event loop."""
    if inspect.iscoroutinefunction(fn):
        await fn()
    else:
        await asyncio.to_thread(fn)


@pytest.fixture
async def admin(request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    """The owner, signed in to the test's server: the real process where the test asks
    for `live_server` (to kill or restart it), else the in-process one."""
    name = "live_server" if "live_server" in request.fixturenames else "server"
    server = request.getfixturevalue(name)
    async with Client(server.url) as client:
        await client.login(server.admin_username, server.admin_password)
        yield client


async def new_user(admin: Client, name: str) -> User:
    return await admin.create_user(
        f"{name}{secrets.token_hex(3)}", PASSWORD, display_name=name.title()
    )


async def signed_in(url: str, user: User, **kwargs: Any) -> Client:
    client = Client(url, **kwargs)
    await client.login(user.username, PASSWORD)
    return client


async def collect_messages(stream: EventStream, count: int, within: float = 60) -> list[Event]:
    """Events from ``stream`` until ``count`` MessageSent were seen."""
    events: list[Event] = []
    seen = 0

    async def run() -> None:
        nonlocal seen
        async for event in stream:
            events.append(event)
            if isinstance(event, MessageSent):
                seen += 1
                if seen == count:
                    return

    await asyncio.wait_for(run(), within)
    return events


def assert_exactly_once_in_order(events: list[Event], expected_bodies: list[str]) -> None:
    positions = [int(e.position) for e in events if e.position is not None]
    assert positions == sorted(positions), "positions must increase"
    assert len(positions) == len(set(positions)), "no event twice"
    messages = [e.message for e in events if isinstance(e, MessageSent)]
    assert [m.body for m in messages] == expected_bodies
    seqs = [m.seq for m in messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"gap or disorder: {seqs}"


class LoseResponses(httpx.AsyncBaseTransport):
    """Forwards matching requests to the server, then loses the answer.

    ``mode="drop"`` raises a read error (the connection died after the server
    committed); ``mode="503"`` turns the answer into a 503.
    """

    def __init__(self, losses: int, mode: str = "drop") -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.losses = losses
        self.mode = mode
        self.attempts = 0
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/messages"):
            self.attempts += 1
            if self.lost < self.losses:
                self.lost += 1
                await response.aread()
                await response.aclose()
                if self.mode == "503":
                    return httpx.Response(
                        503,
                        json={"error": {"code": "unavailable", "message": "injected"}},
                        request=request,
                    )
                raise httpx.ReadError("connection dropped (injected)", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_rest_surface_and_typed_events(server: AppServer, admin: Client) -> None:
    alice_u = await new_user(admin, "alice")
    bob_u = await new_user(admin, "bob")
    alice = await signed_in(server.url, alice_u)
    bob = await signed_in(server.url, bob_u)
    try:
        assert (await alice.me()).id == alice_u.id
        found = await alice.search_users(bob_u.username)
        assert [u.id for u in found] == [bob_u.id]
        assert (await alice.get_user(bob_u.id)).username == bob_u.username

        stream = await bob.subscribe()
        conv = await alice.create_conversation("group", [bob_u.id], name="sdk")
        full = await bob.conversation(conv.id)
        assert full.members is not None
        assert {m.user_id for m in full.members} == {alice_u.id, bob_u.id}

        first = await alice.send(conv.id, f"hi @{bob_u.username}")
        assert first.seq == 1
        assert bob_u.id in first.mentions
        reply = await bob.reply(first, "hello back")
        assert (reply.seq, reply.reply_to_seq) == (2, 1)
        edited = await alice.edit(conv.id, 1, "hi, edited")
        assert edited.body == "hi, edited" and edited.edited_at is not None
        reacted = await bob.react(conv.id, 1, "👍")
        assert reacted.reactions["👍"] == (bob_u.id,)
        await bob.unreact(conv.id, 1, "👍")
        # Alice reads Bob's reply (her own message counts as read already): a receipt.
        state = await alice.read(conv.id, 2)
        assert (state.read_seq, state.unread) == (2, 0)
        await alice.typing(conv.id)
        recalled = await alice.recall(conv.id, 1)
        assert recalled.deleted and recalled.body == ""

        page = await bob.history(conv.id)
        assert [m.seq for m in page.messages] == [1, 2]
        assert page.messages[0].deleted
        listed = {c.id: c for c in await bob.conversations()}
        assert listed[conv.id].last_seq == 2 and listed[conv.id].unread == 0

        stored: list[type[Event]] = []
        ephemeral: list[type[Event]] = []
        while len(stored) < 8:
            try:
                event = await stream.next(10)
            except TimeoutError:
                raise AssertionError(f"got only {stored}") from None
            (stored if event.position is not None else ephemeral).append(type(event))
        assert stored == [
            ConversationCreated,
            MessageSent,
            MessageSent,
            MessageEdited,
            ReactionChanged,
            ReactionChanged,
            ReadMoved,
            MessageDeleted,
        ]
        assert Typing in ephemeral or (await _typing_arrives(stream))

        synced = await bob.sync_all("0")
        assert [e.position for e in synced.events] == [
            str(p) for p in range(1, len(synced.events) + 1)
        ]
        assert synced.events[-1].kind == "message_deleted"

        with pytest.raises(NotFound):
            await bob.history("no-such-conversation")
        other = await alice.create_conversation("direct", [bob_u.id])
        with pytest.raises(Conflict):
            await alice.send(other.id, "x", client_msg_id=first.client_msg_id)
    finally:
        await alice.aclose()
        await bob.aclose()


async def _typing_arrives(stream: EventStream) -> bool:
    try:
        while True:
            if isinstance(await stream.next(2), Typing):
                return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("mode", ["drop", "503"])
async def test_send_retry_never_duplicates(server: AppServer, admin: Client, mode: str) -> None:
    alice_u = await new_user(admin, "alice")
    bob_u = await new_user(admin, "bob")
    faults = LoseResponses(losses=2, mode=mode)
    alice = await signed_in(server.url, alice_u, transport=faults, backoff_base=0.01)
    try:
        conv = await alice.create_conversation("direct", [bob_u.id])
        message = await alice.send(conv.id, "only once")
        assert faults.attempts == 3 and faults.lost == 2  # two answers lost, one retry won
        later = await alice.send(conv.id, "second")
        assert (message.seq, later.seq) == (1, 2)
        page = await admin_view(server.url, alice_u, conv.id)
        assert [(m.seq, m.body) for m in page] == [(1, "only once"), (2, "second")]
        assert page[0].client_msg_id == message.client_msg_id
    finally:
        await alice.aclose()


async def admin_view(url: str, user: User, cid: str) -> list[Any]:
    async with Client(url) as client:
        await client.login(user.username, PASSWORD)
        return [m async for m in client.iter_history(cid)]


@pytest.mark.e2e  # kills or restarts the real process
async def test_send_survives_server_crash_without_duplicates(
    live_server: Any, admin: Client
) -> None:
    alice_u = await new_user(admin, "alice")
    bob_u = await new_user(admin, "bob")
    alice = await signed_in(live_server.url, alice_u, backoff_base=0.02, backoff_cap=0.5)
    try:
        conv = await alice.create_conversation("group", [bob_u.id], name="crash")
        total = 40
        sent: list[int] = []
        tenth = asyncio.Event()

        async def sender() -> None:
            for i in range(total):
                sent.append((await alice.send(conv.id, f"m{i}")).seq)
                if len(sent) == 10:
                    tenth.set()
                await asyncio.sleep(0.01)

        task = asyncio.create_task(sender())
        await asyncio.wait_for(tenth.wait(), 30)
        await call(live_server.kill)  # SIGKILL mid-stream of sends, then start again
        await asyncio.wait_for(task, 60)
        assert sent == list(range(1, total + 1))
        stored = await admin_view(live_server.url, alice_u, conv.id)
        assert [m.body for m in stored] == [f"m{i}" for i in range(total)]
    finally:
        await alice.aclose()


async def test_events_exactly_once_across_dropped_connections(
    server: AppServer, admin: Client
) -> None:
    alice_u = await new_user(admin, "alice")
    bob_u = await new_user(admin, "bob")
    alice = await signed_in(server.url, alice_u)
    bob = await signed_in(server.url, bob_u, backoff_base=0.02, backoff_cap=0.3)
    try:
        stream = await bob.subscribe(ephemeral=False)
        conv = await alice.create_conversation("group", [bob_u.id], name="drops")
        total = 120
        bodies = [f"n{i}" for i in range(total)]

        async def sender() -> None:
            for body in bodies:
                await alice.send(conv.id, body)

        async def dropper() -> None:
            for _ in range(6):
                await asyncio.sleep(0.15)
                stream.drop_connection()

        collecting = asyncio.create_task(collect_messages(stream, total))
        await asyncio.gather(sender(), dropper())
        events = await collecting
        assert_exactly_once_in_order(events, bodies)
        assert stream.connections >= 2, "the connection was dropped and resumed"
    finally:
        await alice.aclose()
        await bob.aclose()


@pytest.mark.e2e  # kills or restarts the real process
async def test_events_exactly_once_across_server_restart_and_crash(
    live_server: Any, admin: Client
) -> None:
    alice_u = await new_user(admin, "alice")
    bob_u = await new_user(admin, "bob")
    alice = await signed_in(live_server.url, alice_u, backoff_base=0.02, backoff_cap=0.5)
    bob = await signed_in(live_server.url, bob_u, backoff_base=0.02, backoff_cap=0.5)
    try:
        stream = await bob.subscribe(ephemeral=False)
        conv = await alice.create_conversation("group", [bob_u.id], name="restarts")
        total = 90
        bodies = [f"r{i}" for i in range(total)]
        milestones = {30: asyncio.Event(), 60: asyncio.Event()}

        async def sender() -> None:
            for acked, body in enumerate(bodies, 1):
                await alice.send(conv.id, body)  # retries through the outages
                if acked in milestones:
                    milestones[acked].set()
                await asyncio.sleep(0.005)

        collecting = asyncio.create_task(collect_messages(stream, total, within=120))
        sending = asyncio.create_task(sender())
        await asyncio.wait_for(milestones[30].wait(), 60)
        await call(live_server.restart)  # graceful: SIGTERM, start again
        await asyncio.wait_for(milestones[60].wait(), 60)
        await call(live_server.kill)  # crash: SIGKILL, start again
        await asyncio.wait_for(sending, 60)
        events = await collecting
        assert_exactly_once_in_order(events, bodies)
        assert stream.connections >= 3, "resumed after the restart and after the crash"
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_resume_from_a_saved_position(server: AppServer, admin: Client) -> None:
    alice_u = await new_user(admin, "alice")
    bob_u = await new_user(admin, "bob")
    alice = await signed_in(server.url, alice_u)
    bob = await signed_in(server.url, bob_u)
    try:
        stream = await bob.subscribe(ephemeral=False)
        conv = await alice.create_conversation("direct", [bob_u.id])
        for i in range(5):
            await alice.send(conv.id, f"a{i}")
        await collect_messages(stream, 5)
        saved = stream.position
        await stream.aclose()
        for i in range(5):
            await alice.send(conv.id, f"b{i}")

        resumed = bob.events(since=saved, ephemeral=False)
        events = await collect_messages(resumed, 5)
        assert_exactly_once_in_order(events, [f"b{i}" for i in range(5)])
        with pytest.raises(TimeoutError):
            await resumed.next(0.5)  # nothing else: no replay of what was seen
        await resumed.aclose()
        with pytest.raises(StopAsyncIteration):
            await resumed.__anext__()
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_bad_token_ends_the_stream(server: AppServer) -> None:
    async with Client(server.url, token="not-a-token") as client:
        with pytest.raises(Unauthenticated):
            await client.me()
        with pytest.raises(StreamClosed):
            await client.subscribe(timeout=10)


async def test_unknown_resume_position_is_refused(server: AppServer, admin: Client) -> None:
    """A `since` the server never gave out (say, the data directory was reset) cannot be
    resumed exactly once: the stream ends with close code 4009 for the app to resync."""
    user = await new_user(admin, "carol")
    client = await signed_in(server.url, user)
    try:
        with pytest.raises(StreamClosed) as refused:
            await client.subscribe(since="987654321", timeout=10)
        assert refused.value.code == 4009
        fresh = await client.subscribe()  # a new stream without since works
        assert fresh.connected
    finally:
        await client.aclose()


async def test_position_bookkeeping_drops_replays_but_never_loses() -> None:
    """No server needed: the stream keeps its positions in the protocol's ClientSession
    (the dedupe rule itself is tested in tests/unit/protocol/test_session.py)."""
    client = Client("http://127.0.0.1:9", token="t")
    stream = EventStream(client, since="10")
    session = stream.session
    assert session.since == "10" and stream.position == "10"
    for p in ("11", "11", "10", "9", "13", "12", "12"):
        session.receive({"type": "event", "position": p, "event": {"kind": "message"}})
    assert stream.out_of_order == 1  # 12: never seen, yielded, not lost
    assert stream.duplicates_dropped == 4
    assert session.since == "13"  # resume from the highest position received
    await client.aclose()


async def test_own_account_password_and_second_factor(server: AppServer, admin: Client) -> None:
    """change_password explains a refused password; the second factor's methods each
    take the password, and a wrong one is refused."""
    import time

    import pyotp

    user = await new_user(admin, "ola")
    async with await signed_in(server.url, user) as ola:
        with pytest.raises(InvalidRequest) as refused:
            await ola.change_password(PASSWORD, "password1")
        assert refused.value.details["reason"] == "too_common"
        await ola.change_password(PASSWORD, "amber-quarry-55")
        with pytest.raises(Unauthenticated) as wrong:
            await ola.setup_totp(PASSWORD)  # the old password
        assert wrong.value.code == "invalid_credentials"
        if time.time() % 30 > 25:  # two steps' codes are used below
            await asyncio.sleep(30.5 - time.time() % 30)
        enrolment = await ola.setup_totp("amber-quarry-55")
        assert enrolment.otpauth_uri.startswith("otpauth://totp/")
        totp = pyotp.TOTP(enrolment.secret)
        codes = await ola.enable_totp("amber-quarry-55", totp.at(time.time() - 30))
        assert len(codes) == 10
        assert await ola.second_factor() == SecondFactor(enabled=True, recovery_codes_left=10)
        fresh = await ola.regenerate_recovery_codes("amber-quarry-55", totp.now())
        assert set(fresh).isdisjoint(codes)
        await ola.disable_totp("amber-quarry-55", fresh[0])
        assert (await ola.second_factor()).enabled is False
