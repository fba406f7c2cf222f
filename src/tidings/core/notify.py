"""Whether a message should notify someone: the one policy every notifier follows.

The browser's Notification API (web/notify.js mirrors this module, rule for rule),
Web Push and email jobs all ask `should_notify`; none of them decides on its own.
Pure: no clock (`now` is given), no time zone database (the caller resolves the
user's IANA zone name to a `tzinfo`: services/notifications.py:zone_of), no IO.

The rules, in order (docs/protocol.md, "Notifications"):
1. Your own messages never notify you.
2. Do not disturb silences everything: until `dnd.until`, and every day within the
   schedule (`start` to `end`, local time in your zone; a schedule whose end is
   before its start crosses midnight: 22:00-07:00).
3. A muted conversation notifies nothing (until `muted_until`, if given).
4. The member's level: `all` notifies every message, `mentions` only those that
   mention you (by `@username`, or `@all` / `@channel` / `@here` to everyone), `none`
   nothing. A member who never chose has the kind's default: `all` in direct and
   group conversations, `mentions` in channels.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, tzinfo
from enum import StrEnum

from tidings.core.models import (
    ConversationKind,
    Dnd,
    DndSchedule,
    MemberNotify,
    NotifyLevel,
    default_level,
)

__all__ = [
    "Dnd",
    "DndSchedule",
    "EveryoneMention",
    "MemberNotify",
    "NotifyLevel",
    "counts_everyone",
    "default_level",
    "dnd_active",
    "is_mentioned",
    "should_notify",
]


class EveryoneMention(StrEnum):
    """A mention of everyone in the conversation: `@all` and `@channel` (the same: every
    member), `@here` (the members online when it is read)."""

    ALL = "all"
    CHANNEL = "channel"
    HERE = "here"


def dnd_active(dnd: Dnd, zone: tzinfo, now: datetime) -> bool:
    """Whether do not disturb is on at `now` (aware) for a user in `zone`."""
    if dnd.until is not None and now < dnd.until:
        return True
    if dnd.schedule is None:
        return False
    return dnd.schedule.covers(now.astimezone(zone).time())


def is_mentioned(
    user_id: str,
    mentions: Collection[str],
    everyone: EveryoneMention | None,
    *,
    online: bool,
) -> bool:
    """Whether a message mentions `user_id`: by name (`mentions`: the message's
    mentioned user ids), or everyone (`@all`, `@channel`), or `@here` while the user is
    `online` (a browser tab showing the message is; a push job asks presence)."""
    if user_id in mentions or everyone in (EveryoneMention.ALL, EveryoneMention.CHANNEL):
        return True
    return everyone is EveryoneMention.HERE and online


def counts_everyone(member: MemberNotify, kind: ConversationKind, now: datetime) -> bool:
    """Whether `@all` / `@channel` / `@here` count in the member's `unread_mentions`
    (the mention badge): as in rule 3 and 4 above, not while the conversation is muted
    nor at level `none` (the member asked not to hear of it: a mention of everyone is
    no call to them in person). A mention by `@username` always counts, and `@here`
    counts like `@all` (whoever looks at the badge is online, the browser's rule)."""
    return not member.muted_at(now) and member.level_for(kind) is not NotifyLevel.NONE


def should_notify(
    *,
    dnd: Dnd,
    zone: tzinfo = UTC,
    member: MemberNotify,
    kind: ConversationKind,
    mentioned: bool,
    own: bool,
    now: datetime,
) -> bool:
    """Whether a message notifies its recipient. `dnd` and `zone`: the recipient's do
    not disturb and time zone (their profile's `time_zone`; UTC when they set none);
    `member`: their settings in the conversation, of `kind`; `mentioned`: the message
    mentions them (is_mentioned); `own`: they sent it; `now`: an aware time."""
    if own or dnd_active(dnd, zone, now) or member.muted_at(now):
        return False
    level = member.level_for(kind)
    if level is NotifyLevel.ALL:
        return True
    return level is NotifyLevel.MENTIONS and mentioned
