"""The SDK's conversation roles and channel settings (issue 17): create a private
announcement channel, give a role, get the typed `MemberRoleChanged` and
`ConversationUpdated` events, and the refusals as typed errors."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import AppServer
from tidings.sdk import (
    Client,
    Conversation,
    ConversationUpdated,
    Event,
    EventStream,
    Forbidden,
    MemberRoleChanged,
    MessagePinned,
    MessageUnpinned,
)

PASSWORD = "sdk-test-password-1"


async def next_of(stream: EventStream, kind: type[Event]) -> Event:
    while True:
        event = await stream.next(timeout=10)
        if isinstance(event, kind):
            return event


async def test_roles_and_settings_through_the_sdk(server: AppServer) -> None:
    async with Client(server.url) as admin:
        await admin.login(server.admin_username, server.admin_password)
        names = [f"sdk{n}{secrets.token_hex(3)}" for n in ("own", "mem")]
        own_u = await admin.create_user(names[0], PASSWORD)
        mem_u = await admin.create_user(names[1], PASSWORD)
    async with Client(server.url) as own, Client(server.url) as mem:
        await own.login(own_u.username, PASSWORD)
        await mem.login(mem_u.username, PASSWORD)
        room = await own.create_conversation(
            "channel", [mem_u.id], name="sdk-news", private=True, announcement=True
        )
        assert (room.private, room.announcement, room.shared_history) == (True, True, False)
        assert room.id not in [c.id for c in await admin_free_channels(server)]
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


async def admin_free_channels(server: AppServer) -> list[Conversation]:
    """The channels someone outside the private one browses."""
    async with Client(server.url) as admin:
        await admin.login(server.admin_username, server.admin_password)
        outsider = await admin.create_user(f"sdkout{secrets.token_hex(3)}", PASSWORD)
    async with Client(server.url) as other:
        await other.login(outsider.username, PASSWORD)
        return list(await other.channels("sdk-news"))
