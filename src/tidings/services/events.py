"""Publishing what a transaction wrote, after it commits: events (appended in the
transaction, encoded once) and connection closes. The only module of the services that
publishes committed things (ephemeral signals go out at once: services/presence.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from tidings.bus.ports import EVENTS_TOPIC, Bus, Envelope, EnvelopeKind, user_topic
from tidings.core.events import Event, Routing
from tidings.core.models import StoredEvent
from tidings.protocol.wire import JsonDict, event_frame, event_json, event_of
from tidings.store.ports import Tx

log = structlog.get_logger(__name__)


def publish_on_commit(tx: Tx, bus: Bus, topic: str, envelopes: Sequence[Envelope]) -> None:
    """Publish `envelopes` on `topic` once `tx` has committed, in order; never if it rolls
    back (Zulip's `send_event_on_commit`). A publish that fails is logged, not raised:
    what it announces is committed, and every gateway catches up from the store (events:
    the sequencer) or from the tokens' state (closes: `Hub.watch_sessions`)."""
    if not envelopes:
        return

    async def publish() -> None:
        try:
            for envelope in envelopes:
                await bus.publish(topic, envelope)
        except Exception as exc:  # noqa: BLE001 - committed: gateways catch up
            first = envelopes[0]
            log.warning(
                "publish_failed", topic=topic, kind=first.kind.value, first=first.position,
                error=str(exc),
            )

    tx.after_commit(publish)


def close_connections_on_commit(
    tx: Tx, bus: Bus, user_id: str, reason: str, *, token_ids: Sequence[str] | None = None
) -> None:
    """Once `tx` has committed, every gateway closes the live connections of `user_id`
    (only those made with one of `token_ids`, when given) with 4003 and `reason`."""
    if token_ids is None:
        envelopes = [Envelope(kind=EnvelopeKind.CLOSE, user_id=user_id, reason=reason)]
    else:
        envelopes = [
            Envelope(kind=EnvelopeKind.CLOSE, user_id=user_id, token_id=token_id, reason=reason)
            for token_id in token_ids
        ]
    publish_on_commit(tx, bus, user_topic(user_id), envelopes)


def envelope_of(position: int, event: Event, payload: JsonDict) -> Envelope:
    """An event's bus envelope: its frame (`payload` is `event_json(event)`), encoded
    once, and its routing."""
    return _envelope(position, event.routing, payload)


def _envelope(position: int, routing: Routing, payload: JsonDict) -> Envelope:
    return Envelope(
        kind=EnvelopeKind.EVENT,
        frame=event_frame(position, payload),
        position=position,
        conversation_id=routing.conversation,
        user_id=routing.user,
        added_user_ids=routing.added,
        removed_user_id=routing.removed,
        sender_id=routing.sender,
        client_msg_id=routing.client_msg_id,
        about_seq=routing.about_seq,
        first_seq=routing.first_seq,
    )


def envelope_for(stored: StoredEvent) -> Envelope:
    """The envelope of an event read back from the store (a gateway catching up): the
    same as the one published after its commit. Its routing is that of the typed event
    (`wire.event_of`); its frame is the stored payload, the wire shape as it was sent."""
    return envelope_of(stored.position, event_of(stored), stored.payload)


@dataclass(slots=True)
class EventBatch:
    """Events of one transaction. `reserve()` hands out positions before rows that need
    them (membership ranges) are written; `flush()` inserts them and schedules the
    publish for after the commit."""

    tx: Tx
    bus: Bus
    now: datetime
    _pending: list[Event] = field(default_factory=list)
    _first: int | None = None
    _reserved: int = 0

    async def reserve(self, count: int) -> int:
        """Reserve positions for the next `count` events added; returns the first.
        Positions taken in one transaction are consecutive."""
        first = await self.tx.reserve_positions(count)
        if self._first is None:
            self._first = first
        self._reserved += count
        return first

    def add(self, event: Event) -> None:
        """An event of this transaction: its routing says who sees it (the members of
        its conversation, or one user)."""
        self._pending.append(event)

    async def flush(self) -> list[StoredEvent]:
        if not self._pending:
            return []
        missing = len(self._pending) - self._reserved
        if missing > 0:
            first_new = await self.tx.reserve_positions(missing)
            if self._first is None:
                self._first = first_new
            self._reserved += missing
        assert self._first is not None
        stored: list[StoredEvent] = []
        envelopes: list[Envelope] = []
        for i, event in enumerate(self._pending):
            position = self._first + i
            routing = event.routing
            payload = event_json(event)
            stored.append(StoredEvent(position, routing.conversation, routing.user, payload))
            envelopes.append(_envelope(position, routing, payload))
        self._first += len(self._pending)
        self._reserved -= len(self._pending)
        self._pending = []
        await self.tx.insert_events(stored, self.now)
        publish_on_commit(self.tx, self.bus, EVENTS_TOPIC, envelopes)
        return stored
