"""Your own profile: the display name and custom status others see beside your name,
and your preferences (the web client's language, your time zone, the theme).

What others see changes through one event kind, `user_updated`: one per conversation
you are a member of (every member holds your name; a client that missed it resumes and
gets it) and one for your own connections that also carries the preferences, which are
never sent to anyone else. A custom status with `until` needs no timer: from then on
it reads as none (REST answers compute it, clients compare `until` with their clock).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tidings.bus.ports import Bus
from tidings.core.audit import AuditAction
from tidings.core.errors import InvalidOperation, InvalidRequest
from tidings.core.events import UserUpdated
from tidings.core.models import CustomStatus, Preferences, Session, Theme, User, UserOrigin
from tidings.core.rules import clean_text, search_key
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.events import EventBatch
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import Tx

# the languages of the web client (src/tidings/web/i18n/*.json)
LANGUAGES = ("en", "zh-CN")
DISPLAY_NAME_MAX_CHARS = 80  # as everywhere else (services/users.py)
EMOJI_MAX_CHARS = 16  # one emoji, sequences and flags included; not a sentence
TIME_ZONE_MAX_CHARS = 64


class Unset:
    """A field the request left out (None is a value here: it clears)."""

    __slots__ = ()


UNSET = Unset()


@dataclass(frozen=True, slots=True)
class StatusChange:
    text: str
    emoji: str
    until: str | None  # RFC 3339 with a zone, in the future


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """What a request changes; UNSET fields stay as they are, None clears (language and
    time zone: the device's again; status: none)."""

    display_name: str | Unset = UNSET
    language: str | Unset | None = UNSET
    time_zone: str | Unset | None = UNSET
    theme: str | Unset = UNSET
    status: StatusChange | Unset | None = UNSET


def check_language(raw: str) -> str:
    if raw not in LANGUAGES:
        raise InvalidRequest(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    return raw


def check_time_zone(raw: str) -> str:
    """An IANA time zone name ("Asia/Shanghai", "UTC") the server's tz database knows."""
    if len(raw) > TIME_ZONE_MAX_CHARS or not raw or raw.startswith("/") or ".." in raw:
        raise InvalidRequest("time_zone is not an IANA time zone name", field="time_zone")
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidRequest("time_zone is not an IANA time zone name", field="time_zone") from exc
    return raw


def check_theme(raw: str) -> Theme:
    try:
        return Theme(raw)
    except ValueError as exc:
        raise InvalidRequest("theme must be one of system, light, dark", field="theme") from exc


def check_status(change: StatusChange, now: datetime, max_chars: int) -> CustomStatus | None:
    """A custom status: text within `max_chars`, at most one emoji's worth of characters,
    `until` in the future. Text and emoji both empty: no status."""
    text = clean_text(change.text, field="status.text", max_chars=max_chars, allow_empty=True)
    emoji = clean_text(
        change.emoji, field="status.emoji", max_chars=EMOJI_MAX_CHARS, allow_empty=True
    )
    if " " in emoji:
        raise InvalidRequest("status.emoji must be one emoji", field="status.emoji")
    until = None
    if change.until is not None:
        try:
            until = datetime.fromisoformat(change.until)
        except ValueError as exc:
            raise InvalidRequest(
                "status.until is not an RFC 3339 time", field="status.until"
            ) from exc
        if until.tzinfo is None:
            raise InvalidRequest("status.until needs a time zone (RFC 3339)", field="status.until")
        try:
            until = until.astimezone(UTC)  # kept and answered in UTC
        except OverflowError as exc:  # 9999-12-31T23:59-14:00 is past the year 9999
            raise InvalidRequest("status.until is too far ahead", field="status.until") from exc
        if until <= now:
            raise InvalidRequest("status.until must be in the future", field="status.until")
    if not text and not emoji:
        return None
    return CustomStatus(text, emoji, until)


class ProfileService:
    def __init__(self, deps: Deps, limiter: RateLimiter) -> None:
        self.d = deps
        self.limiter = limiter

    async def mine(self, session: Session) -> User:
        async with self.d.store.read() as tx:
            user = await tx.get_user(session.user.id)
        return user or session.user

    async def update(self, session: Session, change: ProfileChange) -> User:
        """Validate every field first (nothing is written when one is wrong), then write,
        audit the names of the fields changed, and tell whoever sees them."""
        # a change fans out to every conversation of the caller, like a rename
        await self.limiter.check(Action.MEMBERSHIP, session.user.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            before = await tx.get_user(session.user.id)
            assert before is not None  # the session is live: its user exists
            after = self._apply(before, change, now)
            changed = _changed_fields(before, after)
            if not changed:
                return before
            await tx.set_profile(
                before.id,
                display_name=after.display_name,
                search_key=search_key(after.username, after.display_name),
                status=after.status,
                preferences=after.preferences,
            )
            await record(
                tx,
                self.d.clock,
                AuditAction.USER_UPDATED,
                actor_id=before.id,
                target_id=before.id,
                details={"fields": changed},
            )
            public = bool({"display_name", "status"} & set(changed))
            await announce(tx, self.d.bus, after, now, public=public)
        return after

    def _apply(self, user: User, change: ProfileChange, now: datetime) -> User:
        prefs = user.preferences
        name = user.display_name
        status = user.status
        if not isinstance(change.display_name, Unset):
            if user.origin is not UserOrigin.LOCAL:
                raise InvalidOperation(
                    "this account's display name is kept by its identity provider "
                    f"({user.origin.value})",
                    user_id=user.id,
                )
            name = clean_text(
                change.display_name, field="display_name", max_chars=DISPLAY_NAME_MAX_CHARS
            )
        if not isinstance(change.language, Unset):
            lang = None if change.language is None else check_language(change.language)
            prefs = replace(prefs, language=lang)
        if not isinstance(change.time_zone, Unset):
            zone = None if change.time_zone is None else check_time_zone(change.time_zone)
            prefs = replace(prefs, time_zone=zone)
        if not isinstance(change.theme, Unset):
            prefs = replace(prefs, theme=check_theme(change.theme))
        if not isinstance(change.status, Unset):
            status = (
                None
                if change.status is None
                else check_status(change.status, now, self.d.limits.custom_status_max_chars)
            )
        return replace(user, display_name=name, status=status, preferences=prefs)


async def announce(tx: Tx, bus: Bus, user: User, now: datetime, *, public: bool = True) -> None:
    """`user_updated` for a user as they are now: to every conversation they are a member
    of (`public`: what others see changed) and to their own connections."""
    batch = EventBatch(tx, bus, now)
    if public:
        for cid in await tx.active_conversation_ids(user.id):
            batch.add(UserUpdated(conversation_id=cid, user=user, at=now))
    batch.add(UserUpdated(conversation_id=None, user=user, at=now))
    await batch.flush()


def _changed_fields(before: User, after: User) -> list[str]:
    fields = []
    if before.display_name != after.display_name:
        fields.append("display_name")
    if before.status != after.status:
        fields.append("status")
    a: Preferences = before.preferences
    b: Preferences = after.preferences
    fields += [f for f in ("language", "time_zone", "theme") if getattr(a, f) != getattr(b, f)]
    return fields
