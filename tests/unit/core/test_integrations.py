"""The pure rules of incoming webhooks and slash commands (core/integrations.py) and the
keyring's signed links: Slack bodies reduced to text, names, URLs, signatures."""

from __future__ import annotations

import pytest

from tidings.core.errors import InvalidRequest
from tidings.core.integrations import (
    check_command_name,
    check_command_text,
    check_target_url,
    secret_hash,
    signature,
    signature_ok,
    slack_text,
)
from tidings.services.keyring import Keyring

KEY = "k" * 40


def test_slack_text_links_escapes_blocks_and_attachments() -> None:
    assert slack_text({"text": "see <https://x.io/a|the log> &lt;b&gt; &amp; <@U1|ann>"}) == (
        "see [the log](https://x.io/a) <b> & ann"
    )
    assert slack_text({"text": "<https://x.io>"}) == "https://x.io"
    blocks = {
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Deploy"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*api*"},
             "fields": [{"type": "mrkdwn", "text": "v2"}]},
            {"type": "context",
             "elements": [{"type": "mrkdwn", "text": "by ci"}, {"type": "image"}]},
            {"type": "divider"}, "junk", 5,
        ]
    }  # fmt: skip
    assert slack_text(blocks) == "Deploy\n\n*api*\n\nv2\n\nby ci"
    attachments = {"attachments": [
        {"fallback": "only fallback"},
        {"pretext": "pre", "title": "T", "fields": [{"title": "cpu", "value": "91%"}, "x"]},
    ]}  # fmt: skip
    assert slack_text(attachments) == "only fallback\n\npre\n\nT\n\ncpu: 91%"
    assert slack_text({"text": "  ", "blocks": [{"type": "divider"}]}) == ""
    assert slack_text({"blocks": "not a list", "attachments": {"a": 1}}) == ""
    assert slack_text({}) == ""


def test_command_names_texts_and_urls() -> None:
    assert check_command_name(" /Deploy ") == "deploy"
    for bad in ("", "/", "no space", "-x", "x" * 33, "é"):
        with pytest.raises(InvalidRequest):
            check_command_name(bad)
    assert check_command_text("  hi  ") == "hi"
    for bad in ("x" * 4001, "a\x00b"):
        with pytest.raises(InvalidRequest):
            check_command_text(bad)
    assert check_target_url(" https://a.example/x?y=1 ") == "https://a.example/x?y=1"
    bad_urls = (
        "ftp://a", "https://", "http://u:p@a.io", "http://a.io:0/", "http://[::1", "x" * 2001
    )
    for bad in bad_urls:
        with pytest.raises(InvalidRequest):
            check_target_url(bad)


def test_signatures_and_hashes_take_any_string() -> None:
    sig = signature("s3cret", "1700000000", b'{"a":1}')
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert signature_ok("s3cret", "1700000000", b'{"a":1}', sig)
    assert not signature_ok("s3cret", "1700000001", b'{"a":1}', sig)
    for hostile in ("é" * 10, "\ud800", ""):
        assert not signature_ok("s3cret", "1", b"", hostile)
        assert len(secret_hash(hostile)) == 64


def test_signed_links_check_with_any_key_held_and_refuse_anything_else() -> None:
    old, new = Keyring([KEY]), Keyring(["n" * 40, KEY])
    link = old.sign_link("command response", "inv1")
    assert old.link_is_signed("command response", "inv1", link)
    assert new.link_is_signed("command response", "inv1", link)  # an older key still checks
    assert not old.link_is_signed("command response", "inv2", link)
    assert not old.link_is_signed("other purpose", "inv1", link)
    for hostile in ("", "é", "\ud800", link + "x"):
        assert not old.link_is_signed("command response", "inv1", hostile)
    sealed = old.seal_secret("cmd1", "the secret")
    assert new.open_secret("cmd1", *sealed) == "the secret"
