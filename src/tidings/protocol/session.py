"""The connection protocol without IO: what each end of one WebSocket connection keeps
and decides, frames and events in, frames, events and decisions out.

Like `websockets`' ``protocol.py`` (``receive_data`` -> ``events_received``, ``send_*``
-> ``data_to_send``), nothing here reads a socket, sleeps or awaits: the gateway
(``gateway/hub.py`` and ``gateway/ws.py``), the SDK (``sdk/client.py:EventStream``) and
the load generator (``bench/runner.py:Conn``) are loops around these two classes, and
``tests/unit/protocol/test_session.py`` drives them frame by frame. The client vectors
(``tests/protocol_vectors/client_session.json``) are language-neutral; the web
client's ``web/sync.js`` passes them too (``tests/web/vectors.test.mjs``).

The rules (docs/protocol.md):

- A connection authenticates with its first frame, ``auth`` with an optional ``since``
  (the last position the client processed); anything else first, a refused token or
  no auth in time closes it with 4001. The time is the client's: once its auth frame
  has come, a token the server could not check (busy, its store away) closes with
  1013, try again later, never 4001.
- The server subscribes first, reads the head of the stream, then replays every event
  after ``since`` (a ``since`` ahead of the head closes with 4009), then goes live: live
  events that arrive during the replay wait in a buffer, and every position at or
  below the last one delivered is dropped, so nothing is lost or doubled at the
  boundary.
- The event of a message goes to the sending connection only after that send's
  ``ack``; what arrives behind it waits too, so the order stays.
- An event that adds this connection's user to a conversation subscribes the
  connection before it is delivered; one that removes the user is delivered, then the
  connection is unsubscribed.
- An event about a message before the first seq the user may read in its conversation
  (history not shared with members added later) is not for this connection
  (:meth:`ServerSession.sees`; the hub asks before delivering it).
- The client resumes from the last position it received, drops what it received
  before, matches ``ack``/``error`` frames to its requests by ``ref``, and reads close
  codes: 4001/4003 the token is refused or the session ended, 4009 the ``since`` was
  never given out (resynchronise, then start without it), 1012 or a ``reconnect`` frame
  the server is restarting (reconnect soon), anything else: reconnect with backoff.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

import orjson

from tidings.core.errors import InvalidPosition
from tidings.core.events import reaches

# --- close codes ---------------------------------------------------------------------

CLOSE_NORMAL = 1000
CLOSE_RESTART = 1012
CLOSE_TRY_LATER = 1013
CLOSE_AUTH = 4001
CLOSE_REVOKED = 4003
CLOSE_TOO_SLOW = 4008
CLOSE_BAD_RESUME = 4009


@dataclass(frozen=True, slots=True)
class Close:
    """A decision to close a connection: the code and reason the server sends."""

    code: int
    reason: str


AUTH_REQUIRED = Close(CLOSE_AUTH, "authentication required")
TOO_SLOW = Close(CLOSE_TOO_SLOW, "too slow: resume with since")
RESTARTING = Close(CLOSE_RESTART, "server restarting")
# The server could not check the token (its store away, a failure of its own): the
# token may well be good, so the client keeps it and retries with backoff.
TRY_LATER = Close(CLOSE_TRY_LATER, "try again later")
NORMAL = Close(CLOSE_NORMAL, "")
GONE = Close(1006, "connection lost")  # the peer went away: nothing is sent


def revoked(reason: str) -> Close:
    """The session ended (logout, revocation, a disabled user, removed access)."""
    return Close(CLOSE_REVOKED, reason)


def bad_resume(error_code: str) -> Close:
    """The connection failed after authentication on a request error (a ``since`` the
    server never gave out): the reason is the error's code."""
    return Close(CLOSE_BAD_RESUME, error_code)


# --- server ----------------------------------------------------------------------------


class Phase(StrEnum):
    AUTH = "auth"  # waiting for the auth frame
    REPLAY = "replay"  # authenticated and subscribed: replaying, live events buffered
    LIVE = "live"
    CLOSED = "closed"


# the phases as module globals: an enum member read through its class costs ~100 ns, a
# global ~6 ns, and ServerSession.event runs once per delivery
_AUTH, _REPLAY, _LIVE, _CLOSED = Phase.AUTH, Phase.REPLAY, Phase.LIVE, Phase.CLOSED


class Routed(Protocol):
    """What the session reads of a committed event (``bus.ports.Envelope`` has it)."""

    @property
    def position(self) -> int | None: ...

    @property
    def conversation_id(self) -> str | None: ...

    @property
    def sender_id(self) -> str | None: ...

    @property
    def client_msg_id(self) -> str | None: ...

    @property
    def added_user_ids(self) -> Sequence[str]: ...

    @property
    def removed_user_id(self) -> str | None: ...

    @property
    def first_seq(self) -> int: ...


F = TypeVar("F")  # what the transport writes for an event (its frame, prepared once)


Ids = set[str] | frozenset[str]
_NONE: frozenset[str] = frozenset()


def _with(items: Ids, item: str) -> set[str]:
    if isinstance(items, set):
        items.add(item)
        return items
    return {*items, item}


def _without(items: Ids, item: str) -> Ids:
    return (items - {item}) or _NONE


class ServerSession(Generic[F]):
    """One connection as the gateway sees it, without the socket.

    In: the client's first frame, the authentication's outcome, the head of the stream,
    replayed positions, committed events (with the item to write for each), the start
    and end of each send. Out: the items to write, in order; which conversation to
    subscribe to or unsubscribe from; when and how to close. The fan-out path
    (:meth:`event`) allocates nothing for an event that goes straight out.
    """

    __slots__ = (
        "_buffer",
        "_gone",
        "_held",
        "close_decision",
        "conversations",
        "first_seqs",
        "last_position",
        "pending_sends",
        "phase",
        "user_id",
    )

    def __init__(self) -> None:
        self.phase = _AUTH
        self.user_id = ""
        self.last_position = 0
        """The last position delivered (or replayed); anything at or below is dropped."""
        # Both sets start as the one shared empty frozenset and go back to it once empty:
        # an empty set() is about 0.2 KiB, held by every idle connection that has none.
        self.conversations: Ids = _NONE
        """The conversations whose events reach this connection."""
        self.first_seqs: dict[str, int] | None = None
        """The first seq the user may read in each of those conversations, where it is
        not 1 (None: 1 in all of them; an idle connection holds no dict)."""
        self.pending_sends: Ids = _NONE
        """client_msg_ids of this connection's sends not answered yet."""
        self.close_decision: Close | None = None
        self._held: list[tuple[F, str | None]] | None = None
        self._buffer: list[tuple[Routed, F]] = []
        self._gone: Ids = _NONE
        """While replaying: conversations this user was removed from by an event routed
        before the connection joined them (a snapshot read before that removal must not
        subscribe it again)."""

    # --- authentication -------------------------------------------------------------
    def first_frame(self, frame_type: str) -> Close | None:
        """A valid frame before authentication: None if it is ``auth`` (check its
        token next), else the close (after an error frame saying why)."""
        if frame_type == "auth":
            return None
        return self.close(AUTH_REQUIRED)

    def auth_failed(self) -> Close | None:
        """The token was refused, or no valid auth frame came in time."""
        return self.close(AUTH_REQUIRED)

    def auth_unchecked(self) -> Close | None:
        """The auth frame came in time but the server could not check its token now:
        never 4001 (a client told 4001 signs its user out), try again later."""
        return self.close(TRY_LATER)

    def authenticated(self, user_id: str) -> None:
        """The token is good: subscribe the user now, live events wait for the replay."""
        if self.phase is _AUTH:
            self.user_id = user_id
            self.phase = _REPLAY

    # --- replay ----------------------------------------------------------------------
    def resume_from(self, since: int | None, head: int) -> int:
        """Subscribed with the stream at `head`: the position to replay from (the
        client's ``since``, else the head). Raises InvalidPosition for a ``since``
        ahead of the head (answered with an error frame and :func:`bad_resume`)."""
        start = head if since is None else since
        if start > head:
            raise InvalidPosition("since is ahead of the stream", position=str(start))
        self.last_position = start
        return start

    def replayed(self, position: int) -> None:
        """An event of the replay was written (replays come in position order)."""
        self.last_position = position

    def end_replay(self) -> list[F]:
        """The replay is over: the live events that came meanwhile, less what the replay
        covered (or held for a pending ack), to write now; then the connection is live."""
        if self.phase is not _REPLAY:
            return []
        self.phase = _LIVE
        self._gone = _NONE
        buffered, self._buffer = self._buffer, []
        out: list[F] = []
        for event, item in buffered:
            ready = self.event(event, item)
            if ready is not None:
                out.append(ready)
        return out

    @property
    def replaying(self) -> bool:
        return self.phase is _REPLAY

    @property
    def closed(self) -> bool:
        return self.phase is _CLOSED

    # --- events ----------------------------------------------------------------------
    def event(self, event: Routed, item: F) -> F | None:
        """A committed event (in position order): the item to write now, or None
        (buffered during the replay, already delivered, or held behind an ack)."""
        phase = self.phase
        if phase is not _LIVE:
            if phase is _REPLAY:
                self._buffer.append((event, item))
            return None
        position = event.position
        assert position is not None, "a committed event has a position"
        if position <= self.last_position:
            return None  # replayed already, or delivered by another topic
        self.last_position = position
        held = self._held
        pending = self.pending_sends
        if held is None and not pending:
            return item  # the common case: nothing in flight on this connection
        tag = (
            event.client_msg_id
            if event.client_msg_id in pending and event.sender_id == self.user_id
            else None
        )
        if held is None:
            if tag is None:
                return item
            # The sending connection gets its ack before the event of its own message.
            self._held = [(item, tag)]
            return None
        held.append((item, tag))  # behind a held one: the order stays
        return None

    def ephemeral(self, sender_id: str | None) -> bool:
        """Whether a typing or presence signal goes to this connection: best effort, to
        live connections of other users only (one still replaying skips it)."""
        return self.phase is _LIVE and sender_id != self.user_id

    # --- sends -----------------------------------------------------------------------
    def send_started(self, client_msg_id: str) -> None:
        self.pending_sends = _with(self.pending_sends, client_msg_id)

    def send_finished(self, client_msg_id: str, answer: F | None) -> list[F]:
        """A send of this connection ended: its answer (the ack, or None when the error
        was already written), then what was held for it, to write in that order."""
        self.pending_sends = _without(self.pending_sends, client_msg_id)
        out: list[F] = [] if answer is None else [answer]
        held = self._held
        if held is None:
            return out
        self._held = None
        for i, (item, tag) in enumerate(held):
            if tag is not None and tag in self.pending_sends:
                self._held = held[i:]  # the next one waits for its own ack
                break
            out.append(item)
        return out

    @property
    def holding(self) -> int:
        """How many events wait for an ack."""
        return 0 if self._held is None else len(self._held)

    @property
    def buffered(self) -> list[int]:
        """Positions of the live events waiting for the replay to end."""
        return [p for e, _ in self._buffer if (p := e.position) is not None]

    # --- membership ------------------------------------------------------------------
    def join(self, conversation_id: str, first_seq: int = 1) -> bool:
        """True if the connection now sees `conversation_id` and did not before (the
        transport subscribes it); a closed connection joins nothing. `first_seq`: the
        first seq the user may read there (`Member.first_seq`)."""
        if (
            self.phase is _CLOSED
            or conversation_id in self.conversations
            or conversation_id in self._gone
        ):
            return False
        self.conversations = _with(self.conversations, conversation_id)
        if first_seq > 1:
            if self.first_seqs is None:
                self.first_seqs = {}
            self.first_seqs[conversation_id] = first_seq
        return True

    def leave(self, conversation_id: str) -> bool:
        """True if the connection saw `conversation_id` (the transport unsubscribes)."""
        if conversation_id not in self.conversations:
            return False
        self.conversations = _without(self.conversations, conversation_id)
        firsts = self.first_seqs
        if firsts is not None and firsts.pop(conversation_id, None) is not None and not firsts:
            self.first_seqs = None
        return True

    def first_seq(self, conversation_id: str) -> int:
        """The first seq the user may read in a conversation this connection sees."""
        firsts = self.first_seqs
        return 1 if firsts is None else firsts.get(conversation_id, 1)

    def sees(self, conversation_id: str, about_seq: int | None) -> bool:
        """Whether an event of `conversation_id` about message `about_seq` (an edit, a
        reaction, ... of an older message: `Routing.about_seq`) reaches this connection:
        not when it is before the first seq its user may read there (history not shared
        with members added later: core/events.py:reaches, the replay's rule too)."""
        return reaches(self.first_seq(conversation_id), about_seq)

    def joins(self, event: Routed) -> str | None:
        """The conversation `event` adds this connection's user to, newly for this
        connection: subscribe it before the event is delivered."""
        cid = event.conversation_id
        if cid is None or self.user_id not in event.added_user_ids:
            return None
        if cid in self._gone:  # removed, then added back: it sees the conversation again
            self._gone = _without(self._gone, cid)
        return cid if self.join(cid, event.first_seq) else None

    def leaves(self, event: Routed) -> str | None:
        """The conversation `event` removes this connection's user from: unsubscribe it
        after the event is delivered (the removed one gets its removal)."""
        cid = event.conversation_id
        if cid is None or event.removed_user_id != self.user_id:
            return None
        if self.leave(cid):
            return cid
        if self.phase is _REPLAY:
            # routed before the connection's snapshot joins: the snapshot may be older
            # than this removal, and must not subscribe it to the conversation again
            self._gone = _with(self._gone, cid)
        return None

    # --- closing ---------------------------------------------------------------------
    def close(self, decision: Close) -> Close | None:
        """Decide to close: the decision to carry out, or None if one was taken before
        (the first one stands). Nothing is written after it."""
        if self.phase is _CLOSED:
            return None
        self.phase = _CLOSED
        self.close_decision = decision
        self._buffer = []
        self._held = None
        return decision


# --- client ----------------------------------------------------------------------------


JSONObject = Mapping[str, object]


def position_key(position: str) -> int | None:
    """Order key of a stream position, or None if it is not an integer (positions are
    opaque strings on the wire; this server's are decimal integers)."""
    if position.isdigit():
        return int(position)
    return None


class Next(StrEnum):
    """What the client does once a connection has ended."""

    RECONNECT = "reconnect"  # with backoff, resuming from `since`
    RECONNECT_SOON = "reconnect_soon"  # the server restarts: soon, backoff reset
    AUTH_FAILED = "auth_failed"  # the token is refused or the session ended: sign in
    RESUME_REFUSED = "resume_refused"  # resynchronise, then connect without `since`


AUTH_ERROR_CODES = frozenset({"unauthenticated", "user_disabled", "forbidden"})
"""Codes of an ``error`` frame before ``ready`` that refuse the token."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """A stored event the application has not had: apply it."""

    position: str
    event: JSONObject
    out_of_order: bool = False  # below the last position but never seen (a server fault)


@dataclass(frozen=True, slots=True)
class Dropped:
    """A stored event received before (a replay overlapping what was live): skip it."""

    position: str


@dataclass(frozen=True, slots=True)
class Ready:
    """The connection is authenticated and subscribed; the replay (if any) follows."""

    position: str | None
    user: JSONObject | None


@dataclass(frozen=True, slots=True)
class Answered:
    """The ``ack`` (ok) or ``error`` of a pending request."""

    ref: str
    ok: bool
    frame: JSONObject
    client_msg_id: str | None


@dataclass(frozen=True, slots=True)
class Refused:
    """An ``error`` frame before ``ready`` that answers no request: the auth frame was
    refused. `next` says what follows when the server closes (None: nothing special)."""

    code: str
    next: Next | None


@dataclass(frozen=True, slots=True)
class Signal:
    """Any other frame (``typing``, ``presence``, ...): ephemeral, never replayed."""

    frame: JSONObject


@dataclass(frozen=True, slots=True)
class ReconnectSoon:
    """The server asks the client to reconnect (it is shutting down)."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """Not a frame of the protocol (malformed, or an answer nobody waits for)."""


@dataclass(frozen=True, slots=True)
class Ended:
    """A connection ended: what to do next, and the requests it left unanswered (a
    send among them is retried with the same client_msg_id)."""

    next: Next
    unanswered: tuple[str, ...]
    unanswered_sends: tuple[str, ...]


Outcome = Delivered | Dropped | Ready | Answered | Refused | Signal | ReconnectSoon | Ignored

_IGNORED = Ignored()
_RECONNECT_SOON = ReconnectSoon()


class ClientSession:
    """One account's event stream as a client keeps it across connections.

    In: :meth:`connect` (a connection opened), each decoded server frame
    (:meth:`receive`), the application's requests (:meth:`request`), the end of a
    connection (:meth:`connection_lost`). Out: frames to write
    (:meth:`frames_to_send`), one outcome per frame received, the resume position
    :attr:`since`, and what to do after a close.
    """

    RECENT = 10_000
    """How many integer positions below the last one are remembered individually."""
    OPAQUE = 100_000
    """How many non-integer positions are remembered."""

    def __init__(self, since: str | None = None) -> None:
        self.since: str | None = since
        """The position to resume from: the last one received (or the first ``ready``'s)."""
        self.ready = False
        self.connections = 0
        """How many connections became ready."""
        self.duplicates = 0
        """Events dropped because they were received before."""
        self.out_of_order = 0
        """Events that came below the last position, never seen: delivered anyway."""
        self.ready_position: str | None = None
        self._out: list[str] = []
        self._refs = 0
        self._pending: dict[str, str | None] = {}  # ref -> client_msg_id of a send
        self._forget(since)

    def _forget(self, since: str | None) -> None:
        self._last: int | None = None if since is None else position_key(since)
        # integer positions at or below the floor were handled (since, or long ago)
        self._floor: int = -1 if self._last is None else self._last
        self._recent: set[int] = set()
        self._recent_order: collections.deque[int] = collections.deque()
        self._opaque: collections.OrderedDict[str, None] = collections.OrderedDict()

    # --- writing ---------------------------------------------------------------------
    def connect(self, token: str) -> None:
        """A new connection is open: its first frame authenticates and resumes."""
        self.ready = False
        auth: dict[str, object] = {"type": "auth", "token": token}
        if self.since is not None:
            auth["since"] = self.since
        self._out.append(orjson.dumps(auth).decode())

    def request(self, frame: JSONObject) -> str | None:
        """Queue a client frame with a fresh ``ref``; returns the ref, or None when no
        connection is ready (nothing queued)."""
        if not self.ready:
            return None
        self._refs += 1
        ref = str(self._refs)
        cmid = frame.get("client_msg_id") if frame.get("type") == "send" else None
        self._pending[ref] = cmid if isinstance(cmid, str) else None
        self._out.append(orjson.dumps({**frame, "ref": ref}).decode())
        return ref

    def frames_to_send(self) -> list[str]:
        """The frames to write, in order, since the last call."""
        out, self._out = self._out, []
        return out

    def give_up(self, ref: str) -> None:
        """The application stopped waiting for `ref` (a timeout)."""
        self._pending.pop(ref, None)

    @property
    def pending(self) -> list[str]:
        """Refs of the requests not answered yet, oldest first."""
        return list(self._pending)

    # --- reading ---------------------------------------------------------------------
    def receive(self, frame: object) -> Outcome:
        """One decoded server frame: what it means for the application."""
        # `type(x) is dict` first: a decoded frame is a dict, and an isinstance check
        # against the Mapping ABC costs several times more (this runs once per event)
        if type(frame) is not dict and not isinstance(frame, Mapping):
            return _IGNORED
        ftype = frame.get("type")
        if ftype == "event":
            position = frame.get("position")
            event = frame.get("event")
            if position is None or (type(event) is not dict and not isinstance(event, Mapping)):
                return _IGNORED
            return self._event(position if type(position) is str else str(position), event)
        if ftype == "ready":
            return self._ready(frame)
        if ftype == "ack" or ftype == "error":
            return self._answer(frame, ftype == "ack")
        if ftype == "reconnect":
            return _RECONNECT_SOON
        return Signal(frame)

    def _event(self, position: str, event: JSONObject) -> Outcome:
        if self._accept(position):
            return Delivered(position, event)
        if self._accept_late(position):
            return Delivered(position, event, out_of_order=True)
        self.duplicates += 1
        return Dropped(position)

    def _accept(self, position: str) -> bool:
        """True (and noted) if `position` is after everything received."""
        key = position_key(position)
        if key is None:
            if position in self._opaque:
                return False
            self._opaque[position] = None
            if len(self._opaque) > self.OPAQUE:
                self._opaque.popitem(last=False)
        else:
            last = self._last
            if last is not None and key <= last:
                return False
            self._last = key
            self._remember(key)
        self.since = position
        return True

    def _accept_late(self, position: str) -> bool:
        """An integer position at or below the last one, never seen: delivered rather
        than lost (the resume position stays the highest)."""
        key = position_key(position)
        if key is None or key <= self._floor or key in self._recent:
            return False
        self.out_of_order += 1
        self._remember(key)
        return True

    def _remember(self, key: int) -> None:
        self._recent.add(key)
        self._recent_order.append(key)
        if len(self._recent_order) > self.RECENT:
            oldest = self._recent_order.popleft()
            self._recent.discard(oldest)
            self._floor = max(self._floor, oldest)

    def _ready(self, frame: JSONObject) -> Ready:
        self.ready = True
        self.connections += 1
        pos = frame.get("position")
        self.ready_position = None if pos is None else str(pos)
        if self.since is None and self.ready_position is not None:
            # Nothing received yet: resume from the head this connection subscribed
            # at, so that a drop before the first event loses nothing.
            self._accept(self.ready_position)
            head = position_key(self.ready_position)
            if head is not None:
                self._floor = head
        user = frame.get("user")
        return Ready(self.ready_position, user if isinstance(user, Mapping) else None)

    def _answer(self, frame: JSONObject, ok: bool) -> Outcome:
        ref = frame.get("ref")
        key = None if ref is None else str(ref)
        if key is not None and key in self._pending:
            return Answered(key, ok, frame, self._pending.pop(key))
        if ok or self.ready:
            return _IGNORED
        error = frame.get("error")
        read = error.get("code") if isinstance(error, Mapping) else None
        received = read if isinstance(read, str) else ""  # a code read, never sent
        if received in AUTH_ERROR_CODES:
            return Refused(received, Next.AUTH_FAILED)
        if received == "invalid_position":
            self._refuse_resume()
            return Refused(received, Next.RESUME_REFUSED)
        return Refused(received, None)

    def _refuse_resume(self) -> None:
        self.since = None
        self._forget(None)

    # --- the end of a connection ------------------------------------------------------
    def connection_lost(self, code: int | None) -> Ended:
        """The connection ended (`code`: the server's close code, None without one)."""
        self.ready = False
        self._out = []
        unanswered = tuple(self._pending)
        sends = tuple(c for c in self._pending.values() if c is not None)
        self._pending = {}
        if code in (CLOSE_AUTH, CLOSE_REVOKED):
            nxt = Next.AUTH_FAILED
        elif code == CLOSE_BAD_RESUME:
            self._refuse_resume()
            nxt = Next.RESUME_REFUSED
        elif code == CLOSE_RESTART:
            nxt = Next.RECONNECT_SOON
        else:
            nxt = Next.RECONNECT
        return Ended(nxt, unanswered, sends)

