"""core/rules.py and core/clock.py: validation, permissions, ids and time. Pure: no IO."""

from __future__ import annotations

import itertools
import os
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tidings.core import clock as clock_mod
from tidings.core import rules
from tidings.core.clock import SystemClock, TimeOrderedIds, new_token, rfc3339
from tidings.core.errors import (
    EditWindowPassed,
    ErrorCode,
    Forbidden,
    InvalidBody,
    InvalidOperation,
    InvalidRequest,
    TidingsError,
    TooLarge,
)
from tidings.core.models import (
    ConversationId,
    ConversationKind,
    Member,
    MemberRole,
    Message,
    MessageId,
    OrgRole,
    User,
    UserId,
)

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORG_ROLES = list(OrgRole)
MEMBER_ROLES: list[MemberRole | None] = [
    None,
    MemberRole.MEMBER,
    MemberRole.MODERATOR,
    MemberRole.OWNER,
]
MODERATES = (MemberRole.OWNER, MemberRole.MODERATOR)


def user(uid: str = "u1", role: OrgRole = OrgRole.MEMBER, *, disabled: bool = False) -> User:
    return User(UserId(uid), uid, uid.title(), role, disabled, T0)


def member(uid: str, role: MemberRole | None, *, left_seq: int | None = None) -> Member | None:
    if role is None:
        return None
    left_pos = None if left_seq is None else 99
    return Member(ConversationId("c1"), UserId(uid), role, 0, T0, 1, left_pos, left_seq)


def message(sender: str = "u1", *, deleted: bool = False, at: datetime = T0) -> Message:
    return Message(
        MessageId("m1"), ConversationId("c1"), 1, "cm1", UserId(sender), "hi", None, (), at,
        deleted=deleted,
    )


def allowed(fn: Callable[..., None], *args: object, **kwargs: object) -> bool:
    try:
        fn(*args, **kwargs)
    except Forbidden:
        return False
    return True


# --- usernames, text, passwords ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice", "alice"),
        ("  Alice  ", "alice"),
        ("BOB.smith_2-x", "bob.smith_2-x"),
        ("7up", "7up"),
        ("a", "a"),
        ("a" * 32, "a" * 32),
    ],
)
def test_normalize_username_accepts_and_lowercases(raw: str, expected: str) -> None:
    assert rules.normalize_username(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "a" * 33, "_alice", ".alice", "-alice", "al ice", "张三", "alice@x", "ünal"]
)
def test_normalize_username_rejects(raw: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        rules.normalize_username(raw)
    assert exc.value.code is ErrorCode.INVALID_REQUEST
    assert exc.value.details == {"field": "username"}


def test_clean_text_normalizes_and_strips() -> None:
    decomposed = "Cafe\u0301"  # e + combining acute accent
    assert rules.clean_text(f"  {decomposed}  ", field="name", max_chars=10) == "Caf\u00e9"


def test_clean_text_counts_characters_not_bytes() -> None:
    assert rules.clean_text("张" * 80, field="name", max_chars=80) == "张" * 80
    with pytest.raises(InvalidRequest, match="longer than 80") as exc:
        rules.clean_text("张" * 81, field="name", max_chars=80)
    assert exc.value.details == {"field": "name"}


@pytest.mark.parametrize("raw", ["a\nb", "a\x00b", "tab\there", "bell\x07"])
def test_clean_text_rejects_control_characters(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="control characters"):
        rules.clean_text(raw, field="topic", max_chars=100)


@pytest.mark.parametrize(
    ("raw", "refused"),
    [
        ("\u202eevil", ["U+202E"]),  # RIGHT-TO-LEFT OVERRIDE
        ("a\u202ab\u202c", ["U+202A", "U+202C"]),  # embedding, pop
        ("a\u2066b\u2069", ["U+2066", "U+2069"]),  # isolate, pop
        ("a\u200bb\u200b", ["U+200B"]),  # zero width space, reported once
        ("x\u2060y", ["U+2060"]),  # word joiner
        ("\u200dx", ["U+200D"]),  # a joiner at the start joins nothing
        ("x\u200d", ["U+200D"]),
        ("x \u200c y", ["U+200C"]),  # nor next to a space
        ("x\u200d\u200dy", ["U+200D"]),
        ("a\u2029b", ["U+2029"]),  # paragraph separator
        ("\U000e0061", ["U+E0061"]),  # a tag alone
        ("\U0001f3f4\U000e0061", ["U+E0061"]),  # a tag sequence without its end
    ],
)
def test_clean_text_refuses_invisible_and_direction_characters(
    raw: str, refused: list[str]
) -> None:
    assert rules.refused_characters(raw) == refused
    with pytest.raises(InvalidRequest, match="direction-changing") as exc:
        rules.clean_text(raw, field="display_name", max_chars=100)
    assert exc.value.details == {"field": "display_name", "characters": refused}


@pytest.mark.parametrize(
    "raw",
    [
        "王小明",
        "שרה כהן",
        "👩\u200d💻",  # ZWJ sequences
        "👨\u200d👩\u200d👧\u200d👦",
        "می\u200cخواهم",  # ZWNJ in Persian
        "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England
        "1\ufe0f\u20e3 👍🏽",  # keycap, skin tone
    ],
)
def test_clean_text_keeps_scripts_and_emoji(raw: str) -> None:
    assert rules.clean_text(raw, field="display_name", max_chars=100) == raw


@pytest.mark.parametrize(("raw", "expected"), [("ｋａｔｅ", "kate"), (" \u212aate ", "kate")])
def test_usernames_are_nfkc_normalized(raw: str, expected: str) -> None:
    assert rules.normalize_username(raw) == expected == rules.username_key(raw)


def test_clean_text_empty_only_when_allowed() -> None:
    with pytest.raises(InvalidRequest, match="must not be empty"):
        rules.clean_text("   ", field="name", max_chars=10)
    assert rules.clean_text("   ", field="topic", max_chars=10, allow_empty=True) == ""


# --- message bodies: limits in bytes ------------------------------------------------


@pytest.mark.parametrize("body", ["", " ", "\n\t  \n"])
def test_check_body_rejects_blank(body: str) -> None:
    with pytest.raises(InvalidBody) as exc:
        rules.check_body(body, 100)
    assert exc.value.code is ErrorCode.INVALID_BODY


def test_check_body_returns_body_unchanged() -> None:
    assert rules.check_body("  hello\n", 100) == "  hello\n"


def test_check_body_limit_is_inclusive_in_bytes() -> None:
    assert rules.check_body("x" * 16384, 16384) == "x" * 16384
    with pytest.raises(TooLarge) as exc:
        rules.check_body("x" * 16385, 16384)
    assert exc.value.code is ErrorCode.TOO_LARGE
    assert exc.value.details == {"limit": 16384, "size": 16385}


def test_check_body_counts_utf8_bytes_of_chinese() -> None:
    # Each of these characters is 3 bytes in UTF-8: 5461 * 3 = 16383, 5462 * 3 = 16386.
    assert rules.check_body("中" * 5461, 16384)
    with pytest.raises(TooLarge) as exc:
        rules.check_body("中" * 5462, 16384)  # far fewer characters than the limit
    assert exc.value.details["size"] == 16386


def test_check_body_counts_emoji_as_four_bytes() -> None:
    assert rules.check_body("😀" * 4, 16)
    with pytest.raises(TooLarge):
        rules.check_body("😀" * 4 + "x", 16)


def test_check_body_rejects_lone_surrogates() -> None:
    with pytest.raises(InvalidBody, match="not valid Unicode"):
        rules.check_body("ok \ud800 text", 100)


def test_check_body_rejects_nul_but_keeps_other_whitespace() -> None:
    with pytest.raises(InvalidBody, match="NUL"):
        rules.check_body("a\x00b", 100)
    assert rules.check_body("line 1\n\tline 2\r\n", 100) == "line 1\n\tline 2\r\n"


def test_check_body_size_check_comes_first_for_oversized_surrogates() -> None:
    with pytest.raises(TooLarge):
        rules.check_body("\ud800" * 10, 10)


# --- client_msg_id ------------------------------------------------------------------


@pytest.mark.parametrize("cmid", ["a", "x" * 64, "0b6e5c3c-4c52-4b8a-9bd5-7b7c2d4cb0a1", "消息-1"])
def test_client_msg_id_accepted(cmid: str) -> None:
    assert rules.check_client_msg_id(cmid) == cmid


@pytest.mark.parametrize("cmid", ["", "x" * 65, "a\nb", "tab\t", "\x00"])
def test_client_msg_id_rejected(cmid: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        rules.check_client_msg_id(cmid)
    assert exc.value.details == {"field": "client_msg_id"}


# --- mentions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("hi @alice", {"alice"}),
        ("@Alice and @BOB", {"alice", "bob"}),
        ("@alice @alice @alice", {"alice"}),
        ("thanks @bob.", {"bob"}),
        ("ask @bob.smith please", {"bob.smith"}),
        ("(@carol) and [@dave]", {"carol", "dave"}),
        ("@eve, @frank: @grace!", {"eve", "frank", "grace"}),
        ("请@bob看一下", {"bob"}),  # Chinese text has no spaces around a mention
        ("你好 @张三", set()),  # not a username
        ("mail alice@example.com", set()),  # an e-mail address is no mention
        ("@@bob", set()),
        ("no mentions here", set()),
        ("@", set()),
        ("@_x", set()),
    ],
)
def test_mentioned_usernames(body: str, expected: set[str]) -> None:
    assert rules.mentioned_usernames(body) == expected


def test_search_key_folds_case_and_width() -> None:
    assert rules.search_key("li", "ＬＩ Ｌｅｉ 李雷") == "li li lei 李雷"
    assert rules.search_key("alice", "ALICE Straße") == "alice alice strasse"


# --- permissions: create ------------------------------------------------------------


@pytest.mark.parametrize("role", ORG_ROLES)
@pytest.mark.parametrize("kind", list(ConversationKind))
def test_check_can_create(kind: ConversationKind, role: OrgRole) -> None:
    expected = kind is ConversationKind.DIRECT or role is not OrgRole.GUEST
    assert allowed(rules.check_can_create, kind, user("a", role)) is expected


# --- permissions: add ----------------------------------------------------------------


def _expected_add(
    kind: ConversationKind,
    actor_role: OrgRole,
    mrole: MemberRole | None,
    target: str,
    private: bool = False,
) -> bool:
    """The rule as the protocol states it, written independently of the code."""
    is_admin = actor_role in (OrgRole.OWNER, OrgRole.ADMIN)
    if kind is ConversationKind.GROUP:  # invite-only: members invite
        return mrole is not None
    # channel
    if private and not (is_admin or mrole in MODERATES):
        return False  # invite-only: owners, moderators and admins add; nobody joins alone
    if target == "self":  # joining: anyone but a guest
        return actor_role is not OrgRole.GUEST
    if actor_role is OrgRole.GUEST:
        return False
    if mrole is None and not is_admin:
        return False
    if target == "guest":  # only the channel owner, a moderator or an admin adds a guest
        return is_admin or mrole in MODERATES
    return True


@pytest.mark.parametrize("private", [False, True])
@pytest.mark.parametrize("target", ["self", "member", "guest"])
@pytest.mark.parametrize("mrole", MEMBER_ROLES)
@pytest.mark.parametrize("actor_role", ORG_ROLES)
@pytest.mark.parametrize("kind", [ConversationKind.GROUP, ConversationKind.CHANNEL])
def test_check_can_add_every_combination(
    kind: ConversationKind,
    actor_role: OrgRole,
    mrole: MemberRole | None,
    target: str,
    private: bool,
) -> None:
    actor = user("a", actor_role)
    targets = {
        "self": actor,
        "member": user("t", OrgRole.MEMBER),
        "guest": user("g", OrgRole.GUEST),
    }
    got = allowed(
        rules.check_can_add, kind, actor, member("a", mrole), [targets[target]], private=private
    )
    assert got is _expected_add(kind, actor_role, mrole, target, private)


@pytest.mark.parametrize("mrole", MEMBER_ROLES)
@pytest.mark.parametrize("actor_role", ORG_ROLES)
def test_check_can_add_never_to_direct(actor_role: OrgRole, mrole: MemberRole | None) -> None:
    with pytest.raises(InvalidOperation):
        rules.check_can_add(
            ConversationKind.DIRECT, user("a", actor_role), member("a", mrole), [user("t")]
        )


@pytest.mark.parametrize("kind", [ConversationKind.GROUP, ConversationKind.CHANNEL])
def test_check_can_add_refuses_disabled_targets(kind: ConversationKind) -> None:
    owner = user("a", OrgRole.OWNER)
    with pytest.raises(InvalidOperation) as exc:
        rules.check_can_add(
            kind, owner, member("a", MemberRole.OWNER), [user("t"), user("d", disabled=True)]
        )
    assert exc.value.details == {"user_id": "d"}


def test_check_can_add_checks_every_target() -> None:
    actor = user("a", OrgRole.MEMBER)
    with pytest.raises(Forbidden):
        rules.check_can_add(
            ConversationKind.CHANNEL,
            actor,
            member("a", MemberRole.MEMBER),
            [user("t"), user("g", OrgRole.GUEST)],
        )


# --- permissions: remove, update, edit, recall ----------------------------------------


@pytest.mark.parametrize("target_role", list(MemberRole))
@pytest.mark.parametrize("mrole", MEMBER_ROLES)
@pytest.mark.parametrize("actor_role", ORG_ROLES)
def test_check_can_remove(
    actor_role: OrgRole, mrole: MemberRole | None, target_role: MemberRole
) -> None:
    actor = user("a", actor_role)
    # Leaving is always allowed.
    assert allowed(rules.check_can_remove, actor, member("a", mrole), "a", target_role)
    # owners and admins remove anyone; moderators plain members only
    expected = (
        actor_role.is_admin
        or mrole is MemberRole.OWNER
        or (mrole is MemberRole.MODERATOR and target_role is MemberRole.MEMBER)
    )
    got = allowed(rules.check_can_remove, actor, member("a", mrole), "other", target_role)
    assert got is expected


@pytest.mark.parametrize("mrole", MEMBER_ROLES)
@pytest.mark.parametrize("actor_role", ORG_ROLES)
def test_check_can_update_conversation(actor_role: OrgRole, mrole: MemberRole | None) -> None:
    expected = actor_role in (OrgRole.OWNER, OrgRole.ADMIN) or mrole in MODERATES
    got = allowed(rules.check_can_update_conversation, user("a", actor_role), member("a", mrole))
    assert got is expected


@pytest.mark.parametrize("mrole", MEMBER_ROLES)
@pytest.mark.parametrize("actor_role", ORG_ROLES)
def test_check_can_change_settings(actor_role: OrgRole, mrole: MemberRole | None) -> None:
    expected = actor_role.is_admin or mrole is MemberRole.OWNER  # moderators do not
    got = allowed(rules.check_can_change_settings, user("a", actor_role), member("a", mrole))
    assert got is expected


@pytest.mark.parametrize("owners", [1, 2])
@pytest.mark.parametrize("new_role", list(MemberRole))
@pytest.mark.parametrize("target_role", list(MemberRole))
@pytest.mark.parametrize("mrole", MEMBER_ROLES)
@pytest.mark.parametrize("actor_role", [OrgRole.ADMIN, OrgRole.MEMBER, None])
def test_check_can_set_role(
    actor_role: OrgRole | None,
    mrole: MemberRole | None,
    target_role: MemberRole,
    new_role: MemberRole,
    owners: int,
) -> None:
    actor = None if actor_role is None else user("a", actor_role)  # None: the operator
    target = member("t", target_role)
    assert target is not None
    may = actor_role is None or actor_role.is_admin or mrole is MemberRole.OWNER
    last_owner = target_role is MemberRole.OWNER and new_role is not MemberRole.OWNER
    last_owner = last_owner and owners == 1
    args = (ConversationKind.CHANNEL, actor, member("a", mrole), target, new_role, owners)
    if not may:
        with pytest.raises(Forbidden):
            rules.check_can_set_role(*args)
    elif last_owner:
        with pytest.raises(InvalidOperation):
            rules.check_can_set_role(*args)
    else:
        rules.check_can_set_role(*args)
    with pytest.raises(InvalidOperation):  # a direct conversation has no roles
        rules.check_can_set_role(ConversationKind.DIRECT, *args[1:])


@pytest.mark.parametrize("thread_reply", [False, True])
@pytest.mark.parametrize("announcement", [False, True])
@pytest.mark.parametrize("mrole", list(MemberRole))
@pytest.mark.parametrize("actor_role", ORG_ROLES)
def test_check_can_post(
    actor_role: OrgRole, mrole: MemberRole, announcement: bool, thread_reply: bool
) -> None:
    """The one post rule: in an announcement conversation only owners, moderators and
    org admins post; a thread reply is open to every member."""
    expected = not announcement or thread_reply or mrole in MODERATES or actor_role.is_admin
    got = allowed(
        rules.check_can_post, announcement, user("a", actor_role), mrole, thread_reply=thread_reply
    )
    assert got is expected


def test_seq_ranges_for_members_added_later() -> None:
    joined = Member(ConversationId("c"), UserId("a"), MemberRole.MEMBER, 5, T0, 9, first_seq=6)
    assert [s for s in range(1, 10) if rules.seq_visible(joined, s)] == [6, 7, 8, 9]
    left = Member(ConversationId("c"), UserId("a"), MemberRole.MEMBER, 5, T0, 9, 12, 8, first_seq=6)
    assert [s for s in range(1, 10) if rules.seq_visible(left, s)] == [6, 7, 8]
    everything = Member(ConversationId("c"), UserId("a"), MemberRole.MEMBER, 0, T0, 1)
    assert rules.seq_visible(everything, 1)


WINDOW = timedelta(seconds=60)


@pytest.mark.parametrize("actor_role", ORG_ROLES)
def test_check_can_edit_only_the_sender(actor_role: OrgRole) -> None:
    rules.check_can_edit(message("a"), user("a", actor_role), T0, WINDOW)
    with pytest.raises(Forbidden):  # not even an owner edits someone else's words
        rules.check_can_edit(message("b"), user("a", actor_role), T0, WINDOW)


def test_check_can_edit_window_boundary() -> None:
    sender = user("a")
    rules.check_can_edit(message("a"), sender, T0 + WINDOW, WINDOW)
    with pytest.raises(EditWindowPassed) as exc:
        rules.check_can_edit(message("a"), sender, T0 + WINDOW + timedelta(microseconds=1), WINDOW)
    assert exc.value.code is ErrorCode.EDIT_WINDOW_PASSED
    assert exc.value.details == {"window_seconds": 60}


def test_check_can_edit_refuses_recalled() -> None:
    with pytest.raises(InvalidOperation):
        rules.check_can_edit(message("a", deleted=True), user("a"), T0, WINDOW)


@pytest.mark.parametrize("is_sender", [True, False])
@pytest.mark.parametrize("mrole", list(MemberRole))
@pytest.mark.parametrize("actor_role", ORG_ROLES)
def test_check_can_recall(actor_role: OrgRole, mrole: MemberRole, is_sender: bool) -> None:
    msg = message("a" if is_sender else "b")
    actor_member = member("a", mrole)
    assert actor_member is not None
    expected = is_sender or actor_role.is_admin or mrole in MODERATES
    assert allowed(rules.check_can_recall, msg, user("a", actor_role), actor_member) is expected


# --- permissions: managing users ----------------------------------------------------


@pytest.mark.parametrize("new_role", [None, *ORG_ROLES])
@pytest.mark.parametrize("target_role", ORG_ROLES)
@pytest.mark.parametrize("actor_role", ORG_ROLES)
def test_check_can_manage_user(
    actor_role: OrgRole, target_role: OrgRole, new_role: OrgRole | None
) -> None:
    privileged = {OrgRole.OWNER, OrgRole.ADMIN}
    if actor_role is OrgRole.OWNER:
        expected = True
    elif actor_role is OrgRole.ADMIN:
        expected = target_role not in privileged and new_role not in privileged
    else:
        expected = False
    got = allowed(
        rules.check_can_manage_user, user("a", actor_role), user("t", target_role), new_role
    )
    assert got is expected


def test_visible_seq_limit() -> None:
    active = member("a", MemberRole.MEMBER)
    left = member("a", MemberRole.MEMBER, left_seq=7)
    assert active is not None and left is not None
    assert rules.visible_seq_limit(active) is None
    assert rules.visible_seq_limit(left) == 7
    assert active.active and not left.active


# --- errors -------------------------------------------------------------------------


def test_every_error_code_is_snake_case_and_errors_carry_details() -> None:
    for code in ErrorCode:
        assert code.value == code.value.lower() and " " not in code.value
    err = TooLarge("big", limit=1)
    assert isinstance(err, TidingsError)
    assert (err.code, err.message, err.details) == (ErrorCode.TOO_LARGE, "big", {"limit": 1})


# --- clock: ids and time ------------------------------------------------------------

ALPHABET = set("0123456789abcdefghjkmnpqrstvwxyz")


def test_ids_have_the_ulid_layout() -> None:
    ids = TimeOrderedIds()
    for _ in range(100):
        new = ids.new_id()
        assert len(new) == 26 and set(new) <= ALPHABET


def test_ids_are_unique() -> None:
    ids = TimeOrderedIds()
    made = [ids.new_id() for _ in range(20_000)]
    assert len(set(made)) == len(made)


def test_ids_sort_by_creation_time(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = itertools.count(1_700_000_000_000)  # one millisecond apart
    monkeypatch.setattr(clock_mod.time, "time_ns", lambda: next(ticks) * 1_000_000)
    ids = TimeOrderedIds()
    made = [ids.new_id() for _ in range(500)]
    assert sorted(made) == made


def test_a_forked_child_makes_other_ids_than_its_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Random bytes are read from the OS in chunks: a forked child (a worker process)
    must not hand out the rest of its parent's chunk."""
    monkeypatch.setattr(clock_mod.time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    ids = TimeOrderedIds()
    ids.new_id()  # the parent holds a chunk with 408 ids' worth left
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.write(write_end, "".join(ids.new_id() for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = "".join(ids.new_id() for _ in range(5))
    assert len(child) == len(parent) == 5 * 26
    assert {child[i : i + 26] for i in range(0, 130, 26)}.isdisjoint(
        {parent[i : i + 26] for i in range(0, 130, 26)}
    )


def test_id_time_prefix_encodes_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock_mod.time, "time_ns", lambda: 0)
    assert TimeOrderedIds().new_id().startswith("0000000000")
    monkeypatch.setattr(clock_mod.time, "time_ns", lambda: 32 * 1_000_000)  # 32 ms
    assert TimeOrderedIds().new_id()[:10] == "0000000010"


def test_new_token_is_long_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert len(token) >= 43
        assert set(token) <= set(string.ascii_letters + string.digits + "-_")


def test_rfc3339_is_utc_with_z() -> None:
    moment = datetime(2026, 11, 28, 23, 59, 1, 123456, tzinfo=UTC)
    assert rfc3339(moment) == "2026-11-28T23:59:01.123456Z"
    beijing = timezone(timedelta(hours=8))
    assert rfc3339(datetime(2026, 11, 29, 7, 59, 1, tzinfo=beijing)) == "2026-11-28T23:59:01Z"
    parsed = datetime.fromisoformat(rfc3339(moment).replace("Z", "+00:00"))
    assert parsed == moment


def test_system_clock_is_timezone_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
