"""core/files.py: file names made safe, type lists, and what the bytes say they are."""

from __future__ import annotations

import pytest

from tidings.core.files import (
    ends_cleanly,
    parse_types,
    riff_size_matches,
    sanitize_file_name,
    sniff,
    type_allowed,
)

BLOCKED = parse_types("application/x-executable,application/x-msdownload,application/x-mach-binary")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\evil.txt", "evil.txt"),
        ("a\u202etxt.exe", "atxt.exe"),  # no bidirectional override
        ("line\r\nbreak\x00.txt", "linebreak.txt"),
        ("...hidden", "hidden"),
        ("con.txt", "_con.txt"),
        ("", "file"),
        ("/", "file"),
        ("  spaced   out  .md ", "spaced out .md"),
    ],
)
def test_sanitize_file_name(given: str, kept: str) -> None:
    assert sanitize_file_name(given, 200) == kept


def test_a_long_name_keeps_its_extension() -> None:
    name = sanitize_file_name("x" * 1000 + ".tar.gz", 50)
    assert len(name) == 50 and name.endswith(".gz")
    assert len(sanitize_file_name("y" * 1000, 50)) == 50


def test_type_lists() -> None:
    assert not type_allowed("application/x-executable", (), BLOCKED)
    assert type_allowed("image/png", (), BLOCKED)
    images = parse_types("image/*, application/pdf")
    assert type_allowed("image/webp", images, BLOCKED)
    assert type_allowed("application/pdf; x=y", images, BLOCKED)
    assert not type_allowed("text/plain", images, BLOCKED)


@pytest.mark.parametrize(
    ("head", "declared", "found"),
    [
        (b"\x7fELF\x02\x01\x01" + b"\0" * 300, "text/plain", "application/x-executable"),
        (b"MZ\x90\x00" + b"\0" * 300, "image/png", "application/x-msdownload"),
        (b"\xcf\xfa\xed\xfe" + b"\0" * 300, None, "application/x-mach-binary"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "text/html", "image/png"),
        (b"<!DOCTYPE html><p>x", "image/png", "text/html"),
        (b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>", "image/png", "image/svg+xml"),
        (b"a,b\n1,2\n", "text/csv", "text/csv"),
        (b"plain words", "text/html", "text/plain"),  # the client cannot make it markup
        (b"caf\xc3", None, "text/plain"),  # a character cut at the end of the head
        (b"\x00\x01\x02binary", None, "application/octet-stream"),
    ],
)
def test_sniff(head: bytes, declared: str | None, found: str) -> None:
    assert sniff(head, declared) == found


def test_images_that_end_where_their_format_ends() -> None:
    assert ends_cleanly("image/png", b"\0\0\0\0IEND\xaeB`\x82")
    assert not ends_cleanly("image/png", b"IEND\xaeB`\x82<html>")
    assert ends_cleanly("image/jpeg", b"\xff\xd9")
    assert not ends_cleanly("image/gif", b"PK\x05\x06" + b"\0" * 18)
    webp = b"RIFF" + (20).to_bytes(4, "little") + b"WEBPVP8 "
    assert riff_size_matches(webp, 28) and not riff_size_matches(webp, 100)
