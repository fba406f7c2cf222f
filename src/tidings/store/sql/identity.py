"""The identity aggregate: which account an identity provider's subject is (LDAP,
OpenID Connect, SCIM), and the profile fields a provider keeps in step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tidings.core.errors import Conflict
from tidings.core.models import IdentityLink, User, UserId, UserOrigin
from tidings.store.sql import schema as t
from tidings.store.sql.tx import TxBase, utc, utc_or_none
from tidings.store.sql.users import load_users


def _link(row: Any) -> IdentityLink:
    return IdentityLink(
        provider=row.provider,
        subject=row.subject,
        user_id=UserId(row.user_id),
        created_at=utc(row.created_at),
        last_seen_at=utc_or_none(row.last_seen_at),
        disabled_by_provider=bool(row.disabled_by_provider),
    )


class IdentityQueries(TxBase):
    async def user_for_link(self, provider: str, subject: str) -> User | None:
        c = t.identity_links.c
        row = (
            await self.conn.execute(
                select(t.users)
                .select_from(t.identity_links.join(t.users, t.users.c.id == c.user_id))
                .where(c.provider == provider, c.subject == subject)
            )
        ).first()
        return None if row is None else (await load_users(self.conn, [row]))[0]

    async def put_link(self, provider: str, subject: str, user_id: str, now: datetime) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t.identity_links).values(
                        provider=provider,
                        subject=subject,
                        user_id=user_id,
                        created_at=now,
                        last_seen_at=now,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"{provider} identity {subject!r} is linked already") from exc

    async def get_link(self, provider: str, subject: str) -> IdentityLink | None:
        c = t.identity_links.c
        row = (
            await self.conn.execute(
                select(t.identity_links).where(c.provider == provider, c.subject == subject)
            )
        ).first()
        return None if row is None else _link(row)

    async def set_link_disabled(self, provider: str, subject: str, disabled: bool) -> None:
        c = t.identity_links.c
        await self.conn.execute(
            update(t.identity_links)
            .where(c.provider == provider, c.subject == subject)
            .values(disabled_by_provider=disabled)
        )

    async def delete_link(self, provider: str, subject: str) -> None:
        c = t.identity_links.c
        await self.conn.execute(
            delete(t.identity_links).where(c.provider == provider, c.subject == subject)
        )

    async def links_of(self, user_id: str) -> list[IdentityLink]:
        c = t.identity_links.c
        rows = await self.conn.execute(
            select(t.identity_links).where(c.user_id == user_id).order_by(c.provider, c.subject)
        )
        return [_link(r) for r in rows]

    async def provider_links(self, provider: str) -> list[IdentityLink]:
        c = t.identity_links.c
        rows = await self.conn.execute(
            select(t.identity_links).where(c.provider == provider).order_by(c.subject)
        )
        return [_link(r) for r in rows]

    async def touch_link(self, provider: str, subject: str, now: datetime) -> None:
        c = t.identity_links.c
        await self.conn.execute(
            update(t.identity_links)
            .where(c.provider == provider, c.subject == subject)
            .values(last_seen_at=now)
        )

    async def set_user_profile(
        self,
        user_id: str,
        *,
        display_name: str,
        search_key: str,
        email: str | None,
        origin: UserOrigin,
    ) -> None:
        await self.conn.execute(
            update(t.users)
            .where(t.users.c.id == user_id)
            .values(
                display_name=display_name, search_key=search_key, email=email, origin=origin.value
            )
        )
