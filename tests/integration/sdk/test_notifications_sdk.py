"""The SDK's notification settings (issue 17): a conversation's level and mute, do not
disturb, the typed `NotificationsUpdated` / `DndUpdated` events on one's own stream,
`Message.mentions_everyone`, and the refusals as typed errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import AppServer
from tests.integration.sdk.conftest import SdkUsers, next_of
from tidings.sdk import Client, DndUpdated, Forbidden, InvalidRequest, NotificationsUpdated


async def test_notification_settings_through_the_sdk(sdk_users: SdkUsers) -> None:
    (a_u, a), (b_u, b) = await sdk_users("na", "nb")
    other_tab = await sdk_users.sign_in(a_u)
    room = await a.create_conversation("channel", [b_u.id], name="sdk-notes")
    stream = await other_tab.subscribe()
    assert (await a.conversation_notifications(room.id)).level is None
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    got = await a.set_conversation_notifications(room.id, level="all", muted_until=until)
    assert (got.level, got.muted, got.muted_until) == ("all", True, until)
    event = await next_of(stream, NotificationsUpdated)
    assert isinstance(event, NotificationsUpdated)
    assert event.conversation_id == room.id and event.notifications == got
    listed = next(c for c in await a.conversations() if c.id == room.id)
    assert listed.notifications == got
    unmuted = await a.set_conversation_notifications(room.id, muted=False, level=None)
    assert (unmuted.level, unmuted.muted, unmuted.muted_until) == (None, False, None)

    dnd = await a.set_do_not_disturb(schedule=("22:00", "07:00"))
    assert dnd.schedule == ("22:00", "07:00") and dnd.until is None
    told = await next_of(stream, DndUpdated)
    assert isinstance(told, DndUpdated) and told.dnd.schedule == ("22:00", "07:00")
    assert (await a.do_not_disturb()).schedule == ("22:00", "07:00")
    off = await a.set_do_not_disturb(schedule=None)
    assert off.schedule is None and off.active is False
    with pytest.raises(InvalidRequest):
        await a.set_do_not_disturb(schedule=("22:00", "22:00"))
    with pytest.raises(InvalidRequest):
        await a.set_conversation_notifications(room.id, level="loud")

    sent = await b.send(room.id, "@here tea?")
    assert sent.mentions_everyone == "here"
    await stream.aclose()


async def test_mentioning_everyone_refused_is_forbidden(
    server: AppServer, sdk_users: SdkUsers
) -> None:
    ((user, member),) = await sdk_users("m")
    async with Client(server.url) as owner:
        await owner.login(server.admin_username, server.admin_password)
        await owner.update_config({"mention_all_min_role": "owner"})
        try:
            room = await owner.create_conversation("group", [user.id], name="sdk-everyone")
            with pytest.raises(Forbidden) as refused:
                await member.send(room.id, "@all hello")
            assert refused.value.details["min_role"] == "owner"
        finally:
            await owner.update_config({"mention_all_min_role": None})
