"""Ephemeral signals: typing, presence, and what one user alone is shown (a slash
command's private reply, a command for a bot). Best effort, never stored as events."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.bus.ports import Envelope, EnvelopeKind, conversation_topic, user_topic
from tidings.core.models import PresenceState, User
from tidings.core.rules import sees_everyones_presence
from tidings.protocol.wire import presence_frame, typing_frame
from tidings.services.access import access_conversation
from tidings.services.context import Deps
from tidings.services.ratelimit import Action, RateLimiter

OFFLINE = PresenceState.OFFLINE.value


class PresenceService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.limiter = RateLimiter(deps)

    async def typing(self, actor: User, conversation_id: str) -> None:
        """Tell the other members that `actor` is typing; at most
        `rate_typing_per_conversation` times a window per user and conversation, and
        `rate_typing_per_user` in all their conversations together. Counted
        after the access check, so that counters exist only for conversations of theirs
        (never one per made-up id)."""
        async with self.d.store.read() as tx:
            await access_conversation(tx, actor, conversation_id)
        await self.limiter.check(Action.TYPING, f"{actor.id}:{conversation_id}", None)
        await self.limiter.check(Action.TYPING_TOTAL, actor.id, None)
        await self.d.bus.publish(
            conversation_topic(conversation_id),
            Envelope(
                kind=EnvelopeKind.EPHEMERAL,
                frame=typing_frame(conversation_id, actor.id),
                conversation_id=conversation_id,
                sender_id=actor.id,
            ),
        )

    async def tell(self, user_id: str, frame: str, sender_id: str | None) -> None:
        """Write `frame` to every live connection of `user_id` (not one of `sender_id`'s:
        a signal skips its sender), on whichever node holds them. Nothing is stored: a
        user with no live connection gets nothing."""
        await self.d.bus.publish(
            user_topic(user_id),
            Envelope(kind=EnvelopeKind.EPHEMERAL, frame=frame, sender_id=sender_id),
        )

    async def update(self, actor: User, conn_id: str, state: PresenceState) -> str:
        """A connection's own change of state (the client's `presence` frame): at most
        `rate_presence_per_user` a window; then `set_state`."""
        await self.limiter.check(Action.PRESENCE, actor.id, None)
        return await self.set_state(actor, conn_id, state)

    async def set_state(self, actor: User, conn_id: str, state: PresenceState | None) -> str:
        """Record one connection's state (None when it closes) and tell the user's
        contacts when the aggregate across devices changes."""
        before = (await self.d.bus.get_presence([actor.id]))[actor.id]
        after = await self.d.bus.set_presence(
            actor.id, conn_id, None if state is None else state.value
        )
        if after != before:
            # Contacts only: sharing a direct or group conversation is mutual, so a guest
            # is told only of its contacts, as `states` answers it (rules.py).
            async with self.d.store.lookup() as q:
                contacts = await q.contacts_of(actor.id)
            envelope = Envelope(
                kind=EnvelopeKind.EPHEMERAL,
                frame=presence_frame(actor.id, after),
                sender_id=actor.id,
            )
            await self.d.bus.publish_many([user_topic(u) for u in contacts], envelope)
        return after

    async def states(self, actor: User, user_ids: Sequence[str]) -> dict[str, str]:
        """The presence of up to 500 users. Someone the actor may not see (a guest asking
        about a non-contact) is `offline`, as an id that does not exist: nothing tells
        the two apart."""
        states = await self.d.bus.get_presence(list(dict.fromkeys(user_ids))[:500])
        if sees_everyones_presence(actor):
            return states
        async with self.d.store.lookup() as q:
            visible = {actor.id, *await q.contacts_of(actor.id)}
        return {uid: state if uid in visible else OFFLINE for uid, state in states.items()}
