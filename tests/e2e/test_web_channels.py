"""An announcement channel in a real browser (Chromium via Playwright): a plain member
sees the composer disabled with a note that says why, and can still react; made a
moderator by the owner, their composer turns on live and they post. In Chinese, the
note is translated. A moderator pins a message and sees it in the pinned panel. A
private channel is listed in browsing only for its members."""

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
    send_from_ui,
)

require_browser()

from playwright.sync_api import Browser, expect  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def browser(live_server: Any) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_a_member_of_an_announcement_channel_reads_reacts_and_cannot_post(
    live_server: Any, browser: Browser
) -> None:
    admin = admin_rest(live_server)
    ann = create_user(admin, live_server, "ann", "Ann")
    body = {
        "kind": "channel",
        "name": "company-news",
        "member_ids": [ann.id],
        "announcement": True,
    }
    news = admin.call("POST", "/conversations", json=body)["conversation"]
    secret = admin.call(
        "POST",
        "/conversations",
        json={"kind": "channel", "name": "company-secret", "private": True},
    )["conversation"]
    admin.send(news["id"], "The office opens at nine")
    chat = open_signed_in(browser, live_server, "ann", ann.password)
    zh = None
    pages: list[Any] = []
    try:
        chat.goto(live_server.url + f"/#/c/{news['id']}")
        expect(chat.locator("[data-testid=message-body]").last).to_have_text(
            "The office opens at nine"
        )
        expect(chat.get_by_test_id("composer")).to_be_disabled()
        note = chat.get_by_test_id("composer-announcement")
        expect(note).to_be_visible()
        expect(note).to_contain_text("only its owners and moderators post")
        # everyone may react
        chat.locator(".msg").last.hover()
        chat.locator(".msg").last.get_by_test_id("act-react").click()
        chat.get_by_test_id("pick-reaction").first.click()
        expect(chat.get_by_test_id("reaction")).to_have_count(1)

        # made a moderator by the owner: the composer turns on at once
        admin.call(
            "PUT",
            f"/conversations/{news['id']}/members/{ann.id}/role",
            json={"role": "moderator"},
        )
        expect(chat.get_by_test_id("composer")).to_be_enabled()
        expect(note).to_be_hidden()
        send_from_ui(chat, "Thanks, noted")
        expect(chat.locator(".msg:not(.pending) [data-testid=message-body]").last).to_have_text(
            "Thanks, noted"
        )
        assert [m["body"] for m in admin.history(news["id"])][-1] == "Thanks, noted"
        # a moderator pins the first message; the pinned panel lists it
        first = chat.locator(".msg").first
        first.hover()
        first.get_by_test_id("act-pin").click()
        expect(chat.locator(".toast").filter(has_text="Pinned")).to_be_visible()
        chat.get_by_test_id("open-pins").click()
        expect(chat.get_by_test_id("pin-row")).to_have_count(1)
        expect(chat.get_by_test_id("pin-body")).to_have_text("The office opens at nine")
        pins = admin.call("GET", f"/conversations/{news['id']}/pins")["pins"]
        assert [(p["seq"], p["pinned_by"]) for p in pins] == [(1, ann.id)]
        chat.get_by_test_id("unpin").click()
        expect(chat.get_by_test_id("pin-row")).to_have_count(0)
        chat.keyboard.press("Escape")

        # a private channel is not in Ann's channel browsing; the public one is
        chat.goto(live_server.url + "/#/channels")
        chat.get_by_test_id("channel-search").fill("company")
        expect(chat.get_by_test_id("channel")).to_have_count(1)
        expect(chat.get_by_test_id("channel")).to_contain_text("company-news")
        assert secret["private"] is True

        # back to a plain member: disabled again; the note in Chinese
        admin.call(
            "PUT", f"/conversations/{news['id']}/members/{ann.id}/role", json={"role": "member"}
        )
        zh = open_signed_in(browser, live_server, "ann", ann.password, locale="zh-CN")
        zh.goto(live_server.url + f"/#/c/{news['id']}")
        expect(zh.get_by_test_id("composer")).to_be_disabled()
        expect(zh.get_by_test_id("composer-announcement")).to_contain_text("公告频道")

        # the owner turns the announcement setting off in the members panel: live, the
        # member's composer turns on
        owner = open_signed_in(
            browser, live_server, live_server.admin_username, live_server.admin_password
        )
        pages.append(owner)
        owner.goto(live_server.url + f"/#/c/{news['id']}")
        owner.get_by_test_id("toggle-members").click()
        box = owner.get_by_test_id("setting-announcement")
        expect(box).to_be_checked()
        box.uncheck()
        expect(zh.get_by_test_id("composer")).to_be_enabled()
        conv = admin.call("GET", f"/conversations/{news['id']}")["conversation"]
        assert conv["announcement"] is False
        # and gives Ann a role from the member list
        row = owner.locator(f"[data-testid=members-list] li[data-uid='{ann.id}']")
        row.get_by_test_id("member-role").select_option("moderator")
        expect(owner.locator(".toast").filter(has_text="is now")).to_be_visible()
        roles = {
            m["user_id"]: m["role"]
            for m in admin.call("GET", f"/conversations/{news['id']}")["conversation"]["members"]
        }
        assert roles[ann.id] == "moderator"
    finally:
        errors = page_errors(chat) + (page_errors(zh) if zh else [])
        errors += [e for p in pages for e in page_errors(p)]
        for p in (chat, zh, *pages):
            if p is not None:
                p.context.close()
        admin.close()
    assert errors == []
