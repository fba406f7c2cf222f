"""The SDK's calls of the admin console (issue 19) against the application in-process,
on both backends: archive, the admin's conversation list and members, departments,
usage statistics."""

from __future__ import annotations

import pytest

from tests.conftest import AppServer
from tidings.sdk import Client, Forbidden


async def test_the_sdk_administers_conversations_departments_and_usage(
    server: AppServer,
) -> None:
    async with Client(server.url) as admin:
        me = await admin.login(server.admin_username, server.admin_password)
        room = await admin.create_conversation("channel", name="sdk-room")
        archived = await admin.archive_conversation(room.id)
        assert archived.archived_at is not None
        assert room.id not in [c.id for c in await admin.conversations()]
        assert room.id in [c.id for c in await admin.conversations(include_archived=True)]
        found, total, next_offset = await admin.all_conversations(query="sdk", archived=True)
        assert [c.id for c in found] == [room.id] and total == 1 and next_offset is None
        assert [m.user_id for m in await admin.conversation_members(room.id)] == [me.id]
        assert (await admin.unarchive_conversation(room.id)).archived_at is None

        top = await admin.create_department("SDK")
        sub = await admin.create_department("Sub")
        assert (await admin.rename_department(sub.id, "Child")).name == "Child"
        assert (await admin.move_department(sub.id, top.id)).parent_id == top.id
        await admin.add_to_department(sub.id, me.id)
        assert [u.id for u in await admin.department_members(sub.id)] == [me.id]
        await admin.remove_from_department(sub.id, me.id)
        await admin.delete_department(sub.id)

        await admin.send(room.id, "counted")
        usage = await admin.usage_stats(days=2)
        assert len(usage["days"]) == 2 and usage["days"][-1]["messages"] >= 1

        await admin.create_user("sdkmember", "plum-orbit-123")
    async with Client(server.url) as member:
        await member.login("sdkmember", "plum-orbit-123")
        with pytest.raises(Forbidden):
            await member.usage_stats()
        with pytest.raises(Forbidden):
            await member.all_conversations()
