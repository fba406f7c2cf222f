"""The event stream a client resumes from."""

from __future__ import annotations

import orjson

from tidings.core.errors import InvalidPosition
from tidings.core.events import ABOUT_KINDS, reaches
from tidings.core.models import MAX_STORED_INT, ConversationId, StoredEvent, User
from tidings.protocol.wire import event_of
from tidings.services.context import Deps
from tidings.store.ports import StreamSnapshot, Tx


def parse_position(raw: str | None) -> int:
    """Positions are opaque to clients; today they are non-negative integers."""
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_STORED_INT:
        raise InvalidPosition("position is not one this server gave out", position=raw)
    return int(raw)


# meta: the position ranges a restore left behind, JSON [[after, until], ...]
# (services/backup.py): a `since` with after < since <= until was given out by a
# timeline the restore discarded.
RESTORES_KEY = "restored_ranges"


def restored_ranges(raw: str | None) -> list[tuple[int, int]]:
    if not raw:
        return []
    return [(int(after), int(until)) for after, until in orjson.loads(raw)]


class SyncService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        # Read once per process: a restore happens with every server stopped.
        self._refused: list[tuple[int, int]] | None = None

    async def check_resumable(self, since: int) -> None:
        """Raise InvalidPosition for a position from before a restore: one the lost
        timeline gave out after the backup's head (services/backup.py). The client
        then resyncs, never resumes over a gap."""
        refused = self._refused
        if refused is None:
            async with self.d.store.read() as tx:
                refused = self._refused = restored_ranges(await tx.get_meta(RESTORES_KEY))
        for after, until in refused:
            if after < since <= until:
                raise InvalidPosition(
                    "position is from before this server was restored from a backup: "
                    "resync",
                    position=str(since),
                )

    async def head(self) -> int:
        """The stream head on the primary: every position up to it is committed."""
        async with self.d.store.read() as tx:
            return await tx.head_position()

    async def snapshot(self, actor: User) -> StreamSnapshot:
        """The stream head on the primary and the caller's conversations as of that
        head (with the first seq they may read in each, where not 1), from one
        snapshot: a new connection subscribes to these conversations and every event
        after the head then reaches it live (or by its replay)."""
        async with self.d.store.lookup() as q:
            return await q.stream_snapshot(actor.id)

    async def events_since(
        self, actor: User, since: int, limit: int, *, at_least: int = 0
    ) -> tuple[list[StoredEvent], bool]:
        """Events after `since` that the caller may see, in position order; and whether
        more remain. Those about a message before the first seq the caller may read in
        its conversation (core/events.py:reaches, the live fan-out's rule) are left
        out. May read a replica, but only one that has reached both `since` (the client
        never gets less than it saw) and `at_least`."""
        limit = max(1, min(limit, self.d.limits.sync_page_max))
        needed = max(since, at_least)
        await self.check_resumable(since)

        async def fresh_enough(tx: Tx) -> bool:
            return await tx.head_position() >= needed

        async with self.d.store.read_replica(fresh_enough) as tx:
            if since > await tx.head_position():
                raise InvalidPosition("position is ahead of the stream", position=str(since))
            events: list[StoredEvent] = []
            firsts: dict[ConversationId, int] | None = None  # read when first needed
            after = since
            while True:
                page = await tx.events_for_user(actor.id, after, limit + 1)
                for stored in page:
                    cid = stored.conversation_id
                    if cid is not None and stored.payload.get("kind") in ABOUT_KINDS:
                        about = event_of(stored).routing.about_seq
                        if about is not None:
                            if firsts is None:
                                firsts = await tx.first_seqs(actor.id)
                            if not reaches(firsts.get(cid, 1), about):
                                continue  # about a message before their range
                    events.append(stored)
                if len(events) > limit or len(page) <= limit:
                    break
                after = page[-1].position  # a page left short by what they may not see
        return events[:limit], len(events) > limit

    async def committed_between(self, after: int, until: int) -> list[StoredEvent]:
        """Every event with after < position <= until, from the primary (for gateways
        catching up on bus traffic they missed)."""
        async with self.d.store.read() as tx:
            return await tx.events_between(after, until)
