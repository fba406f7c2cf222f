"""The notification policy (core/notify.py): every rule, do not disturb schedules
across midnight and in time zones, @all / @channel / @here, who may mention everyone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tidings.core.errors import MentionNotAllowed
from tidings.core.models import ConversationKind, MemberRole, OrgRole, User, UserId
from tidings.core.notify import (
    Dnd,
    DndSchedule,
    EveryoneMention,
    MemberNotify,
    NotifyLevel,
    default_level,
    dnd_active,
    is_mentioned,
    should_notify,
)
from tidings.core.rules import (
    MentionAllPolicy,
    check_can_mention_everyone,
    everyone_mention,
    mentioned_usernames,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DIRECT, GROUP, CHANNEL = ConversationKind.DIRECT, ConversationKind.GROUP, ConversationKind.CHANNEL
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def notify(
    *,
    dnd: Dnd = Dnd(),
    member: MemberNotify = MemberNotify(),
    kind: ConversationKind = GROUP,
    mentioned: bool = False,
    own: bool = False,
    now: datetime = NOW,
    zone: ZoneInfo | None = None,
) -> bool:
    return should_notify(
        dnd=dnd,
        zone=zone or UTC,
        member=member,
        kind=kind,
        mentioned=mentioned,
        own=own,
        now=now,
    )


def test_defaults_all_in_direct_and_group_mentions_in_channels() -> None:
    assert default_level(DIRECT) is default_level(GROUP) is NotifyLevel.ALL
    assert default_level(CHANNEL) is NotifyLevel.MENTIONS
    assert notify(kind=DIRECT) and notify(kind=GROUP)
    assert not notify(kind=CHANNEL)
    assert notify(kind=CHANNEL, mentioned=True)


def test_own_messages_never_notify() -> None:
    assert not notify(own=True)
    assert not notify(own=True, mentioned=True, member=MemberNotify(NotifyLevel.ALL))


@pytest.mark.parametrize("kind", list(ConversationKind))
def test_levels(kind: ConversationKind) -> None:
    everything = MemberNotify(NotifyLevel.ALL)
    mentions = MemberNotify(NotifyLevel.MENTIONS)
    nothing = MemberNotify(NotifyLevel.NONE)
    assert notify(kind=kind, member=everything) and notify(
        kind=kind, member=everything, mentioned=True
    )
    assert not notify(kind=kind, member=mentions) and notify(
        kind=kind, member=mentions, mentioned=True
    )
    assert not notify(kind=kind, member=nothing) and not notify(
        kind=kind, member=nothing, mentioned=True
    )


def test_mute_silences_everything_until_its_time() -> None:
    forever = MemberNotify(NotifyLevel.ALL, muted=True)
    assert forever.muted_at(NOW + timedelta(days=3650))
    assert not notify(member=forever) and not notify(member=forever, mentioned=True)
    until = MemberNotify(None, muted=True, muted_until=NOW + timedelta(hours=1))
    assert not notify(member=until, mentioned=True)
    assert not notify(member=until, now=NOW + timedelta(minutes=59, seconds=59))
    assert notify(member=until, now=NOW + timedelta(hours=1))  # the end is not muted
    # a time without `muted` is nothing
    assert notify(member=MemberNotify(None, muted=False, muted_until=NOW + timedelta(hours=1)))


def test_dnd_until_a_time() -> None:
    dnd = Dnd(until=NOW + timedelta(minutes=30))
    assert dnd_active(dnd, UTC, NOW)
    assert not notify(dnd=dnd) and not notify(dnd=dnd, mentioned=True, kind=DIRECT)
    assert not dnd_active(dnd, UTC, NOW + timedelta(minutes=30))
    assert notify(dnd=dnd, now=NOW + timedelta(minutes=30))
    assert not dnd_active(Dnd(until=NOW - timedelta(seconds=1)), UTC, NOW)
    assert not dnd_active(Dnd(), UTC, NOW)


def test_dnd_schedule_within_a_day() -> None:
    lunch = DndSchedule(time(12, 0), time(13, 30))
    at = lambda h, m: datetime(2026, 12, 3, h, m, tzinfo=UTC)  # noqa: E731
    dnd = Dnd(schedule=lunch)
    assert not dnd_active(dnd, UTC, at(11, 59))
    assert dnd_active(dnd, UTC, at(12, 0))  # from start, inclusive
    assert dnd_active(dnd, UTC, at(13, 29))
    assert not dnd_active(dnd, UTC, at(13, 30))  # to end, exclusive
    assert not notify(dnd=dnd, now=at(12, 45)) and notify(dnd=dnd, now=at(14, 0))


def test_dnd_schedule_across_midnight() -> None:
    night = Dnd(schedule=DndSchedule(time(22, 0), time(7, 0)))
    at = lambda d, h, m: datetime(2026, 12, d, h, m, 30, tzinfo=UTC)  # noqa: E731
    for d, h, m, on in [
        (3, 21, 59, False),
        (3, 22, 0, True),
        (3, 23, 59, True),
        (4, 0, 0, True),
        (4, 6, 59, True),
        (4, 7, 0, False),
        (4, 12, 0, False),
    ]:
        assert dnd_active(night, UTC, at(d, h, m)) is on, (d, h, m)


def test_dnd_schedule_follows_the_time_zone() -> None:
    night = Dnd(schedule=DndSchedule(time(22, 0), time(7, 0)))
    utc_1430 = datetime(2026, 12, 3, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai, 09:30 in NY
    assert dnd_active(night, SHANGHAI, utc_1430)
    assert not dnd_active(night, NEW_YORK, utc_1430)
    assert not dnd_active(night, UTC, utc_1430)
    assert not notify(dnd=night, zone=SHANGHAI, now=utc_1430)
    assert notify(dnd=night, zone=NEW_YORK, now=utc_1430)
    # 02:30 UTC: 21:30 in New York (EST, -5), 10:30 in Shanghai
    utc_0230 = datetime(2026, 12, 4, 2, 30, tzinfo=UTC)
    assert not dnd_active(night, NEW_YORK, utc_0230) and not dnd_active(night, SHANGHAI, utc_0230)
    assert dnd_active(night, NEW_YORK, utc_0230 + timedelta(minutes=30))
    # summer time: 22:00 in New York is 02:00 UTC in July (EDT, -4)
    july = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
    assert dnd_active(night, NEW_YORK, july)
    assert not dnd_active(night, NEW_YORK, july - timedelta(minutes=1))


def test_dnd_wins_over_mentions_and_levels() -> None:
    dnd = Dnd(until=NOW + timedelta(hours=1))
    assert not notify(dnd=dnd, member=MemberNotify(NotifyLevel.ALL), mentioned=True, kind=DIRECT)


def test_mentions_by_name_and_everyone() -> None:
    me = "u1"
    assert is_mentioned(me, ("u1", "u2"), None, online=False)
    assert not is_mentioned(me, ("u2",), None, online=True)
    for everyone in (EveryoneMention.ALL, EveryoneMention.CHANNEL):
        assert is_mentioned(me, (), everyone, online=False)
    assert is_mentioned(me, (), EveryoneMention.HERE, online=True)
    assert not is_mentioned(me, (), EveryoneMention.HERE, online=False)
    assert is_mentioned(me, ("u1",), EveryoneMention.HERE, online=False)


def test_everyone_mentions_are_parsed_like_usernames() -> None:
    assert everyone_mention("@all hi") is EveryoneMention.ALL
    assert everyone_mention("hi @Channel.") is EveryoneMention.CHANNEL
    assert everyone_mention("请@here看一下") is EveryoneMention.HERE
    assert everyone_mention("@here and @all") is EveryoneMention.ALL  # the widest wins
    assert everyone_mention("@channel @here") is EveryoneMention.CHANNEL
    for none in ("all hands", "a@all.com", "@allison", "@@all", "@here_now", ""):
        assert everyone_mention(none) is None, none
    assert mentioned_usernames("@all @here @channel @bob") == {"bob"}


def _user(role: OrgRole = OrgRole.MEMBER) -> User:
    return User(UserId("u"), "u", "U", role, False, NOW)


def test_who_may_mention_everyone() -> None:
    policy = MentionAllPolicy(MemberRole.MEMBER, MemberRole.MODERATOR, large_members=50)
    member, mod, owner = MemberRole.MEMBER, MemberRole.MODERATOR, MemberRole.OWNER
    check_can_mention_everyone(policy, EveryoneMention.ALL, _user(), member, 50)
    with pytest.raises(MentionNotAllowed) as refused:
        check_can_mention_everyone(policy, EveryoneMention.HERE, _user(), member, 51)
    assert refused.value.details == {"mention": "here", "min_role": "moderator", "member_count": 51}
    check_can_mention_everyone(policy, EveryoneMention.ALL, _user(), mod, 51)
    check_can_mention_everyone(policy, EveryoneMention.ALL, _user(), owner, 51)
    check_can_mention_everyone(policy, EveryoneMention.ALL, _user(OrgRole.ADMIN), member, 10_000)
    strict = MentionAllPolicy(MemberRole.MODERATOR, MemberRole.OWNER, large_members=5)
    with pytest.raises(MentionNotAllowed):
        check_can_mention_everyone(strict, EveryoneMention.ALL, _user(), member, 2)
    check_can_mention_everyone(strict, EveryoneMention.ALL, _user(), mod, 5)
    with pytest.raises(MentionNotAllowed) as refused:
        check_can_mention_everyone(strict, EveryoneMention.CHANNEL, _user(), mod, 6)
    assert "only owners" in refused.value.message
    check_can_mention_everyone(strict, EveryoneMention.ALL, _user(OrgRole.OWNER), member, 6)
    # a direct conversation has no roles: both may
    direct = ConversationKind.DIRECT
    check_can_mention_everyone(strict, EveryoneMention.HERE, _user(), member, 2, direct)
