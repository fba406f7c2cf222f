"""The threads aggregate: roots' summaries (`threads`) and users' explicit state in a
thread (`thread_members`). The replies themselves are messages (messages.py) with
`thread_root_seq` set, in the partial index ix_messages_thread (migration 0017)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.sql.expression import bindparam

from tidings.core.models import ConversationId, ThreadState, ThreadSummary, UserId
from tidings.store.ports import ThreadRoot
from tidings.store.sql import schema as t
from tidings.store.sql.messages import keys_clause
from tidings.store.sql.tx import TxBase, utc_or_none


def _summary(row: Any) -> ThreadSummary:
    return ThreadSummary(
        conversation_id=ConversationId(row.conversation_id),
        root_seq=int(row.root_seq),
        reply_count=int(row.reply_count),
        last_reply_seq=None if row.last_reply_seq is None else int(row.last_reply_seq),
        last_reply_at=utc_or_none(row.last_reply_at),
        participants=tuple(UserId(u) for u in orjson.loads(row.participants)),
    )


def _values(summary: ThreadSummary) -> dict[str, object]:
    return {
        "reply_count": summary.reply_count,
        "last_reply_seq": summary.last_reply_seq,
        "last_reply_at": summary.last_reply_at,
        "participants": orjson.dumps(list(summary.participants)).decode(),
    }


def _binds(summary: ThreadSummary) -> dict[str, object]:
    """`_values` under the names of the update's binds (a bind may not be named as a
    column of the table it sets)."""
    v = _values(summary)
    return {
        "b_count": v["reply_count"],
        "b_seq": v["last_reply_seq"],
        "b_at": v["last_reply_at"],
        "b_who": v["participants"],
    }


class ThreadQueries(TxBase):
    async def thread_roots(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], ThreadRoot]:
        unique = list(dict.fromkeys(keys))
        found: dict[tuple[str, int], ThreadRoot] = {}
        m = t.messages.c
        for start in range(0, len(unique), 200):
            where, params = keys_clause("messages", unique[start : start + 200])
            stmt = select(
                m.conversation_id, m.seq, m.sender_id, m.thread_root_seq, m.deleted
            ).where(where)
            for row in await self.conn.execute(stmt, params):
                root = None if row.thread_root_seq is None else int(row.thread_root_seq)
                found[(row.conversation_id, int(row.seq))] = ThreadRoot(
                    UserId(row.sender_id), root, bool(row.deleted)
                )
        return found

    async def thread_summaries(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], ThreadSummary]:
        unique = list(dict.fromkeys(keys))
        found: dict[tuple[str, int], ThreadSummary] = {}
        for start in range(0, len(unique), 200):
            chunk = unique[start : start + 200]
            where = " OR ".join(
                f"(threads.conversation_id = :k_c{i} AND threads.root_seq = :k_s{i})"
                for i in range(len(chunk))
            )
            params: dict[str, object] = {}
            for i, (cid, seq) in enumerate(chunk):
                params[f"k_c{i}"] = cid
                params[f"k_s{i}"] = seq
            rows = await self.conn.execute(select(t.threads).where(text(where)), params)
            for row in rows:
                found[(row.conversation_id, int(row.root_seq))] = _summary(row)
        return found

    async def put_thread_summaries(
        self, summaries: Sequence[ThreadSummary], existing: set[tuple[str, int]]
    ) -> None:
        new = [s for s in summaries if (s.conversation_id, s.root_seq) not in existing]
        old = [s for s in summaries if (s.conversation_id, s.root_seq) in existing]
        if new:
            await self.conn.execute(
                insert(t.threads),
                [
                    {"conversation_id": s.conversation_id, "root_seq": s.root_seq, **_values(s)}
                    for s in new
                ],
            )
        if old:
            c = t.threads.c
            await self.conn.execute(
                update(t.threads)
                .where(c.conversation_id == bindparam("k_cid"), c.root_seq == bindparam("k_root"))
                .values(
                    reply_count=bindparam("b_count"),
                    last_reply_seq=bindparam("b_seq"),
                    last_reply_at=bindparam("b_at"),
                    participants=bindparam("b_who"),
                ),
                [{"k_cid": s.conversation_id, "k_root": s.root_seq, **_binds(s)} for s in old],
            )

    async def count_thread(
        self, conversation_id: str, root_seq: int, cap: int, max_seq: int | None
    ) -> ThreadSummary:
        m = t.messages.c
        where = [
            m.conversation_id == conversation_id,
            m.thread_root_seq == root_seq,
            m.deleted.is_(False),
        ]
        if max_seq is not None:
            where.append(m.seq <= max_seq)
        count, last = (
            await self.conn.execute(select(func.count(), func.max(m.seq)).where(*where))
        ).one()
        last_at = None
        if last is not None:
            last_at = (
                await self.conn.execute(
                    select(m.created_at).where(m.conversation_id == conversation_id, m.seq == last)
                )
            ).scalar_one()
        newest = func.max(m.seq)
        rows = await self.conn.execute(
            select(m.sender_id, newest)
            .where(*where)
            .group_by(m.sender_id)
            .order_by(newest.desc())
            .limit(max(cap, 0))
        )
        return ThreadSummary(
            conversation_id=ConversationId(conversation_id),
            root_seq=root_seq,
            reply_count=int(count),
            last_reply_seq=None if last is None else int(last),
            last_reply_at=utc_or_none(last_at),
            participants=tuple(UserId(r[0]) for r in rows) if cap > 0 else (),
        )

    async def list_threads(
        self,
        conversation_id: str,
        *,
        before: int | None,
        limit: int,
        max_seq: int | None,
        cap: int,
        min_seq: int = 1,
    ) -> list[ThreadSummary]:
        if max_seq is None:
            c = t.threads.c
            stmt = select(t.threads).where(
                c.conversation_id == conversation_id, c.reply_count > 0, c.root_seq >= min_seq
            )
            if before is not None:
                stmt = stmt.where(c.last_reply_seq < before)
            stmt = stmt.order_by(c.last_reply_seq.desc()).limit(limit)
            return [_summary(r) for r in await self.conn.execute(stmt)]
        # a member who left: what the replies up to their leaving make (rare: counted)
        m = t.messages.c
        newest = func.max(m.seq)
        stmt2 = (
            select(m.thread_root_seq, newest)
            .where(
                m.conversation_id == conversation_id,
                m.thread_root_seq.is_not(None),
                m.thread_root_seq <= max_seq,
                m.thread_root_seq >= min_seq,
                m.seq <= max_seq,
                m.deleted.is_(False),
            )
            .group_by(m.thread_root_seq)
            .order_by(newest.desc())
            .limit(limit)
        )
        if before is not None:
            stmt2 = stmt2.having(newest < before)
        found = []
        for root, _last in (await self.conn.execute(stmt2)).all():
            found.append(await self.count_thread(conversation_id, int(root), cap, max_seq))
        return found

    async def thread_states(
        self,
        conversation_id: str,
        user_id: str,
        roots: Sequence[tuple[int, str]],
        max_seq: int | None,
    ) -> dict[int, ThreadState]:
        if not roots:
            return {}
        seqs = [seq for seq, _ in roots]
        tm = t.thread_members.c
        explicit: dict[int, tuple[bool | None, int]] = {}
        for row in await self.conn.execute(
            select(tm.root_seq, tm.following, tm.read_seq).where(
                tm.conversation_id == conversation_id,
                tm.user_id == user_id,
                tm.root_seq.in_(seqs),
            )
        ):
            following = None if row.following is None else bool(row.following)
            explicit[int(row.root_seq)] = (following, int(row.read_seq))
        m = t.messages.c
        in_threads = and_(m.conversation_id == conversation_id, m.thread_root_seq.in_(seqs))
        if max_seq is not None:
            in_threads = and_(in_threads, m.seq <= max_seq)
        mine: dict[int, int] = {}  # root -> the user's last reply in it
        for root, last in await self.conn.execute(
            select(m.thread_root_seq, func.max(m.seq))
            .where(in_threads, m.sender_id == user_id)
            .group_by(m.thread_root_seq)
        ):
            mine[int(root)] = int(last)
        read: dict[int, int] = {
            seq: max(explicit.get(seq, (None, 0))[1], mine.get(seq, 0)) for seq in seqs
        }
        # others' visible replies after what the user read, per thread: one grouped count
        unread: dict[int, int] = {}
        if read:
            after = " OR ".join(
                f"(messages.thread_root_seq = :r{i} AND messages.seq > :s{i})"
                for i in range(len(read))
            )
            params: dict[str, object] = {}
            for i, (root, seq) in enumerate(read.items()):
                params[f"r{i}"] = root
                params[f"s{i}"] = seq
            stmt = (
                select(m.thread_root_seq, func.count())
                .where(in_threads, m.sender_id != user_id, m.deleted.is_(False), text(f"({after})"))
                .group_by(m.thread_root_seq)
            )
            for root, count in await self.conn.execute(stmt, params):
                unread[int(root)] = int(count)
        states: dict[int, ThreadState] = {}
        for seq, root_sender in roots:
            chosen = explicit.get(seq, (None, 0))[0]
            following = chosen if chosen is not None else (root_sender == user_id or seq in mine)
            states[seq] = ThreadState(
                following=following,
                read_seq=read[seq],
                unread=unread.get(seq, 0) if following else 0,
            )
        return states

    async def set_thread_member(
        self,
        conversation_id: str,
        root_seq: int,
        user_id: str,
        *,
        following: bool | None,
        read_seq: int | None,
    ) -> bool:
        tm = t.thread_members.c
        where = (
            tm.conversation_id == conversation_id,
            tm.root_seq == root_seq,
            tm.user_id == user_id,
        )
        row = (await self.conn.execute(select(tm.following, tm.read_seq).where(*where))).first()
        if row is None:
            await self.conn.execute(
                insert(t.thread_members).values(
                    conversation_id=conversation_id,
                    root_seq=root_seq,
                    user_id=user_id,
                    following=following,
                    read_seq=max(read_seq or 0, 0),
                )
            )
            return True
        values: dict[str, object] = {}
        if following is not None and row.following != following:
            values["following"] = following
        if read_seq is not None and read_seq > int(row.read_seq):
            values["read_seq"] = read_seq
        if not values:
            return False
        await self.conn.execute(update(t.thread_members).where(*where).values(**values))
        return True
