"""The conversations aggregate: conversations, their members, read positions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, distinct, false, func, insert, literal, or_, select, update

from tidings.core.models import (
    Conversation,
    ConversationId,
    ConversationKind,
    Member,
    MemberNotify,
    MemberRole,
    MemberView,
    NotifyLevel,
    UserId,
)
from tidings.store.ports import Membership, StreamSnapshot
from tidings.store.sql import schema as t
from tidings.store.sql.engines import BatchRunner
from tidings.store.sql.statements import (
    ACTIVE_CONVERSATIONS,
    ADVANCE_READ,
    CONTACTS,
    SNAPSHOT,
)
from tidings.store.sql.tx import TxBase, utc, utc_or_none


async def read_snapshot(run: BatchRunner, user_id: str) -> StreamSnapshot:
    """The stream head and the user's conversations as of that head, read by one
    statement (so that on PostgreSQL too both come from one snapshot)."""
    rows = await run.fetch(SNAPSHOT, (user_id,))
    if not rows:  # no counter row: an empty stream
        found = await run.fetch(ACTIVE_CONVERSATIONS, (user_id,))
        return StreamSnapshot(
            0,
            [ConversationId(r[0]) for r in found],
            {ConversationId(r[0]): int(r[1]) for r in found if int(r[1]) > 1},
        )
    head = int(rows[0][0])
    return StreamSnapshot(
        head,
        [ConversationId(r[1]) for r in rows if r[1] is not None],
        {ConversationId(r[1]): int(r[2]) for r in rows if r[1] is not None and int(r[2]) > 1},
    )


async def read_contacts(run: BatchRunner, user_id: str) -> list[UserId]:
    """People who share a direct or group conversation with the user."""
    rows = await run.fetch(CONTACTS, (user_id, ConversationKind.CHANNEL.value, user_id))
    return [UserId(r[0]) for r in rows]


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=ConversationId(row.id),
        kind=ConversationKind(row.kind),
        name=row.name,
        topic=row.topic,
        created_by=UserId(row.created_by),
        created_at=utc(row.created_at),
        last_seq=int(row.last_seq),
        last_activity_at=utc(row.last_activity_at),
        member_count=int(row.member_count),
        archived_at=utc_or_none(row.archived_at),
        private=bool(row.private),
        announcement=bool(row.announcement),
        shared_history=bool(row.shared_history),
    )


def _member(row: Any) -> Member:
    return Member(
        conversation_id=ConversationId(row.conversation_id),
        user_id=UserId(row.user_id),
        role=MemberRole(row.role),
        read_seq=int(row.read_seq),
        joined_at=utc(row.joined_at),
        joined_pos=int(row.joined_pos),
        left_pos=None if row.left_pos is None else int(row.left_pos),
        left_seq=None if row.left_seq is None else int(row.left_seq),
        removed_by=None if row.removed_by is None else UserId(row.removed_by),
        first_seq=int(row.first_seq),
        notify=MemberNotify(
            level=None if row.notify_level is None else NotifyLevel(row.notify_level),
            muted=bool(row.muted),
            muted_until=utc_or_none(row.muted_until),
        ),
    )


def _in_timeline() -> Any:
    """A message the conversation's main timeline shows: no thread reply, or one also
    sent to the conversation."""
    msg = t.messages.c
    return or_(msg.thread_root_seq.is_(None), msg.also_to_conversation.is_(True))


class ConversationQueries(TxBase):
    async def insert_conversation(self, conv: Conversation, direct_key: str | None) -> None:
        await self.conn.execute(
            insert(t.conversations).values(
                id=conv.id,
                kind=conv.kind.value,
                name=conv.name,
                topic=conv.topic,
                direct_key=direct_key,
                created_by=conv.created_by,
                created_at=conv.created_at,
                last_seq=conv.last_seq,
                last_activity_at=conv.last_activity_at,
                member_count=conv.member_count,
                private=conv.private,
                announcement=conv.announcement,
                shared_history=conv.shared_history,
            )
        )

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = (
            await self.conn.execute(
                select(t.conversations).where(t.conversations.c.id == conversation_id)
            )
        ).first()
        return None if row is None else _conversation(row)

    async def find_direct(self, direct_key: str) -> Conversation | None:
        row = (
            await self.conn.execute(
                select(t.conversations).where(t.conversations.c.direct_key == direct_key)
            )
        ).first()
        return None if row is None else _conversation(row)

    async def set_conversation_name(self, conversation_id: str, name: str) -> None:
        await self._update_conversation(conversation_id, name=name)

    async def set_conversation_topic(self, conversation_id: str, topic: str) -> None:
        await self._update_conversation(conversation_id, topic=topic)

    async def _update_conversation(self, conversation_id: str, **columns: object) -> None:
        await self.conn.execute(
            update(t.conversations).where(t.conversations.c.id == conversation_id).values(**columns)
        )

    async def set_conversation_settings(
        self,
        conversation_id: str,
        *,
        private: bool | None = None,
        announcement: bool | None = None,
        shared_history: bool | None = None,
    ) -> None:
        given = {"private": private, "announcement": announcement, "shared_history": shared_history}
        columns = {k: v for k, v in given.items() if v is not None}
        if columns:
            await self._update_conversation(conversation_id, **columns)

    async def list_channels(
        self, query: str, limit: int, member_id: str | None = None
    ) -> list[Conversation]:
        c, m = t.conversations.c, t.members.c
        mine = (
            select(m.conversation_id)
            .where(m.user_id == (member_id or ""), m.left_pos.is_(None))
            .scalar_subquery()
        )
        stmt = select(t.conversations).where(
            c.kind == ConversationKind.CHANNEL,
            c.archived_at.is_(None),
            or_(c.private == false(), c.id.in_(mine)),
        )
        if query:
            stmt = stmt.where(func.lower(t.conversations.c.name).contains(query.lower()))
        rows = await self.conn.execute(stmt.order_by(t.conversations.c.name).limit(limit))
        return [_conversation(r) for r in rows]

    async def set_conversation_archived(
        self, conversation_id: str, archived_at: datetime | None
    ) -> None:
        await self._update_conversation(conversation_id, archived_at=archived_at)

    async def all_conversations(
        self,
        *,
        query: str,
        kind: str | None,
        archived: bool | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Conversation], int]:
        c = t.conversations.c
        where: list[Any] = []
        if query:
            where.append(func.lower(c.name).contains(query.lower(), autoescape=True))
        if kind is not None:
            where.append(c.kind == kind)
        if archived is True:
            where.append(c.archived_at.is_not(None))
        elif archived is False:
            where.append(c.archived_at.is_(None))
        total = int(
            (
                await self.conn.execute(
                    select(func.count()).select_from(t.conversations).where(*where)
                )
            ).scalar_one()
        )
        rows = await self.conn.execute(
            select(t.conversations)
            .where(*where)
            .order_by(c.last_activity_at.desc(), c.id)
            .limit(limit)
            .offset(offset)
        )
        return [_conversation(r) for r in rows], total

    # --- members ----------------------------------------------------------------
    async def upsert_member(self, member: Member) -> bool:
        """Add (or re-add) a member. Returns False when already an active member."""
        existing = await self.get_member(member.conversation_id, member.user_id)
        values = {
            "role": member.role.value,
            "read_seq": member.read_seq,
            "joined_at": member.joined_at,
            "joined_pos": member.joined_pos,
            "left_pos": None,
            "left_seq": None,
            "removed_by": None,
            "first_seq": member.first_seq,
            # one who joins again starts from the defaults (as a client's list does)
            "notify_level": None,
            "muted": False,
            "muted_until": None,
        }
        if existing is None:
            await self.conn.execute(
                insert(t.members).values(
                    conversation_id=member.conversation_id, user_id=member.user_id, **values
                )
            )
        elif existing.active:
            return False
        else:
            await self.conn.execute(
                update(t.members)
                .where(
                    t.members.c.conversation_id == member.conversation_id,
                    t.members.c.user_id == member.user_id,
                )
                .values(**values)
            )
        await self.conn.execute(
            update(t.conversations)
            .where(t.conversations.c.id == member.conversation_id)
            .values(member_count=t.conversations.c.member_count + 1)
        )
        return True

    async def set_member_role(self, conversation_id: str, user_id: str, role: str) -> None:
        await self.conn.execute(
            update(t.members)
            .where(t.members.c.conversation_id == conversation_id, t.members.c.user_id == user_id)
            .values(role=role)
        )

    async def set_member_notify(
        self, conversation_id: str, user_id: str, notify: MemberNotify
    ) -> None:
        await self.conn.execute(
            update(t.members)
            .where(t.members.c.conversation_id == conversation_id, t.members.c.user_id == user_id)
            .values(
                notify_level=None if notify.level is None else notify.level.value,
                muted=notify.muted,
                muted_until=notify.muted_until,
            )
        )

    async def count_owners(self, conversation_id: str) -> int:
        m = t.members.c
        stmt = select(func.count()).where(
            m.conversation_id == conversation_id,
            m.left_pos.is_(None),
            m.role == MemberRole.OWNER.value,
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def get_member(self, conversation_id: str, user_id: str) -> Member | None:
        row = (
            await self.conn.execute(
                select(t.members).where(
                    t.members.c.conversation_id == conversation_id,
                    t.members.c.user_id == user_id,
                )
            )
        ).first()
        return None if row is None else _member(row)

    async def list_members(self, conversation_id: str) -> list[Member]:
        rows = await self.conn.execute(
            select(t.members)
            .where(t.members.c.conversation_id == conversation_id, t.members.c.left_pos.is_(None))
            .order_by(t.members.c.joined_pos, t.members.c.user_id)
        )
        return [_member(r) for r in rows]

    async def mark_member_left(
        self,
        conversation_id: str,
        user_id: str,
        position: int,
        seq: int,
        removed_by: str | None = None,
    ) -> None:
        await self.conn.execute(
            update(t.members)
            .where(t.members.c.conversation_id == conversation_id, t.members.c.user_id == user_id)
            .values(left_pos=position, left_seq=seq, removed_by=removed_by)
        )
        await self.conn.execute(
            update(t.conversations)
            .where(t.conversations.c.id == conversation_id)
            .values(member_count=t.conversations.c.member_count - 1)
        )

    async def advance_read(self, conversation_id: str, user_id: str, seq: int) -> bool:
        """Move a read position forward only. True when it moved."""
        changed = await self._batch().run(ADVANCE_READ, (seq, conversation_id, user_id, seq))
        return bool(changed)

    async def move_read_back(self, conversation_id: str, user_id: str, seq: int) -> bool:
        """Move a read position back to `seq` only (mark unread). True when it moved."""
        m = t.members.c
        done = await self.conn.execute(
            update(t.members)
            .where(m.conversation_id == conversation_id, m.user_id == user_id, m.read_seq > seq)
            .values(read_seq=seq)
        )
        return bool(done.rowcount)

    async def member_views(self, user_id: str, include_archived: bool = False) -> list[MemberView]:
        mem, conv = t.members.c, t.conversations.c
        where = [mem.user_id == user_id, mem.left_pos.is_(None)]
        if not include_archived:
            where.append(conv.archived_at.is_(None))
        # The counts of each conversation, as correlated subqueries (one index range per
        # conversation with something unread, whatever the planner thinks of the
        # tables' sizes; nothing for a conversation read to its end):
        # - the thread-only replies after the read position, through the replies'
        #   partial index (ix_messages_thread), never the conversation's other messages;
        # - the main timeline's unread mentions of the user, through the mentions'
        #   primary key from the read position on and the message's: by name, and the
        #   messages naming the user or mentioning everyone (not the user's own), once.
        msg = t.messages.alias("m")
        mn = t.mentions.alias("mn")
        unread = conv.last_seq > mem.read_seq
        hidden = (
            select(func.count())
            .select_from(msg)
            .where(
                msg.c.conversation_id == mem.conversation_id,
                msg.c.thread_root_seq.is_not(None),
                msg.c.seq > mem.read_seq,
                msg.c.also_to_conversation.is_(False),
            )
            .correlate(t.members)
            .scalar_subquery()
        )
        # the mentions drive (their rows are few); the message is looked up by its key
        shown = (
            select(literal(1))
            .select_from(msg)
            .where(
                msg.c.conversation_id == mn.c.conversation_id,
                msg.c.seq == mn.c.seq,
                or_(msg.c.thread_root_seq.is_(None), msg.c.also_to_conversation.is_(True)),
                or_(mn.c.user_id == user_id, msg.c.sender_id != user_id),
            )
            .correlate(mn)
            .exists()
        )

        def mentions_of(*who: str, distinct_seq: bool = False) -> Any:
            return (
                select(func.count(distinct(mn.c.seq)) if distinct_seq else func.count())
                .select_from(mn)
                .where(
                    mn.c.conversation_id == mem.conversation_id,
                    mn.c.user_id.in_(who),
                    mn.c.seq > mem.read_seq,
                    shown,
                )
                .correlate(t.members)
                .scalar_subquery()
            )

        zero = literal(0)
        rows = (
            await self.conn.execute(
                select(
                    t.members,
                    t.conversations,
                    case((unread, hidden), else_=zero).label("thread_only"),
                    case((unread, mentions_of(user_id)), else_=zero).label("named"),
                    case(
                        (unread, mentions_of(user_id, t.MENTION_EVERYONE, distinct_seq=True)),
                        else_=zero,
                    ).label("mentioned"),
                )
                .join(t.conversations, conv.id == mem.conversation_id)
                .where(*where)
                .order_by(conv.last_activity_at.desc())
            )
        ).all()
        return [
            MemberView(
                _conversation(row),
                _member(row),
                int(row.named),
                thread_only=int(row.thread_only),
                # the messages mentioning everyone that do not name the user too
                everyone_mentions=int(row.mentioned) - int(row.named),
            )
            for row in rows
        ]

    async def thread_only_after(self, conversation_id: str, seq: int) -> int:
        """How many thread replies not also sent to the conversation come after `seq`
        (what its unread leaves out), read from the replies' partial index."""
        msg = t.messages.c
        stmt = select(func.count()).where(
            msg.conversation_id == conversation_id,
            msg.thread_root_seq.is_not(None),
            msg.seq > seq,
            msg.also_to_conversation.is_(False),
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def memberships(self, user_id: str) -> list[Membership]:
        rows = await self.conn.execute(
            select(t.members, t.conversations)
            .join(t.conversations, t.conversations.c.id == t.members.c.conversation_id)
            .where(t.members.c.user_id == user_id)
        )
        return [Membership(_conversation(row), _member(row)) for row in rows]

    async def active_conversation_ids(self, user_id: str) -> list[ConversationId]:
        rows = await self.conn.execute(
            select(t.members.c.conversation_id).where(
                t.members.c.user_id == user_id, t.members.c.left_pos.is_(None)
            )
        )
        return [ConversationId(r[0]) for r in rows]

    async def stream_snapshot(self, user_id: str) -> StreamSnapshot:
        """The stream head and the user's conversations as of that head, read by one
        statement (so that on PostgreSQL too both come from one snapshot)."""
        return await read_snapshot(self._batch(), user_id)

    async def contacts_of(self, user_id: str) -> list[UserId]:
        """People who share a direct or group conversation with the user."""
        return await read_contacts(self._batch(), user_id)
