"""The events aggregate: the stream of positions every client resumes from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, insert, or_, select, update

from tidings.core.models import ConversationId, StoredEvent, UserId
from tidings.store.sql import schema as t
from tidings.store.sql.statements import INSERT_EVENT, RESERVE
from tidings.store.sql.tx import TxBase


def _event(row: Any) -> StoredEvent:
    return StoredEvent(
        position=int(row.position),
        conversation_id=(
            None if row.conversation_id is None else ConversationId(row.conversation_id)
        ),
        user_id=None if row.user_id is None else UserId(row.user_id),
        payload=orjson.loads(row.payload),
    )


class EventQueries(TxBase):
    # --- events -----------------------------------------------------------------
    async def reserve_positions(self, count: int) -> int:
        """Reserve `count` stream positions; returns the first. Taken in the committing
        transaction, so positions commit in order on every engine."""
        rows = await self._batch().fetch(RESERVE, (count,))
        if rows:
            last = int(rows[0][0])
        else:  # the counter's first use
            await self.conn.execute(insert(t.counters).values(name="events", value=count))
            last = count
        return last - count + 1

    async def insert_events(self, events: Sequence[StoredEvent], now: datetime) -> None:
        batch = self._batch()
        stamp = batch.timestamp(now)
        dumps = orjson.dumps
        await batch.run_many(
            INSERT_EVENT,
            [
                (
                    e.position,
                    e.conversation_id,
                    e.user_id,
                    str(e.payload["kind"]),
                    dumps(e.payload).decode(),
                    stamp,
                )
                for e in events
            ],
        )

    async def head_position(self) -> int:
        stmt = select(t.counters.c.value).where(t.counters.c.name == "events")
        return int((await self.conn.execute(stmt)).scalar() or 0)

    async def move_head(self, to: int) -> int:
        """Move the stream counter forward to `to` (never back): the next event takes
        `to + 1`. For a restore (services/backup.py). Returns the head now."""
        head = await self.head_position()
        if to <= head:
            return head
        c = t.counters.c
        done = await self.conn.execute(
            update(t.counters).where(c.name == "events").values(value=to)
        )
        if done.rowcount == 0:
            await self.conn.execute(insert(t.counters).values(name="events", value=to))
        return to

    async def first_position_after(self, after: int) -> int | None:
        """The position of the first event after `after` (None: none): a reader of the
        log steps over the gap a restore leaves in the positions."""
        stmt = select(func.min(t.events.c.position)).where(t.events.c.position > after)
        found = (await self.conn.execute(stmt)).scalar()
        return None if found is None else int(found)

    async def events_between(self, after: int, until: int) -> list[StoredEvent]:
        """Every committed event with after < position <= until, in order."""
        rows = await self.conn.execute(
            select(t.events)
            .where(t.events.c.position > after, t.events.c.position <= until)
            .order_by(t.events.c.position)
        )
        return [_event(r) for r in rows]

    async def events_for_user(self, user_id: str, since: int, limit: int) -> list[StoredEvent]:
        """Events after `since` that the user may see: those of each conversation within
        the user's membership range, and the user's own events."""
        e, m = t.events.c, t.members.c
        conv_events = (
            select(t.events)
            .join(t.members, m.conversation_id == e.conversation_id)
            .where(
                m.user_id == user_id,
                e.position > since,
                e.position >= m.joined_pos,
                or_(m.left_pos.is_(None), e.position <= m.left_pos),
            )
        )
        own = select(t.events).where(e.user_id == user_id, e.position > since)
        union = conv_events.union_all(own).subquery()
        rows = await self.conn.execute(select(union).order_by(union.c.position).limit(limit))
        seen: set[int] = set()
        out = []
        for r in rows:
            if r.position in seen:
                continue
            seen.add(r.position)
            out.append(_event(r))
        return out

    async def first_seqs(self, user_id: str) -> dict[ConversationId, int]:
        """The first seq the user may read in each conversation they are or were a
        member of, where it is not 1 (Member.first_seq)."""
        m = t.members.c
        rows = await self.conn.execute(
            select(m.conversation_id, m.first_seq).where(m.user_id == user_id, m.first_seq > 1)
        )
        return {ConversationId(r[0]): int(r[1]) for r in rows}
