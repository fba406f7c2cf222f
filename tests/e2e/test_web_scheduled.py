"""Scheduled messages in a real browser (Chromium via Playwright): Ann schedules the
composer's text with "Send later" in one tab; her other tab counts it and lists it in
the Scheduled panel at once (the events), where she edits and cancels it; one scheduled
for a few seconds ahead is sent by the server's worker and shows in the timeline, and
leaves the list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.web_helpers import (
    Rest,
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


def test_send_later_edit_cancel_and_delivery_in_the_browser(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    admin = admin_rest(live_server)
    ann = create_user(admin, live_server, "scweb", "Ann Later")
    body = {"kind": "group", "name": "Scheduled test", "member_ids": [ann.id]}
    cid = admin.call("POST", "/conversations", json=body)["conversation"]["id"]
    admin.send(cid, "Hello")
    one = open_signed_in(browser, live_server, "scweb", ann.password)
    two = open_signed_in(browser, live_server, "scweb", ann.password)
    try:
        for page in (one, two):
            page.goto(live_server.url + f"/#/c/{cid}")
            expect(page.locator("[data-testid=message-body]").last).to_have_text("Hello")
        notes = tmp_path / "agenda.txt"
        notes.write_bytes(b"1. budget\n2. hiring\n")
        one.get_by_test_id("attach-input").set_input_files([str(notes)])
        expect(one.locator("[data-testid=upload][data-status=done]")).to_have_count(1)
        one.get_by_test_id("composer").fill("Tomorrow's agenda")
        one.get_by_test_id("send-later").click()
        dialog = one.get_by_test_id("schedule-dialog")
        expect(dialog.get_by_test_id("schedule-body")).to_have_value("Tomorrow's agenda")
        expect(dialog.get_by_test_id("schedule-files")).to_have_text("1 file attached")
        dialog.get_by_test_id("schedule-submit").click()
        expect(one.get_by_test_id("schedule-dialog")).to_have_count(0)
        expect(one.get_by_test_id("composer")).to_have_value("")
        expect(one.get_by_test_id("upload")).to_have_count(0)  # the tray empties too
        expect(one.get_by_test_id("composer-scheduled")).to_contain_text("scheduled")
        # the other tab follows by the event
        expect(two.get_by_test_id("nav-scheduled-count")).to_have_text("1")
        two.get_by_test_id("nav-scheduled").click()
        expect(two.get_by_test_id("scheduled-body")).to_have_text("Tomorrow's agenda 📎1")
        two.get_by_test_id("scheduled-edit").click()
        edit = two.get_by_test_id("schedule-dialog")
        edit.get_by_test_id("schedule-body").fill("The agenda, edited")
        edit.get_by_test_id("schedule-submit").click()
        expect(two.get_by_test_id("scheduled-body")).to_have_text("The agenda, edited 📎1")
        # a past time is refused before it reaches the server
        two.get_by_test_id("scheduled-edit").click()
        edit = two.get_by_test_id("schedule-dialog")
        edit.get_by_test_id("schedule-at").fill("2020-01-01T10:00")
        edit.get_by_test_id("schedule-submit").click()
        expect(edit.get_by_test_id("schedule-error")).to_have_text("Pick a time in the future")
        edit.get_by_role("button", name="Cancel").click()
        two.get_by_test_id("scheduled-cancel").click()
        expect(two.get_by_test_id("scheduled-row")).to_have_count(0)
        expect(two.get_by_test_id("scheduled-dialog")).to_contain_text("No scheduled messages")
        expect(one.get_by_test_id("composer-scheduled")).to_be_hidden()

        # one due in a few seconds: the server sends it, every tab shows it
        soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        rest = Rest(live_server.url, ann.token)
        made = rest.call(
            "POST",
            f"/conversations/{cid}/scheduled",
            json={"body": "Sent by the job", "send_at": soon},
        )
        rest.close()
        assert made["scheduled"]["state"] == "pending"
        expect(one.get_by_test_id("composer-scheduled")).to_contain_text("scheduled")
        expect(one.locator("[data-testid=message-body]").last).to_have_text(
            "Sent by the job", timeout=30_000
        )
        expect(one.get_by_test_id("composer-scheduled")).to_be_hidden()
        expect(two.get_by_test_id("nav-scheduled-count")).to_be_hidden()
        assert page_errors(one) == [] and page_errors(two) == []
    finally:
        one.context.close()
        two.context.close()
