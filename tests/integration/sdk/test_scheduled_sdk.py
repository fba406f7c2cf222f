"""The SDK's scheduled messages (issue 17): `schedule`, `scheduled`,
`scheduled_message`, `edit_scheduled`, `cancel_scheduled` with the typed
`ScheduledMessage`, the `ScheduledMessage*` events on the sender's stream, delivery
by the server's own worker (the real clock), and the refusals as typed errors; both
backends."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import AppServer
from tidings.sdk import (
    Client,
    Event,
    EventStream,
    InvalidRequest,
    MessageSent,
    NotFound,
    ScheduledMessage,
    ScheduledMessageCreated,
    ScheduledMessageDeleted,
    ScheduledMessageUpdated,
)

PASSWORD = "sdk-test-password-1"


async def next_of(stream: EventStream, kind: type[Event], timeout: float = 10) -> Event:
    while True:
        event = await stream.next(timeout=timeout)
        if isinstance(event, kind):
            return event


async def test_scheduled_messages_through_the_sdk(server: AppServer, tmp_path: Path) -> None:
    async with Client(server.url) as admin:
        await admin.login(server.admin_username, server.admin_password)
        ann_u = await admin.create_user(f"sdksca{secrets.token_hex(3)}", PASSWORD)
        ben_u = await admin.create_user(f"sdkscb{secrets.token_hex(3)}", PASSWORD)
    async with Client(server.url) as ann, Client(server.url) as ben:
        await ann.login(ann_u.username, PASSWORD)
        await ben.login(ben_u.username, PASSWORD)
        room = await ann.create_conversation("group", [ben_u.id], name="sdk-scheduled")
        mine = await ann.subscribe()
        theirs = await ben.subscribe()
        now = datetime.now(UTC)

        later = await ann.schedule(room.id, "much later", now + timedelta(days=2))
        assert isinstance(later, ScheduledMessage) and later.state == "pending"
        made = await next_of(mine, ScheduledMessageCreated)
        assert isinstance(made, ScheduledMessageCreated) and made.scheduled == later
        notes = tmp_path / "notes.txt"
        notes.write_bytes(b"the notes")
        file = await ann.upload(notes)
        soon = await ann.schedule(
            room.id, "soon", now + timedelta(seconds=3), attachments=[file.id]
        )
        assert soon.attachments == (file.id,)
        assert [s.id for s in await ann.scheduled()] == [soon.id, later.id]
        assert [s.id for s in await ann.scheduled(room.id)] == [soon.id, later.id]
        assert (await ann.scheduled_message(later.id)).body == "much later"
        assert await ben.scheduled() == []
        with pytest.raises(NotFound):
            await ben.scheduled_message(later.id)
        with pytest.raises(NotFound):
            await ben.cancel_scheduled(later.id)

        edited = await ann.edit_scheduled(later.id, body="edited", send_at=now + timedelta(days=1))
        assert edited.body == "edited" and edited.version == later.version + 1
        updated = await next_of(mine, ScheduledMessageUpdated)
        assert isinstance(updated, ScheduledMessageUpdated) and updated.scheduled == edited
        await ann.cancel_scheduled(later.id)
        gone = await next_of(mine, ScheduledMessageDeleted)
        assert isinstance(gone, ScheduledMessageDeleted) and gone.scheduled_id == later.id

        # the server's worker sends `soon` at its time, as ann
        sent = await next_of(theirs, MessageSent, timeout=30)
        assert isinstance(sent, MessageSent)
        assert sent.message.body == "soon" and sent.message.sender_id == ann_u.id
        assert [f.id for f in sent.message.attachments] == [file.id]
        while True:
            told = await next_of(mine, ScheduledMessageUpdated, timeout=30)
            assert isinstance(told, ScheduledMessageUpdated)
            if told.scheduled.state == "sent":
                break
        assert told.scheduled.sent_seq == sent.message.seq
        assert await ann.scheduled() == []

        with pytest.raises(InvalidRequest):
            await ann.schedule(room.id, "the past", now - timedelta(minutes=1))
        with pytest.raises(ValueError, match="aware"):
            await ann.schedule(room.id, "naive", datetime(2030, 1, 1))
        await mine.aclose()
        await theirs.aclose()
