"""Conversations: direct, group, channel; membership."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tidings.core.audit import AuditAction
from tidings.core.errors import Forbidden, InvalidOperation, InvalidRequest, NotFound
from tidings.core.events import (
    ConversationCreated,
    ConversationUpdated,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
)
from tidings.core.models import (
    Conversation,
    ConversationId,
    ConversationKind,
    Member,
    MemberRole,
    MemberView,
    OrgRole,
    User,
    UserId,
)
from tidings.core.notify import counts_everyone
from tidings.core.rules import (
    MAX_NAME_CHARS,
    MAX_TOPIC_CHARS,
    check_admin,
    check_can_add,
    check_can_archive,
    check_can_change_settings,
    check_can_create,
    check_can_remove,
    check_can_set_role,
    check_can_update_conversation,
    check_keeps_an_owner,
    check_not_archived,
    clean_text,
    first_visible_seq,
)
from tidings.services.audit import record as audit
from tidings.services.context import Deps
from tidings.services.events import EventBatch
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import Tx

MAX_MEMBERS_PER_REQUEST = 500  # users named in one create or add-members request
MAX_ADMIN_PAGE = 200  # conversations in one page of the admin's list


class ConversationService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.limiter = RateLimiter(deps)

    async def create(
        self,
        actor: User,
        kind: ConversationKind,
        member_ids: Sequence[str],
        name: str | None = None,
        topic: str | None = None,
        *,
        private: bool | None = None,
        announcement: bool | None = None,
        shared_history: bool | None = None,
    ) -> tuple[Conversation, bool]:
        """Create a conversation; returns it and whether it is new. A direct conversation
        between the same two people is created once: asking again returns it.

        Settings (None: the kind's default): `private` (channels only; groups and direct
        conversations are always private), `announcement` (channels and groups: only
        owners and moderators post), `shared_history` (whether members added later read
        earlier messages; default: yes in public channels, no in groups and private
        channels)."""
        check_can_create(kind, actor)
        flags = _settings_for_new(kind, private, announcement, shared_history)
        others = list(dict.fromkeys(u for u in member_ids if u != actor.id))
        if len(others) > MAX_MEMBERS_PER_REQUEST:
            raise InvalidRequest("too many members in one request", field="member_ids")
        if kind is ConversationKind.DIRECT:
            if len(others) != 1:
                raise InvalidRequest(
                    "a direct conversation has exactly two people: give one other member_id",
                    field="member_ids",
                )
            clean_name, clean_topic = "", ""
        else:
            clean_name = clean_text(name or "", field="name", max_chars=MAX_NAME_CHARS)
            clean_topic = clean_text(
                topic or "", field="topic", max_chars=MAX_TOPIC_CHARS, allow_empty=True
            )
        if kind is ConversationKind.DIRECT:  # asking again for one that exists is free
            async with self.d.store.read() as tx:
                existing = await tx.find_direct(":".join(sorted((actor.id, others[0]))))
            if existing is not None:
                return existing, False
        await self.limiter.check(Action.CONVERSATION, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            targets = await _existing_users(tx, others)
            direct_key = None
            if kind is ConversationKind.DIRECT:
                direct_key = ":".join(sorted((actor.id, others[0])))
                existing = await tx.find_direct(direct_key)
                if existing is not None:
                    return existing, False
                if targets[0].disabled:
                    raise InvalidOperation("that user is disabled", user_id=targets[0].id)
            else:
                owner_view = Member(ConversationId(""), actor.id, MemberRole.OWNER, 0, now, 0)
                check_can_add(kind, actor, owner_view, targets)
            conv = Conversation(
                id=ConversationId(self.d.ids.new_id()),
                kind=kind,
                name=clean_name,
                topic=clean_topic,
                created_by=actor.id,
                created_at=now,
                last_seq=0,
                last_activity_at=now,
                member_count=0,
                private=flags[0],
                announcement=flags[1],
                shared_history=flags[2],
            )
            await tx.insert_conversation(conv, direct_key)
            batch = EventBatch(tx, self.d.bus, now)
            position = await batch.reserve(1)
            everyone = [actor, *targets]
            for user in everyone:
                role = (
                    MemberRole.OWNER
                    if user.id == actor.id and kind is not ConversationKind.DIRECT
                    else MemberRole.MEMBER
                )
                await tx.upsert_member(Member(conv.id, user.id, role, 0, now, position))
            created = await tx.get_conversation(conv.id)
            assert created is not None
            ids = tuple(u.id for u in everyone)
            batch.add(ConversationCreated(created, ids, actor.id, now))
            await batch.flush()
        return created, True

    async def list_for(self, actor: User, include_archived: bool = False) -> list[MemberView]:
        """The caller's conversations; archived ones only with `include_archived`. Their
        `unread_mentions` count mentions of everyone where the member's notification
        settings let them (core/notify.py:counts_everyone), names always."""
        async with self.d.store.read() as tx:
            views = await tx.member_views(actor.id, include_archived)
        now = self.d.clock.now()
        return [
            replace(
                v,
                unread_mentions=v.unread_mentions
                + (
                    v.everyone_mentions
                    if counts_everyone(v.member.notify, v.conversation.kind, now)
                    else 0
                ),
                everyone_mentions=0,
            )
            for v in views
        ]

    async def active_ids(self, actor: User) -> list[ConversationId]:
        async with self.d.store.read() as tx:
            return await tx.active_conversation_ids(actor.id)

    async def view(self, actor: User, conversation_id: str) -> tuple[Conversation, list[Member]]:
        """One conversation with its members. Channels are visible to every non-guest."""
        async with self.d.store.read() as tx:
            conv = await _visible(tx, actor, conversation_id)
            return conv, await tx.list_members(conversation_id)

    async def channels(
        self, actor: User, query: str = "", limit: int = 200
    ) -> list[tuple[Conversation, bool]]:
        if actor.role is OrgRole.GUEST:
            raise Forbidden("guests cannot browse channels")
        async with self.d.store.read() as tx:
            found = await tx.list_channels(query.strip(), max(1, min(limit, 500)), actor.id)
            mine = set(await tx.active_conversation_ids(actor.id))
        return [(c, c.id in mine) for c in found]

    async def update(
        self,
        actor: User,
        conversation_id: str,
        name: str | None,
        topic: str | None,
        *,
        private: bool | None = None,
        announcement: bool | None = None,
        shared_history: bool | None = None,
    ) -> Conversation:
        """Change a conversation: its name and topic (owners, moderators, org admins),
        its settings `private` (channels only), `announcement` and `shared_history`
        (owners and org admins). None leaves a field as it is. Members get one
        `conversation_updated` event with the conversation as it is after; a settings
        change is audited (`conversation_settings_changed`, with the new values)."""
        await self.limiter.check(Action.MEMBERSHIP, actor.id, None)
        now = self.d.clock.now()
        settings = {
            "private": private,
            "announcement": announcement,
            "shared_history": shared_history,
        }
        asked = {k: v for k, v in settings.items() if v is not None}
        async with self.d.store.write() as tx:
            conv = await _visible(tx, actor, conversation_id)  # org admins manage channels
            found = await tx.get_member(conversation_id, actor.id)
            member = found if found is not None and found.active else None
            if conv.kind is ConversationKind.DIRECT:
                raise InvalidOperation("a direct conversation has no name, topic or settings")
            if name is not None or topic is not None:
                check_can_update_conversation(actor, member)
            if asked:
                check_can_change_settings(actor, member)
                if "private" in asked and conv.kind is not ConversationKind.CHANNEL:
                    raise InvalidRequest(
                        "only a channel can be made public or private", field="private"
                    )
            check_not_archived(conv)
            new_name = (
                None if name is None else clean_text(name, field="name", max_chars=MAX_NAME_CHARS)
            )
            new_topic = (
                None
                if topic is None
                else clean_text(topic, field="topic", max_chars=MAX_TOPIC_CHARS, allow_empty=True)
            )
            changed = {k: v for k, v in asked.items() if getattr(conv, k) != v}
            if new_name is None and new_topic is None and not changed:
                return conv
            if new_name is not None:
                await tx.set_conversation_name(conversation_id, new_name)
            if new_topic is not None:
                await tx.set_conversation_topic(conversation_id, new_topic)
            if changed:
                await tx.set_conversation_settings(
                    conversation_id,
                    private=changed.get("private"),
                    announcement=changed.get("announcement"),
                    shared_history=changed.get("shared_history"),
                )
                await audit(
                    tx,
                    self.d.clock,
                    AuditAction.CONVERSATION_SETTINGS_CHANGED,
                    actor_id=actor.id,
                    target_id=conv.id,
                    details={"kind": conv.kind.value, **changed},
                )
            updated = await tx.get_conversation(conversation_id)
            assert updated is not None
            batch = EventBatch(tx, self.d.bus, now)
            batch.add(ConversationUpdated(updated, actor.id, now))
            await batch.flush()
        return updated

    async def set_role(
        self, actor: User | None, conversation_id: str, user_id: str, role: MemberRole
    ) -> Member:
        """Give member `user_id` the conversation role `role` (owner, moderator,
        member). Owners of the conversation and org admins only (`actor` None: the
        operator at the command line, e.g. to name an owner of a channel whose owners
        all left); the last owner stays one until another is named. Members get
        `member_role_changed`; audited `member_role_changed` (details: user_id, role,
        was). Giving the role someone has already changes nothing and returns their
        membership."""
        if actor is not None:
            await self.limiter.check(Action.MEMBERSHIP, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            actor_member = None
            if actor is None:
                found_conv = await tx.get_conversation(conversation_id)
                if found_conv is None:
                    raise NotFound("conversation not found", conversation_id=conversation_id)
                conv = found_conv
            else:
                conv = await _visible(tx, actor, conversation_id)
                found = await tx.get_member(conversation_id, actor.id)
                actor_member = found if found is not None and found.active else None
                if actor_member is None and not actor.role.is_admin:
                    raise NotFound("conversation not found", conversation_id=conversation_id)
            target = await tx.get_member(conversation_id, user_id)
            if target is None or not target.active:
                raise NotFound("that user is not a member", user_id=user_id)
            owners = await tx.count_owners(conversation_id)
            check_can_set_role(conv.kind, actor, actor_member, target, role, owners)
            check_not_archived(conv)
            if target.role is role:
                return target
            await tx.set_member_role(conversation_id, user_id, role.value)
            batch = EventBatch(tx, self.d.bus, now)
            by = UserId("") if actor is None else actor.id  # "": the operator (CLI)
            batch.add(MemberRoleChanged(conv.id, target.user_id, role, by, now))
            await audit(
                tx,
                self.d.clock,
                AuditAction.MEMBER_ROLE_CHANGED,
                actor_id=None if actor is None else actor.id,
                target_id=conv.id,
                details={"user_id": user_id, "role": role.value, "was": target.role.value},
            )
            await batch.flush()
            changed = await tx.get_member(conversation_id, user_id)
            assert changed is not None
        return changed

    async def add_members(
        self, actor: User, conversation_id: str, user_ids: Sequence[str]
    ) -> Conversation:
        """Add people (joining a channel is adding yourself). Adding someone who is
        already a member changes nothing."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            raise InvalidRequest("user_ids must not be empty", field="user_ids")
        if len(ids) > MAX_MEMBERS_PER_REQUEST:
            raise InvalidRequest("too many members in one request", field="user_ids")
        await self.limiter.check(Action.MEMBERSHIP, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv = await _visible(tx, actor, conversation_id)
            member = await tx.get_member(conversation_id, actor.id)
            actor_member = member if member is not None and member.active else None
            targets = await _existing_users(tx, ids)
            new, removed = [], set()
            for user in targets:
                current = await tx.get_member(conversation_id, user.id)
                if current is None or not current.active:
                    new.append(user)
                    if current is not None and current.removed_by is not None:
                        removed.add(user.id)
            check_can_add(conv.kind, actor, actor_member, targets, removed, private=conv.private)
            check_not_archived(conv)
            if not new:
                return conv
            batch = EventBatch(tx, self.d.bus, now)
            position = await batch.reserve(1)
            first_seq = first_visible_seq(conv, conv.last_seq)
            for user in new:
                await tx.upsert_member(
                    Member(
                        conv.id,
                        user.id,
                        MemberRole.MEMBER,
                        conv.last_seq,
                        now,
                        position,
                        first_seq=first_seq,
                    )
                )
            updated = await tx.get_conversation(conversation_id)
            assert updated is not None
            new_ids = [u.id for u in new]
            batch.add(MemberAdded(updated, tuple(new_ids), actor.id, now, first_seq))
            await audit(
                tx,
                self.d.clock,
                AuditAction.MEMBERS_ADDED,
                actor_id=actor.id,
                target_id=conv.id,
                details={"user_ids": new_ids, "kind": conv.kind.value},
            )
            await batch.flush()
        return updated

    async def remove_member(self, actor: User, conversation_id: str, user_id: str) -> None:
        """Remove a member (or leave). The removed member gets the member_removed event,
        then nothing more of this conversation, and cannot read past it."""
        await self.limiter.check(Action.MEMBERSHIP, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            conv = await _visible(tx, actor, conversation_id)
            member = await tx.get_member(conversation_id, actor.id)
            actor_member = member if member is not None and member.active else None
            if conv.kind is ConversationKind.DIRECT:
                raise InvalidOperation("nobody can leave a direct conversation")
            if actor_member is None and not actor.role.is_admin:
                raise NotFound("conversation not found", conversation_id=conversation_id)
            target = await tx.get_member(conversation_id, user_id)
            if target is None or not target.active:
                raise NotFound("that user is not a member", user_id=user_id)
            check_can_remove(actor, actor_member, user_id, target.role)
            check_not_archived(conv)
            if target.role is MemberRole.OWNER and await tx.count_owners(conversation_id) <= 1:
                members = len(await tx.list_members(conversation_id))
                check_keeps_an_owner(target.role, 1, members)
            batch = EventBatch(tx, self.d.bus, now)
            position = await batch.reserve(1)
            batch.add(MemberRemoved(conv.id, UserId(user_id), actor.id, now))
            removed_by = None if user_id == actor.id else actor.id  # leaving is no removal
            await tx.mark_member_left(conversation_id, user_id, position, conv.last_seq, removed_by)
            await audit(
                tx,
                self.d.clock,
                AuditAction.MEMBER_REMOVED,
                actor_id=actor.id,
                target_id=conv.id,
                details={"user_id": user_id, "kind": conv.kind.value},
            )
            await batch.flush()

    # --- archive, and the admin's view of every conversation ----------------------
    async def archive(self, actor: User | None, conversation_id: str) -> Conversation:
        """Archive a conversation: it becomes read-only (no sends, edits, recalls,
        reactions, membership or name changes: `forbidden`, ConversationArchived) and
        leaves its members' lists unless they ask for archived ones. Owners of the
        conversation and org admins may (`actor` None: the operator at the command
        line). Members get a `conversation_updated` event whose conversation carries
        `archived_at`; audited `conversation_archived`. Archiving an archived
        conversation changes nothing and returns it."""
        return await self._set_archived(actor, conversation_id, archive=True)

    async def unarchive(self, actor: User | None, conversation_id: str) -> Conversation:
        """Undo `archive`: writable and listed again (`conversation_updated` with
        `archived_at` null; audited `conversation_unarchived`). Same permissions."""
        return await self._set_archived(actor, conversation_id, archive=False)

    async def _set_archived(
        self, actor: User | None, conversation_id: str, *, archive: bool
    ) -> Conversation:
        if actor is not None:
            await self.limiter.check(Action.MEMBERSHIP, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            if actor is None or actor.role.is_admin:
                conv = await tx.get_conversation(conversation_id)
                if conv is None:
                    raise NotFound("conversation not found", conversation_id=conversation_id)
                actor_member = None
            else:
                conv = await _visible(tx, actor, conversation_id)
                found = await tx.get_member(conversation_id, actor.id)
                actor_member = found if found is not None and found.active else None
            if actor is not None:
                check_can_archive(actor, actor_member)
            if (conv.archived_at is not None) is archive:
                return conv
            await tx.set_conversation_archived(conversation_id, now if archive else None)
            updated = await tx.get_conversation(conversation_id)
            assert updated is not None
            by = UserId("") if actor is None else actor.id  # "": the operator (CLI)
            batch = EventBatch(tx, self.d.bus, now)
            batch.add(ConversationUpdated(updated, by, now))
            await audit(
                tx,
                self.d.clock,
                AuditAction.CONVERSATION_ARCHIVED
                if archive
                else AuditAction.CONVERSATION_UNARCHIVED,
                actor_id=None if actor is None else actor.id,
                target_id=conv.id,
                details={"kind": conv.kind.value, "name": conv.name},
            )
            await batch.flush()
        return updated

    async def list_all(
        self,
        actor: User | None,
        *,
        query: str = "",
        kind: ConversationKind | None = None,
        archived: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Conversation], int]:
        """Admins only: every conversation of the organization (direct, group, channel),
        newest activity first, filtered by name (`query`, case-insensitive substring),
        `kind` and `archived` (None: both). Returns one page (`limit` 1..200 from
        `offset`) and the number that match in all."""
        check_admin(actor, "list every conversation")
        if not 1 <= limit <= MAX_ADMIN_PAGE:
            raise InvalidRequest(f"limit must be 1 to {MAX_ADMIN_PAGE}", field="limit")
        if offset < 0:
            raise InvalidRequest("offset must not be negative", field="offset")
        if len(query) > MAX_NAME_CHARS:
            raise InvalidRequest("query is too long", field="query")
        async with self.d.store.read() as tx:
            return await tx.all_conversations(
                query=query.strip(),
                kind=None if kind is None else kind.value,
                archived=archived,
                limit=limit,
                offset=offset,
            )

    async def members_of(
        self, actor: User | None, conversation_id: str
    ) -> tuple[Conversation, list[Member]]:
        """Admins only: any conversation (direct and group ones they are not in
        included) with its current members."""
        check_admin(actor, "see the members of every conversation")
        async with self.d.store.read() as tx:
            conv = await tx.get_conversation(conversation_id)
            if conv is None:
                raise NotFound("conversation not found", conversation_id=conversation_id)
            return conv, await tx.list_members(conversation_id)


async def _existing_users(tx: Tx, ids: Sequence[str]) -> list[User]:
    found: dict[str, User] = {u.id: u for u in await tx.get_users(ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound("user not found", user_ids=missing)
    return [found[i] for i in ids]


def _settings_for_new(
    kind: ConversationKind,
    private: bool | None,
    announcement: bool | None,
    shared_history: bool | None,
) -> tuple[bool, bool, bool]:
    """(private, announcement, shared_history) of a new conversation of `kind`."""
    if kind is ConversationKind.DIRECT:
        if private is False or announcement or shared_history is False:
            raise InvalidRequest("a direct conversation has no settings", field="private")
        return True, False, True
    if kind is ConversationKind.GROUP:
        if private is False:
            raise InvalidRequest("a group is always private: make a channel", field="private")
        return True, bool(announcement), bool(shared_history)
    is_private = bool(private)
    return (
        is_private,
        bool(announcement),
        (not is_private) if shared_history is None else shared_history,
    )


async def _visible(tx: Tx, actor: User, conversation_id: str) -> Conversation:
    """A conversation the actor may look at: any they are in, every public channel for
    non-guests (public channels are open inside the organization), and private channels
    for org admins (who manage channels) as well as their members."""
    conv = await tx.get_conversation(conversation_id)
    if conv is not None:
        if (
            conv.kind is ConversationKind.CHANNEL
            and actor.role is not OrgRole.GUEST
            and (not conv.private or actor.role.is_admin)
        ):
            return conv
        member = await tx.get_member(conversation_id, actor.id)
        if member is not None and member.active:
            return conv
    raise NotFound("conversation not found", conversation_id=conversation_id)
