"""The WebSocket endpoint /api/v1/ws: one reader loop and one writer task per client."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Coroutine
from typing import Protocol

import structlog
from starlette.types import Message as AsgiMessage
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from tidings.core.errors import (
    ErrorCode,
    Internal,
    InvalidPosition,
    InvalidRequest,
    RateLimited,
    TidingsError,
    Unauthenticated,
)
from tidings.core.models import Message, PresenceState, Session, User
from tidings.gateway.hub import Connection, Hub, Item, Outbox, wire_of
from tidings.protocol import frames as f
from tidings.protocol.session import (
    AUTH_REQUIRED,
    NORMAL,
    RESTARTING,
    TOO_SLOW,
    TRY_LATER,
    Close,
    ServerSession,
    bad_resume,
)
from tidings.protocol.wire import (
    ack_frame,
    error_frame,
    event_frame,
    invocation_json,
    message_json,
    ready_frame,
)
from tidings.services.audit import client_address
from tidings.services.hub import Services
from tidings.services.metrics import Tally
from tidings.services.ratelimit import Action
from tidings.services.sync import parse_position

log = structlog.get_logger(__name__)
REPLAY_PAGE = 500
# The errors that refuse a token (close 4001: the client signs in again); any other
# failure to check one is the server's, and never answered 4001.
REFUSALS = frozenset(
    {
        ErrorCode.UNAUTHENTICATED,
        ErrorCode.SECOND_FACTOR_REQUIRED,
        ErrorCode.USER_DISABLED,
        ErrorCode.FORBIDDEN,
    }
)
# After the auth timeout, a frame already received (but not yet read by a loop that was
# busy when the timeout fell due) is still taken.
AUTH_GRACE_SECONDS = 0.25
MAX_SENDS_IN_FLIGHT = 256
# What a connection refused for the user's or address's connection cap is told to wait
# (`rate_limited`, then close 1013): as long as it takes another of them to close.
TOO_MANY_RETRY_SECONDS = 30.0


WS_PATH = "/api/v1/ws"
RAW_SOCKET = "tidings.raw_socket"  # the ASGI scope extension of app/ws_protocol.py

# What of an accepted connection's ASGI scope is still read: the type (Starlette's
# WebSocket checks it), the caller's address and the path (uvicorn's log lines of the
# close). tests/unit/test_private_apis.py checks uvicorn's reads against this.
SCOPE_READ_LATER = ("type", "client", "path", "query_string")


def keep_only_what_is_read_later(scope: Scope) -> None:
    """Trim the scope in place (uvicorn's protocol and Starlette's WebSocket share it);
    a cleared dict gives its table back, the few keys kept get a small one."""
    kept = {key: scope[key] for key in SCOPE_READ_LATER if key in scope}
    scope.clear()
    scope.update(kept)


class Addresses(Protocol):
    """A set of client addresses (the trusted proxies: uvicorn's `_TrustedHosts`)."""

    def __contains__(self, host: str, /) -> bool: ...


class RawSocket(Protocol):
    """A WebSocket connection's transport, offered by the server under `RAW_SOCKET`."""

    @property
    def plain(self) -> bool: ...

    @property
    def open(self) -> bool: ...

    def write_frames(self, data: bytes) -> None: ...

    async def wait_writable(self) -> None: ...


class _StarletteOutbox(Outbox):
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    async def write(self, frame: str) -> None:
        await self.ws.send_text(frame)

    async def close(self, code: int, reason: str) -> None:
        if self.ws.application_state is WebSocketState.CONNECTED:
            await self.ws.close(code, reason)


class _RawOutbox(_StarletteOutbox):
    """Frames go to the transport as bytes: an event's frame is built once for all its
    connections (Prepared) and a burst goes out in one write. Closing stays ASGI's."""

    def __init__(self, ws: WebSocket, sock: RawSocket) -> None:
        super().__init__(ws)
        self.sock = sock

    async def write(self, frame: str) -> None:
        await self.write_many([frame])

    async def write_many(self, frames: list[Item]) -> None:
        sock = self.sock
        await sock.wait_writable()  # the client reads slower than we write: wait
        if not sock.open:
            raise ConnectionError("the connection is closed")
        sock.write_frames(b"".join(map(wire_of, frames)))  # one item: no copy


def _answer_send(
    conn: Connection,
    frame: f.SendFrame,
    outcome: Message | BaseException | None,
    frames_out: Tally,
) -> None:
    """Queue a send's ack (the stored message) or error, then what the connection held
    for it; None: no answer (the connection or the server is going away)."""
    ack = None
    if isinstance(outcome, Message):
        ack = ack_frame(frame.ref, message=message_json(outcome))
        frames_out.add("ack")
    elif isinstance(outcome, TidingsError):
        conn.enqueue(error_frame(frame.ref, outcome))
        frames_out.add("error")
    elif outcome is not None:
        log.error("send_failed", exc_info=outcome, conversation_id=frame.conversation_id)
        conn.enqueue(error_frame(frame.ref, Internal("internal error: retry with the same id")))
        frames_out.add("error")
    conn.finish_send(frame.client_msg_id, ack)


def too_many(whose: str, limit: int) -> RateLimited:
    return RateLimited(
        f"too many connections: at most {limit} per {whose}", retry_after=TOO_MANY_RETRY_SECONDS
    )


def _releasing(slots: asyncio.Semaphore) -> Callable[[asyncio.Task[None]], None]:
    return lambda _task: slots.release()


class Gateway:
    def __init__(
        self,
        services: Services,
        hub: Hub,
        *,
        max_frame_bytes: int,
        auth_timeout: float,
        queue_limit: int,
        max_per_user: int,
        max_per_address: int,
        trusted_proxies: Addresses,
    ) -> None:
        self.svc = services
        self.hub = hub
        self.max_frame_bytes = max_frame_bytes
        self.auth_timeout = auth_timeout
        self.queue_limit = queue_limit
        self.max_per_user = max_per_user
        self.max_per_address = max_per_address
        # A trusted proxy's own address is not capped (its connections are its clients').
        self.trusted_proxies = trusted_proxies
        self.by_address: dict[str, int] = {}  # connections of each client address
        self.counts = services.deps.counts

    @staticmethod
    def _text_of(message: AsgiMessage) -> str | None:
        """A received ASGI message's text; None when the client went away. (Not a
        coroutine around `receive`: an idle connection waits with one frame less.)"""
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = "\ufffd"  # not JSON: answered with invalid_request
        return str(text)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[None, None, None]:
        """The endpoint as a bare ASGI application: the server routes WebSocket upgrades
        of its path here without the HTTP middleware stack (app/ws_protocol.py). A plain
        function returning the connection's coroutine: one suspended frame less for
        every idle connection."""
        return self.serve(WebSocket(scope, receive, send), receive)

    async def serve(self, ws: WebSocket, receive: Receive | None = None) -> None:
        """One connection. `receive`: the ASGI receive under `ws`, for the idle wait
        (a frame less than through the WebSocket wrapper, which adds only checks of
        its own state, and the connection is accepted by then)."""
        await ws.accept()
        counts = self.counts
        counts.ws_open += 1
        try:
            await self._serve(ws, receive)
        finally:
            counts.ws_open -= 1

    async def _serve(self, ws: WebSocket, receive: Receive | None) -> None:
        # the caller's address, for rate limits and the audit log (copied into the tasks
        # this connection starts)
        address = ws.client.host if ws.client is not None else ""
        client_address.set(address)
        counted = bool(address) and address not in self.trusted_proxies
        if counted and self.by_address.get(address, 0) >= self.max_per_address:
            await self._refuse(ws, too_many("address", self.max_per_address), TRY_LATER)
            return
        if counted:
            self.by_address[address] = self.by_address.get(address, 0) + 1
        try:
            outbox = self._outbox(ws)  # reads the scope's extensions
            # Read by now (the address above, X-Forwarded-For before it): an idle connection
            # need not hold the handshake's scope (its headers: 1 KiB from the bench, more
            # from a browser; the ASGI, state and extension dicts), only what is read later.
            keep_only_what_is_read_later(ws.scope)
            if self.hub.draining:
                await ws.close(RESTARTING.code, RESTARTING.reason)
                return
            proto: ServerSession[Item] = ServerSession()
            opened = await self._authenticate(ws, proto)
            if opened is None:
                return
            session, since = opened
            user = session.user  # what the connection needs of its session (beside the ids)
            if len(self.hub.by_user.get(user.id, ())) >= self.max_per_user:
                # (no await from this check to the hub's register in _start)
                await self._refuse(ws, too_many("user", self.max_per_user), TRY_LATER)
                return
            conn = Connection(
                conn_id=secrets.token_hex(8),
                user_id=user.id,
                token_id=session.token_id,
                outbox=outbox,
                queue_limit=self.queue_limit,
                session=proto,
            )
            del session, opened  # an idle connection holds its user, not its device or expiry
            structlog.contextvars.bind_contextvars(conn_id=conn.conn_id, user_id=conn.user_id)
            writer = asyncio.get_running_loop().create_task(conn.run_writer())
            try:
                await self._start(conn, user, since)
                await self._read_loop(receive or ws.receive, conn, user)
            except WebSocketDisconnect:
                pass
            except TidingsError as exc:  # a resume position this server never gave out
                conn.enqueue(error_frame(None, exc))
                conn.close(bad_resume(exc.code.value))
            except Exception:
                log.exception("connection_failed")
                conn.enqueue(error_frame(None, Internal("internal error: reconnect with since")))
            finally:
                self.hub.unregister(conn)
                conn.close(NORMAL)
                if conn.session.close_decision is TOO_SLOW:
                    self.counts.slow_disconnects += 1
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await writer
                writer.cancel()
                with contextlib.suppress(Exception):
                    await self.svc.presence.set_state(user, conn.conn_id, None)
                structlog.contextvars.unbind_contextvars("conn_id", "user_id")
        finally:
            if counted:
                self._uncount(address)

    def _uncount(self, address: str) -> None:
        held = self.by_address.pop(address, 1) - 1
        if held > 0:
            self.by_address[address] = held

    @staticmethod
    def _outbox(ws: WebSocket) -> Outbox:
        sock: RawSocket | None = ws.scope.get("extensions", {}).get(RAW_SOCKET)
        if sock is not None and sock.plain:
            return _RawOutbox(ws, sock)
        return _StarletteOutbox(ws)  # compression negotiated, or another ASGI server

    async def _authenticate(
        self, ws: WebSocket, proto: ServerSession[Item]
    ) -> tuple[Session, int | None] | None:
        """The session of the first frame's token, and its `since`; None when refused
        (the connection is then closed, with an `error` frame that says why)."""
        try:
            frame = await self._auth_frame(ws, proto)
        except (TimeoutError, TidingsError, WebSocketDisconnect) as exc:
            await self._refuse(ws, exc, proto.auth_failed())
            return None
        try:
            # The client has done its part in time; checking its token is the server's,
            # however long that takes when busy: a valid token is never answered 4001.
            session = await self.svc.auth.authenticate(frame.token, address=client_address.get())
            since = None if frame.since is None else parse_position(frame.since)
            if since is not None:
                await self.svc.sync.check_resumable(since)  # from before a restore: 4009
            return session, since
        except TidingsError as exc:
            if exc.code in REFUSALS:
                await self._refuse(ws, exc, proto.auth_failed())
            elif isinstance(exc, InvalidPosition):
                await self._refuse(ws, exc, proto.close(bad_resume(exc.code.value)))
            else:  # the store is away: the client retries later, still signed in
                await self._refuse(ws, exc, proto.auth_unchecked())
        except Exception:
            log.exception("auth_failed")
            await self._refuse(ws, None, proto.auth_unchecked())
        return None

    async def _auth_frame(self, ws: WebSocket, proto: ServerSession[Item]) -> f.AuthFrame:
        """The first frame, which must be `auth`, within the auth timeout. The timeout
        is the client's: it covers receiving the frame, not checking its token; and a
        loop too busy to read a frame that arrived in time gets one more short turn."""
        try:
            async with asyncio.timeout(self.auth_timeout):
                return await self._first_frame(ws, proto)
        except TimeoutError:
            async with asyncio.timeout(AUTH_GRACE_SECONDS):
                return await self._first_frame(ws, proto)

    async def _first_frame(self, ws: WebSocket, proto: ServerSession[Item]) -> f.AuthFrame:
        while True:
            text = self._text_of(await ws.receive())
            if text is None:
                raise WebSocketDisconnect(1000)
            try:
                frame = f.parse_frame(text, self.max_frame_bytes)
            except TidingsError as exc:
                await ws.send_text(error_frame(exc.details.get("ref"), exc))
                continue
            self.counts.frames_in.add(frame.type)
            if proto.first_frame(frame.type) is not None or not isinstance(frame, f.AuthFrame):
                raise Unauthenticated("the first frame must be auth")
            return frame

    @staticmethod
    async def _refuse(ws: WebSocket, exc: BaseException | None, decision: Close | None) -> None:
        """Close a connection that did not become ready: with an `error` frame that says
        why, when there is one."""
        if isinstance(exc, TidingsError):
            with contextlib.suppress(Exception):
                await ws.send_text(error_frame(None, exc))
        decision = decision or AUTH_REQUIRED
        with contextlib.suppress(Exception):
            await ws.close(decision.code, decision.reason)

    async def _start(self, conn: Connection, user: User, since: int | None) -> None:
        """Subscribe first, then replay, then go live: nothing lost at the boundary
        (the rules are the connection's ServerSession)."""
        proto = conn.session  # replaying since it authenticated: live events wait
        self.hub.register(conn)
        snapshot = await self.svc.sync.snapshot(user)
        head, firsts = snapshot.head, snapshot.first_seqs
        routed = self.hub.routed  # no await between this and the joins
        for cid in snapshot.conversation_ids:
            self.hub.join(conn, cid, firsts.get(cid, 1))
        del snapshot, firsts
        start = proto.resume_from(since, head)  # InvalidPosition: closed with 4009
        await conn.enqueue_wait(ready_frame(user, head, self.svc.deps.clock.now()))
        self.counts.frames_out.add("ready")
        # Every event after `head` reaches the connection live, in the conversations of
        # the same snapshot; unless the hub routed some before the joins above. Only
        # then, or for a resume from before the head, is there anything to replay.
        if start < head or routed is None or routed > head:
            while True:
                events, more = await self.svc.sync.events_since(
                    user, proto.last_position, REPLAY_PAGE, at_least=head
                )
                for event in events:
                    await conn.enqueue_wait(event_frame(event.position, event.payload))
                    proto.replayed(event.position)
                self.counts.frames_out.add("event", len(events))
                if not more:
                    break
        conn.end_replay()
        await self.svc.presence.set_state(user, conn.conn_id, PresenceState.ONLINE)

    async def _read_loop(self, receive: Receive, conn: Connection, user: User) -> None:
        # made at the first send: an idle connection holds neither
        in_flight: asyncio.Semaphore | None = None
        tasks: set[asyncio.Task[None]] | None = None  # sends on the slower path
        loop = asyncio.get_running_loop()
        frames_in, frames_out = self.counts.frames_in, self.counts.frames_out
        try:
            while not conn.closed:
                text = self._text_of(await receive())
                if text is None:
                    return
                try:
                    frame = f.parse_frame(text, self.max_frame_bytes)
                except TidingsError as exc:
                    frames_in.add("invalid")
                    frames_out.add("error")
                    conn.enqueue(error_frame(exc.details.pop("ref", None), exc))
                    continue
                frames_in.add(frame.type)
                if isinstance(frame, f.SendFrame):
                    if in_flight is None:
                        in_flight = asyncio.Semaphore(MAX_SENDS_IN_FLIGHT)
                    await in_flight.acquire()
                    if not await self._submit(conn, user, frame, in_flight):
                        # invalid on its face: perhaps the retry of a stored message, which
                        # send() looks up (not the hot path)
                        task = loop.create_task(self._send(conn, user, frame))
                        if tasks is None:
                            tasks = set()
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                        task.add_done_callback(_releasing(in_flight))
                    continue
                try:
                    conn.enqueue(await self._handle(conn, user, frame))
                    frames_out.add("ack")
                except TidingsError as exc:
                    conn.enqueue(error_frame(frame.ref, exc))
                    frames_out.add("error")
                except Exception:  # one frame's boundary: logged, answered
                    log.exception("frame_failed", frame_type=frame.type)
                    conn.enqueue(error_frame(frame.ref, Internal("internal error: retry later")))
                    frames_out.add("error")
        finally:
            for task in tasks or ():
                task.cancel()

    async def _submit(
        self, conn: Connection, user: User, frame: f.SendFrame, in_flight: asyncio.Semaphore
    ) -> bool:
        """A send joins the group commit without a task of its own; the ack (or error)
        is written when its future resolves. False: the request failed its own checks
        (nothing queued; `_send` answers it)."""
        conn.session.send_started(frame.client_msg_id)
        try:
            # refused before it is queued: an accepted send is never dropped
            await self.svc.limiter.check(Action.SEND, user.id, client_address.get())
        except TidingsError as exc:
            _answer_send(conn, frame, exc, self.counts.frames_out)
            in_flight.release()
            return True
        try:
            future = self.svc.messages.submit(
                user,
                frame.conversation_id,
                frame.client_msg_id,
                frame.body,
                frame.reply_to_seq,
                frame.attachments,
                thread_root_seq=frame.thread_root_seq,
                also_to_conversation=frame.also_to_conversation,
            )
        except TidingsError:
            return False

        def sent(done: asyncio.Future[tuple[Message, bool]]) -> None:
            in_flight.release()
            # cancelled: the server is stopping; the client resends with the same id
            outcome = None if done.cancelled() else done.exception() or done.result()[0]
            _answer_send(conn, frame, outcome, frames_out)

        frames_out = self.counts.frames_out
        future.add_done_callback(sent)
        return True

    async def _send(self, conn: Connection, user: User, frame: f.SendFrame) -> None:
        """A send that failed its own checks: `send` answers a retry of a stored message
        with the original, or raises the error."""
        outcome: Message | BaseException | None = None
        try:
            outcome, _created = await self.svc.messages.send(
                user,
                frame.conversation_id,
                frame.client_msg_id,
                frame.body,
                frame.reply_to_seq,
                frame.attachments,
                thread_root_seq=frame.thread_root_seq,
                also_to_conversation=frame.also_to_conversation,
            )
        except Exception as exc:  # noqa: BLE001 - answered to the client below
            outcome = exc
        finally:
            _answer_send(conn, frame, outcome, self.counts.frames_out)

    async def _handle(self, conn: Connection, user: User, frame: f.ClientFrame) -> str:
        match frame:
            case f.ReadFrame():
                read_seq, unread = await self.svc.messages.mark_read(
                    user, frame.conversation_id, frame.seq
                )
                return ack_frame(frame.ref, read_seq=read_seq, unread=unread)
            case f.TypingFrame():
                await self.svc.presence.typing(user, frame.conversation_id)
            case f.PresenceFrame():
                await self.svc.presence.update(user, conn.conn_id, PresenceState(frame.state))
            case f.PingFrame():
                pass
            case f.CommandFrame():
                invocation, command = await self.svc.commands.invoke(
                    user, frame.conversation_id, frame.command, frame.text
                )
                return ack_frame(frame.ref, invocation=invocation_json(invocation, command))
            case f.AuthFrame():
                raise InvalidRequest("already authenticated")
            case _:
                raise InvalidRequest("unknown frame")
        return ack_frame(frame.ref)
