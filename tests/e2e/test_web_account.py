"""The account screens in a real browser (Debian's Chromium, headless): my sessions
(sign out all others: the other tab is disconnected and back at the sign-in), my
profile (theme, language), the custom status beside presence, and the installable app
(manifest, icons, service worker)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
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

from playwright.sync_api import Browser, Page, expect  # noqa: E402

pytestmark = pytest.mark.timeout(120)
DARK_BG = "rgb(20, 23, 29)"  # --bg of the dark palette (style.css)
LIGHT_BG = "rgb(255, 255, 255)"


@pytest.fixture
def browser(live_server: Any) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _close(*pages: Page) -> None:
    errors = []
    for p in pages:
        errors += page_errors(p)
        p.context.close()
    assert errors == []


def body_background(page: Page) -> str:
    return str(page.evaluate("() => getComputedStyle(document.body).backgroundColor"))


def test_sessions_profile_status_and_theme(live_server: Any, browser: Browser) -> None:
    admin = admin_rest(live_server)
    mei = create_user(admin, live_server, "mei", "Mei Lin")
    page = open_signed_in(browser, live_server, "mei", mei.password)
    other = open_signed_in(browser, live_server, "mei", mei.password)  # another device
    pages = [page, other]
    try:
        page.get_by_test_id("nav-account").click()
        expect(page.get_by_test_id("account-page")).to_be_visible()

        # my sessions: three (create_user's login, and the two browsers), this one marked
        sessions = page.get_by_test_id("sessions")
        expect(sessions.get_by_test_id("session-row")).to_have_count(3)
        expect(sessions.get_by_test_id("session-current")).to_have_count(1)
        expect(sessions.locator("[data-current=true]")).to_contain_text("HeadlessChrome")
        sessions.get_by_test_id("sessions-sign-out-others").click()
        page.get_by_test_id("confirm-ok").click()
        toast = page.locator(".toast").filter(has_text=re.compile(r"2\W? sessions signed out"))
        expect(toast).to_be_visible()
        expect(sessions.get_by_test_id("session-row")).to_have_count(1)
        # the other tab's live connection was closed: it is back at the sign-in
        expect(other.get_by_test_id("login-username")).to_be_visible(timeout=15_000)
        gone = httpx.get(
            f"{live_server.url}/api/v1/users/me",
            headers={"Authorization": f"Bearer {mei.token}"},
            timeout=10,
        )
        assert gone.status_code == 401

        # a custom status, shown beside one's name and to others over REST
        status = page.get_by_test_id("status-form")
        status.get_by_test_id("status-emoji").fill("🌴")
        status.get_by_test_id("status-text").fill("On leave")
        status.get_by_test_id("status-until").select_option("4h")
        status.get_by_test_id("status-save").click()
        expect(page.locator(".me-bar").get_by_test_id("custom-status")).to_have_text("🌴")
        seen = admin.call("GET", f"/users/{mei.id}")["user"]["status"]
        assert (seen["text"], seen["emoji"]) == ("On leave", "🌴") and seen["until"]
        # ... and to someone she talks to: beside her presence, gone live when cleared
        bob = create_user(admin, live_server, "bob", "Bob Wu")
        bob_rest = Rest(live_server.url, bob.token)
        cid = bob_rest.conversation("direct", [mei.id])["id"]
        bob_rest.close()
        bob_page = open_signed_in(browser, live_server, "bob", bob.password)
        pages.append(bob_page)
        bob_page.goto(f"{live_server.url}/#/c/{cid}")
        header_chip = bob_page.locator(".chat-sub").get_by_test_id("custom-status")
        expect(header_chip).to_contain_text("On leave")
        expect(bob_page.get_by_test_id("conv-item").get_by_test_id("custom-status")).to_have_text(
            "🌴"
        )
        status.get_by_test_id("status-clear").click()
        expect(header_chip).to_have_count(0)

        # the theme: the system's (emulated dark) unless the profile says otherwise
        assert body_background(page) == LIGHT_BG
        page.emulate_media(color_scheme="dark")
        expect(page.locator("body")).to_have_css("background-color", DARK_BG)
        profile = page.get_by_test_id("profile-form")
        profile.get_by_test_id("profile-theme").select_option("light")
        profile.get_by_test_id("profile-save").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        expect(page.locator("body")).to_have_css("background-color", LIGHT_BG)
        page.emulate_media(color_scheme="light")
        profile.get_by_test_id("profile-theme").select_option("dark")
        profile.get_by_test_id("profile-time-zone").fill("Asia/Shanghai")
        profile.get_by_test_id("profile-language").select_option("zh-CN")
        profile.get_by_test_id("profile-save").click()
        expect(page.get_by_test_id("nav-account")).to_contain_text("账号")  # re-rendered
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        expect(page.locator("body")).to_have_css("background-color", DARK_BG)
        token = page.evaluate("() => localStorage.getItem('tidings.token')")
        prefs = httpx.get(
            f"{live_server.url}/api/v1/users/me",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()["preferences"]
        assert prefs == {"language": "zh-CN", "time_zone": "Asia/Shanghai", "theme": "dark"}
        # a wrong time zone is explained, nothing changes
        profile = page.get_by_test_id("profile-form")
        profile.get_by_test_id("profile-time-zone").fill("Mars/Olympus")
        profile.get_by_test_id("profile-save").click()
        expect(profile.get_by_test_id("profile-error")).not_to_be_empty()

        # installable: the manifest (its type), its icons, a registered service worker
        manifest = page.evaluate(
            "async () => { const l = document.querySelector('link[rel=manifest]');"
            " const r = await fetch(l.href);"
            " return [r.headers.get('content-type'), await r.json()]; }"
        )
        assert manifest[0] == "application/manifest+json"
        assert manifest[1]["name"] == "Tidings" and manifest[1]["theme_color"]
        for icon in manifest[1]["icons"]:
            r = httpx.get(f"{live_server.url}/{icon['src']}", timeout=10)
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            assert r.content.startswith(b"\x89PNG")
        scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
        assert scope == live_server.url + "/"
        worker = httpx.get(f"{live_server.url}/sw.js", timeout=10)
        assert worker.headers["content-type"].startswith("text/javascript")
        assert "fetch" not in worker.text.split("addEventListener", 1)[1]  # no cache
    finally:
        _close(*pages)
        admin.close()


# A stand-in for the browser's Notification API that records what would be shown
# (headless Chromium shows nothing), and a tab the test hides at will.
FAKE_NOTIFICATIONS = """
window.__notes = [];
window.__hidden = false;
Object.defineProperty(document, 'visibilityState',
  { get: () => (window.__hidden ? 'hidden' : 'visible') });
class FakeNotification {
  constructor(title, options) { window.__notes.push({ title, body: options && options.body }); }
  close() {}
  static requestPermission() { return Promise.resolve('granted'); }
}
FakeNotification.permission = 'granted';
window.Notification = FakeNotification;
"""


def test_notifications_mute_dnd_and_everyone(live_server: Any, browser: Browser) -> None:
    admin = admin_rest(live_server)
    ann = create_user(admin, live_server, "nann", "Ann")
    bob = create_user(admin, live_server, "nbob", "Bob")
    bob_rest = Rest(live_server.url, bob.token)
    cid = bob_rest.call(
        "POST", "/conversations", json={"kind": "group", "name": "Tea", "member_ids": [ann.id]}
    )["conversation"]["id"]
    page = open_signed_in(
        browser,
        live_server,
        "nann",
        ann.password,
        prepare=lambda context: context.add_init_script(FAKE_NOTIFICATIONS),
    )
    n = iter(range(100))

    def bob_says(body: str) -> None:
        bob_rest.call(
            "POST",
            f"/conversations/{cid}/messages",
            json={"client_msg_id": f"n{next(n)}", "body": body},
        )

    def notes() -> list[str]:
        return [str(x["body"]) for x in page.evaluate("window.__notes")]

    try:
        # the list is loaded (a message that comes while it loads is in it: nothing new)
        expect(page.locator(f'[data-testid=conv-item][data-cid="{cid}"]')).to_be_visible()
        page.evaluate("window.__hidden = true")
        bob_says("first")  # a group: every message notifies by default
        page.wait_for_function("() => window.__notes.length === 1")
        expect(page).to_have_title("(1) Tidings")
        assert page.locator('link[rel="icon"]').get_attribute("data-badge") == "1"
        page.evaluate("window.__hidden = false")

        # mute it for an hour from the conversation's menu: the list shows it, nothing notifies
        page.locator(f'[data-testid=conv-item][data-cid="{cid}"]').click()
        page.get_by_test_id("open-notify").click()
        page.get_by_test_id("notify-mute-1h").click()
        expect(page.get_by_test_id("conv-muted")).to_be_visible()
        page.goto(live_server.url + "/#/")
        page.evaluate("window.__hidden = true")
        bob_says("while muted")
        expect(page).to_have_title("(1) Tidings")
        page.evaluate("window.__hidden = false")
        page.locator(f'[data-testid=conv-item][data-cid="{cid}"]').click()
        page.get_by_test_id("open-notify").click()
        page.get_by_test_id("notify-unmute").click()
        expect(page.get_by_test_id("conv-muted")).to_have_count(0)

        # do not disturb for 30 minutes from the account page silences it too
        page.get_by_test_id("nav-account").click()
        page.get_by_test_id("dnd-for-30m").click()
        expect(page.get_by_test_id("dnd-state")).to_contain_text("is on")
        page.evaluate("window.__hidden = true")
        bob_says("during dnd")
        page.get_by_test_id("dnd-until-off").click()
        expect(page.get_by_test_id("dnd-state")).to_contain_text("is off")
        bob_says("after dnd")
        page.wait_for_function("() => window.__notes.length === 2")
        assert notes() == ["first", "after dnd"]
        page.evaluate("window.__hidden = false")

        # @all to more members than mention_all_confirm_members is asked first
        admin.call("PATCH", "/admin/config", json={"values": {"mention_all_confirm_members": 1}})
        page.reload()
        page.locator(f'[data-testid=conv-item][data-cid="{cid}"]').click()
        page.get_by_test_id("composer").fill("@all tea time")
        page.get_by_test_id("composer").press("Enter")
        expect(page.get_by_test_id("confirm")).to_contain_text("@all")
        page.get_by_test_id("confirm-ok").click()
        expect(page.locator("[data-testid=message-body]").last).to_have_text("@all tea time")
        # the level, from the menu (mentions only)
        page.get_by_test_id("open-notify").click()
        # a click, not check(): choosing saves and closes the dialog, so the radio may be
        # gone before Playwright could read it back as checked; the effect is asserted
        page.get_by_test_id("notify-level-mentions").click()
        expect(page.get_by_test_id("notify-dialog")).to_have_count(0)
        ann_rest = Rest(live_server.url, ann.token)
        got = ann_rest.call("GET", f"/conversations/{cid}/notifications")["notifications"]
        assert got == {"level": "mentions", "muted": False, "muted_until": None}
    finally:
        _close(page)


def test_offline_notification_settings_on_the_account_page(
    live_server: Any, browser: Browser
) -> None:
    """The account page's notifications box: the email address, digests and previews
    are saved through PUT /users/me/notifications/offline; the service worker carries
    the push and notificationclick handlers (a real push needs the browser's push
    service: tests/integration/api/test_push.py sends them to one on loopback)."""
    admin = admin_rest(live_server)
    oli = create_user(admin, live_server, "oli", "Oli")
    page = open_signed_in(browser, live_server, "oli", oli.password)
    try:
        page.get_by_test_id("nav-account").click()
        form = page.get_by_test_id("notify-form")
        expect(form.get_by_test_id("notify-email")).to_be_visible()
        expect(form.get_by_test_id("notify-device")).to_be_attached()
        form.get_by_test_id("notify-email").fill("oli@example.org")
        form.get_by_test_id("notify-previews").uncheck()
        form.get_by_test_id("notify-save").click()
        expect(
            page.locator(".toast").filter(has_text="Notification settings saved")
        ).to_be_visible()
        got = Rest(live_server.url, oli.token).call("GET", "/users/me/notifications/offline")
        assert got["notifications"]["email"] == "oli@example.org"
        assert got["notifications"]["previews"] is False
        form.get_by_test_id("notify-email").fill("a@b")  # the browser's check passes it
        form.get_by_test_id("notify-save").click()
        expect(page.get_by_test_id("notify-error")).not_to_be_empty()
        sw = httpx.get(f"{live_server.url}/sw.js", timeout=10).text
        assert "addEventListener('push'" in sw and "notificationclick" in sw
        assert page_errors(page) == []
    finally:
        _close(page)


def _png(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (300, 200), color).save(out, "PNG")
    return out.getvalue()


def test_profile_picture_upload_preview_and_removal(live_server: Any, browser: Browser) -> None:
    admin = admin_rest(live_server)
    ada = create_user(admin, live_server, "ada", "Ada Sun")
    kim = create_user(admin, live_server, "kim", "Kim Ho")
    kim_rest = Rest(live_server.url, kim.token)
    cid = kim_rest.conversation("direct", [ada.id])["id"]
    kim_rest.close()
    page = open_signed_in(browser, live_server, "ada", ada.password)
    kim_page = open_signed_in(browser, live_server, "kim", kim.password)
    try:
        kim_page.goto(f"{live_server.url}/#/c/{cid}")
        expect(kim_page.get_by_test_id("conv-item").locator("img.avatar-img")).to_have_count(0)
        page.get_by_test_id("nav-account").click()
        box = page.get_by_test_id("avatar-box")
        expect(box.locator("img.avatar-img")).to_have_count(0)  # the initials
        box.get_by_test_id("avatar-file").set_input_files(
            files=[{"name": "me.png", "mimeType": "image/png", "buffer": _png((10, 120, 200))}]
        )
        preview = box.get_by_test_id("avatar-preview")
        expect(preview).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
        box.get_by_test_id("avatar-save").click()
        shown = box.locator("img.avatar-img")
        expect(shown).to_have_attribute(
            "src", re.compile(r"^/api/v1/users/.+/avatar/.+\?size=256$")
        )
        expect(box.get_by_test_id("avatar-remove")).to_be_visible()
        # the image loads (no token in its URL) and is a square
        expect(shown).to_have_js_property("naturalWidth", 256)
        # kim sees it live (user_updated), in the conversation list
        kim_img = kim_page.get_by_test_id("conv-item").locator("img.avatar-img")
        expect(kim_img).to_have_attribute("src", re.compile(r"\?size=64$"), timeout=15_000)
        # a non-image is refused before any upload
        box.get_by_test_id("avatar-file").set_input_files(
            files=[{"name": "x.svg", "mimeType": "image/svg+xml", "buffer": b"<svg/>"}]
        )
        expect(page.get_by_test_id("avatar-error")).not_to_be_empty()
        box.get_by_test_id("avatar-remove").click()
        expect(box.locator("img.avatar-img")).to_have_count(0)
        expect(kim_img).to_have_count(0, timeout=15_000)
        assert admin.call("GET", f"/users/{ada.id}")["user"]["avatar"] is None
    finally:
        _close(page, kim_page)
