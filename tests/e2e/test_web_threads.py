"""Threads in a real browser (Debian's Chromium via Playwright) against the real
`tidings serve` (issue 17): Bob answers Alice's message in its thread from the side
panel; Alice sees the reply count and the thread's unread badge under her root (the
reply is not in her main timeline), opens the thread, reads it (the badge goes) and
answers with "also send to the conversation": Bob sees that answer in his panel and in
the main timeline. A thread-only reply is no unread of the conversation in the list, an
`@all` is a mention."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.web_helpers import (
    Rest,
    admin_rest,
    chromium,
    conv_item,
    create_user,
    message_texts,
    open_signed_in,
    page_errors,
    require_browser,
)

require_browser()
from playwright.sync_api import Browser, expect  # noqa: E402 - after the check above

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def browser(live_server: Any) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_two_people_use_a_thread(live_server: Any, browser: Browser) -> None:
    admin = admin_rest(live_server)
    alice = create_user(admin, live_server, "alice", "Alice Chen")
    bob = create_user(admin, live_server, "bob", "Bob Li")
    rest = Rest(live_server.url, alice.token)
    cid = rest.conversation("group", [bob.id], name="launch")["id"]
    rest.send(cid, "Launch plan: Friday?")
    rest.send(cid, "unrelated note")

    a = open_signed_in(browser, live_server, "alice", alice.password)
    b = open_signed_in(browser, live_server, "bob", bob.password)
    try:
        for page in (a, b):
            conv_item(page, cid).click()
            expect(page.get_by_test_id("message")).to_have_count(2)
        # Bob opens the thread of the first message and replies there
        root_b = b.locator('[data-testid=message][data-seq="1"]')
        root_b.hover()
        root_b.get_by_test_id("act-thread").click()
        panel_b = b.get_by_test_id("thread-panel")
        expect(panel_b).to_be_visible()
        expect(panel_b.get_by_test_id("thread-root")).to_contain_text("Launch plan: Friday?")
        panel_b.get_by_test_id("thread-composer").fill("Friday works for QA")
        panel_b.get_by_test_id("thread-send").click()
        expect(
            panel_b.get_by_test_id("thread-replies").get_by_test_id("thread-reply-body")
        ).to_have_text(["Friday works for QA"])
        expect(panel_b.get_by_test_id("thread-follow")).to_have_text("Unfollow")  # a replier

        # Alice: a reply count and an unread badge under her root, not a timeline message
        line = a.locator('[data-testid=message][data-seq="1"]').get_by_test_id("thread-summary")
        expect(line.get_by_test_id("thread-count")).to_have_text(
            "\u20681\u2069 reply"
        )  # a value between isolates
        expect(line.get_by_test_id("thread-unread")).to_have_text("1")
        assert message_texts(a) == ["Launch plan: Friday?", "unrelated note"]
        line.click()
        panel_a = a.get_by_test_id("thread-panel")
        expect(
            panel_a.get_by_test_id("thread-replies").get_by_test_id("thread-reply-body")
        ).to_have_text(["Friday works for QA"])
        expect(line.get_by_test_id("thread-unread")).to_have_count(0)  # read in the panel
        # ... and answers, also to the conversation
        panel_a.get_by_test_id("thread-composer").fill("Great, shipping Friday")
        panel_a.get_by_test_id("thread-also").check()
        panel_a.get_by_test_id("thread-send").click()

        expect(
            panel_b.get_by_test_id("thread-replies").get_by_test_id("thread-reply-body")
        ).to_have_text(["Friday works for QA", "Great, shipping Friday"])
        expect(b.locator('[data-testid=message][data-seq="4"]')).to_contain_text(
            "Great, shipping Friday"
        )
        assert message_texts(b) == [
            "Launch plan: Friday?",
            "unrelated note",
            "Great, shipping Friday",
        ]
        expect(
            b.locator('[data-testid=message][data-seq="1"]').get_by_test_id("thread-count")
        ).to_have_text("\u20682\u2069 replies")

        # Alice is elsewhere: Bob's next thread-only reply is no unread of `launch` in
        # her list (the thread's), his message with @all is, and a mention (live, and
        # after a reload: the server's counts agree)
        other = rest.conversation("group", [bob.id], name="elsewhere")["id"]
        conv_item(a, other).click()
        expect(a.get_by_test_id("message")).to_have_count(0)
        bob_rest = Rest(live_server.url, bob.token)
        bob_rest.send(cid, "one more in the thread", thread_root_seq=1)
        bob_rest.send(cid, "@all standup in five")
        for _ in range(2):
            item = conv_item(a, cid)
            expect(item.get_by_test_id("unread-badge")).to_have_text("1")
            expect(item.get_by_test_id("mention-badge")).to_be_visible()
            a.reload()
    finally:
        errors = page_errors(a) + page_errors(b)
        a.context.close()
        b.context.close()
    assert errors == []
