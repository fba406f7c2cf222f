"""The shipped DLP plugin: Chinese words match inside sentences (no word boundaries),
English words whatever their case or width, the sender is told the rule but never the
word, mask keeps the message's size, card and ID numbers only when they check out."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import structlog

from tidings.plugins.api import Draft, PluginContext, PluginError, Refuse, Replace, Sender
from tidings.plugins.dlp import DlpPlugin, fold

WORDS = {"secret_zh": ["机密", "内部资料"], "secret_en": ["confidential", "internal only"]}


def ctx(**settings: Any) -> PluginContext:
    return PluginContext("dlp", MappingProxyType(settings), structlog.get_logger("test"))


def check(plugin: DlpPlugin, body: str) -> Refuse | Replace | None:
    draft = Draft(Sender("u1", "ann", "member", False), "c1", body, "m1")
    return plugin.before_message(ctx(), draft)


@pytest.fixture
def refusing() -> DlpPlugin:
    return DlpPlugin(ctx(words=WORDS))


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("这份文件是机密的，请勿外传", "secret_zh"),
        ("请查收内部资料。", "secret_zh"),
        ("机\u200b密", "secret_zh"),  # a zero-width space does not hide it
        ("This is Confidential.", "secret_en"),
        ("CONFIDENTIAL", "secret_en"),
        ("ＣＯＮＦＩＤＥＮＴＩＡＬ：季度数字", "secret_en"),  # full-width
        ("ｃｏｎｆｉｄｅｎｔｉａｌ", "secret_en"),
        ("for INTERNAL ONLY use", "secret_en"),
    ],
)
def test_listed_words_are_refused_in_both_languages(
    refusing: DlpPlugin, body: str, rule: str
) -> None:
    verdict = check(refusing, body)
    assert isinstance(verdict, Refuse)
    assert verdict.rule == rule
    assert verdict.reason == f"contains restricted content ({rule})"
    for word in ("机密", "内部资料", "confidential", "internal only"):
        assert word not in verdict.reason.casefold()  # the secret is never echoed


@pytest.mark.parametrize(
    "body", ["今天开会讨论预算", "机 会与密码", "a confident team", "internal", "only internal"]
)
def test_other_text_goes_through(refusing: DlpPlugin, body: str) -> None:
    assert check(refusing, body) is None


def test_mask_replaces_the_matches_and_never_grows_the_message() -> None:
    plugin = DlpPlugin(ctx(words=WORDS, action="mask"))
    for body, masked in [
        ("这是机密文件", "这是＊＊文件"),
        ("see the Confidential plan", "see the ************ plan"),
        ("ＣＯＮＦＩＤＥＮＴＩＡＬ！", "＊＊＊＊＊＊＊＊＊＊＊＊！"),
        ("for internal only use", "for ******** **** use"),
        ("机密 and confidential", "＊＊ and ************"),
    ]:
        verdict = check(plugin, body)
        assert verdict == Replace(masked), body
        assert len(masked.encode()) <= len(body.encode())
    assert check(plugin, "nothing here") is None


def test_card_and_id_numbers_only_when_enabled_and_valid() -> None:
    plugin = DlpPlugin(ctx(patterns=["card", "cn_id"]))
    card = "4111 1111 1111 1111"  # a test Visa number: Luhn-valid
    assert isinstance(verdict := check(plugin, f"my card: {card}"), Refuse)
    assert verdict.rule == "card" and card not in verdict.reason
    assert check(plugin, "order 4111 1111 1111 1112") is None  # fails the Luhn check
    assert isinstance(v := check(plugin, "卡号４１１１－１１１１－１１１１－１１１１"), Refuse)
    assert v.rule == "card"  # full-width digits and dashes
    assert check(plugin, "身份证号 11010519491231002X 请核对").rule == "cn_id"  # type: ignore[union-attr]
    assert check(plugin, "身份证号 110105194912310021") is None  # wrong check digit
    assert check(DlpPlugin(ctx(words=WORDS)), f"card {card}") is None  # not enabled
    masked = DlpPlugin(ctx(patterns=["card"], action="mask"))
    assert check(masked, f"pay {card} now") == Replace("pay **** **** **** **** now")


def test_word_files_and_a_custom_reason(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# project names\n天马计划\n\nBlue Falcon\n", encoding="utf-8")
    plugin = DlpPlugin(
        ctx(word_files={"projects": str(words)}, reason="消息含有敏感内容（{rule}）")
    )
    assert plugin.words == 2
    verdict = check(plugin, "关于天马计划的进度")
    assert verdict == Refuse("消息含有敏感内容（projects）", rule="projects")
    assert isinstance(check(plugin, "BLUE FALCON launch"), Refuse)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"action": "delete"}, "action must be 'refuse' or 'mask'"),
        ({"words": {"x": "机密"}}, "words.x must be a list of words"),
        ({"patterns": ["iban"]}, "patterns must be a list of card, cn_id"),
        ({"wordz": []}, "unknown setting 'wordz'"),
        ({"word_files": {"x": "/nonexistent/words.txt"}}, "word_files.x: cannot read"),
    ],
)
def test_bad_settings_are_one_clear_error(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(PluginError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DlpPlugin(ctx(**settings))


def test_fold_is_nfkc_and_case_folding() -> None:
    assert fold("ＣＯＮＦＩＤＥＮＴＩＡＬ") == fold("Confidential") == "confidential"
    assert fold("Straße") == "strasse"
    assert fold("机\u200b密\ufeff") == "机密"


def test_many_words_stay_fast(refusing: DlpPlugin) -> None:
    """10,000 words against a message at the size limit: well inside the 50 ms limit."""
    import time

    many = {"big": [f"词{i:05d}" for i in range(10_000)], **WORDS}
    plugin = DlpPlugin(ctx(words=many))
    body = ("普通的一句话，没有问题。 An ordinary sentence. " * 400)[:16_000]
    started = time.perf_counter()
    for _ in range(10):
        assert check(plugin, body) is None
    assert (time.perf_counter() - started) / 10 < 0.05
