"""Notification settings: per member and conversation, the level (all, mentions, none)
and a mute (until a time, or until unmuted); per user, do not disturb (until a time,
and/or a daily schedule in the profile's time zone). Stored in `members.notify_level`,
`members.muted`, `members.muted_until` and `users.dnd_until`, `users.dnd_start`,
`users.dnd_end` (migration 0020).

What notifies is decided by one pure policy, core/notify.py:should_notify; this module
only keeps the settings and gives a notifier what that policy takes (`recipient`). A
change is an event to the user's own connections only (`notifications_updated`,
`dnd_updated`): other tabs follow it, nobody else ever sees it. No audit entry: a
person's own preferences, nothing security-relevant. Each change counts against
`rate_membership_per_user`, like the profile's.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo

from tidings.core.errors import InvalidRequest
from tidings.core.events import DndUpdated, NotificationsUpdated
from tidings.core.models import (
    Conversation,
    Dnd,
    DndSchedule,
    MemberNotify,
    MemberRole,
    NotifyLevel,
    User,
    UserId,
)
from tidings.core.rules import MentionAllPolicy
from tidings.services.access import access_conversation
from tidings.services.context import Deps
from tidings.services.events import EventBatch
from tidings.services.ratelimit import Action, RateLimiter

HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")  # whole: fullmatch (`$` passes a "\n")


class Unset:
    """A field the request left out (None is a value: it clears)."""

    __slots__ = ()


UNSET = Unset()


@dataclass(frozen=True, slots=True)
class MemberNotifyChange:
    """What PUT /conversations/{cid}/notifications changes; UNSET stays as it is.
    `level` None: back to the kind's default. `muted_until` (RFC 3339, in the future)
    mutes until then; given without `muted`, it implies muted."""

    level: str | Unset | None = UNSET
    muted: bool | Unset = UNSET
    muted_until: str | Unset | None = UNSET


@dataclass(frozen=True, slots=True)
class DndChange:
    """What PUT /users/me/notifications changes; UNSET stays, None turns it off.
    `schedule`: (start, end) as "HH:MM" local times, start != end."""

    until: str | Unset | None = UNSET
    schedule: tuple[str, str] | Unset | None = UNSET


@dataclass(frozen=True, slots=True)
class Recipient:
    """What core/notify.py:should_notify takes about one user, read together."""

    dnd: Dnd
    zone: tzinfo


def zone_of(user: User) -> tzinfo:
    """The user's profile time zone (UTC when they set none or it is unknown here)."""
    name = user.preferences.time_zone
    if not name:
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def check_level(raw: str) -> NotifyLevel:
    try:
        return NotifyLevel(raw)
    except ValueError as exc:
        raise InvalidRequest("level must be one of all, mentions, none", field="level") from exc


def check_future_time(raw: str, field: str, now: datetime) -> datetime:
    """An RFC 3339 time with a zone, after `now`, in UTC."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{field} is not an RFC 3339 time", field=field) from exc
    if moment.tzinfo is None:
        raise InvalidRequest(f"{field} needs a time zone (RFC 3339)", field=field)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidRequest(f"{field} is too far ahead", field=field) from exc
    if moment <= now:
        raise InvalidRequest(f"{field} must be in the future", field=field)
    return moment


def check_schedule(start: str, end: str) -> DndSchedule:
    for name, raw in (("start", start), ("end", end)):
        if not isinstance(raw, str) or not HHMM.fullmatch(raw):
            raise InvalidRequest(
                f"dnd_schedule.{name} must be a 24-hour local time HH:MM",
                field=f"dnd_schedule.{name}",
            )
    if start == end:
        raise InvalidRequest("dnd_schedule.start and end must differ", field="dnd_schedule.end")
    return DndSchedule(time.fromisoformat(start), time.fromisoformat(end))


def mention_all_policy(deps: Deps) -> MentionAllPolicy:
    """Who may mention everyone, from the settings in force (mention_all_*)."""
    limits = deps.limits
    return MentionAllPolicy(
        MemberRole(limits.mention_all_min_role),
        MemberRole(limits.mention_all_large_min_role),
        limits.mention_all_large_members,
    )


class NotificationService:
    def __init__(self, deps: Deps, limiter: RateLimiter) -> None:
        self.d = deps
        self.limiter = limiter

    async def member_settings(
        self, actor: User, conversation_id: str
    ) -> tuple[Conversation, MemberNotify]:
        """The caller's settings in a conversation they are an active member of."""
        async with self.d.store.read() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
        return conv, member.notify

    async def set_member(
        self, actor: User, conversation_id: str, change: MemberNotifyChange
    ) -> tuple[Conversation, MemberNotify]:
        """Change the caller's level and mute in a conversation they are an active
        member of (others: not_found). Validated whole first; a change that changes
        nothing writes nothing and tells nobody. An archived conversation's settings
        may still change (they are the member's, not the conversation's)."""
        await self.limiter.check(Action.MEMBERSHIP, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv, member = await access_conversation(tx, actor, conversation_id)
            before = member.notify
            after = _apply_member(before, change, now)
            if after == before:
                return conv, before
            await tx.set_member_notify(conv.id, actor.id, after)
            batch = EventBatch(tx, self.d.bus, now)
            batch.add(NotificationsUpdated(conv.id, actor.id, after, now))
            await batch.flush()
        return conv, after

    async def dnd(self, actor: User) -> Dnd:
        async with self.d.store.read() as tx:
            return await tx.get_dnd(actor.id)

    async def set_dnd(self, actor: User, change: DndChange) -> Dnd:
        """Change the caller's do not disturb; `dnd_updated` to their connections."""
        await self.limiter.check(Action.MEMBERSHIP, actor.id, None)
        now = self.d.clock.now()
        until = change.until
        new_until = (
            UNSET
            if isinstance(until, Unset)
            else None
            if until is None
            else check_future_time(until, "dnd_until", now)
        )
        sch = change.schedule
        new_schedule = (
            UNSET if isinstance(sch, Unset) else None if sch is None else check_schedule(*sch)
        )
        async with self.d.store.write() as tx:
            before = await tx.get_dnd(actor.id)
            after = Dnd(
                until=before.until if isinstance(new_until, Unset) else new_until,
                schedule=before.schedule if isinstance(new_schedule, Unset) else new_schedule,
            )
            if after == before:
                return before
            await tx.set_dnd(actor.id, after)
            batch = EventBatch(tx, self.d.bus, now)
            batch.add(DndUpdated(UserId(actor.id), after, now))
            await batch.flush()
        return after

    async def recipient(self, user: User) -> Recipient:
        """A user's do not disturb and time zone, for should_notify."""
        return Recipient(await self.dnd(user), zone_of(user))


def _apply_member(before: MemberNotify, change: MemberNotifyChange, now: datetime) -> MemberNotify:
    """The settings after `change`: `muted_until` (a time) mutes until then; `muted`
    true alone mutes until unmuted, false unmutes; `muted_until` null alone keeps the
    mute but drops its time. A mute whose time has passed reads as none."""
    level = before.level
    if not isinstance(change.level, Unset):
        level = None if change.level is None else check_level(change.level)
    until = None
    if isinstance(change.muted_until, str):
        until = check_future_time(change.muted_until, "muted_until", now)
        if change.muted is False:
            raise InvalidRequest(
                "muted_until is for muting: leave it out (or null) to unmute",
                field="muted_until",
            )
    if until is not None:
        return MemberNotify(level, True, until)
    if change.muted is True:
        return MemberNotify(level, True, None)
    if change.muted is False:
        return MemberNotify(level, False, None)
    if not before.muted_at(now):
        return MemberNotify(level, False, None)
    keep = None if change.muted_until is None else before.muted_until
    return MemberNotify(level, True, keep)
