"""The web client in a real browser: Debian's Chromium, headless, driven by Playwright.

These tests use the `live_server` fixture (tests/conftest.py): the real `tidings serve`
process on a free port with a fresh data directory. Screenshots of the main screens are
written to a temporary directory (or $TIDINGS_SCREENSHOT_DIR).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import tests.conftest as tests_conftest
from tests.e2e.web_helpers import (
    DESKTOP,
    PHONE,
    Rest,
    admin_rest,
    chromium,
    conv_item,
    create_user,
    message_texts,
    open_signed_in,
    overflowing,
    page_errors,
    require_browser,
    screenshot_dir,
    send_from_ui,
    watch_errors,
)
from tests.e2e.web_helpers import login as web_login

require_browser()

from playwright.sync_api import Browser, Page, expect  # noqa: E402

WEB = Path(__file__).resolve().parents[2] / "src" / "tidings" / "web"
WEBHOOK_KINDS = re.findall(r"'(\w+)'", (WEB / "webhooks.js").read_text().split("];")[0])
pytestmark = pytest.mark.timeout(120)

# Like every end-to-end test, the browser tests run on both backends: the embedded
# default (SQLite) and PostgreSQL + Redis.
if "backend" in getattr(tests_conftest, "__dict__", {}):
    one_backend = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
else:  # pragma: no cover - a conftest without backends

    def one_backend(f: Any) -> Any:
        return f


@pytest.fixture
def browser(live_server: Any) -> Iterator[Browser]:
    """Chromium for one test, started after the server and closed before it stops.

    While Playwright's sync API is open it keeps an event loop marked as running in this
    thread, so no fixture that calls asyncio.run() (server set-up) may run meanwhile."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory)


def _close(*pages: Page) -> None:
    """Close the pages' contexts; none may have thrown an uncaught JavaScript error."""
    errors = []
    for p in pages:
        errors += page_errors(p)
        p.context.close()
    assert errors == []


def test_translation_files_cover_every_string() -> None:
    """Both languages have the same keys, and every key the code asks for exists."""
    en = json.loads((WEB / "i18n" / "en.json").read_text(encoding="utf-8"))
    zh = json.loads((WEB / "i18n" / "zh-CN.json").read_text(encoding="utf-8"))
    assert set(en) == set(zh)
    used: set[str] = set()
    for js in WEB.glob("*.js"):
        used |= set(re.findall(r"\bt\('([\w.]+)'", js.read_text(encoding="utf-8")))
    assert used, "no translated strings found"
    assert sorted(used - set(en)) == []
    # Keys the code builds from a value (t(`kind.${kind}`) and the like).
    built = {f"kind.{k}" for k in ("direct", "group", "channel")}
    built |= {f"new.hint_{k}" for k in ("direct", "group", "channel")}
    built |= {f"role.{r}" for r in ("owner", "admin", "member", "guest")}
    built |= {f"presence.{p}" for p in ("online", "away", "offline")}
    from tidings.services.oidc import REASONS  # app.js: t(`login.oidc_${reason}`)

    built |= {f"login.oidc_{r}" for r in (*REASONS, "failed")}
    built |= {f"webhooks.kind.{k}" for k in WEBHOOK_KINDS}
    built |= {f"webhooks.off_{r}" for r in ("manual", "failures", "gone")}
    built |= {f"webhooks.status.{s}" for s in ("ok", "failed", "rejected", "refused")}
    built |= {f"org.policy_{p}" for p in ("none", "admins", "everyone")}  # admin_org.js
    built |= {"org.limits_title", "org.limits_hint"}  # admin_config.js, group "limits"
    built |= {f"search.order_{o}" for o in ("newest", "relevance")}  # search.js
    built |= {f"profile.theme_{v}" for v in ("system", "light", "dark")}  # account.js
    # notifications.js: levels, mute durations, do not disturb durations, permission
    built |= {f"notify.level_{v}" for v in ("all", "mentions", "none")}
    built |= {f"notify.mute_{k}" for k in ("1h", "8h", "24h", "week", "forever")}
    built |= {f"dnd.for_{k}" for k in ("30m", "1h", "4h", "tomorrow")}
    built |= {f"notify.permission_{p}" for p in ("granted", "denied", "default")}
    built |= {f"status.until_{k}" for k in ("never", "30m", "1h", "4h", "today", "week")}
    # search_query.js: the suggestions' hints (FILTERS, dateSuggestions)
    search_query = (WEB / "search_query.js").read_text(encoding="utf-8")
    built |= set(re.findall(r"key: '(search\.[\w.]+)'", search_query))
    assert len([k for k in built if k.startswith("search.")]) >= 12
    assert sorted(built - set(en)) == []


@one_backend
def test_two_users_chat_in_real_time(live_server: Any, browser: Browser, shots: Path) -> None:
    admin = admin_rest(live_server)
    alice = create_user(admin, live_server, "alice", "Alice Chen")
    bob = create_user(admin, live_server, "bob", "Bob Smith")
    a = open_signed_in(browser, live_server, "alice", alice.password)
    b = open_signed_in(browser, live_server, "bob", bob.password)
    try:
        # Alice starts a direct conversation from the UI.
        a.get_by_test_id("new-conversation").click()
        a.get_by_test_id("new-member").fill("bob")
        a.get_by_test_id("new-member-result").filter(has_text="Bob Smith").click()
        a.get_by_test_id("new-create").click()
        expect(a.get_by_test_id("chat-title")).to_have_text("Bob Smith")
        cid = a.locator("[data-testid=chat]").get_attribute("data-cid")
        assert cid

        send_from_ui(a, "Hello **Bob**, the release is *today*")
        expect(a.locator(".msg:not(.pending) [data-testid=message-body]").last).to_contain_text(
            "Hello Bob"
        )
        expect(a.locator("[data-testid=message-body] strong").last).to_have_text("Bob")

        # Bob sees it arrive live in his list, with an unread badge.
        item = conv_item(b, cid)
        expect(item).to_be_visible()
        expect(item.get_by_test_id("unread-badge")).to_have_text("1")
        item.click()
        expect(b.get_by_test_id("chat-title")).to_have_text("Alice Chen")
        expect(b.locator("[data-testid=message-body]").last).to_contain_text("the release is today")
        expect(item.get_by_test_id("unread-badge")).to_have_count(0)
        # Alice sees that Bob read it.
        expect(a.get_by_test_id("receipt")).to_contain_text("Read")

        # Typing indicator, then Bob's answer arrives live.
        b.get_by_test_id("composer").press_sequentially("On my way", delay=20)
        expect(a.get_by_test_id("typing")).to_contain_text("Bob Smith")
        b.get_by_test_id("composer").press("Enter")
        expect(a.locator("[data-testid=message-body]").last).to_have_text("On my way")

        # Reply, reaction, edit and recall.
        a.locator(".msg").last.hover()
        a.locator(".msg").last.get_by_test_id("act-reply").click()
        send_from_ui(a, "Great, see you there")
        expect(b.locator(".msg").last.locator(".reply-quote")).to_contain_text("On my way")
        b.locator(".msg").last.hover()
        b.locator(".msg").last.get_by_test_id("act-react").click()
        b.get_by_test_id("pick-reaction").first.click()
        expect(a.locator(".msg").last.get_by_test_id("reaction")).to_contain_text("1")
        a.locator(".msg").last.hover()
        a.locator(".msg").last.get_by_test_id("act-edit").click()
        a.get_by_test_id("edit-input").fill("Great, see you at noon")
        a.get_by_test_id("edit-input").press("Enter")
        expect(b.locator(".msg").last.get_by_test_id("message-body")).to_contain_text(
            "see you at noon"
        )
        expect(b.locator(".msg").last.locator(".msg-edited")).to_be_visible()
        send_from_ui(a, "Oops, wrong chat")
        expect(b.locator("[data-testid=message-body]").last).to_have_text("Oops, wrong chat")
        a.locator(".msg").last.hover()
        a.locator(".msg").last.get_by_test_id("act-recall").click()
        a.get_by_test_id("confirm-ok").click()
        expect(b.locator(".msg").last.locator(".msg-recalled")).to_be_visible()

        # A day separator is shown, sender names too.
        expect(a.get_by_test_id("day-separator").first).to_be_visible()
        expect(b.get_by_test_id("message-sender").first).to_be_visible()

        a.screenshot(path=str(shots / "desktop-chat.png"))
        b.screenshot(path=str(shots / "desktop-chat-bob.png"))

        # A reload keeps everything (history comes back from the server, drafts too).
        b.get_by_test_id("composer").fill("half-typed thought")
        b.reload()
        expect(b.get_by_test_id("composer")).to_have_value("half-typed thought")
        expect(
            b.locator("[data-testid=message-body]").filter(has_text="see you at noon")
        ).to_have_count(1)
    finally:
        _close(a, b)
        admin.close()


@one_backend
def test_unread_badges_update_and_clear_and_history_loads(
    live_server: Any, browser: Browser, shots: Path
) -> None:
    admin = admin_rest(live_server)
    carol = create_user(admin, live_server, "carol", "Carol Diaz")
    dave = create_user(admin, live_server, "dave", "Dave Wu")
    group = admin.conversation("group", [carol.id, dave.id], name="Launch crew")
    page = open_signed_in(browser, live_server, "carol", carol.password)
    try:
        item = conv_item(page, group["id"])
        expect(item).to_be_visible()
        expect(item.get_by_test_id("unread-badge")).to_have_count(0)
        for text in ("first", "second"):
            admin.send(group["id"], text)
        expect(item.get_by_test_id("unread-badge")).to_have_text("2")
        expect(item.get_by_test_id("mention-badge")).to_have_count(0)
        admin.send(group["id"], "@carol can you check the logs?")
        expect(item.get_by_test_id("unread-badge")).to_have_text("3")
        expect(item.get_by_test_id("mention-badge")).to_be_visible()
        # Latest activity first: a newer conversation moves above.
        other = admin.conversation("group", [carol.id], name="Zeta")
        admin.send(other["id"], "newest")
        expect(page.get_by_test_id("conv-item").first).to_have_attribute("data-cid", other["id"])
        page.screenshot(path=str(shots / "desktop-unread.png"))

        item.click()
        expect(page.locator(".mention-me")).to_have_text("@carol")
        expect(item.get_by_test_id("unread-badge")).to_have_count(0)
        expect(item.get_by_test_id("mention-badge")).to_have_count(0)
        # The read position reached the server: still read after a reload.
        page.reload()
        expect(conv_item(page, group["id"])).to_be_visible()
        expect(conv_item(page, group["id"]).get_by_test_id("unread-badge")).to_have_count(0)
        expect(conv_item(page, other["id"]).get_by_test_id("unread-badge")).to_have_text("1")
    finally:
        _close(page)
    # Same server: older history loads as the view is scrolled up.
    _check_history_loads_on_scroll_up(live_server, browser, admin)
    admin.close()


def _check_history_loads_on_scroll_up(server: Any, browser: Browser, admin: Any) -> None:
    kai = create_user(admin, server, "kai", "Kai")
    conv = admin.conversation("group", [kai.id], name="Archive")
    for i in range(1, 71):
        admin.send(conv["id"], f"history {i}")
    page = open_signed_in(browser, server, "kai", kai.password)
    try:
        conv_item(page, conv["id"]).click()
        bodies = page.locator("[data-testid=message-body]")
        expect(bodies.last).to_have_text("history 70")
        assert bodies.count() < 70
        for _ in range(10):
            page.locator(".messages").evaluate("el => { el.scrollTop = 0; }")
            if page.locator(".conv-start").count():
                break
            page.wait_for_timeout(200)
        expect(page.locator(".conv-start")).to_be_visible()
        expect(bodies).to_have_count(70)
        assert message_texts(page) == [f"history {i}" for i in range(1, 71)]
    finally:
        _close(page)


@one_backend
def test_failed_send_is_retried_with_the_same_client_msg_id(
    live_server: Any, browser: Browser
) -> None:
    admin = admin_rest(live_server)
    lea = create_user(admin, live_server, "lea", "Lea")
    conv = admin.conversation("group", [lea.id], name="Flaky")
    sends: list[dict[str, Any]] = []

    def prepare(context: Any) -> None:
        def handler(ws: Any) -> None:
            server = ws.connect_to_server()

            def from_page(message: Any) -> None:
                frame = json.loads(message)
                if frame.get("type") == "send":
                    sends.append(frame)
                    if len(sends) == 1:  # the first attempt fails
                        ws.send(
                            json.dumps(
                                {
                                    "type": "error",
                                    "ref": frame.get("ref"),
                                    "error": {
                                        "code": "rate_limited",
                                        "message": "slow down",
                                        "details": {},
                                    },
                                }
                            )
                        )
                        return
                server.send(message)

            ws.on_message(from_page)

        context.route_web_socket(re.compile(r".*/api/v1/ws$"), handler)

    page = open_signed_in(browser, live_server, "lea", lea.password, prepare=prepare)
    try:
        conv_item(page, conv["id"]).click()
        send_from_ui(page, "this one fails first")
        expect(page.get_by_test_id("message-failed")).to_be_visible()
        # the refusal says why (the rate limit: wait, then retry)
        expect(page.get_by_test_id("failed-why")).to_have_text("Slow down a little and try again.")
        page.get_by_test_id("retry").click()
        expect(page.get_by_test_id("message-failed")).to_have_count(0)
        expect(
            page.locator(".msg:not(.pending):not(.failed) [data-testid=message-body]")
        ).to_have_text(["this one fails first"])
        assert len(sends) == 2
        assert sends[0]["client_msg_id"] == sends[1]["client_msg_id"]
        assert [m["body"] for m in admin.history(conv["id"])] == ["this one fails first"]
    finally:
        _close(page)
        admin.close()


def test_a_click_on_a_conversation_survives_the_list_re_rendering_under_it(
    live_server: Any, browser: Browser
) -> None:
    """The list re-renders on every presence, typing or unread change; a press on a row
    released after such a re-render still opens the conversation (a row that was
    rebuilt meanwhile would lose the click: Chromium drops it)."""
    admin = admin_rest(live_server)
    lea = create_user(admin, live_server, "lea", "Lea")
    conv = admin.conversation("group", [lea.id], name="Busy")
    admin.send(conv["id"], "first")
    page = open_signed_in(browser, live_server, "lea", lea.password)
    try:
        row = conv_item(page, conv["id"])
        expect(row).to_contain_text("first")
        box = row.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        admin.send(conv["id"], "arrives while the button is held")
        expect(row).to_contain_text("arrives while the button is held")
        expect(row.get_by_test_id("unread-badge")).to_have_text("2")
        page.mouse.up()
        expect(page.get_by_test_id("composer")).to_be_visible()
        assert page.evaluate("() => location.hash") == f"#/c/{conv['id']}"
    finally:
        _close(page)
        admin.close()


def _stored_keys(page: Page) -> dict[str, list[str]]:
    """The web client's keys in the page's localStorage and sessionStorage."""
    return page.evaluate(
        """() => Object.fromEntries([['local', localStorage], ['session', sessionStorage]]
          .map(([name, store]) => [name, Object.keys(store).filter((k) => k.startsWith('tidings.'))
            .sort()]))"""
    )


@one_backend
def test_signing_out_or_a_session_ending_leaves_nothing_of_the_user(
    live_server: Any, browser: Browser
) -> None:
    """Drafts, the outbox, the token and the cached user leave the browser on sign-out, when
    the server ends the session (a disabled account) and when a stale token is refused at
    start; only the device's language choice stays."""
    admin = admin_rest(live_server)
    ada = create_user(admin, live_server, "ada", "Ada")
    ben = create_user(admin, live_server, "ben", "Ben")
    conv = admin.conversation("group", [ada.id, ben.id], name="Plans")
    a = open_signed_in(browser, live_server, "ada", ada.password)
    draft = f"tidings.draft.{ada.id}.{conv['id']}"
    left = {"local": ["tidings.lang"], "session": []}

    def type_draft(text: str) -> None:
        conv_item(a, conv["id"]).click()
        a.get_by_test_id("composer").fill(text)
        a.wait_for_function(f"() => localStorage.getItem('{draft}') === '{text}'")
        assert "tidings.token" in _stored_keys(a)["local"]

    try:
        a.evaluate("() => localStorage.setItem('tidings.lang', 'en')")
        type_draft("the secret plan")
        a.get_by_test_id("sign-out").click()
        expect(a.get_by_test_id("login-username")).to_be_visible()
        assert _stored_keys(a) == left

        # The server ends the session: the account is disabled while signed in.
        a.get_by_test_id("login-username").fill("ada")
        a.get_by_test_id("login-password").fill(ada.password)
        a.get_by_test_id("login-submit").click()
        type_draft("another secret")
        admin.call("PATCH", f"/users/{ada.id}", json={"disabled": True})
        expect(a.get_by_test_id("login-username")).to_be_visible(timeout=20_000)
        assert _stored_keys(a) == left

        # A token refused at start (revoked elsewhere) takes the rest with it too.
        a.evaluate(
            f"""() => {{ localStorage.setItem('tidings.token', 'revoked-token');
              localStorage.setItem('{draft}', 'left over'); }}"""
        )
        a.reload()
        expect(a.get_by_test_id("login-username")).to_be_visible()
        assert _stored_keys(a) == left
    finally:
        _close(a)
        admin.close()


def _set_display_name_in_the_database(server: Any, user_id: str, name: str) -> None:
    """Write a display name as data from before names were checked (the API refuses it)."""
    url = server.extra_env.get("TIDINGS_DATABASE_URL")
    if url is None:
        with sqlite3.connect(server.data_dir / "tidings.db") as db:
            db.execute("UPDATE users SET display_name = ? WHERE id = ?", (name, user_id))
        return

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute("UPDATE users SET display_name = $1 WHERE id = $2", name, user_id)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, run()).result()


LEFT_OF = """([root, words]) => {
  const el = document.querySelector(root);
  const lefts = {};
  const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    for (const w of words) {
      const i = n.data.indexOf(w);
      if (i < 0) continue;
      const r = document.createRange();
      r.setStart(n, i);
      r.setEnd(n, i + w.length);
      lefts[w] = Math.round(r.getBoundingClientRect().left);
    }
  }
  return words.map((w) => lefts[w]);
}"""


@one_backend
def test_a_name_with_direction_controls_cannot_reorder_the_text_around_it(
    live_server: Any, browser: Browser
) -> None:
    """A display name stored before names were checked (with RIGHT-TO-LEFT OVERRIDE) is
    shown isolated: what follows it in a message header, a conversation preview and the
    typing line stays where it belongs (left to right)."""
    admin = admin_rest(live_server)
    ada = create_user(admin, live_server, "ada", "Ada")
    eve = create_user(admin, live_server, "eve", "Eve")
    _set_display_name_in_the_database(live_server, eve.id, "\u202eevil")
    group = admin.conversation("group", [ada.id, eve.id], name="Plans")
    eve_rest = Rest(live_server.url, eve.token)
    eve_rest.send(group["id"], "hello from eve")
    page = open_signed_in(browser, live_server, "ada", ada.password)
    try:
        item = f'[data-testid=conv-item][data-cid="{group["id"]}"]'
        expect(page.locator(item)).to_contain_text("hello from eve")
        evil_x, hello_x = page.evaluate(LEFT_OF, [f"{item} .conv-preview", ["evil", "hello"]])
        assert evil_x < hello_x, (evil_x, hello_x)

        conv_item(page, group["id"]).click()
        sender = page.get_by_test_id("message-sender").first
        expect(sender).to_be_visible()
        name_box = sender.bounding_box()
        time_box = page.locator(".msg-head .msg-time").first.bounding_box()
        assert name_box and time_box
        assert name_box["x"] + name_box["width"] <= time_box["x"] + 1, (name_box, time_box)

        eve_rest.call("POST", f"/conversations/{group['id']}/typing")
        expect(page.get_by_test_id("typing")).to_contain_text("typing")
        evil_x, typing_x = page.evaluate(LEFT_OF, ["[data-testid=typing]", ["evil", "typing"]])
        assert evil_x < typing_x, (evil_x, typing_x)
    finally:
        eve_rest.close()
        _close(page)
        admin.close()


@one_backend
def test_html_in_a_message_is_shown_as_text(live_server: Any, browser: Browser) -> None:
    admin = admin_rest(live_server)
    erin = create_user(admin, live_server, "erin", "Erin")
    frank = create_user(admin, live_server, "frank", "Frank")
    conv = admin.conversation("group", [erin.id, frank.id], name="Safety")
    a = open_signed_in(browser, live_server, "erin", erin.password)
    b = open_signed_in(browser, live_server, "frank", frank.password)
    dialogs: list[str] = []
    for p in (a, b):
        p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    payload = "<img src=x onerror=alert(1)>"
    try:
        conv_item(a, conv["id"]).click()
        conv_item(b, conv["id"]).click()
        send_from_ui(a, payload)
        send_from_ui(a, "[click](javascript:alert(2)) and [docs](https://example.com/docs)")
        for p in (a, b):
            body = p.locator("[data-testid=message-body]").filter(has_text="<img")
            expect(body).to_have_text(payload)
            expect(p.locator(".messages img")).to_have_count(0)
            expect(p.locator(".messages a[href^='javascript']")).to_have_count(0)
            link = p.locator(".messages a", has_text="docs")
            expect(link).to_have_attribute("rel", "noopener noreferrer")
        b.wait_for_timeout(300)
        assert dialogs == []
    finally:
        _close(a, b)
        admin.close()


@one_backend
def test_server_restart_loses_and_doubles_nothing(
    live_server: Any, browser: Browser, shots: Path
) -> None:
    admin = admin_rest(live_server)
    gina = create_user(admin, live_server, "gina", "Gina")
    hugo = create_user(admin, live_server, "hugo", "Hugo")
    conv = admin.conversation("group", [gina.id, hugo.id], name="Ops")
    a = open_signed_in(browser, live_server, "gina", gina.password)
    b = open_signed_in(browser, live_server, "hugo", hugo.password)
    expected: list[str] = []
    try:
        conv_item(a, conv["id"]).click()
        conv_item(b, conv["id"]).click()
        for i in range(3):
            send_from_ui(a if i % 2 == 0 else b, f"before restart {i}")
            expected.append(f"before restart {i}")
            expect(a.locator("[data-testid=message-body]").last).to_have_text(expected[-1])
            expect(b.locator("[data-testid=message-body]").last).to_have_text(expected[-1])
        for p in (a, b):
            p.evaluate(
                """() => { window.__bannerSeen = false;
                const b = document.getElementById('banner');
                new MutationObserver(() => { if (!b.hidden) window.__bannerSeen = true; })
                  .observe(b, { attributes: true }); }"""
            )

        restart = threading.Thread(target=live_server.restart)
        restart.start()
        a.wait_for_function("() => window.__bannerSeen === true", timeout=15000)
        a.screenshot(path=str(shots / "desktop-reconnecting.png"))
        # Typed while the server is away: kept as pending, sent once it is back.
        send_from_ui(a, "sent while offline")
        expected.append("sent while offline")
        restart.join(60)
        assert not restart.is_alive()

        # A message sent by someone else through the API while both reconnect.
        admin_after = admin_rest(live_server)
        admin_after.send(conv["id"], "from the admin after restart")
        expected.append("from the admin after restart")
        for p in (a, b):
            p.wait_for_function(
                "() => document.documentElement.dataset.connection === 'online'", timeout=30000
            )
        expect(
            b.locator("[data-testid=message-body]").filter(has_text="from the admin after restart")
        ).to_have_count(1)
        expect(a.locator(".msg.pending")).to_have_count(0)
        send_from_ui(b, "after restart")
        expected.append("after restart")
        expect(a.locator("[data-testid=message-body]").last).to_have_text("after restart")

        stored = [m["body"] for m in admin_after.history(conv["id"])]
        assert sorted(stored) == sorted(expected), stored
        assert Counter(stored)["sent while offline"] == 1
        for p in (a, b):
            expect(
                p.locator(".msg:not(.pending):not(.failed) [data-testid=message-body]")
            ).to_have_count(len(stored))
            assert message_texts(p) == stored
            assert p.evaluate("() => window.__bannerSeen") is True
        b.screenshot(path=str(shots / "desktop-after-restart.png"))
        admin_after.close()
    finally:
        _close(a, b)
        admin.close()


@one_backend
def test_language_switch_and_second_factor_sign_in(
    live_server: Any, browser: Browser, shots: Path
) -> None:
    admin = admin_rest(live_server)
    lin = create_user(admin, live_server, "lin", "林小雨")
    team = admin.conversation("group", [lin.id], name="产品组")
    admin.send(team["id"], "@lin 下午三点开会，记得带上**季度报告**。")
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    watch_errors(page)
    try:
        page.goto(live_server.url + "/")
        expect(page.get_by_test_id("login-submit")).to_have_text("登录")
        page.screenshot(path=str(shots / "phone-login-zh.png"))
        page.get_by_test_id("login-username").fill("lin")
        page.get_by_test_id("login-password").fill(lin.password)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("nav-home")).to_contain_text("消息")
        expect(page.get_by_test_id("nav-directory")).to_contain_text("通讯录")
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        page.get_by_test_id("lang-select").select_option("en")
        expect(page.get_by_test_id("nav-home")).to_contain_text("Chats")
        expect(page.get_by_test_id("nav-directory")).to_contain_text("Directory")
        # The choice is remembered.
        page.reload()
        expect(page.get_by_test_id("nav-home")).to_contain_text("Chats")
        page.get_by_test_id("lang-select").select_option("zh-CN")
        expect(page.get_by_test_id("nav-channels")).to_contain_text("频道")
        expect(conv_item(page, team["id"]).get_by_test_id("mention-badge")).to_be_visible()
        page.screenshot(path=str(shots / "phone-list-zh.png"))
        assert overflowing(page) == []
        conv_item(page, team["id"]).click()
        expect(page.locator(".mention-me")).to_have_text("@lin")
        # (the name inside the string is isolated: docs/web.md, "Names")
        expect(page.get_by_test_id("composer")).to_have_attribute(
            "placeholder", "发消息给 \u2068产品组\u2069"
        )
        page.screenshot(path=str(shots / "phone-chat-zh.png"))
        assert overflowing(page) == []
        page.get_by_test_id("back").click()
        # Wrong password answers in the chosen language.
        page.get_by_test_id("sign-out").click()
        page.get_by_test_id("login-username").fill("lin")
        page.get_by_test_id("login-password").fill("wrong-password")
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误。")
        assert page_errors(page) == []
    finally:
        context.close()
    # Same server: the second-factor field appears when the login asks for it.
    _check_second_factor_field(live_server, browser, admin)
    admin.close()


def _check_second_factor_field(live_server: Any, browser: Browser, admin: Any) -> None:
    create_user(admin, live_server, "mia", "Mia")
    bodies: list[dict[str, Any]] = []
    context = browser.new_context(viewport=DESKTOP, locale="en-US")

    def login_route(route: Any) -> None:
        bodies.append(json.loads(route.request.post_data or "{}"))
        if len(bodies) == 1:  # the first answer asks for the code, as an account with TOTP would
            route.fulfill(
                status=401,
                content_type="application/json",
                body=json.dumps(
                    {
                        "error": {
                            "code": "totp_required",
                            "message": "second factor required",
                            "details": {},
                        }
                    }
                ),
            )
        else:
            route.continue_()

    context.route("**/api/v1/auth/login", login_route)
    page = context.new_page()
    watch_errors(page)
    try:
        page.goto(live_server.url + "/")
        expect(page.get_by_test_id("login-totp")).to_be_hidden()
        page.get_by_test_id("login-username").fill("mia")
        page.get_by_test_id("login-password").fill("correct-horse-battery")
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("login-totp")).to_be_visible()
        expect(page.get_by_test_id("login-totp")).to_be_focused()
        page.get_by_test_id("login-totp").fill("123456")
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("me-name")).to_have_text("Mia")
        assert "totp" not in bodies[0]
        assert bodies[1]["totp"] == "123456"
        assert page_errors(page) == []
    finally:
        context.close()


@one_backend
def test_main_screens_at_desktop_and_phone_width(
    live_server: Any, browser: Browser, shots: Path
) -> None:
    """Admin pages, directory, channels, members panel; screenshots at both widths."""
    admin = admin_rest(live_server)
    ivy = create_user(admin, live_server, "ivy", "Ivy Park")
    jun = create_user(admin, live_server, "jun", "王俊")
    dept = admin.call("POST", "/departments", json={"name": "Engineering"})["department"]
    admin.call("PUT", f"/departments/{dept['id']}/members/{ivy.id}")
    sales = admin.call("POST", "/departments", json={"name": "Sales"})["department"]
    admin.call("PUT", f"/departments/{sales['id']}/members/{jun.id}")
    channel = admin.conversation("channel", [], name="general")
    admin.call("PATCH", f"/conversations/{channel['id']}", json={"topic": "Company-wide news"})
    admin.send(channel["id"], "Welcome to **#general** 🎉")
    group = admin.conversation("group", [ivy.id, jun.id], name="Design review")
    ivy_rest, jun_rest = Rest(live_server.url, ivy.token), Rest(live_server.url, jun.token)
    first = ivy_rest.send(group["id"], "Morning! The new mock-ups are in the **shared folder**.")
    jun_rest.send(group["id"], "看过了，整体很好 👍 一个小问题：按钮颜色可以再深一点吗？")
    ivy_rest.send(
        group["id"],
        "Good point. Changelog: https://example.com/design/42",
        reply_to_seq=first["seq"],
    )
    code = ivy_rest.send(
        group["id"], "Token names:\n```\n--primary: #2f6fed\n--danger:  #d93b3b\n```"
    )
    jun_rest.call("PUT", f"/conversations/{group['id']}/messages/{code['seq']}/reactions/👍")
    admin.call("PUT", f"/conversations/{group['id']}/messages/{code['seq']}/reactions/🎉")
    direct = ivy_rest.conversation("direct", [admin.me()["id"]])
    ivy_rest.send(direct["id"], "Do you have five minutes for the Q3 plan?")
    ivy_rest.close()
    jun_rest.close()
    for viewport, tag in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = open_signed_in(
            browser,
            live_server,
            live_server.admin_username,
            live_server.admin_password,
            viewport=viewport,
        )
        try:
            page.screenshot(path=str(shots / f"{tag}-list.png"))
            assert overflowing(page) == []
            conv_item(page, group["id"]).click()
            expect(
                page.locator("[data-testid=message-body]").filter(has_text="shared folder")
            ).to_be_visible()
            composer = page.get_by_test_id("composer")
            composer.press_sequentially("Thanks @i", delay=10)
            expect(page.get_by_test_id("mention-item").first).to_contain_text("ivy")
            composer.press("Enter")
            expect(composer).to_have_value("Thanks @ivy ")
            composer.press("Enter")
            expect(page.locator(".msg:not(.pending) [data-testid=message-body]").last).to_have_text(
                "Thanks @ivy"
            )
            expect(page.locator(".msg.pending")).to_have_count(0)
            page.mouse.move(viewport["width"] // 2, 20)
            page.screenshot(path=str(shots / f"{tag}-chat-admin.png"))
            assert overflowing(page) == []
            page.get_by_test_id("toggle-members").click()
            expect(page.get_by_test_id("members-list").locator(".member")).to_have_count(3)
            page.screenshot(path=str(shots / f"{tag}-members.png"))
            if tag == "desktop":
                members = page.get_by_test_id("members-list").locator(".member")
                members.filter(has_text="@jun").get_by_test_id("remove-member").click()
                page.get_by_test_id("confirm-ok").click()
                expect(members).to_have_count(2)
                page.get_by_test_id("add-member").fill("jun")
                page.get_by_test_id("add-member-result").filter(has_text="@jun").click()
                expect(members).to_have_count(3)
            page.get_by_test_id("toggle-members").click()

            page.goto(live_server.url + "/#/channels")
            expect(page.get_by_test_id("channel").filter(has_text="general")).to_be_visible()
            page.evaluate("document.getElementById('toasts').replaceChildren()")
            page.screenshot(path=str(shots / f"{tag}-channels.png"))
            assert overflowing(page) == []
            page.goto(live_server.url + "/#/directory")
            page.get_by_test_id("dept").filter(has_text="Engineering").click()
            expect(page.get_by_test_id("person")).to_have_count(1)
            expect(page.get_by_test_id("person")).to_contain_text("Ivy Park")
            page.screenshot(path=str(shots / f"{tag}-directory.png"))
            assert overflowing(page) == []
            page.goto(live_server.url + "/#/admin")
            expect(page.get_by_test_id("user-row").filter(has_text="@jun")).to_be_visible()
            page.evaluate("document.getElementById('toasts').replaceChildren()")
            page.screenshot(path=str(shots / f"{tag}-admin.png"))
            assert overflowing(page) == []
        finally:
            _close(page)
    assert channel["id"]
    admin.close()


@one_backend
def test_admin_manages_users_and_people_join_channels(live_server: Any, browser: Browser) -> None:
    admin = admin_rest(live_server)
    channel = admin.conversation("channel", [], name="announcements")
    page = open_signed_in(
        browser, live_server, live_server.admin_username, live_server.admin_password
    )

    def kim_row() -> Any:
        return page.get_by_test_id("user-row").filter(has_text="@kim")

    kim = None
    try:
        page.goto(live_server.url + "/#/admin")
        # A display name with a direction control is refused, and the form says why.
        page.get_by_test_id("new-username").fill("kim")
        page.get_by_test_id("new-display-name").fill("Kim \u202eLee")
        page.get_by_test_id("new-password").fill("kim-password-1")
        page.get_by_test_id("create-user").click()
        expect(page.locator(".form-error").first).to_contain_text("invisible or text-direction")
        expect(page.locator(".form-error").first).to_contain_text("U+202E")
        page.get_by_test_id("new-username").fill("kim")
        page.get_by_test_id("new-display-name").fill("Kim Lee")
        page.get_by_test_id("new-password").fill("amber-quarry-1")
        page.get_by_test_id("create-user").click()
        expect(kim_row()).to_be_visible()
        kim_row().get_by_test_id("role-select").select_option("admin")
        expect(kim_row().get_by_test_id("role-select")).to_have_value("admin")

        # Kim signs in, joins a channel, creates one.
        kim = open_signed_in(browser, live_server, "kim", "amber-quarry-1")
        kim.goto(live_server.url + "/#/channels")
        kim.get_by_test_id("channel").filter(has_text="announcements").get_by_test_id(
            "join"
        ).click()
        expect(kim.get_by_test_id("chat-title")).to_have_text("announcements")
        expect(conv_item(kim, channel["id"])).to_be_visible()
        kim.get_by_test_id("new-conversation").click()
        kim.get_by_test_id("kind-channel").click()
        kim.get_by_test_id("new-name").fill("design")
        kim.get_by_test_id("new-create").click()
        expect(kim.get_by_test_id("chat-title")).to_have_text("design")

        # Disabling cuts Kim off at once; enabling and a new password let Kim back in.
        kim_row().get_by_test_id("disable-user").click()
        page.get_by_test_id("confirm-ok").click()
        expect(kim_row().get_by_test_id("enable-user")).to_be_visible()
        expect(kim.get_by_test_id("login-form")).to_be_visible(timeout=15000)
        kim_row().get_by_test_id("enable-user").click()
        expect(kim_row().get_by_test_id("disable-user")).to_be_visible()
        kim_row().get_by_test_id("reset-password").click()
        page.get_by_test_id("prompt-input").fill("amber-quarry-2")
        page.get_by_test_id("prompt-ok").click()
        expect(page.locator(".toast").filter(has_text="Password changed")).to_be_visible()
        kim.get_by_test_id("login-username").fill("kim")
        kim.get_by_test_id("login-password").fill("amber-quarry-2")
        kim.get_by_test_id("login-submit").click()
        expect(kim.get_by_test_id("me-name")).to_have_text("Kim Lee")

        page.get_by_test_id("admin-tab-departments").click()
        page.get_by_test_id("department-name").fill("Sales")
        page.get_by_test_id("create-department").click()
        page.get_by_test_id("department").filter(has_text="Sales").click()
        # (the name in the option is isolated: "\u2068Kim Lee\u2069 (@kim)")
        kim_option = page.get_by_test_id("department-add-user").locator("option", has_text="(@kim)")
        expect(kim_option).to_contain_text("Kim Lee")
        page.get_by_test_id("department-add-user").select_option(
            value=kim_option.get_attribute("value")
        )
        expect(page.locator(".dept-members .card").filter(has_text="@kim")).to_be_visible()
    finally:
        if kim is not None:
            _close(kim)
        _close(page)
        admin.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_pages_run_under_their_csp_and_api_docs_work_offline(
    live_server: Any, browser: Browser
) -> None:
    """The web client and the API docs (Swagger UI) run under the server's
    Content-Security-Policy headers without a violation, and /api/docs loads nothing
    from another host: every request elsewhere is refused, and it still renders."""
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    elsewhere: list[str] = []

    def offline(route: Any) -> None:
        if route.request.url.startswith(live_server.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    watch_errors(page)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    try:
        page.goto(live_server.url + "/")
        expect(page.get_by_test_id("login-username")).to_be_visible()
        assert page.evaluate("window.__csp") == []
        page.goto(live_server.url + "/api/docs")
        expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
        assert page.locator(".opblock").count() > 20
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Tidings")
        assert page.evaluate("window.__csp") == []
        assert elsewhere == []
        assert [m for m in console if "Content Security Policy" in m] == []
    finally:
        _close(page)


@one_backend
def test_account_page_explains_refused_passwords_and_manages_the_second_factor(
    live_server: Any, browser: Browser, shots: Path
) -> None:
    """Changing the password shows why a new one is refused, in both languages; turning
    the second factor on and off asks for the password each time."""
    import pyotp

    admin = admin_rest(live_server)
    noor = create_user(admin, live_server, "noor", "Noor Haddad")
    page = open_signed_in(browser, live_server, "noor", noor.password)
    new_password = "amber-quarry-9"

    def change_password(current: str, new: str) -> None:
        page.get_by_test_id("current-password").fill(current)
        page.get_by_test_id("new-password").fill(new)
        page.get_by_test_id("change-password").click()

    try:
        page.get_by_test_id("nav-account").click()
        expect(page.get_by_test_id("account-page")).to_be_visible()
        error = page.get_by_test_id("password-error")
        change_password("not-my-password", new_password)
        expect(error).to_have_text("The password is wrong.")
        change_password(noor.password, "password1")
        expect(error).to_have_text("This is one of the most common passwords. Choose another.")
        change_password(noor.password, "noor-2026-x")
        expect(error).to_have_text("The password must not contain the username.")
        page.get_by_test_id("lang-select").select_option("zh-CN")
        expect(page.get_by_test_id("nav-account")).to_contain_text("账号")
        change_password(noor.password, " " * 8)
        expect(error).to_have_text("密码不能全是空格。")
        change_password(noor.password, "12345678")
        expect(error).to_have_text("这是最常见的密码之一，请换一个。")
        page.get_by_test_id("lang-select").select_option("en")
        change_password(noor.password, new_password)
        expect(page.locator(".toast").filter(has_text="Password changed")).to_be_visible()

        # the second factor: the password first, then the QR code and a first code
        box = page.get_by_test_id("second-factor")
        expect(box.get_by_test_id("totp-status")).to_have_text("Off")
        box.get_by_test_id("totp-password").fill(noor.password)  # the old one
        box.get_by_test_id("totp-start").click()
        expect(box.get_by_test_id("totp-error")).to_have_text("The password is wrong.")
        box.get_by_test_id("totp-password").fill(new_password)
        box.get_by_test_id("totp-start").click()
        expect(box.locator("img.qr")).to_be_visible()
        secret = box.get_by_test_id("totp-secret").inner_text()
        box.get_by_test_id("totp-code").fill(pyotp.TOTP(secret).now())
        page.screenshot(path=str(shots / "account-totp-setup.png"))
        box.get_by_test_id("totp-enable").click()
        expect(box.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
        codes = box.get_by_test_id("recovery-codes").locator("li").all_inner_texts()
        page.screenshot(path=str(shots / "account-recovery-codes.png"))
        box.get_by_test_id("codes-done").click()
        expect(box.get_by_test_id("totp-status")).to_have_text("On")
        expect(box).to_contain_text(re.compile(r"10\W? recovery codes left\."))  # (isolated)
        # turning it off needs the password and a code (here a recovery code)
        box.get_by_test_id("totp-password").fill("not-my-password")
        box.get_by_test_id("totp-code").fill(codes[0])
        box.get_by_test_id("totp-disable").click()
        expect(box.get_by_test_id("totp-error")).to_have_text("The password is wrong.")
        box.get_by_test_id("totp-password").fill(new_password)
        box.get_by_test_id("totp-disable").click()
        # that was the third wrong password of this account: the next try waits a second
        expect(box.get_by_test_id("totp-error")).to_have_text("Slow down a little and try again.")
        page.wait_for_timeout(1200)
        box.get_by_test_id("totp-disable").click()
        expect(box.get_by_test_id("totp-status")).to_have_text("Off")
        assert web_login(live_server.url, "noor", new_password)  # no code needed any more
    finally:
        _close(page)
        admin.close()


def test_a_policy_that_requires_a_second_factor_leads_to_enrolment_first(
    live_server: Any, browser: Browser
) -> None:
    """When the organization requires a second factor and the account has none, signing
    in (or coming back with the stored session) shows the enrolment, not a chat that the
    server would refuse; once enrolled, the app opens and connects."""
    import pyotp

    admin = admin_rest(live_server)
    ines = create_user(admin, live_server, "ines", "Inès Moreau")
    admin.call("PATCH", "/settings", json={"second_factor_policy": "everyone"})
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    watch_errors(page)
    try:
        page.goto(live_server.url + "/")
        page.get_by_test_id("login-username").fill("ines")
        page.get_by_test_id("login-password").fill(ines.password)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("enrol-page")).to_be_visible()
        expect(page.get_by_test_id("enrol-notice")).to_contain_text("requires two-step")
        expect(page.get_by_test_id("conv-list")).to_have_count(0)
        page.reload()  # the stored session is still one that may only enrol
        box = page.get_by_test_id("second-factor")
        expect(box.get_by_test_id("totp-status")).to_have_text("Off")
        box.get_by_test_id("totp-password").fill(ines.password)
        box.get_by_test_id("totp-start").click()
        expect(box.locator("img.qr")).to_be_visible()  # the QR code, and the key to type
        expect(box.locator("img.qr")).to_have_attribute("src", re.compile(r"^data:image/png;"))
        secret = box.get_by_test_id("totp-secret").inner_text()
        box.get_by_test_id("totp-code").fill(pyotp.TOTP(secret).now())
        box.get_by_test_id("totp-enable").click()
        expect(box.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
        box.get_by_test_id("codes-done").click()
        page.get_by_test_id("conv-list").wait_for()
        page.wait_for_function("() => document.documentElement.dataset.connection === 'online'")
        expect(page.get_by_test_id("banner")).to_be_hidden()  # not "Reconnecting…"
        # the codes were shown once: the account page says how many are left, not which
        page.get_by_test_id("nav-account").click()
        box = page.get_by_test_id("second-factor")
        expect(box.get_by_test_id("totp-status")).to_have_text("On")
        expect(box.get_by_test_id("recovery-codes")).to_have_count(0)
    finally:
        _close(page)
        admin.close()
