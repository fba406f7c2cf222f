"""Around the timeline in a real browser (Chromium via Playwright): saved messages. Ann
saves a message in one tab; her other tab shows it saved at once (the event), lists it
in the Saved panel, opens it from there, and removes it; the first tab follows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.web_helpers import (
    admin_rest,
    chromium,
    create_user,
    open_signed_in,
    page_errors,
    require_browser,
)

require_browser()

from playwright.sync_api import Browser, expect  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def browser(live_server: Any) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_saving_a_message_shows_in_every_tab_and_in_the_saved_panel(
    live_server: Any, browser: Browser
) -> None:
    admin = admin_rest(live_server)
    ann = create_user(admin, live_server, "svweb", "Ann Saver")
    body = {"kind": "group", "name": "Saved test", "member_ids": [ann.id]}
    cid = admin.call("POST", "/conversations", json=body)["conversation"]["id"]
    admin.send(cid, "Remember the quarterly report")
    admin.send(cid, "And something else")
    one = open_signed_in(browser, live_server, "svweb", ann.password)
    two = open_signed_in(browser, live_server, "svweb", ann.password)
    try:
        for page in (one, two):
            page.goto(live_server.url + f"/#/c/{cid}")
            expect(page.locator("[data-testid=message-body]").last).to_have_text(
                "And something else"
            )
        first = one.locator(".msg").first
        first.hover()
        first.get_by_test_id("act-save").click()
        expect(one.locator(".toast").filter(has_text="Saved")).to_be_visible()
        expect(first.get_by_test_id("act-unsave")).to_have_count(1)
        # the other tab follows by the event
        expect(two.locator(".msg").first.get_by_test_id("act-unsave")).to_have_count(1)
        two.get_by_test_id("nav-saved").click()
        expect(two.get_by_test_id("saved-row")).to_have_count(1)
        expect(two.get_by_test_id("saved-body")).to_have_text("Remember the quarterly report")
        two.get_by_test_id("saved-open").click()
        expect(two.get_by_test_id("saved-dialog")).to_have_count(0)
        expect(two.locator("[data-testid=message-body]").first).to_be_visible()
        two.get_by_test_id("nav-saved").click()
        two.get_by_test_id("saved-remove").click()
        expect(two.get_by_test_id("saved-row")).to_have_count(0)
        expect(two.get_by_test_id("saved-dialog")).to_contain_text("Nothing saved yet")
        expect(first.get_by_test_id("act-save")).to_have_count(1)
        assert page_errors(one) == [] and page_errors(two) == []
    finally:
        one.context.close()
        two.context.close()
