"""protocol/frames.py (client frames in) and protocol/wire.py (shapes out). No IO."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tidings.core.errors import ErrorCode, InvalidRequest, NotFound, TooLarge
from tidings.core.models import (
    Avatar,
    Conversation,
    ConversationId,
    ConversationKind,
    Department,
    DepartmentId,
    FileId,
    FileInfo,
    FileStatus,
    Member,
    MemberRole,
    MemberView,
    Message,
    MessageId,
    OrgRole,
    User,
    UserId,
)
from tidings.protocol import frames as f
from tidings.protocol import wire

LIMIT = 64 * 1024
T0 = datetime(2026, 11, 28, 23, 59, 1, 123456, tzinfo=UTC)
T0_WIRE = "2026-11-28T23:59:01.123456Z"


def parse(frame: object, limit: int = LIMIT) -> f.ClientFrame:
    return f.parse_frame(orjson.dumps(frame).decode(), limit)


def invalid(frame: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as exc:
        parse(frame)
    assert exc.value.code is ErrorCode.INVALID_REQUEST
    return exc.value


# --- every frame type ---------------------------------------------------------------


def test_auth_frame() -> None:
    frame = parse({"type": "auth", "token": "tok", "since": "42", "ref": 1})
    assert isinstance(frame, f.AuthFrame)
    assert (frame.token, frame.since, frame.ref) == ("tok", "42", 1)
    plain = parse({"type": "auth", "token": "tok"})
    assert isinstance(plain, f.AuthFrame) and plain.since is None and plain.ref is None


def test_send_frame() -> None:
    frame = parse(
        {"type": "send", "conversation_id": "c1", "client_msg_id": "m1", "body": "你好",
         "reply_to_seq": 3, "ref": "r-1"}
    )
    assert isinstance(frame, f.SendFrame)
    assert (frame.conversation_id, frame.client_msg_id, frame.body) == ("c1", "m1", "你好")
    assert (frame.reply_to_seq, frame.ref) == (3, "r-1")
    bare = parse({"type": "send", "conversation_id": "c1", "client_msg_id": "m1", "body": "x"})
    assert isinstance(bare, f.SendFrame) and bare.reply_to_seq is None


def test_read_frame() -> None:
    frame = parse({"type": "read", "conversation_id": "c1", "seq": 0})
    assert isinstance(frame, f.ReadFrame) and frame.seq == 0


def test_typing_frame() -> None:
    frame = parse({"type": "typing", "conversation_id": "c1", "ref": 9})
    assert isinstance(frame, f.TypingFrame) and frame.conversation_id == "c1"


@pytest.mark.parametrize("state", ["online", "away"])
def test_presence_frame(state: str) -> None:
    frame = parse({"type": "presence", "state": state})
    assert isinstance(frame, f.PresenceFrame) and frame.state == state


def test_ping_frame_and_unknown_fields_are_ignored() -> None:
    frame = parse({"type": "ping", "ref": "p", "extra": {"anything": [1, 2]}})
    assert isinstance(frame, f.PingFrame) and frame.ref == "p"


def test_bytes_are_accepted() -> None:
    frame = f.parse_frame(b'{"type":"ping"}', LIMIT)
    assert isinstance(frame, f.PingFrame)


# --- invalid frames -----------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "shout", "ref": 1},
        {"type": "PING"},
        {"ref": 1},
        {"type": None},
        {"type": 1},
    ],
)
def test_unknown_or_missing_type(frame: dict[str, object]) -> None:
    err = invalid(frame)
    assert err.details["errors"]


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "auth"}, "token"),
        ({"type": "auth", "token": ""}, "token"),
        ({"type": "auth", "token": 5}, "token"),
        ({"type": "auth", "token": "t" * 513}, "token"),
        ({"type": "auth", "token": "t", "since": 5}, "since"),
        ({"type": "send", "conversation_id": 7, "client_msg_id": "m", "body": "b"},
         "conversation_id"),
        ({"type": "send", "conversation_id": "c", "client_msg_id": 1, "body": "b"},
         "client_msg_id"),
        ({"type": "send", "conversation_id": "c", "client_msg_id": "m", "body": ["b"]}, "body"),
        ({"type": "send", "conversation_id": "c", "client_msg_id": "m"}, "body"),
        ({"type": "send", "conversation_id": "", "client_msg_id": "m", "body": "b"},
         "conversation_id"),
        ({"type": "send", "conversation_id": "c", "client_msg_id": "m", "body": "b",
          "reply_to_seq": 0}, "reply_to_seq"),
        ({"type": "send", "conversation_id": "c", "client_msg_id": "m", "body": "b",
          "reply_to_seq": "2"}, "reply_to_seq"),
        ({"type": "read", "conversation_id": "c", "seq": "5"}, "seq"),
        ({"type": "read", "conversation_id": "c", "seq": -1}, "seq"),
        ({"type": "read", "conversation_id": "c", "seq": 1.5}, "seq"),
        ({"type": "read", "conversation_id": "c", "seq": True}, "seq"),
        ({"type": "typing"}, "conversation_id"),
        ({"type": "presence", "state": "offline"}, "state"),
        ({"type": "presence"}, "state"),
    ],
)
def test_wrong_or_missing_fields(frame: dict[str, object], field: str) -> None:
    err = invalid(frame)
    errors = err.details["errors"]
    assert isinstance(errors, list)
    assert any(field in e["loc"] for e in errors), errors
    assert all(set(e) == {"loc", "msg"} for e in errors)


@pytest.mark.parametrize("text", ["[]", '"ping"', "1", "null", "true", '[{"type":"ping"}]'])
def test_non_object_json(text: str) -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        f.parse_frame(text, LIMIT)


@pytest.mark.parametrize(
    "text", ["", "{", '{"type": "ping"', "{'type': 'ping'}", "ping", b"\xff\xfe", "\ud800"]
)
def test_malformed_json(text: str | bytes) -> None:
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        f.parse_frame(text, LIMIT)


def test_oversized_frame_is_too_large() -> None:
    body = "x" * 100
    text = orjson.dumps({"type": "send", "conversation_id": "c", "client_msg_id": "m",
                         "body": body}).decode()
    assert isinstance(f.parse_frame(text, len(text)), f.SendFrame)  # the limit is inclusive
    with pytest.raises(TooLarge) as exc:
        f.parse_frame(text, len(text) - 1)
    assert exc.value.code is ErrorCode.TOO_LARGE
    assert exc.value.details["limit"] == len(text) - 1


def test_frame_size_is_counted_in_bytes() -> None:
    text = orjson.dumps({"type": "ping", "note": "中" * 100}).decode()
    assert len(text) < 200 < len(text.encode())
    with pytest.raises(TooLarge):
        f.parse_frame(text, 200)
    with pytest.raises(TooLarge):  # not even parsed: malformed but oversized is too_large
        f.parse_frame("{" * 201, 200)


@pytest.mark.parametrize("ref", ["r-17", 17, 0, 1.5])
def test_ref_is_carried_in_the_error_details(ref: str | float) -> None:
    err = invalid({"type": "read", "conversation_id": "c", "seq": "x", "ref": ref})
    assert err.details["ref"] == ref


@pytest.mark.parametrize("ref", [True, None, [1], {"a": 1}])
def test_a_ref_that_is_not_a_string_or_number_is_not_echoed(ref: object) -> None:
    err = invalid({"type": "shout", "ref": ref})
    assert err.details["ref"] is None


def test_an_unknown_type_keeps_its_ref() -> None:
    assert invalid({"type": "shout", "ref": "abc"}).details["ref"] == "abc"


# --- wire: shapes of objects --------------------------------------------------------

ALICE = User(UserId("u1"), "alice", "爱丽丝", OrgRole.ADMIN, False, T0,
             (DepartmentId("d1"), DepartmentId("d2")))
CONV = Conversation(ConversationId("c1"), ConversationKind.GROUP, "Team", "topic", UserId("u1"),
                    T0, 7, T0 + timedelta(seconds=1), 3)
MEMBER = Member(ConversationId("c1"), UserId("u2"), MemberRole.MEMBER, 4, T0, 10)


def test_user_json() -> None:
    assert wire.user_json(ALICE) == {
        "id": "u1", "username": "alice", "display_name": "爱丽丝", "role": "admin",
        "disabled": False, "department_ids": ["d1", "d2"], "created_at": T0_WIRE,
        "bot": False, "email": None, "origin": "local", "status": None,
        "avatar": None,
    }
    assert wire.user_json(dataclasses.replace(ALICE, bot=True))["bot"] is True


def test_an_avatar_is_its_id_time_and_urls_and_reads_back() -> None:
    alice = dataclasses.replace(ALICE, avatar=Avatar("a1b2", T0, "f" * 64, "image/webp"))
    shown = wire.user_json(alice)
    assert shown["avatar"] == {
        "id": "a1b2",
        "updated_at": T0_WIRE,
        "url": "/api/v1/users/u1/avatar/a1b2?size=256",
        "small_url": "/api/v1/users/u1/avatar/a1b2?size=64",
    }
    assert "f" * 64 not in str(shown)  # the content address is not on the wire
    assert wire.user_of(shown) == alice  # id and time are what compares


def test_department_json() -> None:
    dep = Department(DepartmentId("d2"), "Backend", DepartmentId("d1"))
    assert wire.department_json(dep) == {"id": "d2", "name": "Backend", "parent_id": "d1"}


def test_conversation_json() -> None:
    assert wire.conversation_json(CONV) == {
        "id": "c1", "kind": "group", "name": "Team", "topic": "topic", "created_by": "u1",
        "created_at": "2026-11-28T23:59:01.123456Z", "last_seq": 7,
        "last_activity_at": "2026-11-28T23:59:02.123456Z", "member_count": 3,
        "archived_at": None, "private": False, "announcement": False, "shared_history": True,
    }
    channel = dataclasses.replace(CONV, private=True, announcement=True, shared_history=False)
    settings = {k: wire.conversation_json(channel)[k]
                for k in ("private", "announcement", "shared_history")}
    assert settings == {"private": True, "announcement": True, "shared_history": False}
    assert wire.conversation_of(wire.conversation_json(channel)) == channel


def test_member_json_and_member_view_json() -> None:
    assert wire.member_json(MEMBER) == {
        "user_id": "u2", "role": "member", "read_seq": 4, "joined_at": T0_WIRE,
    }
    view = wire.member_view_json(MemberView(CONV, MEMBER, unread_mentions=2))
    assert view == {**wire.conversation_json(CONV), "role": "member", "read_seq": 4,
                    "unread": 3, "unread_mentions": 2,
                    "notifications": {"level": None, "muted": False, "muted_until": None}}


def test_unread_is_last_seq_minus_read_seq_never_negative() -> None:
    ahead = Member(ConversationId("c1"), UserId("u2"), MemberRole.MEMBER, 9, T0, 10)
    assert MemberView(CONV, ahead, 0).unread == 0
    assert MemberView(CONV, MEMBER, 0).unread == 3


def _message(**kw: object) -> Message:
    base: dict[str, object] = dict(
        id=MessageId("m1"), conversation_id=ConversationId("c1"), seq=2, client_msg_id="cm",
        sender_id=UserId("u1"), body="hi @bob", reply_to_seq=1, mentions=(UserId("u2"),),
        created_at=T0,
    )
    base.update(kw)
    return Message(**base)  # type: ignore[arg-type]  # test data


def test_message_json() -> None:
    msg = _message(reactions={"👍": [UserId("u1"), UserId("u2")]},
                   edited_at=T0 + timedelta(seconds=5))
    data = wire.message_json(msg)
    assert data == {
        "id": "m1", "conversation_id": "c1", "seq": 2, "client_msg_id": "cm", "sender_id": "u1",
        "body": "hi @bob", "reply_to_seq": 1, "mentions": ["u2"],
        "reactions": {"👍": ["u1", "u2"]}, "created_at": "2026-11-28T23:59:01.123456Z",
        "edited_at": "2026-11-28T23:59:06.123456Z", "deleted": False, "attachments": [],
        "thread_root_seq": None, "also_to_conversation": False, "mentions_everyone": None,
    }
    data["reactions"]["👍"].append("u3")  # a copy: the message itself is not changed
    assert msg.reactions["👍"] == ["u1", "u2"]


def test_recalled_message_has_empty_body() -> None:
    data = wire.message_json(_message(deleted=True, body="secret", attachments=(FILE,)))
    assert data["deleted"] is True and data["body"] == ""
    assert data["edited_at"] is None
    assert data["attachments"] == []  # a recalled message takes its files with it


FILE = FileInfo(
    FileId("f1"), UserId("u1"), "a.png", 10, "image/png", "ab" * 32, "f/ab/cd/key", T0,
    FileStatus.READY, inline_safe=True, width=2, height=3, thumb_key="t/f1",
)


def test_file_json_never_tells_where_the_bytes_are() -> None:
    data = wire.file_json(FILE)
    assert data == {
        "id": "f1", "name": "a.png", "size": 10, "content_type": "image/png",
        "sha256": "ab" * 32, "created_at": "2026-11-28T23:59:01.123456Z", "uploader_id": "u1",
        "width": 2, "height": 3, "has_thumbnail": True, "status": "ready",
    }
    assert "f/ab/cd/key" not in str(data)
    message = wire.message_json(_message(attachments=(FILE,)))
    assert message["attachments"] == [data]
    back = wire.message_of(message).attachments[0]
    assert (back.id, back.name, back.has_thumbnail, back.width) == ("f1", "a.png", True, 2)


def test_error_json() -> None:
    err = NotFound("conversation not found", conversation_id="c9")
    assert wire.error_json(err) == {
        "code": "not_found", "message": "conversation not found",
        "details": {"conversation_id": "c9"},
    }


# --- wire: server frames ------------------------------------------------------------


def test_event_frame_position_is_a_string() -> None:
    frame = orjson.loads(wire.event_frame(12, {"kind": "message", "conversation_id": "c1"}))
    assert frame == {"type": "event", "position": "12",
                     "event": {"kind": "message", "conversation_id": "c1"}}


def test_ready_frame() -> None:
    frame = orjson.loads(wire.ready_frame(ALICE, 5))
    assert frame == {"type": "ready", "user": wire.user_json(ALICE), "position": "5"}


def test_ack_frame() -> None:
    assert orjson.loads(wire.ack_frame("r1")) == {"type": "ack", "ref": "r1"}
    assert orjson.loads(wire.ack_frame(3, read_seq=4, unread=0)) == {
        "type": "ack", "ref": 3, "read_seq": 4, "unread": 0}


def test_error_frame_carries_ref_only_when_given() -> None:
    err = TooLarge("too big", limit=10)
    with_ref = orjson.loads(wire.error_frame("r", err))
    assert with_ref == {"type": "error", "ref": "r", "error": wire.error_json(err)}
    assert "ref" not in orjson.loads(wire.error_frame(None, err))
    assert orjson.loads(wire.error_frame(0, err))["ref"] == 0


def test_ephemeral_frames() -> None:
    assert orjson.loads(wire.typing_frame("c1", "u1")) == {
        "type": "typing", "conversation_id": "c1", "user_id": "u1"}
    assert orjson.loads(wire.presence_frame("u1", "away")) == {
        "type": "presence", "user_id": "u1", "state": "away"}
    assert orjson.loads(wire.reconnect_frame("bye")) == {"type": "reconnect", "reason": "bye"}


def test_encode_keeps_unicode_readable() -> None:
    assert wire.encode({"body": "你好"}) == '{"body":"你好"}'
