"""The one way to load a conversation on a user's behalf."""

from __future__ import annotations

from tidings.core.errors import NotFound
from tidings.core.models import Conversation, Member, User
from tidings.store.ports import Tx


async def access_conversation(
    tx: Tx, user: User, conversation_id: str, *, allow_left: bool = False
) -> tuple[Conversation, Member]:
    """The conversation and the caller's membership. Missing and not-a-member give the
    same NotFound, so that nobody learns what exists. With `allow_left`, a removed
    member may still read what they could see before their removal."""
    conv = await tx.get_conversation(conversation_id)
    member = None if conv is None else await tx.get_member(conversation_id, user.id)
    if conv is None or member is None or (not member.active and not allow_left):
        raise NotFound("conversation not found", conversation_id=conversation_id)
    return conv, member
