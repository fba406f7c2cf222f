"""The users aggregate: accounts, their departments, the directory."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, distinct, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.core.errors import Conflict
from tidings.core.models import (
    Avatar,
    CustomStatus,
    Department,
    DepartmentId,
    Dnd,
    DndSchedule,
    OrgRole,
    Preferences,
    Theme,
    User,
    UserId,
    UserOrigin,
)
from tidings.store.ports import Credentials
from tidings.store.sql import schema as t
from tidings.store.sql.tx import TxBase, utc, utc_or_none


def user_of(row: Any, departments: Sequence[DepartmentId] = ()) -> User:
    return User(
        id=UserId(row.id),
        username=row.username,
        display_name=row.display_name,
        role=OrgRole(row.role),
        disabled=bool(row.disabled),
        created_at=utc(row.created_at),
        department_ids=tuple(departments),
        bot=bool(row.bot),
        email=row.email,
        origin=UserOrigin(row.origin),
        status=_status_of(row),
        preferences=Preferences(
            language=row.language, time_zone=row.time_zone, theme=Theme(row.theme)
        ),
        avatar=_avatar_of(row),
    )


def _avatar_of(row: Any) -> Avatar | None:
    if row.avatar_id is None:
        return None
    return Avatar(row.avatar_id, utc(row.avatar_updated_at), row.avatar_sha256, row.avatar_type)


def _status_of(row: Any) -> CustomStatus | None:
    if row.status_text is None:
        return None
    until = None if row.status_until is None else utc(row.status_until)
    return CustomStatus(row.status_text, row.status_emoji or "", until)


async def load_users(conn: AsyncConnection, rows: Sequence[Any]) -> list[User]:
    """Users from their rows, with their departments (one query for all)."""
    deps: dict[str, list[DepartmentId]] = {}
    ids = [r.id for r in rows]
    if ids:
        found = await conn.execute(
            select(t.department_members).where(t.department_members.c.user_id.in_(ids))
        )
        for row in found:
            deps.setdefault(row.user_id, []).append(DepartmentId(row.department_id))
    return [user_of(r, sorted(deps.get(r.id, []))) for r in rows]


class UserQueries(TxBase):
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
                        email=user.email,
                        origin=user.origin.value,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"username {user.username!r} is taken", field="username") from exc

    async def get_user(self, user_id: str) -> User | None:
        row = (await self.conn.execute(select(t.users).where(t.users.c.id == user_id))).first()
        return None if row is None else (await load_users(self.conn, [row]))[0]

    async def get_users(self, user_ids: Iterable[str]) -> list[User]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return []
        rows = (await self.conn.execute(select(t.users).where(t.users.c.id.in_(ids)))).all()
        return await load_users(self.conn, rows)

    async def get_credentials(self, username: str) -> Credentials | None:
        row = (
            await self.conn.execute(select(t.users).where(t.users.c.username == username))
        ).first()
        if row is None:
            return None
        return Credentials((await load_users(self.conn, [row]))[0], row.password_hash)

    async def get_password_hash(self, user_id: str) -> str | None:
        return (
            await self.conn.execute(select(t.users.c.password_hash).where(t.users.c.id == user_id))
        ).scalar()

    async def users_by_usernames(self, usernames: Iterable[str]) -> list[User]:
        names = list(usernames)
        if not names:
            return []
        rows = (await self.conn.execute(select(t.users).where(t.users.c.username.in_(names)))).all()
        return await load_users(self.conn, rows)

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
        return await load_users(self.conn, rows)

    async def set_display_name(self, user_id: str, display_name: str, search_key: str) -> None:
        """A new display name, and the search key made from it."""
        await self._update_user(user_id, display_name=display_name, search_key=search_key)

    async def set_role(self, user_id: str, role: OrgRole) -> None:
        await self._update_user(user_id, role=role.value)

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._update_user(user_id, disabled=disabled)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._update_user(user_id, password_hash=password_hash)

    async def set_profile(
        self,
        user_id: str,
        *,
        display_name: str,
        search_key: str,
        status: CustomStatus | None,
        preferences: Preferences,
    ) -> None:
        await self._update_user(
            user_id,
            display_name=display_name,
            search_key=search_key,
            status_text=None if status is None else status.text,
            status_emoji=None if status is None else status.emoji,
            status_until=None if status is None else status.until,
            language=preferences.language,
            time_zone=preferences.time_zone,
            theme=preferences.theme.value,
        )

    async def set_avatar(self, user_id: str, avatar: Avatar | None) -> None:
        await self._update_user(
            user_id,
            avatar_id=None if avatar is None else avatar.id,
            avatar_sha256=None if avatar is None else avatar.sha256,
            avatar_type=None if avatar is None else avatar.content_type,
            avatar_updated_at=None if avatar is None else avatar.updated_at,
        )

    async def sharing_a_conversation(self, user_id: str, among: Sequence[str]) -> set[str]:
        m, mine = t.members.alias("m"), t.members.alias("mine")
        if not among:
            return set()
        rows = await self.conn.execute(
            select(m.c.user_id)
            .distinct()
            .select_from(mine.join(m, m.c.conversation_id == mine.c.conversation_id))
            .where(
                mine.c.user_id == user_id,
                mine.c.left_pos.is_(None),
                m.c.left_pos.is_(None),
                m.c.user_id.in_(list(among)),
            )
        )
        return {r[0] for r in rows}

    async def avatar_in_use(self, sha256: str) -> bool:
        u = t.users.c
        row = (
            await self.conn.execute(select(u.id).where(u.avatar_sha256 == sha256).limit(1))
        ).first()
        return row is not None

    async def get_dnd(self, user_id: str) -> Dnd:
        u = t.users.c
        row = (
            await self.conn.execute(
                select(u.dnd_until, u.dnd_start, u.dnd_end).where(u.id == user_id)
            )
        ).first()
        if row is None:
            return Dnd()
        schedule = None
        if row.dnd_start is not None and row.dnd_end is not None:
            schedule = DndSchedule(
                time.fromisoformat(row.dnd_start), time.fromisoformat(row.dnd_end)
            )
        return Dnd(until=utc_or_none(row.dnd_until), schedule=schedule)

    async def set_dnd(self, user_id: str, dnd: Dnd) -> None:
        s = dnd.schedule
        await self._update_user(
            user_id,
            dnd_until=dnd.until,
            dnd_start=None if s is None else s.start.strftime("%H:%M"),
            dnd_end=None if s is None else s.end.strftime("%H:%M"),
        )

    async def _update_user(self, user_id: str, **columns: object) -> None:
        await self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(**columns))

    async def count_active_owners(self) -> int:
        stmt = select(func.count()).where(
            t.users.c.role == OrgRole.OWNER.value, t.users.c.disabled.is_(False)
        )
        return int((await self.conn.execute(stmt)).scalar_one())

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

    async def rename_department(self, department_id: str, name: str) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    update(t.departments)
                    .where(t.departments.c.id == department_id)
                    .values(name=name)
                )
        except IntegrityError as exc:
            raise Conflict(
                f"department {name!r} already exists there", field="name", scim_type="uniqueness"
            ) from exc

    async def usage_per_day(self, starts: Sequence[datetime]) -> list[tuple[int, int]]:
        if not starts:
            return []
        m, u = t.messages.c, t.users.c
        ends = [*starts[1:], starts[-1] + timedelta(days=1)]
        columns = []
        for start, end in zip(starts, ends, strict=True):
            day = and_(m.created_at >= start, m.created_at < end)
            columns.append(func.count(case((day, 1))))
            columns.append(func.count(distinct(case((and_(day, u.bot.is_(False)), m.sender_id)))))
        row = (
            await self.conn.execute(
                select(*columns)
                .select_from(t.messages.join(t.users, u.id == m.sender_id))
                .where(m.created_at >= starts[0], m.created_at < ends[-1])
            )
        ).one()
        return [(int(row[2 * i]), int(row[2 * i + 1])) for i in range(len(starts))]

    async def database_bytes(self) -> int:
        return int((await self.conn.exec_driver_sql(self.engine.database_size_sql)).scalar_one())

    async def move_department(self, department_id: str, parent_id: str | None) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    update(t.departments)
                    .where(t.departments.c.id == department_id)
                    .values(parent_id=parent_id)
                )
        except IntegrityError as exc:
            raise Conflict(
                "a department of that name already exists there", field="parent_id"
            ) from exc

    async def delete_department(self, department_id: str) -> None:
        """The department, its memberships and its sub-departments' link to it (they
        become top-level)."""
        await self.conn.execute(
            delete(t.department_members).where(
                t.department_members.c.department_id == department_id
            )
        )
        await self.conn.execute(
            update(t.departments)
            .where(t.departments.c.parent_id == department_id)
            .values(parent_id=None)
        )
        await self.conn.execute(delete(t.departments).where(t.departments.c.id == department_id))

    async def department_member_ids(self, department_id: str) -> list[UserId]:
        rows = await self.conn.execute(
            select(t.department_members.c.user_id)
            .where(t.department_members.c.department_id == department_id)
            .order_by(t.department_members.c.user_id)
        )
        return [UserId(r[0]) for r in rows]

    # --- who holds a role -------------------------------------------------------
    async def active_user_ids_with_roles(self, roles: Sequence[OrgRole]) -> list[UserId]:
        """People (never bots: they have no second factor) with one of these roles."""
        rows = await self.conn.execute(
            select(t.users.c.id).where(
                t.users.c.role.in_([role.value for role in roles]), t.users.c.bot.is_(False)
            )
        )
        return [UserId(r[0]) for r in rows]

    async def bot_user_ids(self) -> list[UserId]:
        """The ids of every bot account, by username."""
        rows = await self.conn.execute(
            select(t.users.c.id).where(t.users.c.bot.is_(True)).order_by(t.users.c.username)
        )
        return [UserId(r[0]) for r in rows]
