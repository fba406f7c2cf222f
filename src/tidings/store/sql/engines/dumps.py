"""What every engine's database dump shares (`Engine.dump` / `check_dump` / `load_dump`,
used by `tidings backup`, app/backup.py): the facts read from the dump's own snapshot,
the callback that reports progress, and the errors.

Each engine makes a consistent copy in its own way (sqlite.py: the online backup API
inside one read transaction; postgres.py: pg_dump on a snapshot exported from a
repeatable-read transaction), and reads these facts in the SAME snapshot, so that the
manifest's stream head is exactly the newest event in the copy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# done, total (bytes or pages; total 0: unknown)
Progress = Callable[[int, int], None]


def no_progress(_done: int, _total: int) -> None:
    return None


class DumpFailed(Exception):
    """A dump could not be made, checked or loaded; the message is one line."""


# Each returns one row of one value, read in the dump's snapshot.
FACT_QUERIES: dict[str, str] = {
    "stream_head": "SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = 'events'",
    "max_event_position": "SELECT COALESCE(MAX(position), 0) FROM events",
    "schema_revision": "SELECT MAX(version_num) FROM alembic_version",
    "users": "SELECT COUNT(*) FROM users",
    "conversations": "SELECT COUNT(*) FROM conversations",
    "members": "SELECT COUNT(*) FROM members",
    "messages": "SELECT COUNT(*) FROM messages",
    "events": "SELECT COUNT(*) FROM events",
    "audit_entries": "SELECT COUNT(*) FROM audit_log",
    "audit_last_seq": "SELECT COALESCE(MAX(seq), 0) FROM audit_log",
}
# Key ids the database refers to (never the keys): sealed TOTP secrets, the signed head.
KEY_ID_QUERY = (
    "SELECT key_id FROM second_factors WHERE key_id IS NOT NULL UNION SELECT key_id FROM audit_head"
)
COUNTED = ("users", "conversations", "members", "messages", "events", "audit_entries")


@dataclass(frozen=True, slots=True)
class DumpFacts:
    """What a dump holds, read in its own snapshot."""

    stream_head: int
    schema_revision: str | None
    counts: dict[str, int]
    audit_last_seq: int
    key_ids: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, values: dict[str, object], key_ids: list[str]) -> DumpFacts:
        head = int(str(values["stream_head"] or 0))
        newest = int(str(values["max_event_position"] or 0))
        if newest > head:  # positions are reserved in the committing transaction
            raise DumpFailed(
                f"the copy is inconsistent: an event at {newest} beyond the stream head {head}"
            )
        revision = values["schema_revision"]
        return cls(
            stream_head=head,
            schema_revision=None if revision is None else str(revision),
            counts={name: int(str(values[name] or 0)) for name in COUNTED},
            audit_last_seq=int(str(values["audit_last_seq"] or 0)),
            key_ids=sorted({k for k in key_ids if k}),
        )


@dataclass(frozen=True, slots=True)
class DumpCheck:
    """What checking a dump found: `facts` where the engine can read them without
    loading the dump (SQLite), `summary` one line of what it holds."""

    summary: str
    facts: DumpFacts | None = None
