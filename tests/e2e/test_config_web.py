"""The web admin's LDAP form in Debian's Chromium (web/admin_config.js): an admin fills
the form of a server whose configuration file names only the CA file, saves, presses
Test, and a directory user signs in through the ordinary login form; the bind password
is never shown back; the locked CA file is not in the form."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

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
        env = {"TIDINGS_LDAP_CA_FILE": str(directory.ca_file)}
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


def test_an_admin_configures_ldap_in_the_form_and_a_directory_user_signs_in(
    server: LiveServer, browser: Browser, directory: Slapd
) -> None:
    admin = open_signed_in(browser, server, "admin", server.admin_password)
    try:
        admin.goto(server.url + "/#/admin/identity")
        form = admin.get_by_test_id("config-ldap-form")
        expect(form).to_be_visible()
        expect(admin.get_by_test_id("ldap-off")).to_be_visible()
        expect(admin.get_by_test_id("config-ldap_bind_password-state")).to_have_text("not set")
        assert admin.get_by_test_id("config-ldap_ca_file").count() == 0  # the file's only
        values = ldap_settings(directory)
        for name in (
            "ldap_url",
            "ldap_bind_dn",
            "ldap_bind_password",
            "ldap_user_base",
            "ldap_user_filter",
            "ldap_disabled_attribute",
            "ldap_group_base",
        ):
            admin.get_by_test_id(f"config-{name}").fill(str(values[name]))
        admin.get_by_test_id("config-ldap_group_roles").fill(json.dumps(values["ldap_group_roles"]))
        admin.get_by_test_id("config-ldap-save").click()
        expect(admin.get_by_test_id("config-ldap_bind_password-state")).to_have_text("set")
        expect(admin.get_by_test_id("config-ldap_url")).to_have_value(directory.url)
        expect(admin.get_by_test_id("config-ldap_bind_password")).to_have_value("")
        assert SEARCH_PASSWORD not in admin.content()

        admin.get_by_test_id("ldap-test-username").fill("kate")
        admin.get_by_test_id("ldap-test-password").fill(PASSWORDS["kate"])
        admin.get_by_test_id("ldap-test").click()
        expect(admin.get_by_test_id("ldap-step")).to_have_count(5)
        expect(admin.locator("[data-testid=ldap-step][data-ok=false]")).to_have_count(0)

        # a bad value: the form says so, nothing is written
        admin.get_by_test_id("config-ldap_url").fill("ftp://x")
        admin.get_by_test_id("config-ldap-save").click()
        expect(admin.get_by_test_id("config-ldap-error")).to_contain_text("ldap_url")

        kate = open_signed_in(browser, server, "kate", PASSWORDS["kate"])  # the login form
        expect(kate.get_by_test_id("me-name")).to_have_text("Kate Lin")
        errors = page_errors(kate)
        kate.context.close()
        assert errors == []
    finally:
        errors = page_errors(admin)
        admin.context.close()
    assert [e for e in errors if "400" not in e] == []
