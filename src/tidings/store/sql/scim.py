"""SCIM provisioning: its bearer tokens, and the SCIM side of users and groups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tidings.core.errors import Conflict
from tidings.store.ports import ScimGroupRecord, ScimToken, ScimUserRecord
from tidings.store.sql import schema as t
from tidings.store.sql.tx import TxBase, utc, utc_or_none


def _key(value: str) -> str:
    """userName and displayName are compared case-insensitively (RFC 7643 caseExact
    false)."""
    return value.casefold()


def _token(row: Any) -> ScimToken:
    return ScimToken(
        id=row.id,
        name=row.name,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        last_used_at=utc_or_none(row.last_used_at),
        revoked_at=utc_or_none(row.revoked_at),
    )


def _user(row: Any) -> ScimUserRecord:
    attributes: dict[str, object] = orjson.loads(row.attributes)
    return ScimUserRecord(
        id=row.id,
        user_id=row.user_id,
        user_name=row.user_name,
        external_id=row.external_id,
        attributes=attributes,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def _group(row: Any) -> ScimGroupRecord:
    return ScimGroupRecord(
        department_id=row.department_id,
        display_name=row.name,
        external_id=row.external_id,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


_GROUPS = select(t.scim_groups, t.departments.c.name).join(
    t.departments, t.departments.c.id == t.scim_groups.c.department_id
)


class ScimQueries(TxBase):
    # --- tokens -----------------------------------------------------------------
    async def insert_scim_token(
        self, token_id: str, token_hash: str, name: str, created_by: str | None, now: datetime
    ) -> None:
        await self.conn.execute(
            insert(t.scim_tokens).values(
                id=token_id,
                token_hash=token_hash,
                name=name,
                created_by=created_by,
                created_at=now,
            )
        )

    async def scim_token_for_hash(self, token_hash: str) -> ScimToken | None:
        row = (
            await self.conn.execute(
                select(t.scim_tokens).where(t.scim_tokens.c.token_hash == token_hash)
            )
        ).first()
        return None if row is None else _token(row)

    async def list_scim_tokens(self) -> list[ScimToken]:
        rows = await self.conn.execute(select(t.scim_tokens).order_by(t.scim_tokens.c.created_at))
        return [_token(r) for r in rows]

    async def revoke_scim_token(self, token_id: str, now: datetime) -> bool:
        done = await self.conn.execute(
            update(t.scim_tokens)
            .where(t.scim_tokens.c.id == token_id, t.scim_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(done.rowcount)

    async def set_scim_token_used(self, token_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.scim_tokens).where(t.scim_tokens.c.id == token_id).values(last_used_at=now)
        )

    # --- users ------------------------------------------------------------------
    async def put_scim_user(self, record: ScimUserRecord) -> None:
        values = {
            "user_id": record.user_id,
            "user_name": record.user_name,
            "user_name_key": _key(record.user_name),
            "external_id": record.external_id,
            "attributes": orjson.dumps(record.attributes).decode(),
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        try:
            async with self.conn.begin_nested():
                done = await self.conn.execute(
                    update(t.scim_users).where(t.scim_users.c.id == record.id).values(**values)
                )
                if done.rowcount == 0:
                    await self.conn.execute(insert(t.scim_users).values(id=record.id, **values))
        except IntegrityError as exc:
            raise Conflict(
                f"userName {record.user_name!r} is taken", field="userName", scim_type="uniqueness"
            ) from exc

    async def get_scim_user(self, scim_id: str) -> ScimUserRecord | None:
        row = (
            await self.conn.execute(select(t.scim_users).where(t.scim_users.c.id == scim_id))
        ).first()
        return None if row is None else _user(row)

    async def scim_user_of(self, user_id: str) -> ScimUserRecord | None:
        row = (
            await self.conn.execute(select(t.scim_users).where(t.scim_users.c.user_id == user_id))
        ).first()
        return None if row is None else _user(row)

    async def scim_users_by_ids(self, scim_ids: Sequence[str]) -> list[ScimUserRecord]:
        ids = list(dict.fromkeys(scim_ids))
        found: list[ScimUserRecord] = []
        for start in range(0, len(ids), 500):  # bounded IN lists
            rows = await self.conn.execute(
                select(t.scim_users).where(t.scim_users.c.id.in_(ids[start : start + 500]))
            )
            found.extend(_user(r) for r in rows)
        return found

    async def find_scim_users(
        self, field: str | None, value: str, offset: int, limit: int
    ) -> tuple[int, list[ScimUserRecord]]:
        c = t.scim_users.c
        where = (
            []
            if field is None
            else [c.user_name_key == _key(value)]
            if field == "userName"
            else [c.external_id == value]
        )
        total = (
            await self.conn.execute(select(func.count()).select_from(t.scim_users).where(*where))
        ).scalar_one()
        rows = await self.conn.execute(
            select(t.scim_users).where(*where).order_by(c.id).offset(offset).limit(limit)
        )
        return int(total), [_user(r) for r in rows]

    async def delete_scim_user(self, scim_id: str) -> None:
        await self.conn.execute(delete(t.scim_users).where(t.scim_users.c.id == scim_id))

    # --- groups -----------------------------------------------------------------
    async def put_scim_group(self, record: ScimGroupRecord) -> None:
        values = {
            "display_name_key": _key(record.display_name),
            "external_id": record.external_id,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        try:
            async with self.conn.begin_nested():
                done = await self.conn.execute(
                    update(t.scim_groups)
                    .where(t.scim_groups.c.department_id == record.department_id)
                    .values(**values)
                )
                if done.rowcount == 0:
                    await self.conn.execute(
                        insert(t.scim_groups).values(department_id=record.department_id, **values)
                    )
        except IntegrityError as exc:
            raise Conflict(
                f"displayName {record.display_name!r} is taken",
                field="displayName",
                scim_type="uniqueness",
            ) from exc

    async def get_scim_group(self, department_id: str) -> ScimGroupRecord | None:
        row = (
            await self.conn.execute(_GROUPS.where(t.scim_groups.c.department_id == department_id))
        ).first()
        return None if row is None else _group(row)

    async def find_scim_groups(
        self, field: str | None, value: str, offset: int, limit: int
    ) -> tuple[int, list[ScimGroupRecord]]:
        c = t.scim_groups.c
        where = (
            []
            if field is None
            else [c.display_name_key == _key(value)]
            if field == "displayName"
            else [c.external_id == value]
        )
        total = (
            await self.conn.execute(select(func.count()).select_from(t.scim_groups).where(*where))
        ).scalar_one()
        rows = await self.conn.execute(
            _GROUPS.where(*where).order_by(c.department_id).offset(offset).limit(limit)
        )
        return int(total), [_group(r) for r in rows]

    async def delete_scim_group(self, department_id: str) -> None:
        await self.conn.execute(
            delete(t.scim_groups).where(t.scim_groups.c.department_id == department_id)
        )

    async def scim_members(self, department_id: str) -> list[ScimUserRecord]:
        m = t.department_members.c
        rows = await self.conn.execute(
            select(t.scim_users)
            .join(t.department_members, t.scim_users.c.user_id == m.user_id)
            .where(m.department_id == department_id)
            .order_by(t.scim_users.c.id)
        )
        return [_user(r) for r in rows]
