"""The admin console's Conversations and Usage pages in a real browser (Chromium via
Playwright): the admin finds a group, sees its members and archives it; its member's
open chat turns read-only live (composer disabled with a note) and the group leaves
their list; the admin unarchives it; the audit viewer filters and exports; the Usage
page draws its chart, in Chinese too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Backend, LiveServer, free_port
from tests.e2e.web_helpers import (
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
def live(tmp_path: Path, backend: Backend) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data", free_port(), env=backend.env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser(live: LiveServer) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_admin_archives_a_group_and_reads_usage(live: LiveServer, browser: Browser) -> None:
    admin = admin_rest(live)
    ann = create_user(admin, live, "ann", "Ann")
    conv = admin.conversation("group", [ann.id], name="Quarterly plans")
    admin.send(conv["id"], "hello")
    chat = open_signed_in(browser, live, "ann", ann.password)
    page = open_signed_in(browser, live, live.admin_username, live.admin_password)
    zh = None
    try:
        chat.goto(live.url + f"/#/c/{conv['id']}")
        expect(chat.get_by_test_id("composer")).to_be_enabled()

        page.goto(live.url + "/#/admin/conversations")
        page.get_by_test_id("aconv-search").fill("quarterly")
        row = page.get_by_test_id("aconv-row").filter(has_text="Quarterly plans")
        expect(page.get_by_test_id("aconv-row")).to_have_count(1)
        row.get_by_test_id("aconv-members-btn").click()
        expect(page.get_by_test_id("aconv-member")).to_have_count(2)
        row.get_by_test_id("aconv-archive").click()
        page.get_by_test_id("confirm-ok").click()
        expect(page.locator(".toast").filter(has_text="Archived")).to_be_visible()
        # the default filter shows conversations that are not archived
        expect(page.get_by_test_id("aconv-row")).to_have_count(0)
        page.get_by_test_id("aconv-archived").select_option("true")
        expect(page.get_by_test_id("aconv-row")).to_have_count(1)

        # Ann's open chat turns read-only at once
        expect(chat.get_by_test_id("composer")).to_be_disabled()
        expect(chat.get_by_test_id("composer-archived")).to_be_visible()
        chat.reload()
        chat.get_by_test_id("conv-list").wait_for()
        expect(conv_item(chat, conv["id"])).to_have_count(0)

        page.get_by_test_id("aconv-unarchive").click()
        expect(page.locator(".toast").filter(has_text="Unarchived")).to_be_visible()
        assert (
            admin.call("GET", f"/conversations/{conv['id']}")["conversation"]["archived_at"] is None
        )

        # departments: rename, move to the top level, delete (empty only)
        top = admin.call("POST", "/departments", json={"name": "Sales"})["department"]
        sub = admin.call("POST", "/departments", json={"name": "East", "parent_id": top["id"]})
        page.goto(live.url + "/#/admin/departments")
        page.get_by_test_id("department").filter(has_text="East").click()
        page.get_by_test_id("department-rename").click()
        page.get_by_test_id("prompt-input").fill("Eastern")
        page.get_by_test_id("prompt-ok").click()
        expect(page.get_by_test_id("department").filter(has_text="Eastern")).to_be_visible()
        page.get_by_test_id("department").filter(has_text="Eastern").click()
        page.get_by_test_id("department-move").select_option("__top")
        expect(page.locator(".toast").filter(has_text="moved")).to_be_visible()
        moved = {d["id"]: d for d in admin.call("GET", "/departments")["departments"]}
        assert moved[sub["department"]["id"]]["parent_id"] is None
        page.get_by_test_id("department").filter(has_text="Sales").click()
        page.get_by_test_id("department-delete").click()
        page.get_by_test_id("confirm-ok").click()
        expect(page.get_by_test_id("department").filter(has_text="Sales")).to_have_count(0)

        # the audit log viewer: filtered, then exported as JSON lines
        page.goto(live.url + "/#/admin/audit")
        expect(page.get_by_test_id("audit-row").first).to_be_visible()
        page.get_by_test_id("audit-action").fill("conversation_archived")
        page.get_by_test_id("audit-apply").click()
        expect(page.get_by_test_id("audit-row")).to_have_count(1)
        with page.expect_download() as got:
            page.get_by_test_id("audit-export").click()
        lines = Path(got.value.path()).read_text().splitlines()
        assert [json.loads(x)["target_id"] for x in lines] == [conv["id"]]

        page.goto(live.url + "/#/admin/usage")
        expect(page.get_by_test_id("usage-chart")).to_be_visible()
        expect(page.get_by_test_id("usage-row")).to_have_count(30)
        expect(page.get_by_test_id("usage-row").first).to_contain_text("1")
        expect(page.get_by_test_id("usage-storage")).to_contain_text("database")
        page.get_by_test_id("usage-days").select_option("7")
        expect(page.get_by_test_id("usage-row")).to_have_count(7)

        zh = open_signed_in(browser, live, live.admin_username, live.admin_password, locale="zh-CN")
        zh.goto(live.url + "/#/admin/usage")
        expect(zh.get_by_test_id("admin-tab-usage")).to_have_text("用量")
        expect(zh.get_by_test_id("usage-storage")).to_contain_text("数据库")
    finally:
        errors = page_errors(page) + page_errors(chat) + (page_errors(zh) if zh else [])
        for p in (page, chat, zh):
            if p is not None:
                p.context.close()
        admin.close()
    assert errors == []


def test_admin_changes_a_limit_on_the_organization_page(
    live: LiveServer, browser: Browser
) -> None:
    admin = admin_rest(live)
    ann = create_user(admin, live, "ann", "Ann")
    conv = admin.conversation("group", [ann.id], name="Limits")
    page = open_signed_in(browser, live, live.admin_username, live.admin_password)
    try:
        page.goto(live.url + "/#/admin/org")
        expect(page.get_by_test_id("org-policy")).to_have_value("none")
        field = page.get_by_test_id("config-max_message_bytes")
        expect(field).to_have_value("16384")
        field.fill("20")
        page.get_by_test_id("config-limits-save").click()
        expect(page.locator("#toasts")).to_contain_text("Settings saved.")
        page.reload()  # what the server now holds
        expect(page.get_by_test_id("config-max_message_bytes")).to_have_value("20")
        # the next send obeys it, without a restart
        res = admin.client.post(
            f"/conversations/{conv['id']}/messages",
            json={"client_msg_id": "c1", "body": "x" * 30},
        )
        assert res.json()["error"]["code"] == "too_large"
        assert res.json()["error"]["details"]["limit"] == 20
        admin.send(conv["id"], "short")
    finally:
        errors = page_errors(page)
        page.context.close()
        admin.close()
    assert errors == []
