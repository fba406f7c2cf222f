"""The SDK around the timeline (issue 17): saved messages (`saved`, `save`, `unsave`,
the typed `MessageSaved` / `MessageUnsaved` events on the saver's stream), and the
refusals as typed errors."""

from __future__ import annotations

import pytest

from tests.integration.sdk.conftest import SdkUsers, next_of
from tidings.sdk import MessageSaved, MessageUnsaved, NotFound, ReadMoved


async def test_saved_messages_through_the_sdk(sdk_users: SdkUsers) -> None:
    (_, ann), (ben_u, ben) = await sdk_users("sva", "svb")
    room = await ann.create_conversation("group", [ben_u.id], name="sdk-saved")
    for body in ("one", "two", "three"):
        await ann.send(room.id, body)
    stream = await ben.subscribe()
    saved = await ben.save(room.id, 2)
    assert (saved.conversation_id, saved.seq, saved.message.body) == (room.id, 2, "two")
    event = await next_of(stream, MessageSaved)
    assert isinstance(event, MessageSaved)
    assert (event.conversation_id, event.seq, event.user_id) == (room.id, 2, ben_u.id)
    await ben.save(room.id, 3)
    page = await ben.saved(limit=1)
    assert [s.seq for s in page.saved] == [3] and page.next_cursor
    rest = await ben.saved(cursor=page.next_cursor)
    assert [s.seq for s in rest.saved] == [2] and rest.next_cursor is None
    await ben.unsave(room.id, 3)
    unsaved = await next_of(stream, MessageUnsaved)
    assert isinstance(unsaved, MessageUnsaved) and unsaved.seq == 3
    assert [s.seq for s in (await ben.saved()).saved] == [2]
    assert (await ann.saved()).saved == ()
    with pytest.raises(NotFound):
        await ben.save(room.id, 99)
    await stream.aclose()


async def test_mark_unread_through_the_sdk(sdk_users: SdkUsers) -> None:
    (_, ann), (ben_u, ben) = await sdk_users("ura", "urb")
    room = await ann.create_conversation("group", [ben_u.id], name="sdk-unread")
    for body in ("one", "two", "three"):
        await ann.send(room.id, body)
    await ben.read(room.id, 3)
    stream = await ben.subscribe()
    state = await ben.mark_unread(room.id, 2)
    assert (state.read_seq, state.unread) == (1, 2)
    moved = await next_of(stream, ReadMoved)
    assert isinstance(moved, ReadMoved) and moved.seq == 1
    assert (await ben.mark_unread(room.id)).read_seq == 1  # never forward
    with pytest.raises(NotFound):
        await ben.mark_unread(room.id, 9)
    await stream.aclose()


async def test_unread_counts_through_the_sdk(sdk_users: SdkUsers) -> None:
    """Conversation.unread leaves thread-only replies out; unread_mentions counts @all of
    others; ReadState and ReadMoved carry the same unread."""
    (_, ann), (ben_u, ben) = await sdk_users("uca", "ucb")
    room = await ann.create_conversation("group", [ben_u.id], name="sdk-counts")
    root = await ann.send(room.id, "root")
    await ann.send(room.id, "only in the thread", thread_root_seq=root.seq)
    await ann.send(room.id, "@all also here", thread_root_seq=root.seq, also_to_conversation=True)
    await ann.send(room.id, "@all only in the thread", thread_root_seq=root.seq)
    (mine,) = [c for c in await ben.conversations() if c.id == room.id]
    assert (mine.last_seq, mine.unread, mine.unread_mentions) == (4, 2, 1)
    stream = await ben.subscribe()
    state = await ben.read(room.id, 2)
    assert (state.read_seq, state.unread) == (2, 1)
    moved = await next_of(stream, ReadMoved)
    assert isinstance(moved, ReadMoved) and (moved.seq, moved.unread) == (2, 1)
    (theirs,) = [c for c in await ann.conversations() if c.id == room.id]
    assert (theirs.unread, theirs.unread_mentions) == (0, 0)
    await stream.aclose()


async def test_forwarding_through_the_sdk(sdk_users: SdkUsers) -> None:
    (ann_u, ann), (ben_u, ben) = await sdk_users("fwa", "fwb")
    source = await ann.create_conversation("group", [], name="sdk-fw-source")
    target = await ann.create_conversation("group", [ben_u.id], name="sdk-fw-target")
    original = await ann.send(source.id, "pass this on")
    copy = await ann.forward(source.id, original.seq, target.id, client_msg_id="fw-1")
    assert (copy.conversation_id, copy.body) == (target.id, "pass this on")
    assert copy.forwarded_from == (source.id, original.seq)
    again = await ann.forward(source.id, original.seq, target.id, client_msg_id="fw-1")
    assert again.id == copy.id  # never forwarded twice
    origin = await ann.forwarded_from(target.id, copy.seq)
    assert (origin.conversation_name, origin.sender_id) == ("sdk-fw-source", ann_u.id)
    seen = (await ben.history(target.id)).messages
    assert seen[-1].forwarded_from == (source.id, original.seq)
    with pytest.raises(NotFound):  # ben is not in the source: just "forwarded"
        await ben.forwarded_from(target.id, copy.seq)
