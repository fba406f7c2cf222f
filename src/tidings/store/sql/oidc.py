"""OpenID Connect sign-ins in progress (services/oidc.py): kept until used or expired."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import delete, func, insert, select

from tidings.store.ports import PendingLogin
from tidings.store.sql import schema as t
from tidings.store.sql.tx import TxBase, utc


class OidcQueries(TxBase):
    async def count_pending_logins(self, now: datetime) -> int:
        rows = t.oidc_logins
        found = await self.conn.execute(
            select(func.count()).select_from(rows).where(rows.c.expires_at >= now)
        )
        return int(found.scalar() or 0)

    async def put_pending_login(self, key_hash: str, login: PendingLogin, now: datetime) -> None:
        rows = t.oidc_logins
        await self.conn.execute(delete(rows).where(rows.c.expires_at < now))
        await self.conn.execute(
            insert(rows).values(
                key_hash=key_hash,
                kind=login.kind,
                browser_hash=login.browser_hash,
                payload=orjson.dumps(dict(login.payload)).decode(),
                expires_at=login.expires_at,
            )
        )

    async def take_pending_login(self, key_hash: str) -> PendingLogin | None:
        rows = t.oidc_logins
        found = (
            await self.conn.execute(
                delete(rows)
                .where(rows.c.key_hash == key_hash)
                .returning(rows.c.kind, rows.c.browser_hash, rows.c.payload, rows.c.expires_at)
            )
        ).first()
        if found is None:
            return None
        payload = orjson.loads(found.payload)
        return PendingLogin(
            kind=found.kind,
            browser_hash=found.browser_hash,
            payload={str(k): str(v) for k, v in payload.items()},
            expires_at=utc(found.expires_at),
        )
