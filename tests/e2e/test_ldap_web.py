"""The web client with LDAP on, in Debian's Chromium: a directory account signs in
through the ordinary login form, and the admin's "Sign-in" tab shows the configuration
(never the bind password), tests it and previews a sync, in English and in Chinese."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS, LiveServer, free_port
from tests.e2e.web_helpers import chromium, open_signed_in, page_errors, require_browser
from tests.ldap_server import PASSWORDS, SEARCH_PASSWORD, TREE, Slapd, ldap_settings, require_slapd

require_browser()

from playwright.sync_api import Browser, expect  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Slapd]:
    require_slapd()
    server = Slapd(tmp_path / "slapd")
    server.start()
    try:
        server.ldif(TREE)
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(tmp_path: Path, directory: Slapd) -> Iterator[LiveServer]:
    live: LiveServer | None = None
    try:
        env = {
            f"TIDINGS_{k.upper()}": json.dumps(v) if isinstance(v, dict) else str(v)
            for k, v in ldap_settings(directory).items()
        }
        live = LiveServer(tmp_path / "data", free_port(), env=env)
        live.start()
        yield live
    finally:
        if live is not None:
            live.stop()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / f"server-{live.port}.log").write_text(live.logs())


@pytest.fixture
def browser(server: LiveServer) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _close(*pages: Any) -> None:
    errors: list[str] = []
    for p in pages:
        errors += page_errors(p)
        p.context.close()
    assert errors == []


def test_directory_sign_in_and_the_admin_sign_in_tab(
    server: LiveServer, browser: Browser, directory: Slapd
) -> None:
    kate = open_signed_in(browser, server, "kate", PASSWORDS["kate"])  # the ordinary form
    admin = open_signed_in(browser, server, "admin", server.admin_password)
    zh = open_signed_in(browser, server, "admin", server.admin_password, locale="zh-CN")
    try:
        expect(kate.get_by_test_id("me-name")).to_have_text("Kate Lin")

        admin.goto(server.url + "/#/admin/users")
        row = admin.get_by_test_id("user-row").filter(has_text="@kate")
        expect(row.get_by_test_id("user-origin")).to_have_text("LDAP")
        admin.get_by_test_id("admin-tab-identity").click()
        config = admin.get_by_test_id("ldap-config")
        expect(config).to_contain_text(server.extra_env["TIDINGS_LDAP_URL"])
        expect(config).to_contain_text("ou=people,dc=example,dc=org")
        expect(config).not_to_contain_text(SEARCH_PASSWORD)
        assert SEARCH_PASSWORD not in admin.content()

        admin.get_by_test_id("ldap-test-username").fill("li")
        admin.get_by_test_id("ldap-test-password").fill(PASSWORDS["li"])
        admin.get_by_test_id("ldap-test").click()
        steps = admin.get_by_test_id("ldap-step")
        expect(steps).to_have_count(5)
        expect(admin.locator("[data-testid=ldap-step][data-ok=false]")).to_have_count(0)
        expect(admin.get_by_test_id("ldap-test-password")).to_have_value("")  # not kept

        admin.get_by_test_id("ldap-preview").click()
        expect(admin.get_by_test_id("ldap-counts")).to_contain_text("nothing written")
        expect(admin.get_by_test_id("ldap-row").filter(has_text="@li")).to_contain_text("created")
        admin.get_by_test_id("ldap-sync-now").click()
        admin.get_by_test_id("confirm-ok").click()
        expect(admin.get_by_test_id("ldap-counts")).to_contain_text("Synced")

        zh.goto(server.url + "/#/admin/identity")
        expect(zh.get_by_test_id("admin-tab-identity")).to_have_text("LDAP 目录")
        expect(zh.get_by_test_id("ldap-test")).to_have_text("测试")
        expect(zh.get_by_test_id("ldap-preview")).to_have_text("预览变更")

        # the directory away: the form says so, never "wrong password"
        directory.stop()
        form = browser.new_context(locale="en-US").new_page()
        form.goto(server.url + "/")
        form.get_by_test_id("login-username").fill("sam")
        form.get_by_test_id("login-password").fill(PASSWORDS["sam"])
        form.get_by_test_id("login-submit").click()
        expect(form.get_by_test_id("login-error")).to_contain_text("not possible right now")
        form.context.close()
    finally:
        _close(kate, admin, zh)
