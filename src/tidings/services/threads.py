"""Threads: the thread list of a conversation, one thread, following and reading one.

Replies are sent and recalled by services/messages.py (a reply is an ordinary message
with `thread_root_seq`; its root's summary is written in the send's transaction). Here
the reads and the caller's own state: who follows (the root's author and every replier
by default, unless they chose otherwise) and how far they have read (replies of others
after it are the thread's unread, apart from the conversation's)."""

from __future__ import annotations

from datetime import datetime

from tidings.core.errors import InvalidRequest, NotFound
from tidings.core.events import ThreadRead
from tidings.core.models import (
    ConversationId,
    Member,
    Message,
    ThreadState,
    ThreadSummary,
    ThreadView,
    User,
    UserId,
)
from tidings.core.rules import visible_seq_limit
from tidings.services.access import access_conversation
from tidings.services.context import Deps
from tidings.services.events import EventBatch
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import Tx


class ThreadService:
    def __init__(self, deps: Deps, limiter: RateLimiter) -> None:
        self.d = deps
        self.limiter = limiter

    async def list(
        self, actor: User, conversation_id: str, *, before: int | None = None, limit: int = 50
    ) -> tuple[list[ThreadView], int | None]:
        """The conversation's threads with at least one visible reply, newest activity
        first; returns them and the cursor of the next page (None: no more). The cursor
        is the last one's `last_reply_seq` (`before`)."""
        limit = max(1, min(limit, self.d.limits.history_page_max))
        async with self.d.store.read() as tx:
            _conv, member = await access_conversation(tx, actor, conversation_id, allow_left=True)
            max_seq = visible_seq_limit(member)
            summaries = await tx.list_threads(
                conversation_id,
                before=before,
                limit=limit + 1,
                max_seq=max_seq,
                min_seq=member.first_seq,
                cap=self.d.limits.thread_participants_max,
            )
            more = len(summaries) > limit
            summaries = summaries[:limit]
            views = await _views(tx, actor, member, summaries)
        cursor = views[-1].summary.last_reply_seq if more and views else None
        return views, cursor

    async def get(self, actor: User, conversation_id: str, root_seq: int) -> ThreadView:
        """One root's thread (a root without replies yet: an empty summary)."""
        async with self.d.store.read() as tx:
            _conv, member = await access_conversation(tx, actor, conversation_id, allow_left=True)
            summary = await _summary(tx, member, root_seq, self.d.limits.thread_participants_max)
            return (await _views(tx, actor, member, [summary]))[0]

    async def follow(
        self, actor: User, conversation_id: str, root_seq: int, on: bool
    ) -> ThreadState:
        """Follow (`on`) or unfollow a thread: an explicit choice, kept until changed.
        Counted as a membership change (`rate_membership_per_user`). Reading is not
        limited: it only moves forward, at most to the last reply, like a
        conversation's."""
        await self.limiter.check(Action.MEMBERSHIP, actor.id, None)
        return await self._change(actor, conversation_id, root_seq, following=on, read_seq=None)

    async def mark_read(
        self, actor: User, conversation_id: str, root_seq: int, seq: int
    ) -> ThreadState:
        """Move the caller's read position in the thread forward to `seq` (never back;
        at most its last reply)."""
        if seq < 0:
            raise InvalidRequest("seq must not be negative", field="seq")
        return await self._change(actor, conversation_id, root_seq, following=None, read_seq=seq)

    async def _change(
        self,
        actor: User,
        conversation_id: str,
        root_seq: int,
        *,
        following: bool | None,
        read_seq: int | None,
    ) -> ThreadState:
        now = self.d.clock.now()
        cap = self.d.limits.thread_participants_max
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
            summary = await _summary(tx, member, root_seq, cap)
            if read_seq is not None:
                read_seq = min(read_seq, summary.last_reply_seq or 0)
            changed = await tx.set_thread_member(
                conv.id, root_seq, actor.id, following=following, read_seq=read_seq
            )
            view = (await _views(tx, actor, member, [summary]))[0]
            if changed:
                batch = EventBatch(tx, self.d.bus, now)
                batch.add(_read_event(conv.id, root_seq, actor.id, view.state, now))
                await batch.flush()
        return view.state


def _read_event(
    cid: ConversationId, root_seq: int, user_id: UserId, state: ThreadState, now: datetime
) -> ThreadRead:
    return ThreadRead(cid, root_seq, user_id, state.following, state.read_seq, now)


async def _summary(tx: Tx, member: Member, root_seq: int, cap: int) -> ThreadSummary:
    """The summary of a root the member may see (else not_found: a missing message, a
    reply, one sent after they left or before their first_seq)."""
    cid = member.conversation_id
    max_seq = visible_seq_limit(member)
    if (max_seq is not None and root_seq > max_seq) or root_seq < member.first_seq:
        raise NotFound("thread root not found", thread_root_seq=root_seq)
    root = (await tx.thread_roots([(cid, root_seq)])).get((cid, root_seq))
    if root is None or root.thread_root_seq is not None:
        raise NotFound("thread root not found", thread_root_seq=root_seq)
    if max_seq is not None:
        return await tx.count_thread(cid, root_seq, cap, max_seq)
    stored = (await tx.thread_summaries([(cid, root_seq)])).get((cid, root_seq))
    return stored or ThreadSummary(cid, root_seq, 0, None, None, ())


async def _views(
    tx: Tx, actor: User, member: Member, summaries: list[ThreadSummary]
) -> list[ThreadView]:
    cid = member.conversation_id
    found = await tx.messages_by_keys([(cid, s.root_seq) for s in summaries])
    roots: list[Message] = [found[(cid, s.root_seq)] for s in summaries]
    states = await tx.thread_states(
        cid, actor.id, [(m.seq, m.sender_id) for m in roots], visible_seq_limit(member)
    )
    return [
        ThreadView(root, summary, states[summary.root_seq])
        for root, summary in zip(roots, summaries, strict=True)
    ]
