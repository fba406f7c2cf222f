"""The Bus port: publish committed events and ephemeral signals to topics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class EnvelopeKind(StrEnum):
    EVENT = "event"  # a committed event with a position
    EPHEMERAL = "ephemeral"  # typing, presence: no position, never stored
    CLOSE = "close"  # close connections of a user (or of one token)


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: EnvelopeKind
    frame: str = ""  # the frame, encoded once, written as is to every connection
    position: int | None = None
    conversation_id: str | None = None
    sender_id: str | None = None  # an ephemeral signal skips its sender's connections
    client_msg_id: str | None = None  # a message event: lets the sending connection ack first
    added_user_ids: Sequence[str] = field(default_factory=tuple)
    removed_user_id: str | None = None
    user_id: str | None = None  # CLOSE: whose connections
    token_id: str | None = None  # CLOSE: only this token's connections
    reason: str = ""
    # core/events.py:Routing: an event about this older message goes only to members
    # whose range holds it; the first seq the added members may read
    about_seq: int | None = None
    first_seq: int = 1


EVENTS_TOPIC = "events"  # every committed event, in position order per publisher


def conversation_topic(conversation_id: str) -> str:
    return f"c:{conversation_id}"


def user_topic(user_id: str) -> str:
    return f"u:{user_id}"


Handler = Callable[[str, Envelope], Awaitable[None] | None]


class Bus(Protocol):
    # times the bus lost its connection and made it again (for /metrics)
    reconnects: int

    async def publish(self, topic: str, envelope: Envelope) -> None: ...

    async def publish_many(self, topics: Sequence[str], envelope: Envelope) -> None: ...

    def subscribe(self, topic: str, handler: Handler) -> None: ...

    def unsubscribe(self, topic: str, handler: Handler) -> None: ...

    async def set_presence(self, user_id: str, conn_id: str, state: str | None) -> str:
        """Record one connection's state (None: gone); returns the user's aggregate."""
        ...

    async def get_presence(self, user_ids: Sequence[str]) -> dict[str, str]: ...

    async def count_hit(self, key: str, window_seconds: float) -> tuple[int, float]:
        """Rate-limit counter: count one hit on `key` in its current fixed window of
        `window_seconds` (the window starts at the key's first hit). Returns the hits in
        the window, this one included, and the seconds until the window ends. Shared by
        every node on a shared bus (Redis: INCR + PEXPIRE NX + PTTL)."""
        ...

    async def start(self) -> None:
        """Connect and begin delivering to subscribers."""
        ...

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Called after the bus (re)connects: traffic may have been missed."""
        ...

    async def ping(self) -> None:
        """Raise when the bus cannot be reached (for readiness)."""
        ...

    async def close(self) -> None: ...
