"""The admin's SCIM page in a real browser (Debian's Chromium, as tests/e2e/test_web.py):
the base URL to paste, a token issued and shown once, then revoked; in English and
Chinese."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.test_web import _close, browser  # noqa: F401 - the browser fixture
from tests.e2e.web_helpers import open_signed_in

pytestmark = pytest.mark.timeout(120)


def test_admin_issues_a_scim_token_shown_once_and_revokes_it(
    live_server: Any,
    browser: Any,  # noqa: F811 - the imported fixture
) -> None:
    from playwright.sync_api import expect

    page = open_signed_in(
        browser, live_server, live_server.admin_username, live_server.admin_password
    )
    zh = None
    try:
        page.goto(live_server.url + "/#/admin/scim")
        expect(page.get_by_test_id("scim-status")).to_contain_text("no live token")
        expect(page.get_by_test_id("scim-base-url")).to_have_text(live_server.url + "/scim/v2")
        page.get_by_test_id("scim-token-name").fill("Okta")
        page.get_by_test_id("scim-issue").click()
        secret_box = page.get_by_test_id("scim-secret")
        expect(secret_box).to_contain_text("scim_")
        secret = secret_box.inner_text().strip()
        expect(page.get_by_test_id("scim-status")).to_contain_text("1 live token")
        expect(page.get_by_test_id("scim-token-row").filter(has_text="Okta")).to_be_visible()
        scim = {"authorization": f"Bearer {secret}"}
        assert httpx.get(live_server.url + "/scim/v2/Users", headers=scim).status_code == 200
        # shown once: gone when dismissed, and never on the page again
        page.get_by_test_id("scim-secret-done").click()
        expect(page.get_by_test_id("scim-secret")).to_have_count(0)
        page.reload()
        expect(page.get_by_test_id("scim-token-row")).to_have_count(1)
        assert secret not in page.content()
        # the same page in Chinese
        zh = open_signed_in(
            browser,
            live_server,
            live_server.admin_username,
            live_server.admin_password,
            locale="zh-CN",
        )
        zh.goto(live_server.url + "/#/admin/scim")
        expect(zh.get_by_test_id("admin-tab-scim")).to_have_text("SCIM 自动配置")
        expect(zh.get_by_test_id("scim-status")).to_contain_text("已启用")
        # revoked: the identity provider's next request answers 401
        page.get_by_test_id("scim-revoke").click()
        page.get_by_test_id("confirm-ok").click()
        expect(page.get_by_test_id("scim-status")).to_contain_text("no live token")
        assert httpx.get(live_server.url + "/scim/v2/Users", headers=scim).status_code == 401
    finally:
        if zh is not None:
            _close(zh)
        _close(page)
