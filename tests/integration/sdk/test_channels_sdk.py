"""The SDK's conversation roles and channel settings (issue 17): create a private
announcement channel, give a role, get the typed `MemberRoleChanged` and
`ConversationUpdated` events, and the refusals as typed errors."""

from __future__ import annotations

import pytest

from tests.integration.sdk.conftest import SdkUsers, next_of
from tidings.sdk import (
    Conversation,
    ConversationUpdated,
    Forbidden,
    MemberRoleChanged,
    MessagePinned,
    MessageUnpinned,
)


async def test_roles_and_settings_through_the_sdk(sdk_users: SdkUsers) -> None:
    (own_u, own), (mem_u, mem) = await sdk_users("own", "mem")
    room = await own.create_conversation(
        "channel", [mem_u.id], name="sdk-news", private=True, announcement=True
    )
    assert (room.private, room.announcement, room.shared_history) == (True, True, False)
    assert room.id not in [c.id for c in await admin_free_channels(sdk_users)]
    stream = await mem.subscribe()
    with pytest.raises(Forbidden):
        await mem.send(room.id, "may I?")
    member = await own.set_member_role(room.id, mem_u.id, "moderator")
    assert (member.user_id, member.role) == (mem_u.id, "moderator")
    event = await next_of(stream, MemberRoleChanged)
    assert isinstance(event, MemberRoleChanged)
    assert (event.user_id, event.role, event.by) == (mem_u.id, "moderator", own_u.id)
    assert (await mem.send(room.id, "now I may")).seq == 1
    with pytest.raises(Forbidden):
        await mem.update_conversation(room.id, announcement=False)  # owners only
    changed = await own.update_conversation(room.id, announcement=False, shared_history=True)
    assert (changed.announcement, changed.shared_history) == (False, True)
    updated = await next_of(stream, ConversationUpdated)
    assert isinstance(updated, ConversationUpdated)
    assert updated.conversation.announcement is False
    full = await mem.conversation(room.id)
    assert full.members is not None
    assert {m.user_id: m.role for m in full.members} == {
        own_u.id: "owner",
        mem_u.id: "moderator",
    }
    # pins: a moderator pins, every member sees the typed events and the list
    pin = await mem.pin(room.id, 1)
    assert (pin.seq, pin.pinned_by, pin.message.body) == (1, mem_u.id, "now I may")
    pinned = await next_of(stream, MessagePinned)
    assert isinstance(pinned, MessagePinned) and (pinned.seq, pinned.by) == (1, mem_u.id)
    assert [p.seq for p in await own.pins(room.id)] == [1]
    await own.unpin(room.id, 1)
    unpinned = await next_of(stream, MessageUnpinned)
    assert isinstance(unpinned, MessageUnpinned) and unpinned.by == own_u.id
    assert await mem.pins(room.id) == []
    await stream.aclose()


async def admin_free_channels(sdk_users: SdkUsers) -> list[Conversation]:
    """The channels someone outside the private one browses."""
    ((_, outsider),) = await sdk_users("out")
    return list(await outsider.channels("sdk-news"))
