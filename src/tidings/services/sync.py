"""The event stream a client resumes from."""

from __future__ import annotations

from tidings.core.errors import InvalidPosition
from tidings.core.models import StoredEvent, User
from tidings.services.context import Deps


def parse_position(raw: str | None) -> int:
    """Positions are opaque to clients; today they are non-negative integers."""
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise InvalidPosition("position is not one this server gave out", position=raw)
    return int(raw)


class SyncService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def head(self) -> int:
        async with self.d.store.read() as tx:
            return await tx.head_position()

    async def events_since(
        self, actor: User, since: int, limit: int
    ) -> tuple[list[StoredEvent], bool]:
        """Events after `since` that the caller may see, in position order; and whether
        more remain."""
        limit = max(1, min(limit, self.d.limits.sync_page_max))
        async with self.d.store.read() as tx:
            head = await tx.head_position()
            if since > head:
                raise InvalidPosition("position is ahead of the stream", position=str(since))
            events = await tx.events_for_user(actor.id, since, limit + 1)
        return events[:limit], len(events) > limit
