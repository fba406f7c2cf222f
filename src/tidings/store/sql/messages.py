"""The messages aggregate: messages, their mentions and reactions, and the group
commit's reads and writes (a fixed handful of statements per batch of sends)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, select, text, update

from tidings.core.models import (
    ConversationId,
    FileInfo,
    MemberRole,
    Message,
    MessageId,
    MessageRef,
    Pin,
    SavedMessage,
    ScheduledMessage,
    ScheduledState,
    UserId,
)
from tidings.core.rules import everyone_mention
from tidings.store.ports import MessagePage, SendTargets
from tidings.store.sql import schema as t
from tidings.store.sql.engines.base import marks
from tidings.store.sql.files import attachments_of, file_of
from tidings.store.sql.statements import (
    ADVANCE_READ,
    CLIENT_IDS,
    INSERT_ATTACHMENT,
    INSERT_MENTION,
    INSERT_MESSAGE,
    SET_LAST_SEQ,
    TARGETS,
)
from tidings.store.sql.tx import TxBase, utc, utc_or_none


def _mention_rows(body: str, mentions: Sequence[str]) -> Sequence[str]:
    """The unread-mention rows of a message: its mentioned users, and everyone
    (schema.MENTION_EVERYONE) when it says @all, @channel or @here."""
    if everyone_mention(body) is None:
        return mentions
    return [*mentions, t.MENTION_EVERYONE]


def _message(
    row: Any,
    reactions: dict[str, list[UserId]] | None = None,
    attachments: list[FileInfo] | None = None,
) -> Message:
    return Message(
        id=MessageId(row.id),
        conversation_id=ConversationId(row.conversation_id),
        seq=int(row.seq),
        client_msg_id=row.client_msg_id,
        sender_id=UserId(row.sender_id),
        body=row.body,
        reply_to_seq=None if row.reply_to_seq is None else int(row.reply_to_seq),
        mentions=tuple(UserId(u) for u in orjson.loads(row.mentions)),
        created_at=utc(row.created_at),
        edited_at=utc_or_none(row.edited_at),
        deleted=bool(row.deleted),
        reactions=reactions or {},
        attachments=tuple(attachments or ()),
        thread_root_seq=None if row.thread_root_seq is None else int(row.thread_root_seq),
        also_to_conversation=bool(row.also_to_conversation),
        forwarded_from=None
        if row.forwarded_cid is None
        else MessageRef(ConversationId(row.forwarded_cid), int(row.forwarded_seq)),
    )


def _pin(row: Any) -> Pin:
    return Pin(
        ConversationId(row.conversation_id),
        int(row.seq),
        UserId(row.pinned_by),
        utc(row.pinned_at),
    )


def _saved(row: Any) -> SavedMessage:
    return SavedMessage(
        UserId(row.user_id),
        ConversationId(row.conversation_id),
        int(row.seq),
        utc(row.saved_at),
        int(row.position),
    )


def _scheduled(row: Any) -> ScheduledMessage:
    return ScheduledMessage(
        id=row.id,
        sender_id=UserId(row.sender_id),
        conversation_id=ConversationId(row.conversation_id),
        body=row.body,
        send_at=utc(row.send_at),
        state=ScheduledState(row.state),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        version=int(row.version),
        reply_to_seq=None if row.reply_to_seq is None else int(row.reply_to_seq),
        thread_root_seq=None if row.thread_root_seq is None else int(row.thread_root_seq),
        also_to_conversation=bool(row.also_to_conversation),
        failure=row.failure,
        sent_seq=None if row.sent_seq is None else int(row.sent_seq),
    )


def _scheduled_changes(scheduled: ScheduledMessage) -> dict[str, Any]:
    """The columns a scheduled message's changes write (its edits, claim, outcome)."""
    return {
        "body": scheduled.body,
        "send_at": scheduled.send_at,
        "state": scheduled.state.value,
        "failure": scheduled.failure,
        "sent_seq": scheduled.sent_seq,
        "version": scheduled.version,
        "updated_at": scheduled.updated_at,
    }


@functools.lru_cache(maxsize=512)
def _keys_text(table: str, count: int) -> Any:
    return text(
        " OR ".join(
            f"({table}.conversation_id = :k_c{i} AND {table}.seq = :k_s{i})" for i in range(count)
        )
    )


def keys_clause(table: str, keys: Sequence[tuple[str, int]]) -> tuple[Any, dict[str, object]]:
    """`(conversation_id, seq)` is one of `keys`, as an OR of equalities: both engines
    answer it from the primary key index, one probe per key (SQLite scans the table for
    a row-value IN list). The clause is made once per size (parsing its binds is slow)."""
    params: dict[str, object] = {}
    for i, (cid, seq) in enumerate(keys):
        params[f"k_c{i}"] = cid
        params[f"k_s{i}"] = seq
    return _keys_text(table, len(keys)), params


class MessageQueries(TxBase):
    # --- the group commit of sends -----------------------------------------------
    async def messages_by_client_ids(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Message]:
        if not keys:
            return {}
        unique = list(set(keys))
        rows = await self._batch().fetch(
            CLIENT_IDS.format(keys=", ".join(["(?, ?)"] * len(unique))),
            [part for key in unique for part in key],
        )
        wanted = {(sender, cmid) for sender, cmid in rows}
        if not wanted:  # a retry is rare: usually none
            return {}
        msg = t.messages
        found_rows = await self.conn.execute(
            select(msg).where(
                msg.c.sender_id.in_(list({sender for sender, _ in wanted})),
                msg.c.client_msg_id.in_(list({cmid for _, cmid in wanted})),
            )
        )
        found: dict[tuple[str, str], Message] = {}
        for row in found_rows:
            key = (row.sender_id, row.client_msg_id)
            if key in wanted:  # a retry: rare, so its reactions are read one by one
                found[key] = (await self._messages_from([row]))[0]
        return found

    # --- pins -------------------------------------------------------------------
    async def get_pin(self, conversation_id: str, seq: int) -> Pin | None:
        c = t.pins.c
        row = (
            await self.conn.execute(
                select(t.pins).where(c.conversation_id == conversation_id, c.seq == seq)
            )
        ).first()
        return None if row is None else _pin(row)

    async def add_pin(self, pin: Pin) -> None:
        await self.conn.execute(
            insert(t.pins).values(
                conversation_id=pin.conversation_id,
                seq=pin.seq,
                pinned_by=pin.pinned_by,
                pinned_at=pin.pinned_at,
            )
        )

    async def remove_pin(self, conversation_id: str, seq: int) -> bool:
        c = t.pins.c
        done = await self.conn.execute(
            delete(t.pins).where(c.conversation_id == conversation_id, c.seq == seq)
        )
        return bool(done.rowcount)

    async def count_pins(self, conversation_id: str) -> int:
        stmt = select(func.count()).where(t.pins.c.conversation_id == conversation_id)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def list_pins(self, conversation_id: str, min_seq: int, max_seq: int | None) -> list[Pin]:
        c = t.pins.c
        stmt = select(t.pins).where(c.conversation_id == conversation_id, c.seq >= min_seq)
        if max_seq is not None:
            stmt = stmt.where(c.seq <= max_seq)
        rows = await self.conn.execute(stmt.order_by(c.pinned_at.desc(), c.seq.desc()))
        return [_pin(r) for r in rows]

    # --- saved messages (per user) ---------------------------------------------------
    async def get_saved(self, user_id: str, conversation_id: str, seq: int) -> SavedMessage | None:
        c = t.saved_messages.c
        row = (
            await self.conn.execute(
                select(t.saved_messages).where(
                    c.user_id == user_id, c.conversation_id == conversation_id, c.seq == seq
                )
            )
        ).first()
        return None if row is None else _saved(row)

    async def add_saved(self, saved: SavedMessage) -> None:
        await self.conn.execute(
            insert(t.saved_messages).values(
                user_id=saved.user_id,
                conversation_id=saved.conversation_id,
                seq=saved.seq,
                saved_at=saved.saved_at,
                position=saved.position,
            )
        )

    async def remove_saved(self, user_id: str, conversation_id: str, seq: int) -> bool:
        c = t.saved_messages.c
        done = await self.conn.execute(
            delete(t.saved_messages).where(
                c.user_id == user_id, c.conversation_id == conversation_id, c.seq == seq
            )
        )
        return bool(done.rowcount)

    async def count_saved(self, user_id: str) -> int:
        stmt = select(func.count()).where(t.saved_messages.c.user_id == user_id)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def remove_saved_of_message(self, conversation_id: str, seq: int) -> list[UserId]:
        c = t.saved_messages.c
        where = and_(c.conversation_id == conversation_id, c.seq == seq)
        rows = await self.conn.execute(select(c.user_id).where(where).order_by(c.user_id))
        savers = [UserId(r.user_id) for r in rows]
        if savers:
            await self.conn.execute(delete(t.saved_messages).where(where))
        return savers

    async def list_saved(
        self, user_id: str, *, before_position: int | None, limit: int
    ) -> list[SavedMessage]:
        s, m, g = t.saved_messages.c, t.members.c, t.messages.c
        stmt = (
            select(t.saved_messages)
            .select_from(
                t.saved_messages.join(
                    t.members,
                    and_(m.conversation_id == s.conversation_id, m.user_id == s.user_id),
                ).join(t.messages, and_(g.conversation_id == s.conversation_id, g.seq == s.seq))
            )
            .where(
                s.user_id == user_id,
                s.seq >= m.first_seq,
                (m.left_seq.is_(None)) | (s.seq <= m.left_seq),
                g.deleted.is_(False),
            )
        )
        if before_position is not None:
            stmt = stmt.where(s.position < before_position)
        rows = await self.conn.execute(stmt.order_by(s.position.desc()).limit(limit))
        return [_saved(r) for r in rows]

    # --- scheduled messages (per sender) ----------------------------------------------
    async def add_scheduled(self, scheduled: ScheduledMessage) -> None:
        await self.conn.execute(
            insert(t.scheduled_messages).values(
                sender_id=scheduled.sender_id,
                id=scheduled.id,
                conversation_id=scheduled.conversation_id,
                created_at=scheduled.created_at,
                reply_to_seq=scheduled.reply_to_seq,
                thread_root_seq=scheduled.thread_root_seq,
                also_to_conversation=scheduled.also_to_conversation,
                **_scheduled_changes(scheduled),
            )
        )
        if scheduled.attachments:
            await self.conn.execute(
                insert(t.scheduled_attachments),
                [
                    {
                        "sender_id": scheduled.sender_id,
                        "scheduled_id": scheduled.id,
                        "position": i,
                        "file_id": file_id,
                    }
                    for i, file_id in enumerate(scheduled.attachments)
                ],
            )

    async def _with_attachments(
        self, sender_id: str, found: list[ScheduledMessage]
    ) -> list[ScheduledMessage]:
        if not found:
            return found
        c = t.scheduled_attachments.c
        rows = await self.conn.execute(
            select(c.scheduled_id, c.file_id)
            .where(c.sender_id == sender_id, c.scheduled_id.in_([s.id for s in found]))
            .order_by(c.scheduled_id, c.position)
        )
        files: dict[str, list[str]] = {}
        for r in rows:
            files.setdefault(r.scheduled_id, []).append(r.file_id)
        return [
            replace(s, attachments=tuple(files[s.id])) if s.id in files else s for s in found
        ]

    async def get_scheduled(self, sender_id: str, scheduled_id: str) -> ScheduledMessage | None:
        c = t.scheduled_messages.c
        row = (
            await self.conn.execute(
                select(t.scheduled_messages).where(c.sender_id == sender_id, c.id == scheduled_id)
            )
        ).first()
        if row is None:
            return None
        return (await self._with_attachments(sender_id, [_scheduled(row)]))[0]

    async def update_scheduled(
        self, scheduled: ScheduledMessage, *, state: ScheduledState, version: int
    ) -> bool:
        c = t.scheduled_messages.c
        done = await self.conn.execute(
            update(t.scheduled_messages)
            .where(
                c.sender_id == scheduled.sender_id,
                c.id == scheduled.id,
                c.state == state.value,
                c.version == version,
            )
            .values(**_scheduled_changes(scheduled))
        )
        return bool(done.rowcount)

    async def count_scheduled(self, sender_id: str, states: Sequence[ScheduledState]) -> int:
        c = t.scheduled_messages.c
        stmt = select(func.count()).where(
            c.sender_id == sender_id, c.state.in_([s.value for s in states])
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def list_scheduled(
        self,
        sender_id: str,
        states: Sequence[ScheduledState],
        *,
        conversation_id: str | None = None,
        limit: int,
    ) -> list[ScheduledMessage]:
        c = t.scheduled_messages.c
        stmt = select(t.scheduled_messages).where(
            c.sender_id == sender_id, c.state.in_([s.value for s in states])
        )
        if conversation_id is not None:
            stmt = stmt.where(c.conversation_id == conversation_id)
        rows = await self.conn.execute(stmt.order_by(c.send_at, c.id).limit(limit))
        return await self._with_attachments(sender_id, [_scheduled(r) for r in rows])

    async def send_targets(self, keys: Sequence[tuple[str, str]]) -> SendTargets:
        if not keys:
            return SendTargets({}, set(), set())
        users = list({uid for _, uid in keys})
        convs = list({cid for cid, _ in keys})
        rows = await self._batch().fetch(
            TARGETS.format(users=marks(len(users)), convs=marks(len(convs))), users + convs
        )
        last_seqs: dict[str, int] = {}
        active: set[tuple[str, str]] = set()
        archived: set[str] = set()
        announcement: set[str] = set()
        roles: dict[tuple[str, str], MemberRole] = {}
        first_seqs: dict[tuple[str, str], int] = {}
        for cid, last_seq, uid, archived_at, announces, role, first_seq in rows:
            last_seqs[cid] = int(last_seq)
            if uid is not None:
                active.add((cid, uid))
                roles[(cid, uid)] = MemberRole(role)
                first_seqs[(cid, uid)] = int(first_seq)
            if archived_at is not None:
                archived.add(cid)
            if announces:
                announcement.add(cid)
        return SendTargets(last_seqs, active, archived, announcement, roles, first_seqs)

    async def append_messages(
        self, messages: Sequence[Message], last_seqs: Mapping[str, int], now: datetime
    ) -> None:
        if not messages:
            return
        batch = self._batch()
        ts = batch.timestamp
        stamp = ts(now)
        await batch.run_many(SET_LAST_SEQ, [(seq, stamp, cid) for cid, seq in last_seqs.items()])
        dumps = orjson.dumps
        await batch.run_many(
            INSERT_MESSAGE,
            [
                (
                    m.conversation_id,
                    m.seq,
                    m.id,
                    m.client_msg_id,
                    m.sender_id,
                    m.body,
                    m.reply_to_seq,
                    dumps(list(m.mentions)).decode(),
                    stamp if m.created_at is now else ts(m.created_at),
                    m.thread_root_seq,
                    m.also_to_conversation,
                    None if m.forwarded_from is None else m.forwarded_from.conversation_id,
                    None if m.forwarded_from is None else m.forwarded_from.seq,
                )
                for m in messages
            ],
        )
        mentioned = [
            (m.conversation_id, u, m.seq)
            for m in messages
            for u in _mention_rows(m.body, m.mentions)
        ]
        await batch.run_many(INSERT_MENTION, mentioned)
        attached = [
            (m.conversation_id, m.seq, i, f.id)
            for m in messages
            for i, f in enumerate(m.attachments)
        ]
        await batch.run_many(INSERT_ATTACHMENT, attached)
        read: dict[tuple[str, str], int] = {}  # a sender has read its own messages
        for m in messages:
            read[(m.conversation_id, m.sender_id)] = m.seq
        await batch.run_many(
            ADVANCE_READ, [(seq, cid, uid, seq) for (cid, uid), seq in read.items()]
        )

    async def _messages_from(self, rows: Sequence[Any]) -> list[Message]:
        if not rows:
            return []
        cid = rows[0].conversation_id
        seqs = [r.seq for r in rows]
        reacts: dict[int, dict[str, list[UserId]]] = {}
        found = await self.conn.execute(
            select(t.reactions)
            .where(t.reactions.c.conversation_id == cid, t.reactions.c.seq.in_(seqs))
            .order_by(t.reactions.c.created_at)
        )
        for r in found:
            reacts.setdefault(int(r.seq), {}).setdefault(r.emoji, []).append(UserId(r.user_id))
        files = await attachments_of(self, cid, seqs)
        return [_message(r, reacts.get(int(r.seq)), files.get(int(r.seq))) for r in rows]

    async def get_message(self, conversation_id: str, seq: int) -> Message | None:
        row = (
            await self.conn.execute(
                select(t.messages).where(
                    t.messages.c.conversation_id == conversation_id, t.messages.c.seq == seq
                )
            )
        ).first()
        return None if row is None else (await self._messages_from([row]))[0]

    async def messages_by_keys(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Message]:
        # three statements per chunk of keys, whatever the conversations (search pages)
        unique = list(dict.fromkeys(keys))
        found: dict[tuple[str, int], Message] = {}
        a = t.message_attachments.c
        for start in range(0, len(unique), 200):
            chunk = [(cid, int(seq)) for cid, seq in unique[start : start + 200]]
            where, params = keys_clause("messages", chunk)
            rows = (await self.conn.execute(select(t.messages).where(where), params)).all()
            if not rows:
                continue
            reacts: dict[tuple[str, int], dict[str, list[UserId]]] = {}
            where, params = keys_clause("reactions", chunk)
            stmt = select(t.reactions).where(where).order_by(t.reactions.c.created_at)
            for row in await self.conn.execute(stmt, params):
                key = (row.conversation_id, int(row.seq))
                reacts.setdefault(key, {}).setdefault(row.emoji, []).append(UserId(row.user_id))
            files: dict[tuple[str, int], list[FileInfo]] = {}
            where, params = keys_clause("message_attachments", chunk)
            stmt = (
                select(t.files, a.conversation_id.label("at_cid"), a.seq.label("at_seq"))
                .select_from(t.message_attachments.join(t.files, t.files.c.id == a.file_id))
                .where(where)
                .order_by(a.conversation_id, a.seq, a.position)
            )
            for row in await self.conn.execute(stmt, params):
                files.setdefault((row.at_cid, int(row.at_seq)), []).append(file_of(row))
            for row in rows:
                key = (row.conversation_id, int(row.seq))
                found[key] = _message(row, reacts.get(key), files.get(key))
        return found

    async def list_messages(
        self,
        conversation_id: str,
        *,
        before_seq: int | None,
        after_seq: int | None,
        limit: int,
        max_seq: int | None,
        thread_root_seq: int | None = None,
        min_seq: int = 1,
    ) -> MessagePage:
        c = t.messages.c
        stmt = select(t.messages).where(c.conversation_id == conversation_id)
        if thread_root_seq is not None:  # one thread's replies (ix_messages_thread)
            stmt = stmt.where(c.thread_root_seq == thread_root_seq)
        if min_seq > 1:
            stmt = stmt.where(c.seq >= min_seq)
        if max_seq is not None:
            stmt = stmt.where(c.seq <= max_seq)
        if after_seq is not None:
            stmt = stmt.where(c.seq > after_seq)
        if before_seq is not None:
            stmt = stmt.where(c.seq < before_seq)
        forward = after_seq is not None and before_seq is None  # else the newest first
        stmt = stmt.order_by(c.seq if forward else c.seq.desc()).limit(limit + 1)
        rows = list((await self.conn.execute(stmt)).all())
        more = len(rows) > limit
        rows = rows[:limit] if forward else rows[:limit][::-1]
        return MessagePage(await self._messages_from(rows), more)

    async def edit_message(
        self,
        conversation_id: str,
        seq: int,
        body: str,
        mentions: Sequence[str],
        edited_at: datetime,
    ) -> None:
        """A new body and its mentions (the message's and the unread-mention rows)."""
        await self._rewrite(conversation_id, seq, mentions, body=body, edited_at=edited_at)

    async def recall_message(self, conversation_id: str, seq: int) -> None:
        """The message stays in place, its body and mentions gone."""
        await self._rewrite(conversation_id, seq, (), body="", deleted=True)

    async def _rewrite(
        self, conversation_id: str, seq: int, mentions: Sequence[str], **columns: object
    ) -> None:
        m = t.messages.c
        await self.conn.execute(
            update(t.messages)
            .where(m.conversation_id == conversation_id, m.seq == seq)
            .values(mentions=orjson.dumps(list(mentions)).decode(), **columns)
        )
        await self.conn.execute(
            delete(t.mentions).where(
                t.mentions.c.conversation_id == conversation_id, t.mentions.c.seq == seq
            )
        )
        rows = _mention_rows(str(columns.get("body", "")), mentions)
        if rows:
            await self.conn.execute(
                insert(t.mentions),
                [{"conversation_id": conversation_id, "user_id": u, "seq": seq} for u in rows],
            )

    async def set_reaction(
        self, conversation_id: str, seq: int, emoji: str, user_id: str, on: bool, now: datetime
    ) -> bool:
        """Add or remove one reaction. True when something changed."""
        where = and_(
            t.reactions.c.conversation_id == conversation_id,
            t.reactions.c.seq == seq,
            t.reactions.c.emoji == emoji,
            t.reactions.c.user_id == user_id,
        )
        exists = (await self.conn.execute(select(t.reactions.c.seq).where(where))).first()
        if on and exists is None:
            await self.conn.execute(
                insert(t.reactions).values(
                    conversation_id=conversation_id,
                    seq=seq,
                    emoji=emoji,
                    user_id=user_id,
                    created_at=now,
                )
            )
            return True
        if not on and exists is not None:
            await self.conn.execute(delete(t.reactions).where(where))
            return True
        return False
