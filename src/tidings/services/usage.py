"""Usage statistics for the admin console: messages and active people per day, storage.

Active users of a day are the distinct people (bots left out) who sent at least one
message that day (UTC): sessions keep only their latest sighting, so they cannot say
who was active on an earlier day, while every message keeps its sender and time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tidings.core.errors import InvalidRequest
from tidings.core.models import User
from tidings.core.rules import check_admin
from tidings.services.context import Deps


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date  # a UTC day
    messages: int  # messages sent that day (recalled ones included)
    active_users: int  # distinct people (not bots) who sent a message that day


@dataclass(frozen=True, slots=True)
class UsageStats:
    days: list[DayUsage]  # oldest first, today (UTC) last
    database_bytes: int  # the database's size on disk
    blob_bytes: int  # stored files (0: this server stores no files yet)


class UsageService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def usage(self, actor: User | None, days: int = 30) -> UsageStats:
        """Admins only (`actor` None: the operator at the command line). The last
        `days` UTC days up to today, 1 to the setting usage_stats_max_days; one read
        of the messages in that window and one of the database's size."""
        check_admin(actor, "see usage statistics")
        cap = self.d.limits.usage_stats_max_days
        if not 1 <= days <= cap:
            raise InvalidRequest(f"days must be 1 to {cap}", field="days")
        today = self.d.clock.now().astimezone(UTC).date()
        first = today - timedelta(days=days - 1)
        dates = [first + timedelta(days=i) for i in range(days)]
        starts = [datetime.combine(d, time(), tzinfo=UTC) for d in dates]
        async with self.d.store.read() as tx:
            counts = await tx.usage_per_day(starts)
            size = await tx.database_bytes()
        return UsageStats(
            days=[DayUsage(d, m, a) for d, (m, a) in zip(dates, counts, strict=True)],
            database_bytes=size,
            blob_bytes=0,
        )
