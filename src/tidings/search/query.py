"""The search query language (issue 16): free words, "exact phrases" and filters in
the query itself, e.g.

    from:alice in:#general before:2026-12-01 after:2026-11-01 has:file has:link
    is:thread mentions:me "exact phrase" 数据库 迁移

`parse(q)` gives a `ParsedQuery` with names unresolved (usernames, conversation names:
the service resolves them for the caller); a malformed filter raises
`tidings.core.errors.InvalidInput` naming it. CONTRACT: the dataclass fields are what
the service and the adapters use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    words: tuple[str, ...] = ()  # free words as typed (run through text.query_tokens later)
    phrases: tuple[str, ...] = ()  # "exact phrases" as typed, without the quotes
    from_users: tuple[str, ...] = ()  # from:NAME (usernames, without @)
    in_conversations: tuple[str, ...] = ()  # in:#name or in:<conversation id>
    before: date | None = None  # before:YYYY-MM-DD (messages sent before that day, UTC)
    after: date | None = None  # after:YYYY-MM-DD (messages sent after that day, UTC)
    has_file: bool = False
    has_link: bool = False
    is_thread: bool = False  # a reply in a thread (issue 17; matches nothing until then)
    mentions_me: bool = False
    unknown: tuple[str, ...] = field(default=())  # reserved

    @property
    def has_text(self) -> bool:
        return bool(self.words or self.phrases)


def parse(q: str) -> ParsedQuery:  # pragma: no cover - replaced by the search-text helper
    raise NotImplementedError
