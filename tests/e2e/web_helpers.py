"""Helpers for the browser tests of the web client (tests/e2e/test_web.py).

A plain module (not a conftest): REST set-up through httpx as the admin, and a few
Playwright steps that several tests share.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct-horse-battery"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None when they can): Playwright's Python
    package and Debian's Chromium are both needed."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        return "the playwright Python package is not installed"
    if not os.path.exists(CHROMIUM):
        return f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def require_browser(what: str = "browser tests") -> None:
    """At the top of a browser test module: skip the module when the browser is missing,
    or fail it when TIDINGS_REQUIRE_SERVICES=1 (CI, where nothing may skip)."""
    missing = browser_missing()
    if missing is None:
        return
    if os.environ.get("TIDINGS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} required (TIDINGS_REQUIRE_SERVICES=1) but {missing}", pytrace=False)
    pytest.skip(f"{what} skipped: {missing}", allow_module_level=True)


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium for one test, driven by Playwright's sync API; start it after the
    server. While the sync API is open it keeps an event loop marked as running in this
    thread, so no fixture that calls asyncio.run() (server set-up) may run meanwhile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Account:
    id: str
    username: str
    display_name: str
    password: str
    token: str


class Rest:
    """A tiny REST client for one signed-in user."""

    def __init__(self, base_url: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        res = self.client.request(method, path, **kwargs)
        assert res.status_code < 300, f"{method} {path} -> {res.status_code} {res.text}"
        return res.json() if res.content else None

    def send(self, cid: str, body: str, **extra: Any) -> dict[str, Any]:
        payload = {"client_msg_id": str(uuid.uuid4()), "body": body, **extra}
        return self.call("POST", f"/conversations/{cid}/messages", json=payload)["message"]

    def conversation(
        self, kind: str, member_ids: list[str], name: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind, "member_ids": member_ids}
        if name:
            body["name"] = name
        return self.call("POST", "/conversations", json=body)["conversation"]

    def me(self) -> dict[str, Any]:
        return self.call("GET", "/users/me")["user"]

    def history(self, cid: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/conversations/{cid}/messages", params={"limit": 200})["messages"]

    def close(self) -> None:
        self.client.close()


def login(base_url: str, username: str, password: str) -> str:
    res = httpx.post(
        f"{base_url}/api/v1/auth/login",
        json={"username": username, "password": password},
        timeout=10,
    )
    assert res.status_code == 200, res.text
    return res.json()["token"]


def admin_rest(server: Any) -> Rest:
    return Rest(server.url, login(server.url, server.admin_username, server.admin_password))


def create_user(
    admin: Rest, server: Any, username: str, display_name: str, role: str = "member"
) -> Account:
    user = admin.call(
        "POST",
        "/users",
        json={
            "username": username,
            "password": PASSWORD,
            "display_name": display_name,
            "role": role,
        },
    )["user"]
    return Account(
        user["id"], username, display_name, PASSWORD, login(server.url, username, PASSWORD)
    )


def screenshot_dir(tmp_path_factory: Any) -> Path:
    wanted = os.environ.get("TIDINGS_SCREENSHOT_DIR")
    if wanted:
        path = Path(wanted)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tmp_path_factory.mktemp("screenshots"))


def open_signed_in(
    browser: Any,
    server: Any,
    username: str,
    password: str,
    *,
    viewport: dict[str, int] = DESKTOP,
    locale: str = "en-US",
    prepare: Any = None,
) -> Any:
    """A fresh browser context, signed in through the login form. Returns the page.

    `prepare(context)` runs before the first navigation (to route requests or sockets)."""
    context = browser.new_context(viewport=viewport, locale=locale)
    if prepare is not None:
        prepare(context)
    page = context.new_page()
    watch_errors(page)
    page.goto(server.url + "/")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("conv-list").wait_for()
    # Wait for the live connection (the server said `ready`).
    page.wait_for_function("() => document.documentElement.dataset.connection === 'online'")
    return page


PAGE_ERRORS: dict[int, list[str]] = {}


def watch_errors(page: Any) -> None:
    """Record uncaught JavaScript errors of a page (see `page_errors`)."""
    errors = PAGE_ERRORS.setdefault(id(page), [])
    page.on("pageerror", lambda exc: errors.append(str(exc)))


def page_errors(page: Any) -> list[str]:
    return PAGE_ERRORS.pop(id(page), [])


def conv_item(page: Any, cid: str) -> Any:
    return page.locator(f'[data-testid=conv-item][data-cid="{cid}"]')


def message_texts(page: Any) -> list[str]:
    """Bodies of the confirmed messages shown in the open conversation, in order."""
    return page.locator(
        ".msg:not(.pending):not(.failed) [data-testid=message-body]"
    ).all_inner_texts()


def send_from_ui(page: Any, text: str) -> None:
    box = page.get_by_test_id("composer")
    box.fill(text)
    box.press("Enter")


def overflowing(page: Any) -> list[str]:
    """Main layout parts that stick out of the viewport (nothing should at phone width)."""
    return page.evaluate(
        """() => {
        const w = window.innerWidth;
        const parts = '.sidebar, .main, .conv-item, .chat-header, .composer, .page-header, '
          + '.card, .msg';
        return [...document.querySelectorAll(parts)]
          .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().right > w + 1)
          .map((e) => e.className);
        }"""
    )
