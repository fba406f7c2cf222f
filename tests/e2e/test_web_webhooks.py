"""The webhooks admin page in a real browser (Debian's Chromium via Playwright), against
the real server process and a real receiver: register (the secret shown once), test
ping, the delivery log, off and on, a new secret, delete; and the page in Chinese."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS, Backend, LiveServer, free_port
from tests.e2e.web_helpers import admin_rest, chromium, open_signed_in, page_errors, require_browser

require_browser()

from playwright.sync_api import Browser, expect  # noqa: E402

pytestmark = [pytest.mark.timeout(120), pytest.mark.e2e]


class _Hook(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012 - one receiver per test

    def do_POST(self) -> None:  # the http.server API names it so
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    _Hook.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hook_server(tmp_path: Path, backend: Backend) -> Iterator[LiveServer]:
    env = {**backend.env, "TIDINGS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    server = LiveServer(tmp_path / "data", free_port(), env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())


@pytest.fixture
def browser(hook_server: LiveServer) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_admin_registers_pings_and_manages_a_webhook(
    hook_server: LiveServer, browser: Browser, receiver: ThreadingHTTPServer
) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/in"
    page = open_signed_in(
        browser, hook_server, hook_server.admin_username, hook_server.admin_password
    )
    admin: Any = admin_rest(hook_server)
    try:
        page.goto(hook_server.url + "/#/admin/webhooks")
        # refused: an address the server may not reach
        page.get_by_test_id("webhook-url").fill("http://169.254.169.254/latest")
        page.get_by_test_id("create-webhook").click()
        expect(page.locator(".form-error").first).to_contain_text("link-local")
        page.get_by_test_id("webhook-url").fill(url)
        page.get_by_test_id("webhook-kind-reaction").check()
        page.get_by_test_id("create-webhook").click()
        secret_box = page.get_by_test_id("webhook-secret")
        expect(secret_box).to_have_value(re.compile("^whsec_"))
        secret = secret_box.input_value()
        row = page.get_by_test_id("webhook-row").filter(has_text="127.0.0.1")
        expect(row).to_have_count(1)
        expect(row.get_by_test_id("webhook-status")).to_have_text("On")
        assert secret not in page.get_by_test_id("webhooks-table").inner_text()

        row.get_by_test_id("test-webhook").click()
        row.get_by_test_id("webhook-deliveries").click()
        delivered = page.get_by_test_id("delivery-row").filter(has_text="Delivered")
        for _ in range(50):  # the worker delivers it within moments
            if delivered.count():
                break
            page.wait_for_timeout(200)
            page.get_by_test_id("webhook-log-refresh").click()
        expect(delivered).to_have_count(1)
        expect(delivered).to_contain_text("Test ping")
        headers, body = _Hook.got[0]
        stamp = headers["x-tidings-timestamp"]
        mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        assert headers["x-tidings-signature"] == "sha256=" + mac.hexdigest()

        row.get_by_test_id("disable-webhook").click()
        expect(row.get_by_test_id("webhook-status")).to_have_text("Off")
        row.get_by_test_id("enable-webhook").click()
        expect(row.get_by_test_id("webhook-status")).to_have_text("On")
        row.get_by_test_id("rotate-webhook").click()
        page.get_by_test_id("confirm-ok").click()
        expect(secret_box).not_to_have_value(secret)
        [hook] = admin.call("GET", "/webhooks")["webhooks"]
        assert hook["enabled"] is True

        # the same page in Chinese
        page.get_by_test_id("lang-select").select_option("zh-CN")
        expect(page.get_by_test_id("admin-tab-webhooks")).to_have_text("网络钩子")
        expect(row.get_by_test_id("webhook-status")).to_have_text("已启用")

        row.get_by_test_id("delete-webhook").click()
        page.get_by_test_id("confirm-ok").click()
        expect(page.get_by_test_id("webhook-row")).to_have_count(0)
        assert admin.call("GET", "/webhooks")["webhooks"] == []
    finally:
        admin.close()
        errors = page_errors(page)
        page.context.close()
        assert errors == []
