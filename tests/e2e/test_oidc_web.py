"""Single sign-on end to end: the web client in Debian's Chromium (Playwright), the real
`tidings serve` process, and a real, certified OpenID provider on loopback: the npm
package `oidc-provider` (pinned in tests/oidc/package.json and its lock, installed once
into a cache directory; configured by tests/oidc/provider.mjs with a static client and a
few accounts with claims and groups; its development login screen takes any password).

A few examples, not dozens (each starts a provider, a server and a browser). The refusals
(wrong issuer, expired token, replayed state, tampered signature, ...) are tested at the
service and HTTP level with tokens the tests sign: tests/integration/services/test_oidc.py
and tests/integration/api/test_oidc_api.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ARTIFACTS, Backend, LiveServer, free_port
from tests.e2e.web_helpers import (
    DESKTOP,
    browser_missing,
    chromium,
    page_errors,
    watch_errors,
)
from tests.oidc_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    NodeProvider,
    install_provider,
    missing_node,
    skip_or_fail,
)

if browser_missing() is None:
    from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.timeout(180)


def _missing() -> str | None:
    return browser_missing() or missing_node()


@dataclass
class Stack:
    provider: NodeProvider
    server: LiveServer


@pytest.fixture
def stack(tmp_path: Path, backend: Backend) -> Iterator[Stack]:
    """The provider and the server, each knowing the other's address."""
    reason = _missing()
    if reason:
        skip_or_fail(f"single sign-on browser tests skipped: {reason}")
    directory = install_provider()
    server_port, provider_port = free_port(), free_port()
    base = f"http://127.0.0.1:{server_port}"
    provider = NodeProvider(
        directory, provider_port, f"{base}/api/v1/auth/oidc/callback", f"{base}/"
    ).start()
    env = {
        **backend.env,
        "TIDINGS_OIDC_ISSUER": provider.issuer,
        "TIDINGS_OIDC_CLIENT_ID": CLIENT_ID,
        "TIDINGS_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "TIDINGS_OIDC_SCOPES": "openid profile email groups",
        "TIDINGS_OIDC_PROVIDER_NAME": "Acme SSO",
        "TIDINGS_OIDC_GROUP_ROLES": "tidings-admins=admin",
        "TIDINGS_OIDC_DEPARTMENT_CLAIM": "department",
    }
    server = LiveServer(tmp_path / "data", server_port, env=env)
    try:
        server.start(timeout=90)  # a loaded CI machine starts it slowly
        if server.port != server_port:  # the port was taken meanwhile: the provider
            provider.stop()  # knows the old callback; start it again with the new one
            base = f"http://127.0.0.1:{server.port}"
            provider = NodeProvider(
                directory, provider_port, f"{base}/api/v1/auth/oidc/callback", f"{base}/"
            ).start()
        yield Stack(provider, server)
    finally:
        server.stop()
        provider.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())


@pytest.fixture
def browser(stack: Stack) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _page(browser: Browser, locale: str = "en-US") -> Page:
    context = browser.new_context(viewport=DESKTOP, locale=locale)
    page = context.new_page()
    watch_errors(page)
    return page


def _sign_in_at_the_provider(page: Page, provider: NodeProvider, login: str) -> None:
    page.wait_for_url(provider.issuer + "/interaction/**")
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password: devInteractions")
    page.locator("button[type=submit]").click()
    consent = page.locator("button[type=submit]", has_text="Continue")
    consent.wait_for()
    consent.click()


def _audit(server: LiveServer) -> list[dict[str, Any]]:
    token = server.login()
    r = httpx.get(
        server.url + "/api/v1/audit",
        params={"limit": 500},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    r.raise_for_status()
    entries: list[dict[str, Any]] = r.json()["entries"]
    return entries


def test_a_person_signs_in_with_the_provider_and_out_of_both(
    stack: Stack, browser: Browser
) -> None:
    server, provider = stack.server, stack.provider
    page = _page(browser)
    seen: list[str] = []
    page.on("request", lambda req: seen.append(req.url))
    page.goto(server.url + "/")
    button = page.get_by_test_id("login-oidc")
    expect(button).to_have_text("Sign in with \u2068Acme SSO\u2069")
    button.click()
    _sign_in_at_the_provider(page, provider, "alice")
    page.get_by_test_id("conv-list").wait_for()
    page.wait_for_function("() => document.documentElement.dataset.connection === 'online'")
    assert page.evaluate("location.hash") == ""  # nothing left in the address
    me = page.evaluate("JSON.parse(localStorage.getItem('tidings.user'))")
    assert (me["username"], me["display_name"], me["role"]) == ("alice", "Alice Liddell", "admin")
    token = page.evaluate("localStorage.getItem('tidings.token')")
    assert token and not [u for u in seen if token in u]  # never in a URL
    callback = [u for u in seen if "/auth/oidc/callback" in u]
    assert len(callback) == 1 and "code=" in callback[0]
    assert not [u for u in seen if u.startswith(server.url) and "#oidc=done" in u and "code" in u]
    # the Tidings session is a session like any other
    r = httpx.get(server.url + "/api/v1/users/me", headers={"authorization": f"Bearer {token}"})
    assert r.json()["user"]["origin"] == "oidc"
    # sign out: the Tidings session ends, then the provider's (RP-initiated logout)
    page.get_by_test_id("sign-out").click()
    page.wait_for_url(provider.issuer + "/session/end**")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.get_by_test_id("login-form").wait_for()
    assert page.url.startswith(server.url)
    r = httpx.get(server.url + "/api/v1/users/me", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401
    # the provider's session ended too: signing in again asks for the login again
    page.get_by_test_id("login-oidc").click()
    page.wait_for_url(provider.issuer + "/interaction/**")
    page.locator("input[name=login]").wait_for()
    logins = [e for e in _audit(server) if e["action"] == "login"]
    assert [e["details"].get("method") for e in logins] == ["oidc", "password"]  # alice, admin
    assert page_errors(page) == []
    page.context.close()


def test_in_chinese_a_cancelled_sign_in_is_explained_and_the_password_still_works(
    stack: Stack, browser: Browser
) -> None:
    server, provider = stack.server, stack.provider
    page = _page(browser, locale="zh-CN")
    page.goto(server.url + "/")
    button = page.get_by_test_id("login-oidc")
    expect(button).to_have_text("使用 \u2068Acme SSO\u2069 登录")
    button.click()
    page.wait_for_url(provider.issuer + "/interaction/**")
    page.get_by_role("link", name="[ Cancel ]").click()
    expect(page.get_by_test_id("login-error")).to_have_text("已在身份提供方处取消登录。")
    assert page.evaluate("location.hash") == ""
    refusals = [e for e in _audit(server) if e["action"] == "login_failed"]
    assert [(e["details"]["method"], e["details"]["refused"]) for e in refusals] == [
        ("oidc", "cancelled")
    ]
    # the owner signs in locally whatever the provider does
    page.get_by_test_id("login-username").fill(server.admin_username)
    page.get_by_test_id("login-password").fill(server.admin_password)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("conv-list").wait_for()
    page.goto(server.url + "/#/admin/sso")
    expect(page.get_by_test_id("sso-issuer")).to_have_text(provider.issuer)
    expect(page.get_by_test_id("sso-secret")).to_have_text("已设置（从不显示）")
    assert CLIENT_SECRET not in page.content()
    page.get_by_test_id("sso-test").click()
    expect(page.get_by_test_id("sso-test-result").locator("[data-ok=true]")).to_be_visible()
    assert page_errors(page) == []
    page.context.close()
