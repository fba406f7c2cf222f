"""The admin page for jobs and plugins in a real browser (Chromium via Playwright): a
plugin's failing after_event hook is a dead letter the admin sees with its payload and
last error, retries and purges; a DLP plugin refuses a message in the chat, in Chinese."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import plugin_samples
from tests.conftest import ARTIFACTS, Backend, LiveServer, free_port
from tests.e2e.web_helpers import (
    admin_rest,
    chromium,
    create_user,
    open_signed_in,
    page_errors,
    require_browser,
    send_from_ui,
)

ROOT = Path(__file__).resolve().parents[2]
require_browser()

from playwright.sync_api import Browser, expect  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def plugged_server(tmp_path: Path, backend: Backend) -> Iterator[LiveServer]:
    """The real server with the test plugin `t-events` (after_event fails, one attempt:
    a dead letter at once) and the shipped `dlp`, installed on the server's path."""
    site = tmp_path / "site"
    installing = plugin_samples.install(site)
    next(installing)
    env = {
        **backend.env,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), str(ROOT / "src")]),
        "TIDINGS_PLUGINS": "t-events,dlp",
        "TIDINGS_PLUGIN_SETTINGS": json.dumps(
            {"t-events": {"fail_times": 99}, "dlp": {"words": {"secret_zh": ["机密"]}}},
            ensure_ascii=False,
        ),
        "TIDINGS_PLUGIN_JOB_MAX_ATTEMPTS": "1",
        # the DLP refusal is what the test looks at, not the hook's 50 ms limit, which a
        # loaded runner can overrun (a sync hook runs on a thread) and so fail it open
        "TIDINGS_PLUGIN_TIMEOUT_SECONDS": "5",
    }
    server = LiveServer(tmp_path / "data", free_port(), env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())
        next(installing, None)


@pytest.fixture
def browser(plugged_server: LiveServer) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _wait_for_dead(admin: Any, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        jobs = admin.call("GET", "/admin/jobs", params={"state": "dead"})["jobs"]
        if len(jobs) >= count:
            return list(jobs)
        time.sleep(0.2)
    raise AssertionError("no dead letter appeared")


def test_admin_sees_retries_and_purges_dead_letters_and_the_plugins(
    plugged_server: LiveServer, browser: Browser
) -> None:
    server = plugged_server
    admin = admin_rest(server)
    ann = create_user(admin, server, "ann", "Ann")
    conv = admin.conversation("group", [ann.id], name="ops")
    admin.send(conv["id"], "hello")
    (dead,) = _wait_for_dead(admin, 1)
    page = open_signed_in(browser, server, server.admin_username, server.admin_password)
    chat = None
    try:
        page.goto(server.url + "/#/admin/jobs")
        row = page.get_by_test_id("dead-row")
        expect(row).to_have_count(1)
        expect(row.get_by_test_id("dead-error")).to_have_text(
            "RuntimeError: after_event failed on attempt 1"
        )
        row.locator("summary").click()
        expect(row.get_by_test_id("dead-payload")).to_contain_text('"kind": "message"')
        expect(page.get_by_test_id("jobs-lag")).to_contain_text("1 dead letter")
        expect(page.get_by_test_id("queue-row").filter(has_text="default")).to_be_visible()
        plugins = page.get_by_test_id("plugin-row")
        expect(plugins).to_have_count(2)
        expect(plugins.first).to_contain_text("t-events")
        expect(plugins.first).to_contain_text("tidings-test-plugins 1.0")
        expect(plugins.nth(1)).to_contain_text("before_message")

        # Retry: it runs again (and, still failing, is a dead letter again)
        row.get_by_test_id("dead-retry").click()
        expect(page.locator(".toast").filter(has_text="The job runs again")).to_be_visible()
        deadline = time.monotonic() + 20
        while admin.call("GET", f"/admin/jobs/{dead['id']}")["job"]["state"] != "dead":
            assert time.monotonic() < deadline, "the retried job never ran"
            time.sleep(0.2)
        page.get_by_test_id("jobs-refresh").click()
        expect(page.get_by_test_id("dead-row")).to_have_count(1)

        # Purge, after a confirmation
        page.get_by_test_id("dead-purge").click()
        page.get_by_test_id("confirm-ok").click()
        expect(page.locator(".toast").filter(has_text="1 dead letter deleted")).to_be_visible()
        expect(page.get_by_test_id("dead-table")).to_contain_text("No dead letters.")
        assert admin.call("GET", "/admin/jobs", params={"state": "dead"})["jobs"] == []

        # Ann, in Chinese, sends a word the DLP plugin refuses: the chat says why
        chat = open_signed_in(browser, server, "ann", ann.password, locale="zh-CN")
        chat.goto(server.url + f"/#/c/{conv['id']}")
        send_from_ui(chat, "这份文件是机密的")
        expect(chat.get_by_test_id("failed-why")).to_have_text(
            "未发送：组织的消息策略不允许此内容。"
        )
        assert [m["body"] for m in admin.history(conv["id"])] == ["hello"]
    finally:
        errors = page_errors(page) + (page_errors(chat) if chat is not None else [])
        page.context.close()
        if chat is not None:
            chat.context.close()
        admin.close()
    assert errors == []
