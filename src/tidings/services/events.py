"""Append events in the committing transaction; publish them after commit, encoded once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidings.bus.ports import Bus, Envelope, EnvelopeKind, conversation_topic, user_topic
from tidings.core.models import ConversationId, StoredEvent, UserId
from tidings.protocol.wire import event_frame
from tidings.store.ports import Tx


@dataclass(slots=True)
class _Pending:
    payload: dict[str, Any]
    conversation_id: str | None
    user_id: str | None
    extra_topics: Sequence[str] = ()
    added_user_ids: Sequence[str] = ()
    removed_user_id: str | None = None
    sender_id: str | None = None
    client_msg_id: str | None = None


@dataclass(slots=True)
class EventBatch:
    """Events of one transaction. `reserve()` hands out positions before rows that need
    them (membership ranges) are written; `flush()` inserts and schedules the publish."""

    tx: Tx
    bus: Bus
    now: datetime
    _pending: list[_Pending] = field(default_factory=list)
    _first: int | None = None
    _reserved: int = 0

    async def reserve(self, count: int) -> int:
        """Reserve positions for the next `count` events added; returns the first."""
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
        extra_topics: Sequence[str] = (),
        added_user_ids: Sequence[str] = (),
        removed_user_id: str | None = None,
        sender_id: str | None = None,
        client_msg_id: str | None = None,
    ) -> None:
        self._pending.append(
            _Pending(
                payload,
                conversation_id,
                user_id,
                extra_topics,
                added_user_ids,
                removed_user_id,
                sender_id,
                client_msg_id,
            )
        )

    async def flush(self) -> list[StoredEvent]:
        if not self._pending:
            return []
        missing = len(self._pending) - self._reserved
        if missing > 0:
            first_new = await self.tx.reserve_positions(missing)
            if self._first is None:
                self._first = first_new
        assert self._first is not None
        stored = [
            StoredEvent(
                position=self._first + i,
                conversation_id=None
                if p.conversation_id is None
                else ConversationId(p.conversation_id),
                user_id=None if p.user_id is None else UserId(p.user_id),
                payload=p.payload,
            )
            for i, p in enumerate(self._pending)
        ]
        await self.tx.insert_events(stored, self.now)
        pending, self._pending = self._pending, []
        bus = self.bus

        async def publish() -> None:
            for event, p in zip(stored, pending, strict=True):
                envelope = Envelope(
                    kind=EnvelopeKind.EVENT,
                    frame=event_frame(event.position, event.payload),
                    position=event.position,
                    conversation_id=p.conversation_id,
                    added_user_ids=tuple(p.added_user_ids),
                    removed_user_id=p.removed_user_id,
                    sender_id=p.sender_id,
                    client_msg_id=p.client_msg_id,
                )
                topics = [
                    conversation_topic(p.conversation_id)
                    if p.conversation_id is not None
                    else user_topic(str(p.user_id)),
                    *p.extra_topics,
                ]
                await bus.publish_many(topics, envelope)

        self.tx.after_commit(publish)
        return stored
