"""JSON shapes of domain objects and server frames. Encoding happens once, here."""

from __future__ import annotations

from typing import Any

import orjson

from tidings.core.clock import rfc3339
from tidings.core.errors import TidingsError
from tidings.core.models import Conversation, Department, Member, MemberView, Message, User

JsonDict = dict[str, Any]


def user_json(user: User) -> JsonDict:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "disabled": user.disabled,
        "department_ids": list(user.department_ids),
        "created_at": rfc3339(user.created_at),
        "bot": user.bot,
    }


def department_json(dep: Department) -> JsonDict:
    return {"id": dep.id, "name": dep.name, "parent_id": dep.parent_id}


def conversation_json(conv: Conversation) -> JsonDict:
    return {
        "id": conv.id,
        "kind": conv.kind.value,
        "name": conv.name,
        "topic": conv.topic,
        "created_by": conv.created_by,
        "created_at": rfc3339(conv.created_at),
        "last_seq": conv.last_seq,
        "last_activity_at": rfc3339(conv.last_activity_at),
        "member_count": conv.member_count,
    }


def member_json(member: Member) -> JsonDict:
    return {
        "user_id": member.user_id,
        "role": member.role.value,
        "read_seq": member.read_seq,
        "joined_at": rfc3339(member.joined_at),
    }


def member_view_json(view: MemberView) -> JsonDict:
    data = conversation_json(view.conversation)
    data.update(
        role=view.member.role.value,
        read_seq=view.member.read_seq,
        unread=view.unread,
        unread_mentions=view.unread_mentions,
    )
    return data


def message_json(message: Message) -> JsonDict:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "client_msg_id": message.client_msg_id,
        "sender_id": message.sender_id,
        "body": "" if message.deleted else message.body,
        "reply_to_seq": message.reply_to_seq,
        "mentions": list(message.mentions),
        "reactions": {k: list(v) for k, v in message.reactions.items()},
        "created_at": rfc3339(message.created_at),
        "edited_at": None if message.edited_at is None else rfc3339(message.edited_at),
        "deleted": message.deleted,
    }


def error_json(error: TidingsError) -> JsonDict:
    return {"code": error.code.value, "message": error.message, "details": error.details}


# --- server frames -----------------------------------------------------------------


def encode(frame: JsonDict) -> str:
    return orjson.dumps(frame).decode()


def event_frame(position: int, event: JsonDict) -> str:
    """The one encoding of an event, written as is to every recipient."""
    return encode({"type": "event", "position": str(position), "event": event})


def ready_frame(user: User, position: int) -> str:
    return encode({"type": "ready", "user": user_json(user), "position": str(position)})


def ack_frame(ref: object, **fields: Any) -> str:
    return encode({"type": "ack", "ref": ref, **fields})


def error_frame(ref: object, error: TidingsError) -> str:
    frame: JsonDict = {"type": "error", "error": error_json(error)}
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)


def typing_frame(conversation_id: str, user_id: str) -> str:
    return encode({"type": "typing", "conversation_id": conversation_id, "user_id": user_id})


def presence_frame(user_id: str, state: str) -> str:
    return encode({"type": "presence", "user_id": user_id, "state": state})


def reconnect_frame(reason: str) -> str:
    return encode({"type": "reconnect", "reason": reason})
