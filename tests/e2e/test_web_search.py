"""Search in a real browser (Debian's Chromium via Playwright) against the real
`tidings serve` (issue 16): Alice writes in Chinese and English in two conversations
with Bob; Bob types a query in the search box (the `from:` suggestion comes from the
directory), sees the result with its match marked and the counts per conversation,
filters by one, switches to relevance, clicks a result: the conversation opens at that
message (marked for a moment) with a gap before the newest messages, and both the
older and the newer history load by scrolling, after which live messages arrive again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.web_helpers import (
    Rest,
    admin_rest,
    chromium,
    create_user,
    open_signed_in,
    page_errors,
    require_browser,
    screenshot_dir,
)

require_browser()
from playwright.sync_api import Browser, expect  # noqa: E402 - after the check above

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(180)]

TARGET = 30  # the seq of the message searched for, in a conversation of 120
TOTAL = 120
TARGET_BODY = "🚀 分布式数据库迁移方案 ready for review"


@pytest.fixture
def browser(live_server: Any) -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory)


def _indexed(server: Any, token: str, q: str, count: int) -> None:
    """Wait until the index (a background job) finds `count` results of `q` for this
    user over REST, so that the browser's first search sees them."""
    deadline = time.monotonic() + 30
    last = ""
    while time.monotonic() < deadline:
        res = httpx.get(
            f"{server.url}/api/v1/search",
            params={"q": q, "limit": 20},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        last = f"{res.status_code} {res.text[:300]}"
        if res.status_code == 200 and len(res.json()["results"]) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"search for {q!r} never found {count}: {last}")


def _filler(i: int) -> str:
    return f"第{i}条 routine update {i}" if i % 2 else f"message {i}: 日常同步"


def test_search_from_the_box_and_jump_to_the_message(
    live_server: Any, browser: Browser, shots: Path
) -> None:
    admin = admin_rest(live_server)
    alice = create_user(admin, live_server, "alice", "Alice Chen")
    bob = create_user(admin, live_server, "bob", "王伟")
    rest = Rest(live_server.url, alice.token)
    ops = rest.conversation("group", [bob.id], name="ops")["id"]
    dev = rest.conversation("group", [bob.id], name="dev")["id"]
    for i in range(1, TOTAL + 1):
        rest.send(ops, TARGET_BODY if i == TARGET else _filler(i))
    rest.send(dev, "数据库 backup finished")
    rest.send(dev, "the database migration plan: 数据库 schema v2.3版本")
    rest.send(dev, "Redis缓存 warmed up")
    _indexed(live_server, bob.token, "数据库", 3)

    b = open_signed_in(browser, live_server, "bob", bob.password)
    try:
        box = b.get_by_test_id("search-input")
        box.click()
        suggestions = b.get_by_test_id("search-suggestion")
        # Nothing typed: the filters are offered.
        expect(suggestions.filter(has_text="has:file")).to_have_count(1)
        expect(suggestions.filter(has_text="mentions:me")).to_have_count(1)
        # from: offers people from the directory; choosing one puts it in the box.
        box.press_sequentially("from:ali")
        alice_item = b.locator('[data-testid=search-suggestion][data-insert="from:alice"]')
        expect(alice_item).to_be_visible()
        alice_item.click()
        expect(box).to_have_value("from:alice ")
        # in: offers Bob's own conversations.
        box.press_sequentially("in:#o")
        expect(b.locator('[data-testid=search-suggestion][data-insert="in:#ops"]')).to_be_visible()
        b.screenshot(path=str(shots / "desktop-search-suggestions.png"))
        # The keyboard picks one: ↓ then Enter.
        box.press("ArrowDown")
        box.press("Enter")
        expect(box).to_have_value("from:alice in:#ops ")
        # before: offers days; a whole date typed is offered as it is.
        box.press_sequentially("before:2019-05-1")
        expect(b.locator('[data-testid=search-suggestion][data-insert="before:2019-05-17"]')).to_have_count(0)
        box.press_sequentially("7")
        expect(b.locator('[data-testid=search-suggestion][data-insert="before:2019-05-17"]')).to_have_count(1)
        box.press("Escape")
        expect(b.get_by_test_id("search-suggestions")).to_be_hidden()
        box.fill("数据库")
        box.press("Enter")

        results = b.get_by_test_id("search-result")
        expect(results).to_have_count(3)
        target = b.locator(f'[data-testid=search-result][data-cid="{ops}"][data-seq="{TARGET}"]')
        expect(target).to_have_count(1)
        expect(target.get_by_test_id("search-result-conversation")).to_have_text("ops")
        expect(target.get_by_test_id("search-result-sender")).to_have_text("Alice Chen")
        expect(target.get_by_test_id("search-result-body")).to_have_text(TARGET_BODY)
        # The match is marked, at code-point offsets (an emoji before it).
        marks = target.locator("mark").all_inner_texts()
        assert marks and any("数据库" in m for m in marks), marks
        # Counts per conversation, as filters: dev has 2, ops 1.
        counts = b.get_by_test_id("search-count")
        expect(counts.filter(has_text="dev")).to_contain_text("2")
        expect(counts.filter(has_text="ops")).to_contain_text("1")
        b.screenshot(path=str(shots / "desktop-search-results.png"))
        counts.filter(has_text="dev").click()
        expect(results).to_have_count(2)
        expect(b.locator(f'[data-testid=search-result][data-cid="{ops}"]')).to_have_count(0)
        b.get_by_test_id("search-order-relevance").click()
        expect(b.get_by_test_id("search-order-relevance")).to_have_attribute("aria-pressed", "true")
        expect(results).to_have_count(2)
        # English and mixed text: the word marked in the body.
        box.fill("migration")
        box.press("Enter")
        expect(results).to_have_count(1)
        assert [m.lower() for m in results.first.locator("mark").all_inner_texts()] == ["migration"]

        box.fill("数据库")
        box.press("Enter")
        expect(target).to_have_count(1)
        target.click()

        # The conversation opens at the message, marked for a moment.
        expect(b.get_by_test_id("chat-title")).to_have_text("ops")
        shown = b.locator(f'.msg[data-seq="{TARGET}"]')
        expect(shown).to_be_visible()
        expect(shown).to_have_class(re.compile(r"\bjump-target\b"))
        expect(shown.get_by_test_id("message-body")).to_contain_text("数据库迁移方案")
        b.screenshot(path=str(shots / "desktop-search-jump.png"))
        # A window around it: the newest messages are not held yet (a gap), and the
        # way to them is offered.
        expect(b.locator(f'.msg[data-seq="{TOTAL}"]')).to_have_count(0)
        expect(b.get_by_test_id("load-newer")).to_have_count(1)
        expect(b.get_by_test_id("jump-latest")).to_be_visible()
        held = [int(s) for s in b.locator(".msg[data-seq]").evaluate_all(
            "(els) => els.map((e) => e.dataset.seq)")]
        assert TARGET - 1 in held and TARGET + 1 in held and max(held) < TOTAL, held

        messages = b.get_by_test_id("messages")
        # Older history: scroll to the top until the first message is there.
        for _ in range(20):
            messages.evaluate("(el) => { el.scrollTop = 0; }")
            if b.locator('.msg[data-seq="1"]').count():
                break
            b.wait_for_timeout(200)
        expect(b.locator('.msg[data-seq="1"]')).to_have_count(1)
        expect(b.locator(".conv-start")).to_have_count(1)
        # Newer history: scroll down until the newest is there and the gap is gone.
        for _ in range(40):
            messages.evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
            if b.locator(f'.msg[data-seq="{TOTAL}"]').count():
                break
            b.wait_for_timeout(200)
        expect(b.locator(f'.msg[data-seq="{TOTAL}"]')).to_have_count(1)
        expect(b.get_by_test_id("load-newer")).to_have_count(0)
        seqs = [int(s) for s in b.locator(".msg[data-seq]").evaluate_all(
            "(els) => els.map((e) => e.dataset.seq)")]
        assert seqs == list(range(1, TOTAL + 1)), seqs  # every message once, in order
        # With the gap closed, live messages arrive again.
        rest.send(ops, "live after the jump 实时")
        live = b.locator(f'.msg[data-seq="{TOTAL + 1}"]')
        expect(live).to_contain_text("live after the jump 实时")

        # Back to the results: they are as they were.
        b.go_back()
        expect(b.get_by_test_id("search-view")).to_be_visible()
        expect(target).to_have_count(1)
        assert page_errors(b) == []
    finally:
        rest.close()
        admin.close()
        b.context.close()


def test_the_search_view_in_chinese_says_what_is_wrong(
    live_server: Any, browser: Browser
) -> None:
    admin = admin_rest(live_server)
    carol = create_user(admin, live_server, "carol", "陈静")
    b = open_signed_in(browser, live_server, "carol", carol.password, locale="zh-CN")
    try:
        box = b.get_by_test_id("search-input")
        expect(box).to_have_attribute("placeholder", "搜索消息")
        box.click()
        link = b.get_by_test_id("search-suggestion").filter(has_text="has:link")
        expect(link).to_contain_text("带有链接")
        box.fill("colour:blue 数据库")
        box.press("Enter")
        expect(b.get_by_test_id("search-error")).to_contain_text("无法识别这次搜索")
        box.fill("没有这个词")
        box.press("Enter")
        expect(b.get_by_test_id("search-empty")).to_have_text("在你能看到的消息中没有找到结果。")
        assert page_errors(b) == []
    finally:
        admin.close()
        b.context.close()
