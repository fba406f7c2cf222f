"""Saved messages: each user's private list of messages to come back to.

A user saves a message they may read (the same rule as history, pins and search: a
member, or a former one within their range, from their `first_seq`; not recalled) and
unsaves it; each change is a `message_saved` / `message_unsaved` event to their own
connections only. The list (newest save first) holds only messages still readable:
a recalled one leaves every saver's list (services/messages.py `recall`, with a
`message_unsaved` to each saver), one of a conversation they left stays while it is
within their range. The order and cursor is the stream position of the save's event."""

from __future__ import annotations

from tidings.core.errors import CapReached, InvalidRequest, NotFound
from tidings.core.events import MessageSaved, MessageUnsaved
from tidings.core.models import ConversationId, Message, SavedMessage, User
from tidings.core.rules import seq_visible
from tidings.services.access import access_conversation
from tidings.services.context import Deps
from tidings.services.events import EventBatch
from tidings.services.ratelimit import Action, RateLimiter


class SavedService:
    def __init__(self, deps: Deps, limiter: RateLimiter | None = None) -> None:
        self.d = deps
        self.limiter = limiter or RateLimiter(deps)

    async def save(
        self, actor: User, conversation_id: str, seq: int
    ) -> tuple[SavedMessage, Message]:
        """Save message `seq` for the caller: `message_saved` to their connections.
        Saving a saved one changes nothing and returns it. A recalled message, or one
        the caller may not read: not_found; more than max_saved_per_user:
        invalid_operation with the limit."""
        await self.limiter.check(Action.EDIT, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id, allow_left=True)
            message = await tx.get_message(conv.id, seq)
            if message is None or message.deleted or not seq_visible(member, seq):
                raise NotFound("message not found", seq=seq)
            existing = await tx.get_saved(actor.id, conv.id, seq)
            if existing is not None:
                return existing, message
            limit = self.d.limits.max_saved_per_user
            if await tx.count_saved(actor.id) >= limit:
                raise CapReached(
                    f"you have saved the most messages allowed ({limit}): unsave some first",
                    field="seq",
                    limit=limit,
                )
            batch = EventBatch(tx, self.d.bus, now)
            position = await batch.reserve(1)
            saved = SavedMessage(actor.id, conv.id, seq, now, position)
            await tx.add_saved(saved)
            batch.add(MessageSaved(conv.id, seq, actor.id, now))
            await batch.flush()
        return saved, message

    async def unsave(self, actor: User, conversation_id: str, seq: int) -> None:
        """Unsave message `seq`: `message_unsaved` to the caller's connections. One that
        is not saved (or a conversation that does not exist) changes nothing: the
        caller's own list is all this touches, so nothing is learnt either way."""
        await self.limiter.check(Action.EDIT, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            if await tx.remove_saved(actor.id, conversation_id, seq):
                batch = EventBatch(tx, self.d.bus, now)
                batch.add(MessageUnsaved(ConversationId(conversation_id), seq, actor.id, now))
                await batch.flush()

    async def list(
        self, actor: User, *, before: int | None = None, limit: int = 50
    ) -> tuple[list[tuple[SavedMessage, Message]], int | None]:
        """The caller's saved messages they may still read, newest save first, with
        the message as it is now; and the cursor of the next page (None: no more)."""
        if before is not None and before <= 0:
            raise InvalidRequest("cursor is not one this server gave", field="cursor")
        limit = max(1, min(limit, self.d.limits.history_page_max))
        async with self.d.store.read() as tx:
            found = await tx.list_saved(actor.id, before_position=before, limit=limit + 1)
            more = len(found) > limit
            found = found[:limit]
            messages = await tx.messages_by_keys([(s.conversation_id, s.seq) for s in found])
        page = [
            (s, messages[(s.conversation_id, s.seq)])
            for s in found
            if (s.conversation_id, s.seq) in messages
        ]
        return page, (found[-1].position if more and found else None)
