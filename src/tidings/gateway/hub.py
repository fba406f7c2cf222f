"""Which local connection gets which bus traffic. Only the gateway holds live state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import cast

import structlog
from websockets.frames import Frame, Opcode

from tidings.bus.ports import (
    EVENTS_TOPIC,
    Bus,
    Envelope,
    EnvelopeKind,
    conversation_topic,
    user_topic,
)
from tidings.gateway.sequencer import Fetch, Sequencer
from tidings.protocol.session import (
    GONE,
    NORMAL,
    RESTARTING,
    TOO_SLOW,
    Close,
    Phase,
    ServerSession,
    revoked,
)
from tidings.protocol.wire import reconnect_frame
from tidings.services.metrics import Counts

log = structlog.get_logger(__name__)


class Prepared:
    """A frame written to many connections: its text, and its WebSocket frame built once
    (a server frame is never masked, so the bytes are the same for every connection that
    negotiated no extension)."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = _text_frame(self.text)
        return self._wire


Item = str | Prepared


def _text_frame(text: str) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def wire_of(item: Item) -> bytes:
    """The unmasked WebSocket frame of a queued item."""
    return item.wire() if isinstance(item, Prepared) else _text_frame(item)


class Outbox:
    """What a connection writes: frames, then possibly a close."""

    async def write(self, frame: str) -> None:
        raise NotImplementedError

    async def write_many(self, frames: list[Item]) -> None:
        """Everything queued since the last write, in order."""
        for frame in frames:
            await self.write(frame if isinstance(frame, str) else frame.text)

    async def close(self, code: int, reason: str) -> None:
        raise NotImplementedError


_CLOSE = object()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


_CLOSED = Phase.CLOSED  # a global: an enum member read through its class costs ~100 ns


@dataclass(eq=False, slots=True)
class Connection:
    """One client connection: its protocol state (`session`, pure) and its writing.
    Frames go through a bounded queue: fan-out never waits on a slow client; one that
    falls too far behind is closed and will resume. An idle connection holds as little
    as it can: the waits are futures made when needed."""

    conn_id: str
    user_id: str
    token_id: str
    outbox: Outbox
    queue_limit: int
    session: ServerSession[Item] = field(default_factory=ServerSession)
    _queue: list[object] = field(default_factory=list)
    _wakeup: asyncio.Future[None] | None = None  # the writer waits for frames
    _room: asyncio.Future[None] | None = None  # a replay waits for room in the queue
    _idle: asyncio.Future[None] | None = None  # flushed() waits for the queue to empty

    def __post_init__(self) -> None:
        # made for an authenticated user: subscribed next, then replaying until
        # end_replay()
        self.session.authenticated(self.user_id)

    @property
    def closed(self) -> bool:
        return self.session.phase is _CLOSED

    @property
    def conversations(self) -> AbstractSet[str]:
        return self.session.conversations

    @property
    def queue_depth(self) -> int:
        """Frames waiting to be written (read at scrape time: app/metrics.py)."""
        return len(self._queue)

    @property
    def queued(self) -> list[Item]:
        """The frames queued and not written yet, in order."""
        # everything queued but the close marker is an Item (see enqueue)
        return cast(list[Item], [item for item in self._queue if item is not _CLOSE])

    # --- writing --------------------------------------------------------------------
    def enqueue(self, frame: Item) -> None:
        if self.session.phase is _CLOSED:
            return
        if len(self._queue) >= self.queue_limit:
            log.warning("connection_too_slow", conn_id=self.conn_id, user_id=self.user_id)
            self.close(TOO_SLOW)
            return
        self._push(frame)

    def enqueue_all(self, frames: list[Item]) -> None:
        for frame in frames:
            self.enqueue(frame)

    async def enqueue_wait(self, frame: Item) -> None:
        """For replays: wait for room instead of giving up on the client."""
        while len(self._queue) >= self.queue_limit and not self.closed:
            self._room = asyncio.get_running_loop().create_future()
            await self._room
        if not self.closed:
            self._push(frame)

    def _push(self, item: object) -> None:
        self._queue.append(item)
        _wake(self._wakeup)

    def close(self, decision: Close) -> None:
        if self.session.close(decision) is None:
            return
        self._push(_CLOSE)
        _wake(self._room)

    async def run_writer(self) -> None:
        """Write queued frames until closed (runs as the connection's writer task).
        Whatever was queued while the last write was under way goes out in one write:
        a burst of events costs one wake-up and one system call per connection."""
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                _wake(self._idle)
                self._wakeup = loop.create_future()
                await self._wakeup
            try:
                if not await self._write_queued():
                    return
            except Exception:  # noqa: BLE001 - the peer is gone; the reader loop ends too
                self.session.close(GONE)
                self._queue.clear()
                return
            finally:
                if not self._queue:
                    _wake(self._idle)

    async def _write_queued(self) -> bool:
        """Write what is queued (nothing written stays referenced while the writer waits
        for more); False once the connection is closed."""
        items, self._queue = self._queue, []
        _wake(self._room)
        closing = items[-1] is _CLOSE  # nothing is queued after a close
        frames = cast(list[Item], items[:-1] if closing else items)
        if frames:
            await self.outbox.write_many(frames)
        if closing:
            decision = self.session.close_decision or NORMAL
            await self.outbox.close(decision.code, decision.reason)
            return False
        return True

    async def flushed(self) -> None:
        """Wait until the writer has written (or given up on) everything queued."""
        if self._queue:
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle

    # --- events -----------------------------------------------------------------------
    def push_event(self, envelope: Envelope, frame: Prepared | None = None) -> None:
        """A committed event; `frame` is its frame prepared once for every connection."""
        item = self.session.event(envelope, envelope.frame if frame is None else frame)
        if item is None:
            return
        # an item to write comes from a live session (never a closed one)
        if len(self._queue) >= self.queue_limit:
            self.enqueue(item)  # closes it: too slow
            return
        self._queue.append(item)
        _wake(self._wakeup)

    def finish_send(self, client_msg_id: str, ack: str | None) -> None:
        """A send of this connection ended: write its ack, then what was held for it."""
        self.enqueue_all(self.session.send_finished(client_msg_id, ack))

    def end_replay(self) -> None:
        self.enqueue_all(self.session.end_replay())


class Hub:
    """Local connections by user and by conversation; subscribes the bus topics of the
    users and conversations it holds (counted), and fans each envelope out locally."""

    def __init__(self, bus: Bus, counts: Counts | None = None) -> None:
        self.bus = bus
        # frames handed to connections: one addition per event, not per connection
        self.counts = counts or Counts()
        self.by_user: dict[str, set[Connection]] = {}
        self.by_conversation: dict[str, set[Connection]] = {}
        # The highest first seq (ServerSession.first_seq) of a local connection of each
        # conversation, where it is over 1: never lowered while the conversation has
        # local connections (an upper bound). An event about an older message
        # (Envelope.about_seq) is checked per connection only below it; any other
        # event, a new message first, costs a dict lookup at most, once per event.
        self.late_first_seq: dict[str, int] = {}
        self.draining = False
        self.sequencer: Sequencer | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def start(
        self, fetch: Fetch, head: Callable[[], Awaitable[int]], *, poll_interval: float | None
    ) -> None:
        """Subscribe to the committed event stream (through the sequencer, so that events
        reach connections in position order with no gap), then learn where it stands."""
        self.sequencer = Sequencer(self.route_event, fetch, head, poll_interval=poll_interval)
        self.bus.subscribe(EVENTS_TOPIC, self.sequencer.on_envelope)
        self.bus.on_reconnect(self.sequencer.catch_up)
        await self.sequencer.start()

    def watch_sessions(
        self, ended: Callable[[set[str]], Awaitable[set[str]]], interval: float
    ) -> None:
        """Every `interval` seconds, close the connections whose session has ended
        (`ended` names those of the given token ids): a revocation the bus did not carry
        here (the admin CLI beside an embedded server, a lost message) still ends them."""

        async def watch() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    tokens = {conn.token_id for conn in self.connections}
                    gone = await ended(tokens) if tokens else set()
                except Exception as exc:  # noqa: BLE001 - the store is away: next time
                    log.warning("session_check_failed", error=str(exc))
                    continue
                for conn in [c for c in self.connections if c.token_id in gone]:
                    conn.close(revoked("session ended"))

        self._watcher = asyncio.get_running_loop().create_task(watch())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.sequencer is not None:
            self.bus.unsubscribe(EVENTS_TOPIC, self.sequencer.on_envelope)
            await self.sequencer.close()

    @property
    def routed(self) -> int | None:
        """Every committed event up to this position has been routed to the connections
        (None before the hub started)."""
        return None if self.sequencer is None else self.sequencer.upto

    @property
    def connections(self) -> Iterable[Connection]:
        for conns in self.by_user.values():
            yield from conns

    def register(self, conn: Connection) -> None:
        conns = self.by_user.setdefault(conn.user_id, set())
        if not conns:
            self.bus.subscribe(user_topic(conn.user_id), self.on_envelope)
        conns.add(conn)

    def join(self, conn: Connection, conversation_id: str, first_seq: int = 1) -> None:
        """`first_seq`: the first seq the connection's user may read there."""
        if conn.session.join(conversation_id, first_seq):
            self._subscribe(conn, conversation_id)

    def _subscribe(self, conn: Connection, conversation_id: str) -> None:
        conns = self.by_conversation.setdefault(conversation_id, set())
        if not conns:
            self.bus.subscribe(conversation_topic(conversation_id), self.on_envelope)
        conns.add(conn)
        first = conn.session.first_seq(conversation_id)
        if first > self.late_first_seq.get(conversation_id, 1):
            self.late_first_seq[conversation_id] = first

    def leave(self, conn: Connection, conversation_id: str) -> None:
        conn.session.leave(conversation_id)
        self._unsubscribe(conn, conversation_id)

    def _unsubscribe(self, conn: Connection, conversation_id: str) -> None:
        conns = self.by_conversation.get(conversation_id)
        if conns is None:
            return
        conns.discard(conn)
        if not conns:
            del self.by_conversation[conversation_id]
            self.late_first_seq.pop(conversation_id, None)
            self.bus.unsubscribe(conversation_topic(conversation_id), self.on_envelope)

    def unregister(self, conn: Connection) -> None:
        for cid in list(conn.conversations):
            self.leave(conn, cid)
        conns = self.by_user.get(conn.user_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.by_user[conn.user_id]
                self.bus.unsubscribe(user_topic(conn.user_id), self.on_envelope)

    def on_envelope(self, topic: str, envelope: Envelope) -> None:
        kind = envelope.kind
        if kind is EnvelopeKind.CLOSE:
            for conn in list(self.by_user.get(envelope.user_id or "", ())):
                if envelope.token_id is None or conn.token_id == envelope.token_id:
                    conn.close(revoked(envelope.reason))
            return
        scope, _, key = topic.partition(":")
        if kind is EnvelopeKind.EPHEMERAL:
            targets = self.by_conversation if scope == "c" else self.by_user
            prepared = Prepared(envelope.frame)
            conns = tuple(targets.get(key, ()))
            self.counts.frames_out.add("ephemeral", len(conns))
            for conn in conns:
                # Best effort: a connection still replaying (before `ready`) skips them.
                if conn.session.ephemeral(envelope.sender_id):
                    conn.enqueue(prepared)
            return
        self.route_event(envelope)

    def route_event(self, envelope: Envelope) -> None:
        """A committed event, in position order (from the sequencer): to the connections
        of its conversation's members (one about an older message: of those whose range
        holds it), or of its user."""
        cid = envelope.conversation_id
        frame = Prepared(envelope.frame)
        out = self.counts.frames_out
        if cid is None:
            conns = tuple(self.by_user.get(envelope.user_id or "", ()))
            out.add("event", len(conns))
            for conn in conns:
                conn.push_event(envelope, frame)
            return
        for uid in envelope.added_user_ids:
            for conn in tuple(self.by_user.get(uid, ())):
                if conn.session.joins(envelope) is not None:
                    self._subscribe(conn, cid)
        conns = tuple(self.by_conversation.get(cid, ()))
        about = envelope.about_seq
        if about is not None and about < self.late_first_seq.get(cid, 1):
            # about a message some member here may not read (history not shared with
            # members added later): only the connections that may
            conns = tuple(c for c in conns if c.session.sees(cid, about))
        out.add("event", len(conns))
        for conn in conns:
            conn.push_event(envelope, frame)
        if envelope.removed_user_id is not None:
            for conn in tuple(self.by_user.get(envelope.removed_user_id, ())):
                if conn.session.leaves(envelope) is not None:
                    self._unsubscribe(conn, cid)

    async def drain(self, timeout: float) -> None:
        """Tell every client to reconnect elsewhere, flush, and close them."""
        self.draining = True
        conns = list(self.connections)
        frame = reconnect_frame("server shutting down")
        for conn in conns:
            conn.enqueue(frame)
            conn.close(RESTARTING)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(c.flushed() for c in conns), return_exceptions=True)
