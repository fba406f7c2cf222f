"""The search index port: what services/search.py asks of the index. Two adapters,
chosen by the store's engine at start-up (app/container.py): search/fts5.py (SQLite FTS5,
the embedded default) and search/postgres.py (PostgreSQL full-text search, GIN). Both
index the same pre-segmented tokens (search/text.py) in the table `search_docs`
(migration 0016), keyed by (conversation_id, seq), in the store's own database: every
method runs in a transaction of the Store (`tx`), so that an index batch is written in
one write transaction with the messages it read, and a search reads the index and the
messages from one snapshot.

The index matches tokens exactly (a document matches when it carries every query token)
and applies the filters; the service resolves names, checks visibility rules it cannot
express here, verifies phrases and makes highlights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tidings.store.ports import Tx

# A token longer than this is cut to it, when indexing and when querying alike (a
# PostgreSQL lexeme is at most 2,047 bytes; no word is this long).
MAX_TOKEN_CHARS = 100


@dataclass(frozen=True, slots=True)
class SearchDoc:
    """One message as the index keeps it."""

    conversation_id: str
    seq: int
    message_id: str
    sender_id: str
    created_at_us: int  # microseconds since the epoch (UTC)
    tokens: tuple[str, ...]  # distinct index tokens: body and attachment file names
    has_file: bool
    has_link: bool
    mentions: tuple[str, ...]  # mentioned user ids
    thread_root_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """One conversation the caller may read, from `min_seq` (1: from the start; more
    when history is not shared with members added later) up to `max_seq` (None: all of
    it)."""

    conversation_id: str
    max_seq: int | None
    messages: int | None = None  # about how many messages it has up to max_seq (None: unknown)
    min_seq: int = 1

    @property
    def bounded(self) -> bool:
        return self.max_seq is not None or self.min_seq > 1


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """What a document must satisfy. `tokens`: every one (none: filters only);
    `scopes`: in one of these conversations within its seq limit (never empty: the
    service answers an empty scope itself)."""

    scopes: tuple[Scope, ...]
    tokens: tuple[str, ...] = ()
    sender_ids: tuple[str, ...] = ()  # one of them (empty: anyone)
    after_us: int | None = None  # created_at_us >= after_us
    before_us: int | None = None  # created_at_us < before_us
    has_file: bool = False
    has_link: bool = False
    mentions: str | None = None  # this user id is mentioned
    is_thread: bool = False  # a reply in a thread (thread_root_seq set)


@dataclass(frozen=True, slots=True)
class Hit:
    """A matching document: its key, its time, and its score (relevance order only;
    higher is better; 0.0 in newest order)."""

    conversation_id: str
    seq: int
    created_at_us: int
    score: float = 0.0


# newest order: the key after which the next page starts (created_at_us, conversation, seq)
After = tuple[int, str, int]
Order = Literal["newest", "relevance"]


class SearchIndex(Protocol):
    """The index. `tx` is a transaction of the Store (a write one for writes)."""

    async def put(self, tx: Tx, docs: Sequence[SearchDoc]) -> None:
        """Insert or replace these documents (keyed by conversation_id, seq)."""
        ...

    async def remove(self, tx: Tx, keys: Sequence[tuple[str, int]]) -> None:
        """Remove the documents of these (conversation_id, seq); absent ones are skipped."""
        ...

    async def newest(
        self, tx: Tx, query: IndexQuery, *, after: After | None, limit: int
    ) -> list[Hit]:
        """Matches newest first (created_at_us, then conversation_id, then seq, all
        descending), strictly after `after` in that order."""
        ...

    async def ranked(self, tx: Tx, query: IndexQuery, *, window: int) -> list[Hit]:
        """The `window` newest matches, best first (score, then newest)."""
        ...

    async def counts(self, tx: Tx, query: IndexQuery, *, scan: int) -> tuple[dict[str, int], bool]:
        """Matches per conversation among at most `scan` matches, and whether there
        were more than `scan` (then the counts are lower bounds)."""
        ...

    async def documents(self, tx: Tx) -> int:
        """How many documents the index holds."""
        ...


class NoIndex:
    """An index that keeps nothing and finds nothing: for services built without one
    (Services.build's default; the container always gives the store's)."""

    async def put(self, tx: Tx, docs: Sequence[SearchDoc]) -> None:
        return None

    async def remove(self, tx: Tx, keys: Sequence[tuple[str, int]]) -> None:
        return None

    async def newest(
        self, tx: Tx, query: IndexQuery, *, after: After | None, limit: int
    ) -> list[Hit]:
        return []

    async def ranked(self, tx: Tx, query: IndexQuery, *, window: int) -> list[Hit]:
        return []

    async def counts(self, tx: Tx, query: IndexQuery, *, scan: int) -> tuple[dict[str, int], bool]:
        return {}, False

    async def documents(self, tx: Tx) -> int:
        return 0
