"""One SQLAlchemy Core implementation of the Store port, for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.core.errors import Conflict, Unavailable
from tidings.core.models import (
    Conversation,
    ConversationId,
    ConversationKind,
    Department,
    DepartmentId,
    Member,
    MemberRole,
    MemberView,
    Message,
    MessageId,
    OrgRole,
    Session,
    StoredEvent,
    TokenId,
    User,
    UserId,
)
from tidings.store.sql import schema as t
from tidings.store.sql.engines import BatchRunner, Engine, create_engine
from tidings.store.sql.engines.base import marks
from tidings.store.sql.security import SecurityQueries

AfterCommit = Callable[[], Awaitable[None]]
FreshEnough = Callable[["SqlTx"], Awaitable[bool]]


def _ts(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _ts_req(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _user(row: Any, departments: Sequence[DepartmentId] = ()) -> User:
    return User(
        id=UserId(row.id),
        username=row.username,
        display_name=row.display_name,
        role=OrgRole(row.role),
        disabled=bool(row.disabled),
        created_at=_ts_req(row.created_at),
        department_ids=tuple(departments),
        bot=bool(row.bot),
    )


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=ConversationId(row.id),
        kind=ConversationKind(row.kind),
        name=row.name,
        topic=row.topic,
        created_by=UserId(row.created_by),
        created_at=_ts_req(row.created_at),
        last_seq=int(row.last_seq),
        last_activity_at=_ts_req(row.last_activity_at),
        member_count=int(row.member_count),
    )


def _member(row: Any) -> Member:
    return Member(
        conversation_id=ConversationId(row.conversation_id),
        user_id=UserId(row.user_id),
        role=MemberRole(row.role),
        read_seq=int(row.read_seq),
        joined_at=_ts_req(row.joined_at),
        joined_pos=int(row.joined_pos),
        left_pos=None if row.left_pos is None else int(row.left_pos),
        left_seq=None if row.left_seq is None else int(row.left_seq),
    )


def _message(row: Any, reactions: dict[str, list[UserId]] | None = None) -> Message:
    return Message(
        id=MessageId(row.id),
        conversation_id=ConversationId(row.conversation_id),
        seq=int(row.seq),
        client_msg_id=row.client_msg_id,
        sender_id=UserId(row.sender_id),
        body=row.body,
        reply_to_seq=None if row.reply_to_seq is None else int(row.reply_to_seq),
        mentions=tuple(UserId(u) for u in orjson.loads(row.mentions)),
        created_at=_ts_req(row.created_at),
        edited_at=_ts(row.edited_at),
        deleted=bool(row.deleted),
        reactions=reactions or {},
    )


def _event(row: Any) -> StoredEvent:
    return StoredEvent(
        position=int(row.position),
        conversation_id=(
            None if row.conversation_id is None else ConversationId(row.conversation_id)
        ),
        user_id=None if row.user_id is None else UserId(row.user_id),
        payload=orjson.loads(row.payload),
    )


# The send path's statements, each written once, for every engine: `?` placeholders,
# run by the engine's BatchRunner straight on the driver (see engines/base.py). A batch
# of sends costs this fixed handful of statements, not a few per send.

# A join with the keys as a table: SQLite searches the unique index once per key (two
# IN lists would probe every sender with every client_msg_id; a row-value IN over VALUES
# scans the whole index). PostgreSQL names a VALUES list's columns the same way.
_CLIENT_IDS = (
    "SELECT m.sender_id, m.client_msg_id FROM (VALUES {keys}) AS k "
    "JOIN messages AS m ON m.sender_id = k.column1 AND m.client_msg_id = k.column2"
)
_TARGETS = (
    "SELECT c.id, c.last_seq, m.user_id FROM conversations AS c "
    "LEFT OUTER JOIN members AS m ON m.conversation_id = c.id "
    "AND m.user_id IN ({users}) AND m.left_pos IS NULL "
    "WHERE c.id IN ({convs})"
)
_SET_LAST_SEQ = "UPDATE conversations SET last_seq = ?, last_activity_at = ? WHERE id = ?"
_INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, seq, id, client_msg_id, sender_id, body, "
    "reply_to_seq, mentions, created_at, edited_at, deleted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, FALSE)"
)
_INSERT_MENTION = "INSERT INTO mentions (conversation_id, user_id, seq) VALUES (?, ?, ?)"
_ADVANCE_READ = (
    "UPDATE members SET read_seq = ? WHERE conversation_id = ? AND user_id = ? AND read_seq < ?"
)
_RESERVE = "UPDATE counters SET value = value + ? WHERE name = 'events' RETURNING value"
_INSERT_EVENT = (
    "INSERT INTO events (position, conversation_id, user_id, kind, payload, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def _connect_statements() -> dict[str, Any]:
    """The statements every new WebSocket connection runs (a restart reconnects every
    client at once), built once like the send path's: a statement built per call costs
    about twice the CPU of one built once (its cache key is computed again each time)."""
    tok, u, dm, m, conv = t.tokens, t.users, t.department_members, t.members, t.conversations
    user_columns = [u.c.id, u.c.username, u.c.display_name, u.c.role, u.c.disabled]
    mine = (
        select(m.c.conversation_id)
        .join(conv, conv.c.id == m.c.conversation_id)
        .where(
            m.c.user_id == bindparam("user_id"),
            m.c.left_pos.is_(None),
            conv.c.kind != ConversationKind.CHANNEL.value,
        )
    )
    return {
        # the token, its user and the user's departments in one statement (one row per
        # department; one row without any)
        "session": select(
            tok.c.id.label("token_id"),
            tok.c.device,
            tok.c.expires_at,
            tok.c.enrol_only,
            tok.c.last_seen_at,
            *user_columns,
            u.c.created_at,
            u.c.bot,
            dm.c.department_id,
        )
        .select_from(tok.join(u, u.c.id == tok.c.user_id).outerjoin(dm, dm.c.user_id == u.c.id))
        .where(tok.c.token_hash == bindparam("token_hash"), tok.c.revoked_at.is_(None)),
        # the stream head and the user's conversations in one statement: one snapshot,
        # on PostgreSQL's read committed too (one row without any conversation)
        "snapshot": select(t.counters.c.value, m.c.conversation_id)
        .select_from(
            t.counters.outerjoin(
                m, and_(m.c.user_id == bindparam("user_id"), m.c.left_pos.is_(None))
            )
        )
        .where(t.counters.c.name == "events"),
        "contacts": select(m.c.user_id)
        .distinct()
        .where(
            m.c.conversation_id.in_(mine),
            m.c.left_pos.is_(None),
            m.c.user_id != bindparam("user_id"),
        ),
    }


_CONNECT = _connect_statements()


class SqlTx(SecurityQueries):
    """Queries and writes on one connection. Obtained from SqlStore.read() or .write()."""

    def __init__(self, conn: AsyncConnection, engine: Engine) -> None:
        self.conn = conn
        self.engine = engine
        self._after_commit: list[AfterCommit] = []
        self._runner: BatchRunner | None = None

    def _batch(self) -> BatchRunner:
        """The engine's runner of the send path's statements on this connection."""
        if self._runner is None:
            self._runner = self.engine.send_batch(self.conn)
        return self._runner

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` once the transaction has committed (publish after commit)."""
        self._after_commit.append(callback)

    # --- meta -------------------------------------------------------------------
    async def get_meta(self, key: str) -> str | None:
        return (await self.conn.execute(select(t.meta.c.value).where(t.meta.c.key == key))).scalar()

    async def set_meta(self, key: str, value: str) -> None:
        done = await self.conn.execute(
            update(t.meta).where(t.meta.c.key == key).values(value=value)
        )
        if done.rowcount == 0:
            await self.conn.execute(insert(t.meta).values(key=key, value=value))

    # --- users ------------------------------------------------------------------
    async def insert_user(self, user: User, password_hash: str, search_key: str) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t.users).values(
                        id=user.id,
                        username=user.username,
                        display_name=user.display_name,
                        role=user.role.value,
                        disabled=user.disabled,
                        password_hash=password_hash,
                        search_key=search_key,
                        created_at=user.created_at,
                        bot=user.bot,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"username {user.username!r} is taken", field="username") from exc

    async def _departments_of(self, user_ids: Sequence[str]) -> dict[str, list[DepartmentId]]:
        result: dict[str, list[DepartmentId]] = {}
        if not user_ids:
            return result
        rows = await self.conn.execute(
            select(t.department_members).where(t.department_members.c.user_id.in_(user_ids))
        )
        for row in rows:
            result.setdefault(row.user_id, []).append(DepartmentId(row.department_id))
        return result

    async def _users_from(self, rows: Sequence[Any]) -> list[User]:
        deps = await self._departments_of([r.id for r in rows])
        return [_user(r, sorted(deps.get(r.id, []))) for r in rows]

    async def get_user(self, user_id: str) -> User | None:
        row = (await self.conn.execute(select(t.users).where(t.users.c.id == user_id))).first()
        return None if row is None else (await self._users_from([row]))[0]

    async def get_users(self, user_ids: Iterable[str]) -> list[User]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return []
        rows = (await self.conn.execute(select(t.users).where(t.users.c.id.in_(ids)))).all()
        return await self._users_from(rows)

    async def get_credentials(self, username: str) -> tuple[User, str] | None:
        row = (
            await self.conn.execute(select(t.users).where(t.users.c.username == username))
        ).first()
        if row is None:
            return None
        return (await self._users_from([row]))[0], row.password_hash

    async def get_password_hash(self, user_id: str) -> str | None:
        return (
            await self.conn.execute(select(t.users.c.password_hash).where(t.users.c.id == user_id))
        ).scalar()

    async def users_by_usernames(self, usernames: Iterable[str]) -> list[User]:
        names = list(usernames)
        if not names:
            return []
        rows = (await self.conn.execute(select(t.users).where(t.users.c.username.in_(names)))).all()
        return await self._users_from(rows)

    async def search_users(
        self, query: str, department_ids: Sequence[str] | None, limit: int
    ) -> list[User]:
        stmt = select(t.users)
        if query:
            escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(t.users.c.search_key.like(f"%{escaped}%", escape="\\"))
        if department_ids is not None:
            stmt = stmt.where(
                t.users.c.id.in_(
                    select(t.department_members.c.user_id).where(
                        t.department_members.c.department_id.in_(list(department_ids))
                    )
                )
            )
        rows = (await self.conn.execute(stmt.order_by(t.users.c.username).limit(limit))).all()
        return await self._users_from(rows)

    async def update_user(self, user_id: str, **values: object) -> None:
        await self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(**values))

    async def count_active_owners(self) -> int:
        stmt = select(func.count()).where(
            t.users.c.role == OrgRole.OWNER.value, t.users.c.disabled.is_(False)
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    # --- tokens -----------------------------------------------------------------
    async def insert_token(
        self,
        token_id: str,
        token_hash: str,
        user_id: str,
        device: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        await self.conn.execute(
            insert(t.tokens).values(
                id=token_id,
                token_hash=token_hash,
                user_id=user_id,
                device=device,
                created_at=created_at,
                expires_at=expires_at,
            )
        )

    async def session_for_token(self, token_hash: str, now: datetime) -> Session | None:
        rows = (await self.conn.execute(_CONNECT["session"], {"token_hash": token_hash})).all()
        if not rows:
            return None
        row = rows[0]
        if _ts_req(row.expires_at) <= now:
            return None
        departments = sorted(
            DepartmentId(r.department_id) for r in rows if r.department_id is not None
        )
        return Session(
            token_id=TokenId(row.token_id),
            user=_user(row, departments),
            device=row.device,
            expires_at=_ts_req(row.expires_at),
            enrol_only=bool(row.enrol_only),
            last_seen_at=_ts(row.last_seen_at),
        )

    async def revoke_token(self, token_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.tokens)
            .where(t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_user_tokens(self, user_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.tokens)
            .where(t.tokens.c.user_id == user_id, t.tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def delete_dead_tokens(self, before: datetime) -> int:
        """Delete tokens expired or revoked before `before`; returns how many."""
        done = await self.conn.execute(
            delete(t.tokens).where(
                or_(t.tokens.c.expires_at < before, t.tokens.c.revoked_at < before)
            )
        )
        return int(done.rowcount)

    # --- departments ------------------------------------------------------------
    async def insert_department(self, dep: Department, now: datetime) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t.departments).values(
                        id=dep.id, name=dep.name, parent_id=dep.parent_id, created_at=now
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"department {dep.name!r} already exists there") from exc

    async def list_departments(self) -> list[Department]:
        rows = await self.conn.execute(select(t.departments).order_by(t.departments.c.name))
        return [
            Department(
                id=DepartmentId(r.id),
                name=r.name,
                parent_id=None if r.parent_id is None else DepartmentId(r.parent_id),
            )
            for r in rows
        ]

    async def add_department_member(self, department_id: str, user_id: str) -> None:
        exists = await self.conn.execute(
            select(t.department_members).where(
                t.department_members.c.department_id == department_id,
                t.department_members.c.user_id == user_id,
            )
        )
        if exists.first() is None:
            await self.conn.execute(
                insert(t.department_members).values(department_id=department_id, user_id=user_id)
            )

    async def remove_department_member(self, department_id: str, user_id: str) -> None:
        await self.conn.execute(
            delete(t.department_members).where(
                t.department_members.c.department_id == department_id,
                t.department_members.c.user_id == user_id,
            )
        )

    # --- conversations ----------------------------------------------------------
    async def insert_conversation(self, conv: Conversation, direct_key: str | None) -> None:
        await self.conn.execute(
            insert(t.conversations).values(
                id=conv.id,
                kind=conv.kind.value,
                name=conv.name,
                topic=conv.topic,
                direct_key=direct_key,
                created_by=conv.created_by,
                created_at=conv.created_at,
                last_seq=conv.last_seq,
                last_activity_at=conv.last_activity_at,
                member_count=conv.member_count,
            )
        )

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = (
            await self.conn.execute(
                select(t.conversations).where(t.conversations.c.id == conversation_id)
            )
        ).first()
        return None if row is None else _conversation(row)

    async def find_direct(self, direct_key: str) -> Conversation | None:
        row = (
            await self.conn.execute(
                select(t.conversations).where(t.conversations.c.direct_key == direct_key)
            )
        ).first()
        return None if row is None else _conversation(row)

    async def update_conversation(self, conversation_id: str, **values: object) -> None:
        await self.conn.execute(
            update(t.conversations).where(t.conversations.c.id == conversation_id).values(**values)
        )

    async def list_channels(self, query: str, limit: int) -> list[Conversation]:
        stmt = select(t.conversations).where(t.conversations.c.kind == ConversationKind.CHANNEL)
        if query:
            stmt = stmt.where(func.lower(t.conversations.c.name).contains(query.lower()))
        rows = await self.conn.execute(stmt.order_by(t.conversations.c.name).limit(limit))
        return [_conversation(r) for r in rows]

    # --- members ----------------------------------------------------------------
    async def upsert_member(self, member: Member) -> bool:
        """Add (or re-add) a member. Returns False when already an active member."""
        existing = await self.get_member(member.conversation_id, member.user_id)
        values = {
            "role": member.role.value,
            "read_seq": member.read_seq,
            "joined_at": member.joined_at,
            "joined_pos": member.joined_pos,
            "left_pos": None,
            "left_seq": None,
        }
        if existing is None:
            await self.conn.execute(
                insert(t.members).values(
                    conversation_id=member.conversation_id, user_id=member.user_id, **values
                )
            )
        elif existing.active:
            return False
        else:
            await self.conn.execute(
                update(t.members)
                .where(
                    t.members.c.conversation_id == member.conversation_id,
                    t.members.c.user_id == member.user_id,
                )
                .values(**values)
            )
        await self.conn.execute(
            update(t.conversations)
            .where(t.conversations.c.id == member.conversation_id)
            .values(member_count=t.conversations.c.member_count + 1)
        )
        return True

    async def get_member(self, conversation_id: str, user_id: str) -> Member | None:
        row = (
            await self.conn.execute(
                select(t.members).where(
                    t.members.c.conversation_id == conversation_id,
                    t.members.c.user_id == user_id,
                )
            )
        ).first()
        return None if row is None else _member(row)

    async def list_members(self, conversation_id: str) -> list[Member]:
        rows = await self.conn.execute(
            select(t.members)
            .where(t.members.c.conversation_id == conversation_id, t.members.c.left_pos.is_(None))
            .order_by(t.members.c.joined_pos, t.members.c.user_id)
        )
        return [_member(r) for r in rows]

    async def mark_member_left(
        self, conversation_id: str, user_id: str, position: int, seq: int
    ) -> None:
        await self.conn.execute(
            update(t.members)
            .where(t.members.c.conversation_id == conversation_id, t.members.c.user_id == user_id)
            .values(left_pos=position, left_seq=seq)
        )
        await self.conn.execute(
            update(t.conversations)
            .where(t.conversations.c.id == conversation_id)
            .values(member_count=t.conversations.c.member_count - 1)
        )

    async def advance_read(self, conversation_id: str, user_id: str, seq: int) -> bool:
        """Move a read position forward only. True when it moved."""
        changed = await self._batch().run(_ADVANCE_READ, (seq, conversation_id, user_id, seq))
        return bool(changed)

    async def member_views(self, user_id: str) -> list[MemberView]:
        rows = (
            await self.conn.execute(
                select(t.members, t.conversations)
                .join(t.conversations, t.conversations.c.id == t.members.c.conversation_id)
                .where(t.members.c.user_id == user_id, t.members.c.left_pos.is_(None))
                .order_by(t.conversations.c.last_activity_at.desc())
            )
        ).all()
        counts: dict[str, int] = dict(
            (
                await self.conn.execute(
                    select(t.mentions.c.conversation_id, func.count())
                    .join(
                        t.members,
                        and_(
                            t.members.c.conversation_id == t.mentions.c.conversation_id,
                            t.members.c.user_id == t.mentions.c.user_id,
                        ),
                    )
                    .where(
                        t.mentions.c.user_id == user_id,
                        t.mentions.c.seq > t.members.c.read_seq,
                        t.members.c.left_pos.is_(None),
                    )
                    .group_by(t.mentions.c.conversation_id)
                )
            ).all()
        )
        views = []
        for row in rows:
            conv = _conversation(row)
            views.append(MemberView(conv, _member(row), int(counts.get(row.conversation_id, 0))))
        return views

    async def unread_mentions(self, conversation_id: str, user_id: str, read_seq: int) -> int:
        stmt = select(func.count()).where(
            t.mentions.c.conversation_id == conversation_id,
            t.mentions.c.user_id == user_id,
            t.mentions.c.seq > read_seq,
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def active_conversation_ids(self, user_id: str) -> list[ConversationId]:
        rows = await self.conn.execute(
            select(t.members.c.conversation_id).where(
                t.members.c.user_id == user_id, t.members.c.left_pos.is_(None)
            )
        )
        return [ConversationId(r[0]) for r in rows]

    async def stream_snapshot(self, user_id: str) -> tuple[int, list[ConversationId]]:
        """The stream head and the user's conversations as of that head, read by one
        statement (so that on PostgreSQL too both come from one snapshot)."""
        rows = (await self.conn.execute(_CONNECT["snapshot"], {"user_id": user_id})).all()
        if not rows:  # no counter row: an empty stream
            return 0, await self.active_conversation_ids(user_id)
        head = int(rows[0][0])
        return head, [ConversationId(r[1]) for r in rows if r[1] is not None]

    async def contacts_of(self, user_id: str) -> list[UserId]:
        """People who share a direct or group conversation with the user."""
        rows = await self.conn.execute(_CONNECT["contacts"], {"user_id": user_id})
        return [UserId(r[0]) for r in rows]

    # --- messages ---------------------------------------------------------------
    # --- the group commit of sends -----------------------------------------------
    async def messages_by_client_ids(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Message]:
        if not keys:
            return {}
        unique = list(set(keys))
        rows = await self._batch().fetch(
            _CLIENT_IDS.format(keys=", ".join(["(?, ?)"] * len(unique))),
            [part for key in unique for part in key],
        )
        wanted = {(sender, cmid) for sender, cmid in rows}
        if not wanted:  # a retry is rare: usually none
            return {}
        msg = t.messages
        found_rows = await self.conn.execute(
            select(msg).where(
                msg.c.sender_id.in_(list({sender for sender, _ in wanted})),
                msg.c.client_msg_id.in_(list({cmid for _, cmid in wanted})),
            )
        )
        found: dict[tuple[str, str], Message] = {}
        for row in found_rows:
            key = (row.sender_id, row.client_msg_id)
            if key in wanted:  # a retry: rare, so its reactions are read one by one
                found[key] = (await self._messages_from([row]))[0]
        return found

    async def send_targets(
        self, keys: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, int], set[tuple[str, str]]]:
        if not keys:
            return {}, set()
        users = list({uid for _, uid in keys})
        convs = list({cid for cid, _ in keys})
        rows = await self._batch().fetch(
            _TARGETS.format(users=marks(len(users)), convs=marks(len(convs))), users + convs
        )
        last_seqs: dict[str, int] = {}
        active: set[tuple[str, str]] = set()
        for cid, last_seq, uid in rows:
            last_seqs[cid] = int(last_seq)
            if uid is not None:
                active.add((cid, uid))
        return last_seqs, active

    async def append_messages(
        self, messages: Sequence[Message], last_seqs: Mapping[str, int], now: datetime
    ) -> None:
        if not messages:
            return
        batch = self._batch()
        ts = batch.timestamp
        stamp = ts(now)
        await batch.run_many(_SET_LAST_SEQ, [(seq, stamp, cid) for cid, seq in last_seqs.items()])
        dumps = orjson.dumps
        await batch.run_many(
            _INSERT_MESSAGE,
            [
                (
                    m.conversation_id,
                    m.seq,
                    m.id,
                    m.client_msg_id,
                    m.sender_id,
                    m.body,
                    m.reply_to_seq,
                    dumps(list(m.mentions)).decode(),
                    stamp if m.created_at is now else ts(m.created_at),
                )
                for m in messages
            ],
        )
        mentioned = [(m.conversation_id, u, m.seq) for m in messages for u in m.mentions]
        await batch.run_many(_INSERT_MENTION, mentioned)
        read: dict[tuple[str, str], int] = {}  # a sender has read its own messages
        for m in messages:
            read[(m.conversation_id, m.sender_id)] = m.seq
        await batch.run_many(
            _ADVANCE_READ, [(seq, cid, uid, seq) for (cid, uid), seq in read.items()]
        )

    async def _messages_from(self, rows: Sequence[Any]) -> list[Message]:
        if not rows:
            return []
        cid = rows[0].conversation_id
        seqs = [r.seq for r in rows]
        reacts: dict[int, dict[str, list[UserId]]] = {}
        found = await self.conn.execute(
            select(t.reactions)
            .where(t.reactions.c.conversation_id == cid, t.reactions.c.seq.in_(seqs))
            .order_by(t.reactions.c.created_at)
        )
        for r in found:
            reacts.setdefault(int(r.seq), {}).setdefault(r.emoji, []).append(UserId(r.user_id))
        return [_message(r, reacts.get(int(r.seq))) for r in rows]

    async def get_message(self, conversation_id: str, seq: int) -> Message | None:
        row = (
            await self.conn.execute(
                select(t.messages).where(
                    t.messages.c.conversation_id == conversation_id, t.messages.c.seq == seq
                )
            )
        ).first()
        return None if row is None else (await self._messages_from([row]))[0]

    async def list_messages(
        self,
        conversation_id: str,
        *,
        before_seq: int | None,
        after_seq: int | None,
        limit: int,
        max_seq: int | None,
    ) -> tuple[list[Message], bool]:
        c = t.messages.c
        stmt = select(t.messages).where(c.conversation_id == conversation_id)
        if max_seq is not None:
            stmt = stmt.where(c.seq <= max_seq)
        if after_seq is not None:
            stmt = stmt.where(c.seq > after_seq)
        if before_seq is not None:
            stmt = stmt.where(c.seq < before_seq)
        if after_seq is not None and before_seq is None:
            rows = list((await self.conn.execute(stmt.order_by(c.seq).limit(limit + 1))).all())
            more = len(rows) > limit
            rows = rows[:limit]
        else:
            rows = list(
                (await self.conn.execute(stmt.order_by(c.seq.desc()).limit(limit + 1))).all()
            )
            more = len(rows) > limit
            rows = rows[:limit][::-1]
        return await self._messages_from(rows), more

    async def update_message(self, conversation_id: str, seq: int, **values: object) -> None:
        if "mentions" in values and isinstance(values["mentions"], (list, tuple)):
            values["mentions"] = orjson.dumps(list(values["mentions"])).decode()
        await self.conn.execute(
            update(t.messages)
            .where(t.messages.c.conversation_id == conversation_id, t.messages.c.seq == seq)
            .values(**values)
        )

    async def replace_mentions(
        self, conversation_id: str, seq: int, user_ids: Sequence[str]
    ) -> None:
        await self.conn.execute(
            delete(t.mentions).where(
                t.mentions.c.conversation_id == conversation_id, t.mentions.c.seq == seq
            )
        )
        if user_ids:
            await self.conn.execute(
                insert(t.mentions),
                [{"conversation_id": conversation_id, "user_id": u, "seq": seq} for u in user_ids],
            )

    async def set_reaction(
        self, conversation_id: str, seq: int, emoji: str, user_id: str, on: bool, now: datetime
    ) -> bool:
        """Add or remove one reaction. True when something changed."""
        where = and_(
            t.reactions.c.conversation_id == conversation_id,
            t.reactions.c.seq == seq,
            t.reactions.c.emoji == emoji,
            t.reactions.c.user_id == user_id,
        )
        exists = (await self.conn.execute(select(t.reactions.c.seq).where(where))).first()
        if on and exists is None:
            await self.conn.execute(
                insert(t.reactions).values(
                    conversation_id=conversation_id,
                    seq=seq,
                    emoji=emoji,
                    user_id=user_id,
                    created_at=now,
                )
            )
            return True
        if not on and exists is not None:
            await self.conn.execute(delete(t.reactions).where(where))
            return True
        return False

    # --- events -----------------------------------------------------------------
    async def reserve_positions(self, count: int) -> int:
        """Reserve `count` stream positions; returns the first. Taken in the committing
        transaction, so positions commit in order on every engine."""
        rows = await self._batch().fetch(_RESERVE, (count,))
        if rows:
            last = int(rows[0][0])
        else:  # the counter's first use
            await self.conn.execute(insert(t.counters).values(name="events", value=count))
            last = count
        return last - count + 1

    async def insert_events(self, events: Sequence[StoredEvent], now: datetime) -> None:
        batch = self._batch()
        stamp = batch.timestamp(now)
        dumps = orjson.dumps
        await batch.run_many(
            _INSERT_EVENT,
            [
                (
                    e.position,
                    e.conversation_id,
                    e.user_id,
                    str(e.payload["kind"]),
                    dumps(e.payload).decode(),
                    stamp,
                )
                for e in events
            ],
        )

    async def head_position(self) -> int:
        stmt = select(t.counters.c.value).where(t.counters.c.name == "events")
        return int((await self.conn.execute(stmt)).scalar() or 0)

    async def events_between(self, after: int, until: int) -> list[StoredEvent]:
        """Every committed event with after < position <= until, in order."""
        rows = await self.conn.execute(
            select(t.events)
            .where(t.events.c.position > after, t.events.c.position <= until)
            .order_by(t.events.c.position)
        )
        return [_event(r) for r in rows]

    async def events_for_user(self, user_id: str, since: int, limit: int) -> list[StoredEvent]:
        """Events after `since` that the user may see: those of each conversation within
        the user's membership range, and the user's own events."""
        e, m = t.events.c, t.members.c
        conv_events = (
            select(t.events)
            .join(t.members, m.conversation_id == e.conversation_id)
            .where(
                m.user_id == user_id,
                e.position > since,
                e.position >= m.joined_pos,
                or_(m.left_pos.is_(None), e.position <= m.left_pos),
            )
        )
        own = select(t.events).where(e.user_id == user_id, e.position > since)
        union = conv_events.union_all(own).subquery()
        rows = await self.conn.execute(select(union).order_by(union.c.position).limit(limit))
        seen: set[int] = set()
        out = []
        for r in rows:
            if r.position in seen:
                continue
            seen.add(r.position)
            out.append(_event(r))
        return out


@contextlib.contextmanager
def _unavailable_when_unreachable(engine: Engine) -> Iterator[None]:
    """A lost or refused database connection is `Unavailable` (503): the client retries
    later (a send with the same client_msg_id), and nothing was acknowledged."""
    try:
        yield
    except Exception as exc:
        if engine.is_outage(exc):
            raise Unavailable("the database is unreachable; retry later") from exc
        raise


class SqlStore:
    """The Store: hands out read and write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._next_replica = -1
        self.replica_reads = 0
        self.primary_fallbacks = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        pool_size: int = 5,
        synchronous: str = "FULL",
        replica_urls: list[str] | None = None,
    ) -> SqlStore:
        return cls(
            create_engine(
                url,
                pool_size=pool_size,
                sqlite_synchronous=synchronous,
                replica_urls=replica_urls,
            )
        )

    @contextlib.asynccontextmanager
    async def read_replica(self, fresh_enough: FreshEnough) -> AsyncIterator[SqlTx]:
        """A read transaction on a replica when one is configured, reachable and
        `fresh_enough` (it has at least what the client already saw); else on the primary."""
        replicas = self.engine.replicas
        if replicas:
            self._next_replica = (self._next_replica + 1) % len(replicas)
            conn: AsyncConnection | None = None
            try:
                replica = replicas[self._next_replica]
                conn = await replica.read.connect()
                await conn.begin()
                tx = SqlTx(conn, replica)
                usable = await fresh_enough(tx)
            except (OSError, DBAPIError):
                usable = False  # an unreachable replica is skipped, never an error
            if usable and conn is not None:
                self.replica_reads += 1
                try:
                    yield tx
                finally:
                    await conn.close()
                return
            if conn is not None:
                await conn.close()
        self.primary_fallbacks += 1 if replicas else 0
        async with self.read() as tx:
            yield tx

    async def ping(self) -> None:
        """Raise when the primary cannot answer (for readiness)."""
        async with self.engine.write.connect() as conn:
            await conn.execute(select(1))

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTx]:
        with _unavailable_when_unreachable(self.engine):
            async with self.engine.read.connect() as conn, conn.begin():
                yield SqlTx(conn, self.engine)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[SqlTx]:
        """One write transaction. After-commit callbacks run in commit order, before the
        next writer starts, so that events are published in position order."""
        engine = self.engine
        async with engine.write_slot():
            with _unavailable_when_unreachable(engine):
                async with engine.write_transaction() as conn:
                    await engine.lock_writes(conn)
                    tx = SqlTx(conn, engine)
                    yield tx
            for callback in tx._after_commit:
                await callback()

    async def close(self) -> None:
        await self.engine.dispose()
