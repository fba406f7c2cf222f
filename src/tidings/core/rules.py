"""Validation and permission rules. Pure functions: they raise TidingsError subclasses."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tidings.core.errors import (
    CapReached,
    ConversationArchived,
    EditWindowPassed,
    Forbidden,
    InvalidBody,
    InvalidOperation,
    InvalidRequest,
    MentionNotAllowed,
    TooLarge,
)
from tidings.core.models import (
    Conversation,
    ConversationKind,
    Member,
    MemberRole,
    Message,
    OrgRole,
    User,
)
from tidings.core.notify import EveryoneMention

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
# ASCII \w: "a@b.com" is no mention, but "请@bob看" is (CJK text has no spaces)
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9][A-Za-z0-9._-]{0,31})", re.ASCII)
MAX_NAME_CHARS = 80
MAX_TOPIC_CHARS = 250
MAX_CLIENT_MSG_ID = 64
MAX_PASSWORD_CHARS = 1024  # the rest of the policy: services/password_policy.py


def username_key(raw: str) -> str:
    """What a typed username is compared as: NFKC (full-width ｋａｔｅ is kate), trimmed,
    lower case. Login looks names up by it."""
    return unicodedata.normalize("NFKC", raw).strip().lower()


def normalize_username(raw: str) -> str:
    """A new username: after `username_key`, 1-32 of a-z 0-9 . _ - (ASCII only, starting
    with a letter or digit), so no script mixing, invisible or direction-changing
    character can make one name look like another."""
    name = username_key(raw)
    if not USERNAME_RE.fullmatch(name):
        raise InvalidRequest(
            "username must be 1-32 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="username",
        )
    return name


# Categories refused in names: controls (Cc), format characters (Cf: bidi embeddings,
# overrides, isolates and marks, zero-width space, word joiner, BOM, soft hyphen, ...),
# line and paragraph separators (Zl, Zp) and lone surrogates (Cs).
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Zero-width joiner and non-joiner, kept between two visible characters: emoji sequences
# (👩‍💻, 👨‍👩‍👧) and the scripts that need them (Persian, Indic).
JOINERS = frozenset({"\u200c", "\u200d"})
# An emoji tag sequence (the flags of England, Scotland, Wales): 🏴, tags, cancel tag.
EMOJI_TAG_SEQUENCE = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")


def refused_characters(text: str) -> list[str]:
    """The characters of `text` that a name may not contain (see REFUSED_CATEGORIES and
    JOINERS), as "U+202E", each once, in order."""
    text = EMOJI_TAG_SEQUENCE.sub("\U0001f3f4", text)
    refused: dict[str, None] = {}
    for i, ch in enumerate(text):
        if unicodedata.category(ch) not in REFUSED_CATEGORIES:
            continue
        if (
            ch in JOINERS
            and 0 < i < len(text) - 1
            and _visible(text[i - 1])
            and _visible(text[i + 1])
        ):
            continue
        refused[f"U+{ord(ch):04X}"] = None
    return list(refused)


def _visible(ch: str) -> bool:
    return not ch.isspace() and unicodedata.category(ch) not in REFUSED_CATEGORIES


def clean_text(raw: str, *, field: str, max_chars: int, allow_empty: bool = False) -> str:
    """A name, title or topic: NFC, trimmed, within `max_chars`, and without characters
    that are invisible or change the direction of the text around them (refused, never
    stripped: an API user learns which, in `details.characters`)."""
    text = unicodedata.normalize("NFC", raw).strip()
    refused = refused_characters(text)
    if refused:
        raise InvalidRequest(
            f"{field} must not contain control characters, nor invisible or direction-changing"
            f" ones ({', '.join(refused[:5])})",
            field=field,
            characters=refused,
        )
    if not text and not allow_empty:
        raise InvalidRequest(f"{field} must not be empty", field=field)
    if len(text) > max_chars:
        raise InvalidRequest(f"{field} is longer than {max_chars} characters", field=field)
    return text


def check_attachment_ids(attachments: Iterable[str], most: int) -> tuple[str, ...]:
    """The file ids a message names: at most `most`, distinct, each a short string (whose
    files the caller's service then looks up)."""
    files = tuple(attachments)
    if len(files) > most:
        raise CapReached(f"at most {most} files on one message", field="attachments", limit=most)
    if len(set(files)) != len(files) or any(
        not isinstance(f, str) or not 0 < len(f) <= 64 for f in files
    ):
        raise InvalidRequest(
            "attachments are distinct file ids (from POST /files)", field="attachments"
        )
    return files


def check_body(body: str, max_bytes: int) -> str:
    """A message body: not blank, at most `max_bytes` of UTF-8."""
    if not body.strip():
        raise InvalidBody("message body must not be empty")
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise TooLarge(
            f"message body is {size} bytes, more than the limit of {max_bytes}",
            limit=max_bytes,
            size=size,
        )
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidBody("message body is not valid Unicode text") from exc
    if "\x00" in body:  # PostgreSQL text cannot hold it
        raise InvalidBody("message body must not contain NUL characters")
    return body


def check_client_msg_id(client_msg_id: str) -> str:
    if not 1 <= len(client_msg_id) <= MAX_CLIENT_MSG_ID or not client_msg_id.isprintable():
        raise InvalidRequest(
            f"client_msg_id must be 1 to {MAX_CLIENT_MSG_ID} printable characters",
            field="client_msg_id",
        )
    return client_msg_id


def mentioned_usernames(body: str) -> set[str]:
    """The `@username`s of a message (never `@all`, `@channel`, `@here`: everyone)."""
    if "@" not in body:
        return set()
    found = {m.group(1).lower().rstrip(".") for m in MENTION_RE.finditer(body)}
    return found - EVERYONE_WORDS


EVERYONE_WORDS = frozenset(e.value for e in EveryoneMention)


def everyone_mention(body: str) -> EveryoneMention | None:
    """Whether a message mentions everyone: `@all` or `@channel` (every member; `all`
    when it has both), else `@here` (members online), else None. Parsed like
    `@username` (case-insensitive, not inside an address like a@all.com)."""
    if "@" not in body:
        return None
    words = {m.group(1).lower().rstrip(".") for m in MENTION_RE.finditer(body)} & EVERYONE_WORDS
    for mention in (EveryoneMention.ALL, EveryoneMention.CHANNEL, EveryoneMention.HERE):
        if mention.value in words:
            return mention
    return None


@dataclass(frozen=True, slots=True)
class MentionAllPolicy:
    """Who may mention everyone (settings mention_all_*): members of at least
    `min_role` in conversations of up to `large_members` members, of at least
    `large_min_role` in larger ones. Org admins always may."""

    min_role: MemberRole
    large_min_role: MemberRole
    large_members: int

    def required_role(self, member_count: int) -> MemberRole:
        return self.min_role if member_count <= self.large_members else self.large_min_role


_RANK = {MemberRole.MEMBER: 0, MemberRole.MODERATOR: 1, MemberRole.OWNER: 2}


def check_can_mention_everyone(
    policy: MentionAllPolicy,
    mention: EveryoneMention,
    actor: User,
    role: MemberRole,
    member_count: int,
    kind: ConversationKind = ConversationKind.GROUP,
) -> None:
    """`actor` (of conversation role `role`) may send `@all`/`@channel`/`@here` in a
    conversation of `kind` with `member_count` members (MentionAllPolicy), else
    forbidden with the role it takes. A direct conversation has no roles: always."""
    need = policy.required_role(member_count)
    if kind is ConversationKind.DIRECT or actor.role.is_admin or _RANK[role] >= _RANK[need]:
        return
    who = "owners" if need is MemberRole.OWNER else "owners and moderators"
    raise MentionNotAllowed(
        f"only {who} may use @{mention.value} in this conversation ({member_count} members)",
        mention=mention.value,
        min_role=need.value,
        member_count=member_count,
    )


def search_key(username: str, display_name: str) -> str:
    """What directory search matches against: case-folded, any script."""
    return f"{username} {unicodedata.normalize('NFKC', display_name)}".casefold()


# --- permissions -----------------------------------------------------------------


def sees_everyones_presence(viewer: User) -> bool:
    """Members, admins and owners see anyone's presence, as they see the directory. A
    guest sees only its contacts' (the people it shares a direct or group conversation
    with: those whose presence it is sent live), and its own."""
    return viewer.role is not OrgRole.GUEST


def check_can_create(kind: ConversationKind, actor: User) -> None:
    if kind is not ConversationKind.DIRECT and actor.role is OrgRole.GUEST:
        raise Forbidden("guests cannot create groups or channels")


def _manages(actor: User, actor_member: Member | None) -> bool:
    """An org admin, or an owner of the conversation."""
    return actor.role.is_admin or (
        actor_member is not None and actor_member.role is MemberRole.OWNER
    )


def _moderates(actor: User, actor_member: Member | None) -> bool:
    """An org admin, or an owner or a moderator of the conversation."""
    return actor.role.is_admin or (actor_member is not None and actor_member.role.moderates)


def check_can_add(
    kind: ConversationKind,
    actor: User,
    actor_member: Member | None,
    targets: Iterable[User],
    removed: Collection[str] = (),
    *,
    private: bool = False,
) -> None:
    """Who may add whom. The actor is active in the conversation unless joining a channel.
    `removed`: those of the targets someone else removed from it (leaving is no removal):
    only a conversation owner or moderator or an org admin adds them back, a channel's
    included (they cannot re-join it by themselves). A `private` channel is invite-only:
    nobody joins it by themselves, and only its owners and moderators (and org admins)
    add people."""
    if kind is ConversationKind.DIRECT:
        raise InvalidOperation("a direct conversation has exactly two members")
    is_manager = _moderates(actor, actor_member)
    for target in targets:
        if target.disabled:
            raise InvalidOperation(f"user {target.username} is disabled", user_id=target.id)
        if target.id in removed and not is_manager:
            raise Forbidden(
                "only a conversation owner, a moderator or an admin can add back someone "
                "who was removed"
            )
        if kind is ConversationKind.CHANNEL:
            if private and not is_manager:
                raise Forbidden(
                    "this channel is private: only its owners, moderators and admins add people"
                )
            if target.id == actor.id:
                if actor.role is OrgRole.GUEST:
                    raise Forbidden("guests cannot join channels by themselves")
                continue
            if actor_member is None and not actor.role.is_admin:
                raise Forbidden("only members of a channel can add people to it")
            if target.role is OrgRole.GUEST and not is_manager:
                raise Forbidden("only the channel owner, a moderator or an admin can add a guest")
            if actor.role is OrgRole.GUEST:
                raise Forbidden("guests cannot add people to a channel")
        elif actor_member is None:
            raise Forbidden("only members of a group can invite people to it")


def check_can_remove(
    actor: User,
    actor_member: Member | None,
    target_id: str,
    target_role: MemberRole = MemberRole.MEMBER,
) -> None:
    """Leaving is always allowed. Owners and org admins remove anyone; moderators
    remove members (not owners nor other moderators)."""
    if target_id == actor.id:
        return  # leaving is always allowed
    if _manages(actor, actor_member):
        return
    if actor_member is not None and actor_member.role is MemberRole.MODERATOR:
        if target_role is MemberRole.MEMBER:
            return
        raise Forbidden("a moderator can remove members, not owners nor other moderators")
    raise Forbidden("only a conversation owner, a moderator or an admin can remove other members")


def check_keeps_an_owner(target_role: MemberRole, owners: int, members: int) -> None:
    """Leaving or being removed: the last owner of a conversation that has other
    members stays until another owner is named (`owners`, `members`: how many active
    owners and members it has now, the leaving one included). The last member may
    always leave."""
    if target_role is MemberRole.OWNER and owners <= 1 and members > 1:
        raise InvalidOperation(
            "the last owner cannot leave while others remain: name another owner first"
        )


def check_can_set_role(
    kind: ConversationKind,
    actor: User | None,
    actor_member: Member | None,
    target: Member,
    new_role: MemberRole,
    owners: int,
) -> None:
    """Owners of the conversation and org admins give and take roles (owner, moderator,
    member); nobody else (`actor` None: the operator at the command line). A direct
    conversation has no roles. The last owner cannot step down or be demoted (`owners`:
    how many owners it has now): another owner is named first."""
    if kind is ConversationKind.DIRECT:
        raise InvalidOperation("a direct conversation has no roles")
    if actor is not None and not _manages(actor, actor_member):
        raise Forbidden("only a conversation owner or an admin can change roles")
    if target.role is MemberRole.OWNER and new_role is not MemberRole.OWNER and owners <= 1:
        raise InvalidOperation("a conversation keeps at least one owner: name another first")


def check_can_pin(actor: User, actor_member: Member | None) -> None:
    """Pinning and unpinning: owners, moderators and org admins."""
    if _moderates(actor, actor_member):
        return
    raise Forbidden("only a conversation owner, a moderator or an admin can pin messages")


def check_can_change_settings(actor: User, actor_member: Member | None) -> None:
    """Private, announcement and history settings: owners and org admins."""
    if _manages(actor, actor_member):
        return
    raise Forbidden("only a conversation owner or an admin can change its settings")


def check_can_post(
    announcement: bool, actor: User, role: MemberRole, *, thread_reply: bool = False
) -> None:
    """The one rule of who may post a message in a conversation they are an active
    member of with `role`: every path that adds a message (a send by REST or frame, a
    bot's, a slash command's reply, an incoming webhook's post) goes through it. In an
    `announcement` conversation only owners, moderators and org admins post; a reply in
    a thread (`thread_reply`: a message with `thread_root_seq`) is open to every member.
    Reactions are not posts: everyone may react (check_can_react)."""
    if announcement and not thread_reply and not role.moderates and not actor.role.is_admin:
        raise Forbidden("this is an announcement channel: only its owners and moderators post")


def check_not_archived(conv: Conversation) -> None:
    """An archived conversation is read-only: no sends, edits, recalls, reactions,
    membership or name changes until it is unarchived."""
    if conv.archived_at is not None:
        raise ConversationArchived(
            "this conversation is archived (read-only): unarchive it first",
            conversation_id=conv.id,
        )


def check_can_archive(actor: User, actor_member: Member | None) -> None:
    """Owners of the conversation and organization admins archive and unarchive it."""
    if _manages(actor, actor_member):
        return
    raise Forbidden("only a conversation owner or an admin can archive or unarchive it")


def check_can_update_conversation(actor: User, actor_member: Member | None) -> None:
    """Name and topic: owners, moderators and org admins."""
    if _moderates(actor, actor_member):
        return
    raise Forbidden("only a conversation owner, a moderator or an admin can rename it")


def check_can_edit(message: Message, actor: User, now: datetime, window: timedelta) -> None:
    if message.sender_id != actor.id:
        raise Forbidden("only the sender can edit a message")
    if message.deleted:
        raise InvalidOperation("a recalled message cannot be edited")
    if now - message.created_at > window:
        raise EditWindowPassed(
            "the edit window for this message has passed",
            window_seconds=int(window.total_seconds()),
        )


def check_can_react(
    message: Message, user_id: str, emoji: str, *, max_emoji: int, max_per_user: int
) -> None:
    """A reaction added to `message` (as it is before): at most `max_emoji` distinct
    emoji on one message, at most `max_per_user` of one user's on it. Taking one back,
    or adding one that is there already, is always allowed."""
    if user_id in message.reactions.get(emoji, ()):
        return
    if emoji not in message.reactions and len(message.reactions) >= max_emoji:
        raise CapReached(
            f"this message has the most distinct reactions allowed ({max_emoji})",
            field="emoji",
            limit=max_emoji,
        )
    mine = sum(user_id in users for users in message.reactions.values())
    if mine >= max_per_user:
        raise CapReached(
            f"you have the most reactions allowed on one message ({max_per_user})",
            field="emoji",
            limit=max_per_user,
        )


def check_can_recall(message: Message, actor: User, actor_member: Member) -> None:
    if message.sender_id == actor.id or _moderates(actor, actor_member):
        return
    raise Forbidden(
        "only the sender, a conversation owner, a moderator or an admin can recall a message"
    )


def check_admin(actor: User | None, what: str) -> None:
    """Only an admin may do `what`; `actor` None is the operator at the command line."""
    if actor is not None and not actor.role.is_admin:
        raise Forbidden(f"only an admin can {what}")


def check_can_manage_user(actor: User, target: User, new_role: OrgRole | None) -> None:
    """Admins manage members and guests; only an owner manages admins and owners."""
    if not actor.role.is_admin:
        raise Forbidden("only an admin can manage users")
    privileged = {OrgRole.OWNER, OrgRole.ADMIN}
    if actor.role is not OrgRole.OWNER and (
        target.role in privileged or (new_role is not None and new_role in privileged)
    ):
        raise Forbidden("only an owner can manage owners and admins")


def visible_seq_limit(member: Member) -> int | None:
    """The highest seq a (possibly removed) member may read; None when unlimited."""
    return member.left_seq


def seq_visible(member: Member, seq: int) -> bool:
    """Whether `member` may see message `seq`: within their range (first_seq ..
    left_seq)."""
    return seq >= member.first_seq and (member.left_seq is None or seq <= member.left_seq)


def first_visible_seq(conv: Conversation, last_seq: int) -> int:
    """The first seq a member added now may read: 1 if the conversation shares its
    history with new members, else the next message's."""
    return 1 if conv.shared_history else last_seq + 1
