"""The search query language (tidings.search.query.parse): every filter, phrases in
every quote style, words that merely contain a colon, and hostile input. A malformed
query is InvalidInput with field "q" (wire: 400 invalid_request)."""

from __future__ import annotations

from datetime import date

import pytest

from tidings.core.errors import ErrorCode, InvalidInput, InvalidRequest
from tidings.search.query import ParsedQuery, parse


def test_every_filter() -> None:
    parsed = parse(
        'from:alice in:#general before:2026-12-01 after:2026-11-01 has:file has:link '
        'is:thread mentions:me "exact phrase" 数据库 迁移'
    )
    assert parsed == ParsedQuery(
        words=("数据库", "迁移"),
        phrases=("exact phrase",),
        from_users=("alice",),
        in_conversations=("#general",),
        before=date(2026, 12, 1),
        after=date(2026, 11, 1),
        has_file=True,
        has_link=True,
        is_thread=True,
        mentions_me=True,
    )
    assert parsed.has_text


def test_free_words_only() -> None:
    parsed = parse("Redis缓存  INC-4521\tdeploy")
    assert parsed.words == ("Redis缓存", "INC-4521", "deploy")
    assert parsed.phrases == () and not parsed.has_file


@pytest.mark.parametrize(
    ("q", "users"),
    [("from:alice", ("alice",)), ("from:@alice", ("alice",)), ("FROM:Alice", ("alice",)),
     ("from:alice from:bob from:@alice", ("alice", "bob")), ('from:"@carol"', ("carol",))],
)
def test_from(q: str, users: tuple[str, ...]) -> None:
    assert parse(q).from_users == users


def test_in() -> None:
    assert parse("in:#general").in_conversations == ("#general",)
    assert parse("in:0190a1b2-c3d4").in_conversations == ("0190a1b2-c3d4",)
    assert parse('in:"#team alpha" 周报').in_conversations == ("#team alpha",)
    assert parse('in:"#team alpha" 周报').words == ("周报",)


def test_dates() -> None:
    parsed = parse("before:2026-12-01 before:2026-11-15 after:2026-01-01 after:2026-02-01")
    assert parsed.before == date(2026, 11, 15)  # the narrowest range
    assert parsed.after == date(2026, 2, 1)
    assert parse("BEFORE:2024-02-29").before == date(2024, 2, 29)


@pytest.mark.parametrize(
    "q", ["has:file", "has:link", "is:thread", "mentions:me", "HAS:FILE", "from:alice has:file"]
)
def test_filters_only_are_allowed(q: str) -> None:
    parsed = parse(q)
    assert not parsed.has_text


@pytest.mark.parametrize(
    ("q", "phrase"),
    [
        ('"exact phrase"', "exact phrase"),
        ("“弯引号 短语”", "弯引号 短语"),
        ("「分库分表」", "分库分表"),
        ("『数据库迁移』", "数据库迁移"),
        ('＂full width＂', "full width"),  # NFKC: a straight quote
        ('“mixed quotes"', "mixed quotes"),
        ('"error:timeout"', "error:timeout"),  # quoted: text, not a filter
        ('"from:alice"', "from:alice"),
        ('"unclosed phrase runs to the end', "unclosed phrase runs to the end"),
    ],
)
def test_phrases(q: str, phrase: str) -> None:
    parsed = parse(q)
    assert parsed.phrases == (phrase,)
    assert parsed.from_users == ()


def test_phrase_next_to_words_and_filters() -> None:
    parsed = parse('部署 "pull request" from:bob “负载 均衡”')
    assert parsed.words == ("部署",)
    assert parsed.phrases == ("pull request", "负载 均衡")
    assert parsed.from_users == ("bob",)


@pytest.mark.parametrize(
    "word",
    ["10:30", "http://x.example/a", "https://git.corp.example/platform", "备注:重启",
     "注意：重启", "c:\\temp", "todo:", "mailto:alice@corp.example", "12:00:01", "x86:asm"],
)
def test_words_with_a_colon(word: str) -> None:
    parsed = parse(word)
    assert len(parsed.words) == 1 and parsed.from_users == ()


def test_full_width_filter() -> None:
    assert parse("ｆｒｏｍ：alice 数据").from_users == ("alice",)


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ("", "empty"),
        ("   \t\n", "empty"),
        ("!!! 。。。", "empty"),
        ('""', "empty"),
        ("“ ”", "empty"),
        ("\x00\x01\u200b", "empty"),
        ("foo:bar", "unknown filter 'foo:'"),
        ("deploy frm:alice", "unknown filter 'frm:'"),
        ("Status:500", "unknown filter 'Status:'"),
        ('foo:"bar baz"', "unknown filter 'foo:'"),
        ("from:", "needs a value"),
        ("from:@", "needs a user name"),
        ("in:", "needs a value"),
        ("in:#", "needs a conversation"),
        ('in:""', "needs a value"),
        ("before:2026-13-01", "bad date"),
        ("before:2026-02-30", "bad date"),
        ("after:yesterday", "bad date"),
        ("after:2026/11/01", "bad date"),
        ("before:20261201", "bad date"),
        ("has:pdf", "'has:' takes file or link"),
        ("has:", "needs a value"),
        ("is:open", "'is:' takes thread"),
        ("mentions:bob", "'mentions:' takes me"),
    ],
)
def test_malformed(q: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(q)
    assert caught.value.details["field"] == "q"
    assert says in str(caught.value)
    assert isinstance(caught.value, InvalidRequest)
    assert caught.value.code is ErrorCode.INVALID_REQUEST


def test_control_characters_are_spaces() -> None:
    parsed = parse("from:alice\x00has:file\u200b数据库\x7f迁移\u202e")
    assert parsed.from_users == ("alice",)
    assert parsed.has_file
    assert parsed.words == ("数据库", "迁移")


def test_very_long_query() -> None:
    words = " ".join(["数据库", "deploy", "INC-4521"] * 3_000)
    parsed = parse(words + " from:alice " + '"' + "x" * 50_000)
    assert len(parsed.words) == 9_000
    assert parsed.from_users == ("alice",)
    assert parsed.phrases == ("x" * 50_000,)
    with pytest.raises(InvalidInput) as caught:
        parse("a" * 100_000 + ":b")
    assert len(str(caught.value)) < 300  # the message quotes at most a bit of it
    assert parse("!" * 100_000 + " 数据").words == ("数据",)


def test_punctuation_only_terms_are_dropped() -> None:
    parsed = parse('部署 !!! "..." — 迁移')
    assert parsed.words == ("部署", "迁移")
    assert parsed.phrases == ()
