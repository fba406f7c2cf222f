"""The text pipeline of search (tidings.search.text): what a document is indexed under
and what a query term must match, on the examples of issue 16. A query term matches a
document when every one of its query tokens is an index token of the document (the
index rule of the contract), so each case checks that rule, not only the token lists."""

from __future__ import annotations

from itertools import pairwise

import pytest

from tidings.search import text
from tidings.search.text import highlight_spans, index_tokens, normalize, query_tokens


def matches(term: str, body: str) -> bool:
    tokens = query_tokens(term)
    return bool(tokens) and set(tokens) <= set(index_tokens(body))


@pytest.mark.parametrize(
    ("term", "body"),
    [
        ("数据库", "分布式数据库迁移方案"),
        ("负载均衡", "使用负载均衡器"),
        ("均衡器", "使用负载均衡器"),
        ("分布式", "分布式数据库迁移方案"),
        ("迁移方案", "分布式数据库迁移方案"),
        ("数据库迁移", "分布式数据库迁移方案"),  # typed together: its bigrams
        ("数据", "分布式数据库迁移方案"),  # a word inside a longer word
        ("库", "分布式数据库迁移方案"),  # one character
        ("缓存", "Redis缓存命中率"),
        ("redis", "Redis缓存命中率"),
        ("Redis缓存", "Redis缓存命中率"),
        ("Redis缓存", "redis 缓存的过期时间"),  # the parts of the term, not the term
        ("版本", "v2.3版本明天上线"),
        ("v2.3", "v2.3版本明天上线"),
        ("v2.3版本", "v2.3版本明天上线"),
        ("ＲＥＤＩＳ", "redis cluster"),  # full-width query
        ("redis", "ＲＥＤＩＳ集群要升级"),  # full-width document
        ("３号", "3号会议室"),
        ("數據庫", "分布式数据库迁移方案"),  # Traditional query, Simplified document
        ("数据库", "數據庫的權限設定好了"),  # and the other way round
        ("資料庫", "资料库里有去年的方案"),
        ("deploying", "Deployed to staging"),
        ("deployed", "We are deploying tonight"),
        ("deploy", "DEPLOYING NOW"),
        ("INC-4521", "INC-4521 已经处理完毕"),
        ("inc-4521", "关于INC-4521的复盘"),
        ("inc", "INC-4521 已经处理完毕"),
        ("4521", "INC-4521 已经处理完毕"),
        ("10.0.3.7", "10.0.3.7 这台机器的内存不够用了"),
        ("10.0.3.7", "ssh root@10.0.3.7 and check"),
        ("10.0.3.7", "Redis on 10.0.3.7:6379 refuses"),
        ("10.0.3.7:6379", "Redis on 10.0.3.7:6379 refuses"),
        ("6379", "Redis on 10.0.3.7:6379 refuses"),
        ("张伟", "张伟你好，接口修好了"),  # a name jieba does not know
        ("天河云", "我们的服务部署在天河云上"),  # a product name jieba does not know
        ("python", "python3 -m venv"),
        ("git.corp.example", "moved to https://git.corp.example/platform/search"),
        ("nginx", "see /var/log/nginx/error.log"),
        ("カタカナ", "カタカナのテスト"),
    ],
)
def test_found(term: str, body: str) -> None:
    assert matches(term, body), (query_tokens(term), index_tokens(body))


@pytest.mark.parametrize(
    ("term", "body"),
    [
        ("数据库", "客户那边的数据已经入库了"),  # shares 数据 and 库, not the word
        ("负载均衡", "今天机器负载很高，流量分配也不均衡"),
        ("会议", "议会选举的新闻"),
        ("上线", "线上环境报错了"),
        ("天河云", "天河的云层今天特别厚"),
        ("分布式", "用户分布在全国各地"),
        ("log", "Login is broken"),
        ("log", "the product catalog"),
        ("port", "The report is due Friday"),
        ("test", "Use the latest image"),
        ("deploy", "We need to employ two more"),
        ("INC-4521", "INC-4522 复盘"),
        ("INC-4521", "INC-45210 was a duplicate"),
        ("10.0.3.7", "10.0.3.70 is the new proxy"),
        ("10.0.3.7", "Move it to 10.0.37.1"),
        ("v2.3", "v2.30版本的规划"),
        ("v2.3", "v12.3 is old"),
        ("502", "Port 5020 is blocked"),
    ],
)
def test_not_found(term: str, body: str) -> None:
    assert not matches(term, body), (query_tokens(term), index_tokens(body))


def test_normalize() -> None:
    assert normalize("ＲＥＤＩＳ　集群") == "redis 集群"  # full-width letters and space
    assert normalize("數據庫") == normalize("数据库") == "数据库"
    assert normalize("  Deploy\n\tNOW  ") == "deploy now"
    assert normalize("ﬁle") == "file"  # NFKC ligature
    assert normalize("") == ""


def test_cjk_index_has_words_characters_and_pairs() -> None:
    tokens = index_tokens("使用负载均衡器")
    assert {"使用", "负载", "均衡", "均衡器"} <= set(tokens)  # jieba's words
    assert set("使用负载均衡器") <= set(tokens)  # every character
    assert {"用负", "载均", "衡器"} <= set(tokens)  # every adjacent pair
    assert len(tokens) == len(set(tokens))  # each once


def test_cjk_pairs_do_not_cross_runs() -> None:
    tokens = set(index_tokens("数据 库存"))
    assert "据库" not in tokens
    assert {"数据", "库存"} <= tokens


def test_query_tokens_of_cjk() -> None:
    assert query_tokens("数据库") == ["数据库"]  # a word of jieba's dictionary
    assert query_tokens("负载均衡") == ["负载", "载均", "均衡"]  # not one: its bigrams
    assert query_tokens("天河云") == ["天河", "河云"]
    assert query_tokens("库") == ["库"]
    assert query_tokens("數據庫") == ["数据库"]


def test_identifiers_whole_and_in_parts() -> None:
    assert index_tokens("INC-4521") == ["inc-4521", "inc", "4521"]
    assert {"10.0.3.7", "10", "0", "3", "7"} <= set(index_tokens("10.0.3.7"))
    assert {"v2.3", "版本"} <= set(index_tokens("v2.3版本"))
    assert query_tokens("INC-4521") == ["inc-4521"]
    assert query_tokens("10.0.3.7") == ["10.0.3.7"]
    assert query_tokens("v2.3版本") == ["v2.3", "版本"]
    assert query_tokens("Redis缓存") == [query_tokens("redis")[0], "缓存"]
    host = set(index_tokens("root@10.0.3.7:22"))
    assert {"root@10.0.3.7:22", "root", "10.0.3.7", "22"} <= host


def test_english_stems_and_case() -> None:
    forms = ("deploying", "Deployed", "DEPLOY", "deploys")
    assert len({token for form in forms for token in query_tokens(form)}) == 1
    assert index_tokens("Deploying deployed deploys") == query_tokens("deploy")
    assert query_tokens("log") != query_tokens("login")


def test_punctuation_only() -> None:
    assert query_tokens("!!!") == []
    assert query_tokens("，。、") == []
    assert index_tokens("... --- !!!") == []
    assert index_tokens("") == []


def test_tokens_have_no_space_or_punctuation_only() -> None:
    body = "INC-4521 出问题了！ 10.0.3.7:8080 alice@corp.example 「分库分表」 — ok?? 東京タワー"
    for token in index_tokens(body) + query_tokens(body):
        assert token and " " not in token
        assert any(ch.isalnum() for ch in token), token


def test_hostile_input() -> None:
    long = "数据库迁移" * 20_000 + " INC-4521" * 5_000
    tokens = index_tokens(long)
    assert "数据库" in tokens and "inc-4521" in tokens
    assert len(tokens) == len(set(tokens))
    weird = "\x00\u200b\u202e数据\ud800库\ufeff" + "a" * 10_000 + "-" * 10_000
    assert "数据" in index_tokens(weird)
    assert query_tokens(weird)


def test_configure_user_words_do_not_change_matching() -> None:
    before = index_tokens("星图平台的报表导出又超时了")
    text.configure(["星图平台"])
    after = set(index_tokens("星图平台的报表导出又超时了"))
    assert "星图平台" in after  # a word of the index now (relevance)
    # a query of it is still its bigrams, so documents indexed before are found too
    assert set(query_tokens("星图平台")) <= set(before)
    assert set(query_tokens("星图平台")) <= after


def marked(body: str, words: list[str], phrases: tuple[str, ...] = ()) -> list[str]:
    spans = highlight_spans(body, words, list(phrases))
    assert all(a < b for a, b in spans)
    assert all(b < c for (_, b), (c, _) in pairwise(spans))  # sorted, apart
    return [body[a:b] for a, b in spans]


def test_highlights_point_into_the_body() -> None:
    assert marked("分布式数据库迁移方案", ["数据库"]) == ["数据库"]
    assert marked("使用负载均衡器之后", ["负载均衡"]) == ["负载均衡"]
    assert marked("We are Deploying; deployed", ["deploy"]) == ["Deploying", "deployed"]
    assert marked("ＲＥＤＩＳ 缓存", ["redis"]) == ["ＲＥＤＩＳ"]  # full-width, 1:1
    assert marked("INC-4521 出问题了 inc-4521", ["inc"]) == ["INC", "inc"]
    assert marked("INC-4521 出问题了", ["INC-4521"]) == ["INC-4521"]
    assert marked("ssh root@10.0.3.7:22", ["10.0.3.7"]) == ["10.0.3.7"]
    assert marked("數據庫的權限", ["数据库"]) == ["數據庫"]  # Traditional body
    assert marked("Straße  ist   lang", [], ("strasse ist",)) == ["Straße  ist"]  # ß is ss
    assert marked("ﬁle ﬁle", ["file"]) == ["ﬁle", "ﬁle"]  # a ligature: one code point
    assert marked("nothing here", ["数据库"]) == []
    assert marked("", ["x"], ("y",)) == []


def test_typographic_apostrophe() -> None:
    assert matches("don't", "I don’t know")
    assert matches("don’t", "I don't know")
    assert normalize("don’t") == "don't"


AMBIGUOUS = [  # sentences whose segmentation is famously ambiguous
    "大数据库存管理系统",
    "研究生命起源",
    "南京市长江大桥",
    "结婚的和尚未结婚的",
    "乒乓球拍卖完了",
    "工信处女干事每月经过下属科室",
]


def test_every_cjk_substring_is_found() -> None:
    """Whatever jieba made of a sentence, each of its CJK substrings (1 to 10
    characters) is found by that substring's query tokens: the relevance corpus and
    the classic ambiguous sentences."""
    from tests.unit.search.test_relevance import load

    bodies = [str(m["text"]) for m in load()["corpus"]] + AMBIGUOUS
    checked = 0
    for body in bodies:
        tokens = set(index_tokens(body))
        for run in text._CJK_RUN.findall(normalize(body)):
            for i in range(len(run)):
                for j in range(i + 1, min(len(run), i + 10) + 1):
                    assert set(query_tokens(run[i:j])) <= tokens, (run[i:j], body)
                    checked += 1
    assert checked > 10_000
