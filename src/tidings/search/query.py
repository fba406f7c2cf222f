"""The search query language (issue 16): free words, "exact phrases" and filters in
the query itself, e.g.

    from:alice in:#general before:2026-12-01 after:2026-11-01 has:file has:link
    is:thread mentions:me "exact phrase" 数据库 迁移

`parse(q)` gives a `ParsedQuery` with names unresolved (usernames, conversation names:
the service resolves them for the caller); a malformed filter raises
`tidings.core.errors.InvalidInput` naming it. CONTRACT: the dataclass fields are what
the service and the adapters use.

How a query is read (docs/search.md, "The query language"):

- the text is NFKC-normalised first, so full-width `ｆｒｏｍ：alice` is `from:alice`;
  control and invisible format characters count as spaces;
- `"…"`, `“…”` and `「…」` / `『…』` quote a phrase; a quote left open runs to the end of
  the query; an empty phrase is nothing;
- a term `key:value` whose key is one of the filters is that filter (the key in any
  case; the value may be quoted: `in:"#team alpha"`); a known key without a value, or
  with a value the filter does not take, is an error;
- a term `key:value` whose key is two or more ASCII letters and not a filter is an error
  (`unknown filter 'foo:'`), so a mistyped filter is not silently searched as text;
  quoting it searches the text. Everything else with a colon is a word: `10:30`,
  `http://…` (a value starting with `//`), `mailto:…`, `备注:重启`, `c:\\`, `todo:`;
- a word or phrase without any token (punctuation only) is dropped; a query with no
  word, phrase or filter left is an error (`empty query`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from tidings.core.errors import InvalidInput
from tidings.search.text import query_tokens


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    words: tuple[str, ...] = ()  # free words as typed (run through text.query_tokens later)
    phrases: tuple[str, ...] = ()  # "exact phrases" as typed, without the quotes
    from_users: tuple[str, ...] = ()  # from:NAME (usernames, without @, lower case)
    # in:#name or in:<conversation id>, as typed: a name keeps its leading '#', so the
    # service tells a name from an id
    in_conversations: tuple[str, ...] = ()
    before: date | None = None  # before:YYYY-MM-DD (messages sent before that day, UTC)
    after: date | None = None  # after:YYYY-MM-DD (messages sent after that day, UTC)
    has_file: bool = False
    has_link: bool = False
    is_thread: bool = False  # a reply in a thread (thread_root_seq set)
    mentions_me: bool = False
    unknown: tuple[str, ...] = field(default=())  # reserved

    @property
    def has_text(self) -> bool:
        return bool(self.words or self.phrases)


FILTERS = ("from", "in", "before", "after", "has", "is", "mentions")

# Each opening quote and the characters that close it.
_QUOTES = {
    '"': '"\u201d',
    "\u201c": "\u201d\u201c\"",
    "\u201d": "\u201d\"",
    "\u300c": "\u300d",
    "\u300e": "\u300f",
}
# Control characters, zero-width and bidirectional format characters, BOM, surrogates:
# read as spaces.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    "\ud800-\udfff]"
)
_KEY = re.compile(r"([A-Za-z]+):")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_FILTER_KEYS = frozenset({"mailto", "tel", "urn", "magnet", "data"})


def _error(message: str) -> InvalidInput:
    return InvalidInput(message, field="q")


def _scan(q: str) -> list[tuple[str, str | None, bool]]:
    """The terms of `q`: (text, filter key or None, quoted)."""
    terms: list[tuple[str, str | None, bool]] = []
    i, n = 0, len(q)
    while i < n:
        ch = q[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _QUOTES:
            end, close = i + 1, _QUOTES[ch]
            while end < n and q[end] not in close:
                end += 1
            terms.append((q[i + 1 : end], None, True))
            i = end + 1
            continue
        key_match = _KEY.match(q, i)
        if key_match and key_match.end() < n and q[key_match.end()] in _QUOTES:
            start = key_match.end()
            end, close = start + 1, _QUOTES[q[start]]
            while end < n and q[end] not in close:
                end += 1
            terms.append((q[start + 1 : end], key_match.group(1), True))
            i = end + 1
            continue
        end = i
        while end < n and not q[end].isspace():
            end += 1
        word = q[i:end]
        if key_match:
            terms.append((word[key_match.end() - i :], key_match.group(1), False))
        else:
            terms.append((word, None, False))
        i = end
    return terms


def _date(key: str, value: str) -> date:
    if _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _error(f"bad date in '{key}:{value[:40]}' (YYYY-MM-DD)")


def parse(q: str) -> ParsedQuery:
    """Read a search query; raises InvalidInput(field="q") saying what is wrong."""
    q = _INVISIBLE.sub(" ", unicodedata.normalize("NFKC", q))
    words: list[str] = []
    phrases: list[str] = []
    from_users: list[str] = []
    in_conversations: list[str] = []
    before: date | None = None
    after: date | None = None
    flags = {"file": False, "link": False, "thread": False, "me": False}
    filters = 0
    for text, raw_key, quoted in _scan(q):
        key = raw_key.lower() if raw_key is not None else None
        if key is None or (
            key not in FILTERS
            and (len(key) < 2 or key in _NOT_FILTER_KEYS or text.startswith("//") or not text)
        ):
            term = text if key is None else f"{raw_key}:{text}"
            if query_tokens(term):
                (phrases if quoted else words).append(term.strip() if quoted else term)
            continue
        if key not in FILTERS:
            known = ", ".join(f + ":" for f in FILTERS)
            raise _error(
                f"unknown filter '{(raw_key or key)[:40]}:' (filters: {known};"
                " put it in quotes to search the text)"
            )
        value = text.strip()
        if not value:
            raise _error(f"'{key}:' needs a value")
        filters += 1
        if key == "from":
            name = value[1:] if value.startswith("@") else value
            if not name:
                raise _error("'from:' needs a user name")
            from_users.append(name.lower())
        elif key == "in":
            if value == "#":
                raise _error("'in:' needs a conversation name or id")
            in_conversations.append(value)
        elif key == "before":
            day = _date(key, value)
            before = day if before is None else min(before, day)
        elif key == "after":
            day = _date(key, value)
            after = day if after is None else max(after, day)
        else:
            allowed = {"has": ("file", "link"), "is": ("thread",), "mentions": ("me",)}[key]
            if value.lower() not in allowed:
                raise _error(
                    f"'{key}:' takes {' or '.join(allowed)}, not '{value[:40]}'"
                )
            flags[value.lower()] = True
    if not (words or phrases or filters):
        raise _error("empty query: give words, a \"phrase\" or a filter")
    return ParsedQuery(
        words=tuple(words),
        phrases=tuple(phrases),
        from_users=tuple(dict.fromkeys(from_users)),
        in_conversations=tuple(dict.fromkeys(in_conversations)),
        before=before,
        after=after,
        has_file=flags["file"],
        has_link=flags["link"],
        is_thread=flags["thread"],
        mentions_me=flags["me"],
    )
