"""The one text pipeline of search, applied the same way when indexing and when
querying: normalise (NFKC, so full-width and half-width forms are one; case folding;
Traditional to Simplified Chinese), then segment (Chinese words in search mode, Latin
words, numbers and identifiers kept whole as well as in their parts).

`index_tokens(text)` gives the tokens a document is indexed under; `query_tokens(text)`
the tokens one query term must all match. Both return normalised tokens (no spaces, no
punctuation-only tokens), so an index adapter stores them space-separated and matches
them exactly. CONTRACT (issue 16): the signatures of this module are what the index
adapters, the service and the bench rely on; the implementation may change.
"""

from __future__ import annotations

import unicodedata

import rjieba

_PUNCT_CATEGORIES = frozenset(
    {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Cc"}
)


def normalize(text: str) -> str:
    """NFKC and case folding (Traditional to Simplified comes later)."""
    return unicodedata.normalize("NFKC", text).casefold()


def _is_token(token: str) -> bool:
    return any(unicodedata.category(ch) not in _PUNCT_CATEGORIES for ch in token)


def index_tokens(text: str) -> list[str]:
    """The tokens `text` is indexed under (duplicates kept in order; adapters may
    dedupe)."""
    return [t for t in rjieba.cut_for_search(normalize(text)) if _is_token(t)]


def query_tokens(text: str) -> list[str]:
    """The tokens a document must all carry to match the query term `text`."""
    return [t for t in rjieba.cut(normalize(text)) if _is_token(t)]


def configure(user_words: list[str]) -> None:
    """Add the organization's own words (setting `search_user_words`) to the
    segmenter, before anything is indexed or searched."""
    for word in user_words:
        rjieba.add_word(normalize(word), None, None)
