"""Backups as the database sees them: the outcome of the last one (for /metrics and
the operator), and what a restore must change so that no stream position is given out
twice.

The archive itself (its format, the database dump, the checks) is app/backup.py, which
calls the engine's dump; this module only reads and writes the database's records.

Positions after a restore. A backup holds the stream up to its head H. The server it
was taken from may have gone on to H + k before it was lost, and its clients saw those
positions. A restored server that numbered its new events H + 1, H + 2, … would give a
client that saw H + 5 of the lost timeline the new events after H + 5 and none of
H + 1 … H + 5 — a silent gap, with message seqs re-used under it. So `restored` moves
the counter forward by a gap G (setting backup_restore_position_gap, 10^9 by default:
more events than a server makes between two backups) and records the range (H, H + G]
in `meta`: a `since` in a recorded range is refused with `invalid_position`, forever
(services/sync.py), and the client resyncs. A `since` at or below H is of the common
past and resumes as usual.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import orjson

from tidings.core.audit import AuditAction
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.sync import RESTORES_KEY, restored_ranges

LAST_BACKUP_KEY = "backup_last"
LAST_SUCCESS_KEY = "backup_last_success"  # the newest successful one (gauges of /metrics)


@dataclass(frozen=True, slots=True)
class BackupStatus:
    """One backup's outcome; the newest is kept in `meta` (`BackupService.last`). The
    gauges of /metrics: `at` (time), `bytes` (size), `ok` (outcome), `seconds`."""

    at: datetime
    ok: bool
    file: str  # the archive's name (not its directory)
    bytes: int = 0
    seconds: float = 0.0
    stream_head: int | None = None
    scheduled: bool = False
    error: str | None = None

    def json(self) -> dict[str, object]:
        out = asdict(self)
        out["at"] = self.at.isoformat()
        return out

    @classmethod
    def of(cls, raw: dict[str, object]) -> BackupStatus:
        return cls(
            at=datetime.fromisoformat(str(raw["at"])),
            ok=bool(raw["ok"]),
            file=str(raw.get("file", "")),
            bytes=int(str(raw.get("bytes") or 0)),
            seconds=float(str(raw.get("seconds") or 0.0)),
            stream_head=None if raw.get("stream_head") is None else int(str(raw["stream_head"])),
            scheduled=bool(raw.get("scheduled", False)),
            error=None if raw.get("error") is None else str(raw["error"]),
        )


@dataclass(frozen=True, slots=True)
class Restored:
    backup_head: int  # the stream head in the backup
    resumed_at: int  # the head after the restore: the next event takes resumed_at + 1


class BackupService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def last(self) -> BackupStatus | None:
        """The last backup's outcome (None: never one), for /metrics and the CLI."""
        return await self._read(LAST_BACKUP_KEY)

    async def last_success(self, *, scheduled: bool = False) -> BackupStatus | None:
        """The newest successful backup (`scheduled`: the newest scheduled one), for
        /metrics: a failure after it leaves it as it was. None: none yet."""
        found = await self._read(LAST_SUCCESS_KEY + (":scheduled" if scheduled else ""))
        if found is None:  # recorded before these keys existed: the last one, if it fits
            last = await self.last()
            if last is not None and last.ok and (last.scheduled or not scheduled):
                return last
        return found

    async def _read(self, key: str) -> BackupStatus | None:
        async with self.d.store.read() as tx:
            raw = await tx.get_meta(key)
        if raw is None:
            return None
        try:
            return BackupStatus.of(orjson.loads(raw))
        except (ValueError, KeyError, TypeError):
            return None

    async def record(self, status: BackupStatus) -> None:
        """Keep `status` as the last backup's; a backup made is also an audit entry
        (everything the server holds left in a file)."""
        async with self.d.store.write() as tx:
            doc = orjson.dumps(status.json()).decode()
            await tx.set_meta(LAST_BACKUP_KEY, doc)
            if status.ok:
                await tx.set_meta(LAST_SUCCESS_KEY, doc)
                if status.scheduled:
                    await tx.set_meta(LAST_SUCCESS_KEY + ":scheduled", doc)
                await record(
                    tx,
                    self.d.clock,
                    AuditAction.BACKUP_CREATED,
                    actor_id=None,
                    details={
                        "file": status.file,
                        "bytes": status.bytes,
                        "stream_head": status.stream_head,
                        "scheduled": status.scheduled,
                    },
                )

    async def restored(self, *, backup_head: int, gap: int, details: dict[str, object]) -> Restored:
        """Right after a restore (the server stopped): move the stream counter forward
        by `gap`, record the refused range, move the event consumers' cursors that were
        at the head along (nothing lies in the gap), and write the audit entry."""
        async with self.d.store.write() as tx:
            head = await tx.head_position()
            resumed_at = await tx.move_head(head + gap)
            ranges = restored_ranges(await tx.get_meta(RESTORES_KEY))
            ranges.append((head, resumed_at))
            await tx.set_meta(RESTORES_KEY, orjson.dumps(ranges).decode())
            for name, cursor in (await tx.job_cursors()).items():
                if cursor >= head:
                    await tx.move_job_cursor(name, resumed_at)
            await record(
                tx,
                self.d.clock,
                AuditAction.BACKUP_RESTORED,
                actor_id=None,
                details={
                    **details,
                    "backup_head": backup_head,
                    "head": head,
                    "resumed_at": resumed_at,
                },
            )
        return Restored(backup_head=head, resumed_at=resumed_at)
