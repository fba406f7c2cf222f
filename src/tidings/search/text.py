"""The one text pipeline of search, applied the same way when indexing and when
querying: normalise (NFKC, so full-width and half-width forms are one; case folding;
Traditional to Simplified Chinese), then segment (Chinese words in search mode, Latin
words, numbers and identifiers kept whole as well as in their parts).

`index_tokens(text)` gives the tokens a document is indexed under; `query_tokens(text)`
the tokens one query term must all match. Both return normalised tokens (no spaces, no
punctuation-only tokens), so an index adapter stores them space-separated and matches
them exactly. CONTRACT (issue 16): the signatures of this module are what the index
adapters, the service and the bench rely on; the implementation may change.

How a document is read (docs/search.md, "How search reads Chinese", says why):

- a run of CJK characters (Han, kana, hangul) is indexed under its jieba search-mode
  words, every dictionary word that occurs in it (jieba's full mode), every single
  character and every pair of adjacent characters (bigram). So whatever jieba made of
  the sentence, a dictionary word, a character and a pair that occur in the text are
  tokens of it;
- a run of letters and digits with inner connectors (`INC-4521`, `10.0.3.7:8080`,
  `alice@corp.com`, `v2.3`) is indexed whole, in the pieces between `/ : @ # + , ? = & ~`
  (`10.0.3.7`), in its atoms between `- . _ '` (`inc`, `4521`), and an atom mixing
  letters and digits also in its letter and digit parts (`python3` -> `python`, `3`);
- an atom of ASCII letters is indexed under its Snowball English stem (PyStemmer), so
  deploying, deployed, deploys and deploy are one token.

A query term is read the same way, but gives the fewest tokens that pin it down: a
compound gives its whole form (`inc-4521`), a CJK run that is one word of jieba's own
dictionary gives that word, any other CJK run (a word jieba does not know, several
words typed together, an organization's own word) gives its bigrams, a single
character itself. Every such token is in the index of a document whose normalised text
contains the term, whatever the segmentation of that document.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from types import ModuleType

import opencc
import Stemmer

# Han (CJK unified ideographs, extension A and B-F, compatibility ideographs), kana,
# hangul. A run of these is segmented as Chinese and indexed by characters and pairs.
_CJK_CLASS = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0002ebef\U00030000-\U0003134f"
)
_CJK_RUN = re.compile(f"([{_CJK_CLASS}]+)")
_HAS_CJK = re.compile(f"[{_CJK_CLASS}]")
# Letters and digits (any script but CJK, which _CJK_RUN has split off first), joined
# by single connectors: the outer ones separate pieces, the inner ones atoms.
_OUTER = "/:@#+,?=&~"
_INNER = "\\-._'"
_COMPOUND = re.compile(f"[^\\W_]+(?:[{_OUTER}{_INNER}][^\\W_]+)*")
_OUTER_SPLIT = re.compile(f"[{_OUTER}]")
_INNER_SPLIT = re.compile(f"[{_INNER}]")
_LETTERS_OR_DIGITS = re.compile(r"[^\W\d_]+|\d+")
_CONNECTOR = re.compile(f"[{_OUTER}{_INNER}]")
_SPACES = re.compile(r"\s+")
# Typographic apostrophes (phone keyboards type them) are the ASCII one.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'"})



@functools.cache
def _jieba() -> ModuleType:
    """rjieba, imported on first use: its import loads the dictionary (0.13-0.27 s of
    CPU), which a command line that never segments should not pay. Servers load it at
    start, in a thread (warm_up)."""
    import rjieba

    return rjieba


def warm_up() -> None:
    """Load the segmenter's dictionary now (blocking: call it in a thread)."""
    _jieba().cut_for_search("预热")


_t2s = opencc.OpenCC("t2s")
_stemmer = Stemmer.Stemmer("english")
_stem_cache: dict[str, str] = {}
_STEM_CACHE_MAX = 200_000
# Normalised words added by configure(): matching never relies on them (a query of one
# gives its bigrams), so documents indexed before a word was added are found as well.
_user_words: set[str] = set()


def normalize(text: str) -> str:
    """NFKC (full-width and half-width forms are one), case folding, typographic
    apostrophes as `'`, Traditional to Simplified Chinese (OpenCC `t2s`, only on text
    that has CJK characters), and every run of white space as one space, without
    leading or trailing space. A phrase query matches when the normalised body contains
    the normalised phrase."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    if _HAS_CJK.search(text):
        text = _t2s.convert(text)
    return _SPACES.sub(" ", text).strip()


def _stem(atom: str) -> str:
    """An ASCII-letter atom's English stem (cached: chat repeats its words)."""
    stem = _stem_cache.get(atom)
    if stem is None:
        stem = str(_stemmer.stemWord(atom))
        if len(_stem_cache) >= _STEM_CACHE_MAX:
            _stem_cache.clear()
        _stem_cache[atom] = stem
    return stem


def _atom_tokens(atom: str, out: list[str]) -> None:
    if atom.isalpha():
        out.append(_stem(atom) if atom.isascii() else atom)
    elif atom.isdigit():
        out.append(atom)
    else:  # letters and digits mixed: whole, then each part
        out.append(atom)
        for part in _LETTERS_OR_DIGITS.findall(atom):
            out.append(_stem(part) if part.isascii() and part.isalpha() else part)


def _compound_index_tokens(compound: str, out: list[str]) -> None:
    if not _CONNECTOR.search(compound):
        _atom_tokens(compound, out)
        return
    out.append(compound)
    for piece in _OUTER_SPLIT.split(compound) if _OUTER_SPLIT.search(compound) else (compound,):
        atoms = _INNER_SPLIT.split(piece)
        if len(atoms) > 1:
            if piece is not compound:
                out.append(piece)
            for atom in atoms:
                _atom_tokens(atom, out)
        else:
            _atom_tokens(piece, out)


def _compound_query_token(compound: str) -> str:
    if _CONNECTOR.search(compound):
        return compound
    if compound.isascii() and compound.isalpha():
        return _stem(compound)
    return compound  # the atom itself, not its letter and digit parts


def _cjk_index_tokens(runs: list[str], out: list[str]) -> None:
    """The runs' words (search mode and full mode), characters and pairs."""
    joined = _t2s.convert(" ".join(runs))  # one call each for the text: runs hold no space
    out += _jieba().cut_for_search(joined)
    out += _jieba().cut_all(joined)
    for run in joined.split(" "):
        out += run
        out += [run[i : i + 2] for i in range(len(run) - 1)]


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _fold(text: str) -> tuple[list[str], str]:
    """NFKC and case folding, then (the CJK runs, the rest with a space for each run)."""
    parts = _CJK_RUN.split(unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES))
    return parts[1::2], " ".join(parts[0::2])


def index_tokens(text: str) -> list[str]:
    """The tokens `text` is indexed under: each once, in order of first occurrence
    (the tokens of CJK runs after the others)."""
    runs, rest = _fold(text)
    out: list[str] = []
    cache = _stem_cache
    for compound in _COMPOUND.findall(rest):
        if compound.isalpha() and compound.isascii():
            out.append(cache.get(compound) or _stem(compound))
        else:
            _compound_index_tokens(compound, out)
    if runs:
        _cjk_index_tokens(runs, out)
    tokens = dict.fromkeys(out)
    tokens.pop(" ", None)  # the separator of the runs in _cjk_index_tokens
    return list(tokens)


def _cjk_query_tokens(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    if run not in _user_words and _jieba().has_word(run):
        return [run]  # one word of jieba's dictionary: indexed wherever it occurs
    return _bigrams(run)


def query_tokens(text: str) -> list[str]:
    """The tokens a document must all carry to match the query term `text` (one word
    as typed, e.g. `数据库`, `Redis缓存`, `INC-4521`); [] when it has none (only
    punctuation). Deduplicated; letter and number tokens first, then CJK ones."""
    runs, rest = _fold(text)
    out = [_compound_query_token(compound) for compound in _COMPOUND.findall(rest)]
    if runs:
        for run in _t2s.convert(" ".join(runs)).split(" "):
            out += _cjk_query_tokens(run)
    return list(dict.fromkeys(out))


def configure(user_words: list[str]) -> None:
    """Add the organization's own words (setting `search_user_words`) to the
    segmenter, before anything is indexed or searched. They shape the search-mode words
    of the index (relevance); matching does not depend on them (a query of such a word
    gives its bigrams), so adding or removing one needs no reindex."""
    for word in user_words:
        normalized = normalize(word)
        if not normalized:
            continue
        _jieba().add_word(normalized, None, None)
        if _HAS_CJK.search(normalized):
            _user_words.add(normalized)


def _folded_with_offsets(body: str) -> tuple[str, list[int]]:
    """`body` folded character by character as `normalize` folds it (NFKC, case,
    Traditional to Simplified, white space runs as one space), with the index in `body`
    of each folded character."""
    chars: list[str] = []
    offsets: list[int] = []
    space = True  # drop leading space, as normalize() does
    for i, ch in enumerate(body):
        if ch.isspace():
            if not space:
                chars.append(" ")
                offsets.append(i)
                space = True
            continue
        folded = unicodedata.normalize("NFKC", ch).casefold().translate(_APOSTROPHES)
        for f in folded:
            chars.append(" " if f.isspace() else f)
            offsets.append(i)
        space = False
    folded_text = "".join(chars)
    if _HAS_CJK.search(folded_text):
        converted = _t2s.convert(folded_text)
        if len(converted) == len(folded_text):
            folded_text = converted
        else:  # a phrase conversion changed the length: convert character by character
            folded_text = "".join(_t2s.convert(c) if _HAS_CJK.match(c) else c for c in chars)
            if len(folded_text) != len(offsets):
                folded_text = "".join(chars)
    return folded_text, offsets


def highlight_spans(body: str, words: list[str], phrases: list[str]) -> list[tuple[int, int]]:
    """Where the query's words and phrases occur in `body`: sorted, non-overlapping
    [start, end) code-point offsets into `body` (the wire's `highlights`). A CJK token
    is marked where it occurs; a Latin or number token on the atoms, pieces or whole
    compounds that carry it (`deploy` marks "Deploying", `inc` the INC of INC-4521); a
    phrase where the folded body contains the folded phrase."""
    folded, offsets = _folded_with_offsets(body)
    if not folded:
        return []
    spans: list[tuple[int, int]] = []
    cjk_tokens: set[str] = set()
    latin_tokens: set[str] = set()
    for word in words:
        for token in query_tokens(word):
            (cjk_tokens if _HAS_CJK.search(token) else latin_tokens).add(token)
    for token in cjk_tokens:
        start = folded.find(token)
        while start >= 0:
            spans.append((start, start + len(token)))
            start = folded.find(token, start + 1)
    if latin_tokens:
        latin = _CJK_RUN.sub(lambda m: " " * len(m.group()), folded)
        for match in _COMPOUND.finditer(latin):
            _mark_compound(match.group(), match.start(), latin_tokens, spans)
    for phrase in phrases:
        target = normalize(phrase)
        if not target:
            continue
        start = folded.find(target)
        while start >= 0:
            spans.append((start, start + len(target)))
            start = folded.find(target, start + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        begin, stop = offsets[start], offsets[end - 1] + 1
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((begin, stop))
    return merged


def _mark_compound(compound: str, at: int, tokens: set[str], spans: list[tuple[int, int]]) -> None:
    if compound in tokens:
        spans.append((at, at + len(compound)))
        return
    piece_at = at
    for piece in _OUTER_SPLIT.split(compound):
        if piece in tokens:
            spans.append((piece_at, piece_at + len(piece)))
        else:
            atom_at = piece_at
            for atom in _INNER_SPLIT.split(piece):
                found: list[str] = []
                _atom_tokens(atom, found)
                if tokens.intersection(found):
                    spans.append((atom_at, atom_at + len(atom)))
                atom_at += len(atom) + 1
        piece_at += len(piece) + 1
