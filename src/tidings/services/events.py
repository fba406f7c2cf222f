"""Append events in the committing transaction; publish them after commit, encoded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from tidings.bus.ports import EVENTS_TOPIC, Bus, Envelope, EnvelopeKind
from tidings.core.clock import rfc3339
from tidings.core.events import EventKind
from tidings.core.models import ConversationId, StoredEvent, UserId
from tidings.protocol.wire import event_frame
from tidings.store.ports import Tx

log = structlog.get_logger(__name__)


def event_payload(
    kind: EventKind, conversation_id: str, now: datetime, **fields: Any
) -> dict[str, Any]:
    """An event's wire payload: its kind, conversation and time, then its own fields."""
    return {"kind": kind.value, "conversation_id": conversation_id, "at": rfc3339(now), **fields}


def envelope_for(event: StoredEvent) -> Envelope:
    """The bus envelope of a stored event: its frame, encoded once, and what the gateway
    needs to route it. Built the same way after commit and when a gateway catches up
    from the database."""
    payload: dict[str, Any] = event.payload
    kind = payload.get("kind")
    added: tuple[str, ...] = ()
    removed = sender = client_msg_id = None
    if kind == EventKind.MESSAGE:
        message = payload["message"]
        sender, client_msg_id = message["sender_id"], message["client_msg_id"]
    elif kind == EventKind.CONVERSATION_CREATED:
        added = tuple(payload.get("member_ids", ()))
    elif kind == EventKind.MEMBER_ADDED:
        added = tuple(payload.get("user_ids", ()))
    elif kind == EventKind.MEMBER_REMOVED:
        removed = payload.get("user_id")
    return Envelope(
        kind=EnvelopeKind.EVENT,
        frame=event_frame(event.position, payload),
        position=event.position,
        conversation_id=event.conversation_id,
        user_id=event.user_id,
        added_user_ids=added,
        removed_user_id=removed,
        sender_id=sender,
        client_msg_id=client_msg_id,
    )


@dataclass(slots=True)
class EventBatch:
    """Events of one transaction. `reserve()` hands out positions before rows that need
    them (membership ranges) are written; `flush()` inserts them and schedules the
    publish for after the commit."""

    tx: Tx
    bus: Bus
    now: datetime
    _pending: list[tuple[dict[str, Any], str | None, str | None]] = field(default_factory=list)
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

    def add(
        self,
        payload: dict[str, Any],
        *,
        conversation_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """An event of a conversation (its members see it) or of one user."""
        self._pending.append((payload, conversation_id, user_id))

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
        stored = [
            StoredEvent(
                position=self._first + i,
                conversation_id=None if cid is None else ConversationId(cid),
                user_id=None if uid is None else UserId(uid),
                payload=payload,
            )
            for i, (payload, cid, uid) in enumerate(self._pending)
        ]
        self._first += len(self._pending)
        self._reserved -= len(self._pending)
        self._pending = []
        await self.tx.insert_events(stored, self.now)
        bus = self.bus

        async def publish() -> None:
            try:
                for event in stored:
                    await bus.publish(EVENTS_TOPIC, envelope_for(event))
            except Exception as exc:  # noqa: BLE001 - committed: gateways catch up from the store
                log.warning("publish_failed", error=str(exc), first=stored[0].position)

        self.tx.after_commit(publish)
        return stored
