"""gateway/hub.py: Connection and Hub, frames in / frames out, with a fake Outbox and the
real in-process bus. No sockets. The connection rules themselves (dedupe, replay buffer,
ack before the sender's own event, membership) are the pure ServerSession's, tested
frame by frame in test_session.py; here: that the hub routes to them and writes what
they decide."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence

import orjson
import pytest

from tidings.bus.local import LocalBus
from tidings.bus.ports import (
    EVENTS_TOPIC,
    Envelope,
    EnvelopeKind,
    conversation_topic,
    user_topic,
)
from tidings.gateway.hub import Connection, Hub, Outbox, Prepared
from tidings.protocol.session import (
    CLOSE_RESTART,
    CLOSE_REVOKED,
    CLOSE_TOO_SLOW,
    NORMAL,
    Close,
)
from tidings.protocol.wire import ack_frame, event_frame, typing_frame

CID = "c1"


class FakeOutbox(Outbox):
    def __init__(self) -> None:
        self.written: list[str] = []
        self.closed: tuple[int, str] | None = None

    async def write(self, frame: str) -> None:
        assert self.closed is None, "write after close"
        self.written.append(frame)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


_ids = iter(range(1_000_000))


def conn(
    user_id: str = "alice", token_id: str = "t1", queue_limit: int = 100, *, live: bool = True
) -> Connection:
    """A connection as the gateway makes it after authentication; `live`: its (empty)
    replay is over."""
    c = Connection(
        conn_id=f"conn{next(_ids)}",
        user_id=user_id,
        token_id=token_id,
        outbox=FakeOutbox(),
        queue_limit=queue_limit,
    )
    if live:
        c.session.resume_from(None, 0)
        c.end_replay()
    return c


def queued(c: Connection) -> list[dict[str, object]]:
    """What the connection will write, decoded, in order."""
    return [orjson.loads(item.text if isinstance(item, Prepared) else item) for item in c.queued]


def positions(c: Connection) -> list[int]:
    return [int(str(fr["position"])) for fr in queued(c) if fr["type"] == "event"]


def kinds(c: Connection) -> list[str]:
    """A compact trace: 'ack:<ref>' or 'ev:<position>'."""
    out = []
    for fr in queued(c):
        if fr["type"] == "ack":
            out.append(f"ack:{fr['ref']}")
        elif fr["type"] == "event":
            out.append(f"ev:{fr['position']}")
        else:
            out.append(str(fr["type"]))
    return out


def event(
    position: int,
    *,
    cid: str | None = CID,
    sender: str | None = None,
    cmid: str | None = None,
    added: Sequence[str] = (),
    removed: str | None = None,
    kind: str = "message",
    about: int | None = None,
    first_seq: int = 1,
) -> Envelope:
    payload = {"kind": kind, "conversation_id": cid, "n": position}
    return Envelope(
        kind=EnvelopeKind.EVENT,
        frame=event_frame(position, payload),
        position=position,
        conversation_id=cid,
        sender_id=sender,
        client_msg_id=cmid,
        added_user_ids=tuple(added),
        removed_user_id=removed,
        about_seq=about,
        first_seq=first_seq,
    )


@pytest.fixture
def bus() -> LocalBus:
    return LocalBus()


@pytest.fixture
def hub(bus: LocalBus) -> Hub:
    return Hub(bus)


def online(hub: Hub, c: Connection, *cids: str) -> Connection:
    hub.register(c)
    for cid in cids:
        hub.join(c, cid)
    return c


# --- delivery and dedupe ------------------------------------------------------------


async def test_events_of_a_conversation_reach_its_connections_only(hub: Hub, bus: LocalBus) -> None:
    a = online(hub, conn("alice"), CID)
    b = online(hub, conn("bob"), "other")
    hub.route_event(event(1))
    hub.route_event(event(2, cid="other"))
    assert positions(a) == [1] and positions(b) == [2]


async def test_the_same_event_twice_is_delivered_once(hub: Hub) -> None:
    a = online(hub, conn("alice"), CID)
    envelope = event(1, added=["alice"])
    hub.route_event(envelope)
    hub.route_event(envelope)  # e.g. live, and again from a catch-up
    assert positions(a) == [1]


async def test_an_event_of_one_user_reaches_that_users_connections_only(hub: Hub) -> None:
    phone = online(hub, conn("alice", "t1"), CID)
    laptop = online(hub, conn("alice", "t2"))
    bob = online(hub, conn("bob"), CID)
    envelope = dataclasses.replace(event(1, cid=None, kind="read"), user_id="alice")
    hub.route_event(envelope)  # e.g. a read position in a channel: the reader's devices
    assert positions(phone) == positions(laptop) == [1]
    assert positions(bob) == []




async def test_the_frame_is_written_as_encoded(hub: Hub, bus: LocalBus) -> None:
    a = online(hub, conn("alice"), CID)
    b = online(hub, conn("bob"), CID)
    envelope = event(5)
    hub.route_event(envelope)
    (item,) = a.queued
    assert isinstance(item, Prepared) and item.text is envelope.frame
    # one frame for every connection, its WebSocket bytes built once
    assert b.queued == [item]
    assert item.wire() is item.wire()
    payload = envelope.frame.encode()
    assert len(payload) < 126  # FIN + text opcode, unmasked, 7-bit length, the payload
    assert item.wire() == bytes([0x81, len(payload)]) + payload


# --- resume: replay, then live, nothing twice ---------------------------------------


async def test_live_events_are_buffered_during_replay_then_deduplicated(
    hub: Hub, bus: LocalBus
) -> None:
    a = conn("alice", live=False)  # replaying: it authenticated and is subscribed
    online(hub, a, CID)
    a.session.resume_from(10, 13)  # the client's `since`, and the head read
    # Live traffic while the replay runs: 12 and 13 will be in the replay too, 14 is new.
    for p in (12, 13, 14):
        hub.route_event(event(p))
    assert queued(a) == []
    assert a.session.buffered == [12, 13, 14]
    # The replay (as the gateway does it) up to the head it read: 11..13.
    for p in (11, 12, 13):
        await a.enqueue_wait(event_frame(p, {"kind": "message", "n": p}))
        a.session.replayed(p)
    a.end_replay()
    assert positions(a) == [11, 12, 13, 14]
    assert not a.session.replaying and a.session.buffered == []
    hub.route_event(event(15))
    assert positions(a) == [11, 12, 13, 14, 15]




# --- the sender's ack comes before the event of its own message ----------------------


async def test_ack_before_own_event(hub: Hub, bus: LocalBus) -> None:
    a = online(hub, conn("alice"), CID)
    b = online(hub, conn("bob"), CID)
    a.session.send_started("m1")
    hub.route_event(event(1, sender="alice", cmid="m1"))
    assert queued(a) == []  # held until the ack
    assert positions(b) == [1]  # others are not held
    a.finish_send("m1", ack_frame("r1", message={"seq": 1}))
    assert kinds(a) == ["ack:r1", "ev:1"]
    assert a.session.holding == 0 and a.session.pending_sends == set()










async def test_own_message_from_another_device_is_not_held(hub: Hub, bus: LocalBus) -> None:
    phone = online(hub, conn("alice", "t-phone"), CID)
    laptop = online(hub, conn("alice", "t-laptop"), CID)
    laptop.session.send_started("m1")
    hub.route_event(event(1, sender="alice", cmid="m1"))
    assert positions(phone) == [1]
    assert positions(laptop) == []




# --- membership: subscribe the added, unsubscribe the removed ------------------------


async def test_member_added_subscribes_the_added_users_connections(hub: Hub, bus: LocalBus) -> None:
    a = online(hub, conn("alice"), CID)
    b1 = online(hub, conn("bob", "t1"))
    b2 = online(hub, conn("bob", "t2"))
    carol = online(hub, conn("carol"))
    hub.route_event(event(1, added=["bob"], kind="member_added"))
    assert positions(a) == positions(b1) == positions(b2) == [1]
    assert CID in b1.conversations and CID in b2.conversations
    hub.route_event(event(2))
    assert positions(b1) == positions(b2) == [1, 2]
    assert positions(carol) == []


async def test_member_added_where_the_gateway_held_nobody_of_that_conversation(
    hub: Hub, bus: LocalBus
) -> None:
    b = online(hub, conn("bob"))
    hub.route_event(event(1, added=["alice", "bob"], kind="conversation_created"))
    assert positions(b) == [1]
    assert conversation_topic(CID) in bus._handlers  # for its typing signals
    hub.route_event(event(2))
    assert positions(b) == [1, 2]


async def test_member_removed_is_delivered_then_the_user_is_unsubscribed(
    hub: Hub, bus: LocalBus
) -> None:
    a = online(hub, conn("alice"), CID)
    b = online(hub, conn("bob"), CID, "c2")
    hub.route_event(event(1, removed="bob", kind="member_removed"))
    assert positions(a) == positions(b) == [1]  # the removed one gets the removal
    assert CID not in b.conversations and "c2" in b.conversations
    hub.route_event(event(2))
    assert positions(a) == [1, 2]
    assert positions(b) == [1]  # and nothing after it
    hub.route_event(event(3, cid="c2"))
    assert positions(b) == [1, 3]



async def test_a_removal_routed_before_the_snapshot_joins_is_not_undone_by_them(
    hub: Hub, bus: LocalBus
) -> None:
    """A new connection registers, reads its snapshot (head 10: bob still a member),
    and the hub routes bob's removal (11) before the joins: the stale snapshot must not
    subscribe it again, or it would get every later edit and reaction (issue 13, item
    11). Its replay from the store carries the removal; nothing of the conversation
    after it reaches the connection."""
    a = online(hub, conn("alice"), CID)
    b = conn("bob", live=False)
    hub.register(b)
    hub.route_event(event(11, removed="bob", kind="member_removed"))
    online(hub, b, CID, "c2")  # the snapshot's joins, read at head 10
    assert CID not in b.conversations and "c2" in b.conversations
    b.session.resume_from(10, 10)
    b.session.replayed(11)  # the replay: the removal, from the store
    hub.route_event(event(12, kind="message_edited"))
    hub.route_event(event(13, kind="reaction"))
    hub.route_event(event(14, cid="c2"))
    b.end_replay()
    assert positions(a) == [11, 12, 13]
    assert positions(b) == [14]  # only c2: nothing of the conversation it left
    # added back later, it sees the conversation again
    hub.route_event(event(15, added=["bob"], kind="member_added"))
    hub.route_event(event(16))
    assert positions(b) == [14, 15, 16]


async def test_removed_and_added_back_before_the_snapshot_joins(hub: Hub, bus: LocalBus) -> None:
    b = conn("bob", live=False)
    hub.register(b)
    hub.route_event(event(11, removed="bob", kind="member_removed"))
    hub.route_event(event(12, added=["bob"], kind="member_added"))
    online(hub, b, CID)  # a snapshot from before either
    b.session.resume_from(10, 10)
    hub.route_event(event(13))
    b.end_replay()
    assert CID in b.conversations
    assert positions(b) == [12, 13]

async def test_events_about_messages_before_a_members_range_skip_them(
    hub: Hub, bus: LocalBus
) -> None:
    """History not shared with members added later (issue 17): bob, added when the
    conversation was at seq 5, reads from 6. Events about messages 1-5 (edits, recalls,
    reactions, pins, thread and file updates) skip his connections, live as on his
    replay (services/sync.py); those about 6 on, and every new message, reach him."""
    a = online(hub, conn("alice"), CID)
    b = online(hub, conn("bob"))
    carol = conn("carol", live=False)  # connecting: her snapshot says she reads from 6
    hub.register(carol)
    hub.join(carol, CID, 6)
    hub.route_event(event(1, added=["bob"], kind="member_added", first_seq=6))
    assert hub.late_first_seq == {CID: 6}
    hub.route_event(event(2, kind="message_edited", about=5))
    hub.route_event(event(3, kind="reaction", about=1))
    hub.route_event(event(4))  # message 6
    hub.route_event(event(5, kind="message_edited", about=6))
    hub.route_event(event(6, kind="thread_updated", about=9))
    carol.session.resume_from(1, 1)
    carol.end_replay()
    assert positions(a) == [1, 2, 3, 4, 5, 6]
    assert positions(b) == [1, 4, 5, 6]
    assert positions(carol) == [4, 5, 6]
    # removed, then added back later: the new range
    hub.route_event(event(7, removed="bob", kind="member_removed"))
    hub.route_event(event(8, added=["bob"], kind="member_added", first_seq=20))
    hub.route_event(event(9, kind="message_pinned", about=6))
    hub.route_event(event(10, kind="message_pinned", about=20))
    assert positions(b) == [1, 4, 5, 6, 7, 8, 10]
    assert hub.late_first_seq == {CID: 20}  # an upper bound: not lowered meanwhile
    assert positions(carol) == [4, 5, 6, 7, 8, 9, 10]
    for c in (a, b, carol):
        hub.unregister(c)
    assert hub.late_first_seq == {}  # gone with the conversation's last connection


async def test_every_member_reading_the_whole_history_costs_no_check(hub: Hub) -> None:
    """Nobody here reads from a later seq: an event about an old message goes to all,
    and the hub holds nothing for it."""
    a = online(hub, conn("alice"), CID)
    b = online(hub, conn("bob"))
    hub.route_event(event(1, added=["bob"], kind="member_added"))
    hub.route_event(event(2, kind="message_deleted", about=1))
    assert positions(a) == positions(b) == [1, 2]
    assert hub.late_first_seq == {} and b.session.first_seqs is None


async def test_the_last_local_member_leaving_unsubscribes_the_bus_topic(
    hub: Hub, bus: LocalBus
) -> None:
    b = online(hub, conn("bob"), CID)
    hub.route_event(event(1, removed="bob", kind="member_removed"))
    assert CID not in hub.by_conversation
    assert conversation_topic(CID) not in bus._handlers
    assert positions(b) == [1]


async def test_unregister_releases_every_subscription(hub: Hub, bus: LocalBus) -> None:
    a1 = online(hub, conn("alice", "t1"), CID, "c2")
    a2 = online(hub, conn("alice", "t2"), CID)
    hub.unregister(a1)
    assert conversation_topic(CID) in bus._handlers  # a2 still needs it
    assert conversation_topic("c2") not in bus._handlers
    hub.unregister(a2)
    assert bus._handlers == {}
    assert hub.by_user == {} and hub.by_conversation == {}
    hub.route_event(event(1))
    assert queued(a1) == queued(a2) == []


async def test_a_closed_connection_joins_nothing(hub: Hub) -> None:
    a = online(hub, conn("alice"))
    a.close(NORMAL)
    hub.join(a, CID)
    assert CID not in hub.by_conversation and a.conversations == set()


# --- CLOSE envelopes ----------------------------------------------------------------


def close_envelope(user_id: str, token_id: str | None) -> Envelope:
    return Envelope(kind=EnvelopeKind.CLOSE, user_id=user_id, token_id=token_id, reason="bye")


async def test_close_of_one_token_closes_only_its_connections(hub: Hub, bus: LocalBus) -> None:
    phone = online(hub, conn("alice", "t-phone"), CID)
    laptop = online(hub, conn("alice", "t-laptop"), CID)
    laptop2 = online(hub, conn("alice", "t-laptop"))
    bob = online(hub, conn("bob", "t-phone"), CID)  # same token id, other user
    await bus.publish(user_topic("alice"), close_envelope("alice", "t-laptop"))
    assert laptop.closed and laptop2.closed
    assert not phone.closed and not bob.closed
    await laptop.run_writer()  # writes what was queued, then closes, then returns
    assert laptop.outbox.closed == (CLOSE_REVOKED, "bye")  # type: ignore[attr-defined]


async def test_close_without_token_closes_every_connection_of_the_user(
    hub: Hub, bus: LocalBus
) -> None:
    a1 = online(hub, conn("alice", "t1"))
    a2 = online(hub, conn("alice", "t2"))
    bob = online(hub, conn("bob", "t3"))
    await bus.publish(user_topic("alice"), close_envelope("alice", None))
    assert a1.closed and a2.closed and not bob.closed


async def test_nothing_is_queued_after_close(hub: Hub, bus: LocalBus) -> None:
    a = online(hub, conn("alice"), CID)
    hub.route_event(event(1))
    await bus.publish(user_topic("alice"), close_envelope("alice", None))
    hub.route_event(event(2))
    await a.run_writer()
    outbox = a.outbox
    assert isinstance(outbox, FakeOutbox)
    assert [orjson.loads(x)["position"] for x in outbox.written] == ["1"]
    assert outbox.closed is not None and outbox.closed[0] == CLOSE_REVOKED


# --- ephemeral signals --------------------------------------------------------------


async def test_typing_skips_the_typists_own_connections(hub: Hub, bus: LocalBus) -> None:
    a1 = online(hub, conn("alice", "t1"), CID)
    a2 = online(hub, conn("alice", "t2"), CID)
    b = online(hub, conn("bob"), CID)
    c = online(hub, conn("carol"), "elsewhere")
    frame = typing_frame(CID, "alice")
    await bus.publish(
        conversation_topic(CID),
        Envelope(kind=EnvelopeKind.EPHEMERAL, frame=frame, conversation_id=CID, sender_id="alice"),
    )
    assert [orjson.dumps(f).decode() for f in queued(b)] == [frame]
    assert queued(a1) == queued(a2) == queued(c) == []
    assert b.session.last_position == 0  # ephemeral frames have no position


async def test_ephemeral_on_a_user_topic(hub: Hub, bus: LocalBus) -> None:
    b = online(hub, conn("bob"))
    env = Envelope(kind=EnvelopeKind.EPHEMERAL, frame='{"type":"presence"}', sender_id="alice")
    await bus.publish(user_topic("bob"), env)
    assert queued(b) == [{"type": "presence"}]


# --- slow clients -------------------------------------------------------------------


async def test_a_full_queue_closes_the_connection_with_4008(hub: Hub, bus: LocalBus) -> None:
    a = online(hub, conn("alice", queue_limit=3), CID)
    fast = online(hub, conn("bob", queue_limit=100), CID)
    for p in range(1, 6):
        hub.route_event(event(p))
    assert a.closed
    assert positions(fast) == [1, 2, 3, 4, 5]  # fan-out did not wait on the slow one
    await a.run_writer()
    outbox = a.outbox
    assert isinstance(outbox, FakeOutbox)
    assert [orjson.loads(x)["position"] for x in outbox.written] == ["1", "2", "3"]
    assert outbox.closed is not None and outbox.closed[0] == CLOSE_TOO_SLOW


async def test_a_queue_below_its_limit_stays_open() -> None:
    a = conn(queue_limit=3)
    for i in range(3):
        a.enqueue(f'{{"n":{i}}}')
    assert not a.closed and len(a.queued) == 3


async def test_writer_writes_in_order_then_stops_on_close() -> None:
    a = conn()
    for i in range(3):
        a.enqueue(f'"f{i}"')
    a.close(Close(1000, "done"))
    a.enqueue('"late"')
    await a.run_writer()
    outbox = a.outbox
    assert isinstance(outbox, FakeOutbox)
    assert outbox.written == ['"f0"', '"f1"', '"f2"'] and outbox.closed == (1000, "done")


async def test_drain_tells_every_client_to_reconnect_then_closes(hub: Hub) -> None:
    a = online(hub, conn("alice"), CID)
    b = online(hub, conn("bob"))
    await hub.drain(timeout=0)
    assert hub.draining
    for c in (a, b):
        assert c.closed
        assert [fr["type"] for fr in queued(c)] == ["reconnect"]
        await c.run_writer()
        assert c.outbox.closed[0] == CLOSE_RESTART  # type: ignore[attr-defined]


async def test_ephemeral_frames_skip_a_connection_still_replaying(hub: Hub, bus: LocalBus) -> None:
    b = conn("bob", live=False)
    online(hub, b, CID)
    env = Envelope(
        kind=EnvelopeKind.EPHEMERAL,
        frame=typing_frame(CID, "alice"),
        conversation_id=CID,
        sender_id="alice",
    )
    await bus.publish(conversation_topic(CID), env)
    assert queued(b) == []  # typing is best effort: not worth out-of-order delivery


class DeadOutbox(FakeOutbox):
    async def write(self, frame: str) -> None:
        raise ConnectionResetError("peer gone")


async def test_the_writer_gives_up_quietly_on_a_dead_peer() -> None:
    a = Connection(conn_id="x", user_id="alice", token_id="t", outbox=DeadOutbox(), queue_limit=10)
    a.end_replay()
    a.enqueue('"one"')
    a.enqueue('"two"')
    await a.run_writer()  # returns instead of raising
    assert a.closed and a.queued == []
    a.enqueue('"three"')
    assert a.queued == []
    await a.flushed()  # nothing left to wait for


# --- through the bus, as the server wires it ----------------------------------------


@pytest.fixture
async def started(bus: LocalBus) -> AsyncIterator[tuple[Hub, list[tuple[int, int]]]]:
    """A hub subscribed to the committed-event stream; the store is at position 0 and
    has nothing to fill gaps with (fetches are recorded)."""
    hub = Hub(bus)
    fetches: list[tuple[int, int]] = []

    async def fetch(after: int, until: int) -> list[Envelope]:
        fetches.append((after, until))
        return []

    async def head() -> int:
        return 0

    await hub.start(fetch, head, poll_interval=None)
    yield hub, fetches
    await hub.close()


async def test_committed_events_from_the_bus_reach_connections_in_position_order(
    started: tuple[Hub, list[tuple[int, int]]], bus: LocalBus
) -> None:
    hub, _ = started
    a = online(hub, conn("alice"), CID)
    b = online(hub, conn("bob"))
    await bus.publish(EVENTS_TOPIC, event(2, added=["bob"], kind="member_added"))
    assert positions(a) == positions(b) == []  # 1 is not there yet: nothing skips it
    await bus.publish(EVENTS_TOPIC, event(1))
    assert positions(a) == [1, 2]
    assert positions(b) == [2]  # added at 2: subscribed, and gets it
    await bus.publish(EVENTS_TOPIC, event(2))  # a duplicate publish
    await bus.publish(EVENTS_TOPIC, event(3))
    assert positions(a) == [1, 2, 3] and positions(b) == [2, 3]
    await hub.close()
    await bus.publish(EVENTS_TOPIC, event(4))
    assert positions(a) == [1, 2, 3]  # closed: unsubscribed


async def test_the_session_watch_closes_connections_of_ended_sessions(hub: Hub) -> None:
    """A revocation the bus never carried (the admin CLI beside an embedded server) still
    ends the connections made with that token, and only those; a failing check is
    retried at the next interval."""
    revoked = online(hub, conn("alice", "t-revoked"), CID)
    same_user_other_device = online(hub, conn("alice", "t-ok"), CID)
    other = online(hub, conn("bob", "t-bob"), CID)
    asked: list[set[str]] = []
    calls = 0
    answered = asyncio.Event()

    async def ended(tokens: set[str]) -> set[str]:
        nonlocal calls
        calls += 1
        asked.append(set(tokens))
        if calls == 1:
            raise OSError("the store is away")
        answered.set()  # the watch closes right after this returns, before we resume
        return {"t-revoked"} & tokens

    hub.watch_sessions(ended, interval=0.01)
    try:
        await asyncio.wait_for(answered.wait(), 5)
        await asyncio.sleep(0)
    finally:
        await hub.close()
    assert calls >= 2 and asked[0] == {"t-revoked", "t-ok", "t-bob"}
    assert revoked.session.close_decision is not None
    assert (revoked.session.close_decision.code, revoked.session.close_decision.reason) == (
        CLOSE_REVOKED,
        "session ended",
    )
    assert not same_user_other_device.closed and not other.closed
