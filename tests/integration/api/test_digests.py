"""Email digests of missed direct messages and mentions, mailed for real to an SMTP server
on loopback (aiosmtpd), with a clock the test moves (the digest delay passes without
sleeping); on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.conftest import AppServer, MakeServer
from tests.fakes import FakeClock
from tests.helpers import Api, login, make_user
from tests.smtp_server import SmtpServer

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DELAY = 600


def settings(smtp: SmtpServer) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_tls": "none",
        "smtp_from": "chat@example.org",
        "digest_delay_seconds": DELAY,
        "public_url": "https://chat.example.org",
        "push_enabled": False,
    }


async def setup(server: AppServer) -> tuple[Api, Api, Api, str, str]:
    admin = await login(server.url, "admin", server.admin_password)
    ann = await make_user(admin, "ann", display_name="Ann")
    ben = await make_user(admin, "ben", display_name="Ben")
    direct = await ann.post(
        "/conversations", {"kind": "direct", "member_ids": [ben.id]}, expect=None
    )
    group = await ann.post(
        "/conversations",
        {"kind": "group", "name": "Team <&>", "member_ids": [ben.id]},
        expect=None,
    )
    return admin, ann, ben, direct["conversation"]["id"], group["conversation"]["id"]


async def test_one_digest_batches_what_is_still_unread_after_the_delay(
    make_server: MakeServer,
) -> None:
    clock = FakeClock(START, tick=timedelta(milliseconds=1))
    async with SmtpServer() as smtp, make_server(clock=clock, **settings(smtp)) as server:
        admin, ann, ben, dm, group = await setup(server)
        mine = await ben.call(
            "PUT",
            "/users/me/notifications/offline",
            json={"email": "ben@example.org"},
            expect=200,
        )
        assert mine["notifications"] == {
            "email_digests": True,
            "previews": True,
            "email": "ben@example.org",
            "email_available": True,
            "push_available": False,
        }
        await ben.call("PATCH", "/users/me", json={"language": "zh-CN"}, expect=200)
        await ben.send(dm, "ben's own message")  # (sending reads what came before)
        await ann.send(dm, "first <b>&amp; one")
        await ann.send(group, "no mention: not mailed")
        await ann.send(group, "second, @ben 看一下")
        await server.run_due_jobs()
        assert smtp.mails == []  # not before the delay
        clock.advance(DELAY / 2)
        await server.run_due_jobs()
        assert smtp.mails == []
        clock.advance(DELAY / 2 + 5)
        await server.run_due_jobs()
        assert len(smtp.mails) == 1
        mail = smtp.mails[0]
        assert mail.rcpt_tos == ["ben@example.org"] and mail.mail_from == "chat@example.org"
        assert mail.message["Subject"] == "你在 Tidings 有 2 条未读消息"
        text = mail.part("plain")
        assert "first <b>&amp; one" in text and "second, @ben 看一下" in text
        assert "Ann（私信）" in text and "Ann 在 Team <&> 中提到了你" in text
        assert "no mention" not in text and "ben's own" not in text
        page = mail.part("html")
        assert "first &lt;b&gt;&amp;amp; one" in page and "<b>&amp;" not in page
        assert "Team &lt;&amp;&gt;" in page
        link = mail.message["List-Unsubscribe"].strip("<>")
        assert link.startswith("https://chat.example.org/api/v1/notifications/unsubscribe?")
        assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert link in text
        # once: nothing new, nothing more
        clock.advance(DELAY * 3)
        await server.run_due_jobs()
        assert len(smtp.mails) == 1
        # read before the delay ends: not mailed
        sent = await ann.send(dm, "third, read in time")
        await ben.post(f"/conversations/{dm}/read", {"seq": sent["seq"]}, expect=None)
        clock.advance(DELAY + 5)
        await server.run_due_jobs()
        assert len(smtp.mails) == 1

        # the unsubscribe link works without signing in
        parts = urlsplit(link)
        path = f"{parts.path}?{parts.query}"
        async with httpx.AsyncClient(base_url=server.url) as anyone:
            shown = await anyone.get(path)
            assert shown.status_code == 200 and 'method="post"' in shown.text
            assert "退订" in shown.text
            forged = await anyone.post(path.replace("s=", "s=x"))
            assert forged.status_code == 403
            other = await anyone.post(path.replace(f"u={ben.id}", f"u={ann.id}"))
            assert other.status_code == 403
            done = await anyone.post(path, data={"List-Unsubscribe": "One-Click"})
            assert done.status_code == 200 and "不再收到" in done.text
            again = await anyone.post(path)
            assert again.status_code == 200
        got = await ben.get("/users/me/notifications/offline")
        assert got["notifications"]["email_digests"] is False
        await ann.send(dm, "fourth, after unsubscribing")
        clock.advance(DELAY + 5)
        await server.run_due_jobs()
        assert len(smtp.mails) == 1
        audit = await admin.get("/audit?action=digests_unsubscribed")
        assert [e["target_id"] for e in audit["entries"]] == [ben.id]  # once
        changed = await admin.get("/audit?action=user_email_changed")
        assert [e["actor_id"] for e in changed["entries"]] == [ben.id]


async def test_english_digest_without_previews_and_settings_checks(
    make_server: MakeServer,
) -> None:
    clock = FakeClock(START, tick=timedelta(milliseconds=1))
    async with SmtpServer() as smtp, make_server(clock=clock, **settings(smtp)) as server:
        _admin, ann, ben, dm, _group = await setup(server)
        # no address: no mail
        await ann.send(dm, "before ben has an address")
        clock.advance(DELAY + 5)
        await server.run_due_jobs()
        assert smtp.mails == []
        for bad in ["not-an-address", "a@b", "x <y@z.org>", "a b@c.org", "a@b.org\r\nBcc: e@f.org"]:
            answer = await ben.call(
                "PUT", "/users/me/notifications/offline", json={"email": bad}, expect=400
            )
            assert answer["error"]["details"]["field"] == "email", answer
        await ben.call(
            "PUT",
            "/users/me/notifications/offline",
            json={"email": "ben@example.org", "previews": False},
            expect=200,
        )
        await ann.send(dm, "a secret plan")
        clock.advance(DELAY + 5)
        await server.run_due_jobs()
        assert len(smtp.mails) == 1
        mail = smtp.mails[0]
        # the first message was unread too, and within the look-back: both are listed
        assert mail.message["Subject"] == "You have 2 unread messages in Tidings"
        text = mail.part("plain")
        assert "Ann (direct message)" in text
        assert "secret plan" not in text and "(message preview hidden)" in text
        assert "secret plan" not in mail.part("html")
        # turned off in the settings: no more mail
        await ben.call(
            "PUT", "/users/me/notifications/offline", json={"email_digests": False}, expect=200
        )
        await ann.send(dm, "off now")
        clock.advance(DELAY + 5)
        await server.run_due_jobs()
        assert len(smtp.mails) == 1
        # removing the address
        got = await ben.call(
            "PUT", "/users/me/notifications/offline", json={"email": ""}, expect=200
        )
        assert got["notifications"]["email"] is None


async def test_an_admin_sets_a_local_accounts_address(make_server: MakeServer) -> None:
    async with make_server() as server:
        admin, _ann, ben, _dm, _group = await setup(server)
        got = await admin.call(
            "PATCH", f"/users/{ben.id}", json={"email": "ben@corp.example"}, expect=200
        )
        assert got["user"]["email"] == "ben@corp.example"
        mine = await ben.get("/users/me/notifications/offline")
        assert mine["notifications"]["email"] == "ben@corp.example"
        assert mine["notifications"]["email_available"] is False  # no SMTP here
        bad = await admin.call(
            "PATCH", f"/users/{ben.id}", json={"email": "x\r\nBcc: y@z.org"}, expect=400
        )
        assert bad["error"]["details"]["field"] == "email"
        await ben.call(
            "PATCH", f"/users/{admin.id}", json={"email": "evil@example.org"}, expect=403
        )
        gone = await admin.call("PATCH", f"/users/{ben.id}", json={"email": ""}, expect=200)
        assert gone["user"]["email"] is None
        changed = await admin.get("/audit?action=user_email_changed")
        assert [(e["actor_id"], e["target_id"]) for e in changed["entries"]] == [
            (admin.id, ben.id),
            (admin.id, ben.id),
        ]


async def test_mute_dnd_and_level_none_suppress_digests(make_server: MakeServer) -> None:
    clock = FakeClock(START, tick=timedelta(milliseconds=1))
    async with SmtpServer() as smtp, make_server(clock=clock, **settings(smtp)) as server:
        _admin, ann, ben, dm, group = await setup(server)
        await ben.call(
            "PUT", "/users/me/notifications/offline", json={"email": "b@example.org"}, expect=200
        )
        await ben.call(
            "PUT", f"/conversations/{group}/notifications", json={"muted": True}, expect=200
        )
        await ben.call(
            "PUT", f"/conversations/{dm}/notifications", json={"level": "none"}, expect=200
        )
        await ann.send(group, "muted @ben")
        await ann.send(dm, "at level none")
        clock.advance(DELAY + 5)
        await server.run_due_jobs()
        assert smtp.mails == []
        # do not disturb when the digest is due: not mailed then
        await ben.call(
            "PUT", f"/conversations/{dm}/notifications", json={"level": None}, expect=200
        )
        until = (clock.now() + timedelta(seconds=DELAY * 3)).isoformat()
        await ben.call("PUT", "/users/me/notifications", json={"dnd_until": until}, expect=200)
        await ann.send(dm, "during do not disturb")
        clock.advance(DELAY + 5)
        await server.run_due_jobs()
        assert smtp.mails == []
        # a group message without a mention is no digest's, whatever the level
        await ben.call(
            "PUT", f"/conversations/{group}/notifications", json={"muted": False}, expect=200
        )
        await ann.send(group, "no mention in the group")
        clock.advance(DELAY * 3)
        await server.run_due_jobs()
        assert smtp.mails == []
