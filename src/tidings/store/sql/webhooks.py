"""The webhooks aggregate: outgoing webhooks and their delivery log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update

from tidings.core.models import ConversationId, ConversationKind, UserId
from tidings.core.webhooks import Delivery, DeliveryStatus, DisabledReason, Webhook, WebhookId
from tidings.store.ports import WebhookSecret
from tidings.store.sql import schema as t
from tidings.store.sql.tx import TxBase, utc

_W = t.webhooks
_D = t.webhook_deliveries
_COLUMNS = [c for c in _W.c if c.name not in ("secret", "key_id")]


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=WebhookId(row.id),
        url=row.url,
        events=tuple(orjson.loads(row.events)),
        conversation_id=None
        if row.conversation_id is None
        else ConversationId(row.conversation_id),
        owner_id=UserId(row.owner_id),
        enabled=bool(row.enabled),
        disabled_reason=None
        if row.disabled_reason is None
        else DisabledReason(row.disabled_reason),
        failures=int(row.failures),
        since_position=int(row.since_position),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=WebhookId(row.webhook_id),
        delivery_id=row.delivery_id,
        kind=row.kind,
        position=None if row.position is None else int(row.position),
        attempt=int(row.attempt),
        at=utc(row.at),
        status=DeliveryStatus(row.status),
        response_code=None if row.response_code is None else int(row.response_code),
        latency_ms=None if row.latency_ms is None else int(row.latency_ms),
        error=row.error,
    )


def _values(webhook: Webhook) -> dict[str, Any]:
    return {
        "url": webhook.url,
        "events": orjson.dumps(list(webhook.events)).decode(),
        "enabled": webhook.enabled,
        "disabled_reason": None
        if webhook.disabled_reason is None
        else webhook.disabled_reason.value,
        "failures": webhook.failures,
        "since_position": webhook.since_position,
        "updated_at": webhook.updated_at,
    }


class WebhookQueries(TxBase):
    async def insert_webhook(self, webhook: Webhook, secret: WebhookSecret) -> None:
        await self.conn.execute(
            insert(_W).values(
                id=webhook.id,
                conversation_id=webhook.conversation_id,
                owner_id=webhook.owner_id,
                created_at=webhook.created_at,
                secret=secret.sealed,
                key_id=secret.key_id,
                **_values(webhook),
            )
        )

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        row = (await self.conn.execute(select(*_COLUMNS).where(_W.c.id == webhook_id))).first()
        return None if row is None else _webhook(row)

    async def get_webhook_secret(self, webhook_id: str) -> WebhookSecret | None:
        row = (
            await self.conn.execute(select(_W.c.secret, _W.c.key_id).where(_W.c.id == webhook_id))
        ).first()
        return None if row is None else WebhookSecret(row.secret, row.key_id)

    async def list_webhooks(self, owner_id: str | None) -> list[Webhook]:
        query = select(*_COLUMNS).order_by(_W.c.created_at, _W.c.id)
        if owner_id is not None:
            query = query.where(_W.c.owner_id == owner_id)
        return [_webhook(r) for r in await self.conn.execute(query)]

    async def enabled_webhooks(self) -> list[Webhook]:
        query = select(*_COLUMNS).where(_W.c.enabled.is_(True)).order_by(_W.c.id)
        return [_webhook(r) for r in await self.conn.execute(query)]

    async def count_webhooks(self, owner_id: str) -> int:
        query = select(func.count()).select_from(_W).where(_W.c.owner_id == owner_id)
        return int((await self.conn.execute(query)).scalar_one())

    async def update_webhook(self, webhook: Webhook) -> None:
        await self.conn.execute(update(_W).where(_W.c.id == webhook.id).values(**_values(webhook)))

    async def set_webhook_secret(self, webhook_id: str, secret: WebhookSecret) -> None:
        await self.conn.execute(
            update(_W)
            .where(_W.c.id == webhook_id)
            .values(secret=secret.sealed, key_id=secret.key_id)
        )

    async def webhook_key_ids(self) -> dict[str, int]:
        query = select(_W.c.key_id, func.count()).group_by(_W.c.key_id)
        return {r[0]: int(r[1]) for r in await self.conn.execute(query)}

    async def webhook_secrets_under(self, key_id: str) -> list[tuple[str, WebhookSecret]]:
        query = select(_W.c.id, _W.c.secret, _W.c.key_id).where(_W.c.key_id == key_id)
        rows = await self.conn.execute(query.order_by(_W.c.id))
        return [(r.id, WebhookSecret(r.secret, r.key_id)) for r in rows]

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.conn.execute(delete(_D).where(_D.c.webhook_id == webhook_id))
        await self.conn.execute(delete(_W).where(_W.c.id == webhook_id))

    async def count_webhook_attempt(self, webhook_id: str, ok: bool) -> int:
        failures = 0 if ok else _W.c.failures + 1
        done = await self.conn.execute(
            update(_W).where(_W.c.id == webhook_id).values(failures=failures)
        )
        if done.rowcount == 0:
            return -1
        query = select(_W.c.failures).where(_W.c.id == webhook_id)
        return int((await self.conn.execute(query)).scalar_one())

    async def insert_delivery(self, delivery: Delivery, keep: int) -> None:
        await self.conn.execute(
            insert(_D).values(
                webhook_id=delivery.webhook_id,
                id=delivery.id,
                delivery_id=delivery.delivery_id,
                kind=delivery.kind,
                position=delivery.position,
                attempt=delivery.attempt,
                at=delivery.at,
                status=delivery.status.value,
                response_code=delivery.response_code,
                latency_ms=delivery.latency_ms,
                error=delivery.error[:300],
            )
        )
        # the newest `keep` stay: the id of the oldest of them bounds the rest
        oldest_kept = (
            select(_D.c.id)
            .where(_D.c.webhook_id == delivery.webhook_id)
            .order_by(_D.c.id.desc())
            .offset(max(0, keep - 1))
            .limit(1)
            .scalar_subquery()
        )
        await self.conn.execute(
            delete(_D).where(_D.c.webhook_id == delivery.webhook_id, _D.c.id < oldest_kept)
        )

    async def list_deliveries(
        self, webhook_id: str, before_id: str | None, limit: int
    ) -> list[Delivery]:
        query = select(_D).where(_D.c.webhook_id == webhook_id)
        if before_id is not None:
            query = query.where(_D.c.id < before_id)
        query = query.order_by(_D.c.id.desc()).limit(limit)
        return [_delivery(r) for r in await self.conn.execute(query)]

    async def conversation_kinds(
        self, conversation_ids: Sequence[str]
    ) -> dict[str, ConversationKind]:
        if not conversation_ids:
            return {}
        c = t.conversations.c
        query = select(c.id, c.kind).where(c.id.in_(list(conversation_ids)))
        return {r.id: ConversationKind(r.kind) for r in await self.conn.execute(query)}
