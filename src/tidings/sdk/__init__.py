"""Tidings Python SDK: an asyncio client and a bot framework.

>>> from tidings.sdk import Client
>>> async with Client("http://127.0.0.1:8080") as client:   # doctest: +SKIP
...     await client.login("alice", "secret")
...     msg = await client.send(conversation_id, "hello")

The SDK depends only on the standard library, httpx, websockets and orjson; it never
imports the server's modules, so it can be used from any Python 3.11+ program.
"""

from tidings.sdk.bot import Bot, Context, parse_duration
from tidings.sdk.client import Client, EventStream, backoff_delay, position_key
from tidings.sdk.errors import (
    APIError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    StreamClosed,
    TidingsError,
    TooLarge,
    Unauthenticated,
)
from tidings.sdk.models import (
    Conversation,
    ConversationCreated,
    ConversationUpdated,
    Department,
    Event,
    HistoryPage,
    JobInfo,
    JobStats,
    Member,
    MemberAdded,
    MemberRemoved,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    PresenceChanged,
    ReactionChanged,
    ReadMoved,
    ReadState,
    SecondFactor,
    SyncPage,
    TotpEnrolment,
    Typing,
    UnknownEvent,
    User,
    parse_event,
)

__all__ = [
    "APIError",
    "Bot",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Context",
    "Conversation",
    "ConversationCreated",
    "ConversationUpdated",
    "Department",
    "Event",
    "EventStream",
    "Forbidden",
    "HistoryPage",
    "InvalidRequest",
    "JobInfo",
    "JobStats",
    "Member",
    "MemberAdded",
    "MemberRemoved",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "MessageSent",
    "NotFound",
    "PresenceChanged",
    "RateLimited",
    "ReactionChanged",
    "ReadMoved",
    "ReadState",
    "SecondFactor",
    "ServerError",
    "StreamClosed",
    "SyncPage",
    "TidingsError",
    "TooLarge",
    "TotpEnrolment",
    "Typing",
    "Unauthenticated",
    "UnknownEvent",
    "User",
    "backoff_delay",
    "parse_duration",
    "parse_event",
    "position_key",
]
