"""Notifications for people whose tab is closed (Web Push, email digests): who is told
of a message, what a push payload holds, what a subscription may look like, and the
digest mail's text. No IO: services/notify_jobs.py, push.py and digests.py do that.

`notified_for` is the one seam that decides who is notified of a message; everything
else (the push jobs, the digests) asks it, and it asks the one policy of every notifier,
core/notify.py:should_notify (mute, do not disturb, levels all/mentions/none,
@all/@channel). Whether someone has read the message by the time a job runs is checked
by the job (it needs the store).
"""

from __future__ import annotations

import base64
import binascii
import html
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import NewType
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from tidings.core.errors import InvalidRequest
from tidings.core.models import ConversationKind, Dnd, MemberNotify, UserId
from tidings.core.notify import EveryoneMention, is_mentioned, should_notify

SubscriptionId = NewType("SubscriptionId", str)
MAX_EMAIL_CHARS = 254
PREVIEW_CHARS = 140  # of a message body in a push payload or a digest line
P256DH_BYTES = 65  # an uncompressed P-256 point (RFC 8291, section 3.1)
AUTH_BYTES = 16  # the authentication secret (RFC 8291, section 3.2)
NO_DND = Dnd()


@dataclass(frozen=True, slots=True)
class PushSubscription:
    """One device's push subscription (the browser's PushSubscription), bound to the
    session it was made in: signing that session out removes it."""

    id: SubscriptionId
    user_id: UserId
    token_id: str
    endpoint: str
    p256dh: str  # base64url, as the browser gives it
    auth: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReachableMember:
    """An active member of a conversation whom a push or a digest can reach, with their
    settings there: `push` when they have a push subscription, `mail` when they get
    email digests (an address, digests on, the account not disabled, no bot)."""

    user_id: UserId
    notify: MemberNotify
    push: bool
    mail: bool


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """A user's own notification settings for closed tabs."""

    email_digests: bool = True
    previews: bool = True  # a text preview in push notifications and digests


@dataclass(frozen=True, slots=True)
class MissedItem:
    """One message of a digest: a direct message or a mention still unread."""

    conversation_id: str
    conversation_name: str
    direct: bool
    seq: int
    sender_name: str
    body: str
    created_at: datetime


def notified_for(
    kind: ConversationKind,
    sender_id: UserId,
    members: Mapping[UserId, MemberNotify],
    mentions: Collection[str],
    everyone: EveryoneMention | None,
    *,
    now: datetime,
    dnd: Mapping[UserId, tuple[Dnd, tzinfo]] | None = None,
    digest: bool = False,
) -> frozenset[UserId]:
    """Who of the conversation's active `members` (with their settings there) is
    notified of a message, by the one policy (core/notify.py:should_notify): never the
    sender; not in do not disturb (`dnd`: each user's, with their time zone; absent:
    off), nor in a muted conversation; by their level (all, mentions, none).
    `@here` counts for nobody here: a closed tab is not "here". `digest`: email digests
    are of direct messages and mentions only, whatever the level."""
    found: set[UserId] = set()
    for uid, notify in members.items():
        mentioned = is_mentioned(uid, mentions, everyone, online=False)
        if digest and kind is not ConversationKind.DIRECT and not mentioned:
            continue
        user_dnd, zone = (dnd or {}).get(uid, (NO_DND, UTC))
        if should_notify(
            dnd=user_dnd,
            zone=zone,
            member=notify,
            kind=kind,
            mentioned=mentioned,
            own=uid == sender_id,
            now=now,
        ):
            found.add(uid)
    return frozenset(found)


def preview(body: str, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join(body.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def push_payload(
    conversation_id: str, seq: int, sender_name: str, body: str | None
) -> dict[str, object]:
    """The JSON a push carries (encrypted): small, and no text unless previews are on
    (`body` None)."""
    data: dict[str, object] = {
        "kind": "message",
        "conversation_id": conversation_id,
        "seq": seq,
        "sender_name": sender_name[:80],
    }
    if body is not None:
        data["preview"] = preview(body)
    return data


def _b64url(value: str, name: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) > 4 * size:
        raise ValueError(f"keys.{name} is base64url of {size} bytes")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"keys.{name} is not base64url") from None
    if len(raw) != size:
        raise ValueError(f"keys.{name} is base64url of {size} bytes")
    return raw


def check_subscription(endpoint: str, p256dh: str, auth: str, max_endpoint_chars: int) -> None:
    """A subscription as a browser makes it: an https endpoint (http only for the
    networks webhook_allowed_networks opens, checked by the outbound client when sent),
    a P-256 public key and a 16-byte secret. Raises ValueError saying what is wrong."""
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= max_endpoint_chars:
        raise ValueError(f"endpoint: 1 to {max_endpoint_chars} characters")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("endpoint: an https URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("endpoint: no user name or password in the URL")
    key = _b64url(p256dh, "p256dh", P256DH_BYTES)
    try:
        if key[0] != 4:
            raise ValueError
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    except ValueError:
        raise ValueError("keys.p256dh: an uncompressed P-256 point") from None
    _b64url(auth, "auth", AUTH_BYTES)


def check_email(value: str) -> str:
    """An email address as digests need it: one addr-spec, no display name, no
    spaces or characters that would change a mail header."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(text) > MAX_EMAIL_CHARS
        or any(c.isspace() or c in '<>",;\\()[]' or ord(c) < 32 for c in text)
    ):
        raise InvalidRequest("not an email address", field="email")
    return text


def origin_of(endpoint: str) -> str:
    """The `aud` of a VAPID token: the push service's origin (RFC 8292, section 2)."""
    parts = urlsplit(endpoint)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    port = parts.port
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == default else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}"


# --- the digest mail -----------------------------------------------------------------
_TEXT = {
    "en": {
        "subject_one": "You have 1 unread message in Tidings",
        "subject_many": "You have {n} unread messages in Tidings",
        "intro": "While you were away:",
        "direct": "{sender} (direct message)",
        "mention": "{sender} mentioned you in {conversation}",
        "open": "Open Tidings: {url}",
        "more": "… and {n} more.",
        "hidden": "(message preview hidden)",
        "footer": "You get this because email digests are on for your account.",
        "unsubscribe": "Stop these emails: {url}",
        "unsubscribe_html": "Stop these emails",
    },
    "zh-CN": {
        "subject_one": "你在 Tidings 有 1 条未读消息",
        "subject_many": "你在 Tidings 有 {n} 条未读消息",
        "intro": "你不在的时候：",
        "direct": "{sender}（私信）",
        "mention": "{sender} 在 {conversation} 中提到了你",
        "open": "打开 Tidings：{url}",
        "more": "……还有 {n} 条。",
        "hidden": "（已隐藏消息预览）",
        "footer": "你收到这封邮件，是因为你的账号开启了邮件摘要。",
        "unsubscribe": "不再接收这类邮件：{url}",
        "unsubscribe_html": "不再接收这类邮件",
    },
}


def mail_language(language: str | None) -> str:
    """The digest's language: Chinese for any zh*, else English."""
    return "zh-CN" if language and language.lower().startswith("zh") else "en"


@dataclass(frozen=True, slots=True)
class DigestMail:
    subject: str
    text: str
    html: str


def render_digest(
    language: str | None,
    items: Sequence[MissedItem],
    more: int,
    previews: bool,
    open_url: str,
    unsubscribe_url: str,
) -> DigestMail:
    """The digest in the user's language, plain text and HTML (every value escaped)."""
    t = _TEXT[mail_language(language)]
    total = len(items) + more
    subject = t["subject_one"] if total == 1 else t["subject_many"].format(n=total)
    lines = [t["intro"], ""]
    rows: list[str] = []
    for item in items:
        head = (
            t["direct"].format(sender=item.sender_name)
            if item.direct
            else t["mention"].format(sender=item.sender_name, conversation=item.conversation_name)
        )
        body = preview(item.body) if previews else t["hidden"]
        lines += [f"* {head}", f"  {body}"]
        rows.append(f"<li><strong>{html.escape(head)}</strong><br>{html.escape(body)}</li>")
    if more:
        lines.append(t["more"].format(n=more))
    lines += ["", t["open"].format(url=open_url), "", "--", t["footer"]]
    lines.append(t["unsubscribe"].format(url=unsubscribe_url))
    more_html = f"<p>{html.escape(t['more'].format(n=more))}</p>" if more else ""
    lang = mail_language(language)
    body_html = (
        f'<!doctype html><html lang="{lang}"><body>'
        f"<p>{html.escape(t['intro'])}</p><ul>{''.join(rows)}</ul>{more_html}"
        f'<p><a href="{html.escape(open_url, quote=True)}">Tidings</a></p>'
        f"<hr><p><small>{html.escape(t['footer'])} "
        f'<a href="{html.escape(unsubscribe_url, quote=True)}">'
        f"{html.escape(t['unsubscribe_html'])}</a></small></p></body></html>"
    )
    return DigestMail(subject, "\n".join(lines) + "\n", body_html)
