"""The shipped example plugin: a sensitive-word (DLP) filter for Chinese and English.

Settings (``[plugin_settings.dlp]``, docs/integrations.md)::

    action = "refuse"            # or "mask": store the message with the matches as ＊
    reason = "contains restricted content ({rule})"   # what the sender is told
    patterns = ["card", "cn_id"]   # optional: payment card numbers (Luhn-checked),
                                   # PRC resident ID numbers (GB 11643 checksum)
    [plugin_settings.dlp.words]    # rule name -> words
    secret_zh = ["机密", "绝密", "内部资料"]
    secret_en = ["confidential", "internal only"]
    [plugin_settings.dlp.word_files]   # rule name -> UTF-8 file, one word a line
    big_list = "/etc/tidings/words.txt"

Matching: Chinese has no word boundaries, so a word matches anywhere as a substring, all
words at once in one pass (Aho-Corasick, pyahocorasick: a 5,000-character message
against 10,000 words in about 1 ms, where a regular-expression alternation took 50 ms).
Text and words are compared after NFKC normalization and case folding (full-width
ＣＯＮＦＩＤＥＮＴＩＡＬ, Confidential and confidential are one word) with invisible
characters (zero-width spaces, soft hyphens) removed. The sender is told the rule's
name, never the word that matched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick  # type: ignore[import-not-found]  # pyahocorasick ships no types

from tidings.plugins.api import Draft, PluginContext, PluginError, Refuse, Replace

MAX_WORD_CHARS = 200
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff]"
)
# after normalization: separators between the digits of a card are spaces or dashes
_CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
_CN_ID = re.compile(
    r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dx]"
    r"(?![\dx])"
)
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
PATTERNS = ("card", "cn_id")


def fold(text: str) -> str:
    """What is compared: NFKC, case folded, invisible characters removed."""
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    return unicodedata.normalize("NFKC", text.casefold())


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _cn_id_ok(number: str) -> bool:
    total = sum(int(c) * w for c, w in zip(number[:17], _CN_ID_WEIGHTS, strict=True))
    return "10x98765432"[total % 11] == number[17]


@dataclass(frozen=True, slots=True)
class Match:
    start: int  # in the folded text
    end: int
    rule: str


class DlpPlugin:
    """``before_message``: refuse (or mask) a message that contains a listed word or,
    if enabled, a card or ID number. A plain ``def``: the server runs it in its plugin
    threads, under the time limit."""

    def __init__(self, ctx: PluginContext) -> None:
        s = ctx.settings
        known = {"action", "reason", "patterns", "words", "word_files"}
        unknown = sorted(set(s) - known)
        if unknown:
            raise PluginError(f"unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
        self.action = s.get("action", "refuse")
        if self.action not in ("refuse", "mask"):
            raise PluginError("action must be 'refuse' or 'mask'")
        self.reason = s.get("reason", "contains restricted content ({rule})")
        if not isinstance(self.reason, str) or len(self.reason) > 500:
            raise PluginError("reason must be a text of at most 500 characters")
        patterns = s.get("patterns", [])
        if not isinstance(patterns, list) or not set(patterns) <= set(PATTERNS):
            raise PluginError(f"patterns must be a list of {', '.join(PATTERNS)}")
        self.patterns = tuple(p for p in PATTERNS if p in patterns)
        lists = dict(_word_tables(s.get("words", {}), "words"))
        for rule, path in _tables(s.get("word_files", {}), "word_files"):
            if not isinstance(path, str):
                raise PluginError(f"word_files.{rule} must be a file path")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise PluginError(f"word_files.{rule}: cannot read {path}: {exc}") from exc
            words = [w.strip() for w in text.splitlines()]
            lists.setdefault(rule, []).extend(w for w in words if w and not w.startswith("#"))
        self.automaton: Any = None
        self.words = 0
        automaton = ahocorasick.Automaton()
        for rule, words in lists.items():
            for word in words:
                folded = fold(word)
                if not folded:
                    continue
                if len(folded) > MAX_WORD_CHARS:
                    raise PluginError(f"a word of {rule} is longer than {MAX_WORD_CHARS}")
                if folded not in automaton:  # the first rule naming a word keeps it
                    automaton.add_word(folded, (rule, len(folded)))
                    self.words += 1
        if self.words:
            automaton.make_automaton()
            self.automaton = automaton
        if not self.words and not self.patterns:
            ctx.log.warning("dlp_has_no_rules")

    def matches(self, folded: str) -> Iterator[Match]:
        """Every match in `folded` (a `fold`ed text): words first, then patterns."""
        if self.automaton is not None:
            for end, (rule, length) in self.automaton.iter(folded):
                yield Match(end + 1 - length, end + 1, rule)
        if "card" in self.patterns:
            for m in _CARD.finditer(folded):
                if _luhn(m.group().replace(" ", "").replace("-", "")):
                    yield Match(m.start(), m.end(), "card")
        if "cn_id" in self.patterns:
            for m in _CN_ID.finditer(folded):
                if _cn_id_ok(m.group()):
                    yield Match(m.start(), m.end(), "cn_id")

    def before_message(self, ctx: PluginContext, draft: Draft) -> Refuse | Replace | None:
        first = next(self.matches(fold(draft.body)), None)
        if first is None:
            return None
        if self.action == "refuse":
            return Refuse(self.reason.replace("{rule}", first.rule), rule=first.rule)
        return Replace(self.mask(draft.body))

    def mask(self, body: str) -> str:
        """`body` with every matched character replaced: ＊ for a character of 3 or more
        UTF-8 bytes, * for a shorter one (so the message never grows)."""
        folded, starts, ends = _fold_mapped(body)
        hidden = bytearray(len(body))
        for m in self.matches(folded):
            for i in range(starts[m.start], ends[m.end - 1]):
                hidden[i] = 1
        return "".join(
            ("＊" if len(c.encode()) >= 3 else "*") if hidden[i] and not c.isspace() else c
            for i, c in enumerate(body)
        )


def _fold_mapped(text: str) -> tuple[str, list[int], list[int]]:
    """`fold(text)` cluster by cluster (a character and the combining marks after it),
    with where each folded character comes from: text[starts[k]:ends[k]]."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        piece = fold(text[i:j])
        out.append(piece)
        starts.extend([i] * len(piece))
        ends.extend([j] * len(piece))
        i = j
    return "".join(out), starts, ends


def _tables(value: object, key: str) -> Iterator[tuple[str, object]]:
    if not isinstance(value, Mapping):
        raise PluginError(f"{key} must be a table: rule name = ...")
    for rule, item in value.items():
        if not isinstance(rule, str) or not rule or len(rule) > 100:
            raise PluginError(f"{key}: a rule name is 1 to 100 characters")
        yield rule, item


def _word_tables(value: object, key: str) -> Iterator[tuple[str, list[str]]]:
    if isinstance(value, list):  # words = [...]: one rule named "words"
        value = {"words": value}
    for rule, words in _tables(value, key):
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise PluginError(f"{key}.{rule} must be a list of words")
        yield rule, list(words)
