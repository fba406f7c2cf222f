"""Event kinds: what a client can see, each with a position in its stream."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    CONVERSATION_CREATED = "conversation_created"
    CONVERSATION_UPDATED = "conversation_updated"
    MESSAGE = "message"
    MESSAGE_EDITED = "message_edited"
    MESSAGE_DELETED = "message_deleted"
    REACTION = "reaction"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    READ = "read"
