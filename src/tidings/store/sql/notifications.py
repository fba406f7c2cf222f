"""The notifications aggregate: Web Push subscriptions, each user's notification
settings, and what a digest reads (services/push.py, services/digests.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, false, func, insert, or_, select, update

from tidings.core.models import ConversationKind, MemberNotify, NotifyLevel, UserId
from tidings.core.notifications import (
    MissedItem,
    NotifySettings,
    PushSubscription,
    ReachableMember,
    SubscriptionId,
)
from tidings.store.sql import schema as t
from tidings.store.sql.tx import TxBase, utc, utc_or_none

_P = t.push_subscriptions


def _subscription(row: Any) -> PushSubscription:
    return PushSubscription(
        id=SubscriptionId(row.id),
        user_id=UserId(row.user_id),
        token_id=row.token_id,
        endpoint=row.endpoint,
        p256dh=row.p256dh,
        auth=row.auth,
        created_at=utc(row.created_at),
    )


class NotificationQueries(TxBase):
    async def put_push_subscription(self, sub: PushSubscription) -> None:
        """Insert, replacing the user's subscription of the same endpoint (a browser
        that subscribes again, maybe in another session, with new keys)."""
        await self.conn.execute(
            delete(_P).where(_P.c.user_id == sub.user_id, _P.c.endpoint == sub.endpoint)
        )
        await self.conn.execute(
            insert(_P).values(
                id=sub.id,
                user_id=sub.user_id,
                token_id=sub.token_id,
                endpoint=sub.endpoint,
                p256dh=sub.p256dh,
                auth=sub.auth,
                created_at=sub.created_at,
            )
        )

    async def count_push_subscriptions(self, user_id: str) -> int:
        found = await self.conn.execute(
            select(func.count()).select_from(_P).where(_P.c.user_id == user_id)
        )
        return int(found.scalar() or 0)

    async def get_push_subscription(self, subscription_id: str) -> PushSubscription | None:
        row = (await self.conn.execute(select(_P).where(_P.c.id == subscription_id))).first()
        return None if row is None else _subscription(row)

    async def push_subscriptions_of(
        self, user_id: str, now: datetime, *, sending: bool = False
    ) -> list[PushSubscription]:
        """The user's subscriptions whose session is live (not revoked nor expired);
        `sending`: only those whose session may read messages (not one restricted to
        enrolling a second factor the organization requires)."""
        tk = t.tokens
        where = [_P.c.user_id == user_id, tk.c.revoked_at.is_(None), tk.c.expires_at > now]
        if sending:
            where.append(tk.c.enrol_only.is_(False))
        rows = await self.conn.execute(
            select(_P)
            .join(tk, tk.c.id == _P.c.token_id)
            .where(*where)
            .order_by(_P.c.created_at, _P.c.id)
        )
        return [_subscription(r) for r in rows]

    async def delete_push_subscription(self, subscription_id: str) -> bool:
        done = await self.conn.execute(delete(_P).where(_P.c.id == subscription_id))
        return bool(done.rowcount)

    async def delete_push_subscription_by_endpoint(self, user_id: str, endpoint: str) -> bool:
        done = await self.conn.execute(
            delete(_P).where(_P.c.user_id == user_id, _P.c.endpoint == endpoint)
        )
        return bool(done.rowcount)

    async def delete_push_subscriptions_of_tokens(self, token_ids: list[str]) -> int:
        if not token_ids:
            return 0
        done = await self.conn.execute(delete(_P).where(_P.c.token_id.in_(token_ids)))
        return int(done.rowcount)

    async def delete_push_subscriptions_of_user(
        self, user_id: str, except_token: str | None = None
    ) -> int:
        where = [_P.c.user_id == user_id]
        if except_token is not None:
            where.append(_P.c.token_id != except_token)
        done = await self.conn.execute(delete(_P).where(*where))
        return int(done.rowcount)

    async def reachable_members(
        self, conversation_id: str, *, push: bool, mail: bool
    ) -> list[ReachableMember]:
        """The conversation's active members who have a push subscription (`push`) or get
        digests (`mail`: an email address, digests on, not disabled, no bot), in one
        read: the members no push nor mail can reach (most) are never loaded."""
        if not push and not mail:
            return []
        m, u = t.members, t.users
        pushed = exists().where(_P.c.user_id == m.c.user_id)
        mailed = and_(
            u.c.email.is_not(None),
            u.c.email_digests.is_(True),
            u.c.disabled.is_(False),
            u.c.bot.is_(False),
        )
        reach = [c for c, wanted in ((pushed, push), (mailed, mail)) if wanted]
        rows = await self.conn.execute(
            select(
                m.c.user_id,
                m.c.notify_level,
                m.c.muted,
                m.c.muted_until,
                (pushed if push else false()).label("push"),
                (mailed if mail else false()).label("mail"),
            )
            .join(u, u.c.id == m.c.user_id)
            .where(m.c.conversation_id == conversation_id, m.c.left_pos.is_(None), or_(*reach))
            .order_by(m.c.user_id)
        )
        return [
            ReachableMember(
                user_id=UserId(r.user_id),
                notify=MemberNotify(
                    level=None if r.notify_level is None else NotifyLevel(r.notify_level),
                    muted=bool(r.muted),
                    muted_until=utc_or_none(r.muted_until),
                ),
                push=bool(r.push),
                mail=bool(r.mail),
            )
            for r in rows
        ]

    async def get_notify_settings(self, user_id: str) -> NotifySettings:
        u = t.users
        row = (
            await self.conn.execute(
                select(u.c.email_digests, u.c.notify_previews).where(u.c.id == user_id)
            )
        ).first()
        if row is None:
            return NotifySettings()
        return NotifySettings(bool(row.email_digests), bool(row.notify_previews))

    async def set_notify_settings(self, user_id: str, settings: NotifySettings) -> None:
        await self.conn.execute(
            update(t.users)
            .where(t.users.c.id == user_id)
            .values(email_digests=settings.email_digests, notify_previews=settings.previews)
        )

    async def set_user_email(self, user_id: str, email: str | None) -> None:
        await self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(email=email))

    async def digest_sent_at(self, user_id: str) -> datetime | None:
        u = t.users
        found = await self.conn.execute(select(u.c.digest_sent_at).where(u.c.id == user_id))
        return utc_or_none(found.scalar())

    async def set_digest_sent_at(self, user_id: str, at: datetime) -> None:
        await self.conn.execute(
            update(t.users).where(t.users.c.id == user_id).values(digest_sent_at=at)
        )

    async def missed_items(
        self, user_id: str, since: datetime | None, until: datetime, limit: int
    ) -> tuple[list[MissedItem], int]:
        """Direct messages to the user and messages mentioning them, created after
        `since` up to `until`, not recalled, not sent by them, in conversations they are
        still in, after their read position: the oldest `limit`, and how many more."""
        m, mem, c, u, mn = t.messages, t.members, t.conversations, t.users, t.mentions
        mentioned = exists().where(
            mn.c.conversation_id == m.c.conversation_id,
            mn.c.user_id == user_id,
            mn.c.seq == m.c.seq,
        )
        where = [
            m.c.sender_id != user_id,
            m.c.deleted.is_(False),
            m.c.seq > mem.c.read_seq,
            m.c.seq >= mem.c.first_seq,
            m.c.created_at <= until,
            or_(c.c.kind == ConversationKind.DIRECT.value, mentioned),
        ]
        if since is not None:
            where.append(m.c.created_at > since)
        joined = (
            m.join(
                mem,
                and_(
                    mem.c.conversation_id == m.c.conversation_id,
                    mem.c.user_id == user_id,
                    mem.c.left_pos.is_(None),
                ),
            )
            .join(c, c.c.id == m.c.conversation_id)
            .join(u, u.c.id == m.c.sender_id)
        )
        rows = await self.conn.execute(
            select(
                m.c.conversation_id,
                m.c.seq,
                m.c.body,
                m.c.created_at,
                c.c.kind,
                c.c.name,
                u.c.display_name,
            )
            .select_from(joined)
            .where(*where)
            .order_by(m.c.created_at, m.c.conversation_id, m.c.seq)
            .limit(limit)
        )
        items = [
            MissedItem(
                conversation_id=r.conversation_id,
                conversation_name=r.name or "",
                direct=r.kind == ConversationKind.DIRECT.value,
                seq=int(r.seq),
                sender_name=r.display_name,
                body=r.body,
                created_at=utc(r.created_at),
            )
            for r in rows
        ]
        more = 0
        if len(items) == limit:
            total = await self.conn.execute(select(func.count()).select_from(joined).where(*where))
            more = max(0, int(total.scalar() or 0) - limit)
        return items, more
