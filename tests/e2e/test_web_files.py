"""Files between two people in a real browser (Debian's Chromium via Playwright) against
the real `tidings serve`: Alice attaches an image and a text file and sends them; Bob
sees the image's thumbnail once the worker has made it (the `file_updated` event, live)
and the text file's card, opens the image in the lightbox and closes it with Esc, and
downloads the text file: the same bytes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.web_helpers import (
    Rest,
    admin_rest,
    chromium,
    conv_item,
    create_user,
    open_signed_in,
    page_errors,
    require_browser,
)

require_browser()
from playwright.sync_api import Browser, expect  # noqa: E402 - after the check above

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(120)]

THUMB_LOADED = "(img) => img.complete && img.naturalWidth > 0"


@pytest.fixture
def browser(live_server: Any) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def photo() -> bytes:
    from PIL import Image

    im = Image.new("RGB", (1600, 1000), (40, 90, 200))
    im.paste((250, 200, 40), (0, 0, 800, 1000))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def test_an_image_and_a_file_go_from_alice_to_bob(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    admin = admin_rest(live_server)
    alice = create_user(admin, live_server, "alice", "Alice Chen")
    bob = create_user(admin, live_server, "bob", "Bob Smith")
    alice_rest = Rest(live_server.url, alice.token)
    cid = alice_rest.conversation("direct", [bob.id])["id"]
    alice_rest.close()
    image = tmp_path / "harbour.jpg"
    image.write_bytes(photo())
    notes = tmp_path / "notes.txt"
    text = ("Minutes of the meeting, 第一部分\n" * 200).encode()
    notes.write_bytes(text)

    a = open_signed_in(browser, live_server, "alice", alice.password)
    b = open_signed_in(browser, live_server, "bob", bob.password)
    try:
        conv_item(a, cid).click()
        a.get_by_test_id("attach-input").set_input_files([str(image), str(notes)])
        uploads = a.get_by_test_id("upload")
        expect(uploads).to_have_count(2)
        expect(a.locator("[data-testid=upload][data-status=done]")).to_have_count(2)
        a.get_by_test_id("composer").fill("Photos and the minutes")
        a.get_by_test_id("composer").press("Enter")
        expect(uploads).to_have_count(0)  # the tray empties with the send

        conv_item(b, cid).click()
        msg = b.locator(".msg").filter(has_text="Photos and the minutes")
        expect(msg).to_have_count(1)
        # The text file's card: icon, name, size.
        card = msg.get_by_test_id("file-card").filter(has_text="notes.txt")
        expect(card).to_be_visible()
        expect(card.get_by_test_id("file-size")).to_have_text("7.2 KB")  # 7,400 bytes
        # The image gains its thumbnail when the worker is done (no reload).
        thumb = msg.get_by_test_id("att-thumb")
        expect(thumb).to_be_visible(timeout=30_000)
        b.wait_for_function(THUMB_LOADED, arg=thumb.element_handle(), timeout=15_000)
        width = thumb.evaluate("(img) => img.naturalWidth")
        assert width == 320  # the thumbnail, not the original

        # The lightbox: click to enlarge, Esc closes, focus back on the thumbnail.
        msg.get_by_test_id("att-image").click()
        box = b.get_by_test_id("lightbox")
        expect(box).to_be_visible()
        big = box.get_by_test_id("lightbox-img")
        b.wait_for_function(THUMB_LOADED, arg=big.element_handle(), timeout=15_000)
        assert big.evaluate("(img) => img.naturalWidth") == 1280  # the preview size
        expect(box.get_by_test_id("lightbox-caption")).to_contain_text("harbour.jpg")
        b.keyboard.press("Escape")
        expect(box).to_have_count(0)
        assert b.evaluate("() => document.activeElement.dataset.testid") == "att-image"
        # Keyboard only: Enter on the focused thumbnail opens it again.
        b.keyboard.press("Enter")
        expect(b.get_by_test_id("lightbox")).to_be_visible()
        b.get_by_test_id("lightbox-close").click()
        expect(b.get_by_test_id("lightbox")).to_have_count(0)

        # Downloading the text file gives its bytes.
        with b.expect_download() as download:
            card.get_by_test_id("file-download").click()
        assert download.value.suggested_filename == "notes.txt"
        assert Path(download.value.path()).read_bytes() == text

        # The conversation's Files panel lists both.
        b.get_by_test_id("open-files").click()
        rows = b.get_by_test_id("files-panel-row")
        expect(rows).to_have_count(2)
        expect(b.get_by_test_id("files-panel")).to_contain_text("notes.txt")
        expect(b.get_by_test_id("files-panel")).to_contain_text("harbour.jpg")
    finally:
        errors = page_errors(a) + page_errors(b)
        a.context.close()
        b.context.close()
        admin.close()
    assert errors == []
