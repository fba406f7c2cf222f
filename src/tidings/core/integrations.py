"""Incoming webhooks and slash commands: their values and pure rules (no IO).

- An incoming webhook posts into one conversation as its integration user (a bot
  account made for it); its URL carries a secret of which only the hash is kept.
- A slash command `/name` goes to a target: an outgoing URL (signed like the outgoing
  webhooks: `X-Tidings-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`)
  or a bot account (a `command` frame on its connections). Its reply is posted in the
  conversation as the command's integration user, or shown only to the caller.
- Slack's incoming-webhook body is reduced to text here (`slack_text`): `text`, else
  the text of `blocks` and `attachments`, with Slack's `<url|label>` links and its
  `&lt; &gt; &amp;` escapes turned into the project's markdown.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tidings.core.errors import InvalidRequest
from tidings.core.models import ConversationId, UserId
from tidings.core.webhooks import check_url, signature

COMMAND_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_DESCRIPTION_CHARS = 200
MAX_USAGE_CHARS = 100
MAX_URL_CHARS = 2000
MAX_COMMAND_TEXT_CHARS = 4000
SIGNATURE_PREFIX = "sha256="


class TargetKind(StrEnum):
    URL = "url"
    BOT = "bot"


class ResponseType(StrEnum):
    """Where a command's reply goes: only the caller sees an `ephemeral` one."""

    EPHEMERAL = "ephemeral"
    IN_CHANNEL = "in_channel"


@dataclass(frozen=True, slots=True)
class IncomingWebhook:
    id: str
    conversation_id: ConversationId
    name: str
    user_id: UserId  # the integration user it posts as
    created_by: UserId | None
    created_at: datetime
    disabled: bool = False
    posts: int = 0
    last_post_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SlashCommand:
    id: str
    name: str
    description: str
    usage: str
    target: TargetKind
    url: str | None  # TargetKind.URL
    user_id: UserId  # who answers in the conversation: the bot, or the integration user
    created_by: UserId | None
    created_at: datetime
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Invocation:
    """One use of a command: the reply may come with the target's answer, then up to
    `responses_left` times through its response URL until `expires_at`."""

    id: str
    command_id: str
    conversation_id: ConversationId
    user_id: UserId
    text: str
    created_at: datetime
    expires_at: datetime
    responses_left: int


def check_command_name(raw: str) -> str:
    """A command's name, without its slash: 1-32 of a-z 0-9 _ -, lower case."""
    name = raw.strip().removeprefix("/").lower()
    if not COMMAND_NAME_RE.fullmatch(name):
        raise InvalidRequest(
            "command name must be 1-32 characters: a-z, 0-9, '_' or '-', starting with a "
            "letter or digit",
            field="name",
        )
    return name


def check_command_text(text: str) -> str:
    if len(text) > MAX_COMMAND_TEXT_CHARS:
        raise InvalidRequest(
            f"command text is longer than {MAX_COMMAND_TEXT_CHARS} characters", field="text"
        )
    if "\x00" in text:
        raise InvalidRequest("command text must not contain NUL characters", field="text")
    return text.strip()


def check_target_url(raw: str) -> str:
    """An outgoing URL's form, by the one check of every outgoing URL (core/webhooks.py
    `check_url`: http or https, a host, no credentials); where it points is checked
    when it is called (outbound/http.py)."""
    url = raw.strip()
    check_url(url, MAX_URL_CHARS)
    return url


def signature_ok(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    expected = signature(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, given.encode("utf-8", "surrogatepass"))


def secret_hash(secret: str) -> str:
    """A URL secret carries 256 random bits: a fast hash suffices to keep it. (Any
    string a URL brings hashes: none raises.)"""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


# --- Slack's bodies, reduced to text ---------------------------------------------------
_SLACK_LINK = re.compile(r"<([^<>|\s]+)(?:\|([^<>]*))?>")
_MAX_PARTS = 200  # blocks, attachments, fields: what a body may hold that is read


def _slack_inline(text: str) -> str:
    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith(("@", "#", "!")):  # user, channel or special mentions
            return label or target
        return f"[{label}]({target})" if label else target

    text = _SLACK_LINK.sub(link, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(value: object) -> str:
    """A Slack text object (`{"type": "mrkdwn", "text": ...}`) or a plain string."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = value.get("text")
        return inner if isinstance(inner, str) else ""
    return ""


def _block_lines(block: object) -> list[str]:
    if not isinstance(block, Mapping):
        return []
    lines = [_text_of(block.get("text"))]
    fields = block.get("fields")
    if isinstance(fields, Sequence) and not isinstance(fields, str):
        lines += [_text_of(f) for f in fields[:_MAX_PARTS]]
    elements = block.get("elements")
    if block.get("type") == "context" and isinstance(elements, Sequence):
        lines.append(" ".join(_text_of(e) for e in elements[:_MAX_PARTS] if _text_of(e)))
    return [line for line in lines if line]


def _attachment_lines(attachment: object) -> list[str]:
    if not isinstance(attachment, Mapping):
        return []
    fallback = attachment.get("fallback")
    parts = [attachment.get(k) for k in ("pretext", "title", "text")]
    lines = [p for p in parts if isinstance(p, str) and p]
    fields = attachment.get("fields")
    if isinstance(fields, Sequence) and not isinstance(fields, str):
        for f in fields[:_MAX_PARTS]:
            if isinstance(f, Mapping):
                title, value = f.get("title"), f.get("value")
                pair = [x for x in (title, value) if isinstance(x, str) and x]
                if pair:
                    lines.append(": ".join(pair))
    if not lines and isinstance(fallback, str) and fallback:
        lines = [fallback]
    return lines


def slack_text(data: Mapping[str, object]) -> str:
    """The text of a Slack-compatible body: `text` when given, else the text of its
    `blocks`, else of its `attachments` (each in order, one paragraph per part)."""
    text = data.get("text")
    if isinstance(text, str) and text.strip():
        return _slack_inline(text)
    for key, lines_of in (("blocks", _block_lines), ("attachments", _attachment_lines)):
        parts = data.get(key)
        if isinstance(parts, Sequence) and not isinstance(parts, str):
            lines = [line for part in parts[:_MAX_PARTS] for line in lines_of(part)]
            if lines:
                return _slack_inline("\n\n".join(lines))
    return ""
