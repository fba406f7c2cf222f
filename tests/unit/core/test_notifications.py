"""core/notifications.py: who is notified (over core/notify.py's policy), what a
subscription may be, the VAPID audience, and the digest mail's text and escaping."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from tidings.core.errors import InvalidRequest
from tidings.core.models import ConversationKind, Dnd, MemberNotify, NotifyLevel, UserId
from tidings.core.notifications import (
    MissedItem,
    check_email,
    check_subscription,
    notified_for,
    origin_of,
    preview,
    push_payload,
    render_digest,
)
from tidings.core.notify import EveryoneMention

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
A, B, C = UserId("a"), UserId("b"), UserId("c")
ALL = {A: MemberNotify(), B: MemberNotify(), C: MemberNotify()}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_direct_and_group_notify_all_but_the_sender() -> None:
    assert notified_for(
        ConversationKind.DIRECT, A, {A: MemberNotify(), B: MemberNotify()}, [], None, now=NOW
    ) == {B}
    assert notified_for(ConversationKind.GROUP, A, ALL, [], None, now=NOW) == {B, C}


def test_channels_notify_mentions_and_everyone_but_not_here() -> None:
    ch = ConversationKind.CHANNEL
    assert notified_for(ch, A, ALL, [], None, now=NOW) == set()
    assert notified_for(ch, A, ALL, ["b", "a"], None, now=NOW) == {B}
    assert notified_for(ch, A, ALL, [], EveryoneMention.CHANNEL, now=NOW) == {B, C}
    assert notified_for(ch, A, ALL, [], EveryoneMention.HERE, now=NOW) == set()


def test_mute_level_and_dnd_suppress() -> None:
    members = {
        B: MemberNotify(muted=True),
        C: MemberNotify(level=NotifyLevel.NONE),
        UserId("d"): MemberNotify(muted=True, muted_until=NOW - timedelta(minutes=1)),
        UserId("e"): MemberNotify(),
    }
    dnd = {UserId("e"): (Dnd(until=NOW + timedelta(hours=1)), UTC)}
    got = notified_for(ConversationKind.GROUP, A, members, ["b", "c"], None, now=NOW, dnd=dnd)
    assert got == {UserId("d")}  # a mute that ended no longer counts


def test_digests_are_of_direct_messages_and_mentions_only() -> None:
    group = ConversationKind.GROUP
    assert notified_for(group, A, ALL, [], None, now=NOW, digest=True) == set()
    assert notified_for(group, A, ALL, ["c"], None, now=NOW, digest=True) == {C}
    direct = {A: MemberNotify(), B: MemberNotify()}
    assert notified_for(ConversationKind.DIRECT, A, direct, [], None, now=NOW, digest=True) == {B}


def test_subscriptions_are_checked() -> None:
    point = b"\x04" + (
        bytes.fromhex(
            "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
            "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
        )
    )  # the P-256 generator
    auth = b64(b"\x00" * 16)
    check_subscription("https://push.example/x", b64(point), auth, 100)
    bad = [
        ("ftp://push.example/x", b64(point), auth),
        ("https://u:p@push.example/x", b64(point), auth),
        ("https://push.example/" + "x" * 100, b64(point), auth),
        ("https://push.example/x", b64(b"\x05" + point[1:]), auth),
        ("https://push.example/x", b64(point[:-1] + b"\x00"), auth),  # not on the curve
        ("https://push.example/x", b64(point), b64(b"\x00" * 15)),
        ("https://push.example/x", b64(point), "***"),
    ]
    for endpoint, p256dh, secret in bad:
        with pytest.raises(ValueError):
            check_subscription(endpoint, p256dh, secret, 100)


def test_the_vapid_audience_is_the_origin() -> None:
    assert origin_of("https://fcm.googleapis.com/fcm/send/abc?x=1") == "https://fcm.googleapis.com"
    assert origin_of("https://push.example:443/x") == "https://push.example"
    assert origin_of("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080"
    assert origin_of("https://[::1]:8443/x") == "https://[::1]:8443"


def test_payload_and_preview() -> None:
    assert push_payload("c", 3, "Ann", None) == {
        "kind": "message",
        "conversation_id": "c",
        "seq": 3,
        "sender_name": "Ann",
    }
    assert push_payload("c", 3, "Ann", "a  b\n c")["preview"] == "a b c"
    assert len(preview("x" * 500)) == 140 and preview("x" * 500).endswith("…")


def test_emails() -> None:
    assert check_email(" ann@example.org ") == "ann@example.org"
    for bad in [
        "",
        "ann",
        "ann@",
        "@example.org",
        "a@b",
        "a b@c.org",
        "<a@b.org>",
        "a@b.org\nBcc: x@y.z",
        "a" * 250 + "@b.org",
    ]:
        with pytest.raises(InvalidRequest):
            check_email(bad)


def test_the_digest_escapes_and_speaks_the_users_language() -> None:
    item = MissedItem("c", "<Team>", False, 1, "Ann & Co", "<script>x</script>", NOW)
    dm = MissedItem("d", "", True, 2, "Bob", "secret words", NOW)
    mail = render_digest("zh-CN", [item, dm], 3, True, "https://x/", "https://x/u?u=1&s=2")
    assert mail.subject == "你在 Tidings 有 5 条未读消息"
    assert "Ann & Co 在 <Team> 中提到了你" in mail.text and "<script>x</script>" in mail.text
    assert "……还有 3 条。" in mail.text
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "Ann &amp; Co" in mail.html and 'href="https://x/u?u=1&amp;s=2"' in mail.html
    en = render_digest(None, [dm], 0, False, "https://x/", "https://x/u")
    assert en.subject == "You have 1 unread message in Tidings"
    assert "secret words" not in en.text and "(message preview hidden)" in en.text
    assert render_digest("zh-TW", [dm], 0, True, "u", "v").subject.startswith("你在")
