"""The web client's slash commands and the admin page's Integrations tab, in headless
Chromium against the real server (on SQLite and on PostgreSQL + Redis): an admin
registers a command answered by a loopback receiver and makes an incoming webhook; a
member picks the command from the composer's list, sees a reply only they can see
("仅你可见" in Chinese), and one posted for everyone."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ARTIFACTS, Backend, LiveServer, free_port
from tests.e2e.web_helpers import (
    DESKTOP,
    admin_rest,
    chromium,
    create_user,
    message_texts,
    page_errors,
    require_browser,
    watch_errors,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
require_browser()

from playwright.sync_api import expect  # noqa: E402

ANSWERS = {
    "/ping": {"text": "pong: *only you*", "response_type": "ephemeral"},
    "/deploy": {"text": "deployed for everyone", "response_type": "in_channel"},
}


class _Answering(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = json.dumps(ANSWERS.get(self.path, {})).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@pytest.fixture
def integration_server(tmp_path: Path, backend: Backend) -> Iterator[LiveServer]:
    env = {**backend.env, "TIDINGS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    server = LiveServer(tmp_path / "data", free_port(), env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())


def test_slash_commands_and_incoming_webhooks_in_the_browser(
    integration_server: LiveServer, receiver: str
) -> None:
    server = integration_server
    admin = admin_rest(server)
    ann = create_user(admin, server, "ann", "Ann Lee")
    team = admin.conversation("group", [ann.id], name="Ops")
    with chromium() as browser:
        # The admin registers two commands and an incoming webhook on the page.
        context = browser.new_context(viewport=DESKTOP, locale="en-US")
        page = context.new_page()
        watch_errors(page)
        page.goto(server.url + "/")
        page.get_by_test_id("login-username").fill(server.admin_username)
        page.get_by_test_id("login-password").fill(server.admin_password)
        page.get_by_test_id("login-submit").click()
        page.get_by_test_id("conv-list").wait_for()
        page.goto(server.url + "/#/admin/integrations")
        for name in ("ping", "deploy"):
            page.get_by_test_id("command-name").fill(name)
            page.get_by_test_id("command-url").fill(f"{receiver}/{name}")
            page.get_by_test_id("command-description").fill(f"the {name} command")
            page.get_by_test_id("create-command").click()
            expect(page.get_by_test_id("command-secret-value")).to_be_visible()
            expect(page.get_by_test_id("command-row").filter(has_text=f"/{name}")).to_be_visible()
        page.get_by_test_id("hook-conversation").select_option(team["id"])
        page.get_by_test_id("hook-name").fill("CI")
        page.get_by_test_id("create-hook").click()
        url = page.get_by_test_id("hook-url").inner_text()
        assert url.startswith(server.url + "/api/v1/hooks/")
        expect(page.get_by_test_id("hook-row").filter(has_text="CI")).to_be_visible()
        assert httpx.post(url, json={"text": "build passed"}).status_code == 200
        assert page_errors(page) == []
        context.close()

        # Ann (in Chinese) picks /ping from the composer's list.
        context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
        page = context.new_page()
        watch_errors(page)
        page.goto(server.url + "/")
        page.get_by_test_id("login-username").fill("ann")
        page.get_by_test_id("login-password").fill(ann.password)
        page.get_by_test_id("login-submit").click()
        page.get_by_test_id("conv-list").wait_for()
        page.wait_for_function("() => document.documentElement.dataset.connection === 'online'")
        page.goto(server.url + f"/#/c/{team['id']}")
        posted = page.get_by_test_id("message-body").filter(has_text="build passed")
        expect(posted).to_be_visible()
        box = page.get_by_test_id("composer")
        box.fill("/pi")
        expect(page.get_by_test_id("command-item")).to_have_count(1)
        expect(page.get_by_test_id("command-item")).to_contain_text("/ping")
        box.press("Enter")  # chooses it
        assert box.input_value() == "/ping "
        box.type("hello")
        box.press("Enter")  # invokes it
        reply = page.get_by_test_id("ephemeral")
        expect(reply).to_contain_text("pong")
        expect(page.get_by_test_id("ephemeral-label")).to_have_text("仅你可见")
        assert "/ping hello" not in message_texts(page)
        box.fill("/deploy now")
        box.press("Enter")
        expect(
            page.get_by_test_id("message-body").filter(has_text="deployed for everyone")
        ).to_be_visible()
        page.get_by_test_id("ephemeral-dismiss").click()
        expect(page.get_by_test_id("ephemeral")).to_have_count(0)
        assert page_errors(page) == []
        context.close()
    bodies = [m["body"] for m in admin.history(team["id"])]
    assert bodies == ["build passed", "deployed for everyone"]
    admin.close()
