"""Around the timeline in a real browser (Chromium via Playwright): saved messages. Ann
saves a message in one tab; her other tab shows it saved at once (the event), lists it
in the Saved panel, opens it from there, and removes it; the first tab follows."""

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


def test_marking_unread_from_a_message_and_from_the_list(
    live_server: Any, browser: Browser
) -> None:
    admin = admin_rest(live_server)
    ann = create_user(admin, live_server, "urweb", "Ann Unread")
    body = {"kind": "group", "name": "Unread test", "member_ids": [ann.id]}
    cid = admin.call("POST", "/conversations", json=body)["conversation"]["id"]
    other = admin.call("POST", "/conversations", json={**body, "name": "Other room"})[
        "conversation"
    ]["id"]
    for text in ("first", "second", "third"):
        admin.send(cid, text)
    admin.send(other, "hello there")
    one = open_signed_in(browser, live_server, "urweb", ann.password)
    two = open_signed_in(browser, live_server, "urweb", ann.password)
    try:
        one.goto(live_server.url + f"/#/c/{cid}")
        expect(one.locator("[data-testid=message-body]").last).to_have_text("third")
        expect(conv_item(one, cid).get_by_test_id("unread-badge")).to_have_count(0)
        expect(conv_item(two, cid).get_by_test_id("unread-badge")).to_have_count(0)
        second = one.locator(".msg").nth(1)
        second.hover()
        second.get_by_test_id("act-unread").click()
        expect(one.locator(".toast").filter(has_text="Marked unread")).to_be_visible()
        # both tabs count two unread (the other one by the read event); the open one
        # is not marked read again while it stays open
        for page in (one, two):
            expect(conv_item(page, cid).get_by_test_id("unread-badge")).to_have_text("2")
        one.wait_for_timeout(600)
        expect(conv_item(one, cid).get_by_test_id("unread-badge")).to_have_text("2")
        mine = Rest(live_server.url, ann.token).call("GET", "/conversations")["conversations"]
        assert {c["id"]: (c["read_seq"], c["unread"]) for c in mine}[cid] == (1, 2)
        # from the list: the last message of another conversation
        two.goto(live_server.url + f"/#/c/{other}")
        expect(conv_item(two, other).get_by_test_id("unread-badge")).to_have_count(0)
        conv_item(two, cid).hover()
        item = two.locator("li.conv-item").filter(has=conv_item(two, other))
        item.hover()
        item.get_by_test_id("conv-mark-unread").click()
        expect(conv_item(one, other).get_by_test_id("unread-badge")).to_have_text("1")
        # leaving and opening it again reads it as usual
        one.goto(live_server.url + f"/#/c/{other}")
        expect(conv_item(one, other).get_by_test_id("unread-badge")).to_have_count(0)
        one.goto(live_server.url + f"/#/c/{cid}")
        expect(conv_item(one, cid).get_by_test_id("unread-badge")).to_have_count(0)
        assert page_errors(one) == [] and page_errors(two) == []
    finally:
        one.context.close()
        two.context.close()


def test_forwarding_a_message_with_a_link_back(live_server: Any, browser: Browser) -> None:
    admin = admin_rest(live_server)
    ann = create_user(admin, live_server, "fwweb", "Ann Forward")
    bob = create_user(admin, live_server, "fwwebbob", "Bob Other")
    source = admin.call(
        "POST",
        "/conversations",
        json={"kind": "group", "name": "Fw source", "member_ids": [ann.id]},
    )["conversation"]["id"]
    target = Rest(live_server.url, ann.token).call(
        "POST",
        "/conversations",
        json={"kind": "group", "name": "Fw target", "member_ids": [bob.id]},
    )["conversation"]["id"]
    admin.send(source, "Please pass this on")
    page = open_signed_in(browser, live_server, "fwweb", ann.password)
    other = open_signed_in(browser, live_server, "fwwebbob", bob.password)
    try:
        page.goto(live_server.url + f"/#/c/{source}")
        expect(page.locator("[data-testid=message-body]").last).to_have_text("Please pass this on")
        msg = page.locator(".msg").last
        msg.hover()
        msg.get_by_test_id("act-forward").click()
        page.get_by_test_id("forward-filter").fill("target")
        expect(page.get_by_test_id("forward-target")).to_have_count(1)
        page.get_by_test_id("forward-target").click()
        expect(page.locator(".toast").filter(has_text="Forwarded to")).to_be_visible()
        # Bob (not in the source) sees it forwarded, without where from
        other.goto(live_server.url + f"/#/c/{target}")
        expect(other.locator("[data-testid=message-body]").last).to_have_text("Please pass this on")
        expect(other.get_by_test_id("forwarded-label")).to_have_text("↪ Forwarded")
        # Ann sees where from, and the label opens the original
        page.goto(live_server.url + f"/#/c/{target}")
        label = page.get_by_test_id("forwarded-label")
        expect(label).to_contain_text("Forwarded from")
        expect(label).to_contain_text("Fw source")
        label.click()
        page.wait_for_url(f"**/#/c/{source}")
        copy = Rest(live_server.url, ann.token).history(target)[-1]
        assert copy["forwarded_from"] == {"conversation_id": source, "seq": 1}
        assert page_errors(page) == [] and page_errors(other) == []
    finally:
        page.context.close()
        other.context.close()
