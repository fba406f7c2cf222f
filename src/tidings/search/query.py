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

import re
from dataclasses import dataclass, field
from datetime import date

from tidings.core.errors import InvalidInput


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


_FLAGS = {
    "has:file": "has_file",
    "has:link": "has_link",
    "is:thread": "is_thread",
    "mentions:me": "mentions_me",
}
_TERMS = re.compile(r'"([^"]*)"|(\S+)')
# a filter's name with a value not understood (from:, in: take any value)
_UNKNOWN_FILTER = re.compile(r"(?:has|is|mentions|before|after|from|in):\S*")


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value) if len(value) == 10 else date.fromisoformat("x")
    except ValueError:
        raise InvalidInput(f"{name}: a date is YYYY-MM-DD, not {value[:40]!r}", field="q") from None


def parse(q: str) -> ParsedQuery:
    """A minimal reading of the query language (the search-text helper's version
    replaces it; same fields)."""
    words: list[str] = []
    phrases: list[str] = []
    from_users: list[str] = []
    in_conversations: list[str] = []
    flags: dict[str, bool] = {}
    before: date | None = None
    after: date | None = None
    for match in _TERMS.finditer(q):
        phrase, term = match.group(1), match.group(2)
        if phrase is not None:
            if phrase.strip():
                phrases.append(phrase.strip())
            continue
        lowered = term.lower()
        if lowered in _FLAGS:
            flags[_FLAGS[lowered]] = True
        elif lowered.startswith("from:") and len(term) > 5:
            from_users.append(term[5:].removeprefix("@"))
        elif lowered.startswith("in:") and len(term) > 3:
            in_conversations.append(term[3:])
        elif lowered.startswith("before:"):
            before = _day("before", term[7:])
        elif lowered.startswith("after:"):
            after = _day("after", term[6:])
        elif _UNKNOWN_FILTER.fullmatch(lowered):
            raise InvalidInput(f"unknown filter {term[:40]!r}", field="q")
        else:
            words.append(term)
    parsed = ParsedQuery(
        words=tuple(words),
        phrases=tuple(phrases),
        from_users=tuple(from_users),
        in_conversations=tuple(in_conversations),
        before=before,
        after=after,
        has_file=flags.get("has_file", False),
        has_link=flags.get("has_link", False),
        is_thread=flags.get("is_thread", False),
        mentions_me=flags.get("mentions_me", False),
    )
    if not parsed.has_text and not _has_filter(parsed):
        raise InvalidInput("the query is empty: give words, a phrase or a filter", field="q")
    return parsed


_FILTER_NAMES = frozenset({"from", "in", "before", "after"})


def _has_filter(p: ParsedQuery) -> bool:
    return bool(
        p.from_users or p.in_conversations or p.before or p.after or p.has_file or p.has_link
        or p.is_thread or p.mentions_me
    )
