"""What a search answers (issue 16): pages of results with highlights, counts per
conversation, and the index's status. No IO."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tidings.core.models import ConversationId, Message


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A message the caller may see, and the code-point ranges [start, end) of
    `message.body` that matched (sorted, not overlapping)."""

    message: Message
    highlights: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class SearchCount:
    conversation_id: ConversationId
    count: int


@dataclass(frozen=True, slots=True)
class SearchPage:
    results: list[SearchResult]
    next_cursor: str | None
    counts: list[SearchCount]  # biggest first, each capped at search_count_limit
    counts_capped: bool


@dataclass(frozen=True, slots=True)
class IndexStatus:
    documents: int  # messages in the index
    pending_jobs: int  # search.index jobs waiting or running
    last_indexed_at: datetime | None  # the last index write (job or reindex)
